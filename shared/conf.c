/* The configuration loader: a hand-written recursive-descent parser for the TOML subset
 * described in conf.h. It walks the text once, binding each key to its schema field as
 * soon as the value is parsed, and stops at the first error. Only libc is used so that
 * every program (and every test) can load configuration without other modules.
 */
#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NEST (8)               /* deepest array nesting accepted */
#define MAX_FILE (1024 * 1024)     /* largest configuration file accepted */
#define SHOW_MAX (40)              /* bytes of user text quoted in a message */
#define SHOW_BUF (SHOW_MAX * 4 + 8) /* worst case: every byte escaped, plus "..." */

struct parser {
	const char *p;          /* cursor */
	const char *line_start; /* first byte of the current line, for columns */
	int line;
	const char *name;
	char *err;
	size_t errlen;
	bool failed;

	const struct ls_conf_section *schema;
	void *conf;
	/* The table receiving keys: NULL before any header when the schema has no ""
	 * section. `base` is the struct its fields are written into. */
	const struct ls_conf_section *sec;
	void *base;
	bool in_array; /* sec was entered with [[name]] */
	unsigned char *key_seen; /* per field of sec, reset at each header */
	unsigned char *sec_seen; /* per schema section, to catch a repeated [table] */
};

/* ---- error reporting ---------------------------------------------------------- */

static int col_of(const struct parser *ps)
{
	size_t c = (size_t)(ps->p - ps->line_start) + 1;
	return c > INT_MAX ? INT_MAX : (int)c;
}

__attribute__((format(printf, 4, 0)))
static int vfail_at(struct parser *ps, int line, int col, const char *fmt, va_list ap)
{
	/* Only the first error is kept: later ones are consequences of it. */
	if (!ps->failed) {
		char msg[512];
		vsnprintf(msg, sizeof msg, fmt, ap);
		if (ps->err && ps->errlen)
			snprintf(ps->err, ps->errlen, "%s:%d:%d: %s", ps->name, line, col, msg);
		ps->failed = true;
	}
	return -1;
}

__attribute__((format(printf, 4, 5)))
static int fail_at(struct parser *ps, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(ps, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

/* An error at the cursor. */
__attribute__((format(printf, 2, 3)))
static int fail_here(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(ps, ps->line, col_of(ps), fmt, ap);
	va_end(ap);
	return -1;
}

/* Render untrusted text for a message: at most SHOW_MAX bytes, with control and
 * non-ASCII bytes escaped so that a hostile file cannot put newlines or terminal
 * escapes into the logs. */
static const char *show(char buf[SHOW_BUF], const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && i < SHOW_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			buf[o++] = (char)c;
		} else if (c == '\\') {
			buf[o++] = '\\';
			buf[o++] = '\\';
		} else {
			snprintf(buf + o, 5, "\\x%02x", c);
			o += 4;
		}
	}
	if (n > SHOW_MAX) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static bool is_newline(const char *p)
{
	return p[0] == '\n' || (p[0] == '\r' && p[1] == '\n');
}

/* Name what stands at p, for "expected X, found Y" messages. */
static const char *describe(char buf[16], const char *p)
{
	unsigned char c = (unsigned char)*p;
	if (c == '\0')
		return "end of file";
	if (is_newline(p))
		return "end of line";
	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, 16, "'%c'", c);
	else
		snprintf(buf, 16, "byte 0x%02x", c);
	return buf;
}

/* ---- lexical helpers ---------------------------------------------------------- */

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int hex_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_bare(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
	       c == '-';
}

/* Where a bare value token (number, true/false, or a mistake) ends. */
static bool is_delim(int c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' ||
	       c == '[' || c == ']' || c == '{' || c == '}' || c == '#' || c == '=' ||
	       c == '"' || c == '\'' || (c > 0 && c < 0x20) || c == 0x7f;
}

static void skip_ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t')
		ps->p++;
}

static void skip_comment(struct parser *ps)
{
	while (*ps->p != '\0' && *ps->p != '\n')
		ps->p++;
}

