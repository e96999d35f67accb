/* The HTTP server of the control plane (REST API, dashboard, the agent's /health):
 * libmicrohttpd driven from its owner's event loop, a route table from which 404, 405
 * and 400 fall out, one error mapping through result.h, a Bearer token when bound
 * beyond loopback, Server-Sent Event streams, static files, and limits on everything
 * a client controls (body size, connections, idle time, event backlog). */
#ifndef LS_HTTPD_H
#define LS_HTTPD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "result.h"

struct ls_httpd;
struct uv_loop_s;

/* Types a body member may have; LS_HTTPD_NULL may be or-ed in (the member may be null). */
enum ls_httpd_type {
	LS_HTTPD_STRING = 1,
	LS_HTTPD_INT = 2,      /* a JSON integer */
	LS_HTTPD_NUMBER = 3,   /* integer or real */
	LS_HTTPD_BOOL = 4,
	LS_HTTPD_OBJECT = 5,
	LS_HTTPD_ARRAY = 6,
	LS_HTTPD_NULL = 0x100,
};

/* One member a route's JSON body may carry. */
struct ls_httpd_key {
	const char *name;
	unsigned type;         /* enum ls_httpd_type, possibly | LS_HTTPD_NULL */
	bool required;
};

#define LS_HTTPD_MAX_PARAMS 4

/* What a handler sees. Strings live as long as the call. */
struct ls_httpd_req {
	const char *method;    /* "GET" (HEAD is served as GET), "POST", ... */
	const char *path;      /* decoded path, without the query */
	int nparams;
	struct {
		const char *name;  /* from the pattern, e.g. "name" for {name} */
		char value[128];
	} params[LS_HTTPD_MAX_PARAMS];
	json_t *body;          /* validated object ({} when the request had no body) */
	void *conn;            /* the MHD connection (for ls_httpd_query) */
};

/* What a handler fills in. For LS_RC_OK: json (stolen) or text (malloc'ed, stolen,
 * served with content_type); status defaults to 200. For an error code: msg (a human
 * sentence saying what to do) and nothing else; the body is built from rc. */
struct ls_httpd_reply {
	int status;
	json_t *json;
	char *text;
	size_t text_len;
	const char *content_type;
	char msg[256];
};

typedef enum ls_rc (*ls_httpd_fn)(void *ctx, const struct ls_httpd_req *req,
				   struct ls_httpd_reply *rep);

/* A route: method and pattern ("/proxies/{name}": a {param} is one non-empty path
 * segment). keys lists the body members allowed (NULL entry ends it; keys == NULL: the
 * route takes no body); query lists the query keys allowed (NULL: none). An sse route
 * turns the connection into an event stream; its handler, when set, may refuse (an
 * error code) or return a first event (rep->json, sent as event "snapshot"). */
struct ls_httpd_route {
	const char *method;
	const char *pattern;
	ls_httpd_fn fn;
	const struct ls_httpd_key *keys;
	const char *const *query;
	bool sse;
};

struct ls_httpd_conf {
	const char *name;        /* for logs: "REST API", "dashboard" */
	const char *listen;      /* "127.0.0.1:9000" (port 0: any; see ls_httpd_port) */
	const char *token;       /* Bearer token; required when listen is not loopback */
	const struct ls_httpd_route *routes; /* ends with a { NULL } entry */
	void *ctx;               /* passed to every handler */
	const char *static_root; /* GET of any other path serves files from here (NULL: off) */
	size_t max_body;         /* bytes (default 64 KiB); more is 413 */
	unsigned max_conns;      /* open connections (default 64); more are closed at once */
	unsigned max_sse;        /* event streams (default 16); more are 503 */
	unsigned timeout_s;      /* a connection idle this long is closed (default 15) */
	size_t sse_backlog;      /* unsent bytes per stream before events drop (256 KiB) */
	unsigned sse_keepalive_s;/* comment line to idle streams (default 15) */
};

/* Bind and start. NULL with a message in err (a busy port, a bad address, a
 * non-loopback address without a token). */
struct ls_httpd *ls_httpd_open(const struct ls_httpd_conf *conf, char *err, size_t errlen);
/* Drive it from a libuv loop (uv_poll on the fd below plus a timer); 0 or -1. */
int ls_httpd_attach_uv(struct ls_httpd *h, struct uv_loop_s *loop);
/* Or by hand: watch fd for reading, call ls_httpd_run when it is readable or when
 * ls_httpd_timeout_ms (-1: none) has passed. Never blocks. */
int ls_httpd_fd(const struct ls_httpd *h);
int ls_httpd_timeout_ms(const struct ls_httpd *h);
void ls_httpd_run(struct ls_httpd *h);
/* The bound port (useful with port 0). */
uint16_t ls_httpd_port(const struct ls_httpd *h);

/* A query value of the request (NULL when absent). */
const char *ls_httpd_query(const struct ls_httpd_req *req, const char *key);

/* Send "event: NAME\ndata: JSON\n\n" to every stream (data is stolen; NULL sends {}).
 * A stream whose backlog is full loses the event (counted); the next one it gets is
 * preceded by an event "dropped" {"count":N}. Never blocks. */
void ls_httpd_publish(struct ls_httpd *h, const char *event, json_t *data);
unsigned ls_httpd_streams(const struct ls_httpd *h);

struct ls_httpd_stats {
	unsigned long requests, errors, auth_failures, streams, streams_total, events_sent,
		events_dropped;
};
void ls_httpd_get_stats(const struct ls_httpd *h, struct ls_httpd_stats *st);

/* Stop: end every stream, close every connection, free. */
void ls_httpd_close(struct ls_httpd *h);

/* ---- the pure parts, exposed for unit tests ---- */

enum ls_httpd_match {
	LS_HTTPD_MATCH_OK,
	LS_HTTPD_MATCH_NO_PATH,    /* 404 */
	LS_HTTPD_MATCH_NO_METHOD,  /* 405: allow holds "GET, POST" */
};
/* Find the route for method and path; fills req->params. */
enum ls_httpd_match ls_httpd_lookup(const struct ls_httpd_route *routes, const char *method,
				    const char *path, const struct ls_httpd_route **route,
				    struct ls_httpd_req *req, char *allow, size_t allowlen);
/* Parse and check a body against keys: LS_RC_OK with *out an object ({} for an empty
 * body), or LS_RC_BAD_JSON / LS_RC_BAD_REQUEST / LS_RC_INVALID with a message. */
enum ls_rc ls_httpd_check_body(const struct ls_httpd_key *keys, const char *body, size_t len,
			       json_t **out, char *msg, size_t msglen);
/* The error body {"error":{"code":..,"message":..}} as text (malloc'ed). */
char *ls_httpd_error_body(enum ls_rc rc, const char *msg);
/* Content type of a file name by its extension. */
const char *ls_httpd_content_type(const char *path);
/* True when a decoded URL path may name a file under a static root: no "..", no
 * empty or hidden segment, no backslash or control byte. */
bool ls_httpd_static_path_ok(const char *path);
/* "Bearer TOKEN" against the token, in time independent of where they differ. */
bool ls_httpd_token_ok(const char *authorization, const char *token);

#endif
