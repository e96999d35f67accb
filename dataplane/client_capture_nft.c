/* lightspeed-client capture mode: nf_tables and rtnetlink messages (see
 * client_capture_nft.h). Written directly against the kernel's netlink interface
 * rather than through libnftnl: the client needs a handful of fixed messages, and the
 * library would need libmnl loaded beside it (neither may be linked into the
 * dataplane, which links only libc dynamically), while these few builders keep capture
 * mode at libc. Control path only: called at start, on a change of game, at exit. */
#include "client_capture_nft.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "nlmsg.h"

/* ---- nf_tables expressions ---------------------------------------------------- */

static size_t expr_begin(struct ls_nlb *b, const char *name)
{
	size_t elem = ls_nlb_nest(b, NFTA_LIST_ELEM);

	ls_nlb_str(b, NFTA_EXPR_NAME, name);
	(void)ls_nlb_nest(b, NFTA_EXPR_DATA);
	return elem;
}

/* Close the expression's data and the list element (data is the last attribute). */
static void expr_end(struct ls_nlb *b, size_t elem)
{
	if (b->full)
		return;
	/* The data nest starts right after the name attribute. */
	struct nlattr *e = (struct nlattr *)(b->buf + elem);
	struct nlattr *name = (struct nlattr *)((uint8_t *)e + NLA_HDRLEN);
	size_t data = elem + NLA_HDRLEN + NLA_ALIGN(name->nla_len);
	ls_nlb_nest_end(b, data);
	ls_nlb_nest_end(b, elem);
}

static void data_value(struct ls_nlb *b, uint16_t type, const void *v, size_t len)
{
	size_t n = ls_nlb_nest(b, type);

	ls_nlb_attr(b, NFTA_DATA_VALUE, v, len);
	ls_nlb_nest_end(b, n);
}

static void e_meta_load(struct ls_nlb *b, uint32_t key)
{
	size_t e = expr_begin(b, "meta");

	ls_nlb_be32(b, NFTA_META_KEY, key);
	ls_nlb_be32(b, NFTA_META_DREG, NFT_REG_1);
	expr_end(b, e);
}

static void e_meta_set(struct ls_nlb *b, uint32_t key)
{
	size_t e = expr_begin(b, "meta");

	ls_nlb_be32(b, NFTA_META_KEY, key);
	ls_nlb_be32(b, NFTA_META_SREG, NFT_REG_1);
	expr_end(b, e);
}

static void e_cmp_eq(struct ls_nlb *b, const void *v, size_t len)
{
	size_t e = expr_begin(b, "cmp");

	ls_nlb_be32(b, NFTA_CMP_SREG, NFT_REG_1);
	ls_nlb_be32(b, NFTA_CMP_OP, NFT_CMP_EQ);
	data_value(b, NFTA_CMP_DATA, v, len);
	expr_end(b, e);
}

static void e_payload(struct ls_nlb *b, uint32_t base, uint32_t offset, uint32_t len)
{
	size_t e = expr_begin(b, "payload");

	ls_nlb_be32(b, NFTA_PAYLOAD_DREG, NFT_REG_1);
	ls_nlb_be32(b, NFTA_PAYLOAD_BASE, base);
	ls_nlb_be32(b, NFTA_PAYLOAD_OFFSET, offset);
	ls_nlb_be32(b, NFTA_PAYLOAD_LEN, len);
	expr_end(b, e);
}

static void e_range16(struct ls_nlb *b, uint16_t lo, uint16_t hi)
{
	size_t e = expr_begin(b, "range");
	uint16_t blo = htons(lo), bhi = htons(hi);

	ls_nlb_be32(b, NFTA_RANGE_SREG, NFT_REG_1);
	ls_nlb_be32(b, NFTA_RANGE_OP, NFT_RANGE_EQ);
	data_value(b, NFTA_RANGE_FROM_DATA, &blo, sizeof(blo));
	data_value(b, NFTA_RANGE_TO_DATA, &bhi, sizeof(bhi));
	expr_end(b, e);
}

