/* lsctl's human output: the API's answers as aligned tables and short lines. Values
 * not measured yet (null) print as "-"; colour marks node states on a terminal. */
#include "output.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define C_RESET  "\033[0m"
#define C_BOLD   "\033[1m"
#define C_GREEN  "\033[32m"
#define C_YELLOW "\033[33m"
#define C_RED    "\033[31m"
#define C_DIM    "\033[2m"

static const char *s_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static const char *or_none(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "none";
}

void output_text_ms(char *buf, size_t len, const json_t *v)
{
	if (json_is_number(v))
		snprintf(buf, len, "%.1f", json_number_value(v));
	else
		snprintf(buf, len, "-");
}

void output_text_loss(char *buf, size_t len, const json_t *v)
{
	if (json_is_number(v))
		snprintf(buf, len, "%.1f%%", 100.0 * json_number_value(v));
	else
		snprintf(buf, len, "-");
}

static void ms_of(char *buf, size_t len, const json_t *o, const char *k)
{
	output_text_ms(buf, len, json_object_get(o, k));
}

static const char *state_color(const char *state)
{
	if (strcmp(state, "healthy") == 0)
		return C_GREEN;
	if (strcmp(state, "degraded") == 0)
		return C_YELLOW;
	if (strcmp(state, "down") == 0)
		return C_RED;
	return C_DIM;
}

/* A field padded to width, coloured on a terminal (the padding stays outside). */
static void put_state(FILE *out, const char *state, int width, const struct lsctl_style *st)
{
	if (st->color)
		fprintf(out, "%s%s%s%*s", state_color(state), state, C_RESET,
			width - (int)strlen(state), "");
	else
		fprintf(out, "%-*s", width, state);
}

static int name_width(const json_t *arr, const char *key, int min)
{
	size_t i;
	json_t *n;
	int w = min;

	json_array_foreach(arr, i, n) {
		int l = (int)strlen(s_of(n, key));
		if (l > w)
			w = l;
	}
	return w;
}

