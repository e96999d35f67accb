/* Unit tests for shared/steer_client.c against a real steering server (shared/steer.c)
 * on a Unix socket in a private temporary directory, driven by poll in this thread; and
 * against hostile servers (raw sockets) that send garbage, lines over the limit, close
 * at once or never read. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "steer.h"
#include "steer_client.h"
#include "util.h"

#include "unit.h"

/* ---- a server with a few commands ------------------------------------------------------ */

static struct ls_steer *srv;

static const struct ls_steer_arg echo_args[] = {
	{ .key = "v", .types = LS_SA_STRING | LS_SA_INT | LS_SA_NULL, .help = "echoed" },
	{ NULL },
};
static const struct ls_steer_arg publish_args[] = {
	{ .key = "name", .types = LS_SA_STRING, .required = true, .min = 1, .max = 32,
	  .help = "the event's name" },
	{ NULL },
};
static const struct ls_steer_arg big_args[] = {
	{ .key = "bytes", .types = LS_SA_INT, .required = true, .min = 1, .max = 8000000,
	  .help = "the answer's size" },
	{ NULL },
};
static const struct ls_steer_def test_defs[] = {
	{ "echo", echo_args, "answer v" },
	{ "publish", publish_args, "publish an event to the subscribers" },
	{ "big", big_args, "a large answer" },
	LS_STEER_CMD_BUILTINS,
	{ NULL, NULL, NULL },
};

static enum ls_rc h_echo(void *ctx, struct ls_steer_call *call)
{
	json_t *v = json_object_get(call->req, "v");

	(void)ctx;
	call->result = json_pack("{s:O}", "v", v ? v : json_null());
	return LS_RC_OK;
}

static enum ls_rc h_publish(void *ctx, struct ls_steer_call *call)
{
	(void)ctx;
	ls_steer_publish(srv, json_string_value(json_object_get(call->req, "name")),
			 json_pack("{s:i}", "x", 7));
	return LS_RC_OK;
}

static enum ls_rc h_big(void *ctx, struct ls_steer_call *call)
{
	size_t n = (size_t)json_integer_value(json_object_get(call->req, "bytes"));
	char *s = malloc(n + 1);

	(void)ctx;
	memset(s, 'a', n);
	s[n] = '\0';
	call->result = json_pack("{s:s}", "s", s);
	free(s);
	return LS_RC_OK;
}

static const struct ls_steer_handler test_handlers[] = {
	{ "echo", h_echo },
	{ "publish", h_publish },
	{ "big", h_big },
	{ NULL, NULL },
};

static char dir[64], path[96];

static void rig_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ls-steerc-%d-XXXXXX", (int)getpid());
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/s.sock", dir);
}

static void rig_dir_done(void)
{
	unlink(path);
	rmdir(dir);
}

static void server_start(void)
{
	char err[256];

	srv = ls_steer_open(path, 0600, test_defs, test_handlers, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
}

static void server_stop(void)
{
	ls_steer_close(srv);
	srv = NULL;
}

/* ---- what the client tells us ---------------------------------------------------------- */

struct got {
	int calls;
	enum ls_rc rc;
	char code[32], msg[256];
	json_t *result;
	int order;
};
static int answer_seq;

static void on_answer(void *ud, const struct ls_steerc_answer *a)
{
	struct got *g = ud;

	g->calls++;
	g->rc = a->rc;
	snprintf(g->code, sizeof(g->code), "%s", a->code);
	snprintf(g->msg, sizeof(g->msg), "%s", a->message);
	json_decref(g->result);
	g->result = a->rc == LS_RC_OK ? json_incref(a->result) : NULL;
	g->order = ++answer_seq;
}

static void got_free(struct got *g, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(g[i].result);
		g[i].result = NULL;
	}
}

struct owner {
	int ups, downs, events;
	char why[256], last_event[64];
	json_int_t last_x;
	struct ls_steerc *c;
	bool close_on_event;
};

static void on_up(void *ctx)
{
	((struct owner *)ctx)->ups++;
}

static void on_down(void *ctx, const char *why)
{
	struct owner *o = ctx;

	o->downs++;
	snprintf(o->why, sizeof(o->why), "%s", why);
}

