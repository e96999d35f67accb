/* lightspeed-proxy: the node-side dataplane. Command line, start-up, the one epoll
 * loop (tunnel socket, flow sockets, steering, a 1-second housekeeping timer,
 * signals) and a clean shutdown. The packet paths are in proxy_fwd.c. */
#include "proxy.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "secret.h"
#include "util.h"

#define SOCK_BUF (4 << 20) /* tunnel socket buffers; the kernel caps them at its maximum */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PX_PROG " [OPTION]...\n"
		"The LightSpeed proxy: unwraps tunnel datagrams, forwards them to game servers\n"
		"and wraps the replies back.\n"
		"\n"
		"  -c, --config FILE       read the configuration from FILE (TOML; default\n"
		"                          " PX_DEFAULT_CONFIG " when it exists)\n"
		"      --bind ADDR:PORT    tunnel address (default 0.0.0.0:4434)\n"
		"      --socket PATH       steering socket (default /run/lightspeed/proxy.sock)\n"
		"      --allow CIDR        let a denied range through (repeatable; replaces the\n"
		"                          config's list)\n"
		"      --insecure-no-auth  accept packets without AUTH (testing only)\n"
		"      --idle-timeout SEC  end sessions idle this long (default 60)\n"
		"      --max-sessions N    at most N sessions (default 1000)\n"
		"      --log-level LEVEL   error, warn, info or debug (default info)\n"
		"      --check             validate the configuration, print it and exit\n"
		"  -h, --help              show this help and exit\n"
		"  -V, --version           show the version and exit\n"
		"\n"
		"Options override the configuration file; SIGHUP reads it again. Steering:\n"
		"docs/protocol.md section 3.\n");
}

/* A command-line error: message, hint, exit 2. */
__attribute__((noreturn, format(printf, 1, 2))) static void cli_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PX_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PX_PROG " --help' for more information.\n");
	exit(2);
}

/* What the command line sets; applied over the configuration file. */
struct cli {
	const char *config;
	bool check;
	bool bind_set, socket_set, allow_set, insecure, idle_set, max_set;
	struct sockaddr_in bind;
	const char *socket;
	struct ls_allowlist allow;
	int64_t idle, max_sessions;
	int log_level; /* -1: not set */
};

enum {
	OPT_BIND = 256, OPT_SOCKET, OPT_ALLOW, OPT_INSECURE, OPT_IDLE, OPT_MAX, OPT_LEVEL,
	OPT_CHECK,
};

