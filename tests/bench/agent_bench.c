/* The agent benchmark's load generator: the controller's QUIC client
 * (controller/quic_client.c), driven hard.
 *
 *   agent_bench register --agent IP:PORT --fingerprint FP --count N
 *                        --client-socket PATH --proxy IP:PORT [--dest D]
 *       N times: a new QUIC connection, REGISTER, and the key handed to the client
 *       dataplane (route_add, answered); the time of each from the connect to the
 *       client's answer. Prints n= min_us= median_us= p99_us= max_us=
 *   agent_bench ping --agent IP:PORT --fingerprint FP --count N [--interval-ms MS]
 *       One registered connection, N PINGs; prints n= median_us= p99_us=
 *   agent_bench hold --agent IP:PORT --fingerprint FP --count N [--dest D]
 *       N connections registered at once (a session each); prints registered=N when
 *       all are, then holds them until stdin closes.
 * The floods are build/tests/quic_hostile's (the end-to-end tests use it too). */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "../../controller/pin.h"
#include "../../controller/quic_client.h"
#include "log.h"
#include "steer_client.h"
#include "util.h"

static uv_loop_t *loop;
static struct sockaddr_in agent;
static uint8_t fp[LS_CTL_FP_LEN];
static bool has_fp;
static struct ls_dest dest;
static bool has_dest;
static struct pin_store *pins;

static void die(const char *fmt, const char *a)
{
	fprintf(stderr, "agent_bench: ");
	fprintf(stderr, fmt, a);
	fprintf(stderr, "\n");
	exit(2);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t rank(const uint64_t *v, size_t n, double q)
{
	size_t r = (size_t)(q * (double)n + 0.999999);

	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return v[r - 1];
}

/* ---- one watched client ------------------------------------------------------------ */

struct watch {
	struct quic_client *q;
	bool registered, lost;
	unsigned rtts;
	uint64_t *rtt, nrtt, cap;
	struct quic_client_session s;
};

static void w_registered(void *ctx, const struct quic_client_session *s)
{
	struct watch *w = ctx;

	w->registered = true;
	w->s = *s;
}

static void w_lost(void *ctx, enum quic_client_state st, const char *why)
{
	struct watch *w = ctx;

	if (st == QC_PIN_REFUSED || st == QC_FULL) {
		fprintf(stderr, "agent_bench: %s\n", why);
		w->lost = true;
	}
}

static void w_rtt(void *ctx, uint64_t rtt)
{
	struct watch *w = ctx;

	if (w->rtt && w->nrtt < w->cap)
		w->rtt[w->nrtt++] = rtt;
}

static const struct quic_client_ops wops = {
	.registered = w_registered, .lost = w_lost, .rtt = w_rtt,
};

static struct quic_client *open_client(struct watch *w, unsigned i, uint32_t ping_ms)
{
	struct quic_client_conf c;
	char err[300];
	struct quic_client *q;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "bench%u", i);
	c.control = agent;
	c.has_pin = has_fp;
	memcpy(c.pin, fp, sizeof(fp));
	c.pins = pins;
	if (has_dest) {
		c.ndests = 1;
		c.dests[0] = dest;
	}
	c.ping_ms = ping_ms ? ping_ms : 60000;
	c.info_ms = 600000;
	c.peers_ms = UINT32_MAX;
	c.idle_timeout_ms = 60000;
	q = quic_client_open(loop, &c, &wops, w, err, sizeof(err));
	if (!q)
		die("%s", err);
	return q;
}

static void run_until(bool *flag, double seconds)
{
	uint64_t end = ls_now_us() + (uint64_t)(seconds * 1e6);

	while (!*flag && ls_now_us() < end)
		uv_run(loop, UV_RUN_ONCE);
}

static void spin(double seconds)
{
	uint64_t end = ls_now_us() + (uint64_t)(seconds * 1e6);

	while (ls_now_us() < end)
		uv_run(loop, UV_RUN_NOWAIT);
}

static void print_dist(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("n=%zu min_us=%llu median_us=%llu p99_us=%llu max_us=%llu\n", n,
	       (unsigned long long)(n ? v[0] : 0), (unsigned long long)(n ? rank(v, n, 0.5) : 0),
	       (unsigned long long)(n ? rank(v, n, 0.99) : 0),
	       (unsigned long long)(n ? v[n - 1] : 0));
}

/* ---- modes ----------------------------------------------------------------------------- */

