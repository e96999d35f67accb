/* ls-netsim: a UDP middlebox that impairs traffic (loss, burst loss, delay, jitter,
 * reordering, duplication, rate limits) for the tests and benchmarks, on machines
 * without tc netem. One epoll loop; a timerfd drives the delay queue; a steering
 * socket answers "stats" and "set"; the final counters go to stdout as one JSON line.
 * See tests/netsim/README.md. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "impair.h"
#include "log.h"
#include "queue.h"
#include "spec.h"
#include "steer.h"
#include "util.h"

#define DIR_UP 0
#define DIR_DOWN 1

#define MAX_CLIENTS 4096
#define CLIENT_HASH 8192 /* buckets, a power of two */
#define RX_BATCH 64      /* datagrams read from one socket before looking at the others */
#define SOCK_BUF (4 << 20)
#define NONE (-1)

/* epoll tags in the upper half of data.u64; a client's index in the lower half. */
enum { TAG_LISTEN = 1, TAG_CLIENT, TAG_TIMER, TAG_SIGNAL, TAG_STEER };

struct client {
	bool used;
	int fd; /* connected to the upstream */
	uint32_t gen;
	struct sockaddr_in addr;
	uint64_t last_ns; /* last traffic either way, for choosing whom to evict */
	int32_t next;     /* hash chain */
	int32_t held[2];  /* per direction: the packet held back for reordering */
	uint64_t last_t[2]; /* latest send time scheduled, for `order` */
	uint32_t ovfl;      /* SO_RXQ_OVFL count last seen on fd */
};

