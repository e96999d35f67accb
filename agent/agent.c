/* lightspeed-agent: the node's control plane. Command line, configuration, start-up,
 * the libuv loop (QUIC endpoint, proxy link, ICMP, HTTP, a 1-second tick, signals),
 * reload on SIGHUP and a clean stop that leaves every session forwarding at the proxy
 * (a restarted agent adopts them). The roles are in quic_server.c, ctl.c, keys.c,
 * sessions.c, pxlink.c, peers.c, icmp.c, http.c, cert.c. */
#include "agent.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "ctl.h"
#include "http.h"
#include "icmp.h"
#include "log.h"
#include "pxlink.h"
#include "quic_server.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " AGENT_PROG " [OPTION]...\n"
		"The LightSpeed node agent: the QUIC control server controllers register with\n"
		"(TLS 1.3, a self-signed certificate they pin); issues per-session keys and\n"
		"pushes them to the proxy; serves /health and /metrics over HTTP.\n"
		"\n"
		"  -c, --config FILE        read the configuration from FILE (TOML; default\n"
		"                           " AGENT_DEFAULT_CONF " when it exists)\n"
		"      --listen ADDR:PORT   QUIC address (default 0.0.0.0:4433)\n"
		"      --http ADDR:PORT     /health and /metrics (default 127.0.0.1:8080; another\n"
		"                           address needs http_token in the configuration)\n"
		"      --proxy-socket PATH  the proxy's steering socket\n"
		"                           (default /run/lightspeed/proxy.sock)\n"
		"      --state-dir DIR      certificate, secrets, sessions (default\n"
		"                           /var/lib/lightspeed)\n"
		"      --node-id ID         this node's name (default: the host name)\n"
		"      --region NAME        this node's region (default none)\n"
		"      --log-level LEVEL    error, warn, info or debug (default info)\n"
		"      --check              validate the configuration, print it and exit\n"
		"  -h, --help               show this help and exit\n"
		"  -V, --version            show the version and exit\n"
		"\n"
		"Options override the configuration file. The control protocol is\n"
		"docs/protocol.md section 2.\n");
}

__attribute__((noreturn, format(printf, 1, 2))) static void cli_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, AGENT_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" AGENT_PROG " --help' for more information.\n");
	exit(2);
}

struct cli {
	const char *config;
	bool check;
	bool listen_set, http_set;
	struct sockaddr_in listen, http;
	const char *proxy_socket, *state_dir, *node_id, *region;
	int log_level;
};

enum {
	OPT_LISTEN = 256, OPT_HTTP, OPT_PROXY, OPT_STATE, OPT_NODE, OPT_REGION, OPT_LEVEL,
	OPT_CHECK,
};

static void cli_name(const char *opt, const char *v, bool empty_ok)
{
	if (!(empty_ok && !v[0]) && !ls_ctl_name_ok(v))
		cli_fail("%s: '%s' must be 1 to %d characters of A-Z a-z 0-9 . _ -", opt, v,
			 LS_CTL_NAME_MAX);
}

static void parse_cli(int argc, char **argv, struct cli *cli)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "http", required_argument, NULL, OPT_HTTP },
		{ "proxy-socket", required_argument, NULL, OPT_PROXY },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "node-id", required_argument, NULL, OPT_NODE },
		{ "region", required_argument, NULL, OPT_REGION },
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
		case OPT_LISTEN:
			if (ls_hostport_parse(optarg, &cli->listen, false, true, err, sizeof(err)) < 0)
				cli_fail("--listen: %s (expected ADDR:PORT, e.g. 0.0.0.0:4433)", err);
			cli->listen_set = true;
			break;
		case OPT_HTTP:
			if (ls_hostport_parse(optarg, &cli->http, false, true, err, sizeof(err)) < 0)
				cli_fail("--http: %s (expected ADDR:PORT, e.g. 127.0.0.1:8080)", err);
			cli->http_set = true;
			break;
		case OPT_PROXY:
			if (!optarg[0] || strlen(optarg) >= sizeof(((struct agent_conf *)0)->agent.proxy_socket))
				cli_fail("--proxy-socket: the path must be 1 to %zu bytes",
					 sizeof(((struct agent_conf *)0)->agent.proxy_socket) - 1);
			cli->proxy_socket = optarg;
			break;
		case OPT_STATE:
			if (!optarg[0] || strlen(optarg) >= sizeof(((struct agent_conf *)0)->agent.state_dir))
				cli_fail("--state-dir: the path must be 1 to %zu bytes",
					 sizeof(((struct agent_conf *)0)->agent.state_dir) - 1);
			cli->state_dir = optarg;
			break;
		case OPT_NODE:
			cli_name("--node-id", optarg, false);
			cli->node_id = optarg;
			break;
		case OPT_REGION:
			cli_name("--region", optarg, true);
			cli->region = optarg;
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
			printf(AGENT_PROG " %s\n", LS_VERSION);
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

