/* Small helpers every program uses: clocks, strict number parsing, a growable buffer. */
#ifndef LS_UTIL_H
#define LS_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define LS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock in microseconds (CLOCK_MONOTONIC). */
uint64_t ls_now_us(void);

/* Strict parsing: the whole string must be the number, within [min, max].
 * Return 0, or -1 (errno EINVAL or ERANGE). */
int ls_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
int ls_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Hex: exactly 2*len hex digits into len bytes. Return 0 or -1. */
int ls_hex_decode(const char *hex, uint8_t *out, size_t len);
/* One hex digit's value (either case), or -1. */
int ls_hex_nibble(char c);
void ls_hex_encode(const uint8_t *in, size_t len, char *out /* 2*len+1 */);

/* A growable text buffer (control paths only, never per packet). */
struct ls_buf {
	char *data;
	size_t len, cap;
	int oom; /* set when an append failed; the content is then truncated */
};
void ls_buf_init(struct ls_buf *b);
void ls_buf_free(struct ls_buf *b);
void ls_buf_append(struct ls_buf *b, const char *s, size_t n);
void ls_buf_printf(struct ls_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ls_buf_vprintf(struct ls_buf *b, const char *fmt, va_list ap);

/* Raise RLIMIT_NOFILE's soft limit to the hard limit (one socket per session). */
void ls_raise_nofile(void);

#endif
