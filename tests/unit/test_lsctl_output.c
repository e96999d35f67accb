/* Unit tests for lsctl's output layer (api/output_text.c, api/output_json.c) and its
 * event-stream parser (api/lsctl_sse.c): what a person reads for each answer, the exact
 * bytes with --json, colour only when asked, and events split across reads. */
#include <stdlib.h>
#include <string.h>

#include "../../api/lsctl_sse.h"
#include "../../api/output.h"

#include "unit.h"

static const char routes_body[] =
	"{\"strategy\":\"nearest\",\"dataplane\":true,\"routes\":[{\"game_server\":"
	"\"127.0.0.1:27015\",\"active\":\"eu-1\",\"backup\":\"us-2\",\"why\":{\"strategy\":"
	"\"nearest\",\"reason\":\"lowest score\",\"score\":30.6,\"margin\":{\"ratio\":1.1,"
	"\"plus_ms\":5,\"window_s\":5},\"challenger\":{\"name\":\"us-2\",\"score\":20.0,"
	"\"since_s\":2.5}},\"direct\":{\"state\":\"measured\",\"rtt_ms\":52.4,\"gain_ms\":22.2,"
	"\"gain_pct\":42.4},\"candidates\":[{\"name\":\"eu-1\",\"state\":\"healthy\",\"active\":"
	"true,\"backup\":false,\"rtt_ms\":30.94,\"rtt_p50_ms\":30.2,\"rtt_p95_ms\":33.8,"
	"\"jitter_ms\":1.1,\"loss_up\":0,\"loss_down\":0.004,\"samples\":9,\"server_leg_ms\":null,"
	"\"path_rtt_ms\":30.2,\"score\":30.6},{\"name\":\"us-2\",\"state\":\"down\",\"active\":"
	"false,\"backup\":true,\"rtt_ms\":null,\"rtt_p50_ms\":null,\"rtt_p95_ms\":null,"
	"\"jitter_ms\":null,\"loss_up\":null,\"loss_down\":null,\"samples\":0,\"server_leg_ms\":"
	"4.5,\"path_rtt_ms\":null,\"score\":null}]}]}";

/* Render body through fn into a string (caller frees). */
static char *render(lsctl_out_fn fn, const char *body, bool color)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	json_t *j = json_loads(body, 0, NULL);
	struct lsctl_doc doc = { body, strlen(body), j };
	struct lsctl_style st = { color };

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	fn(m, &doc, &st);
	fclose(m);
	json_decref(j);
	return text;
}

/* The line of text starting with prefix (after leading spaces), or NULL. */
static const char *line_of(const char *text, const char *prefix)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *p = l;
		while (*p == ' ')
			p++;
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return p;
	}
	return NULL;
}

static void test_routes_text(void)
{
	char *t = render(lsctl_output_text.routes, routes_body, false);
	const char *l;

	CU_ASSERT_PTR_NOT_NULL(strstr(t, "game server 127.0.0.1:27015 (strategy nearest)"));
	l = line_of(t, "active");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "eu-1: lowest score, score 30.6"));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "x1.10 + 5 ms for 5 s"));
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "backup  us-2"));
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "challenger us-2, score 20.0, for 2.5 s"));
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "direct  52.4 ms: the route gains 22.2 ms (42%)"));
	/* The active row is marked *, the backup b; a value not measured is "-". */
	l = line_of(t, "*  eu-1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "healthy"));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "30.9"));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "0.4%"));
	l = line_of(t, "b  us-2");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "down"));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "4.5"));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "  -"));
	CU_ASSERT_PTR_NULL(strchr(t, '\033'));
	free(t);
}

static void test_color_only_when_asked(void)
{
	char *t = render(lsctl_output_text.routes, routes_body, true);

	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\033[32mhealthy\033[0m"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\033[31mdown\033[0m"));
	free(t);
	t = render(lsctl_output_text.proxies,
		   "{\"proxies\":[{\"name\":\"a\",\"address\":\"1.2.3.4:4434\",\"source\":\"config\","
		   "\"region\":null,\"state\":\"degraded\",\"active\":false,\"backup\":false}]}",
		   false);
	CU_ASSERT_PTR_NULL(strchr(t, '\033'));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "degraded"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "standby"));
	free(t);
}

static void test_json_is_exact(void)
{
	const char *outs[] = { "{\"a\": 1.50,  \"b\":[]}\n", "{\"x\":null}" };

	for (size_t i = 0; i < 2; i++) {
		char *t = render(lsctl_output_json.routes, outs[i], false);
		/* The bytes as the API sent them, a newline added only when missing. */
		CU_ASSERT_EQUAL(strncmp(t, outs[i], strlen(outs[i])), 0);
		CU_ASSERT_EQUAL(strlen(t), strlen(outs[i]) + (i == 1));
		free(t);
	}
}