static void apply_cli(const struct cli *cli, struct agent_conf *c)
{
	if (cli->listen_set)
		c->agent.listen = cli->listen;
	if (cli->http_set)
		c->agent.http = cli->http;
	if (cli->proxy_socket)
		snprintf(c->agent.proxy_socket, sizeof(c->agent.proxy_socket), "%s", cli->proxy_socket);
	if (cli->state_dir)
		snprintf(c->agent.state_dir, sizeof(c->agent.state_dir), "%s", cli->state_dir);
	if (cli->node_id)
		snprintf(c->agent.node_id, sizeof(c->agent.node_id), "%s", cli->node_id);
	if (cli->region)
		snprintf(c->agent.region, sizeof(c->agent.region), "%s", cli->region);
	if (cli->log_level >= 0)
		c->agent.log_level = cli->log_level;
}

/* The configuration: the file (named, or the default one when it exists), then the
 * command line over it. 0, or -1 with err. */
static int load_conf(const struct cli *cli, struct agent_conf *c, const char **name, char *err,
		     size_t errlen)
{
	const char *path = cli->config;

	agent_conf_defaults(c);
	if (!path && access(AGENT_DEFAULT_CONF, F_OK) == 0)
		path = AGENT_DEFAULT_CONF;
	if (path && agent_conf_load(c, path, err, errlen) < 0)
		return -1;
	apply_cli(cli, c);
	*name = path ? path : "command line";
	return agent_conf_validate(c, *name, err, errlen);
}

/* ---- the loop ---------------------------------------------------------------------- */

static struct agent ag;
static struct cli cli_opts;
static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t watchdog;

/* ---- systemd (Type=notify) --------------------------------------------------------- */

/* READY=1 only once the certificate is loaded and every socket is open, so that
 * `systemctl start` returns (and units ordered after the agent start) when the QUIC and
 * HTTP ports answer; STOPPING=1 at a stop; WATCHDOG=1 from the loop itself at half the
 * unit's WatchdogSec, so a loop that stops turning is restarted. Outside systemd
 * (no NOTIFY_SOCKET) these do nothing. */
static void notify(const char *what, int rc)
{
	if (rc < 0)
		ls_warn("systemd notification %s: %s", what, strerror(-rc));
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	notify("WATCHDOG=1", sd_notify(0, "WATCHDOG=1"));
}

static void notify_ready(struct agent *a)
{
	uint64_t usec = 0;

	notify("READY=1", sd_notifyf(0, "READY=1\nSTATUS=node %s, certificate %s",
				     a->conf.agent.node_id, a->cert.fp_str));
	if (sd_watchdog_enabled(0, &usec) > 0) {
		uint64_t ms = usec / 2000u ? usec / 2000u : 1u;

		uv_timer_start(&watchdog, on_watchdog, ms, ms);
		ls_debug("systemd watchdog: every %llu ms", (unsigned long long)ms);
	}
}

