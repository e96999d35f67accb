/* The steering client (steer_client.h) on a libuv loop: a uv_poll on the client's fd, a
 * uv_timer for its deadline, and a uv_prepare that re-arms the timer before the loop
 * sleeps, so that requests made anywhere in the loop's turn get their timeouts without
 * the owner calling anything. The controller and the agent both steer through it. */
#ifndef LS_STEER_UV_H
#define LS_STEER_UV_H

#include <uv.h>

#include "steer_client.h"

struct ls_steer_uv;

/* A steering client of path driven by loop (ops, ctx and opts as ls_steerc_open). NULL
 * with a message in err when a handle cannot start. */
struct ls_steer_uv *ls_steer_uv_open(uv_loop_t *loop, const char *path,
				     const struct ls_steerc_ops *ops, void *ctx,
				     const struct ls_steerc_opts *opts, char *err, size_t errlen);
/* The client, for ls_steerc_request, ls_steerc_subscribe and the rest. */
struct ls_steerc *ls_steer_uv_client(struct ls_steer_uv *u);
/* Close the client (outstanding requests are answered with an error now) and the
 * handles; the memory goes in their close callbacks, so the loop must run once more
 * (uv_run) before it can close. Safe from a steering callback. */
void ls_steer_uv_close(struct ls_steer_uv *u);

#endif
