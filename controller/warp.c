/* lightspeed-controller: Cloudflare WARP (see warp.h). warp-cli runs as a child process
 * of the loop (uv_spawn), never waited for; the interface and routes are read over
 * rtnetlink. A comparison is a small state machine stepped by a timer:
 *
 *   idle -> measure (WARP as the user left it) -> toggle -> settle (status polled until
 *   it reports the other state) -> measure -> keep it, or toggle back and settle
 *
 * It compares the best node's median RTT (the node selection would use) on each side
 * and keeps the new state only when it is better by more than 1 ms; a tie keeps what
 * the user had. A game starting in between aborts it and puts WARP back. */
#include "controller.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "nlmsg.h"
#include "util.h"

#define WARP_TICK_MS 250
#define WARP_CLI_TIMEOUT_US (5ull * 1000000)
#define WARP_SETTLE_POLL_US (500ull * 1000)
#define WARP_SETTLE_MAX_US (20ull * 1000000)
#define WARP_AFTER_TOGGLE_US (1000ull * 1000) /* samples of the switch itself are left out */
#define WARP_BETTER_BY_US 1000
#define WARP_MAX_ROUTES 16

enum warp_state { W_UNKNOWN, W_CONNECTED, W_DISCONNECTED, W_CONNECTING, W_DISCONNECTING };
static const char *const state_names[] = { "unknown", "connected", "disconnected", "connecting",
					   "disconnecting" };

enum phase { P_IDLE, P_MEASURE, P_SETTLE, P_MEASURE_OTHER, P_RESTORE };

struct warp {
	struct ctrl *c;
	uv_timer_t tick;
	char cli_path[512];          /* "" not installed */

	/* One warp-cli run at a time. */
	uv_process_t proc;
	uv_pipe_t out;
	bool running;
	unsigned open_handles;       /* proc and out, until their close callbacks */
	int64_t exit_status;
	char obuf[2048];
	size_t olen;
	char cmd[16];
	uint64_t run_started;

	enum warp_state state;
	char detail[96];             /* warp-cli's words */
	uint64_t next_check;

	/* The machine. */
	bool if_present, if_up;
	char if_addr[16];
	char routes[WARP_MAX_ROUTES][48];
	unsigned nroutes;
	bool node_via[NODE_MAX];

	/* Comparing. */
	enum phase phase;
	uint64_t phase_at, next_compare;
	bool requested;
	bool orig_connected;         /* the state the user left WARP in */
	enum warp_state target;      /* what settle waits for */
	const char *toggle_cmd;      /* the toggle still to run (a status run was in flight) */
	bool toggle_ran;             /* the toggle has run ... */
	bool fresh;                  /* ... and a status read after it said what WARP is */
	int64_t rtt[2][NODE_MAX];    /* [connected?][slot] median, us; -1 unknown */
	struct {
		bool have;
		char time[32];
		bool before_connected, kept_connected;
		char reason[200];
		char names[NODE_MAX][NODE_NAME_MAX];
		int64_t rtt[2][NODE_MAX];
	} last;
};

void warp_conf_defaults(struct warp_conf *w)
{
	memset(w, 0, sizeof(*w));
	w->allow_toggle = false;
	w->compare_every_s = 0;
	snprintf(w->cli, sizeof(w->cli), "warp-cli");
	snprintf(w->interface, sizeof(w->interface), "CloudflareWARP");
	w->check_ms = 10000;
	w->measure_ms = 5000;
}

