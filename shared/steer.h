/* The steering socket server (docs/protocol.md section 3): a Unix stream socket,
 * JSON one object per line, a command table, and event streams for subscribers.
 * It runs inside its owner's event loop through one pollable fd. */
#ifndef LS_STEER_H
#define LS_STEER_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include "result.h"
#include "steer_cmd.h"
#include "util.h"

#define LS_STEER_MAX_LINE  65536
#define LS_STEER_MAX_CONNS 32
/* Per connection: no request is handled while more than this of its output waits, and
 * events are dropped for a subscriber with more than this waiting. */
#define LS_STEER_OUT_PAUSE 65536
/* An answer over this size is refused (too_long) instead of queued. */
#define LS_STEER_ANSWER_MAX (4u << 20)
/* A connection whose waiting output none is read of for this long is closed. */
#define LS_STEER_STALL_US 10000000u

struct ls_steer;

/* One request being handled. The server has checked req against the command's
 * definition (steer_cmd.h): only known keys, each of its type and within its range,
 * every required one present; the handler checks what a table cannot (an address, a
 * hex key, a FEC setting). */
struct ls_steer_call {
	json_t *req;    /* the whole request object (borrowed) */
	json_t *result; /* set by the handler on success: an object (NULL answers {}) */
	char *text;     /* or: text answered as it is instead of a JSON line (malloc'd) */
	char *json;     /* or: the result object already written as JSON text (malloc'd;
			 * jsonw.h), for answers too large to build as a tree in a turn */
	char msg[256];  /* on error: what went wrong and what to do */
};
typedef enum ls_rc (*ls_steer_fn)(void *ctx, struct ls_steer_call *call);
/* Fill call->msg and return rc: `return ls_steer_fail(call, LS_RC_NOT_FOUND, ...);` */
enum ls_rc ls_steer_fail(struct ls_steer_call *call, enum ls_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The "format" and "raw" arguments of `stats`: 0 for JSON, 1 for the Prometheus text,
 * -1 (the message in call) for raw without the text format. */
int ls_steer_text_format(struct ls_steer_call *call);
/* Answer text (malloc'd and taken; NULL: out of memory): alone with "raw":true, else as
 * {"text": ...}. */
enum ls_rc ls_steer_answer_text(struct ls_steer_call *call, char *text);

/* A command's handler, bound to its definition by name. */
struct ls_steer_handler {
	const char *name;
	ls_steer_fn fn;
};

/* Listen on path (creating its directory; replacing a stale socket; refusing when
 * another process listens there), chmod to mode. defs (ends with {NULL}) defines every
 * command, handlers (ends with {NULL}) runs them: each definition but the built-ins
 * "help" and "subscribe" needs a handler and each handler a definition. Returns NULL
 * with a message in err. */
struct ls_steer *ls_steer_open(const char *path, mode_t mode, const struct ls_steer_def *defs,
			       const struct ls_steer_handler *handlers, void *ctx, char *err,
			       size_t errlen);
/* An fd to add to the owner's epoll (EPOLLIN); when it is readable call ls_steer_run. */
int ls_steer_fd(const struct ls_steer *s);
/* Accept, read, answer and flush whatever is ready; never blocks. */
void ls_steer_run(struct ls_steer *s);
/* Send {"event":name, "ts_us":..., ...data} to every subscriber (data's members are
 * merged in; data is stolen). A subscriber that cannot keep up loses events, counted. */
void ls_steer_publish(struct ls_steer *s, const char *event, json_t *data);
bool ls_steer_has_subscribers(const struct ls_steer *s);

/* The same counters, spelled the same, in every process's `stats` (steer_stats_json). */
struct ls_steer_stats {
	unsigned long connections;       /* open now */
	unsigned long connections_total; /* accepted since start */
	unsigned long refused;           /* closed on accept: too many open */
	unsigned long cut_off;           /* closed for not reading their answers */
	unsigned long requests, errors;  /* lines handled; error answers among them */
	unsigned long events_sent, events_dropped;
};
void ls_steer_get_stats(const struct ls_steer *s, struct ls_steer_stats *st);
/* The "steering" object of `stats`, and the same as Prometheus text under prefix
 * ("lightspeed_proxy" gives lightspeed_proxy_steering_requests_total ...). */
json_t *ls_steer_stats_json(const struct ls_steer *s);
void ls_steer_stats_prom(const struct ls_steer *s, struct ls_buf *b, const char *prefix);
/* Write what out holds from *off on to fd without blocking (both ends of a steering
 * connection queue this way). 0: all written or the socket is full; -1 (errno): the
 * connection is gone. Once all is written the buffer is emptied, and freed if it grew. */
int ls_steer_flush(int fd, struct ls_buf *out, size_t *off);

/* Close every connection and unlink the socket path. */
void ls_steer_close(struct ls_steer *s);

#endif