static void on_event(void *ctx, const char *name, json_t *ev)
{
	struct owner *o = ctx;

	o->events++;
	snprintf(o->last_event, sizeof(o->last_event), "%s", name);
	o->last_x = json_integer_value(json_object_get(ev, "x"));
	if (o->close_on_event) {
		ls_steerc_close(o->c);
		o->c = NULL;
	}
}

static const struct ls_steerc_ops owner_ops = { on_up, on_down, on_event };

/* One turn: wait (at most 10 ms) for the server's or the client's fd, run both. */
static void pump_once(struct ls_steerc *c)
{
	struct pollfd p[2];
	int n = 0, wait = 10;

	if (c) {
		p[n++] = (struct pollfd){ .fd = ls_steerc_fd(c), .events = ls_steerc_events(c) };
		uint64_t d = ls_steerc_deadline(c), now = ls_now_us();
		if (d && d <= now)
			wait = 0;
		else if (d && (d - now) / 1000 < 10)
			wait = (int)((d - now) / 1000) + 1;
	}
	if (srv)
		p[n++] = (struct pollfd){ .fd = ls_steer_fd(srv), .events = POLLIN };
	poll(p, (nfds_t)n, wait);
	if (srv)
		ls_steer_run(srv);
	if (c)
		ls_steerc_run(c, ls_now_us());
}

#define PUMP(c, cond, ms)                                                   \
	do {                                                                \
		uint64_t end_ = ls_now_us() + (uint64_t)(ms) * 1000u;       \
		while (!(cond) && ls_now_us() < end_)                       \
			pump_once(c);                                       \
	} while (0)

static enum ls_rc ask(struct ls_steerc *c, const char *cmd, json_t *args, struct got *g)
{
	return ls_steerc_request(c, cmd, args, on_answer, g);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_requests_matched_to_answers(void)
{
	struct owner o = { 0 };
	struct got g[3] = { { 0 } };
	struct ls_steerc *c;

	rig_dir();
	server_start();
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT(!ls_steerc_connected(c));
	CU_ASSERT(ls_steerc_deadline(c) != 0); /* the first connect is due */
	PUMP(c, o.ups == 1, 2000);
	CU_ASSERT_EQUAL(o.ups, 1);
	CU_ASSERT(ls_steerc_connected(c));
	CU_ASSERT_EQUAL(ask(c, "echo", json_pack("{s:s}", "v", "one"), &g[0]), LS_RC_OK);
	CU_ASSERT_EQUAL(ask(c, "echo", json_pack("{s:i}", "v", 2), &g[1]), LS_RC_OK);
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g[2]), LS_RC_OK);
	/* Never answered from inside the request. */
	CU_ASSERT_EQUAL(g[0].calls + g[1].calls + g[2].calls, 0);
	PUMP(c, g[2].calls, 2000);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(g[i].calls, 1);
		CU_ASSERT_EQUAL(g[i].rc, LS_RC_OK);
		CU_ASSERT_PTR_NOT_NULL(g[i].result);
	}
	CU_ASSERT(g[0].order < g[1].order && g[1].order < g[2].order);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(g[0].result, "v")), "one");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(g[1].result, "v")), 2);
	CU_ASSERT(json_is_null(json_object_get(g[2].result, "v")));

	struct ls_steerc_stats st;
	ls_steerc_get_stats(c, &st);
	CU_ASSERT_EQUAL(st.requests, 3);
	CU_ASSERT_EQUAL(st.answers, 3);
	CU_ASSERT_EQUAL(st.bad_lines, 0);
	ls_steerc_close(c);
	got_free(g, 3);
	server_stop();
	rig_dir_done();
}

