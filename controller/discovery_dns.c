/* lightspeed-controller: nodes found in DNS (discovery.h), through c-ares on the loop:
 * its sockets watched by uv_poll, its timeouts by a uv_timer, never a blocking call. */
#include "discovery.h"

#include <arpa/inet.h>
#include <ares.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "log.h"
#include "util.h"

#define T_A_   1
#define T_TXT_ 16
#define T_SRV_ 33
#define C_IN_  1
#define MAX_TARGETS 16
#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ---- configuration ---------------------------------------------------------------- */

void discovery_conf_defaults(struct discovery_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->dns_retry_ms = 5000;
	c->dns_min_ttl_s = 1;
	c->dns_max_ttl_s = 3600;
	c->peers = true;
}

static int parse_domain(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (v->type != LS_CV_STRING || strlen(v->u.s) >= 254) {
		snprintf(err, errlen, "must be a domain name (\"example.net\") or \"\"");
		return -1;
	}
	for (const char *p = v->u.s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '-' || *p == '_')) {
			snprintf(err, errlen, "must be a domain name (letters, digits, '.', '-')");
			return -1;
		}
	snprintf(dst, 254, "%s", v->u.s);
	return 0;
}

static int parse_server(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct sockaddr_in a;
	char msg[128], buf[80];

	if (v->type != LS_CV_STRING || strlen(v->u.s) >= 64) {
		snprintf(err, errlen, "must be \"IP\" or \"IP:PORT\" or \"\"");
		return -1;
	}
	snprintf(buf, sizeof(buf), strchr(v->u.s, ':') ? "%s" : "%s:53", v->u.s);
	if (v->u.s[0] && ls_hostport_parse(buf, &a, false, false, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "must be \"IP\" or \"IP:PORT\": %s", msg);
		return -1;
	}
	snprintf(dst, 64, "%s", v->u.s);
	return 0;
}

static int parse_u32(const struct ls_cv *v, void *dst, int64_t min, int64_t max, char *err,
		     size_t errlen)
{
	if (v->type != LS_CV_INT || v->u.i < min || v->u.i > max) {
		snprintf(err, errlen, "must be an integer in %lld..%lld", (long long)min, (long long)max);
		return -1;
	}
	*(uint32_t *)dst = (uint32_t)v->u.i;
	return 0;
}

static int parse_retry(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return parse_u32(v, dst, 100, 600000, err, errlen);
}

static int parse_ttl(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return parse_u32(v, dst, 1, 86400, err, errlen);
}

static int parse_flag(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (v->type != LS_CV_BOOL) {
		snprintf(err, errlen, "must be true or false");
		return -1;
	}
	*(bool *)dst = v->u.b;
	return 0;
}

#define DF(key, member, parse)                                                             \
	{ key, LS_CF_CUSTOM, offsetof(struct discovery_conf, member),                      \
	  sizeof(((struct discovery_conf *)0)->member), 0, 0, parse }
const struct ls_conf_field discovery_conf_fields[] = {
	DF("dns", dns_domain, parse_domain),
	DF("dns_server", dns_server, parse_server),
	DF("dns_retry_ms", dns_retry_ms, parse_retry),
	DF("dns_min_ttl_s", dns_min_ttl_s, parse_ttl),
	DF("dns_max_ttl_s", dns_max_ttl_s, parse_ttl),
	DF("peers", peers, parse_flag),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

void discovery_conf_print(const struct discovery_conf *c, FILE *f)
{
	fprintf(f, "\n[discovery]\ndns = \"%s\"%s\ndns_server = \"%s\"%s\n", c->dns_domain,
		c->dns_domain[0] ? "" : "   # off", c->dns_server,
		c->dns_server[0] ? "" : "   # the system's resolver");
	fprintf(f, "dns_retry_ms = %u\ndns_min_ttl_s = %u\ndns_max_ttl_s = %u\npeers = %s\n",
		c->dns_retry_ms, c->dns_min_ttl_s, c->dns_max_ttl_s, c->peers ? "true" : "false");
}

/* ---- pure parts ------------------------------------------------------------------- */

int discovery_name_from_host(const char *host, char name[LS_CTL_NAME_MAX + 1])
{
	size_t n = 0;

	for (const char *p = host; *p && *p != '.' && n < LS_CTL_NAME_MAX; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '_' || *p == '-')
			name[n++] = *p;
	name[n] = '\0';
	return n ? 0 : -1;
}

int discovery_txt_parse(const char *const *strs, const size_t *lens, size_t n,
			struct discovered *d, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		char s[256];
		size_t k = lens[i] < sizeof(s) - 1 ? lens[i] : sizeof(s) - 1;
		char *eq;

		memcpy(s, strs[i], k);
		s[k] = '\0';
		if (strlen(s) != k || !(eq = strchr(s, '=')))
			continue; /* not ours (a NUL inside, or no key=value): ignored */
		*eq++ = '\0';
		if (strcasecmp(s, "control") == 0) {
			uint64_t port;

			if (ls_parse_u64(eq, 65535, &port) < 0 || port == 0) {
				snprintf(err, errlen, "TXT control=%.16s is not a port", eq);
				return -1;
			}
			d->control_port = (uint16_t)port;
		} else if (strcasecmp(s, "fingerprint") == 0) {
			if (ls_ctl_fp_parse(eq, d->fp) < 0) {
				snprintf(err, errlen, "TXT fingerprint= is not sha256:HEX");
				return -1;
			}
			d->has_fp = true;
		} else if (strcasecmp(s, "region") == 0) {
			if (!ls_ctl_name_ok(eq)) {
				snprintf(err, errlen, "TXT region= is not a name");
				return -1;
			}
			snprintf(d->region, sizeof(d->region), "%s", eq);
		}
	}
	return 0;
}

