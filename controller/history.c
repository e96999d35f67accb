/* lightspeed-controller: the switch history, in memory and in the state directory. */
#include "history.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void history_init(struct history *h)
{
	memset(h, 0, sizeof(*h));
	h->next_id = 1;
}

static void copy_name(char *dst, const char *src)
{
	snprintf(dst, HISTORY_NAME, "%s", src ? src : "");
}

struct switch_rec *history_add(struct history *h, int64_t wall_ms, const char *from,
			       const char *to, enum switch_reason reason)
{
	struct switch_rec *r;

	if (h->n == HISTORY_MAX) {
		h->head = (h->head + 1) % HISTORY_MAX;
		h->n--;
	}
	r = &h->r[(h->head + h->n) % HISTORY_MAX];
	h->n++;
	memset(r, 0, sizeof(*r));
	r->id = h->next_id++;
	r->wall_ms = wall_ms;
	copy_name(r->from, from);
	copy_name(r->to, to);
	r->reason = reason;
	r->gap_us = -1;
	return r;
}

bool history_set_gap(struct history *h, const char *to, int64_t gap_us)
{
	/* Only the newest record can be waiting: a later switch makes an older gap moot. */
	if (!h->n)
		return false;
	struct switch_rec *r = &h->r[(h->head + h->n - 1) % HISTORY_MAX];
	/* The first route has no gap: there was no game packet before it. */
	if (r->gap_us >= 0 || !r->from[0] || strcmp(r->to, to) != 0)
		return false;
	r->gap_us = gap_us;
	return true;
}

const struct switch_rec *history_at(const struct history *h, unsigned i)
{
	return i < h->n ? &h->r[(h->head + i) % HISTORY_MAX] : NULL;
}

unsigned history_len(const struct history *h)
{
	return h->n;
}

int failover_reason_parse(const char *s)
{
	for (int r = 0; r < SW__COUNT; r++)
		if (strcmp(failover_reason_name((enum switch_reason)r), s) == 0)
			return r;
	return -1;
}

int history_save(const struct history *h, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	FILE *f;
	int bad = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	f = fopen(tmp, "w");
	if (!f) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < h->n; i++) {
		const struct switch_rec *r = history_at(h, i);
		json_t *o = json_pack("{s:I,s:I,s:s,s:s,s:s,s:I}", "id", (json_int_t)r->id,
				      "wall_ms", (json_int_t)r->wall_ms, "from", r->from, "to", r->to,
				      "reason", failover_reason_name(r->reason), "gap_us",
				      (json_int_t)r->gap_us);
		char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (!line || fprintf(f, "%s\n", line) < 0)
			bad = 1;
		free(line);
		json_decref(o);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		bad = 1;
	if (fclose(f) != 0)
		bad = 1;
	if (bad || rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, bad ? "write failed" : strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* A name as the node table allows it (the file may have been edited by hand). */
static bool name_ok(const char *s, bool empty_ok)
{
	size_t n = strlen(s);

	if (n == 0)
		return empty_ok;
	return n < HISTORY_NAME;
}

int history_load(struct history *h, const char *path, unsigned *skipped, char *err,
		 size_t errlen)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	*skipped = 0;
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		const char *from = NULL, *to = NULL, *reason = NULL;
		json_int_t id = 0, wall = 0, gap = -1;
		int rs;

		if (!o || json_unpack(o, "{s:I,s:I,s:s,s:s,s:s,s:I}", "id", &id, "wall_ms", &wall,
				      "from", &from, "to", &to, "reason", &reason, "gap_us", &gap) != 0 ||
		    id < 1 || !name_ok(from, true) || !name_ok(to, false) ||
		    (rs = failover_reason_parse(reason)) < 0) {
			(*skipped)++;
			json_decref(o);
			continue;
		}
		struct switch_rec *r = history_add(h, wall, from, to, (enum switch_reason)rs);
		r->id = (uint64_t)id;
		r->gap_us = gap < 0 ? -1 : gap;
		if ((uint64_t)id >= h->next_id)
			h->next_id = (uint64_t)id + 1;
		json_decref(o);
	}
	fclose(f);
	return 0;
}