static void next_line(struct parser *ps)
{
	ps->p += ps->p[0] == '\r' ? 2 : 1;
	ps->line_start = ps->p;
	if (ps->line < INT_MAX)
		ps->line++;
}

/* Inside an array, whitespace, newlines and comments all separate items. */
static void skip_blank(struct parser *ps)
{
	for (;;) {
		skip_ws(ps);
		if (*ps->p == '#')
			skip_comment(ps);
		else if (is_newline(ps->p))
			next_line(ps);
		else
			return;
	}
}

/* After a value or header only a comment may follow on the line. */
static int expect_eol(struct parser *ps, const char *after)
{
	char d[16];
	skip_ws(ps);
	if (*ps->p == '#')
		skip_comment(ps);
	if (*ps->p == '\0' || is_newline(ps->p))
		return 0;
	return fail_here(ps, "expected end of line after %s, found %s", after,
			 describe(d, ps->p));
}

/* ---- strings ------------------------------------------------------------------ */

struct sbuf {
	char *p;
	size_t n, cap;
};

static int sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->cap - b->n <= n) {
		size_t cap = b->cap ? b->cap : 32;
		while (cap - b->n <= n) {
			if (cap > SIZE_MAX / 2)
				return -1;
			cap *= 2;
		}
		char *np = realloc(b->p, cap);
		if (!np)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* \uXXXX or \UXXXXXXXX with the cursor on the backslash; appends the UTF-8 bytes. */
static int parse_unicode_escape(struct parser *ps, struct sbuf *b)
{
	int line = ps->line, col = col_of(ps);
	int digits = ps->p[1] == 'u' ? 4 : 8;
	uint32_t cp = 0;
	for (int i = 0; i < digits; i++) {
		int h = hex_val((unsigned char)ps->p[2 + i]);
		if (h < 0)
			return fail_at(ps, line, col, "invalid escape: \\%c needs %d hex digits",
				       ps->p[1], digits);
		cp = cp * 16 + (uint32_t)h;
	}
	/* NUL would silently cut the C string; surrogates and values past U+10FFFF are
	 * not characters and would produce invalid UTF-8. */
	if (cp == 0)
		return fail_at(ps, line, col, "invalid escape: \\u0000 is not allowed");
	if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return fail_at(ps, line, col, "invalid escape: U+%04X is not a valid character",
			       (unsigned)cp);
	char u[4];
	if (sb_put(b, u, utf8_encode(cp, u)) < 0)
		return fail_at(ps, line, col, "out of memory");
	ps->p += 2 + digits;
	return 0;
}

/* A "basic" or 'literal' string, cursor on the opening quote. On success *out is a
 * malloc'd NUL-terminated copy. Strings end on their line: a raw newline or the end of
 * the text before the closing quote is reported at the opening quote. */
static int parse_string(struct parser *ps, char **out)
{
	int line = ps->line, col = col_of(ps);
	char quote = *ps->p;
	struct sbuf b = {0};
	char d[16];

	*out = NULL;
	if (ps->p[1] == quote && ps->p[2] == quote)
		return fail_here(ps, "multi-line strings (%c%c%c) are not supported", quote,
				 quote, quote);
	if (sb_put(&b, "", 0) < 0)
		return fail_here(ps, "out of memory");
	ps->p++;
	for (;;) {
		unsigned char c = (unsigned char)*ps->p;
		if (c == (unsigned char)quote) {
			ps->p++;
			break;
		}
		if (c == '\0' || is_newline(ps->p)) {
			fail_at(ps, line, col, "unterminated string");
			goto fail;
		}
		if (c == '\\' && quote == '"') {
			char e = ps->p[1], r;
			switch (e) {
			case '"': r = '"'; break;
			case '\\': r = '\\'; break;
			case 'n': r = '\n'; break;
			case 't': r = '\t'; break;
			case 'r': r = '\r'; break;
			case 'u':
			case 'U':
				if (parse_unicode_escape(ps, &b) < 0)
					goto fail;
				continue;
			default:
				if (e == '\0' || is_newline(ps->p + 1))
					fail_at(ps, line, col, "unterminated string");
				else if (e > 0x20 && e < 0x7f)
					fail_here(ps, "invalid escape '\\%c' in string", e);
				else
					fail_here(ps, "invalid escape in string: '\\' followed by %s",
						  describe(d, ps->p + 1));
				goto fail;
			}
			if (sb_put(&b, &r, 1) < 0) {
				fail_here(ps, "out of memory");
				goto fail;
			}
			ps->p += 2;
			continue;
		}
		/* Raw control characters (other than tab) are invisible in an editor and
		 * unsafe in logs; TOML forbids them too. */
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			fail_here(ps, "control character 0x%02x in string (use an escape)", c);
			goto fail;
		}
		if (sb_put(&b, (const char *)ps->p, 1) < 0) {
			fail_here(ps, "out of memory");
			goto fail;
		}
		ps->p++;
	}
	*out = b.p;
	return 0;
fail:
	free(b.p);
	return -1;
}