static void test_status_and_history(void)
{
	char *t = render(lsctl_output_text.status,
			 "{\"version\":\"1.2\",\"uptime_s\":3725,\"strategy\":\"nearest\","
			 "\"dataplane\":{\"connected\":false,\"socket\":\"/run/x.sock\"},"
			 "\"game_server\":null,\"active\":null,\"backup\":null,\"nodes\":{\"total\":0,"
			 "\"healthy\":0,\"degraded\":0,\"down\":0,\"unknown\":0},\"switches\":0,"
			 "\"last_switch\":null,\"direct_rtt_ms\":null}",
			 false);
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "controller   1.2, up 1h02m"));
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "dataplane    not connected (/run/x.sock)"));
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "active       none"));
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "direct RTT   - (not measured)"));
	CU_ASSERT_PTR_NULL(line_of(t, "last switch"));
	free(t);
	t = render(lsctl_output_text.status,
		   "{\"version\":\"1.2\",\"uptime_s\":1,\"nodes\":{},\"game\":{\"id\":\"cs2\","
		   "\"name\":\"Counter-Strike 2\",\"pid\":4242,\"anti_cheat\":\"VAC\"},\"warp\":"
		   "{\"installed\":true,\"status\":\"connected\",\"interface\":{\"up\":true},"
		   "\"nodes_via_warp\":[\"a\"],\"allow_toggle\":true,\"comparison\":{\"last\":"
		   "{\"time\":\"T\",\"kept\":\"connected\",\"reason\":\"faster\"}}}}",
		   false);
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "game         Counter-Strike 2 (cs2, process 4242, anti-cheat VAC)"));
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "WARP         connected (interface up), 1 node through it, compared"));
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "WARP check   T: kept connected (faster)"));
	free(t);
	t = render(lsctl_output_text.status,
		   "{\"version\":\"1.2\",\"uptime_s\":1,\"nodes\":{},\"game\":null,"
		   "\"warp\":{\"installed\":false}}", false);
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "game         none detected"));
	CU_ASSERT_PTR_NOT_NULL(line_of(t, "WARP         not installed"));
	free(t);
	t = render(lsctl_output_text.history, "{\"failovers\":[]}", false);
	CU_ASSERT_STRING_EQUAL(t, "no switches yet\n");
	free(t);
	t = render(lsctl_output_text.history,
		   "{\"failovers\":[{\"time\":\"2026-01-02T03:04:05Z\",\"from\":\"a\",\"to\":\"b\","
		   "\"reason\":\"failover\",\"detail\":\"a missed 3 keepalives\",\"gap_ms\":41.25}]}",
		   false);
	const char *l = line_of(t, "2026-01-02T03:04:05Z");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "failover"));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "41.2 ms"));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "a missed 3 keepalives"));
	free(t);
	/* The controller's times carry milliseconds: the columns stay under their heads. */
	t = render(lsctl_output_text.history,
		   "{\"failovers\":[{\"time\":\"2026-01-02T03:04:05.678Z\",\"from\":\"a\",\"to\":"
		   "\"b\",\"reason\":\"manual\",\"detail\":\"asked\",\"gap_ms\":null}]}",
		   false);
	l = line_of(t, "2026-01-02T03:04:05.678Z");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL(strstr(t, "FROM") - t, strstr(l, " a ") + 1 - l);
	CU_ASSERT_EQUAL(strstr(t, "REASON") - t, strstr(l, "manual") - l);
	free(t);
	t = render(lsctl_output_text.switched,
		   "{\"time\":\"2026-01-02T03:04:05Z\",\"from\":null,\"to\":\"b\",\"reason\":"
		   "\"manual\",\"detail\":\"asked\",\"gap_ms\":null}",
		   false);
	CU_ASSERT_STRING_EQUAL(t, "switched none -> b (manual): asked\n");
	free(t);
}

static char *event_line(const struct lsctl_output *o, const char *name, const char *data)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	json_t *j = json_loads(data, JSON_DECODE_ANY, NULL);
	struct lsctl_style st = { false };

	o->event(m, name, data, j, &st);
	fclose(m);
	json_decref(j);
	return text;
}

