/* A JSON text writer into an ls_buf: objects, arrays, strings (escaped), integers,
 * booleans and null, with the commas placed for the caller. For answers too large to
 * build as a jansson tree within a loop turn (the proxy's session list): writing 1,000
 * sessions costs a tenth of building and dumping the tree. Control paths only. */
#ifndef LS_JSONW_H
#define LS_JSONW_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define LS_JW_DEPTH 16

struct ls_jw {
	struct ls_buf *b;
	int depth;
	bool had[LS_JW_DEPTH]; /* a member (or item) was written at this depth */
	bool after_key;        /* the next value follows a key: no comma */
};

void ls_jw_init(struct ls_jw *w, struct ls_buf *b);
void ls_jw_obj(struct ls_jw *w);   /* { */
void ls_jw_arr(struct ls_jw *w);   /* [ */
void ls_jw_end_obj(struct ls_jw *w);
void ls_jw_end_arr(struct ls_jw *w);
/* A member's key; the value follows with one of the calls below. */
void ls_jw_key(struct ls_jw *w, const char *key);
void ls_jw_str(struct ls_jw *w, const char *s);
void ls_jw_u64(struct ls_jw *w, uint64_t v);
void ls_jw_i64(struct ls_jw *w, int64_t v);
void ls_jw_bool(struct ls_jw *w, bool v);
void ls_jw_null(struct ls_jw *w);

#endif