static void fmt_duration(char *buf, size_t len, double secs)
{
	long s = secs > 0 ? (long)secs : 0;

	if (s < 120)
		snprintf(buf, len, "%lds", s);
	else if (s < 3600)
		snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
	else if (s < 172800)
		snprintf(buf, len, "%ldh%02ldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

static double absd(double v)
{
	return v < 0 ? -v : v;
}

static void switch_line(FILE *out, const json_t *sw)
{
	const json_t *gap = json_object_get(sw, "gap_ms");

	fprintf(out, "%s -> %s (%s", or_none(sw, "from"), s_of(sw, "to"), s_of(sw, "reason"));
	if (json_is_number(gap))
		fprintf(out, ", gap %.1f ms", json_number_value(gap));
	fprintf(out, "): %s", s_of(sw, "detail"));
}

static void out_status(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	const json_t *o = doc->json;
	json_t *dp = json_object_get(o, "dataplane");
	const json_t *n = json_object_get(o, "nodes");
	char up[32], direct[32];

	fmt_duration(up, sizeof(up), json_number_value(json_object_get(o, "uptime_s")));
	ms_of(direct, sizeof(direct), o, "direct_rtt_ms");
	fprintf(out, "controller   %s, up %s\n", s_of(o, "version"), up);
	fprintf(out, "strategy     %s\n", s_of(o, "strategy"));
	bool conn = json_is_true(json_object_get(dp, "connected"));
	fprintf(out, "dataplane    %s%s%s (%s)\n", st->color ? (conn ? C_GREEN : C_RED) : "",
		conn ? "connected" : "not connected", st->color ? C_RESET : "", s_of(dp, "socket"));
	fprintf(out, "game server  %s\n", s_of(o, "game_server"));
	fprintf(out, "active       %s%s%s\n", st->color ? C_BOLD : "", or_none(o, "active"),
		st->color ? C_RESET : "");
	fprintf(out, "backup       %s\n", or_none(o, "backup"));
	fprintf(out, "nodes        %lld (%lld healthy, %lld degraded, %lld down, %lld unknown)\n",
		json_integer_value(json_object_get(n, "total")),
		json_integer_value(json_object_get(n, "healthy")),
		json_integer_value(json_object_get(n, "degraded")),
		json_integer_value(json_object_get(n, "down")),
		json_integer_value(json_object_get(n, "unknown")));
	fprintf(out, "direct RTT   %s%s\n", direct, strcmp(direct, "-") ? " ms" : " (not measured)");
	fprintf(out, "switches     %lld\n", json_integer_value(json_object_get(o, "switches")));
	const json_t *last = json_object_get(o, "last_switch");
	if (json_is_object(last)) {
		fprintf(out, "last switch  %s ", s_of(last, "time"));
		switch_line(out, last);
		fputc('\n', out);
	}
	const json_t *game = json_object_get(o, "game");
	if (json_is_object(game))
		fprintf(out, "game         %s (%s, process %lld, anti-cheat %s)\n", s_of(game, "name"),
			s_of(game, "id"), json_integer_value(json_object_get(game, "pid")),
			s_of(game, "anti_cheat"));
	else
		fprintf(out, "game         none detected\n");
	const json_t *warp = json_object_get(o, "warp");
	if (json_is_true(json_object_get(warp, "installed"))) {
		const json_t *via = json_object_get(warp, "nodes_via_warp");
		fprintf(out, "WARP         %s%s, %zu node%s through it%s\n", s_of(warp, "status"),
			json_is_true(json_object_get(json_object_get(warp, "interface"), "up")) ?
				" (interface up)" : "",
			json_array_size(via), json_array_size(via) == 1 ? "" : "s",
			json_is_true(json_object_get(warp, "allow_toggle")) ? ", compared" :
									      ", never toggled");
		const json_t *cmp = json_object_get(json_object_get(warp, "comparison"), "last");
		if (json_is_object(cmp))
			fprintf(out, "WARP check   %s: kept %s (%s)\n", s_of(cmp, "time"), s_of(cmp, "kept"),
				s_of(cmp, "reason"));
	} else if (json_is_object(warp)) {
		fprintf(out, "WARP         not installed\n");
	}
}

static void candidates_table(FILE *out, const json_t *cands, const struct lsctl_style *st)
{
	int w = name_width(cands, "name", 4);
	size_t i;
	json_t *c;

	fprintf(out, "     %-*s  %-8s  %6s  %6s  %6s  %6s  %7s  %7s  %6s  %6s  %6s\n", w, "NODE",
		"STATE", "RTT", "P50", "P95", "JITTER", "LOSS UP", "LOSS DN", "LEG", "PATH",
		"SCORE");
	json_array_foreach(cands, i, c) {
		char rtt[16], p50[16], p95[16], jit[16], lu[16], ld[16], leg[16], path[16],
			score[16];
		bool active = json_is_true(json_object_get(c, "active"));
		ms_of(rtt, sizeof(rtt), c, "rtt_ms");
		ms_of(p50, sizeof(p50), c, "rtt_p50_ms");
		ms_of(p95, sizeof(p95), c, "rtt_p95_ms");
		ms_of(jit, sizeof(jit), c, "jitter_ms");
		output_text_loss(lu, sizeof(lu), json_object_get(c, "loss_up"));
		output_text_loss(ld, sizeof(ld), json_object_get(c, "loss_down"));
		ms_of(leg, sizeof(leg), c, "server_leg_ms");
		ms_of(path, sizeof(path), c, "path_rtt_ms");
		ms_of(score, sizeof(score), c, "score");
		fprintf(out, "  %s  %s%-*s%s  ",
			active ? "*" : json_is_true(json_object_get(c, "backup")) ? "b" : " ",
			active && st->color ? C_BOLD : "", w, s_of(c, "name"),
			active && st->color ? C_RESET : "");
		put_state(out, s_of(c, "state"), 8, st);
		fprintf(out, "  %6s  %6s  %6s  %6s  %7s  %7s  %6s  %6s  %6s\n", rtt, p50, p95, jit, lu,
			ld, leg, path, score);
	}
}

/* The ML model's predictions (strategy ml): p95, interval, the features that moved it. */
static void predictions(FILE *out, const json_t *cands)
{
	size_t i, k;
	json_t *c, *f;
	bool any = false;

	json_array_foreach(cands, i, c) {
		const json_t *p = json_object_get(c, "prediction");

		if (!json_is_object(p))
			continue;
		if (!any)
			fprintf(out, "\n  predicted p95 over the next 30 s (ms; the trees' 10th-90th "
				     "percentile; what moved it from the past p95)\n");
		any = true;
		fprintf(out, "     %-12s %6.1f  (%.1f-%.1f)", s_of(c, "name"),
			json_number_value(json_object_get(p, "p95_ms")),
			json_number_value(json_object_get(p, "low_ms")),
			json_number_value(json_object_get(p, "high_ms")));
		json_array_foreach(json_object_get(p, "top_features"), k, f)
			fprintf(out, "%s %s %+.1f", k ? "," : " ", s_of(f, "feature"),
				json_number_value(json_object_get(f, "ms")));
		fputc('\n', out);
	}
}

static void out_routes(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	const json_t *o = doc->json;
	const json_t *routes = json_object_get(o, "routes");
	size_t i;
	json_t *r;

	if (!json_is_true(json_object_get(o, "dataplane")))
		fprintf(out, "(the client dataplane is not connected: routes as last known)\n");
	if (!json_array_size(routes))
		fprintf(out, "no routes (strategy %s)\n", s_of(o, "strategy"));
	json_array_foreach(routes, i, r) {
		const json_t *why = json_object_get(r, "why");
		const json_t *margin = json_object_get(why, "margin");
		const json_t *direct = json_object_get(r, "direct");
		const json_t *ch = json_object_get(why, "challenger");
		char score[16], dms[16];

		if (i)
			fputc('\n', out);
		fprintf(out, "game server %s (strategy %s)\n", s_of(r, "game_server"),
			s_of(why, "strategy"));
		ms_of(score, sizeof(score), why, "score");
		fprintf(out, "  active  %s%s%s: %s, score %s (a challenger must beat x%.2f + %.0f ms "
			     "for %.0f s)\n",
			st->color ? C_BOLD : "", or_none(r, "active"), st->color ? C_RESET : "",
			s_of(why, "reason"), score, json_number_value(json_object_get(margin, "ratio")),
			json_number_value(json_object_get(margin, "plus_ms")),
			json_number_value(json_object_get(margin, "window_s")));
		fprintf(out, "  backup  %s\n", or_none(r, "backup"));
		if (json_is_object(ch))
			fprintf(out, "  challenger %s, score %.1f, for %.1f s\n", s_of(ch, "name"),
				json_number_value(json_object_get(ch, "score")),
				json_number_value(json_object_get(ch, "since_s")));
		ms_of(dms, sizeof(dms), direct, "rtt_ms");
		const json_t *gain = json_object_get(direct, "gain_ms");
		if (json_is_number(gain))
			fprintf(out, "  direct  %s ms: the route %s %.1f ms (%.0f%%)\n", dms,
				json_number_value(gain) >= 0 ? "gains" : "loses",
				absd(json_number_value(gain)),
				absd(json_number_value(json_object_get(direct, "gain_pct"))));
		else
			fprintf(out, "  direct  %s (%s)\n", dms, s_of(direct, "state"));
		fputc('\n', out);
		candidates_table(out, json_object_get(r, "candidates"), st);
		predictions(out, json_object_get(r, "candidates"));
	}
	const json_t *ml = json_object_get(o, "ml");
	if (json_is_object(ml) && strcmp(s_of(o, "strategy"), "ml") == 0 &&
	    !json_is_true(json_object_get(ml, "in_use")))
		fprintf(out, "\nml scores as nearest: %s\n", s_of(ml, "status"));
}

static void out_proxies(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	const json_t *arr = json_object_get(doc->json, "proxies");
	int w = name_width(arr, "name", 4);
	int aw = name_width(arr, "address", 7);
	int rw = name_width(arr, "region", 6);
	size_t i;
	json_t *n;

	if (!json_array_size(arr)) {
		fprintf(out, "no nodes (add one: lsctl add NAME HOST:PORT)\n");
		return;
	}
	fprintf(out, "%-*s  %-*s  %-12s  %-*s  %-8s  %6s  %6s  %7s  %7s  %s\n", w, "NAME", aw,
		"ADDRESS", "SOURCE", rw, "REGION", "STATE", "P50", "P95", "LOSS UP", "LOSS DN",
		"ROLE");
	json_array_foreach(arr, i, n) {
		char p50[16], p95[16], lu[16], ld[16];
		ms_of(p50, sizeof(p50), n, "rtt_p50_ms");
		ms_of(p95, sizeof(p95), n, "rtt_p95_ms");
		output_text_loss(lu, sizeof(lu), json_object_get(n, "loss_up"));
		output_text_loss(ld, sizeof(ld), json_object_get(n, "loss_down"));
		fprintf(out, "%-*s  %-*s  %-12s  %-*s  ", w, s_of(n, "name"), aw, s_of(n, "address"),
			s_of(n, "source"), rw, s_of(n, "region"));
		put_state(out, s_of(n, "state"), 8, st);
		fprintf(out, "  %6s  %6s  %7s  %7s  %s\n", p50, p95, lu, ld,
			json_is_true(json_object_get(n, "active"))   ? "active"
			: json_is_true(json_object_get(n, "backup")) ? "backup"
								     : "standby");
	}
}

static void out_proxy(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	const json_t *n = doc->json;
	static const struct {
		const char *key, *label;
		int kind; /* 0 ms, 1 loss */
	} meas[] = {
		{ "rtt_ms", "rtt", 0 },       { "rtt_p50_ms", "rtt p50", 0 },
		{ "rtt_p95_ms", "rtt p95", 0 }, { "jitter_ms", "jitter", 0 },
		{ "loss_up", "loss up", 1 },  { "loss_down", "loss down", 1 },
		{ "server_leg_ms", "server leg", 0 }, { "path_rtt_ms", "path rtt", 0 },
		{ "score", "score", 0 },      { "last_rx_ms", "last rx", 0 },
	};

	fprintf(out, "name         %s\n", s_of(n, "name"));
	fprintf(out, "address      %s\n", s_of(n, "address"));
	fprintf(out, "source       %s\n", s_of(n, "source"));
	fprintf(out, "region       %s\n", s_of(n, "region"));
	fprintf(out, "state        ");
	put_state(out, s_of(n, "state"), 0, st);
	fprintf(out, " (%lld flips)\n", json_integer_value(json_object_get(n, "flips")));
	fprintf(out, "role         %s\n",
		json_is_true(json_object_get(n, "active"))   ? "active"
		: json_is_true(json_object_get(n, "backup")) ? "backup"
							     : "standby");
	fprintf(out, "auth         %s\n", json_is_true(json_object_get(n, "auth")) ? "yes" : "no");
	fprintf(out, "samples      %lld\n", json_integer_value(json_object_get(n, "samples")));
	for (size_t i = 0; i < sizeof(meas) / sizeof(meas[0]); i++) {
		char v[32];
		const json_t *j = json_object_get(n, meas[i].key);
		if (meas[i].kind)
			output_text_loss(v, sizeof(v), j);
		else
			output_text_ms(v, sizeof(v), j);
		fprintf(out, "%-12s %s%s\n", meas[i].label, v,
			meas[i].kind == 0 && json_is_number(j) && strcmp(meas[i].key, "score")
				? " ms"
				: "");
	}
	if (json_is_string(json_object_get(n, "via")))
		fprintf(out, "via          %s\n", s_of(n, "via"));
	const json_t *a = json_object_get(n, "agent");
	if (json_is_object(a)) {
		char v[32];

		fprintf(out, "agent        port %lld, %s\n",
			json_integer_value(json_object_get(a, "control_port")), s_of(a, "state"));
		fprintf(out, "fingerprint  %s\n", s_of(a, "fingerprint"));
		fprintf(out, "pinned       %s (%s)\n", s_of(a, "pinned"), s_of(a, "pinned_by"));
		if (json_is_string(json_object_get(a, "offered")))
			fprintf(out, "offered      %s  (lsctl trust %s accepts it)\n", s_of(a, "offered"),
				s_of(n, "name"));
		output_text_ms(v, sizeof(v), json_object_get(a, "control_rtt_ms"));
		fprintf(out, "control rtt  %s%s\n", v,
			json_is_number(json_object_get(a, "control_rtt_ms")) ? " ms" : "");
		if (json_is_string(json_object_get(a, "error")))
			fprintf(out, "agent error  %s\n", s_of(a, "error"));
	}
}

static void out_removed(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	(void)st;
	fprintf(out, "removed %s\n", s_of(doc->json, "removed"));
}

static void out_switched(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	(void)st;
	fprintf(out, "switched ");
	switch_line(out, doc->json);
	fputc('\n', out);
}

static void out_history(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	const json_t *arr = json_object_get(doc->json, "failovers");
	int fw = name_width(arr, "from", 4), tw = name_width(arr, "to", 2);
	int timew = name_width(arr, "time", 4); /* with or without milliseconds */
	size_t i;
	json_t *s;

	(void)st;
	if (!json_array_size(arr)) {
		fprintf(out, "no switches yet\n");
		return;
	}
	fprintf(out, "%-*s  %-*s  %-*s  %-9s  %8s  %s\n", timew, "TIME", fw, "FROM", tw, "TO",
		"REASON", "GAP", "DETAIL");
	json_array_foreach(arr, i, s) {
		char gap[16];
		ms_of(gap, sizeof(gap), s, "gap_ms");
		if (strcmp(gap, "-"))
			strcat(gap, " ms");
		fprintf(out, "%-*s  %-*s  %-*s  %-9s  %8s  %s\n", timew, s_of(s, "time"), fw,
			or_none(s, "from"), tw, s_of(s, "to"), s_of(s, "reason"), gap,
			s_of(s, "detail"));
	}
}

static void fec_dir(char *buf, size_t len, const json_t *d)
{
	if (!json_is_object(d))
		snprintf(buf, len, "-");
	else if (json_integer_value(json_object_get(d, "m")) == 0)
		snprintf(buf, len, "off");
	else
		snprintf(buf, len, "k=%lld m=%lld (%lld ms blocks)",
			 json_integer_value(json_object_get(d, "k")),
			 json_integer_value(json_object_get(d, "m")),
			 json_integer_value(json_object_get(d, "block_ms")));
}

/* The dataplane's counters, nested objects flattened as a.b. */
static void flat(FILE *out, const char *prefix, json_t *o, bool *first)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		char name[128];
		snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", k);
		if (json_is_object(v)) {
			flat(out, name, v, first);
			continue;
		}
		char *t = json_dumps(v, JSON_ENCODE_ANY);
		fprintf(out, "%-12s %-36s %s\n", *first ? "dataplane" : "", name, t ? t : "?");
		*first = false;
		free(t);
	}
}