/* ---- values ------------------------------------------------------------------- */

static void free_cv(struct ls_cv *v)
{
	if (v->type == LS_CV_STRING) {
		free(v->u.s);
	} else if (v->type == LS_CV_ARRAY) {
		for (size_t i = 0; i < v->u.arr.n; i++)
			free_cv(&v->u.arr.items[i]);
		free(v->u.arr.items);
	}
	/* Leave it owning nothing, so freeing twice is harmless. */
	v->type = LS_CV_BOOL;
}

/* Digits with single '_' between them, appended to out; returns how many digits. */
static size_t scan_digits(const char *t, size_t n, size_t *i, char *out, size_t *o)
{
	size_t count = 0;
	while (*i < n) {
		char c = t[*i];
		if (is_digit(c)) {
			out[(*o)++] = c;
			count++;
			(*i)++;
		} else if (c == '_' && count > 0 && *i + 1 < n && is_digit(t[*i + 1])) {
			(*i)++;
		} else {
			break;
		}
	}
	return count;
}

static int parse_hex(struct parser *ps, const char *t, size_t n, int line, int col,
		     struct ls_cv *v)
{
	char sh[SHOW_BUF];
	uint64_t val = 0;
	size_t digits = 0;
	for (size_t i = 2; i < n; i++) {
		int h = hex_val((unsigned char)t[i]);
		if (h >= 0) {
			if (val > ((uint64_t)INT64_MAX - (uint64_t)h) / 16)
				return fail_at(ps, line, col, "integer %s does not fit in 64 bits",
					       show(sh, t, n));
			val = val * 16 + (uint64_t)h;
			digits++;
		} else if (!(t[i] == '_' && digits > 0 && i + 1 < n &&
			     hex_val((unsigned char)t[i + 1]) >= 0)) {
			return fail_at(ps, line, col, "invalid number '%s'", show(sh, t, n));
		}
	}
	if (digits == 0)
		return fail_at(ps, line, col, "invalid number '%s'", show(sh, t, n));
	v->type = LS_CV_INT;
	v->u.i = (int64_t)val;
	return 0;
}

/* A number token t[0..n): integer (decimal or 0x hex) or float. */
static int parse_number(struct parser *ps, const char *t, size_t n, int line, int col,
			struct ls_cv *v)
{
	char sh[SHOW_BUF];
	size_t i = 0;
	bool neg = false;

