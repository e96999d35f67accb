/* A client of a steering socket (docs/protocol.md section 3), for the programs that steer
 * a dataplane: requests matched to their answers by id, events of a subscription, and a
 * connection that comes back by itself. It never blocks: its owner's loop watches one fd
 * (stable for the client's life) and one deadline, and calls ls_steerc_run when either
 * is due. Memory is bounded whatever the server does: lines, queued requests and queued
 * bytes have limits. Not thread-safe: one loop owns it. */
#ifndef LS_STEER_CLIENT_H
#define LS_STEER_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "result.h"
#include "steer_cmd.h"

struct ls_steerc;

/* What the owner hears. Each may be NULL. Callbacks may send requests; they may close
 * the client too (it is freed once the callback has returned). */
struct ls_steerc_ops {
	/* The connection is up (again): state held by the dataplane can be read now. A
	 * subscription (ls_steerc_subscribe) has been asked for already. */
	void (*connected)(void *ctx);
	/* The connection went (or a connect failed after being up): why, in words. Every
	 * request outstanding has been answered with an error before this is called. */
	void (*disconnected)(void *ctx, const char *why);
	/* An event of the subscription: its name and the whole object (borrowed). */
	void (*event)(void *ctx, const char *name, json_t *ev);
};

struct ls_steerc_opts {
	/* Defaults in brackets, used for a 0. */
	size_t max_line;        /* longest line accepted from the server [4 MiB + 64 KiB] */
	unsigned max_pending;   /* requests awaiting an answer [256] */
	size_t max_queued;      /* request bytes not yet written [1 MiB] */
	unsigned timeout_ms;    /* an answer's wait before it is given up [5000] */
	unsigned lines_per_run; /* lines handled per ls_steerc_run [64] */
	/* The server's command table: requests are checked against it before they leave
	 * (LS_RC_UNKNOWN_COMMAND, LS_RC_INVALID). NULL: not checked here. */
	const struct ls_steer_def *defs;
	/* Reconnect after a loss (backoff from 100 ms doubling to 5 s) [true]; false makes
	 * a one-shot client that stays down. */
	bool no_reconnect;
};

#define LS_STEERC_BACKOFF_MIN_MS 100
#define LS_STEERC_BACKOFF_MAX_MS 5000

/* An answer: rc LS_RC_OK with result the answer's "result" (borrowed), or an error with
 * code (the server's error code as sent, or ours: "not_ready" when the connection went,
 * "timeout") and a message. */
struct ls_steerc_answer {
	enum ls_rc rc;
	json_t *result;
	const char *code;
	const char *message;
};
typedef void (*ls_steerc_answer_fn)(void *ud, const struct ls_steerc_answer *a);

/* A client of the socket at path; it connects at the first ls_steerc_run (which is due at
 * once). opts may be NULL. NULL when out of memory or the path is too long. */
struct ls_steerc *ls_steerc_open(const char *path, const struct ls_steerc_ops *ops, void *ctx,
				 const struct ls_steerc_opts *opts);
/* Every request still outstanding is answered with LS_RC_NOT_READY ("closed"), then the
 * client is freed (at the end of the callback when called from one). */
void ls_steerc_close(struct ls_steerc *c);

/* The fd to watch for readability (an epoll set holding the connection): the same for the
 * client's whole life, connected or not. */
int ls_steerc_fd(const struct ls_steerc *c);
/* The poll events to watch on that fd: always POLLIN (writing is watched inside it). */
short ls_steerc_events(const struct ls_steerc *c);
/* When ls_steerc_run is due without the fd (a reconnect, a request's timeout, lines
 * already read but not yet handled), in ls_now_us() time; 0: nothing is due. */
uint64_t ls_steerc_deadline(const struct ls_steerc *c);
/* Connect, write, read, deliver answers and events, expire requests. Never blocks. */
void ls_steerc_run(struct ls_steerc *c, uint64_t now_us);

bool ls_steerc_connected(const struct ls_steerc *c);
/* Ask for events: now if connected, and again after every reconnect. */
void ls_steerc_subscribe(struct ls_steerc *c);

/* Send {"id":N,"cmd":cmd,...args}. args (an object of the arguments, or NULL) is taken.
 * LS_RC_OK: fn will be called exactly once, from ls_steerc_run or ls_steerc_close, never
 * from inside this call. Otherwise fn is never called: LS_RC_NOT_READY (not connected),
 * LS_RC_FULL (too many requests or bytes queued), LS_RC_UNKNOWN_COMMAND or LS_RC_INVALID
 * (not in opts->defs, or not fitting its definition), LS_RC_TOO_LONG (over the server's
 * line limit); ls_steerc_error says why. */
enum ls_rc ls_steerc_request(struct ls_steerc *c, const char *cmd, json_t *args,
			     ls_steerc_answer_fn fn, void *ud);
/* The message of the last refused request or of the last disconnection. */
const char *ls_steerc_error(const struct ls_steerc *c);

struct ls_steerc_stats {
	uint64_t connects, disconnects, requests, answers, timeouts, events, bad_lines;
};
void ls_steerc_get_stats(const struct ls_steerc *c, struct ls_steerc_stats *st);

/* One blocking request for tools and tests: connect to path, send, wait at most
 * timeout_ms for the answer. LS_RC_OK with *result (a new reference) set, or an error
 * with its message in msg (a failed connect is LS_RC_NOT_READY). args is taken. */
enum ls_rc ls_steerc_call(const char *path, const char *cmd, json_t *args, unsigned timeout_ms,
			  json_t **result, char *msg, size_t msglen);

#endif