struct netsim {
	int ep, lfd, tfd, sfd;
	struct sockaddr_in listen_addr, upstream;
	uint64_t seed;
	struct ns_dir dir[2];
	struct ns_queue q;
	uint64_t armed_t; /* what the timerfd is set to; 0 when disarmed */
	uint32_t lfd_ovfl; /* SO_RXQ_OVFL count last seen on lfd */
	struct client clients[MAX_CLIENTS];
	int32_t hash[CLIENT_HASH];
	uint32_t nclients;
	uint64_t clients_total, clients_evicted;
	struct ls_steer *steer;
	struct ls_ratelog rl;
	uint8_t rx[NS_SLOT_LARGE];
	bool stop;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t addr_hash(const struct sockaddr_in *a)
{
	uint64_t k = ((uint64_t)a->sin_addr.s_addr << 16) ^ a->sin_port;

	k *= 0x9e3779b97f4a7c15u;
	return (uint32_t)(k >> 40) & (CLIENT_HASH - 1);
}

static int32_t client_find(struct netsim *ns, const struct sockaddr_in *a)
{
	for (int32_t i = ns->hash[addr_hash(a)]; i != NONE; i = ns->clients[i].next) {
		struct client *c = &ns->clients[i];
		if (c->addr.sin_addr.s_addr == a->sin_addr.s_addr && c->addr.sin_port == a->sin_port)
			return i;
	}
	return NONE;
}

static void client_drop(struct netsim *ns, int32_t i)
{
	struct client *c = &ns->clients[i];
	int32_t *pp = &ns->hash[addr_hash(&c->addr)];

	while (*pp != i)
		pp = &ns->clients[*pp].next;
	*pp = c->next;
	epoll_ctl(ns->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	/* Packets still queued for it carry the old generation and are dropped as they
	 * come due; a held one is then no longer anybody's. */
	c->used = false;
	c->gen++;
	ns->nclients--;
}

static void sock_setup(int fd)
{
	int v = SOCK_BUF, one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	/* Bursts from a blaster must not be lost in our own socket before we count them;
	 * FORCE works as root, the plain option up to the system maximum otherwise. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

/* The client slot for a source address, creating it (and its upstream socket) on first
 * sight; when the table is full the least recently active client makes room. */
static int32_t client_get(struct netsim *ns, const struct sockaddr_in *a, uint64_t now)
{
	int32_t i = client_find(ns, a);
	char buf[LS_ADDRSTRLEN];

	if (i != NONE)
		return i;
	if (ns->nclients == MAX_CLIENTS) {
		int32_t lru = 0;
		for (int32_t k = 1; k < MAX_CLIENTS; k++)
			if (ns->clients[k].last_ns < ns->clients[lru].last_ns)
				lru = k;
		client_drop(ns, lru);
		ns->clients_evicted++;
	}
	for (i = 0; i < MAX_CLIENTS && ns->clients[i].used; i++)
		;
	/* Blocking on purpose: we only ever read with MSG_DONTWAIT, and a send that waits
	 * a moment for socket buffer space beats losing a packet the counters call sent. */
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ls_warn_rl(&ns->rl, "socket for client %s: %s", ls_addr_fmt(a, buf), strerror(errno));
		return NONE;
	}
	sock_setup(fd);
	if (connect(fd, (const struct sockaddr *)&ns->upstream, sizeof(ns->upstream)) != 0) {
		ls_warn_rl(&ns->rl, "connect to upstream: %s", strerror(errno));
		close(fd);
		return NONE;
	}
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = ((uint64_t)TAG_CLIENT << 32) | (uint32_t)i };
	if (epoll_ctl(ns->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		return NONE;
	}
	struct client *c = &ns->clients[i];
	c->used = true;
	c->fd = fd;
	c->addr = *a;
	c->last_ns = now;
	c->held[0] = c->held[1] = NONE;
	c->last_t[0] = c->last_t[1] = 0;
	c->ovfl = 0;
	c->next = ns->hash[addr_hash(a)];
	ns->hash[addr_hash(a)] = i;
	ns->nclients++;
	ns->clients_total++;
	ls_debug("new client %s (%u now)", ls_addr_fmt(a, buf), ns->nclients);
	return i;
}

static void schedule(struct netsim *ns, int32_t slot)
{
	ns->dir[ns->q.pkts[slot].dir].c.queued++;
	ns_queue_push(&ns->q, slot);
}

/* One datagram from the client (up) or the upstream (down) of client ci. */
static void on_packet(struct netsim *ns, int dirn, int32_t ci, const uint8_t *data, size_t len,
		      uint64_t now)
{
	struct ns_dir *d = &ns->dir[dirn];
	struct client *c = &ns->clients[ci];
	struct ns_verdict v;
	struct ns_pkt *p;
	int32_t slot, held;
	uint64_t t;

	d->c.received++;
	d->c.bytes_received += len;
	c->last_ns = now;
	ns_dir_decide(d, now, len, &v);
	if (v.fate != NS_PASS)
		return;
	t = v.t_ns;
	if (d->spec.order && t < c->last_t[dirn])
		t = c->last_t[dirn];
	if (t > c->last_t[dirn])
		c->last_t[dirn] = t;

	slot = ns_queue_alloc(&ns->q, len);
	if (slot < 0) {
		d->c.queue_full++;
		return;
	}
	p = &ns->q.pkts[slot];
	memcpy(p->data, data, len);
	p->len = (uint32_t)len;
	p->t = t;
	p->dir = (uint8_t)dirn;
	p->client = (uint32_t)ci;
	p->gen = c->gen;
	if (t > now)
		d->c.delayed++;

	held = c->held[dirn];
	if (held != NONE) {
		/* This is the successor the held packet waited for: it leaves right after
		 * this one (same time, later order). The successor itself is not held. */
		struct ns_pkt *h = &ns->q.pkts[held];
		schedule(ns, slot);
		ns_queue_remove(&ns->q, held);
		d->c.queued--;
		h->t = t;
		h->flags &= (uint8_t)~NS_PKT_HELD;
		schedule(ns, held);
		c->held[dirn] = NONE;
		d->c.reordered++;
	} else if (v.hold) {
		p->t = t + d->spec.reorder_hold_ns;
		p->flags |= NS_PKT_HELD;
		c->held[dirn] = slot;
		schedule(ns, slot);
	} else {
		schedule(ns, slot);
	}

	if (v.dup) {
		int32_t ds = ns_queue_alloc(&ns->q, len);
		d->c.duplicated++;
		if (ds < 0) {
			d->c.queue_full++;
			return;
		}
		struct ns_pkt *q = &ns->q.pkts[ds];
		memcpy(q->data, data, len);
		q->len = (uint32_t)len;
		q->t = t;
		q->dir = (uint8_t)dirn;
		q->client = (uint32_t)ci;
		q->gen = c->gen;
		schedule(ns, ds);
	}
}

static void send_pkt(struct netsim *ns, int32_t slot)
{
	struct ns_pkt *p = &ns->q.pkts[slot];
	struct ns_dir *d = &ns->dir[p->dir];
	struct client *c = &ns->clients[p->client];
	ssize_t n;

	d->c.queued--;
	if (!c->used || c->gen != p->gen) {
		d->c.send_errors++; /* its client was evicted meanwhile */
		return;
	}
	if ((p->flags & NS_PKT_HELD) && c->held[p->dir] == slot)
		c->held[p->dir] = NONE; /* nothing followed in time: it goes unreordered */
	do {
		if (p->dir == DIR_UP)
			n = send(c->fd, p->data, p->len, MSG_NOSIGNAL);
		else
			n = sendto(ns->lfd, p->data, p->len, MSG_NOSIGNAL,
				   (const struct sockaddr *)&c->addr, sizeof(c->addr));
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		d->c.send_errors++;
		ls_warn_rl(&ns->rl, "send %s: %s", d->name, strerror(errno));
		return;
	}
	d->c.sent++;
	d->c.bytes_sent += p->len;
}

/* Send everything due by now, in (time, order) order. */
static void flush_due(struct netsim *ns, uint64_t now)
{
	int32_t top;

	while ((top = ns_queue_top(&ns->q)) >= 0 && ns->q.pkts[top].t <= now) {
		ns_queue_remove(&ns->q, top);
		send_pkt(ns, top);
		ns_queue_release(&ns->q, top);
	}
}

static void arm_timer(struct netsim *ns)
{
	int32_t top = ns_queue_top(&ns->q);
	uint64_t t = top >= 0 ? ns->q.pkts[top].t : 0;
	struct itimerspec its;

	if (t == ns->armed_t)
		return;
	/* t == 0 (empty queue) gives an all-zero it_value, which disarms. */
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(t / 1000000000u);
	its.it_value.tv_nsec = (long)(t % 1000000000u);
	timerfd_settime(ns->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	ns->armed_t = t;
}

/* One datagram from fd into ns->rx, with its sender when from is set. The kernel's
 * count of datagrams it dropped on this socket (SO_RXQ_OVFL, cumulative) is turned into
 * socket_drops: those never reached us, so they are outside the other counters, but a
 * benchmark must be able to tell that the emulator itself was the bottleneck. */
static ssize_t rx_one(struct netsim *ns, int fd, struct sockaddr_in *from, uint32_t *ovfl_seen,
		      struct ns_counters *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(uint32_t))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { ns->rx, sizeof(ns->rx) };
	struct msghdr mh = { .msg_name = from, .msg_namelen = from ? sizeof(*from) : 0,
			     .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

	if (n < 0)
		return n;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
			uint32_t v;
			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			c->socket_drops += (uint32_t)(v - *ovfl_seen);
			*ovfl_seen = v;
		}
	}
	if (from && (mh.msg_namelen != sizeof(*from) || from->sin_family != AF_INET)) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	return n;
}

static void rx_listen(struct netsim *ns)
{
	for (int k = 0; k < RX_BATCH; k++) {
		struct sockaddr_in from;
		ssize_t n = rx_one(ns, ns->lfd, &from, &ns->lfd_ovfl, &ns->dir[DIR_UP].c);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue; /* EINTR, an ICMP error, a non-IPv4 sender: try the next */
		}
		uint64_t now = now_ns();
		int32_t ci = client_get(ns, &from, now);
		if (ci == NONE) { /* no socket for it (out of descriptors): counted, dropped */
			ns->dir[DIR_UP].c.received++;
			ns->dir[DIR_UP].c.bytes_received += (uint64_t)n;
			ns->dir[DIR_UP].c.send_errors++;
			continue;
		}
		on_packet(ns, DIR_UP, ci, ns->rx, (size_t)n, now);
		flush_due(ns, now);
	}
}