static void test_server_errors_and_local_checks(void)
{
	struct ls_steerc_opts checked = { .defs = test_defs };
	struct owner o = { 0 }, o2 = { 0 };
	struct got g[4] = { { 0 } };
	struct ls_steerc *c, *cc;
	struct ls_steer_stats before, after;

	rig_dir();
	server_start();
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	cc = ls_steerc_open(path, &owner_ops, &o2, &checked);
	PUMP(c, o.ups == 1, 2000);
	PUMP(cc, o2.ups == 1, 2000);
	/* Unchecked: the server refuses, with its code and message. */
	CU_ASSERT_EQUAL(ask(c, "nope", NULL, &g[0]), LS_RC_OK);
	CU_ASSERT_EQUAL(ask(c, "echo", json_pack("{s:b}", "v", 1), &g[1]), LS_RC_OK);
	CU_ASSERT_EQUAL(ask(c, "echo", json_pack("{s:i}", "w", 1), &g[2]), LS_RC_OK);
	PUMP(c, g[2].calls, 2000);
	CU_ASSERT_EQUAL(g[0].rc, LS_RC_UNKNOWN_COMMAND);
	CU_ASSERT_STRING_EQUAL(g[0].code, "unknown_command");
	CU_ASSERT_EQUAL(g[1].rc, LS_RC_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(g[1].msg, "v must be"));
	CU_ASSERT_EQUAL(g[2].rc, LS_RC_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(g[2].msg, "unknown argument 'w'"));
	/* Checked against the table: refused here, nothing sent. */
	ls_steer_get_stats(srv, &before);
	CU_ASSERT_EQUAL(ask(cc, "nope", NULL, &g[3]), LS_RC_UNKNOWN_COMMAND);
	CU_ASSERT_EQUAL(ask(cc, "publish", NULL, &g[3]), LS_RC_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(ls_steerc_error(cc), "name is missing"));
	CU_ASSERT_EQUAL(ask(cc, "echo", json_pack("{s:i}", "id", 5), &g[3]), LS_RC_INVALID);
	CU_ASSERT_EQUAL(ask(cc, "echo", json_pack("{s:[]}", "v"), &g[3]), LS_RC_INVALID);
	/* The server's line limit holds for requests too. */
	char *huge = calloc(1, 70000);
	memset(huge, 'x', 69999);
	CU_ASSERT_EQUAL(ask(c, "echo", json_pack("{s:s}", "v", huge), &g[3]), LS_RC_TOO_LONG);
	free(huge);
	PUMP(c, 0, 50);
	ls_steer_get_stats(srv, &after);
	CU_ASSERT_EQUAL(after.requests, before.requests);
	CU_ASSERT_EQUAL(g[3].calls, 0);
	ls_steerc_close(c);
	ls_steerc_close(cc);
	got_free(g, 4);
	server_stop();
	rig_dir_done();
}

static void test_events_and_resubscribe_after_restart(void)
{
	struct owner o = { 0 };
	struct got g = { 0 };
	struct ls_steerc *c;

	rig_dir();
	server_start();
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	ls_steerc_subscribe(c);
	PUMP(c, o.ups == 1, 2000);
	PUMP(c, ls_steer_has_subscribers(srv), 2000);
	CU_ASSERT(ls_steer_has_subscribers(srv));
	ls_steer_publish(srv, "tick", json_pack("{s:i}", "x", 41));
	PUMP(c, o.events == 1, 2000);
	CU_ASSERT_STRING_EQUAL(o.last_event, "tick");
	CU_ASSERT_EQUAL(o.last_x, 41);
	/* An event from a request's handler reaches us as well as the answer. */
	CU_ASSERT_EQUAL(ask(c, "publish", json_pack("{s:s}", "name", "poked"), &g), LS_RC_OK);
	PUMP(c, g.calls && o.events == 2, 2000);
	CU_ASSERT_EQUAL(g.rc, LS_RC_OK);
	CU_ASSERT_STRING_EQUAL(o.last_event, "poked");

	/* The server goes and comes back: the subscription is renewed by itself. */
	server_stop();
	PUMP(c, o.downs == 1, 2000);
	CU_ASSERT_EQUAL(o.downs, 1);
	server_start();
	PUMP(c, o.ups == 2, 3000);
	CU_ASSERT_EQUAL(o.ups, 2);
	PUMP(c, ls_steer_has_subscribers(srv), 2000);
	ls_steer_publish(srv, "again", json_pack("{s:i}", "x", 5));
	PUMP(c, o.events == 3, 2000);
	CU_ASSERT_STRING_EQUAL(o.last_event, "again");
	ls_steerc_close(c);
	got_free(&g, 1);
	server_stop();
	rig_dir_done();
}