/* A name in a message (possibly compressed): skip it. The new offset or -1. */
static long skip_name(const uint8_t *m, size_t len, size_t off)
{
	for (unsigned guard = 0; guard < 128; guard++) {
		uint8_t l;

		if (off >= len)
			return -1;
		l = m[off];
		if (l == 0)
			return (long)off + 1;
		if ((l & 0xc0) == 0xc0)
			return off + 2 <= len ? (long)off + 2 : -1;
		if (l & 0xc0)
			return -1;
		off += 1u + l;
	}
	return -1;
}

int64_t discovery_answer_ttl(const uint8_t *m, size_t len)
{
	unsigned qd, an;
	size_t off = 12;
	int64_t ttl = -1;

	if (len < 12)
		return -1;
	qd = (unsigned)(m[4] << 8 | m[5]);
	an = (unsigned)(m[6] << 8 | m[7]);
	for (unsigned i = 0; i < qd; i++) {
		long o = skip_name(m, len, off);

		if (o < 0 || (size_t)o + 4 > len)
			return -1;
		off = (size_t)o + 4;
	}
	for (unsigned i = 0; i < an; i++) {
		long o = skip_name(m, len, off);
		uint32_t t;
		size_t rdlen;

		if (o < 0 || (size_t)o + 10 > len)
			return -1;
		off = (size_t)o;
		t = (uint32_t)m[off + 4] << 24 | (uint32_t)m[off + 5] << 16 | (uint32_t)m[off + 6] << 8 |
		    m[off + 7];
		rdlen = (size_t)(m[off + 8] << 8 | m[off + 9]);
		if (off + 10 + rdlen > len)
			return -1;
		off += 10 + rdlen;
		if (ttl < 0 || t < ttl)
			ttl = t;
	}
	return ttl;
}

/* ---- c-ares on the loop ------------------------------------------------------------ */

struct dns_sock {
	uv_poll_t poll;
	ares_socket_t fd;
	struct discovery_dns *d;
	struct dns_sock *next;
};

/* One SRV target being completed by its TXT and A answers. */
struct target {
	struct discovery_dns *d;
	unsigned round;
	struct discovered found;
	char host[256];
	int pending;          /* answers awaited */
	bool bad;
	struct target *next;
};

struct discovery_dns {
	uv_loop_t *loop;
	struct discovery_conf conf;
	discovery_found_fn found;
	void *ctx;
	ares_channel chan;
	bool chan_ok;
	uv_timer_t ares_timer;    /* c-ares's own timeouts */
	uv_timer_t requery;       /* the TTL */
	unsigned handles;         /* open uv handles (the memory goes with the last) */
	struct dns_sock *socks;
	struct target *targets;
	unsigned round;           /* queries in flight belong to this round */
	bool closing;
	struct discovery_dns_stats st;
	struct ls_ratelog rl;
};

static void maybe_free(struct discovery_dns *d)
{
	if (d->closing && d->handles == 0 && !d->targets)
		free(d);
}

static void handle_closed(uv_handle_t *h)
{
	struct discovery_dns *d = h->data;

	if (h->type == UV_POLL)
		free(container_of((uv_poll_t *)h, struct dns_sock, poll));
	d->handles--;
	maybe_free(d);
}

static void on_ares_timer(uv_timer_t *t);

