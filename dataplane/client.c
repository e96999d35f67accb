/* lightspeed-client (redirect mode): the game sends to a local UDP port; every datagram
 * goes through the tunnel to the current route's proxy, and the replies come back to
 * the game socket that asked. One thread, one epoll loop: the two UDP sockets, the
 * keepalive, housekeeping and old-route timers, signals and the steering socket. */
#include "client.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "addr.h"
#include "client_observe.h"
#include "conf.h"
#include "log.h"
#include "util.h"

/* ---- command line -------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " CL_PROG " [-c FILE] [--proxy HOST:PORT] --game-server HOST:PORT --local-port N\n"
		"         [--listen ADDR] [--socket PATH] [--session-id N --key-file PATH|--key HEX]\n"
		"         [--keepalive-ms N] [--fec off|auto|K:M[:MS]] [--path-mode MODE] [--cost-budget N]\n"
		"         [--log-level LEVEL] [--check]\n"
		"       " CL_PROG " --capture (--game NAME|auto | --ports LIST) [--game-server HOST:PORT|auto]\n"
		"         [--proxy HOST:PORT] [--capture-mark N] [options as above, but --local-port]\n"
		"       " CL_PROG " --cleanup [-c FILE] [--capture-mark N]\n"
		"       " CL_PROG " --observe --help\n"
		"\n"
		"Redirect mode: point the game at ADDR:N. Its datagrams travel through the tunnel\n"
		"to the proxy, which forwards them to the game server; replies come back the same\n"
		"way. Steering (docs/protocol.md 3.2) moves the route without a restart.\n"
		"\n"
		"Capture mode (Linux, CAP_NET_ADMIN and CAP_NET_RAW): the game is left alone and\n"
		"talks to its server; the kernel diverts its datagrams to the client (nftables\n"
		"table ip " CL_CAPTURE_TABLE " and one policy-routing rule, removed when the client\n"
		"stops or dies), and replies reach the game from the server's address.\n"
		"\n"
		"  -c, --config FILE        read the [client] section of FILE; flags override it\n"
		"                           (default " CL_DEFAULT_CONFIG " when it exists;\n"
		"                           SIGHUP reads it again)\n"
		"  --proxy HOST:PORT        the proxy's tunnel address (a name is resolved once):\n"
		"                           the route \"default\"; without it routes come by\n"
		"                           steering (route_add)\n"
		"  --game-server HOST:PORT  the game server, as the proxy should reach it\n"
		"  --local-port N           the UDP port the game sends to\n"
		"  --listen ADDR            IPv4 address of that port (default " CL_DEFAULT_LISTEN ")\n"
		"  --socket PATH            steering socket (default " CL_DEFAULT_SOCKET ";\n"
		"                           $XDG_RUNTIME_DIR/lightspeed/client.sock when not root)\n"
		"  --session-id N --key-file PATH\n"
		"                           authenticated session: id 1..4294967295 and a file\n"
		"                           holding the 32-hex-digit key (mode 0600)\n"
		"  --key HEX                the key itself (other users can read flags in ps)\n"
		"  --keepalive-ms N         keepalive interval, %d..%d (default %d)\n"
		"  --fec SETTING            forward error correction, both directions (default off):\n"
		"                           off; auto (chosen from measured loss); K:M (K data and\n"
		"                           M parity packets per block, 1..32 and 0..16); K:M:MS\n"
		"                           (a block closes MS ms after its first packet, default 16)\n"
		"  --path-mode MODE         how a route with several paths (direct, through relays)\n"
		"                           uses them: single (the best one, the default),\n"
		"                           duplicate (every packet on every path), split (data on\n"
		"                           the best, FEC parity on the others) or auto\n"
		"  --cost-budget N          wire packets per game packet auto may spend, 1..3\n"
		"                           (default 2)\n"
		"  --log-level LEVEL        error, warn, info or debug (default info)\n"
		"  --capture                capture mode\n"
		"  --game NAME|auto         a game profile (profiles/NAME.toml): its ports, its\n"
		"                           process's sockets, its FEC and keepalive; auto: the\n"
		"                           profile of the game running (or the one set_game names)\n"
		"  --ports LIST             UDP server ports to divert, \"7000-9000,27015\" (instead of\n"
		"                           the profile's)\n"
		"  --capture-mark N         the diversion's packet mark (default 0x%x; N+1 marks\n"
		"                           the client's own sockets)\n"
		"  --cleanup                remove a diversion a killed client left, and exit\n"
		"  --check                  validate, print the effective configuration, exit 0/1\n"
		"  -h, --help               this text\n"
		"  -V, --version            the version\n",
		CL_KEEPALIVE_MIN_MS, CL_KEEPALIVE_MAX_MS, CL_KEEPALIVE_DEFAULT_MS, CL_CAPTURE_MARK);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, CL_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" CL_PROG " --help' for more information.\n");
	exit(2);
}

/* Flags that set a configuration key, in the config file's names. */
static const struct {
	const char *flag;
	const char *key;
} flag_keys[] = {
	{ "proxy", "proxy" },           { "game-server", "game_server" },
	{ "local-port", "local_port" }, { "listen", "listen" },
	{ "socket", "socket" },         { "session-id", "session_id" },
	{ "key", "key" },               { "key-file", "key_file" },
	{ "keepalive-ms", "keepalive_ms" },
	{ "fec", "fec" },               { "log-level", "log_level" },
	{ "path-mode", "path_mode" },   { "cost-budget", "cost_budget" },
	{ "game", "game" },             { "ports", "ports" },
	{ "capture-mark", "capture_mark" },
};
#define N_FLAG_KEYS LS_ARRAY_LEN(flag_keys)
enum { OPT_CHECK = 256, OPT_CAPTURE, OPT_CLEANUP, OPT_KEY0 = 300 };