static void parse_cli(int argc, char **argv, struct cli *cli)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "bind", required_argument, NULL, OPT_BIND },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "allow", required_argument, NULL, OPT_ALLOW },
		{ "insecure-no-auth", no_argument, NULL, OPT_INSECURE },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE },
		{ "max-sessions", required_argument, NULL, OPT_MAX },
		{ "log-level", required_argument, NULL, OPT_LEVEL },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[200];
	int c;

	memset(cli, 0, sizeof(*cli));
	cli->log_level = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli->config = optarg;
			break;
		case OPT_BIND:
			if (ls_hostport_parse(optarg, &cli->bind, false, true, err, sizeof(err)) < 0)
				cli_fail("--bind: %s (expected ADDR:PORT, e.g. 0.0.0.0:4434)", err);
			cli->bind_set = true;
			break;
		case OPT_SOCKET:
			if (!optarg[0] || strlen(optarg) >= sizeof(((struct px_conf_main *)0)->socket))
				cli_fail("--socket: the path must be 1 to %zu bytes",
					 sizeof(((struct px_conf_main *)0)->socket) - 1);
			cli->socket = optarg;
			cli->socket_set = true;
			break;
		case OPT_ALLOW:
			if (cli->allow.n >= LS_MAX_ALLOW)
				cli_fail("--allow: at most %d ranges", LS_MAX_ALLOW);
			if (ls_cidr_parse(optarg, &cli->allow.c[cli->allow.n]) < 0)
				cli_fail("--allow: '%s' is not a CIDR (a.b.c.d/len)", optarg);
			cli->allow.n++;
			cli->allow_set = true;
			break;
		case OPT_INSECURE:
			cli->insecure = true;
			break;
		case OPT_IDLE:
			if (ls_parse_i64(optarg, 1, PX_IDLE_MAX, &cli->idle) < 0)
				cli_fail("--idle-timeout: '%s' is not a number of seconds in 1..%d",
					 optarg, PX_IDLE_MAX);
			cli->idle_set = true;
			break;
		case OPT_MAX:
			if (ls_parse_i64(optarg, 1, PX_SESSIONS_MAX, &cli->max_sessions) < 0)
				cli_fail("--max-sessions: '%s' is not a number in 1..%d", optarg,
					 PX_SESSIONS_MAX);
			cli->max_set = true;
			break;
		case OPT_LEVEL:
			cli->log_level = ls_log_level_parse(optarg);
			if (cli->log_level < 0)
				cli_fail("--log-level: '%s' is not error, warn, info or debug", optarg);
			break;
		case OPT_CHECK:
			cli->check = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(PX_PROG " %s\n", LS_VERSION);
			exit(0);
		case ':':
			cli_fail("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt && optopt < 256)
				cli_fail("unknown option '-%c'", optopt);
			cli_fail("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		cli_fail("unexpected argument '%s'", argv[optind]);
}

static void apply_cli(const struct cli *cli, struct px_conf *c)
{
	if (cli->bind_set)
		c->proxy.bind = cli->bind;
	if (cli->socket_set)
		snprintf(c->proxy.socket, sizeof(c->proxy.socket), "%s", cli->socket);
	if (cli->allow_set)
		c->proxy.allow = cli->allow;
	if (cli->insecure)
		c->proxy.require_auth = false;
	if (cli->idle_set)
		c->proxy.idle_timeout = cli->idle;
	if (cli->max_set)
		c->proxy.max_sessions = cli->max_sessions;
	if (cli->log_level >= 0)
		c->proxy.log_level = cli->log_level;
}

/* ---- start-up ------------------------------------------------------------------ */

static int watch(struct px *p, struct px_ev *ev, int kind, int fd)
{
	struct epoll_event e = { .events = EPOLLIN };

	ev->kind = kind;
	ev->fd = fd;
	e.data.ptr = ev;
	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &e);
}

static int open_tunnel(struct px *p)
{
	char a[LS_ADDRSTRLEN];
	socklen_t len = sizeof(p->bound);
	int buf = SOCK_BUF;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		ls_err("cannot open the tunnel socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (bind(fd, (struct sockaddr *)&p->conf.proxy.bind, sizeof(p->conf.proxy.bind)) < 0) {
		ls_err("cannot bind the tunnel socket to %s: %s",
		       ls_addr_fmt(&p->conf.proxy.bind, a), strerror(errno));
		close(fd);
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&p->bound, &len) < 0)
		p->bound = p->conf.proxy.bind;
	p->tun_fd = fd;
	return 0;
}

static int open_static_sessions(struct px *p, uint64_t now)
{
	for (const struct px_static *st = p->conf.statics; st; st = st->next) {
		uint64_t pps = st->pps.set ? st->pps.v : p->conf.limits.pps;
		uint64_t bps = st->bps.set ? st->bps.v : p->conf.limits.bps;

		if (!px_session_add_keyed(p, (uint32_t)st->id, st->key.b, st->dests.v, st->dests.n,
					  pps, bps, st->fec.set ? &st->fec.v : NULL, true, false,
					  now)) {
			ls_err("out of memory adding static session %lld", (long long)st->id);
			return -1;
		}
	}
	if (p->conf.nstatic)
		ls_info("%zu static session%s from the configuration", p->conf.nstatic,
			p->conf.nstatic == 1 ? "" : "s");
	return 0;
}