	if (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-';
		i = 1;
	}
	if (n - i >= 2 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'X')) {
		if (i > 0)
			return fail_at(ps, line, col, "hex integer '%s' may not have a sign",
				       show(sh, t, n));
		return parse_hex(ps, t, n, line, col, v);
	}

	/* Copy without underscores, and with the C library's decimal point so that
	 * strtod reads "0.5" the same whatever locale the program runs in. */
	const char *dp = localeconv()->decimal_point;
	size_t dplen = dp && *dp ? strlen(dp) : 1;
	char *clean = malloc(n + dplen + 2);
	if (!clean)
		return fail_at(ps, line, col, "out of memory");
	size_t o = 0;
	if (neg)
		clean[o++] = '-';
	size_t int_start = o;
	bool is_float = false;
	int r = -1;

	size_t int_digits = scan_digits(t, n, &i, clean, &o);
	if (int_digits == 0)
		goto invalid;
	if (int_digits > 1 && clean[int_start] == '0') {
		fail_at(ps, line, col, "leading zeros are not allowed in '%s'", show(sh, t, n));
		goto out;
	}
	if (i < n && t[i] == '.') {
		i++;
		memcpy(clean + o, dp && *dp ? dp : ".", dplen);
		o += dplen;
		if (scan_digits(t, n, &i, clean, &o) == 0)
			goto invalid;
		is_float = true;
	}
	if (i < n && (t[i] == 'e' || t[i] == 'E')) {
		i++;
		clean[o++] = 'e';
		if (i < n && (t[i] == '+' || t[i] == '-'))
			clean[o++] = t[i++];
		if (scan_digits(t, n, &i, clean, &o) == 0)
			goto invalid;
		is_float = true;
	}
	if (i != n)
		goto invalid;
	clean[o] = '\0';

	if (is_float) {
		char *end;
		errno = 0;
		double f = strtod(clean, &end);
		if (*end != '\0')
			goto invalid;
		/* Underflow to zero or a denormal is fine; overflow to infinity is not. */
		if (isinf(f)) {
			fail_at(ps, line, col, "float %s is out of range", show(sh, t, n));
			goto out;
		}
		v->type = LS_CV_FLOAT;
		v->u.f = f;
	} else {
		uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
		uint64_t val = 0;
		for (size_t k = int_start; k < o; k++) {
			uint64_t d = (uint64_t)(clean[k] - '0');
			if (val > (limit - d) / 10) {
				fail_at(ps, line, col, "integer %s does not fit in 64 bits",
					show(sh, t, n));
				goto out;
			}
			val = val * 10 + d;
		}
		v->type = LS_CV_INT;
		if (!neg)
			v->u.i = (int64_t)val;
		else if (val == (uint64_t)INT64_MAX + 1)
			v->u.i = INT64_MIN;
		else
			v->u.i = -(int64_t)val;
	}
	r = 0;
	goto out;
invalid:
	fail_at(ps, line, col, "invalid number '%s'", show(sh, t, n));
out:
	free(clean);
	return r;
}

static int parse_value(struct parser *ps, struct ls_cv *v, int depth);

/* An array, cursor on '['. Items may span lines; comments and a trailing comma are
 * allowed. */
static int parse_array(struct parser *ps, struct ls_cv *v, int depth)
{
	int line = ps->line, col = col_of(ps);
	size_t cap = 0;
	char d[16];

	/* The limit keeps recursion (and free_cv's) shallow whatever the input. */
	if (depth >= MAX_NEST)
		return fail_here(ps, "arrays nested too deeply (at most %d levels)", MAX_NEST);
	v->type = LS_CV_ARRAY;
	v->u.arr.items = NULL;
	v->u.arr.n = 0;
	ps->p++;
	for (;;) {
		skip_blank(ps);
		if (*ps->p == '\0')
			goto unterminated;
		if (*ps->p == ']')
			break;
		if (v->u.arr.n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct ls_cv *ni = ncap > SIZE_MAX / sizeof *ni
						   ? NULL
						   : realloc(v->u.arr.items, ncap * sizeof *ni);
			if (!ni) {
				fail_here(ps, "out of memory");
				goto fail;
			}
			v->u.arr.items = ni;
			cap = ncap;
		}
		if (parse_value(ps, &v->u.arr.items[v->u.arr.n], depth + 1) < 0)
			goto fail;
		v->u.arr.n++;
		skip_blank(ps);
		if (*ps->p == '\0')
			goto unterminated;
		if (*ps->p == ']')
			break;
		if (*ps->p != ',') {
			fail_here(ps, "expected ',' or ']' in array, found %s", describe(d, ps->p));
			goto fail;
		}
		ps->p++;
	}
	ps->p++;
	return 0;
unterminated:
	fail_at(ps, line, col, "unterminated array");
fail:
	free_cv(v);
	return -1;
}

