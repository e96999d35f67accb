/* Netlink requests (see nlmsg.h). */
#include "nlmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

void ls_nlb_reset(struct ls_nlb *b)
{
	b->len = 0;
	b->full = false;
	b->n_ack = 0;
}

void *ls_nlb_put(struct ls_nlb *b, size_t len)
{
	size_t al = NLMSG_ALIGN(len);
	void *p;

	if (b->full || b->len + al > sizeof(b->buf)) {
		b->full = true;
		return NULL;
	}
	p = b->buf + b->len;
	memset(p, 0, al);
	b->len += al;
	return p;
}

size_t ls_nlb_msg(struct ls_nlb *b, uint16_t type, uint16_t flags, uint32_t seq)
{
	size_t off = b->len;
	struct nlmsghdr *h = ls_nlb_put(b, sizeof(*h));

	if (h) {
		h->nlmsg_type = type;
		h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
		h->nlmsg_seq = seq;
		if (flags & NLM_F_ACK)
			b->n_ack++;
	}
	return off;
}

void ls_nlb_end(struct ls_nlb *b, size_t msg)
{
	if (!b->full)
		((struct nlmsghdr *)(b->buf + msg))->nlmsg_len = (uint32_t)(b->len - msg);
}

void ls_nlb_nfgen(struct ls_nlb *b, uint8_t family, uint16_t res_id)
{
	struct nfgenmsg *g = ls_nlb_put(b, sizeof(*g));

	if (g) {
		g->nfgen_family = family;
		g->version = NFNETLINK_V0;
		g->res_id = htons(res_id);
	}
}

void ls_nlb_attr(struct ls_nlb *b, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = ls_nlb_put(b, NLA_HDRLEN + len);

	if (a) {
		a->nla_type = type;
		a->nla_len = (uint16_t)(NLA_HDRLEN + len);
		memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
	}
}

void ls_nlb_be32(struct ls_nlb *b, uint16_t type, uint32_t v)
{
	uint32_t be = htonl(v);

	ls_nlb_attr(b, type, &be, sizeof(be));
}

void ls_nlb_u32(struct ls_nlb *b, uint16_t type, uint32_t v)
{
	ls_nlb_attr(b, type, &v, sizeof(v));
}

void ls_nlb_str(struct ls_nlb *b, uint16_t type, const char *s)
{
	ls_nlb_attr(b, type, s, strlen(s) + 1);
}

size_t ls_nlb_nest(struct ls_nlb *b, uint16_t type)
{
	size_t off = b->len;
	struct nlattr *a = ls_nlb_put(b, NLA_HDRLEN);

	if (a)
		a->nla_type = (uint16_t)(type | NLA_F_NESTED);
	return off;
}

void ls_nlb_nest_end(struct ls_nlb *b, size_t nest)
{
	if (!b->full)
		((struct nlattr *)(b->buf + nest))->nla_len = (uint16_t)(b->len - nest);
}

int ls_nl_socket(int proto, char *err, size_t errlen)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = 2 };

	if (fd < 0) {
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "netlink bind: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int ls_nl_talk(int fd, struct ls_nlb *b, bool dump, ls_nl_cb cb, void *ctx, uint32_t *bad)
{
	static uint8_t rx[LS_NL_BUF * 2];
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	unsigned acks = 0;
	int first = 0;

	if (b->full)
		return -EMSGSIZE;
	if (sendto(fd, b->buf, b->len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	while (dump || acks < b->n_ack) {
		ssize_t n = recv(fd, rx, sizeof(rx), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return first ? first : -errno;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)rx; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return first;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					return first ? first : -EPROTO;
				acks++;
				if (e->error && !first) {
					first = e->error;
					if (bad)
						*bad = e->msg.nlmsg_seq;
				}
				if (dump && e->error)
					return first;
				continue;
			}
			if (cb)
				cb(h, ctx);
		}
	}
	return first;
}

const struct nlattr *ls_nl_attrs(const struct nlmsghdr *h, size_t hdrlen, int *len)
{
	*len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(hdrlen);
	return (const struct nlattr *)((const uint8_t *)NLMSG_DATA(h) + NLMSG_ALIGN(hdrlen));
}

const struct nlattr *ls_nl_nested(const struct nlattr *a, int *len)
{
	*len = a->nla_len - NLA_HDRLEN;
	return (const struct nlattr *)((const uint8_t *)a + NLA_HDRLEN);
}

const struct nlattr *ls_nl_next(const struct nlattr *a, const struct nlattr *start, int *len)
{
	if (a) {
		*len -= NLA_ALIGN(a->nla_len);
		a = (const struct nlattr *)((const uint8_t *)a + NLA_ALIGN(a->nla_len));
	} else {
		a = start;
	}
	if (*len < (int)NLA_HDRLEN || a->nla_len < NLA_HDRLEN || a->nla_len > *len)
		return NULL;
	return a;
}

const void *ls_nl_data(const struct nlattr *a)
{
	return (const uint8_t *)a + NLA_HDRLEN;
}

uint16_t ls_nl_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

uint32_t ls_nl_u32(const struct nlattr *a)
{
	uint32_t v = 0;

	if (a->nla_len >= NLA_HDRLEN + 4)
		memcpy(&v, ls_nl_data(a), 4);
	return v;
}

uint32_t ls_nl_be32(const struct nlattr *a)
{
	return ntohl(ls_nl_u32(a));
}