static void e_mask32(struct ls_nlb *b, uint32_t mask_be)
{
	size_t e = expr_begin(b, "bitwise");
	uint32_t zero = 0;

	ls_nlb_be32(b, NFTA_BITWISE_SREG, NFT_REG_1);
	ls_nlb_be32(b, NFTA_BITWISE_DREG, NFT_REG_1);
	ls_nlb_be32(b, NFTA_BITWISE_LEN, 4);
	data_value(b, NFTA_BITWISE_MASK, &mask_be, 4);
	data_value(b, NFTA_BITWISE_XOR, &zero, 4);
	expr_end(b, e);
}

static void e_imm(struct ls_nlb *b, uint32_t reg, const void *v, size_t len)
{
	size_t e = expr_begin(b, "immediate");

	ls_nlb_be32(b, NFTA_IMMEDIATE_DREG, reg);
	data_value(b, NFTA_IMMEDIATE_DATA, v, len);
	expr_end(b, e);
}

static void e_verdict(struct ls_nlb *b, int code)
{
	size_t e = expr_begin(b, "immediate");
	size_t d, v;

	ls_nlb_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	d = ls_nlb_nest(b, NFTA_IMMEDIATE_DATA);
	v = ls_nlb_nest(b, NFTA_DATA_VERDICT);
	ls_nlb_be32(b, NFTA_VERDICT_CODE, (uint32_t)code);
	ls_nlb_nest_end(b, v);
	ls_nlb_nest_end(b, d);
	expr_end(b, e);
}

static void e_counter(struct ls_nlb *b)
{
	size_t e = expr_begin(b, "counter");
	uint64_t zero = 0;

	ls_nlb_attr(b, NFTA_COUNTER_BYTES, &zero, 8);
	ls_nlb_attr(b, NFTA_COUNTER_PACKETS, &zero, 8);
	expr_end(b, e);
}