const struct ls_conf_field warp_conf_fields[] = {
	{ "allow_toggle", LS_CF_BOOL, offsetof(struct warp_conf, allow_toggle), 0, 0, 0, NULL },
	{ "compare_every_s", LS_CF_UINT, offsetof(struct warp_conf, compare_every_s), 0, 0, 604800,
	  NULL },
	{ "cli", LS_CF_STRING, offsetof(struct warp_conf, cli), sizeof(((struct warp_conf *)0)->cli),
	  0, 0, NULL },
	{ "interface", LS_CF_STRING, offsetof(struct warp_conf, interface),
	  sizeof(((struct warp_conf *)0)->interface), 0, 0, NULL },
	{ "check_ms", LS_CF_UINT, offsetof(struct warp_conf, check_ms), 0, 1000, 600000, NULL },
	{ "measure_ms", LS_CF_UINT, offsetof(struct warp_conf, measure_ms), 0, 1000, 60000, NULL },
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

/* ---- the program ------------------------------------------------------------------- */

static void find_cli(struct warp *w)
{
	const char *cli = w->c->conf.warp.cli, *path = getenv("PATH");

	w->cli_path[0] = '\0';
	if (!cli[0])
		return;
	if (strchr(cli, '/')) {
		if (access(cli, X_OK) == 0)
			snprintf(w->cli_path, sizeof(w->cli_path), "%s", cli);
		return;
	}
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char cand[sizeof(w->cli_path)];
		if (n > 0 && n + strlen(cli) + 2 < sizeof(cand)) {
			snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, p, cli);
			if (access(cand, X_OK) == 0) {
				snprintf(w->cli_path, sizeof(w->cli_path), "%s", cand);
				return;
			}
		}
		p += n + (e != NULL);
	}
}

/* "Status update: Connected" (and the lines after it) into a state. */
static enum warp_state parse_status(const char *out, char *detail, size_t dlen)
{
	const char *s = strcasestr(out, "status update:");
	char word[32] = "";
	size_t n = 0;

	if (!s) {
		/* Keep the first line: it says why (the daemon not running, ...). */
		snprintf(detail, dlen, "%.*s", (int)strcspn(out, "\n"), out);
		return W_UNKNOWN;
	}
	s += strlen("status update:");
	while (*s == ' ' || *s == '\t')
		s++;
	while (n + 1 < sizeof(word) && ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
		word[n++] = *s++;
	word[n] = '\0';
	snprintf(detail, dlen, "Status update: %s", word);
	for (int i = W_CONNECTED; i <= W_DISCONNECTING; i++)
		if (strcasecmp(word, state_names[i]) == 0)
			return (enum warp_state)i;
	return W_UNKNOWN;
}

static void run_done(struct warp *w);

static void on_handle_closed(uv_handle_t *h)
{
	struct warp *w = h->data;

	if (--w->open_handles == 0) {
		w->running = false;
		run_done(w);
	}
}

static void cli_exited(uv_process_t *p, int64_t status, int sig)
{
	struct warp *w = p->data;

	w->exit_status = sig ? -sig : status;
	uv_close((uv_handle_t *)p, on_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct warp *w = h->data;

	(void)hint;
	/* Whatever does not fit is read and dropped: the status is in the first lines. */
	static char sink[512];
	if (w->olen + 1 < sizeof(w->obuf))
		*buf = uv_buf_init(w->obuf + w->olen, (unsigned)(sizeof(w->obuf) - 1 - w->olen));
	else
		*buf = uv_buf_init(sink, sizeof(sink));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct warp *w = s->data;

	if (n > 0 && buf->base >= w->obuf && buf->base < w->obuf + sizeof(w->obuf))
		w->olen += (size_t)n;
	if (n < 0)
		uv_close((uv_handle_t *)s, on_handle_closed);
}

/* Start `warp-cli --accept-tos SUB`; false when one is running or it cannot start. */
static bool run_cli(struct warp *w, const char *sub)
{
	char tos[] = "--accept-tos", subcmd[16];
	char *args[] = { w->cli_path, tos, subcmd, NULL };
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&w->out },
		{ .flags = UV_IGNORE },
	};
	uv_process_options_t o = { .exit_cb = cli_exited, .file = w->cli_path, .args = args,
				   .stdio = stdio, .stdio_count = 3 };
	int rc;