static void test_server_dies_and_comes_back(void)
{
	struct owner o = { 0 };
	struct got g[3] = { { 0 } };
	struct ls_steerc *c;
	uint64_t t_down, t_up;

	rig_dir();
	server_start();
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	PUMP(c, o.ups == 1, 2000);
	/* Written but never answered: the server goes before it reads them. */
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g[0]), LS_RC_OK);
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g[1]), LS_RC_OK);
	ls_steerc_run(c, ls_now_us()); /* writes them */
	server_stop();
	PUMP(c, o.downs == 1, 2000);
	t_down = ls_now_us();
	CU_ASSERT_EQUAL(g[0].calls, 1);
	CU_ASSERT_EQUAL(g[1].calls, 1);
	CU_ASSERT_EQUAL(g[0].rc, LS_RC_NOT_READY);
	CU_ASSERT_EQUAL(g[1].rc, LS_RC_NOT_READY);
	CU_ASSERT_PTR_NOT_NULL(strstr(g[0].msg, "connection lost"));
	CU_ASSERT(g[0].order < g[1].order);
	CU_ASSERT(!ls_steerc_connected(c));
	/* Down: refused at once, and the callback never runs. */
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g[2]), LS_RC_NOT_READY);
	PUMP(c, 0, 300); /* a few failed attempts while nobody listens */
	CU_ASSERT_EQUAL(o.downs, 1); /* said once per outage, not per attempt */
	CU_ASSERT_EQUAL(g[2].calls, 0);
	server_start();
	PUMP(c, o.ups == 2, 3000);
	t_up = ls_now_us();
	CU_ASSERT_EQUAL(o.ups, 2);
	/* Not before the first backoff step; well within the 5 s cap. */
	CU_ASSERT(t_up - t_down >= 100000);
	CU_ASSERT(t_up - t_down < 3000000);
	CU_ASSERT_EQUAL(ask(c, "echo", json_pack("{s:s}", "v", "back"), &g[2]), LS_RC_OK);
	PUMP(c, g[2].calls, 2000);
	CU_ASSERT_EQUAL(g[2].rc, LS_RC_OK);
	ls_steerc_close(c);
	got_free(g, 3);
	server_stop();
	rig_dir_done();
}

static void test_backoff_doubles_to_five_seconds(void)
{
	struct owner o = { 0 };
	struct ls_steerc *c;
	uint64_t now = 1000000000, want = LS_STEERC_BACKOFF_MIN_MS;

	rig_dir(); /* nothing listens there */
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	/* The client's clock is the one its owner passes: step it by hand. */
	for (int i = 0; i < 10; i++) {
		ls_steerc_run(c, now);
		CU_ASSERT(!ls_steerc_connected(c));
		uint64_t d = ls_steerc_deadline(c);
		CU_ASSERT_EQUAL(d - now, want * 1000);
		now = d;
		want = want * 2 > LS_STEERC_BACKOFF_MAX_MS ? LS_STEERC_BACKOFF_MAX_MS : want * 2;
	}
	CU_ASSERT_EQUAL(want, LS_STEERC_BACKOFF_MAX_MS);
	CU_ASSERT_EQUAL(o.downs, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.why, "No such file"));
	/* Once up for long, a loss retries after the first step again. */
	server_start();
	ls_steerc_run(c, now);
	CU_ASSERT(ls_steerc_connected(c));
	server_stop();
	now += 6000000;
	ls_steerc_run(c, now);
	CU_ASSERT(!ls_steerc_connected(c));
	CU_ASSERT_EQUAL(ls_steerc_deadline(c) - now, LS_STEERC_BACKOFF_MIN_MS * 1000);
	ls_steerc_close(c);
	rig_dir_done();
}

/* ---- hostile servers ------------------------------------------------------------------- */

static int raw_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(listen(fd, 4) == 0);
	return fd;
}

/* Accept the client's connection (made by its first run). */
static int raw_accept(int lfd, struct ls_steerc *c)
{
	ls_steerc_run(c, ls_now_us());
	CU_ASSERT_FATAL(ls_steerc_connected(c));
	int fd = accept(lfd, NULL, NULL);
	CU_ASSERT_FATAL(fd >= 0);
	return fd;
}