static void out_strategy(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	const json_t *o = doc->json;

	(void)st;
	fprintf(out, "strategy %s%s\n", s_of(o, "strategy"),
		strcmp(s_of(o, "strategy"), "ml") != 0 ? "" :
		json_is_true(json_object_get(o, "in_use")) ? " (the model scores)" :
							      " (scoring as nearest: no usable model)");
	fprintf(out, "model    %s\n", s_of(o, "status"));
}

static void out_paths(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	const json_t *nodes = json_object_get(doc->json, "nodes"), *n, *p;
	size_t i, j;

	json_array_foreach(nodes, i, n) {
		const json_t *paths = json_object_get(n, "paths"), *spares = json_object_get(n, "spares");
		int w = name_width(paths, "name", 6);
		fprintf(out, "%s%s%s%s  mode %s", i ? "\n" : "", st->color ? C_BOLD : "", s_of(n, "node"),
			st->color ? C_RESET : "", s_of(n, "path_mode"));
		if (strcmp(s_of(n, "path_mode"), "auto") == 0)
			fprintf(out, " (%s now)", s_of(n, "path_mode_in_use"));
		fprintf(out, "%s%s\n", json_is_true(json_object_get(n, "active")) ? ", active" : "",
			json_is_true(json_object_get(n, "managed")) ? "" : ", no relays configured");
		fprintf(out, "  %-*s  D  %-8s %7s %7s %7s %7s %7s  %s\n", w, "PATH", "STATE", "SCORE",
			"RTT", "HOP", "UP", "DOWN", "BAD");
		json_array_foreach(paths, j, p) {
			char score[16], rtt[16], hop[16], up[16], down[16];
			ms_of(score, sizeof(score), p, "score_ms");
			ms_of(rtt, sizeof(rtt), p, "rtt_ms");
			ms_of(hop, sizeof(hop), p, "hop_rtt_ms");
			output_text_loss(up, sizeof(up), json_object_get(p, "loss_up"));
			output_text_loss(down, sizeof(down), json_object_get(p, "loss_down"));
			fprintf(out, "  %-*s  %s  ", w, s_of(p, "name"),
				json_is_true(json_object_get(p, "data")) ? "*" : " ");
			put_state(out, s_of(p, "state"), 8, st);
			fprintf(out, " %7s %7s %7s %7s %7s  %s\n", score, rtt, hop, up, down, s_of(p, "bad"));
		}
		if (json_array_size(spares)) {
			fprintf(out, "  spares:");
			json_array_foreach(spares, j, p) {
				const json_t *rest = json_object_get(p, "resting_ms");
				fprintf(out, " %s", s_of(p, "name"));
				if (json_is_integer(rest))
					fprintf(out, " (resting %.0f s)", json_integer_value(rest) / 1000.0);
			}
			fputc('\n', out);
		}
	}
	if (!json_array_size(nodes))
		fprintf(out, "no nodes\n");
	if (json_is_true(json_object_get(doc->json, "egress_hold")))
		fprintf(out, "a better egress is held back: a path to the active one works\n");
}