static void stop(struct agent *a)
{
	char err[300];

	if (a->stopping)
		return;
	a->stopping = true;
	ls_info("stopping: sessions stay at the proxy; a restarted agent resumes them");
	notify("STOPPING=1", sd_notify(0, "STOPPING=1"));
	a->sess.dirty = true;
	if (sessions_save(&a->sess, err, sizeof(err)) != 0)
		ls_warn("saving the sessions: %s", err);
	if (a->qs)
		qs_close(a->qs, LS_CTL_R_SHUTDOWN);
	ctl_free(a);
	http_close(a->http);
	pxlink_close(a->px);
	icmp_close(a->icmp);
	uv_close((uv_handle_t *)&a->tick, NULL);
	uv_close((uv_handle_t *)&a->save, NULL);
	uv_close((uv_handle_t *)&watchdog, NULL);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_hup, NULL);
}

/* SIGHUP: parse into a new struct; on error keep the old one. What the running sockets
 * were opened with (listen, http, proxy_socket, state_dir, node_id) needs a restart. */
static void reload(struct agent *a)
{
	static struct agent_conf nc;
	const char *name;
	char err[600];

	if (load_conf(&cli_opts, &nc, &name, err, sizeof(err)) < 0) {
		ls_err("reload: %s (keeping the running configuration)", err);
		return;
	}
	if (memcmp(&nc.agent.listen, &a->conf.agent.listen, sizeof(nc.agent.listen)) ||
	    memcmp(&nc.agent.http, &a->conf.agent.http, sizeof(nc.agent.http)) ||
	    strcmp(nc.agent.proxy_socket, a->conf.agent.proxy_socket) ||
	    strcmp(nc.agent.state_dir, a->conf.agent.state_dir) ||
	    strcmp(nc.agent.node_id, a->conf.agent.node_id))
		ls_warn("reload: listen, http, proxy_socket, state_dir and node_id take effect at "
			"the next start");
	nc.agent.listen = a->conf.agent.listen;
	nc.agent.http = a->conf.agent.http;
	memcpy(nc.agent.proxy_socket, a->conf.agent.proxy_socket, sizeof(nc.agent.proxy_socket));
	memcpy(nc.agent.state_dir, a->conf.agent.state_dir, sizeof(nc.agent.state_dir));
	memcpy(nc.agent.node_id, a->conf.agent.node_id, sizeof(nc.agent.node_id));
	nc.quic = a->conf.quic;
	a->conf = nc;
	ls_log_set_level((enum ls_log_level)a->conf.agent.log_level);
	ls_info("reloaded %s", name);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct agent *a = h->data;

	if (signum == SIGHUP)
		reload(a);
	else
		stop(a);
}

static void on_tick(uv_timer_t *t)
{
	ctl_tick(t->data);
}

static const struct pxlink_ops px_ops = {
	.up = ctl_proxy_up,
	.down = ctl_proxy_down,
	.session_down = ctl_proxy_session_down,
};

