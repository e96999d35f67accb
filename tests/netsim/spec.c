/* SPEC parsing and printing. The grammar is small on purpose: comma-separated
 * key=value items, value parts separated by ':', every number with its unit. */
#include "spec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARTS 4

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A non-negative decimal number followed by a unit: *unit points after the digits.
 * strtod alone would take "inf", "nan", hex and a sign; a game test SPEC needs none of
 * those, and refusing them keeps typos from becoming strange values. */
static int parse_number(const char *s, double *v, const char **unit)
{
	char *end;

	if (!((*s >= '0' && *s <= '9') || (*s == '.' && s[1] >= '0' && s[1] <= '9')))
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return -1;
	*v = strtod(s, &end);
	if (end == s || !isfinite(*v) || *v < 0)
		return -1;
	*unit = end;
	return 0;
}

/* "12.5%" (percent) or "0.125" (a fraction), within [0, 1]. */
static int parse_prob(const char *s, double *out, char *err, size_t errlen)
{
	const char *unit;
	double v;

	if (parse_number(s, &v, &unit) < 0) {
		set_err(err, errlen, "'%s' is not a probability (write 5%% or 0.05)", s);
		return -1;
	}
	if (strcmp(unit, "%") == 0) {
		v /= 100.0;
	} else if (*unit) {
		set_err(err, errlen, "'%s': a probability is N%% or a fraction", s);
		return -1;
	}
	if (v > 1.0) {
		set_err(err, errlen, "'%s' is above 100%%%s", s,
			*unit ? "" : " (a bare number is a fraction; write N% for percent)");
		return -1;
	}
	*out = v;
	return 0;
}

/* "250us", "20ms", "1.5s", "100ns": rounded to whole nanoseconds, at most an hour. */
static int parse_time(const char *s, uint64_t *out, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		double ns;
	} units[] = { { "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 } };
	const char *unit;
	double v;

	if (parse_number(s, &v, &unit) < 0) {
		set_err(err, errlen, "'%s' is not a time (write 250us, 20ms or 1s)", s);
		return -1;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].name) != 0)
			continue;
		v *= units[i].ns;
		if (v > 3600e9) {
			set_err(err, errlen, "'%s' is longer than an hour", s);
			return -1;
		}
		*out = (uint64_t)llround(v);
		return 0;
	}
	set_err(err, errlen, "'%s': a time needs a unit: ns, us, ms or s", s);
	return -1;
}

/* "800kbit", "2mbit", "1.5gbit", "64000bit" (bits per second). */
static int parse_rate(const char *s, uint64_t *out, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		double mul;
	} units[] = { { "bit", 1 }, { "kbit", 1e3 }, { "mbit", 1e6 }, { "gbit", 1e9 } };
	const char *unit;
	double v;

	if (parse_number(s, &v, &unit) < 0) {
		set_err(err, errlen, "'%s' is not a rate (write 800kbit or 2mbit)", s);
		return -1;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].name) != 0)
			continue;
		v *= units[i].mul;
		if (v < 1000 || v > 100e9) {
			set_err(err, errlen, "'%s' is outside 1kbit..100gbit", s);
			return -1;
		}
		*out = (uint64_t)llround(v);
		return 0;
	}
	set_err(err, errlen, "'%s': a rate needs a unit: bit, kbit, mbit or gbit", s);
	return -1;
}

/* "1500B", "64kB", "1MB" (k and M are 1000 and 1000000). */
static int parse_bytes(const char *s, uint64_t *out, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		double mul;
	} units[] = { { "B", 1 }, { "kB", 1e3 }, { "MB", 1e6 } };
	const char *unit;
	double v;

	if (parse_number(s, &v, &unit) < 0) {
		set_err(err, errlen, "'%s' is not a size (write 1500B or 64kB)", s);
		return -1;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].name) != 0)
			continue;
		v *= units[i].mul;
		if (v > 1e9) {
			set_err(err, errlen, "'%s' is larger than 1GB", s);
			return -1;
		}
		*out = (uint64_t)llround(v);
		return 0;
	}
	set_err(err, errlen, "'%s': a size needs a unit: B, kB or MB", s);
	return -1;
}

