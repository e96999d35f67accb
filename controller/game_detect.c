/* lightspeed-controller: game detection (see game_detect.h). The scan reads three small
 * files per process (about a millisecond for a few hundred processes) on the loop,
 * every scan_ms; a game counts as started at the first scan that sees it and as ended
 * at the first that does not. */
#include "controller.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "profile.h"
#include "util.h"

struct game_detect {
	struct ctrl *c;
	uv_timer_t timer;
	struct ls_profile_set set;
	int cur;          /* profile index of the game on, or -1 */
	pid_t pid;
	uid_t uid;
	time_t since;     /* wall clock, for /status */
};

void game_conf_defaults(struct game_conf *g)
{
	g->detect = true;
	g->scan_ms = GAME_SCAN_MS_DEFAULT;
}

const struct ls_conf_field game_conf_fields[] = {
	{ "detect", LS_CF_BOOL, offsetof(struct game_conf, detect), 0, 0, 0, NULL },
	{ "scan_ms", LS_CF_UINT, offsetof(struct game_conf, scan_ms), 0, 200, 60000, NULL },
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static void warn_profile(void *ctx, const char *msg)
{
	(void)ctx;
	ls_warn("profile %s (skipped)", msg);
}

static void load_profiles(struct game_detect *g)
{
	char cur[LS_PROFILE_ID_MAX] = "";

	if (g->cur >= 0)
		snprintf(cur, sizeof(cur), "%s", g->set.p[g->cur].id);
	ls_profile_load_all(&g->set, warn_profile, NULL);
	ls_info("games: %zu profiles", g->set.n);
	/* The game on keeps its place in the new set, or ends with it. */
	g->cur = -1;
	for (size_t i = 0; cur[0] && i < g->set.n; i++)
		if (strcmp(g->set.p[i].id, cur) == 0)
			g->cur = (int)i;
}

static json_t *int_or_null(int64_t v)
{
	return v > 0 ? json_integer((json_int_t)v) : json_null();
}

/* What the profile file says beyond the game's identity (null where it says nothing). */
static json_t *profile_json(const struct ls_profile *p)
{
	return json_pack("{s:s,s:s?,s:o,s:o,s:o,s:o,s:s?}", "file", p->path, "fec",
			 p->fec[0] ? p->fec : NULL, "keepalive_ms", int_or_null(p->keepalive_ms),
			 "pps", int_or_null(p->pps), "size_min", int_or_null(p->size_min), "size_max",
			 int_or_null(p->size_max), "notes", p->notes[0] ? p->notes : NULL);
}

/* The client applies the profile itself (it reads the same files). */
static void tell_client(struct game_detect *g)
{
	json_t *args;

	if (!dplink_connected(g->c->dp))
		return;
	if (g->cur >= 0)
		args = json_pack("{s:s,s:i}", "game", g->set.p[g->cur].id, "pid", (int)g->pid);
	else
		args = json_pack("{s:n,s:n}", "game", "pid");
	dplink_notify(g->c->dp, "set_game", args);
}

static void changed(struct game_detect *g)
{
	if (g->cur >= 0) {
		const struct ls_profile *p = &g->set.p[g->cur];
		ls_info("game: %s is on (process %d, profile %s)", p->name, (int)g->pid, p->path);
	} else {
		ls_info("game: none running");
	}
	tell_client(g);
	if (api_streams(g->c))
		ctrl_publish(g->c, "game", json_pack("{s:o}", "game", game_detect_json(g)));
}

static void scan(struct game_detect *g)
{
	struct ls_game_proc found[8];
	size_t n = ls_profile_scan(&g->set, NULL, found, LS_ARRAY_LEN(found));

	if (n > LS_ARRAY_LEN(found))
		n = LS_ARRAY_LEN(found);
	/* The game on stays on while its process lives, whatever else starts. */
	for (size_t i = 0; i < n; i++)
		if ((int)found[i].profile == g->cur && found[i].pid == g->pid)
			return;
	if (n == 0) {
		if (g->cur >= 0) {
			g->cur = -1;
			g->pid = 0;
			changed(g);
		}
		return;
	}
	g->cur = (int)found[0].profile;
	g->pid = found[0].pid;
	g->uid = found[0].uid;
	g->since = time(NULL);
	changed(g);
}

static void on_timer(uv_timer_t *t)
{
	scan(t->data);
}

static void start_timer(struct game_detect *g)
{
	uv_timer_stop(&g->timer);
	if (g->c->conf.games.detect)
		uv_timer_start(&g->timer, on_timer, 0, g->c->conf.games.scan_ms);
}

struct game_detect *game_detect_open(struct ctrl *c)
{
	struct game_detect *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->c = c;
	g->cur = -1;
	load_profiles(g);
	g->timer.data = g;
	uv_timer_init(c->loop, &g->timer);
	start_timer(g);
	return g;
}

static void free_on_close(uv_handle_t *h)
{
	free(h->data);
}

void game_detect_close(struct game_detect *g)
{
	if (!g)
		return;
	uv_timer_stop(&g->timer);
	uv_close((uv_handle_t *)&g->timer, free_on_close);
}

void game_detect_reload(struct game_detect *g)
{
	if (!g)
		return;
	load_profiles(g);
	if (!g->c->conf.games.detect && g->cur >= 0) {
		g->cur = -1;
		changed(g);
	}
	start_timer(g);
}

void game_detect_dataplane_up(struct game_detect *g)
{
	if (g && g->cur >= 0)
		tell_client(g);
}

json_t *game_detect_json(const struct game_detect *g)
{
	char since[32];
	const struct ls_profile *p;

	if (!g || g->cur < 0)
		return json_null();
	p = &g->set.p[g->cur];
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", gmtime(&g->since));
	return json_pack("{s:s,s:s,s:i,s:i,s:s?,s:s?,s:o,s:s,s:o}", "id", p->id, "name", p->name,
			 "pid", (int)g->pid, "uid", (int)g->uid, "anti_cheat",
			 p->anti_cheat[0] ? p->anti_cheat : NULL, "relay", p->relay[0] ? p->relay : NULL,
			 "ports", ls_port_ranges_json(p->ports, p->nports), "since", since, "profile", profile_json(p));
}

bool game_detect_playing(const struct game_detect *g)
{
	return g && g->cur >= 0;
}
