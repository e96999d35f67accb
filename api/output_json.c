/* lsctl --json: exactly the API's JSON, byte for byte (a script sees what curl sees).
 * Events become one line each: {"event":NAME,"data":DATA} with DATA as the API sent it. */
#include "output.h"

#include <stdlib.h>
#include <string.h>

static void out_raw(FILE *out, const struct lsctl_doc *doc, const struct lsctl_style *st)
{
	(void)st;
	fwrite(doc->raw, 1, doc->len, out);
	if (doc->len && doc->raw[doc->len - 1] != '\n')
		fputc('\n', out);
}

static void out_event(FILE *out, const char *name, const char *data, const json_t *json,
		      const struct lsctl_style *st)
{
	json_t *n = json_string(name);
	char *qn = n ? json_dumps(n, JSON_ENCODE_ANY) : NULL;

	(void)json;
	(void)st;
	/* The data line of an event is one line of JSON already. */
	fprintf(out, "{\"event\":%s,\"data\":%s}\n", qn ? qn : "\"?\"", data[0] ? data : "null");
	free(qn);
	json_decref(n);
	fflush(out);
}

const struct lsctl_output lsctl_output_json = {
	.status = out_raw,
	.routes = out_raw,
	.proxies = out_raw,
	.proxy = out_raw,
	.removed = out_raw,
	.switched = out_raw,
	.history = out_raw,
	.stats = out_raw,
	.model = out_raw,
	.strategy = out_raw,
	.paths = out_raw,
	.mode = out_raw,
	.event = out_event,
};
