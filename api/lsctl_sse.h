/* A Server-Sent Events parser (the text/event-stream format): bytes in as they come,
 * one callback per complete event. No I/O, so a unit suite can feed it anything. */
#ifndef LSCTL_SSE_H
#define LSCTL_SSE_H

#include <stdbool.h>
#include <stddef.h>

/* fn is called once per complete event (event name, data); a non-zero return stops. */
typedef int (*lsctl_sse_fn)(void *ctx, const char *event, const char *data);

struct lsctl_sse {
	char *line;         /* the partial line */
	size_t line_len, line_cap;
	char event[64];
	char *data;         /* data lines joined with '\n' */
	size_t data_len, data_cap;
	lsctl_sse_fn fn;
	void *ctx;
	bool stopped;
	bool overflow;      /* a line over 1 MiB: skipped */
};
void lsctl_sse_init(struct lsctl_sse *p, lsctl_sse_fn fn, void *ctx);
/* Feed bytes as they come; returns false once fn asked to stop. */
bool lsctl_sse_feed(struct lsctl_sse *p, const char *buf, size_t len);
void lsctl_sse_free(struct lsctl_sse *p);

#endif
