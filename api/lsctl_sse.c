/* Server-Sent Events parser (see lsctl_sse.h): lines split on LF (a CR before it is
 * dropped), "event:" and "data:" fields, comments skipped, a blank line ends an event.
 * A line longer than 1 MiB is skipped whole rather than grown without bound. */
#include "lsctl_sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_MAX_LINE (1u << 20)

void lsctl_sse_init(struct lsctl_sse *p, lsctl_sse_fn fn, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->fn = fn;
	p->ctx = ctx;
}

void lsctl_sse_free(struct lsctl_sse *p)
{
	free(p->line);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

static bool grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return true;
	size_t n = *cap ? *cap : 256;
	while (n < need)
		n *= 2;
	char *b = realloc(*buf, n);
	if (!b)
		return false;
	*buf = b;
	*cap = n;
	return true;
}

static void sse_line(struct lsctl_sse *p, char *line, size_t len)
{
	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len == 0) {
		/* A blank line ends the event. */
		if (p->data_len) {
			p->data[p->data_len] = '\0';
			if (p->fn(p->ctx, p->event[0] ? p->event : "message", p->data))
				p->stopped = true;
		}
		p->event[0] = '\0';
		p->data_len = 0;
		return;
	}
	if (line[0] == ':')
		return; /* a comment (keepalive) */
	char *colon = memchr(line, ':', len);
	size_t flen = colon ? (size_t)(colon - line) : len;
	const char *value = colon ? colon + 1 : "";
	if (colon && *value == ' ')
		value++;
	size_t vlen = len - (size_t)(value - line);
	if (!colon)
		vlen = 0;
	if (flen == 5 && memcmp(line, "event", 5) == 0) {
		snprintf(p->event, sizeof(p->event), "%.*s", (int)vlen, value);
	} else if (flen == 4 && memcmp(line, "data", 4) == 0) {
		if (!grow(&p->data, &p->data_cap, p->data_len + vlen + 2))
			return;
		if (p->data_len)
			p->data[p->data_len++] = '\n';
		memcpy(p->data + p->data_len, value, vlen);
		p->data_len += vlen;
	}
	/* id: and retry: matter to browsers reconnecting, not to lsctl. */
}

bool lsctl_sse_feed(struct lsctl_sse *p, const char *buf, size_t len)
{
	for (size_t i = 0; i < len && !p->stopped; i++) {
		if (buf[i] == '\n') {
			if (!p->overflow) {
				if (!grow(&p->line, &p->line_cap, p->line_len + 1))
					return false;
				p->line[p->line_len] = '\0';
				sse_line(p, p->line, p->line_len);
			}
			p->overflow = false;
			p->line_len = 0;
			continue;
		}
		if (p->overflow)
			continue;
		if (p->line_len >= SSE_MAX_LINE) {
			p->overflow = true;
			p->line_len = 0;
			continue;
		}
		if (!grow(&p->line, &p->line_cap, p->line_len + 2))
			return false;
		p->line[p->line_len++] = buf[i];
	}
	return !p->stopped;
}

