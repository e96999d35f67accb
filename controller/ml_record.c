/* lightspeed-controller: the recorded probe history (see ml_record.h). */
#include "ml_record.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#define RECORD_FLUSH_US 1000000
#define RECORD_GAP_MS 10000 /* a longer silence ends a history */
#define RECORD_MAX_NODES 256

static void record_fail(struct ml_record *r, const char *what)
{
	if (!r->failed)
		snprintf(r->err, sizeof(r->err), "%s: %s: %s", r->path, what, strerror(errno));
	r->failed = true;
	if (r->f)
		fclose(r->f);
	r->f = NULL;
}

static int record_start(struct ml_record *r)
{
	struct stat st;

	r->f = fopen(r->path, "a");
	if (!r->f) {
		record_fail(r, "cannot open");
		return -1;
	}
	r->bytes = fstat(fileno(r->f), &st) == 0 ? (uint64_t)st.st_size : 0;
	if (r->bytes == 0 && fprintf(r->f, "%s\n", ML_RECORD_HEADER) < 0) {
		record_fail(r, "cannot write");
		return -1;
	}
	if (r->bytes == 0)
		r->bytes = strlen(ML_RECORD_HEADER) + 1;
	return 0;
}

int ml_record_open(struct ml_record *r, const char *dir, uint64_t max_bytes, char *err,
		   size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->max_bytes = max_bytes;
	if (snprintf(r->path, sizeof(r->path), "%s/%s", dir, ML_RECORD_FILE) >= (int)sizeof(r->path) ||
	    snprintf(r->old, sizeof(r->old), "%s.1", r->path) >= (int)sizeof(r->old)) {
		snprintf(r->err, sizeof(r->err), "%s: path too long", dir);
		r->failed = true;
	} else if (record_start(r) == 0) {
		return 0;
	}
	snprintf(err, errlen, "%s", r->err);
	return -1;
}

static void record_num(char *buf, size_t len, double v, const char *fmt)
{
	if (isfinite(v))
		snprintf(buf, len, fmt, v);
	else
		buf[0] = '\0';
}

void ml_record_add(struct ml_record *r, int64_t wall_ms, const char *node, double rtt_ms,
		   double load, double hops, double as_path_len, double distance_km)
{
	char rtt[32], ld[32], h[32], as[32], km[32];

	if (!r->f)
		return;
	if (r->bytes >= r->max_bytes) {
		/* Rotate: the current file becomes the old one. */
		fclose(r->f);
		r->f = NULL;
		if (rename(r->path, r->old) < 0) {
			record_fail(r, "cannot rotate");
			return;
		}
		if (record_start(r) < 0)
			return;
	}
	record_num(rtt, sizeof(rtt), rtt_ms, "%.3f");
	record_num(ld, sizeof(ld), load, "%.3f");
	record_num(h, sizeof(h), hops, "%.0f");
	record_num(as, sizeof(as), as_path_len, "%.0f");
	record_num(km, sizeof(km), distance_km, "%.0f");
	int n = fprintf(r->f, "%lld,%s,%s,%s,%s,%s,%s\n", (long long)wall_ms, node, rtt, ld, h, as, km);
	if (n < 0) {
		record_fail(r, "cannot write");
		return;
	}
	r->bytes += (uint64_t)n;
	r->records++;
}

void ml_record_flush(struct ml_record *r, uint64_t now_us, bool force)
{
	if (!r->f || (!force && now_us - r->flushed_us < RECORD_FLUSH_US))
		return;
	r->flushed_us = now_us;
	if (fflush(r->f) != 0)
		record_fail(r, "cannot write");
}

void ml_record_close(struct ml_record *r)
{
	if (r->f) {
		fflush(r->f);
		fclose(r->f);
	}
	r->f = NULL;
}

/* ------------------------------------------------------------- reading back */


static int record_field(char **p, double *v)
{
	char *end, *s = *p;

	if (*s == ',' || *s == '\n' || *s == '\0') {
		*v = NAN;
	} else {
		errno = 0;
		*v = strtod(s, &end);
		if (end == s || errno || !isfinite(*v))
			return -1;
		s = end;
	}
	if (*s == ',')
		s++;
	else if (*s != '\n' && *s != '\0')
		return -1;
	*p = s;
	return 0;
}

/* One line into its fields; -1 when it is not a record. */
static int record_parse(char *line, int64_t *ms, char name[32], double v[5])
{
	char *p = line, *comma, *end;

	errno = 0;
	long long t = strtoll(p, &end, 10);
	if (end == p || *end != ',' || errno || t < 0)
		return -1;
	*ms = t;
	p = end + 1;
	comma = strchr(p, ',');
	if (!comma || comma == p || comma - p > 31)
		return -1;
	for (char *q = p; q < comma; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
		      *q == '.' || *q == '_' || *q == '-'))
			return -1;
	memcpy(name, p, (size_t)(comma - p));
	name[comma - p] = '\0';
	p = comma + 1;
	for (int i = 0; i < 5; i++)
		if (record_field(&p, &v[i]) < 0)
			return -1;
	return *p == '\0' || *p == '\n' ? 0 : -1;
}

static struct ml_record_node *record_node_of(struct ml_record_node *nodes, size_t *nn, const char *name)
{
	for (size_t i = 0; i < *nn; i++)
		if (strcmp(nodes[i].name, name) == 0)
			return &nodes[i];
	if (*nn == RECORD_MAX_NODES)
		return NULL;
	struct ml_record_node *rn = &nodes[(*nn)++];
	memset(rn, 0, sizeof(*rn));
	snprintf(rn->name, sizeof(rn->name), "%s", name);
	return rn;
}