static void rx_client(struct netsim *ns, int32_t ci)
{
	struct client *c = &ns->clients[ci];

	for (int k = 0; k < RX_BATCH && c->used; k++) {
		ssize_t n = rx_one(ns, c->fd, NULL, &c->ovfl, &ns->dir[DIR_DOWN].c);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* An ICMP "port unreachable" from the upstream shows up here once. */
			continue;
		}
		uint64_t now = now_ns();
		on_packet(ns, DIR_DOWN, ci, ns->rx, (size_t)n, now);
		flush_due(ns, now);
	}
}

/* ---- control ---- */

static json_t *counters_json(const struct ns_counters *c)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			 "received", (json_int_t)c->received, "sent", (json_int_t)c->sent,
			 "lost_random", (json_int_t)c->lost_random,
			 "lost_burst", (json_int_t)c->lost_burst,
			 "duplicated", (json_int_t)c->duplicated,
			 "reordered", (json_int_t)c->reordered,
			 "delayed", (json_int_t)c->delayed,
			 "rate_dropped", (json_int_t)c->rate_dropped,
			 "queue_full", (json_int_t)c->queue_full,
			 "send_errors", (json_int_t)c->send_errors,
			 "bytes_received", (json_int_t)c->bytes_received,
			 "bytes_sent", (json_int_t)c->bytes_sent,
			 "queued", (json_int_t)c->queued,
			 "socket_drops", (json_int_t)c->socket_drops);
}

