/* The steering client on libuv. Three handles, one allocation; memory is freed when the
 * last handle's close callback has run, as libuv requires. */
#include "steer_uv.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

struct ls_steer_uv {
	uv_poll_t poll;
	uv_timer_t timer;
	uv_prepare_t prepare;
	struct ls_steerc *c;
	int open_handles;
	bool closing;
};

static void uv_step(struct ls_steer_uv *u)
{
	ls_steerc_run(u->c, ls_now_us());
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct ls_steer_uv *u = h->data;

	(void)events;
	/* An error on an epoll fd cannot be about the connection: run anyway, the client
	 * learns the truth from the socket. */
	(void)status;
	if (!u->closing)
		uv_step(u);
}

static void on_timer(uv_timer_t *h)
{
	struct ls_steer_uv *u = h->data;

	if (!u->closing)
		uv_step(u);
}

/* Before the loop sleeps: the timer fires at the client's deadline, whatever happened
 * in this turn (a new request, a reconnect scheduled, lines left to handle). */
static void on_prepare(uv_prepare_t *h)
{
	struct ls_steer_uv *u = h->data;
	uint64_t d, now, ms;

	if (u->closing)
		return;
	d = ls_steerc_deadline(u->c);
	if (!d) {
		uv_timer_stop(&u->timer);
		return;
	}
	now = ls_now_us();
	ms = d <= now ? 0 : (d - now + 999) / 1000;
	uv_timer_start(&u->timer, on_timer, ms, 0);
}

static void on_closed(uv_handle_t *h)
{
	struct ls_steer_uv *u = h->data;

	if (--u->open_handles == 0)
		free(u);
}

struct ls_steer_uv *ls_steer_uv_open(uv_loop_t *loop, const char *path,
				     const struct ls_steerc_ops *ops, void *ctx,
				     const struct ls_steerc_opts *opts, char *err, size_t errlen)
{
	struct ls_steer_uv *u = calloc(1, sizeof(*u));
	int rc;

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->c = ls_steerc_open(path, ops, ctx, opts);
	if (!u->c) {
		snprintf(err, errlen, "steering socket %s: path too long, or out of memory", path);
		free(u);
		return NULL;
	}
	rc = uv_poll_init(loop, &u->poll, ls_steerc_fd(u->c));
	if (rc < 0) {
		snprintf(err, errlen, "uv_poll_init: %s", uv_strerror(rc));
		ls_steerc_close(u->c);
		free(u);
		return NULL;
	}
	uv_timer_init(loop, &u->timer);
	uv_prepare_init(loop, &u->prepare);
	u->poll.data = u->timer.data = u->prepare.data = u;
	u->open_handles = 3;
	rc = uv_poll_start(&u->poll, UV_READABLE, on_poll);
	if (rc == 0)
		rc = uv_prepare_start(&u->prepare, on_prepare);
	if (rc < 0) {
		snprintf(err, errlen, "uv_poll_start: %s", uv_strerror(rc));
		ls_steer_uv_close(u);
		return NULL;
	}
	return u;
}

struct ls_steerc *ls_steer_uv_client(struct ls_steer_uv *u)
{
	return u->c;
}

void ls_steer_uv_close(struct ls_steer_uv *u)
{
	if (!u || u->closing)
		return;
	u->closing = true;
	/* libuv wants a polled fd left open until the poll stops: stop, then close it. */
	uv_poll_stop(&u->poll);
	uv_close((uv_handle_t *)&u->poll, on_closed);
	uv_close((uv_handle_t *)&u->timer, on_closed);
	uv_close((uv_handle_t *)&u->prepare, on_closed);
	ls_steerc_close(u->c);
	u->c = NULL;
}