	if (w->running || !w->cli_path[0])
		return false;
	snprintf(subcmd, sizeof(subcmd), "%s", sub);
	uv_pipe_init(w->c->loop, &w->out, 0);
	w->out.data = w;
	w->proc.data = w;
	w->olen = 0;
	w->exit_status = 0;
	snprintf(w->cmd, sizeof(w->cmd), "%s", sub);
	rc = uv_spawn(w->c->loop, &w->proc, &o);
	if (rc < 0) {
		ls_warn("warp: %s %s: %s", w->cli_path, sub, uv_strerror(rc));
		/* Both handles were initialised: both are closed before the next run. */
		w->open_handles = 2;
		w->running = true;
		w->exit_status = -1;
		uv_close((uv_handle_t *)&w->proc, on_handle_closed);
		uv_close((uv_handle_t *)&w->out, on_handle_closed);
		return false;
	}
	w->open_handles = 2;
	w->running = true;
	w->run_started = ls_now_us();
	uv_read_start((uv_stream_t *)&w->out, on_alloc, on_read);
	return true;
}

/* ---- the machine ------------------------------------------------------------------- */

struct route_dump {
	struct warp *w;
	int ifindex;
	int oif;    /* the answer of a single lookup */
};

static void route_cb(const struct nlmsghdr *h, void *ctx)
{
	struct route_dump *d = ctx;
	const struct rtmsg *rt = NLMSG_DATA(h);
	int len;
	const struct nlattr *start, *a = NULL;
	uint32_t dst = 0, table = rt->rtm_table;
	int oif = 0;

	if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(*rt)) ||
	    rt->rtm_family != AF_INET)
		return;
	start = ls_nl_attrs(h, sizeof(*rt), &len);
	while ((a = ls_nl_next(a, start, &len)) != NULL) {
		if (ls_nl_type(a) == RTA_DST && a->nla_len >= NLA_HDRLEN + 4)
			memcpy(&dst, ls_nl_data(a), 4);
		else if (ls_nl_type(a) == RTA_OIF)
			oif = (int)ls_nl_u32(a);
		else if (ls_nl_type(a) == RTA_TABLE)
			table = ls_nl_u32(a);
	}
	d->oif = oif;
	if (!d->w || oif != d->ifindex || rt->rtm_type != RTN_UNICAST ||
	    d->w->nroutes == WARP_MAX_ROUTES)
		return;
	char ip[INET_ADDRSTRLEN], *r = d->w->routes[d->w->nroutes++];
	inet_ntop(AF_INET, &dst, ip, sizeof(ip));
	if (table == RT_TABLE_MAIN)
		snprintf(r, 48, "%s/%u", ip, rt->rtm_dst_len);
	else
		snprintf(r, 48, "%s/%u table %u", ip, rt->rtm_dst_len, table);
}

/* The routes through the interface (every table), and which nodes' traffic takes it. */
static void read_routes(struct warp *w, int ifindex)
{
	static struct ls_nlb b;
	char err[128];
	int fd = ls_nl_socket(NETLINK_ROUTE, err, sizeof(err));
	struct route_dump d = { w, ifindex, 0 };

	w->nroutes = 0;
	memset(w->node_via, 0, sizeof(w->node_via));
	if (fd < 0)
		return;
	ls_nlb_reset(&b);
	size_t m = ls_nlb_msg(&b, RTM_GETROUTE, NLM_F_DUMP, 1);
	struct rtmsg *rt = ls_nlb_put(&b, sizeof(*rt));
	if (rt)
		rt->rtm_family = AF_INET;
	ls_nlb_end(&b, m);
	ls_nl_talk(fd, &b, true, route_cb, &d, NULL);
	for (int i = 0; i < NODE_MAX; i++) {
		const struct node *n = &w->c->nodes.n[i];
		struct route_dump one = { NULL, ifindex, 0 };
		if (!n->used)
			continue;
		/* What the kernel would do with the tunnel's next datagram to the node. */
		ls_nlb_reset(&b);
		m = ls_nlb_msg(&b, RTM_GETROUTE, NLM_F_ACK, 2);
		rt = ls_nlb_put(&b, sizeof(*rt));
		if (rt) {
			rt->rtm_family = AF_INET;
			rt->rtm_dst_len = 32;
		}
		ls_nlb_attr(&b, RTA_DST, &n->conf.addr.sin_addr.s_addr, 4);
		ls_nlb_end(&b, m);
		if (ls_nl_talk(fd, &b, false, route_cb, &one, NULL) == 0)
			w->node_via[i] = one.oif == ifindex;
	}
	close(fd);
}