static void raw_write(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		CU_ASSERT_FATAL(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

static void test_garbage_lines_are_counted_and_skipped(void)
{
	static const char junk[] =
		"not json\n[1,2,3]\n{\"id\":99,\"ok\":true,\"result\":{}}\n{\"event\":5}\n"
		"\"str\"\n{\"id\":1}\n\n\r\n{\"id\":1,\"ok\":\"yes\"}\n\x01\xff\xfe\n"
		"{\"id\":1,\"id\":1,\"ok\":true}\n"
		"{\"event\":\"real\",\"x\":3}\n"
		"{\"id\":1,\"ok\":true,\"result\":{\"fine\":true}}\n";
	struct owner o = { 0 };
	struct got g = { 0 };
	struct ls_steerc *c;
	struct ls_steerc_stats st;
	int lfd, fd;

	rig_dir();
	lfd = raw_listen();
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	fd = raw_accept(lfd, c);
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g), LS_RC_OK);
	raw_write(fd, junk, sizeof(junk) - 1);
	PUMP(c, g.calls, 2000);
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.rc, LS_RC_OK);
	CU_ASSERT(json_is_true(json_object_get(g.result, "fine")));
	CU_ASSERT_EQUAL(o.events, 1);
	CU_ASSERT_STRING_EQUAL(o.last_event, "real");
	ls_steerc_get_stats(c, &st);
	/* not json, [1,2,3], the answer to nothing, the nameless event, "str", the answer
	 * without ok, the ok that is no boolean, binary, the duplicate key. */
	CU_ASSERT_EQUAL(st.bad_lines, 9);
	CU_ASSERT(ls_steerc_connected(c));
	CU_ASSERT_EQUAL(o.downs, 0);
	ls_steerc_close(c);
	got_free(&g, 1);
	close(fd);
	close(lfd);
	rig_dir_done();
}

static void test_oversized_line_ends_the_connection(void)
{
	struct ls_steerc_opts opts = { .max_line = 65536 };
	struct owner o = { 0 };
	struct got g = { 0 };
	struct ls_steerc *c;
	char *blob = malloc(1 << 20);
	int lfd, fd;

	rig_dir();
	lfd = raw_listen();
	c = ls_steerc_open(path, &owner_ops, &o, &opts);
	fd = raw_accept(lfd, c);
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g), LS_RC_OK);
	memset(blob, 'z', 1 << 20);
	/* Far more than the limit, no newline: the client must give up, not grow. */
	for (int i = 0; i < 4 && o.downs == 0; i++) {
		ssize_t w = send(fd, blob, 1 << 20, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)w;
		PUMP(c, o.downs == 1, 500);
	}
	CU_ASSERT_EQUAL(o.downs, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.why, "over the limit"));
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.rc, LS_RC_NOT_READY);
	/* ...and connects again after its backoff. */
	close(fd);
	PUMP(c, o.ups == 2, 2000);
	CU_ASSERT_EQUAL(o.ups, 2);
	ls_steerc_close(c);
	got_free(&g, 1);
	free(blob);
	close(lfd);
	rig_dir_done();
}

static void test_answer_then_close_is_delivered(void)
{
	struct owner o = { 0 };
	struct got g = { 0 };
	struct ls_steerc *c;
	int lfd, fd;
	static const char ans[] = "{\"id\":1,\"ok\":true,\"result\":{\"last\":1}}\n";

	rig_dir();
	lfd = raw_listen();
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	fd = raw_accept(lfd, c);
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g), LS_RC_OK);
	ls_steerc_run(c, ls_now_us());
	char req[256];
	CU_ASSERT(recv(fd, req, sizeof(req), 0) > 0); /* read, so that the close is a FIN */
	raw_write(fd, ans, sizeof(ans) - 1);
	close(fd);
	PUMP(c, o.downs == 1, 2000);
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.rc, LS_RC_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.why, "closed by the server"));
	ls_steerc_close(c);
	got_free(&g, 1);
	close(lfd);
	rig_dir_done();
}

