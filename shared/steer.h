/* The steering socket server (docs/protocol.md section 3): a Unix stream socket,
 * JSON one object per line, a command table, and event streams for subscribers.
 * It runs inside its owner's event loop through one pollable fd. */
#ifndef LS_STEER_H
#define LS_STEER_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include "result.h"

#define LS_STEER_MAX_LINE  65536
#define LS_STEER_MAX_CONNS 32

struct ls_steer;

/* A command: read args from req (the whole request object), set *result to a new
 * JSON object (or leave NULL for {}), return LS_RC_OK; or return an error code with
 * a human message written to msg. */
typedef enum ls_rc (*ls_steer_fn)(void *ctx, json_t *req, json_t **result, char *msg,
				   size_t msglen);
struct ls_steer_cmd {
	const char *name;
	ls_steer_fn fn;
	const char *help; /* one line, shown by the built-in "help" command */
};

/* Listen on path (creating its directory; replacing a stale socket; refusing when
 * another process listens there), chmod to mode. cmds ends with a {NULL} entry.
 * "help" and "subscribe" are built in. Returns NULL with a message in err. */
struct ls_steer *ls_steer_open(const char *path, mode_t mode, const struct ls_steer_cmd *cmds,
			       void *ctx, char *err, size_t errlen);
/* An fd to add to the owner's epoll (EPOLLIN); when it is readable call ls_steer_run. */
int ls_steer_fd(const struct ls_steer *s);
/* Accept, read, answer and flush whatever is ready; never blocks. */
void ls_steer_run(struct ls_steer *s);
/* Send {"event":name, "ts_us":..., ...data} to every subscriber (data's members are
 * merged in; data is stolen). A subscriber that cannot keep up loses events, counted. */
void ls_steer_publish(struct ls_steer *s, const char *event, json_t *data);
bool ls_steer_has_subscribers(const struct ls_steer *s);

struct ls_steer_stats {
	unsigned long conns, conns_total, requests, errors, events_sent, events_dropped;
};
void ls_steer_get_stats(const struct ls_steer *s, struct ls_steer_stats *st);
/* Close every connection and unlink the socket path. */
void ls_steer_close(struct ls_steer *s);

#endif