static void read_machine(struct warp *w)
{
	const char *name = w->c->conf.warp.interface;
	unsigned idx = name[0] ? if_nametoindex(name) : 0;
	struct ifaddrs *ifa;

	w->if_present = idx != 0;
	w->if_up = false;
	w->if_addr[0] = '\0';
	if (w->if_present && getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
			if (!i->ifa_name || strcmp(i->ifa_name, name) != 0)
				continue;
			w->if_up = w->if_up || (i->ifa_flags & IFF_UP);
			if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
				inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
					  w->if_addr, sizeof(w->if_addr));
		}
		freeifaddrs(ifa);
	}
	if (w->if_present)
		read_routes(w, (int)idx);
	else {
		w->nroutes = 0;
		memset(w->node_via, 0, sizeof(w->node_via));
	}
}

/* ---- comparing ------------------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Each node's median RTT over the last measure_ms (at least 3 samples), into out. */
static void measure(struct warp *w, uint64_t now, int64_t out[NODE_MAX])
{
	static struct health_sample s[HEALTH_SAMPLES];
	static uint32_t v[HEALTH_SAMPLES];

	for (int i = 0; i < NODE_MAX; i++) {
		const struct node *n = &w->c->nodes.n[i];
		unsigned k = n->used ? health_samples(&n->health, now, (uint32_t)w->c->conf.warp.measure_ms, s,
						      HEALTH_SAMPLES) : 0;
		out[i] = -1;
		if (k < 3)
			continue;
		for (unsigned j = 0; j < k; j++)
			v[j] = s[j].rtt_us;
		qsort(v, k, sizeof(v[0]), cmp_u32);
		out[i] = v[k / 2];
	}
}

static int64_t best(const int64_t r[NODE_MAX])
{
	int64_t b = -1;

	for (int i = 0; i < NODE_MAX; i++)
		if (r[i] >= 0 && (b < 0 || r[i] < b))
			b = r[i];
	return b;
}

static const char *on_off(bool connected)
{
	return connected ? "connected" : "disconnected";
}

static void toggle(struct warp *w, bool connect, enum phase next, uint64_t now)
{
	ls_info("warp: %s WARP (%s)", connect ? "connecting" : "disconnecting",
		next == P_RESTORE ? "putting it back as it was" : "to measure the other way");
	w->target = connect ? W_CONNECTED : W_DISCONNECTED;
	w->phase = next;
	w->phase_at = now;
	w->toggle_ran = false;
	w->fresh = false;
	w->toggle_cmd = connect ? "connect" : "disconnect";
	/* A status run in flight delays the toggle to the tick after it (step()). */
	if (!w->running) {
		run_cli(w, w->toggle_cmd);
		w->toggle_cmd = NULL;
	}
}