/* Any value, cursor on its first byte. On failure v owns nothing. */
static int parse_value(struct parser *ps, struct ls_cv *v, int depth)
{
	char d[16], sh[SHOW_BUF];

	memset(v, 0, sizeof *v);
	v->line = ps->line;
	v->col = col_of(ps);
	v->type = LS_CV_BOOL;
	switch (*ps->p) {
	case '"':
	case '\'':
		v->type = LS_CV_STRING;
		return parse_string(ps, &v->u.s);
	case '[':
		return parse_array(ps, v, depth);
	case '{':
		return fail_here(ps, "inline tables ({...}) are not supported");
	default:
		break;
	}

	const char *t = ps->p;
	while (!is_delim((unsigned char)*ps->p))
		ps->p++;
	size_t n = (size_t)(ps->p - t);
	if (n == 0)
		return fail_here(ps, "expected a value, found %s", describe(d, ps->p));
	if (n == 4 && memcmp(t, "true", 4) == 0) {
		v->u.b = true;
		return 0;
	}
	if (n == 5 && memcmp(t, "false", 5) == 0) {
		v->u.b = false;
		return 0;
	}
	if (is_digit(t[0]) || t[0] == '+' || t[0] == '-' || t[0] == '.')
		return parse_number(ps, t, n, v->line, v->col, v);
	return fail_at(ps, v->line, v->col, "invalid value '%s' (strings must be quoted)",
		       show(sh, t, n));
}

/* ---- binding ------------------------------------------------------------------ */

const char *ls_cv_type_name(enum ls_cv_type t)
{
	switch (t) {
	case LS_CV_STRING: return "string";
	case LS_CV_INT: return "integer";
	case LS_CV_FLOAT: return "float";
	case LS_CV_BOOL: return "boolean";
	case LS_CV_ARRAY: return "array";
	}
	return "unknown";
}

static const char *a_type(enum ls_cv_type t)
{
	switch (t) {
	case LS_CV_STRING: return "a string";
	case LS_CV_INT: return "an integer";
	case LS_CV_FLOAT: return "a float";
	case LS_CV_BOOL: return "a boolean";
	case LS_CV_ARRAY: return "an array";
	}
	return "an unknown value";
}

static int wrong_type(struct parser *ps, const struct ls_conf_field *f,
		      const struct ls_cv *v, enum ls_cv_type want)
{
	return fail_at(ps, v->line, v->col, "'%s' must be %s, not %s", f->key, a_type(want),
		       a_type(v->type));
}

