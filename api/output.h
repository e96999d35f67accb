/* lsctl's output layer (as bgpctl's): one table of functions per format. The text
 * table renders for people; the JSON table prints exactly what the API answered. */
#ifndef LSCTL_OUTPUT_H
#define LSCTL_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

struct lsctl_style {
	bool color;     /* ANSI colours (a terminal, and NO_COLOR unset) */
};

/* What one answer is: the API's exact bytes and their parsed form. */
struct lsctl_doc {
	const char *raw;
	size_t len;
	json_t *json;
};

typedef void (*lsctl_out_fn)(FILE *out, const struct lsctl_doc *doc,
			     const struct lsctl_style *st);

struct lsctl_output {
	lsctl_out_fn status;   /* GET /status */
	lsctl_out_fn routes;   /* GET /routes */
	lsctl_out_fn proxies;  /* GET /proxies */
	lsctl_out_fn proxy;    /* GET /proxies/{name}, POST /proxies */
	lsctl_out_fn removed;  /* DELETE /proxies/{name} */
	lsctl_out_fn switched; /* POST /failover */
	lsctl_out_fn history;  /* GET /failovers */
	lsctl_out_fn stats;    /* GET /stats */
	lsctl_out_fn model;    /* GET /model, POST /model/train */
	lsctl_out_fn strategy; /* POST /route/strategy (and the strategy part of GET /model) */
	lsctl_out_fn paths;    /* GET /paths */
	lsctl_out_fn mode;     /* POST /route/mode */
	/* One event of GET /events as one line (data is the event's JSON text). */
	void (*event)(FILE *out, const char *name, const char *data, const json_t *json,
		      const struct lsctl_style *st);
};

extern const struct lsctl_output lsctl_output_text;
extern const struct lsctl_output lsctl_output_json;

/* Text helpers shared with `watch`: a measurement ("30.9" or "-"), a loss ("0.4%"). */
void output_text_ms(char *buf, size_t len, const json_t *v);
void output_text_loss(char *buf, size_t len, const json_t *v);

#endif