static void out_mode(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	(void)st;
	fprintf(out, "node %s: path mode %s\n", s_of(doc->json, "node"), s_of(doc->json, "mode"));
}

static void num_line(FILE *out, const char *label, const json_t *o, const char *k, const char *unit)
{
	const json_t *v = json_object_get(o, k);

	if (json_is_number(v))
		fprintf(out, "%s%.2f%s", label, json_number_value(v), unit);
	else
		fprintf(out, "%s-", label);
}

static void out_model(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	const json_t *o = doc->json, *m = json_object_get(o, "model");
	const json_t *tr = json_object_get(o, "training"), *last = json_object_get(o, "last_training");
	const json_t *rec = json_object_get(o, "recorded");

	out_strategy(out, doc, st);
	if (json_is_object(m)) {
		fprintf(out, "file     %s (%s data, %s)\n", s_of(m, "file"), s_of(m, "source"),
			s_of(m, "created"));
		fprintf(out, "forest   %lld trees, %lld nodes, depth %lld; %lld rows trained, %lld "
			     "held out\n", json_integer_value(json_object_get(m, "trees")),
			json_integer_value(json_object_get(m, "nodes")),
			json_integer_value(json_object_get(m, "max_depth")),
			json_integer_value(json_object_get(m, "train_rows")),
			json_integer_value(json_object_get(m, "heldout_rows")));
		num_line(out, "held out MAE ", m, "mae_ms", " ms");
		num_line(out, " (p95 ", m, "p95_error_ms", " ms)");
		num_line(out, "; no-model baseline ", m, "baseline_mae_ms", " ms");
		fprintf(out, "%s\n", json_is_true(json_object_get(m, "beats_baseline")) ?
					     ": better" : ": NOT better, so not used");
		const json_t *rc = json_object_get(m, "route_check");
		const char *sets[] = { "scenario", "steady", "recorded" };
		for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
			const json_t *c = json_object_get(rc, sets[i]);
			if (!json_is_object(c))
				continue;
			fprintf(out, "route regret, %s set: ", sets[i]);
			num_line(out, "ml ", c, "ml_regret_ms", " ms");
			num_line(out, ", nearest ", c, "nearest_regret_ms", " ms");
			fprintf(out, " (%lld decisions)\n",
				json_integer_value(json_object_get(c, "decisions")));
		}
		if (json_is_string(json_object_get(m, "worse_on")))
			fprintf(out, "chooses worse than nearest on the %s set, so not used\n",
				s_of(m, "worse_on"));
	}
	if (json_is_object(tr))
		fprintf(out, "training from %s data (%s): %s, %lld of %lld trees, %.1f s\n",
			s_of(tr, "from"), s_of(tr, "why"), s_of(tr, "phase"),
			json_integer_value(json_object_get(tr, "trees_done")),
			json_integer_value(json_object_get(tr, "trees")),
			json_number_value(json_object_get(tr, "elapsed_s")));
	if (json_is_object(last))
		fprintf(out, "last training: %s: %s\n", s_of(last, "state"), s_of(last, "message"));
	if (json_is_object(rec))
		fprintf(out, "recorded %s: %s, %lld records since start, %lld bytes%s%s\n",
			s_of(rec, "file"), json_is_true(json_object_get(rec, "recording")) ? "on" : "off",
			json_integer_value(json_object_get(rec, "records")),
			json_integer_value(json_object_get(rec, "bytes")),
			json_is_string(json_object_get(rec, "error")) ? ": " : "",
			json_is_string(json_object_get(rec, "error")) ? s_of(rec, "error") : "");
}