static int start(struct agent *a)
{
	char err[600], ab[LS_ADDRSTRLEN];
	unsigned skipped = 0;
	int n;

	a->start_us = ls_now_us();
	if (cert_load(a->conf.agent.state_dir, a->conf.agent.node_id, &a->cert, err, sizeof(err)) != 0) {
		ls_err("identity: %s", err);
		return -1;
	}
	if (sessions_init(&a->sess, a->conf.agent.state_dir) != 0) {
		ls_err("out of memory");
		return -1;
	}
	n = sessions_load(&a->sess, a->start_us, &skipped, err, sizeof(err));
	if (n < 0)
		ls_warn("sessions: %s (starting without them)", err);
	else if (n > 0 || skipped)
		ls_info("%d sessions from the last run (%u unreadable lines skipped): adopted from "
			"the proxy or added again, kept %lld s for their controllers", n, skipped,
			(long long)a->conf.agent.resume_grace);
	for (struct session *s = a->sess.head; s; s = s->next)
		for (uint8_t i = 0; i < s->ndests; i++)
			if (s->dests[i].cidr.len == 32)
				icmp_ref(a->icmp, s->dests[i].cidr.net);

	struct qs_conf qc = {
		.listen = a->conf.agent.listen,
		.cert_file = a->cert.cert_path,
		.key_file = a->cert.key_path,
		.secret = a->cert.secret,
		.idle_timeout_ms = (uint32_t)a->conf.agent.idle_timeout * 1000u,
		.handshake_timeout_ms = (uint32_t)a->conf.quic.handshake_timeout_ms,
		.stream_timeout_ms = (uint32_t)a->conf.quic.stream_timeout_ms,
		.max_conns = (uint32_t)a->conf.quic.max_conns,
		.max_conns_per_addr = (uint32_t)a->conf.quic.max_conns_per_addr,
		.max_half_open = (uint32_t)a->conf.quic.max_half_open,
		.max_half_open_per_addr = (uint32_t)a->conf.quic.max_half_open_per_addr,
		.retry_after = (uint32_t)a->conf.quic.retry_after,
	};
	a->qs = qs_open(a->loop, &qc, &ctl_qs_ops, a, err, sizeof(err));
	if (!a->qs) {
		ls_err("%s", err);
		return -1;
	}
	a->px = pxlink_open(a->loop, a->conf.agent.proxy_socket, &px_ops, a, err, sizeof(err));
	if (!a->px) {
		ls_err("proxy link: %s", err);
		return -1;
	}
	a->http = http_open(a, err, sizeof(err));
	if (!a->http) {
		ls_err("%s", err);
		return -1;
	}
	uv_timer_start(&a->tick, on_tick, 1000, 1000);
	ls_info(AGENT_PROG " %s: node %s%s%s, QUIC on %s (ALPN " LS_CTL_ALPN "), proxy %s",
		LS_VERSION, a->conf.agent.node_id, a->conf.agent.region[0] ? " in " : "",
		a->conf.agent.region, ls_ipport_fmt(ntohl(a->conf.agent.listen.sin_addr.s_addr),
						   qs_port(a->qs), ab),
		a->conf.agent.proxy_socket);
	ls_info("certificate %s%s (%s): controllers pin this fingerprint", a->cert.fp_str,
		a->cert.created ? ", new" : "", a->cert.cert_path);
	return 0;
}

int main(int argc, char **argv)
{
	struct agent *a = &ag;
	const char *name;
	char err[600];
	int rc = 0;

	ls_log_init(AGENT_PROG, LS_LOG_INFO);
	parse_cli(argc, argv, &cli_opts);
	if (load_conf(&cli_opts, &a->conf, &name, err, sizeof(err)) < 0) {
		if (cli_opts.check)
			fprintf(stderr, AGENT_PROG ": %s\n", err);
		else
			ls_err("%s", err);
		return 1;
	}
	if (cli_opts.check) {
		agent_conf_print(&a->conf);
		return 0;
	}
	if (strcmp(name, "command line") != 0)
		ls_info("configuration %s", name);
	ls_log_set_level((enum ls_log_level)a->conf.agent.log_level);
	signal(SIGPIPE, SIG_IGN);
	ls_raise_nofile();
	a->loop = uv_default_loop();
	a->icmp = icmp_open(a->loop, (uint32_t)a->conf.agent.icmp_interval_ms);
	uv_timer_init(a->loop, &a->tick);
	uv_timer_init(a->loop, &a->save);
	uv_timer_init(a->loop, &watchdog);
	a->tick.data = a->save.data = a;
	uv_signal_init(a->loop, &sig_term);
	uv_signal_init(a->loop, &sig_int);
	uv_signal_init(a->loop, &sig_hup);
	sig_term.data = sig_int.data = sig_hup.data = a;
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_signal_start(&sig_hup, on_signal, SIGHUP);
	if (start(a) != 0) {
		rc = 1;
		stop(a);
	} else {
		notify_ready(a);
	}
	uv_run(a->loop, UV_RUN_DEFAULT);
	uv_loop_close(a->loop);
	sessions_free(&a->sess);
	if (rc == 0)
		ls_info("stopped");
	return rc;
}
