/* lightspeed-controller: the history of route switches (time, from, to, reason, the
 * gap the dataplane measured: last game packet delivered before the switch to the
 * first after), a bounded ring kept in memory for the API and saved in the state
 * directory so that a restarted controller still shows it. */
#ifndef LS_CTRL_HISTORY_H
#define LS_CTRL_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "failover.h"

#define HISTORY_MAX 256
#define HISTORY_NAME 32

struct switch_rec {
	uint64_t id;          /* 1, 2, ... in order (kept across restarts) */
	int64_t wall_ms;      /* Unix time */
	char from[HISTORY_NAME]; /* "" when there was no route */
	char to[HISTORY_NAME];
	enum switch_reason reason;
	int64_t gap_us;       /* -1 until measured (no game traffic: stays -1) */
};

struct history {
	struct switch_rec r[HISTORY_MAX];
	unsigned head, n;
	uint64_t next_id;
};

void history_init(struct history *h);
/* Record a switch; returns the record (its gap unknown yet). */
struct switch_rec *history_add(struct history *h, int64_t wall_ms, const char *from,
			       const char *to, enum switch_reason reason);
/* The dataplane measured the gap of the latest switch to `to`: fill it in. Returns
 * false when no such record waits for one (a first route, from none, never does). */
bool history_set_gap(struct history *h, const char *to, int64_t gap_us);
/* Record i, 0 the oldest; NULL past the end. */
const struct switch_rec *history_at(const struct history *h, unsigned i);
unsigned history_len(const struct history *h);

/* The file: one JSON object per line, oldest first. Saving writes a temporary file
 * and renames it (a crash leaves the old one). Loading skips lines it cannot read
 * and says how many in *skipped. Both return 0, or -1 with a message. */
int history_save(const struct history *h, const char *path, char *err, size_t errlen);
int history_load(struct history *h, const char *path, unsigned *skipped, char *err,
		 size_t errlen);
/* Reason by name (for loading); -1 when unknown. */
int failover_reason_parse(const char *s);

#endif
