/* ctl_client: the controller's QUIC client (controller/quic_client.c) as a test tool,
 * driven line by line on stdin, one JSON line out per answer or event, so end-to-end
 * tests and benchmarks can talk to a real agent the way the controller does.
 *
 *   ctl_client --agent HOST:PORT [--name NAME] [--fingerprint sha256:HEX]
 *              [--state-dir DIR] [--dest IP:PORT]... [--game N] [--ping-ms N]
 *              [--session ID:KEYHEX]
 *
 * Commands (stdin): register [MS] | ping N | info | peers | disconnect | trust |
 * renew | state | wait-registered MS | sleep MS | crash | quit
 * Events (any time): {"event":"registered",...} {"event":"lost",...}
 * {"event":"revoked",...}. */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "../../controller/pin.h"
#include "../../controller/quic_client.h"
#include "log.h"
#include "util.h"

static uv_loop_t *loop;
static struct quic_client *q;
static struct pin_store *pins;
static unsigned registrations, rtts, infos, peers_n, revokes;
static uint64_t last_rtt;
static struct ls_ctl_msg last_info, last_peers;

/* The command waiting for something, and until when. */
enum wait_kind { W_NONE, W_REGISTERED, W_RTTS, W_INFO, W_PEERS, W_REVOKED, W_SLEEP };
static enum wait_kind waiting;
static unsigned wait_for;
static uint64_t wait_until_us;
static uint64_t wait_started_us;
static json_t *rtt_list;
static uv_timer_t tick;
static uv_poll_t in_poll;
static char inbuf[4096];
static size_t inlen;
static bool in_eof;     /* stdin ended: quit once every command has run */

static void out(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

static json_t *session_json(const struct quic_client_session *s)
{
	char hex[2 * LS_CTL_KEY_LEN + 1], fp[LS_CTL_FP_STRLEN];
	json_t *d = json_array();

	ls_hex_encode(s->key, LS_CTL_KEY_LEN, hex);
	for (uint8_t i = 0; i < s->ndests; i++) {
		char b[64];

		ls_dest_fmt(&s->dests[i], b, sizeof(b));
		json_array_append_new(d, json_string(b));
	}
	if (quic_client_fingerprint(q))
		ls_ctl_fp_fmt(quic_client_fingerprint(q), fp);
	else
		fp[0] = '\0';
	return json_pack("{s:I,s:s,s:i,s:s,s:s,s:o,s:b,s:s}", "session_id", (json_int_t)s->session_id,
			 "key", hex, "data_port", s->data_port, "node_id", s->node_id, "region",
			 s->region, "destinations", d, "resumed", s->resumed, "fingerprint", fp);
}

static void done(json_t *o)
{
	waiting = W_NONE;
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "elapsed_us", json_integer((json_int_t)(ls_now_us() - wait_started_us)));
	out(o);
}

static void fail(const char *why)
{
	waiting = W_NONE;
	out(json_pack("{s:b,s:s,s:s}", "ok", 0, "error", why, "state",
		      quic_client_state_name(quic_client_state(q))));
}

static void on_registered(void *ctx, const struct quic_client_session *s)
{
	json_t *o = session_json(s);

	(void)ctx;
	registrations++;
	json_object_set_new(o, "event", json_string("registered"));
	json_object_set_new(o, "elapsed_us", json_integer((json_int_t)(ls_now_us() - wait_started_us)));
	out(o);
	if (waiting == W_REGISTERED && registrations >= wait_for)
		done(json_object());
}

static void on_lost(void *ctx, enum quic_client_state st, const char *why)
{
	(void)ctx;
	out(json_pack("{s:s,s:s,s:s}", "event", "lost", "state", quic_client_state_name(st), "why",
		      why));
	if (st == QC_PIN_REFUSED && waiting == W_REGISTERED)
		fail(why);
}

static void on_revoked(void *ctx, const char *why)
{
	(void)ctx;
	revokes++;
	out(json_pack("{s:s,s:s}", "event", "revoked", "why", why));
	if (waiting == W_REVOKED)
		done(json_object());
}

static void on_rtt(void *ctx, uint64_t rtt)
{
	(void)ctx;
	rtts++;
	last_rtt = rtt;
	if (waiting == W_RTTS) {
		json_array_append_new(rtt_list, json_integer((json_int_t)rtt));
		if (json_array_size(rtt_list) >= wait_for) {
			done(json_pack("{s:O}", "rtt_us", rtt_list));
			json_decref(rtt_list);
			rtt_list = NULL;
		}
	}
}