static int want_parts(const char *key, int n, int min, int max, char *err, size_t errlen)
{
	if (n >= min && n <= max)
		return 0;
	if (max == 0)
		set_err(err, errlen, "'%s' takes no value", key);
	else if (min == max)
		set_err(err, errlen, "'%s' takes %d value%s separated by ':'", key, min,
			min == 1 ? "" : "s");
	else
		set_err(err, errlen, "'%s' takes %d to %d values separated by ':'", key, min, max);
	return -1;
}

/* One item, already split into key and up to MAX_PARTS ':'-separated values. */
static int parse_item(struct ns_spec *s, const char *key, char **v, int n, char *err,
		      size_t errlen)
{
	if (strcmp(key, "loss") == 0) {
		return want_parts(key, n, 1, 1, err, errlen) ? -1
							       : parse_prob(v[0], &s->loss, err, errlen);
	}
	if (strcmp(key, "ge") == 0) {
		if (want_parts(key, n, 2, 3, err, errlen) || parse_prob(v[0], &s->ge_p, err, errlen) ||
		    parse_prob(v[1], &s->ge_r, err, errlen))
			return -1;
		s->ge_h = 1.0;
		if (n == 3 && parse_prob(v[2], &s->ge_h, err, errlen))
			return -1;
		if (s->ge_r <= 0) {
			set_err(err, errlen, "ge: a bad->good probability of 0 never ends a burst");
			return -1;
		}
		s->ge = true;
		return 0;
	}
	if (strcmp(key, "burst") == 0) {
		const char *unit;
		double avg, len;

		if (want_parts(key, n, 2, 2, err, errlen) || parse_prob(v[0], &avg, err, errlen))
			return -1;
		if (parse_number(v[1], &len, &unit) < 0 || *unit || len < 1 || len > 1e6) {
			set_err(err, errlen, "burst: mean burst length '%s' must be a number of "
				"packets, at least 1", v[1]);
			return -1;
		}
		if (avg >= 1.0) {
			set_err(err, errlen, "burst: average loss must be below 100%%");
			return -1;
		}
		/* With loss probability 1 in the bad state, a burst lasts 1/r packets on
		 * average and the stationary loss is p/(p+r); solve both for p and r. */
		s->ge_r = 1.0 / len;
		s->ge_p = s->ge_r * avg / (1.0 - avg);
		s->ge_h = 1.0;
		if (s->ge_p > 1.0) {
			set_err(err, errlen, "burst: %g%% average loss cannot come in bursts as short "
				"as %g packets", avg * 100, len);
			return -1;
		}
		s->ge = true;
		s->ge_burst_form = true;
		s->burst_avg = avg;
		s->burst_len = len;
		return 0;
	}
	if (strcmp(key, "delay") == 0) {
		return want_parts(key, n, 1, 1, err, errlen) ? -1
							       : parse_time(v[0], &s->delay_ns, err, errlen);
	}
	if (strcmp(key, "jitter") == 0) {
		if (want_parts(key, n, 1, 2, err, errlen) || parse_time(v[0], &s->jitter_ns, err, errlen))
			return -1;
		if (n == 2) {
			if (strcmp(v[1], "normal") == 0) {
				s->jitter_normal = true;
			} else if (strcmp(v[1], "uniform") != 0) {
				set_err(err, errlen, "jitter: distribution '%s' is neither uniform nor "
					"normal", v[1]);
				return -1;
			}
		}
		return 0;
	}
	if (strcmp(key, "order") == 0) {
		if (want_parts(key, n, 0, 0, err, errlen))
			return -1;
		s->order = true;
		return 0;
	}
	if (strcmp(key, "reorder") == 0) {
		if (want_parts(key, n, 1, 2, err, errlen) || parse_prob(v[0], &s->reorder, err, errlen))
			return -1;
		s->reorder_hold_ns = NS_REORDER_HOLD_DEFAULT_NS;
		if (n == 2 && parse_time(v[1], &s->reorder_hold_ns, err, errlen))
			return -1;
		return 0;
	}
	if (strcmp(key, "dup") == 0) {
		return want_parts(key, n, 1, 1, err, errlen) ? -1
							       : parse_prob(v[0], &s->dup, err, errlen);
	}
	if (strcmp(key, "rate") == 0) {
		if (want_parts(key, n, 1, 3, err, errlen) || parse_rate(v[0], &s->rate_bps, err, errlen))
			return -1;
		if (n >= 2) {
			/* The queue limit is a time ("20ms" of traffic at the rate) or a size. */
			char *last = v[1] + strlen(v[1]);
			bool is_time = last > v[1] && last[-1] == 's';
			if (is_time ? parse_time(v[1], &s->queue_ns, err, errlen)
				    : parse_bytes(v[1], &s->queue_bytes, err, errlen))
				return -1;
			if (is_time && s->queue_ns == 0) {
				set_err(err, errlen, "rate: a queue of 0s holds nothing");
				return -1;
			}
		}
		if (n == 3 && parse_bytes(v[2], &s->bucket_bytes, err, errlen))
			return -1;
		return 0;
	}
	set_err(err, errlen, "unknown key '%s' (known: loss, ge, burst, delay, jitter, order, "
		"reorder, dup, rate)", key);
	return -1;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

int ns_spec_parse(const char *text, struct ns_spec *out, char *err, size_t errlen)
{
	char buf[NS_SPEC_MAX + 1], itemerr[256];
	char seen[16][16];
	int nseen = 0;
	struct ns_spec s;
	char *save = NULL, *item;

	memset(&s, 0, sizeof(s));
	if (!text)
		text = "";
	if (strlen(text) > NS_SPEC_MAX) {
		set_err(err, errlen, "SPEC longer than %d characters", NS_SPEC_MAX);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", text);
	if (strcmp(trim(buf), "none") == 0 || *trim(buf) == '\0') {
		*out = s;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", text);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *parts[MAX_PARTS], *key, *val, *psave = NULL;
		int n = 0;

		key = trim(item);
		if (*key == '\0') {
			set_err(err, errlen, "empty item in SPEC '%s'", text);
			return -1;
		}
		val = strchr(key, '=');
		if (val) {
			*val++ = '\0';
			key = trim(key);
			for (char *p = strtok_r(val, ":", &psave); p; p = strtok_r(NULL, ":", &psave)) {
				if (n == MAX_PARTS) {
					set_err(err, errlen, "'%s': too many ':' parts", key);
					return -1;
				}
				parts[n++] = trim(p);
			}
			if (n == 0) {
				set_err(err, errlen, "'%s=' has no value", key);
				return -1;
			}
		}
		for (int i = 0; i < nseen; i++) {
			if (strcmp(seen[i], key) == 0) {
				set_err(err, errlen, "'%s' given twice", key);
				return -1;
			}
		}
		if (strcmp(key, "ge") == 0 || strcmp(key, "burst") == 0) {
			if (s.ge) {
				set_err(err, errlen, "ge and burst both set the burst-loss model; "
					"give one");
				return -1;
			}
		}
		if (nseen < 16)
			snprintf(seen[nseen++], sizeof(seen[0]), "%.15s", key);
		if (parse_item(&s, key, parts, n, itemerr, sizeof(itemerr)) < 0) {
			set_err(err, errlen, "%s", itemerr);
			return -1;
		}
	}
	if (s.bucket_bytes && !s.rate_bps) {
		set_err(err, errlen, "a bucket needs a rate");
		return -1;
	}
	*out = s;
	return 0;
}

uint64_t ns_spec_queue_limit(const struct ns_spec *s)
{
	uint64_t q;

	if (!s->rate_bps)
		return 0;
	if (s->queue_bytes)
		return s->queue_bytes;
	if (s->queue_ns) /* explicit time: exactly that much traffic at the rate */
		return (uint64_t)((double)s->queue_ns * (double)s->rate_bps / 8e9);
	q = (uint64_t)((double)NS_QUEUE_DEFAULT_NS * (double)s->rate_bps / 8e9);
	return q < NS_QUEUE_MIN_BYTES ? NS_QUEUE_MIN_BYTES : q;
}

static void fmt_time(char *b, size_t n, uint64_t ns)
{
	if (ns % 1000000000u == 0 && ns)
		snprintf(b, n, "%llus", (unsigned long long)(ns / 1000000000u));
	else if (ns % 1000000u == 0)
		snprintf(b, n, "%llums", (unsigned long long)(ns / 1000000u));
	else if (ns % 1000u == 0)
		snprintf(b, n, "%lluus", (unsigned long long)(ns / 1000u));
	else
		snprintf(b, n, "%lluns", (unsigned long long)ns);
}

static void fmt_rate(char *b, size_t n, uint64_t bps)
{
	if (bps % 1000000000u == 0)
		snprintf(b, n, "%llugbit", (unsigned long long)(bps / 1000000000u));
	else if (bps % 1000000u == 0)
		snprintf(b, n, "%llumbit", (unsigned long long)(bps / 1000000u));
	else if (bps % 1000u == 0)
		snprintf(b, n, "%llukbit", (unsigned long long)(bps / 1000u));
	else
		snprintf(b, n, "%llubit", (unsigned long long)bps);
}

/* Appends to a fixed buffer, separating items with commas; silently truncates. */
struct out {
	char *buf;
	size_t len, used;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->used >= o->len)
		return;
	if (o->used && o->used + 1 < o->len)
		o->buf[o->used++] = ',';
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
	if (o->used >= o->len)
		o->used = o->len - 1;
	o->buf[o->used] = '\0';
}

char *ns_spec_format(const struct ns_spec *s, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	char t1[32], t2[32];

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (s->loss > 0)
		emit(&o, "loss=%.6g%%", s->loss * 100);
	if (s->ge && s->ge_burst_form)
		emit(&o, "burst=%.6g%%:%.6g", s->burst_avg * 100, s->burst_len);
	else if (s->ge)
		emit(&o, "ge=%.6g%%:%.6g%%:%.6g%%", s->ge_p * 100, s->ge_r * 100, s->ge_h * 100);
	if (s->delay_ns) {
		fmt_time(t1, sizeof(t1), s->delay_ns);
		emit(&o, "delay=%s", t1);
	}
	if (s->jitter_ns) {
		fmt_time(t1, sizeof(t1), s->jitter_ns);
		emit(&o, "jitter=%s:%s", t1, s->jitter_normal ? "normal" : "uniform");
	}
	if (s->order)
		emit(&o, "order");
	if (s->reorder > 0) {
		fmt_time(t1, sizeof(t1), s->reorder_hold_ns);
		emit(&o, "reorder=%.6g%%:%s", s->reorder * 100, t1);
	}
	if (s->dup > 0)
		emit(&o, "dup=%.6g%%", s->dup * 100);
	if (s->rate_bps) {
		fmt_rate(t1, sizeof(t1), s->rate_bps);
		snprintf(t2, sizeof(t2), "%lluB", (unsigned long long)ns_spec_queue_limit(s));
		emit(&o, "rate=%s:%s:%lluB", t1, t2, (unsigned long long)s->bucket_bytes);
	}
	if (!o.used)
		snprintf(buf, len, "none");
	return buf;
}
