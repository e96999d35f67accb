/* lsctl watch: GET /events. On a terminal (text output) it keeps the routes of the
 * first `snapshot` event up to date from each sample, state flip, switch and backup
 * event and redraws the table in place with the latest events under it; otherwise one
 * line per event (the JSON table prints the API's data as is). */
#include "lsctl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define RECENT 8                 /* event lines kept under the live table */
#define REDRAW_US 200000         /* samples redraw at most 5 times a second */

struct watch {
	struct lsctl *l;
	bool live;               /* redraw in place */
	long count, seen;        /* stop after count events (0: never) */
	json_t *routes;          /* the /routes body, kept current */
	char *recent[RECENT];
	int nrecent;
	uint64_t last_draw_us;
	bool dirty;
	bool connected;
};

static json_t *candidates(struct watch *w)
{
	return json_object_get(json_array_get(json_object_get(w->routes, "routes"), 0),
			       "candidates");
}

static json_t *candidate(struct watch *w, const char *name)
{
	size_t i;
	json_t *c;

	if (!name)
		return NULL;
	json_array_foreach(candidates(w), i, c)
		if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
			return c;
	return NULL;
}

/* Set flag ("active"/"backup") on the named candidate only, and on the route. */
static void mark(struct watch *w, const char *flag, const char *name)
{
	json_t *route = json_array_get(json_object_get(w->routes, "routes"), 0);
	size_t i;
	json_t *c;

	if (!route)
		return;
	json_object_set_new(route, flag, name ? json_string(name) : json_null());
	json_array_foreach(candidates(w), i, c) {
		const char *n = json_string_value(json_object_get(c, "name"));
		json_object_set_new(c, flag, json_boolean(name && strcmp(n, name) == 0));
	}
}

static void apply(struct watch *w, const char *event, json_t *d)
{
	json_t *c = candidate(w, json_string_value(json_object_get(d, "name")));

	if (strcmp(event, "sample") == 0 && c) {
		static const char *const keys[] = { "jitter_ms", "loss_up", "loss_down" };
		json_object_set(c, "rtt_ms", json_object_get(d, "rtt_ms"));
		for (size_t i = 0; i < LS_ARRAY_LEN(keys); i++)
			json_object_set(c, keys[i], json_object_get(d, keys[i]));
	} else if (strcmp(event, "state") == 0 && c) {
		json_object_set(c, "state", json_object_get(d, "state"));
	} else if (strcmp(event, "switch") == 0) {
		mark(w, "active", json_string_value(json_object_get(d, "to")));
	} else if (strcmp(event, "backup") == 0) {
		mark(w, "backup", json_string_value(json_object_get(d, "name")));
	}
}

/* Refetch the whole picture (after lost events or a node added or removed). */
static void refetch(struct watch *w)
{
	struct lsctl_answer ans;

	if (lsctl_http_call(&w->l->api, "GET", "/routes", NULL, &ans) == LSCTL_HTTP_OK &&
	    ans.status == 200 && json_is_object(ans.json)) {
		json_decref(w->routes);
		w->routes = json_incref(ans.json);
	}
	lsctl_answer_free(&ans);
}

static void remember(struct watch *w, const char *event, const char *data, json_t *j)
{
	char *line = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&line, &len);
	struct lsctl_style plain = { false };

	if (!m)
		return;
	w->l->out->event(m, event, data, j, &plain);
	fclose(m);
	if (w->nrecent == RECENT) {
		free(w->recent[0]);
		memmove(w->recent, w->recent + 1, sizeof(w->recent[0]) * (RECENT - 1));
		w->nrecent--;
	}
	w->recent[w->nrecent++] = line;
}

static void draw(struct watch *w)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	if (!m)
		return;
	/* Build the frame first and write it at once, so it never flickers half-drawn. */
	fprintf(m, "\033[H\033[2Jlsctl watch  %s  (Ctrl-C to stop)\n\n", w->l->api.base);
	if (w->routes) {
		struct lsctl_doc doc = { NULL, 0, w->routes };
		lsctl_output_text.routes(m, &doc, &w->l->style);
	} else {
		fprintf(m, "waiting for the controller's snapshot...\n");
	}
	fprintf(m, "\nlatest events:\n");
	for (int i = 0; i < w->nrecent; i++)
		fprintf(m, "  %s", w->recent[i]);
	fclose(m);
	fwrite(text, 1, len, stdout);
	fflush(stdout);
	free(text);
	w->last_draw_us = ls_now_us();
	w->dirty = false;
}

static int on_event(void *ctx, const char *event, const char *data)
{
	struct watch *w = ctx;
	json_t *j = json_loads(data, JSON_DECODE_ANY, NULL);

	w->connected = true;
	if (!w->live) {
		w->l->out->event(stdout, event, data, j, &w->l->style);
	} else {
		if (strcmp(event, "snapshot") == 0) {
			json_decref(w->routes);
			w->routes = json_incref(j);
		} else if (strcmp(event, "dropped") == 0 || strcmp(event, "node") == 0) {
			refetch(w);
		} else if (json_is_object(j)) {
			apply(w, event, j);
		}
		if (strcmp(event, "sample") != 0)
			remember(w, event, data, j);
		w->dirty = true;
		if (strcmp(event, "sample") != 0 || ls_now_us() - w->last_draw_us >= REDRAW_US)
			draw(w);
	}
	json_decref(j);
	w->seen++;
	return w->count && w->seen >= w->count;
}

int lsctl_cmd_watch(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	struct watch w = { .l = l, .live = l->tty && !l->json };
	struct lsctl_answer ans;
	int ret = LSCTL_EXIT_OK;
	bool said = false;

	for (int i = 1; i < argc; i++) {
		uint64_t v;
		const char *val = NULL;
		if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			val = argv[++i];
		else if (strncmp(argv[i], "--count=", 8) == 0)
			val = argv[i] + 8;
		else
			return lsctl_usage_error(cmd, "unknown argument '%s'", argv[i]);
		if (ls_parse_u64(val, 1u << 30, &v) < 0 || v == 0)
			return lsctl_usage_error(cmd, "--count: '%s' is not a positive number", val);
		w.count = (long)v;
	}
	for (;;) {
		enum lsctl_http_rc rc = lsctl_http_stream(&l->api, "/events", on_event, &w, &ans);
		if (w.count && w.seen >= w.count)
			break;
		if (rc == LSCTL_HTTP_OK && ans.status != 200) {
			ret = lsctl_report(l, rc, &ans); /* refused: say why and stop */
			break;
		}
		if (!w.connected) {
			/* Never reached it: that is the answer. */
			ret = lsctl_report(l, rc, &ans);
			break;
		}
		/* It was there and went away (a restart): wait for it to come back. */
		if (!said)
			fprintf(stderr, "lsctl: the event stream ended (%s); reconnecting\n",
				rc == LSCTL_HTTP_OK ? "closed by the controller" : ans.err);
		said = true;
		lsctl_answer_free(&ans);
		sleep(1);
		continue;
	}
	lsctl_answer_free(&ans);
	if (w.live && w.dirty)
		draw(&w);
	json_decref(w.routes);
	for (int i = 0; i < w.nrecent; i++)
		free(w.recent[i]);
	return ret;
}