static void arm_ares_timer(struct discovery_dns *d)
{
	struct timeval tv, *t;

	if (d->closing || !d->chan_ok)
		return;
	t = ares_timeout(d->chan, NULL, &tv);
	if (!t) {
		uv_timer_stop(&d->ares_timer);
		return;
	}
	uv_timer_start(&d->ares_timer, on_ares_timer,
		       (uint64_t)t->tv_sec * 1000u + (uint64_t)t->tv_usec / 1000u + 1, 0);
}

static void on_ares_timer(uv_timer_t *t)
{
	struct discovery_dns *d = t->data;

	if (d->chan_ok)
		ares_process_fd(d->chan, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_ares_timer(d);
}

static void on_sock(uv_poll_t *p, int status, int events)
{
	struct dns_sock *s = container_of(p, struct dns_sock, poll);
	struct discovery_dns *d = s->d;
	ares_socket_t fd = s->fd;

	if (status < 0) {
		/* Let c-ares see the error (it closes or retries the socket). */
		ares_process_fd(d->chan, fd, fd);
	} else {
		ares_process_fd(d->chan, (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
				(events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
	}
	arm_ares_timer(d);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct discovery_dns *d = data;
	struct dns_sock **pp = &d->socks, *s;

	while (*pp && (*pp)->fd != fd)
		pp = &(*pp)->next;
	s = *pp;
	if (!readable && !writable) {
		if (s) {
			*pp = s->next;
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, handle_closed);
		}
		return;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return;
		s->fd = fd;
		s->d = d;
		if (uv_poll_init_socket(d->loop, &s->poll, fd) != 0) {
			free(s);
			return;
		}
		s->poll.data = d;
		d->handles++;
		s->next = d->socks;
		d->socks = s;
	}
	uv_poll_start(&s->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_sock);
}

static void query(struct discovery_dns *d);

static void on_requery(uv_timer_t *t)
{
	query(t->data);
}

static void round_done(struct discovery_dns *d, bool ok, uint32_t ttl)
{
	uint32_t ms;

	if (d->closing)
		return;
	if (ok) {
		if (ttl < d->conf.dns_min_ttl_s)
			ttl = d->conf.dns_min_ttl_s;
		if (ttl > d->conf.dns_max_ttl_s)
			ttl = d->conf.dns_max_ttl_s;
		d->st.ttl_s = ttl;
		ms = ttl * 1000u;
	} else {
		ms = d->conf.dns_retry_ms;
	}
	uv_timer_start(&d->requery, on_requery, ms, 0);
}

static void target_free(struct target *t)
{
	struct discovery_dns *d = t->d;
	struct target **pp = &d->targets;

	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp)
		*pp = t->next;
	free(t);
	maybe_free(d);
}

static void target_answered(struct target *t)
{
	struct discovery_dns *d = t->d;

	if (--t->pending > 0)
		return;
	if (!d->closing && !t->bad && t->round == d->round && t->found.addr.sin_addr.s_addr) {
		if (!t->found.control_port) {
			ls_warn_rl(&d->rl, "DNS: %s has no TXT control=PORT: not an agent's node, "
				   "skipped", t->host);
		} else {
			d->st.found++;
			d->found(d->ctx, &t->found);
		}
	}
	target_free(t);
}

static void on_txt(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct target *t = arg;
	struct ares_txt_ext *txt = NULL;
	char err[160];

	(void)timeouts;
	if (status == ARES_SUCCESS && ares_parse_txt_reply_ext(abuf, alen, &txt) == ARES_SUCCESS) {
		const char *strs[32];
		size_t lens[32], n = 0;

		for (struct ares_txt_ext *x = txt; x && n < 32; x = x->next) {
			strs[n] = (const char *)x->txt;
			lens[n++] = x->length;
		}
		if (discovery_txt_parse(strs, lens, n, &t->found, err, sizeof(err)) < 0) {
			ls_warn_rl(&t->d->rl, "DNS: %s: %s: skipped", t->host, err);
			t->bad = true;
		}
		ares_free_data(txt);
	}
	target_answered(t);
}

static void on_a(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct target *t = arg;
	struct ares_addrttl ttls[4];
	int n = 4;
	struct hostent *he = NULL;

	(void)timeouts;
	if (status == ARES_SUCCESS &&
	    ares_parse_a_reply(abuf, alen, &he, ttls, &n) == ARES_SUCCESS && n > 0)
		t->found.addr.sin_addr = ttls[0].ipaddr;
	if (he)
		ares_free_hostent(he);
	target_answered(t);
}

static void on_srv(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct discovery_dns *d = arg;
	struct ares_srv_reply *srv = NULL;
	int64_t ttl;
	unsigned n = 0;

	(void)timeouts;
	if (d->closing)
		return;
	if (status != ARES_SUCCESS || ares_parse_srv_reply(abuf, alen, &srv) != ARES_SUCCESS) {
		d->st.failures++;
		snprintf(d->st.last_error, sizeof(d->st.last_error), "_lightspeed._udp.%s: %s",
			 d->conf.dns_domain, ares_strerror(status != ARES_SUCCESS ? status : ARES_EBADRESP));
		ls_warn_rl(&d->rl, "DNS discovery: %s (asking again in %u ms)", d->st.last_error,
			   d->conf.dns_retry_ms);
		round_done(d, false, 0);
		return;
	}
	d->st.answers++;
	d->st.last_error[0] = '\0';
	ttl = discovery_answer_ttl(abuf, (size_t)alen);
	for (struct ares_srv_reply *r = srv; r && n < MAX_TARGETS; r = r->next, n++) {
		struct target *t = calloc(1, sizeof(*t));

		if (!t)
			break;
		t->d = d;
		t->round = d->round;
		snprintf(t->host, sizeof(t->host), "%s", r->host);
		if (discovery_name_from_host(r->host, t->found.name) < 0 || r->port == 0) {
			free(t);
			continue;
		}
		t->found.addr.sin_family = AF_INET;
		t->found.addr.sin_port = htons(r->port);
		t->pending = 2;
		t->next = d->targets;
		d->targets = t;
		ares_query(d->chan, r->host, C_IN_, T_TXT_, on_txt, t);
		ares_query(d->chan, r->host, C_IN_, T_A_, on_a, t);
	}
	ares_free_data(srv);
	round_done(d, true, ttl < 0 ? d->conf.dns_max_ttl_s : (uint32_t)ttl);
	arm_ares_timer(d);
}

static void query(struct discovery_dns *d)
{
	char name[300];

	if (d->closing)
		return;
	d->round++;
	d->st.queries++;
	snprintf(name, sizeof(name), "_lightspeed._udp.%s", d->conf.dns_domain);
	ares_query(d->chan, name, C_IN_, T_SRV_, on_srv, d);
	arm_ares_timer(d);
}

struct discovery_dns *discovery_dns_open(uv_loop_t *loop, const struct discovery_conf *conf,
					 discovery_found_fn found, void *ctx, char *err,
					 size_t errlen)
{
	struct discovery_dns *d = calloc(1, sizeof(*d));
	struct ares_options o;
	int rv;

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->loop = loop;
	d->conf = *conf;
	d->found = found;
	d->ctx = ctx;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = sock_state;
	o.sock_state_cb_data = d;
	o.timeout = 2000;
	o.tries = 2;
	if ((rv = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS ||
	    (rv = ares_init_options(&d->chan, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
						      ARES_OPT_TRIES)) != ARES_SUCCESS) {
		snprintf(err, errlen, "DNS (c-ares): %s", ares_strerror(rv));
		free(d);
		return NULL;
	}
	d->chan_ok = true;
	if (conf->dns_server[0] &&
	    (rv = ares_set_servers_ports_csv(d->chan, conf->dns_server)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns_server %s: %s", conf->dns_server, ares_strerror(rv));
		ares_destroy(d->chan);
		free(d);
		return NULL;
	}
	uv_timer_init(loop, &d->ares_timer);
	uv_timer_init(loop, &d->requery);
	d->ares_timer.data = d->requery.data = d;
	d->handles = 2;
	ls_info("DNS discovery: _lightspeed._udp.%s via %s", conf->dns_domain,
		conf->dns_server[0] ? conf->dns_server : "the system's resolver");
	query(d);
	return d;
}

void discovery_dns_refresh(struct discovery_dns *d)
{
	uv_timer_stop(&d->requery);
	query(d);
}

void discovery_dns_get_stats(const struct discovery_dns *d, struct discovery_dns_stats *st)
{
	*st = d->st;
}

void discovery_dns_close(struct discovery_dns *d)
{
	if (!d)
		return;
	d->closing = true;
	/* Answers in flight are called with ARES_EDESTRUCTION (targets freed there);
	 * sockets are given back through sock_state. */
	ares_destroy(d->chan);
	d->chan_ok = false;
	uv_close((uv_handle_t *)&d->ares_timer, handle_closed);
	uv_close((uv_handle_t *)&d->requery, handle_closed);
}