static void out_stats(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	const json_t *o = doc->json;
	const json_t *c = json_object_get(o, "controller");
	const json_t *a = json_object_get(o, "api");
	const json_t *f = json_object_get(o, "fec");
	json_t *dp = json_object_get(o, "dataplane");
	char up[32], fu[64], fd[64];

	(void)st;
	fmt_duration(up, sizeof(up), json_number_value(json_object_get(c, "uptime_s")));
	fprintf(out, "controller   up %s, %lld switches, %lld samples, %lld dataplane connects\n", up,
		json_integer_value(json_object_get(c, "switches")),
		json_integer_value(json_object_get(c, "samples")),
		json_integer_value(json_object_get(c, "dataplane_connects")));
	fprintf(out, "api          %lld requests, %lld errors, %lld auth failures, %lld streams, "
		     "%lld events sent, %lld dropped\n",
		json_integer_value(json_object_get(a, "requests")),
		json_integer_value(json_object_get(a, "errors")),
		json_integer_value(json_object_get(a, "auth_failures")),
		json_integer_value(json_object_get(a, "streams")),
		json_integer_value(json_object_get(a, "events_sent")),
		json_integer_value(json_object_get(a, "events_dropped")));
	fec_dir(fu, sizeof(fu), json_object_get(f, "up"));
	fec_dir(fd, sizeof(fd), json_object_get(f, "down"));
	fprintf(out, "fec          setting %s; up %s; down %s\n", s_of(f, "setting"), fu, fd);
	fprintf(out, "             %lld rebuilt, %lld blocks lost beyond repair, %lld parity sent\n",
		json_integer_value(json_object_get(f, "rebuilt")),
		json_integer_value(json_object_get(f, "lost_blocks")),
		json_integer_value(json_object_get(f, "parity_sent")));
	if (!json_is_object(dp)) {
		fprintf(out, "dataplane    not connected\n");
		return;
	}
	bool first = true;
	flat(out, "", dp, &first);
}

