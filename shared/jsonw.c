/* A JSON text writer. Nesting deeper than LS_JW_DEPTH is a bug of the caller; it is
 * still written, with commas possibly wrong, never beyond the arrays here. */
#include "jsonw.h"

#include <string.h>

void ls_jw_init(struct ls_jw *w, struct ls_buf *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
}

/* The comma before a value, unless it is the first at its depth or follows a key. */
static void sep(struct ls_jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0 && w->depth <= LS_JW_DEPTH) {
		if (w->had[w->depth - 1])
			ls_buf_append(w->b, ",", 1);
		w->had[w->depth - 1] = true;
	}
}

static void open_(struct ls_jw *w, const char *c)
{
	sep(w);
	ls_buf_append(w->b, c, 1);
	w->depth++;
	if (w->depth <= LS_JW_DEPTH)
		w->had[w->depth - 1] = false;
}

static void close_(struct ls_jw *w, const char *c)
{
	ls_buf_append(w->b, c, 1);
	if (w->depth > 0)
		w->depth--;
}

void ls_jw_obj(struct ls_jw *w)
{
	open_(w, "{");
}

void ls_jw_arr(struct ls_jw *w)
{
	open_(w, "[");
}

void ls_jw_end_obj(struct ls_jw *w)
{
	close_(w, "}");
}

void ls_jw_end_arr(struct ls_jw *w)
{
	close_(w, "]");
}

static void quoted(struct ls_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	ls_buf_append(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
		size_t n = 6;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		ls_buf_append(b, run, (size_t)(s - run));
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			n = 2;
		}
		ls_buf_append(b, esc, n);
		run = s + 1;
	}
	ls_buf_append(b, run, (size_t)(s - run));
	ls_buf_append(b, "\"", 1);
}

void ls_jw_key(struct ls_jw *w, const char *key)
{
	sep(w);
	quoted(w->b, key);
	ls_buf_append(w->b, ":", 1);
	w->after_key = true;
}

void ls_jw_str(struct ls_jw *w, const char *s)
{
	sep(w);
	quoted(w->b, s);
}

void ls_jw_u64(struct ls_jw *w, uint64_t v)
{
	char d[20];
	size_t n = sizeof(d);

	sep(w);
	/* By hand: snprintf is most of the cost of a long listing. */
	do
		d[--n] = (char)('0' + v % 10);
	while (v /= 10);
	ls_buf_append(w->b, d + n, sizeof(d) - n);
}

void ls_jw_i64(struct ls_jw *w, int64_t v)
{
	if (v >= 0) {
		ls_jw_u64(w, (uint64_t)v);
		return;
	}
	sep(w);
	ls_buf_append(w->b, "-", 1);
	w->after_key = true; /* the digits continue this value */
	ls_jw_u64(w, (uint64_t)0 - (uint64_t)v);
}

void ls_jw_bool(struct ls_jw *w, bool v)
{
	sep(w);
	ls_buf_append(w->b, v ? "true" : "false", v ? 4 : 5);
}

void ls_jw_null(struct ls_jw *w)
{
	sep(w);
	ls_buf_append(w->b, "null", 4);
}