static int bind_value(struct parser *ps, const struct ls_conf_field *f, const struct ls_cv *v)
{
	char *dst = (char *)ps->base + f->offset;
	bool ranged = f->min != 0 || f->max != 0;

	switch (f->kind) {
	case LS_CF_STRING: {
		if (v->type != LS_CV_STRING)
			return wrong_type(ps, f, v, LS_CV_STRING);
		size_t len = strlen(v->u.s);
		if (f->size == 0 || len > f->size - 1)
			return fail_at(ps, v->line, v->col, "'%s' is too long (at most %zu characters)",
				       f->key, f->size ? f->size - 1 : 0);
		memcpy(dst, v->u.s, len + 1);
		return 0;
	}
	case LS_CF_INT:
	case LS_CF_UINT:
		if (v->type != LS_CV_INT)
			return wrong_type(ps, f, v, LS_CV_INT);
		if (ranged && (v->u.i < f->min || v->u.i > f->max))
			return fail_at(ps, v->line, v->col, "'%s' must be between %lld and %lld",
				       f->key, (long long)f->min, (long long)f->max);
		if (f->kind == LS_CF_INT) {
			int64_t i = v->u.i;
			memcpy(dst, &i, sizeof i);
		} else {
			if (v->u.i < 0)
				return fail_at(ps, v->line, v->col, "'%s' must not be negative",
					       f->key);
			uint64_t u = (uint64_t)v->u.i;
			memcpy(dst, &u, sizeof u);
		}
		return 0;
	case LS_CF_BOOL: {
		if (v->type != LS_CV_BOOL)
			return wrong_type(ps, f, v, LS_CV_BOOL);
		bool b = v->u.b;
		memcpy(dst, &b, sizeof b);
		return 0;
	}
	case LS_CF_CUSTOM: {
		char msg[256] = "";
		if (!f->parse)
			return fail_at(ps, v->line, v->col, "'%s' has no parser", f->key);
		if (f->parse(v, dst, msg, sizeof msg) < 0) {
			msg[sizeof msg - 1] = '\0';
			if (!msg[0])
				return fail_at(ps, v->line, v->col, "invalid value for '%s'", f->key);
			return fail_at(ps, v->line, v->col, "%s", msg);
		}
		return 0;
	}
	}
	return fail_at(ps, v->line, v->col, "'%s' has an unknown kind", f->key);
}

static size_t count_fields(const struct ls_conf_section *s)
{
	size_t n = 0;
	while (s->fields && s->fields[n].key)
		n++;
	return n;
}

/* The header an add() callback is called for (a loader may run in any thread). */
static _Thread_local struct ls_conf_at header_at;

const char *ls_conf_default(const char *path, char *note, size_t notelen)
{
	note[0] = '\0';
	if (access(path, F_OK) != 0)
		return NULL;
	if (access(path, R_OK) != 0) {
		snprintf(note, notelen, "not reading %s: %s; give -c FILE", path, strerror(errno));
		return NULL;
	}
	snprintf(note, notelen, "reading %s (no -c given)", path);
	return path;
}

struct ls_conf_at ls_conf_header_at(void)
{
	return header_at;
}

/* Bind a header: cursor is past the closing bracket(s); line/col point at the '['. */
static int enter_section(struct parser *ps, const char *name, bool arr, int line, int col)
{
	char sh[SHOW_BUF];
	const char *o = arr ? "[[" : "[", *c = arr ? "]]" : "]";
	size_t idx = 0;
	const struct ls_conf_section *s = NULL;

	show(sh, name, strlen(name));
	/* The "" section only ever holds top-level keys; no header can name it. */
	for (; name[0] && ps->schema[idx].name; idx++) {
		if (strcmp(ps->schema[idx].name, name) == 0) {
			s = &ps->schema[idx];
			break;
		}
	}
	if (!s)
		return fail_at(ps, line, col, "unknown section %s%s%s", o, sh, c);
	if (arr && !s->add)
		return fail_at(ps, line, col, "'%s' is a table: write [%s], not [[%s]]", sh, sh,
			       sh);
	if (!arr && s->add)
		return fail_at(ps, line, col, "'%s' is an array of tables: write [[%s]], not [%s]",
			       sh, sh, sh);
	if (arr) {
		char msg[256] = "";
		header_at = (struct ls_conf_at){ line, col };
		void *elem = s->add(ps->conf, msg, sizeof msg);
		if (!elem) {
			msg[sizeof msg - 1] = '\0';
			if (!msg[0])
				return fail_at(ps, line, col, "too many [[%s]] sections", sh);
			return fail_at(ps, line, col, "%s", msg);
		}
		ps->base = elem;
	} else {
		if (ps->sec_seen[idx])
			return fail_at(ps, line, col, "duplicate section [%s]", sh);
		ps->sec_seen[idx] = 1;
		ps->base = (char *)ps->conf + s->offset;
	}
	ps->sec = s;
	ps->in_array = arr;
	memset(ps->key_seen, 0, count_fields(s) + 1);
	return 0;
}