static json_t *stats_json(const struct netsim *ns)
{
	char up[NS_SPEC_MAX], down[NS_SPEC_MAX], la[LS_ADDRSTRLEN], ua[LS_ADDRSTRLEN];

	return json_pack("{s:o,s:o,s:{s:s,s:s},s:I,s:I,s:I,s:I,s:s,s:s}",
			 "up", counters_json(&ns->dir[DIR_UP].c),
			 "down", counters_json(&ns->dir[DIR_DOWN].c),
			 "spec", "up", ns_spec_format(&ns->dir[DIR_UP].spec, up, sizeof(up)),
			 "down", ns_spec_format(&ns->dir[DIR_DOWN].spec, down, sizeof(down)),
			 "seed", (json_int_t)ns->seed, "clients", (json_int_t)ns->nclients,
			 "clients_total", (json_int_t)ns->clients_total,
			 "clients_evicted", (json_int_t)ns->clients_evicted,
			 "listen", ls_addr_fmt(&ns->listen_addr, la),
			 "upstream", ls_addr_fmt(&ns->upstream, ua));
}

static enum ls_rc cmd_stats(void *ctx, struct ls_steer_call *call)
{
	call->result = stats_json(ctx);
	return LS_RC_OK;
}

/* "up", "down" or "both" (the default; the definition allows only these) into a mask of
 * directions. */
static int parse_dirs(const struct ls_steer_call *call)
{
	const char *s = json_string_value(json_object_get(call->req, "dir"));

	if (s && strcmp(s, "up") == 0)
		return 1;
	if (s && strcmp(s, "down") == 0)
		return 2;
	return 3;
}

static enum ls_rc cmd_set(void *ctx, struct ls_steer_call *call)
{
	struct netsim *ns = ctx;
	struct ns_spec spec;
	char err[256], a[NS_SPEC_MAX], b[NS_SPEC_MAX];
	int dirs = parse_dirs(call);