static void event_time(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(buf, len, "%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ld", (long)(tv.tv_usec / 1000));
}

static void out_event(FILE *out, const char *name, const char *data, const json_t *j,
		      const struct lsctl_style *st)
{
	char t[32], a[16], b[16], c[16], d[16];

	event_time(t, sizeof(t));
	fprintf(out, "%s %-9s ", t, name);
	if (!json_is_object(j)) {
		fprintf(out, "%s\n", data);
	} else if (strcmp(name, "sample") == 0) {
		ms_of(a, sizeof(a), j, "rtt_ms");
		ms_of(b, sizeof(b), j, "jitter_ms");
		output_text_loss(c, sizeof(c), json_object_get(j, "loss_up"));
		output_text_loss(d, sizeof(d), json_object_get(j, "loss_down"));
		fprintf(out, "%s rtt %s ms, jitter %s ms, loss %s up %s down\n", s_of(j, "name"), a, b,
			c, d);
	} else if (strcmp(name, "state") == 0) {
		fprintf(out, "%s %s -> ", s_of(j, "name"), s_of(j, "previous"));
		put_state(out, s_of(j, "state"), 0, st);
		fprintf(out, " (%s)\n", s_of(j, "reason"));
	} else if (strcmp(name, "switch") == 0) {
		switch_line(out, j);
		fputc('\n', out);
	} else if (strcmp(name, "backup") == 0) {
		fprintf(out, "armed %s\n", or_none(j, "name"));
	} else if (strcmp(name, "gap") == 0) {
		ms_of(a, sizeof(a), j, "gap_ms");
		fprintf(out, "to %s: %s ms without game packets\n", s_of(j, "to"), a);
	} else if (strcmp(name, "decision") == 0) {
		fprintf(out, "%s %s: %s\n", s_of(j, "kind"), or_none(j, "node"), s_of(j, "detail"));
	} else if (strcmp(name, "node") == 0) {
		fprintf(out, "%s %s\n", s_of(j, "name"), s_of(j, "change"));
	} else if (strcmp(name, "dataplane") == 0) {
		fprintf(out, "%s\n", json_is_true(json_object_get(j, "connected")) ? "connected"
										: "disconnected");
	} else if (strcmp(name, "dropped") == 0) {
		fprintf(out, "%lld events lost (this reader was too slow)\n",
			json_integer_value(json_object_get(j, "count")));
	} else if (strcmp(name, "snapshot") == 0) {
		const json_t *r = json_array_get(json_object_get(j, "routes"), 0);
		fprintf(out, "active %s, backup %s, %zu candidates\n", or_none(r, "active"),
			or_none(r, "backup"), json_array_size(json_object_get(r, "candidates")));
	} else {
		fprintf(out, "%s\n", data);
	}
	fflush(out);
}

const struct lsctl_output lsctl_output_text = {
	.status = out_status,
	.routes = out_routes,
	.proxies = out_proxies,
	.proxy = out_proxy,
	.removed = out_removed,
	.switched = out_switched,
	.history = out_history,
	.stats = out_stats,
	.model = out_model,
	.strategy = out_strategy,
	.paths = out_paths,
	.mode = out_mode,
	.event = out_event,
};