/* [name] or [[name]], cursor on the first '['. */
static int parse_header(struct parser *ps)
{
	int line = ps->line, col = col_of(ps);
	bool arr = ps->p[1] == '[';
	char *name = NULL, d[16], sh[SHOW_BUF];

	ps->p += arr ? 2 : 1;
	skip_ws(ps);
	const char *name_start = ps->p;
	if (*ps->p == '"' || *ps->p == '\'') {
		if (parse_string(ps, &name) < 0)
			return -1;
	} else {
		while (is_bare((unsigned char)*ps->p))
			ps->p++;
		if (ps->p == name_start)
			return fail_here(ps, "expected a section name, found %s",
					 describe(d, ps->p));
		name = malloc((size_t)(ps->p - name_start) + 1);
		if (!name)
			return fail_here(ps, "out of memory");
		memcpy(name, name_start, (size_t)(ps->p - name_start));
		name[ps->p - name_start] = '\0';
	}
	skip_ws(ps);
	if (*ps->p == '.') {
		const char *e = ps->p;
		while (*e && *e != ']' && !is_newline(e))
			e++;
		free(name);
		return fail_at(ps, line, col,
			       "dotted section names are not supported: %s%s%s (use one level)",
			       arr ? "[[" : "[", show(sh, name_start, (size_t)(e - name_start)),
			       arr ? "]]" : "]");
	}
	if (*ps->p != ']' || (arr && ps->p[1] != ']')) {
		free(name);
		return fail_here(ps, "expected '%s' to close the section header, found %s",
				 arr ? "]]" : "]", describe(d, ps->p));
	}
	ps->p += arr ? 2 : 1;
	int r = enter_section(ps, name, arr, line, col);
	free(name);
	if (r < 0)
		return -1;
	return expect_eol(ps, "the section header");
}

/* key = value, cursor on the key. */
static int parse_keyval(struct parser *ps)
{
	int line = ps->line, col = col_of(ps);
	char *key = NULL, d[16], sh[SHOW_BUF];
	const char *kstart = ps->p;

	if (*ps->p == '"' || *ps->p == '\'') {
		if (parse_string(ps, &key) < 0)
			return -1;
	} else {
		while (is_bare((unsigned char)*ps->p))
			ps->p++;
		if (ps->p == kstart)
			return fail_here(ps, "expected a key, found %s", describe(d, ps->p));
		key = malloc((size_t)(ps->p - kstart) + 1);
		if (!key)
			return fail_here(ps, "out of memory");
		memcpy(key, kstart, (size_t)(ps->p - kstart));
		key[ps->p - kstart] = '\0';
	}
	show(sh, key, strlen(key));
	skip_ws(ps);
	if (*ps->p == '.') {
		const char *e = ps->p;
		while (*e && *e != '=' && *e != ' ' && *e != '\t' && !is_newline(e))
			e++;
		free(key);
		return fail_at(ps, line, col, "dotted keys are not supported: '%s'",
			       show(sh, kstart, (size_t)(e - kstart)));
	}

	const struct ls_conf_field *f = NULL;
	size_t fi = 0;
	for (; ps->sec && ps->sec->fields && ps->sec->fields[fi].key; fi++) {
		if (strcmp(ps->sec->fields[fi].key, key) == 0) {
			f = &ps->sec->fields[fi];
			break;
		}
	}
	free(key);
	if (!f) {
		if (!ps->sec || !ps->sec->name[0])
			return fail_at(ps, line, col, "unknown key '%s' at top level", sh);
		return fail_at(ps, line, col, "unknown key '%s' in %s%s%s", sh,
			       ps->in_array ? "[[" : "[", ps->sec->name, ps->in_array ? "]]" : "]");
	}
	if (ps->key_seen[fi])
		return fail_at(ps, line, col, "duplicate key '%s'", sh);
	if (*ps->p != '=')
		return fail_here(ps, "expected '=' after key '%s', found %s", sh,
				 describe(d, ps->p));
	ps->p++;
	skip_ws(ps);

	struct ls_cv v;
	if (parse_value(ps, &v, 0) < 0)
		return -1;
	int r = expect_eol(ps, "the value");
	if (r == 0)
		r = bind_value(ps, f, &v);
	free_cv(&v);
	if (r == 0)
		ps->key_seen[fi] = 1;
	return r;
}

