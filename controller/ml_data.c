/* Training sets: rows, the split by history, CSV. See ml_data.h. */
#include "ml_data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml_rng.h"

#define DATA_TARGET_NAME "p95_next_30s_ms"

void ml_data_init(struct ml_data *d)
{
	memset(d, 0, sizeof(*d));
}

void ml_data_free(struct ml_data *d)
{
	free(d->x);
	free(d->y);
	free(d->group);
	ml_data_init(d);
}

static int data_reserve(struct ml_data *d, size_t want)
{
	if (want <= d->cap)
		return 0;
	size_t cap = d->cap ? d->cap : 1024;
	while (cap < want)
		cap *= 2;
	double *x = realloc(d->x, cap * ML_NFEAT * sizeof(*x));
	if (!x)
		return -1;
	d->x = x;
	double *y = realloc(d->y, cap * sizeof(*y));
	if (!y)
		return -1;
	d->y = y;
	uint32_t *g = realloc(d->group, cap * sizeof(*g));
	if (!g)
		return -1;
	d->group = g;
	d->cap = cap;
	return 0;
}

int ml_data_add(struct ml_data *d, const double x[ML_NFEAT], double y, uint32_t group)
{
	if (data_reserve(d, d->n + 1) < 0)
		return -1;
	memcpy(d->x + d->n * ML_NFEAT, x, ML_NFEAT * sizeof(*x));
	d->y[d->n] = y;
	d->group[d->n] = group;
	d->n++;
	return 0;
}

int ml_data_append(struct ml_data *d, const struct ml_data *src)
{
	if (data_reserve(d, d->n + src->n) < 0)
		return -1;
	memcpy(d->x + d->n * ML_NFEAT, src->x, src->n * ML_NFEAT * sizeof(*d->x));
	memcpy(d->y + d->n, src->y, src->n * sizeof(*d->y));
	memcpy(d->group + d->n, src->group, src->n * sizeof(*d->group));
	d->n += src->n;
	return 0;
}

int ml_data_add_series(struct ml_data *d, const struct ml_series *s, const struct ml_window *w,
		       double every_s, uint32_t group)
{
	/* Scratch for the longer of the two windows at the densest probing (20 ms). */
	size_t cap = (size_t)((w->history_s > w->horizon_s ? w->history_s : w->horizon_s) * 50) + 16;
	double *scratch, next;
	int rc = 0;

	if (s->n == 0)
		return 0;
	scratch = malloc(cap * sizeof(*scratch));
	if (!scratch)
		return -1;
	next = s->t[0] + w->history_s;
	for (size_t i = 0; i < s->n; i++) {
		double x[ML_NFEAT], y;

		if (s->t[i] < next)
			continue;
		next = s->t[i] + every_s;
		if (ml_features_at(s, i, w, x, scratch, cap) < 0 ||
		    ml_features_target(s, i, w, &y, scratch, cap) < 0)
			continue;
		if (ml_data_add(d, x, y, group) < 0) {
			rc = -1;
			break;
		}
	}
	free(scratch);
	return rc;
}

int ml_data_split(const struct ml_data *d, double frac, uint64_t seed, struct ml_data *train,
		  struct ml_data *held)
{
	ml_data_init(train);
	ml_data_init(held);
	for (size_t i = 0; i < d->n; i++) {
		/* The side of a history is a function of its id and the seed alone, so rows
		 * need not be grouped in order. */
		struct ml_rng r;

		/* Mixed first (SplitMix64's finaliser): neighbouring ids seeded the generator
		 * with neighbouring states, whose first draws were alike. */
		uint64_t z = (uint64_t)d->group[i] * 0x9e3779b97f4a7c15u + seed;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
		ml_rng_seed(&r, z ^ (z >> 31));
		struct ml_data *to = ml_rng_unit(&r) < frac ? held : train;
		if (ml_data_add(to, d->x + i * ML_NFEAT, d->y[i], d->group[i]) < 0) {
			ml_data_free(train);
			ml_data_free(held);
			return -1;
		}
	}
	return 0;
}

int ml_data_write_csv(const struct ml_data *d, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (unsigned j = 0; j < ML_NFEAT; j++)
		fprintf(f, "%s,", ml_features_name(j));
	fprintf(f, "%s,group\n", DATA_TARGET_NAME);
	for (size_t i = 0; i < d->n; i++) {
		for (unsigned j = 0; j < ML_NFEAT; j++)
			fprintf(f, "%.17g,", d->x[i * ML_NFEAT + j]);
		fprintf(f, "%.17g,%u\n", d->y[i], d->group[i]);
	}
	if (ferror(f) | (fclose(f) != 0)) {
		snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* One strict number: the whole field, finite. */
static int data_field(const char **p, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(*p, &end);
	if (end == *p || errno || !isfinite(*out))
		return -1;
	*p = end;
	return 0;
}

int ml_data_read_csv(struct ml_data *d, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	size_t lineno = 0;
	int rc = -1;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		double x[ML_NFEAT], y, g;
		const char *p = line;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%zu: line too long", path, lineno);
			goto out;
		}
		if (lineno == 1) {
			if (strncmp(line, ml_features_name(0), strlen(ml_features_name(0))) != 0) {
				snprintf(err, errlen, "%s:1: not a training set (the header names "
					 "the 11 features, then " DATA_TARGET_NAME ",group)", path);
				goto out;
			}
			continue;
		}
		for (unsigned j = 0; j < ML_NFEAT + 2; j++) {
			double *v = j < ML_NFEAT ? &x[j] : j == ML_NFEAT ? &y : &g;

			int last = j + 1 == ML_NFEAT + 2;

			int ok = data_field(&p, v) == 0;

			if (ok && !last && (*p == '\n' || *p == '\r' || !*p)) {
				snprintf(err, errlen, "%s:%zu: %u fields, want %d", path, lineno, j + 1,
					 ML_NFEAT + 2);
				goto out;
			}
			if (!ok || (!last && *p != ',')) {
				snprintf(err, errlen, "%s:%zu: field %u is not a number", path, lineno,
					 j + 1);
				goto out;
			}
			p += !last;
		}
		if (*p != '\n' && *p != '\0' && *p != '\r') {
			snprintf(err, errlen, "%s:%zu: more than %d fields", path, lineno, ML_NFEAT + 2);
			goto out;
		}
		if (g < 0 || g > UINT32_MAX || g != floor(g)) {
			snprintf(err, errlen, "%s:%zu: group is not a whole number", path, lineno);
			goto out;
		}
		if (ml_data_add(d, x, y, (uint32_t)g) < 0) {
			snprintf(err, errlen, "%s: out of memory at line %zu", path, lineno);
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read failed: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}