static int do_register(unsigned count, const char *client_socket, const char *proxy)
{
	uint64_t *t = calloc(count, sizeof(*t));
	size_t n = 0;
	uv_timer_t wake;

	uv_timer_init(loop, &wake);
	for (unsigned i = 0; i < count; i++) {
		struct watch w;
		char hex[2 * LS_CTL_KEY_LEN + 1], msg[300];
		json_t *res = NULL;
		uint64_t t0 = ls_now_us();
		enum ls_rc rc;

		memset(&w, 0, sizeof(w));
		w.q = open_client(&w, i, 0);
		run_until(&w.registered, 5);
		if (!w.registered) {
			fprintf(stderr, "agent_bench: registration %u did not complete\n", i);
			return 1;
		}
		ls_hex_encode(w.s.key, LS_CTL_KEY_LEN, hex);
		rc = ls_steerc_call(client_socket, "route_add",
				    json_pack("{s:s,s:s,s:I,s:s,s:b}", "name", "bench", "proxy", proxy,
					      "session_id", (json_int_t)w.s.session_id, "key", hex,
					      "replace", 1),
				    2000, &res, msg, sizeof(msg));
		if (rc != LS_RC_OK) {
			fprintf(stderr, "agent_bench: route_add: %s\n", msg);
			return 1;
		}
		json_decref(res);
		t[n++] = ls_now_us() - t0;
		/* The session goes before the next one (one node's worth of sessions). */
		quic_client_disconnect(w.q);
		spin(0.005);
		quic_client_close(w.q, false);
		spin(0.002);
	}
	uv_close((uv_handle_t *)&wake, NULL);
	print_dist(t, n);
	free(t);
	return 0;
}

static int do_ping(unsigned count, uint32_t interval)
{
	struct watch w;
	bool done = false;
	uint64_t end;

	memset(&w, 0, sizeof(w));
	w.cap = count;
	w.rtt = calloc(count, sizeof(uint64_t));
	w.q = open_client(&w, 0, interval);
	run_until(&w.registered, 5);
	if (!w.registered)
		return 1;
	w.nrtt = 0; /* the PING sent with the registration is not one of them */
	end = ls_now_us() + (uint64_t)count * interval * 2000u + 5000000u;
	while (!done && ls_now_us() < end) {
		uv_run(loop, UV_RUN_ONCE);
		done = w.nrtt >= count;
	}
	print_dist(w.rtt, w.nrtt);
	quic_client_close(w.q, true);
	spin(0.05);
	return 0;
}

static int do_hold(unsigned count)
{
	struct watch *w = calloc(count, sizeof(*w));
	unsigned ok = 0;
	uint64_t end = ls_now_us() + 60000000u;
	char buf[64];

	/* In waves of 32, as a thousand controllers would not arrive at one instant. */
	for (unsigned i = 0; i < count; i++) {
		w[i].q = open_client(&w[i], i, 60000);
		if (i % 32 == 31)
			spin(0.02);
	}
	while (ok < count && ls_now_us() < end) {
		uv_run(loop, UV_RUN_ONCE);
		ok = 0;
		for (unsigned i = 0; i < count; i++)
			ok += w[i].registered;
	}
	printf("registered=%u\n", ok);
	fflush(stdout);
	/* Keep them (and answer the agent's packets) until stdin closes. */
	bool eof = false;
	while (!eof) {
		struct timeval tv = { 0, 0 };
		fd_set fds;

		uv_run(loop, UV_RUN_NOWAIT);
		FD_ZERO(&fds);
		FD_SET(0, &fds);
		tv.tv_usec = 20000;
		if (select(1, &fds, NULL, NULL, &tv) > 0 && read(0, buf, sizeof(buf)) <= 0)
			eof = true;
	}
	for (unsigned i = 0; i < count; i++)
		quic_client_close(w[i].q, true);
	spin(0.2);
	return ok == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "", *client_socket = NULL, *proxy = NULL;
	unsigned count = 100;
	uint32_t interval = 20;
	char err[300];
	struct rlimit rl;

	ls_log_init("agent_bench", LS_LOG_WARN);
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];

		if (strcmp(o, "--agent") == 0) {
			if (ls_hostport_parse(v, &agent, false, false, err, sizeof(err)) < 0)
				die("--agent: %s", err);
		} else if (strcmp(o, "--fingerprint") == 0) {
			if (ls_ctl_fp_parse(v, fp) < 0)
				die("--fingerprint: %s", v);
			has_fp = true;
		} else if (strcmp(o, "--dest") == 0) {
			if (ls_dest_parse(v, &dest) < 0)
				die("--dest: %s", v);
			has_dest = true;
		} else if (strcmp(o, "--count") == 0) {
			count = (unsigned)atoi(v);
		} else if (strcmp(o, "--interval-ms") == 0) {
			interval = (uint32_t)atoi(v);
		} else if (strcmp(o, "--client-socket") == 0) {
			client_socket = v;
		} else if (strcmp(o, "--proxy") == 0) {
			proxy = v;
		} else {
			die("unknown option %s", o);
		}
	}
	if (!agent.sin_port)
		die("%s", "--agent IP:PORT is required");
	/* One socket per connection: a thousand of them. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	loop = uv_default_loop();
	pins = pin_open(NULL, err, sizeof(err));
	if (strcmp(mode, "register") == 0) {
		if (!client_socket || !proxy)
			die("%s", "register needs --client-socket and --proxy");
		return do_register(count, client_socket, proxy);
	}
	if (strcmp(mode, "ping") == 0)
		return do_ping(count, interval);
	if (strcmp(mode, "hold") == 0)
		return do_hold(count);
	die("unknown mode '%s' (register, ping, hold)", mode);
	return 2;
}
