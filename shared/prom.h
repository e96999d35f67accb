/* Prometheus text exposition (format 0.0.4) written into an ls_buf. */
#ifndef LS_PROM_H
#define LS_PROM_H

#include <stdint.h>
#include "util.h"
#include "hist.h"

/* "# HELP name help\n# TYPE name type\n"; type is "counter", "gauge" or "summary". */
void ls_prom_header(struct ls_buf *b, const char *name, const char *type, const char *help);
/* name{labels} value; labels is NULL or a string like `reason="bad_tag"` already escaped
 * with ls_prom_label. */
void ls_prom_u64(struct ls_buf *b, const char *name, const char *labels, uint64_t v);
void ls_prom_f64(struct ls_buf *b, const char *name, const char *labels, double v);
/* key="value" with \\, \" and \n escaped, appended to b (no separators). */
void ls_prom_label(struct ls_buf *b, const char *key, const char *value);
/* A summary from a histogram in microseconds, exposed in seconds: quantiles 0.5, 0.9,
 * 0.99, _sum and _count. */
void ls_prom_hist(struct ls_buf *b, const char *name, const char *help, const struct ls_hist *h);

/* A histogram (cumulative _bucket{le=...}, _sum, _count) from a histogram in
 * microseconds, exposed in seconds, with the given upper bounds (us, increasing;
 * +Inf is added). labels as for ls_prom_u64 (NULL: none). */
void ls_prom_histogram(struct ls_buf *b, const char *name, const char *help, const char *labels,
		       const struct ls_hist *h, const uint64_t *bounds_us, size_t n);

#endif