static void test_stuck_server_timeouts_and_queue_limits(void)
{
	struct ls_steerc_opts opts = { .timeout_ms = 200, .max_pending = 8,
				       .max_queued = 256 * 1024 };
	struct owner o = { 0 };
	struct got g[9] = { { 0 } };
	struct ls_steerc *c;
	int lfd, fd;

	rig_dir();
	lfd = raw_listen();
	c = ls_steerc_open(path, &owner_ops, &o, &opts);
	fd = raw_accept(lfd, c); /* and never reads */
	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g[i]), LS_RC_OK);
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g[8]), LS_RC_FULL);
	PUMP(c, g[7].calls, 2000);
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(g[i].calls, 1);
		CU_ASSERT_EQUAL(g[i].rc, LS_RC_TIMEOUT);
	}
	CU_ASSERT_EQUAL(g[8].calls, 0);
	CU_ASSERT(ls_steerc_connected(c)); /* a slow server is not a dead one */

	ls_steerc_close(c);
	got_free(g, 9);
	close(fd);
	close(lfd);
	rig_dir_done();
}

static void test_queue_limit_in_bytes(void)
{
	struct ls_steerc_opts opts = { .max_pending = 1000, .max_queued = 200 * 1024 };
	struct owner o = { 0 };
	static struct got g[200];
	struct ls_steerc *c;
	int lfd, fd, n_ok = 0;
	enum ls_rc rc = LS_RC_OK;
	char *pad = malloc(50001);

	memset(pad, 'q', 50000);
	pad[50000] = '\0';
	rig_dir();
	lfd = raw_listen();
	c = ls_steerc_open(path, &owner_ops, &o, &opts);
	fd = raw_accept(lfd, c); /* never reads */
	for (int i = 0; i < 200 && rc == LS_RC_OK; i++) {
		rc = ask(c, "echo", json_pack("{s:s}", "v", pad), &g[i]);
		n_ok += rc == LS_RC_OK;
		ls_steerc_run(c, ls_now_us()); /* hands the kernel what it takes */
	}
	CU_ASSERT_EQUAL(rc, LS_RC_FULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(ls_steerc_error(c), "bytes wait"));
	/* The kernel holds some; the client at most 200 KiB more: a bounded number. */
	CU_ASSERT(n_ok > 4 && n_ok < 100);
	ls_steerc_close(c);
	for (int i = 0; i < n_ok; i++)
		CU_ASSERT_EQUAL(g[i].rc, LS_RC_NOT_READY);
	free(pad);
	got_free(g, 200);
	close(fd);
	close(lfd);
	rig_dir_done();
}

static void test_close_answers_outstanding_and_is_safe_in_callbacks(void)
{
	struct owner o = { .close_on_event = true };
	struct got g[2] = { { 0 } };
	struct ls_steerc *c;

	rig_dir();
	server_start();
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	o.c = c;
	ls_steerc_subscribe(c);
	PUMP(c, o.ups == 1, 2000);
	PUMP(c, ls_steer_has_subscribers(srv), 2000);
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g[0]), LS_RC_OK);
	ls_steerc_run(c, ls_now_us());
	/* The event closes the client from its callback; the request after it is answered
	 * by the close, and nothing is touched afterwards. */
	ls_steer_publish(srv, "bye", NULL);
	CU_ASSERT_EQUAL(ask(c, "echo", NULL, &g[1]), LS_RC_OK);
	PUMP(o.c, o.events == 1, 2000);
	CU_ASSERT_EQUAL(o.events, 1);
	CU_ASSERT_PTR_NULL(o.c);
	CU_ASSERT_EQUAL(g[1].calls, 1);
	CU_ASSERT_EQUAL(g[1].rc, LS_RC_NOT_READY);
	CU_ASSERT_STRING_EQUAL(g[1].msg, "steering client closed");
	CU_ASSERT_EQUAL(g[0].calls, 1);
	got_free(g, 2);
	server_stop();
	rig_dir_done();
}