struct cmdline {
	const char *config;
	const char *values[N_FLAG_KEYS]; /* the last one given wins */
	bool check, capture, cleanup;
};

static const char *flag_value(const struct cmdline *cl, const char *flag)
{
	for (size_t i = 0; i < N_FLAG_KEYS; i++)
		if (strcmp(flag_keys[i].flag, flag) == 0)
			return cl->values[i];
	return NULL;
}

static void parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	struct option opts[N_FLAG_KEYS + 7];
	size_t n = 0;
	int ch;

	for (size_t i = 0; i < N_FLAG_KEYS; i++)
		opts[n++] = (struct option){ flag_keys[i].flag, required_argument, NULL,
					     OPT_KEY0 + (int)i };
	opts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	opts[n++] = (struct option){ "check", no_argument, NULL, OPT_CHECK };
	opts[n++] = (struct option){ "capture", no_argument, NULL, OPT_CAPTURE };
	opts[n++] = (struct option){ "cleanup", no_argument, NULL, OPT_CLEANUP };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	opts[n] = (struct option){ NULL, 0, NULL, 0 };

	memset(cl, 0, sizeof(*cl));
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cl->config = optarg;
			break;
		case OPT_CHECK:
			cl->check = true;
			break;
		case OPT_CAPTURE:
			cl->capture = true;
			break;
		case OPT_CLEANUP:
			cl->cleanup = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(CL_PROG " " LS_VERSION "\n");
			exit(0);
		case ':':
			usage_error("option '%s' needs a value", argv[optind - 1]);
		case '?':
			usage_error("unknown option '%s'", argv[optind - 1]);
		default:
			cl->values[ch - OPT_KEY0] = optarg;
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!flag_value(cl, "session-id") != !(flag_value(cl, "key") || flag_value(cl, "key-file")))
		usage_error("--session-id and --key-file (or --key) go together (both or neither)");
}

/* ---- setup ------------------------------------------------------------------------- */

enum { EV_LOCAL = 1, EV_TUNNEL, EV_TICK, EV_SIGNAL, EV_STEER };