static void test_event_lines(void)
{
	char *t = event_line(&lsctl_output_text, "sample",
			     "{\"name\":\"a\",\"rtt_ms\":12.34,\"jitter_ms\":null,\"loss_up\":0.5,"
			     "\"loss_down\":0}");
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "sample    a rtt 12.3 ms, jitter - ms, loss 50.0% up "
					 "0.0% down\n"));
	free(t);
	t = event_line(&lsctl_output_text, "state",
		       "{\"name\":\"b\",\"state\":\"down\",\"previous\":\"healthy\",\"reason\":"
		       "\"3 probes lost\"}");
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "b healthy -> down (3 probes lost)\n"));
	free(t);
	t = event_line(&lsctl_output_text, "dropped", "{\"count\":7}");
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "7 events lost"));
	free(t);
	t = event_line(&lsctl_output_json, "state", "{\"name\":\"b\"}");
	CU_ASSERT_STRING_EQUAL(t, "{\"event\":\"state\",\"data\":{\"name\":\"b\"}}\n");
	free(t);
}

static void test_number_helpers(void)
{
	char b[32];
	json_t *v = json_real(0.0125);

	output_text_loss(b, sizeof(b), v);
	CU_ASSERT_STRING_EQUAL(b, "1.2%");
	output_text_ms(b, sizeof(b), v);
	CU_ASSERT_STRING_EQUAL(b, "0.0");
	output_text_ms(b, sizeof(b), NULL);
	CU_ASSERT_STRING_EQUAL(b, "-");
	json_decref(v);
	v = json_null();
	output_text_loss(b, sizeof(b), v);
	CU_ASSERT_STRING_EQUAL(b, "-");
}

struct got {
	int n;
	char ev[8][64];
	char data[8][256];
	int stop_at;
};

static int on_ev(void *ctx, const char *event, const char *data)
{
	struct got *g = ctx;

	if (g->n < 8) {
		snprintf(g->ev[g->n], 64, "%s", event);
		snprintf(g->data[g->n], 256, "%s", data);
	}
	g->n++;
	return g->stop_at && g->n >= g->stop_at;
}

static void test_sse_parser(void)
{
	static const char stream[] =
		"retry: 2000\n\n"
		": keepalive\n\n"
		"id: 1\nevent: snapshot\ndata: {\"a\":1}\n\n"
		"id: 2\r\nevent: sample\r\ndata: {\"b\":\r\ndata: 2}\r\n\r\n"
		"data:nospace\n\n"
		"event: x\nbogus\n\n";
	struct got g = { 0 };
	struct lsctl_sse p;

	/* One byte at a time: events split anywhere still come out whole. */
	lsctl_sse_init(&p, on_ev, &g);
	for (size_t i = 0; i < sizeof(stream) - 1; i++)
		CU_ASSERT(lsctl_sse_feed(&p, stream + i, 1));
	lsctl_sse_free(&p);
	CU_ASSERT_EQUAL(g.n, 3);
	CU_ASSERT_STRING_EQUAL(g.ev[0], "snapshot");
	CU_ASSERT_STRING_EQUAL(g.data[0], "{\"a\":1}");
	CU_ASSERT_STRING_EQUAL(g.ev[1], "sample");
	CU_ASSERT_STRING_EQUAL(g.data[1], "{\"b\":\n2}");
	CU_ASSERT_STRING_EQUAL(g.ev[2], "message");
	CU_ASSERT_STRING_EQUAL(g.data[2], "nospace");

	/* The callback stops the stream. */
	struct got h = { .stop_at = 1 };
	lsctl_sse_init(&p, on_ev, &h);
	CU_ASSERT(!lsctl_sse_feed(&p, stream, sizeof(stream) - 1));
	CU_ASSERT_EQUAL(h.n, 1);
	lsctl_sse_free(&p);

	/* A line beyond the limit is skipped, and what follows still parses. */
	struct got k = { 0 };
	size_t big = (1u << 20) + 100;
	char *junk = malloc(big);
	memset(junk, 'x', big);
	lsctl_sse_init(&p, on_ev, &k);
	lsctl_sse_feed(&p, "data: ", 6);
	lsctl_sse_feed(&p, junk, big);
	lsctl_sse_feed(&p, "\n\nevent: ok\ndata: 1\n\n", 21);
	lsctl_sse_free(&p);
	free(junk);
	CU_ASSERT_EQUAL(k.n, 1);
	CU_ASSERT_STRING_EQUAL(k.ev[0], "ok");
}

UNIT_MAIN("lsctl_output",
	  { "routes as text: marks, reasons, dashes", test_routes_text },
	  { "colour only when asked", test_color_only_when_asked },
	  { "--json prints the API's bytes", test_json_is_exact },
	  { "status, history, switch lines", test_status_and_history },
	  { "event lines", test_event_lines },
	  { "number helpers", test_number_helpers },
	  { "event-stream parser", test_sse_parser })
