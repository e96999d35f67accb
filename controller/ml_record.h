/* lightspeed-controller: the recorded probe history, the ML model's own data. Every
 * tick's records (ml_probe.c) are appended to ml-samples.csv in the state directory,
 * one line per node: wall-clock time, node, RTT (empty: lost), load, hops, AS-path
 * length, distance (empty: unknown). The file is bounded: past max_bytes it becomes
 * ml-samples.csv.1 (the previous .1 goes) and a new one begins. Writes are buffered and
 * flushed every second; a write that fails is reported once and recording stops,
 * never the controller. `GET /samples` (lsctl export) serves both files as one CSV,
 * and training reads them back into rows. */
#ifndef LS_CTRL_ML_RECORD_H
#define LS_CTRL_ML_RECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ml_data.h"

#define ML_RECORD_FILE "ml-samples.csv"
#define ML_RECORD_HEADER "time_ms,node,rtt_ms,load,hops,as_path_len,distance_km"

struct ml_record {
	FILE *f;
	char path[300], old[300];
	uint64_t max_bytes, bytes;
	uint64_t records;       /* written since start */
	uint64_t flushed_us;
	bool failed;
	char err[400];          /* why recording stopped */
};

/* Open (append to) dir/ML_RECORD_FILE. 0, or -1 with a message (r->failed then). */
int ml_record_open(struct ml_record *r, const char *dir, uint64_t max_bytes, char *err,
		   size_t errlen);
/* Values NAN when lost or unknown. */
void ml_record_add(struct ml_record *r, int64_t wall_ms, const char *node, double rtt_ms,
		   double load, double hops, double as_path_len, double distance_km);
/* Flush if a second has passed since the last flush (or always with force). */
void ml_record_flush(struct ml_record *r, uint64_t now_us, bool force);
void ml_record_close(struct ml_record *r);

/* The recorded files of dir read back, per node, in file order (the older file first).
 * Lines that do not parse are skipped and counted in *bad. */
struct ml_record_node {
	char name[32];
	size_t n, cap;
	int64_t *ms;          /* Unix milliseconds */
	float *rtt, *load;    /* NAN: lost, unknown */
	double hops, as, km;  /* the last record's (NAN: unknown) */
};
struct ml_record_set {
	struct ml_record_node *node;
	size_t n_nodes;
	size_t lines;
};
/* 0, or -1 with a message (out of memory, a file that cannot be read). */
int ml_record_load(const char *dir, struct ml_record_set *set, size_t *bad, char *err,
		   size_t errlen);
void ml_record_set_free(struct ml_record_set *set);

/* Training rows from the recorded files of dir (the older first): per node, every
 * stretch without a gap over 10 s is one history. Lines that do not parse are skipped
 * and counted in *bad. 0, or -1 with a message (no files, out of memory). */
int ml_record_rows(const char *dir, const struct ml_window *w, double every_s,
		   struct ml_data *out, size_t *bad, char *err, size_t errlen);
/* Both files as one CSV (the header once), malloc'ed. 0, or -1 with a message. */
int ml_record_export(const char *dir, char **text, size_t *len, char *err, size_t errlen);

#endif