static void on_info(void *ctx, const struct ls_ctl_msg *m)
{
	json_t *legs = json_array();
	char ip[INET_ADDRSTRLEN];

	(void)ctx;
	infos++;
	last_info = *m;
	if (waiting != W_INFO)
		return;
	for (uint8_t i = 0; i < m->u.info.nlegs; i++) {
		struct in_addr a = { htonl(m->u.info.legs[i].ip) };

		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		json_array_append_new(legs, json_pack("{s:s,s:o}", "ip", ip, "rtt_us",
						      m->u.info.legs[i].rtt_us == LS_CTL_RTT_NONE
							      ? json_null()
							      : json_integer(m->u.info.legs[i].rtt_us)));
	}
	done(json_pack("{s:i,s:I,s:I,s:o}", "load_pct", m->u.info.load_pct, "active",
		       (json_int_t)m->u.info.active, "capacity", (json_int_t)m->u.info.capacity,
		       "legs", legs));
}

static void on_peers(void *ctx, const struct ls_ctl_msg *m)
{
	json_t *arr = json_array();
	char ip[INET_ADDRSTRLEN], fp[LS_CTL_FP_STRLEN];

	(void)ctx;
	peers_n++;
	last_peers = *m;
	if (waiting != W_PEERS)
		return;
	for (uint8_t i = 0; i < m->u.peers.n; i++) {
		const struct ls_ctl_peer *p = &m->u.peers.p[i];
		struct in_addr a = { htonl(p->ip) };

		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		if (p->has_fp)
			ls_ctl_fp_fmt(p->fp, fp);
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:i,s:i,s:o}", "name", p->name,
						     "region", p->region, "ip", ip, "data_port",
						     p->data_port, "control_port", p->control_port,
						     "fingerprint",
						     p->has_fp ? json_string(fp) : json_null()));
	}
	done(json_pack("{s:o}", "peers", arr));
}

static const struct quic_client_ops ops = {
	.registered = on_registered, .lost = on_lost, .revoked = on_revoked, .rtt = on_rtt,
	.info = on_info, .peers = on_peers,
};

static void command(char *line)
{
	char *arg = strchr(line, ' ');
	long n = 0;
	char err[300];

	if (arg) {
		*arg++ = '\0';
		n = strtol(arg, NULL, 10);
	}
	wait_started_us = ls_now_us();
	wait_until_us = wait_started_us + 10 * 1000000ull;
	if (strcmp(line, "register") == 0 || strcmp(line, "wait-registered") == 0) {
		/* The first registration, or (wait-registered) the next one. */
		wait_for = strcmp(line, "register") == 0 ? 1 : registrations + 1;
		if (n > 0)
			wait_until_us = wait_started_us + (uint64_t)n * 1000u;
		if (registrations >= wait_for) {
			done(session_json(quic_client_session(q)));
			return;
		}
		waiting = W_REGISTERED;
	} else if (strcmp(line, "ping") == 0) {
		rtt_list = json_array();
		wait_for = n > 0 ? (unsigned)n : 1;
		waiting = W_RTTS;
	} else if (strcmp(line, "info") == 0) {
		waiting = W_INFO;
		quic_client_poll(q);
	} else if (strcmp(line, "peers") == 0) {
		waiting = W_PEERS;
		quic_client_poll(q);
	} else if (strcmp(line, "disconnect") == 0) {
		waiting = W_REVOKED;
		quic_client_disconnect(q);
	} else if (strcmp(line, "renew") == 0) {
		wait_for = registrations + 1;
		waiting = W_REGISTERED;
		quic_client_renew(q);
	} else if (strcmp(line, "trust") == 0) {
		if (quic_client_trust(q, err, sizeof(err)) != 0)
			fail(err);
		else
			done(json_object());
	} else if (strcmp(line, "state") == 0) {
		const struct quic_client_session *s = quic_client_session(q);

		done(json_pack("{s:s,s:s,s:o,s:I,s:I}", "state",
			       quic_client_state_name(quic_client_state(q)), "error",
			       quic_client_error(q), "session", s ? session_json(s) : json_null(),
			       "rtt_us", (json_int_t)quic_client_rtt_us(q), "registrations",
			       (json_int_t)registrations));
	} else if (strcmp(line, "sleep") == 0) {
		wait_until_us = wait_started_us + (uint64_t)n * 1000u;
		waiting = W_SLEEP;
	} else if (strcmp(line, "crash") == 0) {
		_exit(0); /* vanish without a word, as a killed controller does */
	} else if (strcmp(line, "quit") == 0) {
		quic_client_close(q, false);
		q = NULL;
		uv_poll_stop(&in_poll);
		uv_close((uv_handle_t *)&in_poll, NULL);
		uv_close((uv_handle_t *)&tick, NULL);
	} else if (line[0]) {
		fail("unknown command");
	}
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
	if (waiting == W_NONE || ls_now_us() < wait_until_us)
		return;
	if (waiting == W_SLEEP)
		done(json_object());
	else
		fail("timeout");
}