static void test_refusal_is_the_reason(void)
{
	struct owner o = { 0 };
	int fds[LS_STEER_MAX_CONNS];
	struct ls_steerc *c;

	rig_dir();
	server_start();
	for (int i = 0; i < LS_STEER_MAX_CONNS; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		CU_ASSERT(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) == 0);
		ls_steer_run(srv); /* accepts: the listen queue is short */
	}
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	PUMP(c, o.downs == 1, 2000);
	CU_ASSERT_EQUAL(o.downs, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.why, "refused (full"));
	ls_steerc_close(c);
	for (int i = 0; i < LS_STEER_MAX_CONNS; i++)
		close(fds[i]);
	server_stop();
	rig_dir_done();
}

static void test_large_answer(void)
{
	struct owner o = { 0 };
	struct got g = { 0 };
	struct ls_steerc *c;

	rig_dir();
	server_start();
	c = ls_steerc_open(path, &owner_ops, &o, NULL);
	PUMP(c, o.ups == 1, 2000);
	CU_ASSERT_EQUAL(ask(c, "big", json_pack("{s:i}", "bytes", 3000000), &g), LS_RC_OK);
	PUMP(c, g.calls, 5000);
	CU_ASSERT_EQUAL(g.rc, LS_RC_OK);
	CU_ASSERT_EQUAL(json_string_length(json_object_get(g.result, "s")), 3000000);
	ls_steerc_close(c);
	got_free(&g, 1);
	server_stop();
	rig_dir_done();
}

/* ---- the blocking call, with the server in a thread of its own -------------------------- */

static volatile int thread_stop;

static void *server_thread(void *arg)
{
	(void)arg;
	while (!thread_stop) {
		struct pollfd p = { .fd = ls_steer_fd(srv), .events = POLLIN };
		poll(&p, 1, 10);
		ls_steer_run(srv);
	}
	return NULL;
}

static void test_blocking_call(void)
{
	pthread_t th;
	json_t *res = NULL;
	char msg[256];
	enum ls_rc rc;

	rig_dir();
	rc = ls_steerc_call(path, "echo", NULL, 1000, &res, msg, sizeof(msg));
	CU_ASSERT_EQUAL(rc, LS_RC_NOT_READY);
	CU_ASSERT_PTR_NULL(res);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, path));
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "No such file"));

	server_start();
	thread_stop = 0;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, server_thread, NULL) == 0);
	rc = ls_steerc_call(path, "echo", json_pack("{s:s}", "v", "hi"), 2000, &res, msg,
			    sizeof(msg));
	CU_ASSERT_EQUAL(rc, LS_RC_OK);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(res, "v")), "hi");
	json_decref(res);
	rc = ls_steerc_call(path, "help", json_pack("{s:s}", "command", "publish"), 2000, &res,
			    msg, sizeof(msg));
	CU_ASSERT_EQUAL(rc, LS_RC_OK);
	json_t *cmd0 = json_array_get(json_object_get(res, "commands"), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(cmd0, "cmd")), "publish");
	json_decref(res);
	rc = ls_steerc_call(path, "nope", NULL, 2000, &res, msg, sizeof(msg));
	CU_ASSERT_EQUAL(rc, LS_RC_UNKNOWN_COMMAND);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "unknown command 'nope'"));
	thread_stop = 1;
	pthread_join(th, NULL);
	server_stop();
	rig_dir_done();
}

UNIT_MAIN("steer_client",
	  { "requests matched to answers", test_requests_matched_to_answers },
	  { "server errors and local checks", test_server_errors_and_local_checks },
	  { "events, resubscribed after a restart", test_events_and_resubscribe_after_restart },
	  { "server dies and comes back", test_server_dies_and_comes_back },
	  { "backoff doubles to 5 s", test_backoff_doubles_to_five_seconds },
	  { "garbage lines counted and skipped", test_garbage_lines_are_counted_and_skipped },
	  { "oversized line ends the connection", test_oversized_line_ends_the_connection },
	  { "answer then close is delivered", test_answer_then_close_is_delivered },
	  { "stuck server: timeouts and queue limits", test_stuck_server_timeouts_and_queue_limits },
	  { "queue limit in bytes", test_queue_limit_in_bytes },
	  { "close answers outstanding, safe in callbacks",
	    test_close_answers_outstanding_and_is_safe_in_callbacks },
	  { "a refusal is the reason", test_refusal_is_the_reason },
	  { "large answer", test_large_answer },
	  { "blocking call", test_blocking_call })