static int record_append(struct ml_record_node *rn, int64_t ms, const double v[5])
{
	if (rn->n == rn->cap) {
		size_t cap = rn->cap ? rn->cap * 2 : 4096;
		int64_t *a = realloc(rn->ms, cap * sizeof(*a));
		if (!a)
			return -1;
		rn->ms = a;
		float *b = realloc(rn->rtt, cap * sizeof(*b));
		if (!b)
			return -1;
		rn->rtt = b;
		float *c = realloc(rn->load, cap * sizeof(*c));
		if (!c)
			return -1;
		rn->load = c;
		rn->cap = cap;
	}
	rn->ms[rn->n] = ms;
	rn->rtt[rn->n] = (float)v[0];
	rn->load[rn->n] = (float)v[1];
	rn->hops = v[2];
	rn->as = v[3];
	rn->km = v[4];
	rn->n++;
	return 0;
}

static int record_read(const char *path, struct ml_record_node *nodes, size_t *nn, size_t *bad,
		       size_t *lines)
{
	FILE *f = fopen(path, "r");
	char line[256];

	if (!f)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), f)) {
		int64_t ms;
		char name[32];
		double v[5];
		struct ml_record_node *rn;

		if (strncmp(line, "time_ms,", 8) == 0)
			continue;
		if (record_parse(line, &ms, name, v) < 0 || !(rn = record_node_of(nodes, nn, name))) {
			(*bad)++;
			continue;
		}
		if (record_append(rn, ms, v) < 0) {
			fclose(f);
			errno = ENOMEM;
			return -1;
		}
		(*lines)++;
	}
	fclose(f);
	return 0;
}

int ml_record_load(const char *dir, struct ml_record_set *set, size_t *bad, char *err,
		   size_t errlen)
{
	char path[300], old[330];

	memset(set, 0, sizeof(*set));
	*bad = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, ML_RECORD_FILE);
	snprintf(old, sizeof(old), "%s.1", path);
	set->node = calloc(RECORD_MAX_NODES, sizeof(*set->node));
	if (!set->node) {
		snprintf(err, errlen, "recorded samples: out of memory");
		return -1;
	}
	if (record_read(old, set->node, &set->n_nodes, bad, &set->lines) < 0 ||
	    record_read(path, set->node, &set->n_nodes, bad, &set->lines) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		ml_record_set_free(set);
		return -1;
	}
	return 0;
}

void ml_record_set_free(struct ml_record_set *set)
{
	for (size_t k = 0; set->node && k < set->n_nodes; k++) {
		free(set->node[k].ms);
		free(set->node[k].rtt);
		free(set->node[k].load);
	}
	free(set->node);
	memset(set, 0, sizeof(*set));
}

int ml_record_rows(const char *dir, const struct ml_window *w, double every_s,
		   struct ml_data *out, size_t *bad, char *err, size_t errlen)
{
	struct ml_record_set set;
	uint32_t group = 0;
	int rc = -1;

	if (ml_record_load(dir, &set, bad, err, errlen) < 0)
		return -1;
	if (set.lines == 0) {
		snprintf(err, errlen, "%s/%s: no recorded samples yet (the controller records its "
			 "nodes' probes as it runs)", dir, ML_RECORD_FILE);
		goto out;
	}
	for (size_t k = 0; k < set.n_nodes; k++) {
		struct ml_record_node *rn = &set.node[k];
		size_t s = 0;

		for (size_t i = 1; i <= rn->n; i++) {
			if (i < rn->n && rn->ms[i] >= rn->ms[i - 1] &&
			    rn->ms[i] - rn->ms[i - 1] <= RECORD_GAP_MS)
				continue;
			/* [s, i) is one history. */
			size_t m = i - s;
			double *t = malloc(m * sizeof(*t));
			if (!t) {
				snprintf(err, errlen, "recorded samples: out of memory");
				goto out;
			}
			for (size_t j = 0; j < m; j++)
				t[j] = (double)(rn->ms[s + j] - rn->ms[s]) / 1000.0;
			struct ml_series sr = {
				.n = m, .t = t, .rtt_ms = rn->rtt + s, .load = rn->load + s,
				.week_s0 = ml_features_week_s((time_t)(rn->ms[s] / 1000)) +
					   (double)(rn->ms[s] % 1000) / 1000.0,
				.hops = rn->hops, .as_path_len = rn->as, .distance_km = rn->km,
			};
			int r = ml_data_add_series(out, &sr, w, every_s, group++);
			free(t);
			if (r < 0) {
				snprintf(err, errlen, "recorded samples: out of memory");
				goto out;
			}
			s = i;
		}
	}
	rc = 0;
out:
	ml_record_set_free(&set);
	return rc;
}

/* Append the lines of one file but its header to b. */
static int record_cat(struct ls_buf *b, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256];

	if (!f)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "time_ms,", 8) != 0)
			ls_buf_append(b, line, strlen(line));
	fclose(f);
	return 0;
}

int ml_record_export(const char *dir, char **text, size_t *len, char *err, size_t errlen)
{
	char path[300], old[330];
	struct ls_buf b;

	snprintf(path, sizeof(path), "%s/%s", dir, ML_RECORD_FILE);
	snprintf(old, sizeof(old), "%s.1", path);
	ls_buf_init(&b);
	ls_buf_printf(&b, "%s\n", ML_RECORD_HEADER);
	if (record_cat(&b, old) < 0 || record_cat(&b, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		ls_buf_free(&b);
		return -1;
	}
	if (b.oom) {
		snprintf(err, errlen, "recorded samples: out of memory");
		ls_buf_free(&b);
		return -1;
	}
	*text = b.data;
	*len = b.len;
	return 0;
}
