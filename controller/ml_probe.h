/* lightspeed-controller: the probe series the ML selector reads, one per node slot.
 * Every 250 ms (a standby route's probe interval, the cadence the model was trained
 * at) each node gets one record: the newest RTT its health took in since the last
 * tick, or a lost probe when the dataplane counted a miss and nothing was answered, or
 * nothing. The last 150 s stay in memory (the 120 s history window, the 10 s current
 * window, room to spare); the records of each tick are also handed out, for the
 * recorded history on disk (ml_record.c). No I/O, no allocation. */
#ifndef LS_CTRL_ML_PROBE_H
#define LS_CTRL_ML_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ml_features.h"
#include "select.h"

#define ML_PROBE_TICK_MS 250
#define ML_PROBE_KEEP 600 /* ticks: 150 s */

/* One node's series: a ring whose every record is written twice (at i and i + KEEP),
 * so the newest KEEP records are always one contiguous run for ml_features_at. */
struct ml_probe_node {
	char name[32];    /* "" : an empty slot */
	unsigned head, n; /* the run is [head, head + n) */
	double t[2 * ML_PROBE_KEEP];    /* seconds since the probe series began */
	float rtt[2 * ML_PROBE_KEEP];   /* ms; NAN: lost */
	float load[2 * ML_PROBE_KEEP];  /* NAN: not reported */
	uint64_t last_t_us;             /* the newest health sample already taken */
	uint64_t lost_total;            /* the health's count of lost probes at the last tick */
	double hops, as_path_len, distance_km; /* NAN: not configured */
};

/* A record of this tick, for the recorded history. */
struct ml_probe_rec {
	int slot;
	double rtt_ms;  /* NAN: lost */
	double load;    /* NAN: unknown */
};

struct ml_probe {
	struct ml_probe_node node[SELECT_MAX];
	uint64_t t0_us;      /* when the series began (monotonic) */
	uint64_t next_us;    /* the next tick */
};

void ml_probe_init(struct ml_probe *p, uint64_t now_us);
/* Take this round's candidates (the same slots as the selector's). At a tick, fill
 * recs (at most SELECT_MAX) and return how many; 0 between ticks. A slot whose name
 * changed starts a new series. */
unsigned ml_probe_round(struct ml_probe *p, const struct select_cand *c, size_t n,
			uint64_t now_us, struct ml_probe_rec *recs);
/* Slot i's series as of now_us (valid until the next ml_probe_round); false when it
 * holds no record. */
bool ml_probe_series(const struct ml_probe *p, int slot, uint64_t now_us, struct ml_series *s);

#endif