static int start(struct px *p)
{
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	char err[256], a[LS_ADDRSTRLEN];
	sigset_t mask;

	p->epfd = p->tun_fd = p->timer_fd = p->sig_fd = -1;
	p->start_us = ls_now_us();
	/* Nonces and cookies an attacker must not guess (docs/protocol.md 1.6, 1.8). */
	if (ls_prf_init(&p->prf) < 0) {
		ls_err("no randomness from the kernel (getrandom, /dev/urandom): cannot run safely");
		return -1;
	}
	ls_raise_nofile();

	/* Signals arrive as events of the loop, never as handlers racing it. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	p->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->sig_fd < 0 || p->epfd < 0 || p->timer_fd < 0 ||
	    timerfd_settime(p->timer_fd, 0, &its, NULL) < 0) {
		ls_err("cannot set up the event loop: %s", strerror(errno));
		return -1;
	}
	if (px_table_init(&p->tab, (size_t)p->conf.proxy.max_sessions, !p->conf.proxy.require_auth,
			  ls_prf_next(&p->prf)) < 0) {
		ls_err("out of memory for the session table");
		return -1;
	}
	if (open_tunnel(p) < 0 || open_static_sessions(p, p->start_us) < 0)
		return -1;
	p->steer = ls_steer_open(p->conf.proxy.socket, 0660, ls_steer_cmd_proxy, px_ctl_handlers, p,
				 err, sizeof(err));
	if (!p->steer) {
		ls_err("%s", err);
		return -1;
	}
	if (watch(p, &p->ev_tun, PX_EV_TUNNEL, p->tun_fd) < 0 ||
	    watch(p, &p->ev_steer, PX_EV_STEER, ls_steer_fd(p->steer)) < 0 ||
	    watch(p, &p->ev_timer, PX_EV_TIMER, p->timer_fd) < 0 ||
	    watch(p, &p->ev_sig, PX_EV_SIGNAL, p->sig_fd) < 0) {
		ls_err("cannot watch the sockets: %s", strerror(errno));
		return -1;
	}
	px_flows_refill(p);
	ls_info(PX_PROG " " LS_VERSION ": listening on %s (steering %s, auth %s, max_sessions "
		"%lld, idle_timeout %llds)", ls_addr_fmt(&p->bound, a), p->conf.proxy.socket,
		p->conf.proxy.require_auth ? "required" : "OFF", (long long)p->conf.proxy.max_sessions,
		(long long)p->conf.proxy.idle_timeout);
	for (int i = 0; i < p->conf.proxy.allow.n; i++) {
		ls_cidr_fmt(&p->conf.proxy.allow.c[i], err, sizeof(err));
		ls_info("denied range exception: %s", err);
	}
	if (!p->conf.proxy.require_auth)
		ls_warn("*** AUTHENTICATION IS OFF (--insecure-no-auth): anyone who can reach %s "
			"can relay through this proxy. Use it for tests only. ***",
			ls_addr_fmt(&p->bound, a));
	return 0;
}

/* ---- the loop ------------------------------------------------------------------ */

static void housekeeping(struct px *p)
{
	uint64_t now = ls_now_us();
	uint64_t idle = (uint64_t)p->conf.proxy.idle_timeout * 1000000u;
	uint64_t expirations;
	struct px_session *s, *next;

	/* The count of expirations is not needed: one pass catches up. */
	if (read(p->timer_fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
		return;
	for (s = p->tab.head; s; s = next) {
		next = s->next;
		if (now - s->last_us >= idle) {
			/* A static session only has a client and flows to lose. */
			if (!s->is_static || px_session_has_client(s) || s->flows) {
				p->ctr.sessions_expired++;
				px_session_end(p, s, PX_END_IDLE);
			}
			continue;
		}
		for (struct px_flow *f = s->flows, *fn; f; f = fn) {
			fn = f->next;
			/* A game socket that went quiet frees its slot for a new one. */
			if (now - f->last_us >= idle)
				px_flow_close(p, f);
			else if (f->dec)
				ls_fec_dec_expire(f->dec, now); /* count blocks never completed */
		}
		px_revalidate(p, s, now);
	}
	px_tx_flush(p);
	px_ctl_counters_event(p);
}

/* The command line the proxy started with: a reload applies it over the file again. */
static const struct cli *px_cli;

/* The configuration as at start: defaults, the file, the command line, the checks. */
static int conf_read(const struct cli *cli, struct px_conf *c, char *err, size_t errlen)
{
	px_conf_defaults(c);
	if (cli->config && px_conf_load(c, cli->config, err, errlen) < 0)
		return -1;
	apply_cli(cli, c);
	if (px_conf_validate(c, cli->config ? cli->config : "command line", err, errlen) < 0)
		return -1;
	if (cli->config && c->nstatic)
		ls_secret_check_mode(cli->config, "session keys");
	return 0;
}

/* SIGHUP: parse into a new configuration; on any error the old one stays in force. */
static void reload(struct px *p)
{
	struct px_conf next;
	char err[512];

	if (!px_cli->config) {
		ls_warn("SIGHUP: started without a configuration file (-c, " PX_DEFAULT_CONFIG
			"): nothing to reload");
		return;
	}
	if (conf_read(px_cli, &next, err, sizeof(err)) < 0) {
		ls_err("SIGHUP: %s; still running on the configuration loaded before", err);
		px_conf_free(&next);
		return;
	}
	px_reload(p, &next, px_cli->config);
}

/* Returns true when the process should stop. */
static bool on_signal(struct px *p)
{
	struct signalfd_siginfo si;
	bool stop = false;

	while (read(p->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(p);
			continue;
		}
		ls_info("%s: shutting down", strsignal((int)si.ssi_signo));
		stop = true;
	}
	return stop;
}

static void run(struct px *p)
{
	struct epoll_event evs[64];
	bool stop = false;

	while (!stop) {
		/* Open FEC blocks bound the wait: their parity leaves at their deadline. */
		int timeout = p->fec_next_us ? dp_fec_wait_ms(p->fec_next_us, ls_now_us()) : -1;
		int n = epoll_wait(p->epfd, evs, (int)LS_ARRAY_LEN(evs), timeout);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ls_err("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct px_ev *ev = evs[i].data.ptr;

			switch (ev->kind) {
			case PX_EV_TUNNEL:
				px_tunnel_readable(p);
				break;
			case PX_EV_FLOW:
				/* Closed earlier in this turn: its memory waits for the reap. */
				if (ev->fd >= 0)
					px_flow_readable(p, (struct px_flow *)ev);
				break;
			case PX_EV_STEER:
				p->in_steer = true;
				ls_steer_run(p->steer);
				p->in_steer = false;
				px_ctl_flush_deferred(p);
				/* A `sessions` answer builds a JSON tree of a few KiB per
				 * session; give those pages back rather than keep them
				 * resident until the next listing. */
				malloc_trim(0);
				break;
			case PX_EV_TIMER:
				housekeeping(p);
				break;
			case PX_EV_SIGNAL:
				stop = on_signal(p) || stop;
				break;
			}
		}
		if (p->fec_next_us)
			px_fec_due(p, ls_now_us());
		px_turn_end(p);
	}
}

static void stop_all(struct px *p)
{
	if (p->tun_fd >= 0 && p->tab.by_id)
		px_send_fins(p);
	/* Closing steering first: the sessions below go without events. */
	ls_steer_close(p->steer);
	p->steer = NULL;
	px_ctl_flush_deferred(p);
	while (p->tab.head)
		px_session_delete(p, p->tab.head);
	px_table_free(&p->tab);
	if (p->tun_fd >= 0)
		close(p->tun_fd);
	if (p->timer_fd >= 0)
		close(p->timer_fd);
	if (p->sig_fd >= 0)
		close(p->sig_fd);
	if (p->epfd >= 0)
		close(p->epfd);
}

int main(int argc, char **argv)
{
	static struct px px; /* static: zeroed, and not on the stack */
	struct cli cli;
	char err[512];

	ls_log_init(PX_PROG, LS_LOG_INFO);
	parse_cli(argc, argv, &cli);
	px_cli = &cli;
	if (!cli.config) {
		cli.config = ls_conf_default(PX_DEFAULT_CONFIG, err, sizeof(err));
		if (err[0] && cli.check)
			fprintf(stderr, PX_PROG ": %s\n", err);
		else if (err[0])
			ls_info("%s", err);
	}
	if (conf_read(&cli, &px.conf, err, sizeof(err)) < 0)
		goto conf_error;
	px_conf_warn(&px.conf, cli.check);
	if (cli.check) {
		px_conf_print(&px.conf);
		px_conf_free(&px.conf);
		return 0;
	}
	ls_log_set_level((enum ls_log_level)px.conf.proxy.log_level);

	int rc = 0;
	if (start(&px) == 0)
		run(&px);
	else
		rc = 1;
	stop_all(&px);
	px_conf_free(&px.conf);
	if (rc == 0)
		ls_info("stopped");
	return rc;

conf_error:
	if (cli.check)
		fprintf(stderr, PX_PROG ": %s\n", err);
	else
		ls_err("%s", err);
	px_conf_free(&px.conf);
	return 1;
}
