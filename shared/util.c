/* Small helpers every program uses: clocks, strict number parsing, a growable buffer. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

uint64_t ls_now_us(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer on Linux; a zero clock would
	 * only make timers fire early, never crash. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int ls_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	const char *p = s;
	char *end;
	long long v;

	/* strtoll would skip leading space and accept '+'; configs and commands are
	 * clearer when only "-?[0-9]+" is a number. */
	if (!s) {
		errno = EINVAL;
		return -1;
	}
	if (*p == '-')
		p++;
	if (!is_digit(*p)) {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		errno = ERANGE;
		return -1;
	}
	*out = v;
	return 0;
}

int ls_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	/* strtoull accepts "-1" and wraps it; insisting on a digit first rules that out. */
	if (!s || !is_digit(*s)) {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (errno == ERANGE || v > max) {
		errno = ERANGE;
		return -1;
	}
	*out = v;
	return 0;
}

int ls_hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ls_hex_decode(const char *hex, uint8_t *out, size_t len)
{
	size_t i;

	if (!hex || strlen(hex) != 2 * len) {
		errno = EINVAL;
		return -1;
	}
	/* Validate everything first so a bad key never leaves a half-written output. */
	for (i = 0; i < 2 * len; i++) {
		if (ls_hex_nibble(hex[i]) < 0) {
			errno = EINVAL;
			return -1;
		}
	}
	for (i = 0; i < len; i++)
		out[i] = (uint8_t)(ls_hex_nibble(hex[2 * i]) << 4 | ls_hex_nibble(hex[2 * i + 1]));
	return 0;
}

void ls_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void ls_buf_init(struct ls_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = 0;
}

void ls_buf_free(struct ls_buf *b)
{
	free(b->data);
	ls_buf_init(b);
}

/* Make room for `need` more bytes plus the terminating NUL. Return 0, or -1 (and set
 * oom) when the size overflows or the allocation fails. */
static int buf_reserve(struct ls_buf *b, size_t need)
{
	size_t want, cap;
	char *p;

	if (need > SIZE_MAX - 1 - b->len) {
		b->oom = 1;
		return -1;
	}
	want = b->len + need + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Copy what still fits after a failed grow, so the content is a truncated prefix. */
static void buf_append_partial(struct ls_buf *b, const char *s, size_t n)
{
	size_t room;

	if (b->cap == 0)
		return;
	room = b->cap - 1 - b->len;
	if (n > room)
		n = room;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void ls_buf_append(struct ls_buf *b, const char *s, size_t n)
{
	/* After a failure the buffer stays as it is: appending later pieces would leave
	 * a hole in the middle of the text. */
	if (b->oom)
		return;
	if (buf_reserve(b, n) < 0) {
		buf_append_partial(b, s, n);
		return;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void ls_buf_vprintf(struct ls_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	size_t room;
	int n;

	if (b->oom)
		return;
	/* Try the room we have first; most appends fit and need one vsnprintf. */
	room = b->cap ? b->cap - b->len : 0;
	va_copy(ap2, ap);
	n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		/* Only an invalid format or a wide-character conversion fails here;
		 * undo any partial output rather than keep half a field. */
		if (room)
			b->data[b->len] = '\0';
		return;
	}
	if ((size_t)n < room) {
		b->len += (size_t)n;
		return;
	}
	if (buf_reserve(b, (size_t)n) < 0) {
		/* vsnprintf already wrote the prefix that fits; keep it. */
		if (room) {
			b->len = b->cap - 1;
			b->data[b->len] = '\0';
		}
		return;
	}
	va_copy(ap2, ap);
	vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	b->len += (size_t)n;
}

void ls_buf_printf(struct ls_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ls_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void ls_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return;
	/* An unlimited hard limit is refused above fs.nr_open; 2^20 is the kernel's
	 * default for that and still plenty of sessions. */
	if (rl.rlim_max == RLIM_INFINITY) {
		rl.rlim_cur = 1048576;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}