static void on_stdin(uv_poll_t *p, int status, int events)
{
	ssize_t n;

	(void)p;
	(void)status;
	(void)events;
	n = read(0, inbuf + inlen, sizeof(inbuf) - 1 - inlen);
	if (n <= 0) {
		in_eof = true;
		uv_poll_stop(&in_poll);
		return;
	}
	inlen += (size_t)n;
	for (;;) {
		char *nl = memchr(inbuf, '\n', inlen);
		size_t k;

		if (!nl || waiting != W_NONE)
			break;
		*nl = '\0';
		k = (size_t)(nl - inbuf) + 1;
		command(inbuf);
		memmove(inbuf, inbuf + k, inlen - k);
		inlen -= k;
		if (!q)
			return;
	}
	if (inlen == sizeof(inbuf) - 1)
		inlen = 0;
}

static void on_tick_stdin(uv_timer_t *t)
{
	on_tick(t);
	/* Commands queued behind a wait run when it ends; at the end of stdin, quit. */
	if (waiting == W_NONE && q && in_eof && !memchr(inbuf, '\n', inlen)) {
		command((char[]){ "quit" });
		return;
	}
	if (waiting == W_NONE && q && memchr(inbuf, '\n', inlen)) {
		char *nl = memchr(inbuf, '\n', inlen);
		size_t k = (size_t)(nl - inbuf) + 1;

		*nl = '\0';
		command(inbuf);
		memmove(inbuf, inbuf + k, inlen - k);
		inlen -= k;
	}
}

int main(int argc, char **argv)
{
	struct quic_client_conf c;
	const char *state_dir = NULL;
	char err[300];

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "node");
	c.peers_ms = UINT32_MAX;
	ls_log_init("ctl_client", LS_LOG_INFO);
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(argv[i], "--agent") == 0) {
			if (ls_hostport_parse(v, &c.control, true, false, err, sizeof(err)) < 0) {
				fprintf(stderr, "--agent: %s\n", err);
				return 2;
			}
		} else if (strcmp(argv[i], "--name") == 0) {
			snprintf(c.name, sizeof(c.name), "%s", v);
		} else if (strcmp(argv[i], "--fingerprint") == 0) {
			if (ls_ctl_fp_parse(v, c.pin) != 0) {
				fprintf(stderr, "--fingerprint: not sha256:HEX\n");
				return 2;
			}
			c.has_pin = true;
		} else if (strcmp(argv[i], "--state-dir") == 0) {
			state_dir = v;
		} else if (strcmp(argv[i], "--dest") == 0) {
			if (c.ndests >= LS_CTL_MAX_DESTS || ls_dest_parse(v, &c.dests[c.ndests]) < 0) {
				fprintf(stderr, "--dest: not ip[/len][:port[-port]]\n");
				return 2;
			}
			c.ndests++;
		} else if (strcmp(argv[i], "--game") == 0) {
			c.game_id = (uint8_t)atoi(v);
		} else if (strcmp(argv[i], "--ping-ms") == 0) {
			c.ping_ms = (uint32_t)atoi(v);
		} else if (strcmp(argv[i], "--idle-ms") == 0) {
			c.idle_timeout_ms = (uint32_t)atoi(v);
		} else if (strcmp(argv[i], "--peers") == 0) {
			c.peers_ms = 0;
			i--;
		} else if (strcmp(argv[i], "--session") == 0) {
			char *colon = strchr(v, ':');

			if (!colon || ls_hex_decode(colon + 1, c.key, LS_CTL_KEY_LEN) < 0) {
				fprintf(stderr, "--session: ID:KEYHEX\n");
				return 2;
			}
			c.session_id = (uint32_t)strtoul(v, NULL, 10);
			c.has_session = true;
		} else if (strcmp(argv[i], "--log-level") == 0) {
			ls_log_set_level((enum ls_log_level)ls_log_level_parse(v));
		} else {
			fprintf(stderr, "ctl_client: unknown option %s (see the source's header)\n", argv[i]);
			return 2;
		}
		i++;
	}
	if (!c.control.sin_port) {
		fprintf(stderr, "ctl_client: --agent HOST:PORT is required\n");
		return 2;
	}
	loop = uv_default_loop();
	pins = pin_open(state_dir, err, sizeof(err));
	if (!pins) {
		fprintf(stderr, "ctl_client: %s\n", err);
		return 1;
	}
	c.pins = pins;
	wait_started_us = ls_now_us();
	q = quic_client_open(loop, &c, &ops, NULL, err, sizeof(err));
	if (!q) {
		fprintf(stderr, "ctl_client: %s\n", err);
		return 1;
	}
	uv_timer_init(loop, &tick);
	uv_timer_start(&tick, on_tick_stdin, 5, 5);
	uv_poll_init(loop, &in_poll, 0);
	uv_poll_start(&in_poll, UV_READABLE, on_stdin);
	uv_run(loop, UV_RUN_DEFAULT);
	pin_close(pins);
	return 0;
}