	if (ns_spec_parse(json_string_value(json_object_get(call->req, "spec")), &spec, err,
			  sizeof(err)) < 0)
		return ls_steer_fail(call, LS_RC_INVALID, "bad spec: %s", err);
	for (int i = 0; i < 2; i++) {
		if (!(dirs & (1 << i)))
			continue;
		ns_dir_set_spec(&ns->dir[i], &spec);
		ls_info("%s: %s", ns->dir[i].name, ns_spec_format(&spec, a, sizeof(a)));
	}
	call->result = json_pack("{s:s,s:s}", "up",
				 ns_spec_format(&ns->dir[DIR_UP].spec, a, sizeof(a)), "down",
				 ns_spec_format(&ns->dir[DIR_DOWN].spec, b, sizeof(b)));
	return LS_RC_OK;
}

static enum ls_rc cmd_reset(void *ctx, struct ls_steer_call *call)
{
	struct netsim *ns = ctx;
	int dirs = parse_dirs(call);

	for (int i = 0; i < 2; i++) {
		if (!(dirs & (1 << i)))
			continue;
		uint64_t queued = ns->dir[i].c.queued; /* a gauge, not a count */
		memset(&ns->dir[i].c, 0, sizeof(ns->dir[i].c));
		ns->dir[i].c.queued = queued;
	}
	return LS_RC_OK;
}

static const char *const dir_names[] = { "up", "down", "both", NULL };
#define DIR_ARG                                                                      \
	{ .key = "dir", .types = LS_SA_STRING, .choices = dir_names,                  \
	  .help = "the direction: up (client to upstream), down, or both (the default)" }
static const struct ls_steer_arg dir_arg[] = {
	DIR_ARG,
	{ NULL },
};
static const struct ls_steer_arg set_args[] = {
	DIR_ARG,
	{ .key = "spec", .types = LS_SA_STRING, .required = true, .min = 1, .max = NS_SPEC_MAX,
	  .help = "the impairment, e.g. \"loss=5%,delay=20ms\" (\"none\" clears)" },
	{ NULL },
};
static const struct ls_steer_def commands[] = {
	{ "stats", NULL, "counters per direction ({\"up\":{...},\"down\":{...}}), specs, clients" },
	{ "set", set_args, "replace a direction's impairment" },
	{ "reset", dir_arg, "zero the counters" },
	LS_STEER_CMD_BUILTINS,
	{ NULL, NULL, NULL },
};
static const struct ls_steer_handler handlers[] = {
	{ "stats", cmd_stats },
	{ "set", cmd_set },
	{ "reset", cmd_reset },
	{ NULL, NULL },
};

/* ---- setup ---- */

static void usage(FILE *f)
{
	fputs("usage: ls-netsim --listen ADDR:PORT --upstream ADDR:PORT [options]\n"
	      "\n"
	      "A UDP middlebox that impairs traffic. Datagrams from each client at --listen go\n"
	      "to --upstream from a socket of that client's own (up); replies come back to the\n"
	      "client from --listen (down).\n"
	      "\n"
	      "  --listen ADDR:PORT   where clients send (port 0: any free port)\n"
	      "  --upstream ADDR:PORT where their traffic goes\n"
	      "  --up SPEC            impairment client -> upstream (default none)\n"
	      "  --down SPEC          impairment upstream -> client (default none)\n"
	      "  --seed N             random seed; the same seed and packets give the same\n"
	      "                       decisions (default: from the clock, shown in stats)\n"
	      "  --socket PATH        steering socket: stats, set, reset (JSON lines)\n"
	      "  --queue-cap N        delay queue slots (default 65536); beyond: queue_full\n"
	      "  --log-level L        error, warn, info (default) or debug\n"
	      "  --help               this text\n"
	      "\n"
	      "SPEC: comma-separated items, or \"none\". P is a probability, N% or a fraction\n"
	      "(5% = 0.05); T a time with unit ns, us, ms or s.\n"
	      "  loss=P               independent random loss\n"
	      "  ge=P_GB:P_BG[:H]     Gilbert-Elliott burst loss: P(good->bad), P(bad->good)\n"
	      "                       per packet, loss probability H in bad (default 100%)\n"
	      "  burst=AVG:LEN        Gilbert-Elliott from average loss AVG and mean burst\n"
	      "                       length LEN packets (burst=2%:3)\n"
	      "  delay=T              fixed one-way delay (delay=20ms, delay=250us)\n"
	      "  jitter=T[:uniform|:normal]  per-packet delay variation around delay: uniform\n"
	      "                       in +-T (default) or normal with deviation T; never below 0\n"
	      "  order                keep each client's packets in order despite jitter\n"
	      "                       (without it jittered packets may overtake each other)\n"
	      "  reorder=P[:T]        hold a packet back and send it right after the next one;\n"
	      "                       if none follows within T (default 50ms) it goes alone\n"
	      "  dup=P                send a packet twice\n"
	      "  rate=R[:Q[:B]]       bottleneck of R (bit, kbit, mbit, gbit) with a queue of Q\n"
	      "                       (a time like 50ms, or bytes like 30000B or 64kB; default\n"
	      "                       50ms, at least 15000B) and token bucket depth B (default\n"
	      "                       0B); over the queue: rate_dropped\n"
	      "Example: --up 'loss=1%,delay=20ms,jitter=2ms' --down 'burst=2%:3,rate=4mbit'\n"
	      "\n"
	      "On SIGTERM or SIGINT the counters go to stdout as one JSON line.\n",
	      f);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ls-netsim: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(try --help)\n");
	exit(2);
}

