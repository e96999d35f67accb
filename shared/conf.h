/* The configuration loader: the TOML subset our configs use, bound to a C struct by a
 * schema table. Errors read "file:line:col: message"; an unknown key or section is an
 * error, never ignored.
 *
 * Subset: comments (#), bare and quoted keys, [table] and [[array-of-tables]] headers
 * (one level; "a.b" headers are not used), values: basic "strings" with escapes
 * (\" \\ \n \t \r \uXXXX), 'literal strings', integers (decimal, _ separators, 0x hex),
 * floats, true/false, and arrays (possibly multi-line, trailing comma allowed) of those.
 */
#ifndef LS_CONF_H
#define LS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ls_cv_type { LS_CV_STRING, LS_CV_INT, LS_CV_FLOAT, LS_CV_BOOL, LS_CV_ARRAY };

/* A value as parsed, with where it stands in the file (1-based). */
struct ls_cv {
	enum ls_cv_type type;
	int line, col;
	union {
		char *s;
		int64_t i;
		double f;
		bool b;
		struct {
			struct ls_cv *items;
			size_t n;
		} arr;
	} u;
};

enum ls_cf_kind {
	LS_CF_STRING, /* char array at offset, `size` bytes; too long is an error */
	LS_CF_INT,    /* int64_t at offset, within [min, max] */
	LS_CF_UINT,   /* uint64_t at offset, within [min, max] */
	LS_CF_BOOL,   /* bool at offset */
	LS_CF_CUSTOM, /* parse() converts the value */
};

struct ls_conf_field {
	const char *key;
	enum ls_cf_kind kind;
	size_t offset; /* from the section's struct */
	size_t size;   /* LS_CF_STRING: capacity of the char array */
	int64_t min, max;
	/* LS_CF_CUSTOM: write into dst (= section struct + offset); on error fill err
	 * with a message (without position) and return -1. */
	int (*parse)(const struct ls_cv *v, void *dst, char *err, size_t errlen);
};

struct ls_conf_section {
	const char *name; /* "" for keys before any [table] header */
	const struct ls_conf_field *fields; /* ends with a {NULL} entry */
	/* [name]: the section's struct is conf + offset. */
	size_t offset;
	/* [[name]]: add() returns a zeroed struct for one more element, or NULL with a
	 * message in err (too many). When add is set the section is an array of tables. */
	void *(*add)(void *conf, char *err, size_t errlen);
};

/* Where a [[name]] header stands (1-based). Inside an add() callback,
 * ls_conf_header_at() says where the header being entered stands, so that checks made
 * after loading (a missing key, a repeated id) can name file:line:col too. */
struct ls_conf_at {
	int line, col;
};
struct ls_conf_at ls_conf_header_at(void);

/* Parse text (named `name` in messages) and bind it through schema (ends with a
 * {NULL} entry) into conf, which the caller has filled with defaults. Return 0, or -1
 * with "name:line:col: message" in err. On error conf may be partly written: parse
 * into a copy to keep the old configuration. */
int ls_conf_load_string(const char *text, const char *name,
			const struct ls_conf_section *schema, void *conf, char *err, size_t errlen);
/* The same for a file; "path: <strerror>" when it cannot be read. */
int ls_conf_load_file(const char *path, const struct ls_conf_section *schema, void *conf,
		      char *err, size_t errlen);

/* A program's configuration when no -c names one: path when it exists and this user can
 * read it, else NULL. note says what happened ("reading PATH (no -c given)", "not reading
 * PATH: Permission denied; give -c FILE", or "" when there is no such file). */
const char *ls_conf_default(const char *path, char *note, size_t notelen);

/* `key = "value"` as TOML (quotes, backslashes and control bytes escaped), for the
 * programs' --check output. */
void ls_conf_print_str(const char *key, const char *value);

/* Helpers for custom parsers. */
const char *ls_cv_type_name(enum ls_cv_type t);

#endif
