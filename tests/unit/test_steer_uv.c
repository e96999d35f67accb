/* Unit tests for shared/steer_uv.c: the steering client on a real libuv loop, against a
 * real steering server polled by the same loop; the loop must close cleanly (a handle
 * left open fails uv_loop_close). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "steer.h"
#include "steer_uv.h"
#include "util.h"

#include "unit.h"

static struct ls_steer *srv;
static uv_poll_t srv_poll;
static bool srv_polled;
static char dir[64], path[96];

static const struct ls_steer_def defs[] = {
	{ "ping", NULL, "answers pong" },
	LS_STEER_CMD_BUILTINS,
	{ NULL, NULL, NULL },
};

static enum ls_rc h_ping(void *ctx, struct ls_steer_call *call)
{
	(void)ctx;
	call->result = json_pack("{s:b}", "pong", 1);
	return LS_RC_OK;
}

static const struct ls_steer_handler handlers[] = {
	{ "ping", h_ping },
	{ NULL, NULL },
};

static void on_srv(uv_poll_t *h, int status, int events)
{
	(void)h, (void)status, (void)events;
	ls_steer_run(srv);
}

static void server_start(uv_loop_t *loop)
{
	char err[256];

	srv = ls_steer_open(path, 0600, defs, handlers, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	uv_poll_init(loop, &srv_poll, ls_steer_fd(srv));
	uv_poll_start(&srv_poll, UV_READABLE, on_srv);
	srv_polled = true;
}

static void server_closed(uv_handle_t *h)
{
	(void)h;
	ls_steer_close(srv);
	srv = NULL;
}

static void server_stop(void)
{
	if (!srv_polled)
		return;
	srv_polled = false;
	uv_poll_stop(&srv_poll);
	uv_close((uv_handle_t *)&srv_poll, server_closed);
}

struct state {
	struct ls_steer_uv *u;
	int ups, downs, events, answers;
	enum ls_rc last_rc;
	bool pong;
	bool close_on_answer;
};

static void on_answer(void *ud, const struct ls_steerc_answer *a)
{
	struct state *s = ud;

	s->answers++;
	s->last_rc = a->rc;
	s->pong = a->rc == LS_RC_OK && json_is_true(json_object_get(a->result, "pong"));
	if (s->close_on_answer) {
		ls_steer_uv_close(s->u);
		s->u = NULL;
	}
}

static void on_up(void *ctx)
{
	struct state *s = ctx;

	s->ups++;
	/* A request from the connected callback: the adoption step of a controller. */
	ls_steerc_request(ls_steer_uv_client(s->u), "ping", NULL, on_answer, s);
}

static void on_down(void *ctx, const char *why)
{
	(void)why;
	((struct state *)ctx)->downs++;
}

static void on_event(void *ctx, const char *name, json_t *ev)
{
	(void)name, (void)ev;
	((struct state *)ctx)->events++;
}

static const struct ls_steerc_ops ops = { on_up, on_down, on_event };

/* Run the loop until cond or ms pass (a guard timer wakes it). */
static void guard_cb(uv_timer_t *t)
{
	(void)t;
}

#define RUN_UNTIL(loop, cond, ms)                                                   \
	do {                                                                        \
		uv_timer_t g_;                                                      \
		uint64_t end_ = ls_now_us() + (uint64_t)(ms) * 1000u;               \
		uv_timer_init(loop, &g_);                                           \
		uv_timer_start(&g_, guard_cb, 20, 20);                              \
		while (!(cond) && ls_now_us() < end_)                               \
			uv_run(loop, UV_RUN_ONCE);                                  \
		uv_close((uv_handle_t *)&g_, NULL);                                 \
		uv_run(loop, UV_RUN_NOWAIT);                                        \
	} while (0)

static void setup_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ls-steeruv-%d-XXXXXX", (int)getpid());
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/s.sock", dir);
}

static void test_requests_reconnect_and_clean_close(void)
{
	uv_loop_t loop;
	struct state s = { 0 };
	char err[256];

	setup_dir();
	CU_ASSERT_FATAL(uv_loop_init(&loop) == 0);
	server_start(&loop);
	s.u = ls_steer_uv_open(&loop, path, &ops, &s, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.u);
	ls_steerc_subscribe(ls_steer_uv_client(s.u));
	RUN_UNTIL(&loop, s.answers == 1, 2000);
	CU_ASSERT_EQUAL(s.ups, 1);
	CU_ASSERT_EQUAL(s.answers, 1);
	CU_ASSERT(s.pong);
	RUN_UNTIL(&loop, ls_steer_has_subscribers(srv), 2000);
	ls_steer_publish(srv, "tick", NULL);
	RUN_UNTIL(&loop, s.events == 1, 2000);
	CU_ASSERT_EQUAL(s.events, 1);

	/* The dataplane restarts: the adapter's timer brings the connection back. */
	server_stop();
	RUN_UNTIL(&loop, s.downs == 1, 2000);
	CU_ASSERT_EQUAL(s.downs, 1);
	server_start(&loop);
	RUN_UNTIL(&loop, s.answers == 2, 3000);
	CU_ASSERT_EQUAL(s.ups, 2);
	CU_ASSERT(s.pong);
	RUN_UNTIL(&loop, ls_steer_has_subscribers(srv), 2000);
	ls_steer_publish(srv, "tick", NULL);
	RUN_UNTIL(&loop, s.events == 2, 2000);
	CU_ASSERT_EQUAL(s.events, 2);

	/* Closed from an answer's callback; then nothing may be left on the loop. */
	s.close_on_answer = true;
	ls_steerc_request(ls_steer_uv_client(s.u), "ping", NULL, on_answer, &s);
	RUN_UNTIL(&loop, s.answers == 3, 2000);
	CU_ASSERT_PTR_NULL(s.u);
	server_stop();
	uv_run(&loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
	unlink(path);
	rmdir(dir);
}

static void test_timeout_fires_from_the_loop(void)
{
	struct ls_steerc_opts opts = { .timeout_ms = 150 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uv_loop_t loop;
	struct state s = { 0 };
	char err[256];
	int lfd;
	uint64_t t0;

	setup_dir();
	CU_ASSERT_FATAL(uv_loop_init(&loop) == 0);
	/* A server that accepts (its listen queue does) and never answers. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 4) == 0);
	s.u = ls_steer_uv_open(&loop, path, &ops, &s, &opts, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.u);
	t0 = ls_now_us();
	/* Nothing but the adapter's own timer can end this wait. */
	while (s.answers == 0 && ls_now_us() - t0 < 3000000)
		uv_run(&loop, UV_RUN_ONCE);
	CU_ASSERT_EQUAL(s.ups, 1);
	CU_ASSERT_EQUAL(s.answers, 1);
	CU_ASSERT_EQUAL(s.last_rc, LS_RC_TIMEOUT);
	CU_ASSERT(ls_now_us() - t0 >= 150000);
	ls_steer_uv_close(s.u);
	uv_run(&loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
	close(lfd);
	unlink(path);
	rmdir(dir);
}

UNIT_MAIN("steer_uv",
	  { "requests, reconnect and a clean close", test_requests_reconnect_and_clean_close },
	  { "a timeout fires from the loop", test_timeout_fires_from_the_loop })