static int epoll_add(int ep, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)tag << 32 };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static uint64_t default_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
	/* Below 2^53, so that every JSON reader keeps the seed exact. */
	return ls_splitmix64(&x) >> 11;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "seed", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, 'S' },
		{ "up", required_argument, NULL, 'U' },
		{ "down", required_argument, NULL, 'D' },
		{ "queue-cap", required_argument, NULL, 'q' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct netsim ns; /* large (client table, receive buffer): not on the stack */
	const char *listen_s = NULL, *upstream_s = NULL, *sock_path = NULL;
	const char *spec_s[2] = { "none", "none" };
	struct ns_spec spec[2];
	uint64_t seed = 0, qcap = NS_QUEUE_CAP_DEFAULT;
	bool have_seed = false;
	int level = LS_LOG_INFO, opt;
	char err[256], a[NS_SPEC_MAX], b[NS_SPEC_MAX];

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': listen_s = optarg; break;
		case 'u': upstream_s = optarg; break;
		case 'S': sock_path = optarg; break;
		case 'U': spec_s[DIR_UP] = optarg; break;
		case 'D': spec_s[DIR_DOWN] = optarg; break;
		case 's':
			if (ls_parse_u64(optarg, INT64_MAX, &seed) != 0)
				die_usage("--seed: '%s' is not a number 0..2^63-1", optarg);
			have_seed = true;
			break;
		case 'q':
			if (ls_parse_u64(optarg, 1u << 22, &qcap) != 0 || qcap == 0)
				die_usage("--queue-cap: '%s' is not a number 1..4194304", optarg);
			break;
		case 'L':
			level = ls_log_level_parse(optarg);
			if (level < 0)
				die_usage("--log-level: '%s' is not error, warn, info or debug", optarg);
			break;
		case 'h': usage(stdout); return 0;
		default: fprintf(stderr, "(try --help)\n"); return 2;
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!listen_s || !upstream_s)
		die_usage("%s", "--listen and --upstream are required");
	ls_log_init("ls-netsim", (enum ls_log_level)level);
	if (ls_hostport_parse(listen_s, &ns.listen_addr, true, true, err, sizeof(err)) < 0)
		die_usage("--listen: %s", err);
	if (ls_hostport_parse(upstream_s, &ns.upstream, true, false, err, sizeof(err)) < 0)
		die_usage("--upstream: %s", err);
	for (int i = 0; i < 2; i++) {
		if (ns_spec_parse(spec_s[i], &spec[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "ls-netsim: --%s: %s\n(try --help)\n", i ? "down" : "up", err);
			return 2;
		}
	}
	ns.seed = have_seed ? seed : default_seed();
	ns_dir_init(&ns.dir[DIR_UP], "up", ns.seed, 1);
	ns_dir_init(&ns.dir[DIR_DOWN], "down", ns.seed, 2);
	for (int i = 0; i < 2; i++)
		ns_dir_set_spec(&ns.dir[i], &spec[i]);
	for (int i = 0; i < CLIENT_HASH; i++)
		ns.hash[i] = NONE;
	ls_raise_nofile();
	/* Timers should fire when asked: the default 50us slack would blur small delays. */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

	if (ns_queue_init(&ns.q, (uint32_t)qcap, NS_QUEUE_LARGE_DEFAULT) < 0) {
		ls_err("cannot reserve the delay queue: %s", strerror(errno));
		return 1;
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	ns.ep = epoll_create1(EPOLL_CLOEXEC);
	ns.sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	ns.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ns.lfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ns.ep < 0 || ns.sfd < 0 || ns.tfd < 0 || ns.lfd < 0) {
		ls_err("setup: %s", strerror(errno));
		return 1;
	}
	sock_setup(ns.lfd);
	if (bind(ns.lfd, (struct sockaddr *)&ns.listen_addr, sizeof(ns.listen_addr)) != 0) {
		ls_err("bind %s: %s", listen_s, strerror(errno));
		return 1;
	}
	socklen_t alen = sizeof(ns.listen_addr);
	getsockname(ns.lfd, (struct sockaddr *)&ns.listen_addr, &alen);
	if (epoll_add(ns.ep, ns.lfd, TAG_LISTEN) || epoll_add(ns.ep, ns.tfd, TAG_TIMER) ||
	    epoll_add(ns.ep, ns.sfd, TAG_SIGNAL)) {
		ls_err("epoll: %s", strerror(errno));
		return 1;
	}
	if (sock_path) {
		ns.steer = ls_steer_open(sock_path, 0600, commands, handlers, &ns, err,
					 sizeof(err));
		if (!ns.steer) {
			ls_err("steering socket: %s", err);
			return 1;
		}
		if (epoll_add(ns.ep, ls_steer_fd(ns.steer), TAG_STEER)) {
			ls_err("epoll: %s", strerror(errno));
			return 1;
		}
	}
	{
		char la[LS_ADDRSTRLEN], ua[LS_ADDRSTRLEN];
		ls_info("listening on %s, upstream %s, seed %llu; up: %s; down: %s",
			ls_addr_fmt(&ns.listen_addr, la), ls_addr_fmt(&ns.upstream, ua),
			(unsigned long long)ns.seed, ns_spec_format(&spec[0], a, sizeof(a)),
			ns_spec_format(&spec[1], b, sizeof(b)));
	}

	while (!ns.stop) {
		struct epoll_event evs[64];
		int n = epoll_wait(ns.ep, evs, 64, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ls_err("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t tag = (uint32_t)(evs[i].data.u64 >> 32);
			uint32_t idx = (uint32_t)evs[i].data.u64;
			switch (tag) {
			case TAG_LISTEN:
				rx_listen(&ns);
				break;
			case TAG_CLIENT:
				if (ns.clients[idx].used)
					rx_client(&ns, (int32_t)idx);
				break;
			case TAG_TIMER: {
				uint64_t expirations;
				(void)!read(ns.tfd, &expirations, sizeof(expirations));
				ns.armed_t = 0; /* an absolute timer that fired is spent */
				break;
			}
			case TAG_SIGNAL: {
				struct signalfd_siginfo si;
				if (read(ns.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
					ls_info("signal %u: exiting", si.ssi_signo);
					ns.stop = true;
				}
				break;
			}
			case TAG_STEER:
				ls_steer_run(ns.steer);
				break;
			default:
				break;
			}
		}
		flush_due(&ns, now_ns());
		arm_timer(&ns);
	}

	json_t *final = stats_json(&ns);
	json_dumpf(final, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(final);
	if (ns.steer)
		ls_steer_close(ns.steer);
	for (int32_t i = 0; i < MAX_CLIENTS; i++)
		if (ns.clients[i].used)
			close(ns.clients[i].fd);
	ns_queue_free_all(&ns.q);
	return 0;
}
