/* Prometheus text exposition (format 0.0.4) written into an ls_buf. */
#include "prom.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* Append s with backslash and newline escaped, and the double quote too when quote
 * is set (label values; HELP text leaves quotes alone per the format). */
static void append_escaped(struct ls_buf *b, const char *s, int quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		if (!esc)
			continue;
		ls_buf_append(b, run, (size_t)(s - run));
		ls_buf_append(b, esc, 2);
		run = s + 1;
	}
	ls_buf_append(b, run, (size_t)(s - run));
}

void ls_prom_header(struct ls_buf *b, const char *name, const char *type, const char *help)
{
	ls_buf_printf(b, "# HELP %s ", name);
	append_escaped(b, help ? help : "", 0);
	ls_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* "name[suffix][{labels}] " */
static void sample_name(struct ls_buf *b, const char *name, const char *suffix,
			const char *labels)
{
	if (labels && *labels)
		ls_buf_printf(b, "%s%s{%s} ", name, suffix, labels);
	else
		ls_buf_printf(b, "%s%s ", name, suffix);
}

static void put_f64(struct ls_buf *b, double v)
{
	/* The format spells the special values this way, not as C's "nan"/"inf";
	 * nine significant digits are plenty for a metric and stay readable. */
	if (isnan(v))
		ls_buf_append(b, "NaN\n", 4);
	else if (isinf(v))
		ls_buf_printf(b, "%sInf\n", v > 0 ? "+" : "-");
	else
		ls_buf_printf(b, "%.9g\n", v);
}

void ls_prom_u64(struct ls_buf *b, const char *name, const char *labels, uint64_t v)
{
	sample_name(b, name, "", labels);
	ls_buf_printf(b, "%" PRIu64 "\n", v);
}

void ls_prom_f64(struct ls_buf *b, const char *name, const char *labels, double v)
{
	sample_name(b, name, "", labels);
	put_f64(b, v);
}

void ls_prom_label(struct ls_buf *b, const char *key, const char *value)
{
	ls_buf_printf(b, "%s=\"", key);
	append_escaped(b, value ? value : "", 1);
	ls_buf_append(b, "\"", 1);
}

void ls_prom_hist(struct ls_buf *b, const char *name, const char *help, const struct ls_hist *h)
{
	static const struct {
		double q;
		const char *label;
	} qs[] = { { 0.5, "quantile=\"0.5\"" }, { 0.9, "quantile=\"0.9\"" },
		   { 0.99, "quantile=\"0.99\"" } };
	size_t i;

	ls_prom_header(b, name, "summary", help);
	for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		/* A summary without observations reports NaN quantiles, as client
		 * libraries do, rather than a latency of zero. */
		ls_prom_f64(b, name, qs[i].label,
			    h->count ? (double)ls_hist_quantile(h, qs[i].q) / 1e6 : NAN);
	sample_name(b, name, "_sum", NULL);
	put_f64(b, (double)h->sum / 1e6);
	sample_name(b, name, "_count", NULL);
	ls_buf_printf(b, "%" PRIu64 "\n", h->count);
}

void ls_prom_histogram(struct ls_buf *b, const char *name, const char *help, const char *labels,
		       const struct ls_hist *h, const uint64_t *bounds_us, size_t n)
{
	const char *sep = labels && *labels ? "," : "";

	if (!labels)
		labels = "";
	ls_prom_header(b, name, "histogram", help);
	for (size_t i = 0; i < n; i++) {
		ls_buf_printf(b, "%s_bucket{%s%sle=\"", name, labels, sep);
		ls_buf_printf(b, "%.9g\"} %" PRIu64 "\n", (double)bounds_us[i] / 1e6,
			      ls_hist_count_le(h, bounds_us[i]));
	}
	ls_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, h->count);
	sample_name(b, name, "_sum", labels);
	put_f64(b, (double)h->sum / 1e6);
	sample_name(b, name, "_count", labels);
	ls_buf_printf(b, "%" PRIu64 "\n", h->count);
}