static int watch(struct client *c, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static int udp_socket(const struct sockaddr_in *at, char *err, size_t errlen)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int size = 1 << 20;
	char buf[LS_ADDRSTRLEN];

	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Bigger buffers ride out a burst between two wake-ups; the kernel caps them at
	 * its own maximum, which is fine. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (bind(fd, (const struct sockaddr *)at, sizeof(*at)) < 0) {
		snprintf(err, errlen, "bind %s: %s", ls_addr_fmt(at, buf), strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int timer_set(int fd, uint64_t first_ms, uint64_t every_ms)
{
	struct itimerspec its = {
		.it_value = { (time_t)(first_ms / 1000), (long)(first_ms % 1000) * 1000000 },
		.it_interval = { (time_t)(every_ms / 1000), (long)(every_ms % 1000) * 1000000 },
	};

	return timerfd_settime(fd, 0, &its, NULL);
}

static int setup(struct client *c, const struct client_addrs *a, char *err, size_t errlen)
{
	struct sockaddr_in any = { .sin_family = AF_INET };
	sigset_t sigs;

	c->local_fd = c->tunnel_fd = c->epoll_fd = c->signal_fd = -1;
	c->tick_fd = -1;
	c->listen = a->listen;
	c->game_server = a->game_server;
	c->started_us = ls_now_us();

	if (client_io_init(c) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	client_fec_set(c, &c->conf.fec);
	/* Capture mode has no game-facing socket: the kernel diverts the game's datagrams. */
	if (!c->conf.capture) {
		c->local_fd = udp_socket(&a->listen, err, errlen);
		if (c->local_fd < 0)
			return -1;
	}
	/* The tunnel socket is unconnected: one socket serves the old and new route. */
	c->tunnel_fd = udp_socket(&any, err, errlen);
	if (c->tunnel_fd < 0)
		return -1;
	if (c->conf.capture && client_capture_mode_open(c, a, err, errlen) < 0)
		return -1;

	/* Signals arrive through a descriptor so that shutdown runs in the loop. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP); /* a reload, never the default death without a FIN */
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0 ||
	    (c->signal_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);

	c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	c->fec.ka_ms = client_fec_ka_ms(c, c->started_us);
	c->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->epoll_fd < 0 || c->tick_fd < 0 || timer_set(c->tick_fd, 1000, 1000) < 0) {
		snprintf(err, errlen, "epoll/timerfd: %s", strerror(errno));
		return -1;
	}
	if (client_ctl_open(c, err, errlen) < 0)
		return -1;
	if (watch(c, c->capm ? client_capture_mode_fd(c) : c->local_fd, EV_LOCAL) < 0 ||
	    watch(c, c->tunnel_fd, EV_TUNNEL) < 0 ||
	    watch(c, c->tick_fd, EV_TICK) < 0 || watch(c, c->signal_fd, EV_SIGNAL) < 0 ||
	    watch(c, ls_steer_fd(c->steer), EV_STEER) < 0) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	/* --proxy is the route "default"; without it routes come by steering (route_add),
	 * and until then game packets are dropped as no_route. */
	if (a->proxy.sin_family == AF_INET) {
		struct client_route *r;

		if (client_table_add(c, CL_DEFAULT_ROUTE, &a->proxy, (uint32_t)c->conf.session_id,
				     c->conf.key.set ? c->conf.key.b : NULL, CL_PROBE_DEFAULT_MS, false,
				     &r) != LS_RC_OK) {
			snprintf(err, errlen, "cannot add the route of --proxy");
			return -1;
		}
		client_switch(c, r, "steer", c->started_us);
	}
	return 0;
}

static void teardown(struct client *c)
{
	int fds[] = { c->local_fd, c->tunnel_fd, c->epoll_fd, c->signal_fd, c->tick_fd };

	ls_steer_close(c->steer);
	c->steer = NULL;
	client_capture_mode_close(c);
	client_fec_free(c);
	client_direct_free(c);
	for (size_t i = 0; i < LS_ARRAY_LEN(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(c->io);
	c->io = NULL;
}

/* ---- the loop ---------------------------------------------------------------------- */

/* A timerfd's expiration count; a spurious wake-up reads nothing. */
static bool timer_fired(int fd)
{
	uint64_t n;

	return read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n);
}

static void on_tick(struct client *c)
{
	uint64_t now = ls_now_us();

	if (!timer_fired(c->tick_fd))
		return;
	client_flows_expire(c, now);
	client_fec_tick(c, now);
	client_ctl_counters_event(c);
	client_warn_drops(c, now);
}

/* What a reload reads again: the command line, and the configuration as read last
 * (before a game profile or steering changed anything), to see what the file changed. */
static const struct cmdline *cl_start;
static struct client_conf conf_read_last;

static int conf_read(const struct cmdline *cl, struct client_conf *conf, char *err,
		     size_t errlen);

static void reload(struct client *c)
{
	struct client_conf next;
	struct client_addrs a;
	char err[512];

	if (!cl_start->config) {
		ls_warn("SIGHUP: started without a configuration file (-c, " CL_DEFAULT_CONFIG
			"): nothing to reload");
		return;
	}
	if (conf_read(cl_start, &next, err, sizeof(err)) < 0 ||
	    client_conf_finish(&next, &a, err, sizeof(err)) < 0) {
		ls_err("SIGHUP: %s; still running on the configuration read before", err);
		return;
	}
	client_reload(c, &conf_read_last, &next, &a, cl_start->config);
	conf_read_last = next;
	memset(&next, 0, sizeof(next));
}

static void on_signal(struct client *c)
{
	struct signalfd_siginfo si;

	while (read(c->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(c);
			continue;
		}
		ls_info("%s: shutting down", strsignal((int)si.ssi_signo));
		c->stop = true;
	}
}

static int run(struct client *c)
{
	struct epoll_event evs[16];
	char local[LS_ADDRSTRLEN], proxy[LS_ADDRSTRLEN];

	ls_info(CL_PROG " " LS_VERSION ": game -> %s, tunnel -> %s, steering %s",
		c->capm ? "capture" : ls_addr_fmt(&c->listen, local),
		c->cur ? ls_addr_fmt(&c->cur->proxy, proxy) : "no route yet (route_add)",
		c->conf.socket);
	uint64_t table_next = client_table_run(c, ls_now_us());
	while (!c->stop) {
		/* Open FEC blocks, keepalives, missed-keepalive deadlines and handshakes
		 * bound the wait. */
		uint64_t next = c->fec.next_us;
		if (table_next && (!next || table_next < next))
			next = table_next;
		int timeout = next ? dp_fec_wait_ms(next, ls_now_us()) : -1;
		int n = epoll_wait(c->epoll_fd, evs, (int)LS_ARRAY_LEN(evs), timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ls_err("epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 >= CL_EV_DIRECT) {
				client_direct_readable(c, evs[i].data.u32 - CL_EV_DIRECT);
				continue;
			}
			switch (evs[i].data.u32) {
			case EV_LOCAL:
				client_fwd_up(c);
				break;
			case EV_TUNNEL:
				client_fwd_down(c);
				break;
			case EV_TICK:
				on_tick(c);
				break;
			case EV_SIGNAL:
				on_signal(c);
				break;
			case EV_STEER:
				ls_steer_run(c->steer);
				break;
			}
		}
		if (c->fec.next_us)
			client_fec_due(c, ls_now_us());
		table_next = client_table_run(c, ls_now_us());
	}
	/* Tell the proxy the session is over so it frees it now, not at its idle timeout.
	 * No answer is awaited: shutdown never hangs on the network. */
	client_send_fins(c, ls_now_us());
	return 0;
}

/* Defaults, the file, the flags: -1 for the file (message with its position), -2 for
 * a flag (a usage error). */
static int conf_read(const struct cmdline *cl, struct client_conf *conf, char *err,
		     size_t errlen)
{
	char msg[400];

	client_conf_defaults(conf);
	if (cl->config && client_conf_load(cl->config, conf, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < N_FLAG_KEYS; i++)
		if (cl->values[i] && client_conf_set(conf, flag_keys[i].key, cl->values[i], msg,
						     sizeof(msg)) < 0) {
			snprintf(err, errlen, "--%s: %s", flag_keys[i].flag, msg);
			return -2;
		}
	if (cl->capture)
		conf->capture = true;
	return 0;
}

int main(int argc, char **argv)
{
	struct cmdline cl;
	struct client_addrs addrs;
	struct client *c;
	char err[512];
	int rc;

	ls_log_init(CL_PROG, LS_LOG_INFO);
	/* --observe is a mode of its own (capture mode's pcap tool), with its own options. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--observe") == 0)
			return client_observe_main(argc, argv);
	parse_cmdline(argc, argv, &cl);

	c = calloc(1, sizeof(*c));
	if (!c) {
		fprintf(stderr, CL_PROG ": out of memory\n");
		return 1;
	}
	cl_start = &cl;
	if (!cl.config) {
		cl.config = ls_conf_default(CL_DEFAULT_CONFIG, err, sizeof(err));
		if (err[0] && (cl.check || cl.cleanup))
			fprintf(stderr, CL_PROG ": %s\n", err);
		else if (err[0])
			ls_info("%s", err);
	}
	rc = conf_read(&cl, &c->conf, err, sizeof(err));
	if (rc == -2)
		usage_error("%s", err);
	if (rc < 0) {
		fprintf(stderr, CL_PROG ": %s\n", err);
		free(c);
		return 1;
	}
	if (cl.cleanup) {
		/* What a killed client left; a running one is not touched. */
		struct client_capture_kconf k;
		client_capture_kconf_default(&k, (uint32_t)c->conf.capture_mark);
		rc = client_capture_cleanup(&k, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, CL_PROG ": --cleanup: %s\n", err);
		else
			printf("no capture-mode diversion left: nftables table ip " CL_CAPTURE_TABLE
			       " and ip rule fwmark 0x%x (table %u) are gone\n", k.divert_mark,
			       k.route_table);
		free(c);
		return rc < 0 ? 1 : 0;
	}
	rc = client_conf_finish(&c->conf, &addrs, err, sizeof(err));
	if (rc == -2 && !cl.check)
		usage_error("%s", err);
	if (rc < 0) {
		fprintf(stderr, CL_PROG ": %s\n", err);
		free(c);
		return 1;
	}
	if (cl.check) {
		client_conf_print(&c->conf, &addrs, stdout);
		free(c);
		return 0;
	}
	conf_read_last = c->conf;

	ls_log_set_level((enum ls_log_level)c->conf.log_level);
	if (setup(c, &addrs, err, sizeof(err)) < 0) {
		ls_err("%s", err);
		teardown(c);
		free(c);
		return 1;
	}
	rc = run(c);
	teardown(c);
	free(c);
	return rc < 0 ? 1 : 0;
}
