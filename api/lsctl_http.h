/* lsctl's HTTP client (libcurl): one call per request, the answer's status and body,
 * and a Server-Sent Events reader for `watch`. */
#ifndef LSCTL_HTTP_H
#define LSCTL_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lsctl_sse.h"

struct lsctl_api {
	const char *base;   /* "http://127.0.0.1:9000" */
	const char *token;  /* Bearer token or NULL */
	long timeout_ms;    /* whole request (not streams) */
};

enum lsctl_http_rc {
	LSCTL_HTTP_OK,          /* an HTTP answer came (any status) */
	LSCTL_HTTP_UNREACHABLE, /* no connection, or no answer in time */
};

struct lsctl_answer {
	long status;
	char *body;         /* NUL-terminated */
	size_t len;
	json_t *json;       /* parsed body when it is JSON, else NULL */
	char err[256];      /* for UNREACHABLE: what libcurl said */
};

/* method + path (already escaped), body NULL or a JSON object. */
enum lsctl_http_rc lsctl_http_call(const struct lsctl_api *api, const char *method,
				   const char *path, const json_t *body, struct lsctl_answer *ans);
void lsctl_answer_free(struct lsctl_answer *ans);
/* A path segment escaped for a URL (malloc'ed). */
char *lsctl_http_escape(const char *segment);

/* GET path as a stream until fn stops it or the server ends it. Before the stream
 * starts, an error answer is returned in ans like lsctl_http_call. */
enum lsctl_http_rc lsctl_http_stream(const struct lsctl_api *api, const char *path,
				     lsctl_sse_fn fn, void *ctx, struct lsctl_answer *ans);

#endif