/* ---- entry points ------------------------------------------------------------- */

int ls_conf_load_string(const char *text, const char *name,
			const struct ls_conf_section *schema, void *conf, char *err, size_t errlen)
{
	struct parser ps = {0};
	size_t nsec = 0, maxf = 0;

	if (err && errlen)
		err[0] = '\0';
	ps.name = name ? name : "<config>";
	ps.err = err;
	ps.errlen = errlen;
	ps.schema = schema;
	ps.conf = conf;
	ps.line = 1;
	if (!text || !schema)
		return fail_at(&ps, 1, 1, "no configuration text or schema");
	/* A UTF-8 byte order mark, as some editors write, is not part of the text. */
	if (text[0] == '\xef' && text[1] == '\xbb' && text[2] == '\xbf')
		text += 3;
	ps.p = ps.line_start = text;

	for (; schema[nsec].name; nsec++) {
		size_t nf = count_fields(&schema[nsec]);
		if (nf > maxf)
			maxf = nf;
		if (!schema[nsec].name[0] && !ps.sec && !schema[nsec].add) {
			ps.sec = &schema[nsec];
			ps.base = (char *)conf + schema[nsec].offset;
		}
	}
	ps.key_seen = calloc(maxf + 1, 1);
	ps.sec_seen = calloc(nsec + 1, 1);
	if (!ps.key_seen || !ps.sec_seen) {
		fail_at(&ps, 1, 1, "out of memory");
		goto out;
	}

	while (!ps.failed) {
		skip_ws(&ps);
		if (*ps.p == '\0')
			break;
		if (*ps.p == '#')
			skip_comment(&ps);
		else if (is_newline(ps.p))
			next_line(&ps);
		else if (*ps.p == '[')
			parse_header(&ps);
		else
			parse_keyval(&ps);
	}
out:
	free(ps.key_seen);
	free(ps.sec_seen);
	return ps.failed ? -1 : 0;
}

int ls_conf_load_file(const char *path, const struct ls_conf_section *schema, void *conf,
		      char *err, size_t errlen)
{
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int fd, r = -1;

	if (err && errlen)
		err[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto sys_error;
	/* Read at most one byte past the limit: enough to know the file is too big
	 * without trusting st_size (pipes, /proc files and growing files lie). */
	for (;;) {
		if (n + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 64 * 1024;
			if (ncap > MAX_FILE + 2)
				ncap = MAX_FILE + 2;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				errno = ENOMEM;
				goto sys_error;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t got = read(fd, buf + n, cap - n - 1);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			goto sys_error;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > MAX_FILE) {
			if (err && errlen)
				snprintf(err, errlen, "%s: file is too large (more than %d bytes)", path,
					 MAX_FILE);
			goto out;
		}
	}
	close(fd);
	fd = -1;
	buf[n] = '\0';

	/* The parser sees a C string, so a NUL would silently hide the rest of the file. */
	const char *nul = memchr(buf, '\0', n);
	if (nul) {
		int line = 1;
		const char *ls = buf;
		for (const char *q = buf; q < nul; q++) {
			if (*q == '\n') {
				line++;
				ls = q + 1;
			}
		}
		if (err && errlen)
			snprintf(err, errlen, "%s:%d:%d: file contains a NUL byte", path, line,
				 (int)(nul - ls) + 1);
		goto out;
	}
	r = ls_conf_load_string(buf, path, schema, conf, err, errlen);
	goto out;

sys_error:
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

void ls_conf_print_str(const char *key, const char *s)
{
	printf("%s = \"", key);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	printf("\"\n");
}