static void e_fib_daddr_type(struct ls_nlb *b)
{
	size_t e = expr_begin(b, "fib");

	ls_nlb_be32(b, NFTA_FIB_DREG, NFT_REG_1);
	ls_nlb_be32(b, NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	ls_nlb_be32(b, NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
	expr_end(b, e);
}

static void e_socket_cgroupv2(struct ls_nlb *b, uint32_t level)
{
	size_t e = expr_begin(b, "socket");

	ls_nlb_be32(b, NFTA_SOCKET_KEY, NFT_SOCKET_CGROUPV2);
	ls_nlb_be32(b, NFTA_SOCKET_DREG, NFT_REG_1);
	ls_nlb_be32(b, NFTA_SOCKET_LEVEL, level);
	expr_end(b, e);
}

static void e_tproxy(struct ls_nlb *b)
{
	size_t e = expr_begin(b, "tproxy");

	ls_nlb_be32(b, NFTA_TPROXY_FAMILY, NFPROTO_IPV4);
	ls_nlb_be32(b, NFTA_TPROXY_REG_ADDR, NFT_REG_1);
	ls_nlb_be32(b, NFTA_TPROXY_REG_PORT, NFT_REG_2);
	expr_end(b, e);
}

/* ---- nf_tables objects ---------------------------------------------------------- */

#define NFT_TYPE(msg) ((uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | (msg)))

static const char CHAIN_DIVERT[] = "divert";
static const char CHAIN_TPROXY[] = "tproxy";

static void batch_begin(struct ls_nlb *b, uint32_t *seq)
{
	size_t m = ls_nlb_msg(b, NFNL_MSG_BATCH_BEGIN, 0, (*seq)++);

	ls_nlb_nfgen(b, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	ls_nlb_end(b, m);
}

static void batch_end(struct ls_nlb *b, uint32_t *seq)
{
	size_t m = ls_nlb_msg(b, NFNL_MSG_BATCH_END, 0, (*seq)++);

	ls_nlb_nfgen(b, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	ls_nlb_end(b, m);
}

static void msg_table(struct ls_nlb *b, uint32_t *seq, uint16_t op, uint16_t flags, bool owner)
{
	size_t m = ls_nlb_msg(b, NFT_TYPE(op), (uint16_t)(NLM_F_ACK | flags), (*seq)++);

	ls_nlb_nfgen(b, NFPROTO_IPV4, 0);
	ls_nlb_str(b, NFTA_TABLE_NAME, CL_CAPTURE_TABLE);
	if (op == NFT_MSG_NEWTABLE)
		ls_nlb_be32(b, NFTA_TABLE_FLAGS, owner ? NFT_TABLE_F_OWNER : 0);
	ls_nlb_end(b, m);
}

static void msg_chain(struct ls_nlb *b, uint32_t *seq, const char *name, const char *type,
		      uint32_t hook, int32_t prio)
{
	size_t m = ls_nlb_msg(b, NFT_TYPE(NFT_MSG_NEWCHAIN), NLM_F_ACK | NLM_F_CREATE, (*seq)++);
	size_t h;

	ls_nlb_nfgen(b, NFPROTO_IPV4, 0);
	ls_nlb_str(b, NFTA_CHAIN_TABLE, CL_CAPTURE_TABLE);
	ls_nlb_str(b, NFTA_CHAIN_NAME, name);
	h = ls_nlb_nest(b, NFTA_CHAIN_HOOK);
	ls_nlb_be32(b, NFTA_HOOK_HOOKNUM, hook);
	ls_nlb_be32(b, NFTA_HOOK_PRIORITY, (uint32_t)prio);
	ls_nlb_nest_end(b, h);
	ls_nlb_be32(b, NFTA_CHAIN_POLICY, NF_ACCEPT);
	ls_nlb_str(b, NFTA_CHAIN_TYPE, type);
	ls_nlb_end(b, m);
}

/* A rule: returns the offset of its expression list (close with rule_end). */
static size_t rule_begin(struct ls_nlb *b, uint32_t *seq, const char *chain, size_t *msg)
{
	*msg = ls_nlb_msg(b, NFT_TYPE(NFT_MSG_NEWRULE), NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
		       (*seq)++);
	ls_nlb_nfgen(b, NFPROTO_IPV4, 0);
	ls_nlb_str(b, NFTA_RULE_TABLE, CL_CAPTURE_TABLE);
	ls_nlb_str(b, NFTA_RULE_CHAIN, chain);
	return ls_nlb_nest(b, NFTA_RULE_EXPRESSIONS);
}

static void rule_end(struct ls_nlb *b, size_t list, size_t msg)
{
	ls_nlb_nest_end(b, list);
	ls_nlb_end(b, msg);
}

/* The divert chain's rules (docs in the header). */
static void divert_rules(struct ls_nlb *b, uint32_t *seq, const struct client_capture_kconf *k,
			 const struct client_capture_match *mt)
{
	size_t msg, l;
	uint8_t udp = IPPROTO_UDP;
	uint32_t rtn_local = RTN_LOCAL, lo_net = htonl(0x7f000000), lo_mask = htonl(0xff000000);

	/* The client's own datagrams: the tunnel and the replies it injects. */
	l = rule_begin(b, seq, CHAIN_DIVERT, &msg);
	e_meta_load(b, NFT_META_MARK);
	e_cmp_eq(b, &k->own_mark, 4);
	e_verdict(b, NFT_RETURN);
	rule_end(b, l, msg);

	l = rule_begin(b, seq, CHAIN_DIVERT, &msg);
	e_payload(b, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
	e_mask32(b, lo_mask);
	e_cmp_eq(b, &lo_net, 4);
	e_verdict(b, NFT_RETURN);
	rule_end(b, l, msg);

	l = rule_begin(b, seq, CHAIN_DIVERT, &msg);
	e_fib_daddr_type(b);
	e_cmp_eq(b, &rtn_local, 4);
	e_verdict(b, NFT_RETURN);
	rule_end(b, l, msg);

	for (size_t i = 0; i < mt->nports; i++) {
		l = rule_begin(b, seq, CHAIN_DIVERT, &msg);
		e_meta_load(b, NFT_META_L4PROTO);
		e_cmp_eq(b, &udp, 1);
		e_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
		e_range16(b, mt->ports[i].lo, mt->ports[i].hi);
		if (mt->server_ip) {
			e_payload(b, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
			e_cmp_eq(b, &mt->server_ip, 4);
		}
		if (mt->server_port) {
			uint16_t p = htons(mt->server_port);
			e_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
			e_cmp_eq(b, &p, 2);
		}
		if (mt->cgroup_level) {
			e_socket_cgroupv2(b, mt->cgroup_level);
			e_cmp_eq(b, &mt->cgroup_id, 8);
		} else if (mt->by_uid) {
			e_meta_load(b, NFT_META_SKUID);
			e_cmp_eq(b, &mt->uid, 4);
		}
		e_counter(b);
		e_imm(b, NFT_REG_1, &k->divert_mark, 4);
		e_meta_set(b, NFT_META_MARK);
		rule_end(b, l, msg);
	}
}

static void tproxy_rule(struct ls_nlb *b, uint32_t *seq, const struct client_capture_kconf *k)
{
	size_t msg, l = rule_begin(b, seq, CHAIN_TPROXY, &msg);
	uint32_t lo_if = 1, loopback = htonl(INADDR_LOOPBACK);
	uint16_t port = htons(k->tproxy_port);
	uint8_t udp = IPPROTO_UDP;

	/* lo is interface 1 in every network namespace. */
	e_meta_load(b, NFT_META_IIF);
	e_cmp_eq(b, &lo_if, 4);
	e_meta_load(b, NFT_META_MARK);
	e_cmp_eq(b, &k->divert_mark, 4);
	e_meta_load(b, NFT_META_L4PROTO);
	e_cmp_eq(b, &udp, 1);
	e_counter(b);
	e_imm(b, NFT_REG_1, &loopback, 4);
	e_imm(b, NFT_REG_2, &port, 2);
	e_tproxy(b);
	rule_end(b, l, msg);
}

/* ---- the table's life ------------------------------------------------------------- */

struct probe {
	bool found;
	uint32_t flags, owner;
};

static void probe_cb(const struct nlmsghdr *h, void *ctx)
{
	struct probe *p = ctx;
	int len;
	const struct nlattr *start = ls_nl_attrs(h, sizeof(struct nfgenmsg), &len), *a = NULL;

	if (h->nlmsg_type != NFT_TYPE(NFT_MSG_NEWTABLE))
		return;
	p->found = true;
	while ((a = ls_nl_next(a, start, &len)) != NULL) {
		if (ls_nl_type(a) == NFTA_TABLE_FLAGS)
			p->flags = ls_nl_be32(a);
		else if (ls_nl_type(a) == NFTA_TABLE_OWNER)
			p->owner = ls_nl_be32(a);
	}
}

static int probe_fd(int fd, uint32_t *seq, struct probe *p)
{
	static struct ls_nlb b;
	size_t m;
	int rc;

	memset(p, 0, sizeof(*p));
	b.len = 0;
	b.full = false;
	b.n_ack = 0;
	m = ls_nlb_msg(&b, NFT_TYPE(NFT_MSG_GETTABLE), NLM_F_ACK, (*seq)++);
	ls_nlb_nfgen(&b, NFPROTO_IPV4, 0);
	ls_nlb_str(&b, NFTA_TABLE_NAME, CL_CAPTURE_TABLE);
	ls_nlb_end(&b, m);
	rc = ls_nl_talk(fd, &b, false, probe_cb, p, NULL);
	return rc == -ENOENT ? 0 : rc;
}

int client_capture_nft_probe(uint32_t *owner, char *err, size_t errlen)
{
	int fd = ls_nl_socket(NETLINK_NETFILTER, err, errlen), rc;
	uint32_t seq = 1;
	struct probe p;

	if (fd < 0)
		return -1;
	rc = probe_fd(fd, &seq, &p);
	close(fd);
	if (rc < 0) {
		snprintf(err, errlen, "reading nftables table %s: %s%s", CL_CAPTURE_TABLE, strerror(-rc),
			 rc == -EPERM ? " (capture mode needs CAP_NET_ADMIN)" : "");
		return -1;
	}
	if (owner)
		*owner = (p.flags & NFT_TABLE_F_OWNER) ? p.owner : 0;
	return p.found ? 1 : 0;
}

int client_capture_nft_delete_stale(char *err, size_t errlen)
{
	static struct ls_nlb b;
	uint32_t owner = 0, seq = 1;
	int found = client_capture_nft_probe(&owner, err, errlen), fd, rc;

	if (found <= 0)
		return found;
	if (owner) {
		snprintf(err, errlen,
			 "another lightspeed-client is capturing in this network namespace (it owns "
			 "nftables table ip %s through netlink port %u, normally its pid): stop it "
			 "first", CL_CAPTURE_TABLE, owner);
		return -1;
	}
	fd = ls_nl_socket(NETLINK_NETFILTER, err, errlen);
	if (fd < 0)
		return -1;
	ls_nlb_reset(&b);
	batch_begin(&b, &seq);
	msg_table(&b, &seq, NFT_MSG_DELTABLE, 0, false);
	batch_end(&b, &seq);
	rc = ls_nl_talk(fd, &b, false, NULL, NULL, NULL);
	close(fd);
	if (rc < 0 && rc != -ENOENT) {
		snprintf(err, errlen, "deleting the stale nftables table ip %s: %s", CL_CAPTURE_TABLE,
			 strerror(-rc));
		return -1;
	}
	return 0;
}

int client_capture_nft_open(struct client_capture_nft *n, char *err, size_t errlen)
{
	memset(n, 0, sizeof(*n));
	n->seq = 1;
	n->fd = ls_nl_socket(NETLINK_NETFILTER, err, errlen);
	return n->fd < 0 ? -1 : 0;
}

static const char *what_failed(uint32_t bad, uint32_t first_seq)
{
	/* Messages in the order install() sends them, after BATCH_BEGIN. */
	switch (bad - first_seq) {
	case 1: return "the table";
	case 2: return "the output chain (type route)";
	case 3: return "the prerouting chain";
	case 4: return "the TPROXY rule (kernel without nft_tproxy?)";
	default: return "a divert rule (kernel without nft socket/fib support?)";
	}
}

static int install(struct client_capture_nft *n, const struct client_capture_kconf *k,
		   const struct client_capture_match *m, bool owner, char *err, size_t errlen)
{
	static struct ls_nlb b;
	uint32_t first = n->seq, bad = 0;
	int rc;

	ls_nlb_reset(&b);
	batch_begin(&b, &n->seq);
	msg_table(&b, &n->seq, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, owner);
	msg_chain(&b, &n->seq, CHAIN_DIVERT, "route", NF_INET_LOCAL_OUT, NF_IP_PRI_MANGLE);
	msg_chain(&b, &n->seq, CHAIN_TPROXY, "filter", NF_INET_PRE_ROUTING, NF_IP_PRI_MANGLE);
	tproxy_rule(&b, &n->seq, k);
	divert_rules(&b, &n->seq, k, m);
	batch_end(&b, &n->seq);
	rc = ls_nl_talk(n->fd, &b, false, NULL, NULL, &bad);
	if (rc < 0) {
		snprintf(err, errlen, "nftables: %s: %s%s", what_failed(bad, first), strerror(-rc),
			 rc == -EPERM ? " (capture mode needs CAP_NET_ADMIN)" : "");
		return rc;
	}
	return 0;
}

int client_capture_nft_install(struct client_capture_nft *n, const struct client_capture_kconf *k,
			       const struct client_capture_match *m, char *err, size_t errlen)
{
	int rc;

	if (client_capture_nft_delete_stale(err, errlen) < 0)
		return -1;
	rc = install(n, k, m, true, err, errlen);
	/* Kernels before 5.12 refuse the owner flag: then the table outlives a killed
	 * client until the next start or --cleanup. */
	if (rc == -EOPNOTSUPP || rc == -EINVAL) {
		char first[256];
		snprintf(first, sizeof(first), "%s", err);
		if (install(n, k, m, false, err, errlen) == 0)
			return 0;
		snprintf(err, errlen, "%s", first);
		return -1;
	}
	n->owned = rc == 0;
	return rc < 0 ? -1 : 0;
}

int client_capture_nft_update(struct client_capture_nft *n, const struct client_capture_kconf *k,
			      const struct client_capture_match *m, char *err, size_t errlen)
{
	static struct ls_nlb b;
	size_t msg;
	int rc;

	ls_nlb_reset(&b);
	batch_begin(&b, &n->seq);
	/* A DELRULE naming only the chain flushes it; the new rules follow in the same
	 * transaction, so no datagram sees the chain empty. */
	msg = ls_nlb_msg(&b, NFT_TYPE(NFT_MSG_DELRULE), NLM_F_ACK, n->seq++);
	ls_nlb_nfgen(&b, NFPROTO_IPV4, 0);
	ls_nlb_str(&b, NFTA_RULE_TABLE, CL_CAPTURE_TABLE);
	ls_nlb_str(&b, NFTA_RULE_CHAIN, CHAIN_DIVERT);
	ls_nlb_end(&b, msg);
	divert_rules(&b, &n->seq, k, m);
	batch_end(&b, &n->seq);
	rc = ls_nl_talk(n->fd, &b, false, NULL, NULL, NULL);
	if (rc < 0) {
		snprintf(err, errlen, "nftables: replacing the divert rules: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/* The packets of a counter expression's data, added to *sum. */
static void counter_add(const struct nlattr *data, uint64_t *sum)
{
	int len;
	const struct nlattr *start = ls_nl_nested(data, &len), *c = NULL;
	uint64_t v;

	while ((c = ls_nl_next(c, start, &len)) != NULL)
		if (ls_nl_type(c) == NFTA_COUNTER_PACKETS && c->nla_len >= NLA_HDRLEN + 8) {
			memcpy(&v, ls_nl_data(c), 8);
			*sum += be64toh(v);
		}
}

/* Sum the packet counters of every rule of a dump of the divert chain. */
static void counter_cb(const struct nlmsghdr *h, void *ctx)
{
	int len, l1, l2;
	const struct nlattr *start = ls_nl_attrs(h, sizeof(struct nfgenmsg), &len), *a = NULL;

	if (h->nlmsg_type != NFT_TYPE(NFT_MSG_NEWRULE))
		return;
	while ((a = ls_nl_next(a, start, &len)) != NULL) {
		if (ls_nl_type(a) != NFTA_RULE_EXPRESSIONS)
			continue;
		const struct nlattr *s1 = ls_nl_nested(a, &l1), *el = NULL;
		while ((el = ls_nl_next(el, s1, &l1)) != NULL) {
			const struct nlattr *s2 = ls_nl_nested(el, &l2), *x = NULL;
			bool is_counter = false;
			while ((x = ls_nl_next(x, s2, &l2)) != NULL) {
				if (ls_nl_type(x) == NFTA_EXPR_NAME)
					is_counter = x->nla_len >= NLA_HDRLEN + 8 &&
						     memcmp(ls_nl_data(x), "counter", 8) == 0;
				else if (ls_nl_type(x) == NFTA_EXPR_DATA && is_counter)
					counter_add(x, ctx);
			}
		}
	}
}

int client_capture_nft_diverted(struct client_capture_nft *n, uint64_t *packets, char *err,
				size_t errlen)
{
	static struct ls_nlb b;
	size_t msg;
	int rc;

	*packets = 0;
	ls_nlb_reset(&b);
	msg = ls_nlb_msg(&b, NFT_TYPE(NFT_MSG_GETRULE), NLM_F_DUMP, n->seq++);
	ls_nlb_nfgen(&b, NFPROTO_IPV4, 0);
	ls_nlb_str(&b, NFTA_RULE_TABLE, CL_CAPTURE_TABLE);
	ls_nlb_str(&b, NFTA_RULE_CHAIN, CHAIN_DIVERT);
	ls_nlb_end(&b, msg);
	rc = ls_nl_talk(n->fd, &b, true, counter_cb, packets, NULL);
	if (rc < 0) {
		snprintf(err, errlen, "nftables: reading the divert counters: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

void client_capture_nft_close(struct client_capture_nft *n)
{
	static struct ls_nlb b;

	if (n->fd < 0)
		return;
	ls_nlb_reset(&b);
	batch_begin(&b, &n->seq);
	msg_table(&b, &n->seq, NFT_MSG_DELTABLE, 0, false);
	batch_end(&b, &n->seq);
	(void)ls_nl_talk(n->fd, &b, false, NULL, NULL, NULL);
	/* Closing the socket would delete an owned table anyway. */
	close(n->fd);
	n->fd = -1;
}

/* ---- policy routing --------------------------------------------------------------- */

static void rule_msg(struct ls_nlb *b, uint16_t type, uint16_t flags, const struct client_capture_kconf *k)
{
	size_t m = ls_nlb_msg(b, type, (uint16_t)(NLM_F_ACK | flags), 1);
	struct fib_rule_hdr *r = ls_nlb_put(b, sizeof(*r));

	if (r) {
		r->family = AF_INET;
		r->action = FR_ACT_TO_TBL;
		r->table = k->route_table < 256 ? (uint8_t)k->route_table : RT_TABLE_UNSPEC;
	}
	ls_nlb_u32(b, FRA_TABLE, k->route_table);
	ls_nlb_u32(b, FRA_FWMARK, k->divert_mark);
	ls_nlb_u32(b, FRA_FWMASK, 0xffffffffu);
	ls_nlb_u32(b, FRA_PRIORITY, k->rule_pref);
	ls_nlb_end(b, m);
}

static void route_msg(struct ls_nlb *b, uint16_t type, uint16_t flags, const struct client_capture_kconf *k)
{
	size_t m = ls_nlb_msg(b, type, (uint16_t)(NLM_F_ACK | flags), 2);
	struct rtmsg *r = ls_nlb_put(b, sizeof(*r));

	if (r) {
		r->rtm_family = AF_INET;
		r->rtm_table = RT_TABLE_UNSPEC;
		r->rtm_protocol = RTPROT_BOOT;
		r->rtm_scope = RT_SCOPE_HOST;
		r->rtm_type = RTN_LOCAL;
	}
	ls_nlb_u32(b, RTA_TABLE, k->route_table);
	ls_nlb_u32(b, RTA_OIF, 1); /* lo */
	ls_nlb_end(b, m);
}

static int route_talk(struct ls_nlb *b, char *err, size_t errlen, int *rc_out)
{
	int fd = ls_nl_socket(NETLINK_ROUTE, err, errlen);

	if (fd < 0)
		return -1;
	*rc_out = ls_nl_talk(fd, b, false, NULL, NULL, NULL);
	close(fd);
	return 0;
}

int client_capture_nft_route_add(const struct client_capture_kconf *k, char *err, size_t errlen)
{
	static struct ls_nlb b;
	int rc;

	ls_nlb_reset(&b);
	route_msg(&b, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, k);
	if (route_talk(&b, err, errlen, &rc) < 0)
		return -1;
	if (rc < 0) {
		snprintf(err, errlen, "ip route add local 0.0.0.0/0 dev lo table %u: %s%s",
			 k->route_table, strerror(-rc),
			 rc == -EPERM ? " (capture mode needs CAP_NET_ADMIN)" : "");
		return -1;
	}
	ls_nlb_reset(&b);
	rule_msg(&b, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, k);
	if (route_talk(&b, err, errlen, &rc) < 0)
		return -1;
	if (rc < 0 && rc != -EEXIST) {
		snprintf(err, errlen, "ip rule add fwmark 0x%x lookup %u pref %u: %s", k->divert_mark,
			 k->route_table, k->rule_pref, strerror(-rc));
		return -1;
	}
	return 0;
}

int client_capture_nft_route_del(const struct client_capture_kconf *k, char *err, size_t errlen)
{
	static struct ls_nlb b;
	int rc;

	/* Every copy of the rule (a crashed run's and this one's). */
	for (int i = 0; i < 16; i++) {
		ls_nlb_reset(&b);
		rule_msg(&b, RTM_DELRULE, 0, k);
		if (route_talk(&b, err, errlen, &rc) < 0)
			return -1;
		if (rc == -ENOENT)
			break;
		if (rc < 0) {
			snprintf(err, errlen, "ip rule del fwmark 0x%x lookup %u: %s%s", k->divert_mark,
				 k->route_table, strerror(-rc),
				 rc == -EPERM ? " (capture mode needs CAP_NET_ADMIN)" : "");
			return -1;
		}
	}
	ls_nlb_reset(&b);
	route_msg(&b, RTM_DELROUTE, 0, k);
	if (route_talk(&b, err, errlen, &rc) < 0)
		return -1;
	if (rc < 0 && rc != -ESRCH && rc != -ENOENT) {
		snprintf(err, errlen, "ip route del local 0.0.0.0/0 table %u: %s", k->route_table,
			 strerror(-rc));
		return -1;
	}
	return 0;
}