static void finish(struct warp *w, bool kept_connected, const char *reason)
{
	time_t t = time(NULL);

	w->last.have = true;
	strftime(w->last.time, sizeof(w->last.time), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	w->last.before_connected = w->orig_connected;
	w->last.kept_connected = kept_connected;
	/* A restore comes back with the reason it noted before it toggled. */
	if (reason != w->last.reason)
		snprintf(w->last.reason, sizeof(w->last.reason), "%s", reason);
	memcpy(w->last.rtt, w->rtt, sizeof(w->rtt));
	for (int i = 0; i < NODE_MAX; i++)
		snprintf(w->last.names[i], NODE_NAME_MAX, "%s",
			 w->c->nodes.n[i].used ? w->c->nodes.n[i].conf.name : "");
	ls_info("warp: comparison done: WARP stays %s (%s)", on_off(kept_connected), reason);
	if (api_streams(w->c))
		ctrl_publish(w->c, "warp", json_pack("{s:o}", "warp", warp_json(w)));
}

static void abort_compare(struct warp *w, const char *why, uint64_t now)
{
	ls_warn("warp: comparison stopped: %s", why);
	/* Only while nothing was toggled is there nothing to put back: once the toggle has
	 * been asked for, the status read so far may not show it yet. */
	if (w->phase == P_MEASURE || (w->phase == P_SETTLE && w->toggle_cmd)) {
		w->toggle_cmd = NULL;
		w->phase = P_IDLE;
		finish(w, w->orig_connected, why);
		return;
	}
	snprintf(w->last.reason, sizeof(w->last.reason), "%s", why);
	toggle(w, w->orig_connected, P_RESTORE, now);
}

static bool can_compare(const struct warp *w, char *why, size_t len)
{
	const struct ctrl *c = w->c;
	bool measured = false;

	for (int i = 0; i < NODE_MAX && !measured; i++)
		measured = c->nodes.n[i].used && c->nodes.n[i].health.n >= 3;
	if (!w->cli_path[0])
		snprintf(why, len, "WARP is not installed (no %s)", c->conf.warp.cli);
	else if (w->state != W_CONNECTED && w->state != W_DISCONNECTED)
		snprintf(why, len, "WARP's status is %s, neither connected nor disconnected",
			 state_names[w->state]);
	else if (game_detect_playing(c->games))
		snprintf(why, len, "a game is being played");
	else if (!dplink_connected(c->dp) || !measured)
		snprintf(why, len, "no node is measured yet");
	else
		return true;
	return false;
}

static void step(struct warp *w, uint64_t now)
{
	const struct warp_conf *cf = &w->c->conf.warp;
	char why[160];

	switch (w->phase) {
	case P_IDLE:
		if (!w->requested && !(cf->allow_toggle && now >= w->next_compare))
			return;
		if (!can_compare(w, why, sizeof(why)))
			return; /* due: it starts as soon as it can */
		w->requested = false;
		w->next_compare = cf->compare_every_s ? now + (uint64_t)cf->compare_every_s * 1000000 :
							UINT64_MAX;
		w->orig_connected = w->state == W_CONNECTED;
		memset(w->rtt, 0xff, sizeof(w->rtt));
		w->phase = P_MEASURE;
		w->phase_at = now;
		ls_info("warp: comparing every node with and without WARP (%s); first as it is: %s",
			cf->allow_toggle ? "[warp] allow_toggle" : "asked through the API",
			on_off(w->orig_connected));
		return;
	case P_MEASURE:
		if (game_detect_playing(w->c->games))
			return abort_compare(w, "a game started", now);
		if (now - w->phase_at < (uint64_t)cf->measure_ms * 1000)
			return;
		measure(w, now, w->rtt[w->orig_connected]);
		toggle(w, !w->orig_connected, P_SETTLE, now);
		return;
	case P_SETTLE:
	case P_RESTORE:
		if (w->phase == P_SETTLE && game_detect_playing(w->c->games))
			return abort_compare(w, "a game started", now);
		if (w->toggle_cmd && !w->running) {
			run_cli(w, w->toggle_cmd);
			w->toggle_cmd = NULL;
			return;
		}
		if (w->fresh && w->state == w->target && !w->running) {
			if (w->phase == P_RESTORE) {
				w->phase = P_IDLE;
				finish(w, w->orig_connected, w->last.reason);
				return;
			}
			w->phase = P_MEASURE_OTHER;
			w->phase_at = now + WARP_AFTER_TOGGLE_US;
			return;
		}
		if (now - w->phase_at > WARP_SETTLE_MAX_US) {
			snprintf(why, sizeof(why), "WARP did not become %s within %llu s (status %s)",
				 state_names[w->target], WARP_SETTLE_MAX_US / 1000000,
				 state_names[w->state]);
			if (w->phase == P_RESTORE) {
				ls_warn("warp: %s: left as it is", why);
				w->phase = P_IDLE;
				finish(w, w->state == W_CONNECTED, why);
				return;
			}
			return abort_compare(w, why, now);
		}
		if (!w->running && w->toggle_ran && now >= w->next_check) {
			w->next_check = now + WARP_SETTLE_POLL_US;
			run_cli(w, "status");
		}
		return;
	case P_MEASURE_OTHER: {
		if (game_detect_playing(w->c->games))
			return abort_compare(w, "a game started", now);
		if (now < w->phase_at || now - w->phase_at < (uint64_t)cf->measure_ms * 1000)
			return;
		bool other = !w->orig_connected;
		measure(w, now, w->rtt[other]);
		int64_t b_orig = best(w->rtt[w->orig_connected]), b_other = best(w->rtt[other]);
		if (b_other >= 0 && (b_orig < 0 || b_other + WARP_BETTER_BY_US < b_orig)) {
			snprintf(why, sizeof(why), "best node %.1f ms %s against %.1f ms %s",
				 (double)b_other / 1000, other ? "with WARP" : "without WARP",
				 (double)b_orig / 1000, other ? "without" : "with");
			w->phase = P_IDLE;
			finish(w, other, why);
			return;
		}
		if (b_other < 0)
			snprintf(why, sizeof(why), "no node answered %s", other ? "with WARP" : "without WARP");
		else
			snprintf(why, sizeof(why), "best node %.1f ms %s, %.1f ms %s: not better by 1 ms",
				 (double)b_other / 1000, other ? "with WARP" : "without WARP",
				 (double)b_orig / 1000, other ? "without" : "with");
		snprintf(w->last.reason, sizeof(w->last.reason), "%s", why);
		toggle(w, w->orig_connected, P_RESTORE, now);
		return;
	}
	}
}

/* A warp-cli run ended (both its pipe and its process are closed). */
static void run_done(struct warp *w)
{
	w->obuf[w->olen] = '\0';
	if (strcmp(w->cmd, "status") != 0)
		w->toggle_ran = true;
	else if (w->toggle_ran)
		w->fresh = true;
	if (strcmp(w->cmd, "status") == 0) {
		enum warp_state was = w->state;
		w->state = w->exit_status == 0 ? parse_status(w->obuf, w->detail, sizeof(w->detail)) :
						W_UNKNOWN;
		if (w->exit_status != 0)
			snprintf(w->detail, sizeof(w->detail), "%.*s", (int)strcspn(w->obuf, "\n"),
				 w->obuf);
		if (was != w->state)
			ls_info("warp: %s%s%s", state_names[w->state], w->detail[0] ? " - " : "",
				w->detail);
	} else if (w->exit_status != 0) {
		ls_warn("warp: warp-cli %s failed (exit %lld): %.*s", w->cmd, (long long)w->exit_status,
			(int)strcspn(w->obuf, "\n"), w->obuf);
	}
	if (strcmp(w->cmd, "status") != 0)
		w->next_check = 0; /* read the new status at once */
}

static void on_tick(uv_timer_t *t)
{
	struct warp *w = t->data;
	uint64_t now = ls_now_us();

	if (w->running && now - w->run_started > WARP_CLI_TIMEOUT_US) {
		ls_warn("warp: warp-cli %s gave no answer in %llu s: stopped", w->cmd,
			WARP_CLI_TIMEOUT_US / 1000000);
		uv_process_kill(&w->proc, SIGKILL);
		w->run_started = now; /* once */
	}
	if (w->phase == P_IDLE && now >= w->next_check && !w->running) {
		w->next_check = now + (uint64_t)w->c->conf.warp.check_ms * 1000;
		find_cli(w);
		read_machine(w);
		if (w->cli_path[0])
			run_cli(w, "status");
		else
			w->state = W_UNKNOWN;
	} else if (w->phase != P_IDLE) {
		read_machine(w);
	}
	step(w, now);
}

/* ---- entry points ------------------------------------------------------------------------ */

struct warp *warp_open(struct ctrl *c)
{
	struct warp *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->c = c;
	w->phase = P_IDLE;
	w->next_compare = 0;
	w->tick.data = w;
	uv_timer_init(c->loop, &w->tick);
	uv_timer_start(&w->tick, on_tick, 0, WARP_TICK_MS);
	find_cli(w);
	if (w->cli_path[0])
		ls_info("warp: %s found; WARP is %s toggled by the controller%s", w->cli_path,
			c->conf.warp.allow_toggle ? "compared and may be" : "never",
			c->conf.warp.allow_toggle ? "" : " ([warp] allow_toggle = false)");
	return w;
}

static void free_when_closed(uv_handle_t *h)
{
	struct warp *w = h->data;

	/* A warp-cli still running is left to finish; its handles hold w until then. */
	if (!w->running)
		free(w);
}

void warp_close(struct warp *w)
{
	if (!w)
		return;
	if (w->phase != P_IDLE && w->phase != P_RESTORE && w->state != W_UNKNOWN &&
	    (w->state == W_CONNECTED) != w->orig_connected)
		ls_warn("warp: stopping in the middle of a comparison: WARP is left %s (it was %s)",
			state_names[w->state], on_off(w->orig_connected));
	if (w->running)
		uv_process_kill(&w->proc, SIGKILL);
	uv_timer_stop(&w->tick);
	uv_close((uv_handle_t *)&w->tick, free_when_closed);
}

void warp_reload(struct warp *w)
{
	if (!w)
		return;
	find_cli(w);
	w->next_check = 0;
	if (w->c->conf.warp.allow_toggle && w->next_compare == UINT64_MAX &&
	    w->c->conf.warp.compare_every_s)
		w->next_compare = ls_now_us() + (uint64_t)w->c->conf.warp.compare_every_s * 1000000;
}

enum ls_rc warp_compare(struct warp *w, char *msg, size_t msglen)
{
	if (!w) {
		snprintf(msg, msglen, "WARP support is not running");
		return LS_RC_NOT_READY;
	}
	if (w->phase != P_IDLE || w->requested) {
		snprintf(msg, msglen, "a comparison is running already");
		return LS_RC_CONFLICT;
	}
	if (!can_compare(w, msg, msglen))
		return LS_RC_CONFLICT;
	w->requested = true;
	step(w, ls_now_us());
	return LS_RC_OK;
}

static json_t *ms_or_null(int64_t us)
{
	return us >= 0 ? json_real((double)us / 1000) : json_null();
}

json_t *warp_json(const struct warp *w)
{
	static const char *const phases[] = { "idle", "measuring", "toggling", "measuring",
					      "restoring" };
	json_t *routes = json_array(), *via = json_array(), *last = json_null();

	if (!w)
		return json_null();
	for (unsigned i = 0; i < w->nroutes; i++)
		json_array_append_new(routes, json_string(w->routes[i]));
	for (int i = 0; i < NODE_MAX; i++)
		if (w->c->nodes.n[i].used && w->node_via[i])
			json_array_append_new(via, json_string(w->c->nodes.n[i].conf.name));
	if (w->last.have) {
		json_t *nodes = json_array();
		for (int i = 0; i < NODE_MAX; i++)
			if (w->last.names[i][0])
				json_array_append_new(
					nodes, json_pack("{s:s,s:o,s:o}", "name", w->last.names[i],
							 "with_ms", ms_or_null(w->last.rtt[1][i]),
							 "without_ms", ms_or_null(w->last.rtt[0][i])));
		last = json_pack("{s:s,s:s,s:s,s:s,s:o}", "time", w->last.time, "before",
				 on_off(w->last.before_connected), "kept", on_off(w->last.kept_connected),
				 "reason", w->last.reason, "nodes", nodes);
	}
	return json_pack("{s:b,s:o,s:o,s:o,s:{s:s,s:b,s:b,s:o},s:o,s:o,s:b,s:{s:s,s:o}}",
			 "installed", w->cli_path[0] != 0, "cli",
			 w->cli_path[0] ? json_string(w->cli_path) : json_null(), "status",
			 w->cli_path[0] ? json_string(state_names[w->state]) : json_null(), "detail",
			 w->detail[0] ? json_string(w->detail) : json_null(), "interface", "name",
			 w->c->conf.warp.interface, "present", w->if_present, "up", w->if_up, "address",
			 w->if_addr[0] ? json_string(w->if_addr) : json_null(), "routes", routes,
			 "nodes_via_warp", via, "allow_toggle", w->c->conf.warp.allow_toggle,
			 "comparison", "state", phases[w->phase], "last", last);
}
