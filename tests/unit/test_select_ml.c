/* Unit tests for controller/ml_probe.c, select_ml.c and ml_record.c: the probe series
 * taken from real health objects at 250 ms, the ml selector's scores (the model's p95
 * plus nearest's loss penalty and server leg), its fallbacks to nearest's scores, and
 * the recorded history: rotation, rows read back, bad lines counted, export. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "../../controller/health.h"
#include "../../controller/ml_probe.h"
#include "../../controller/ml_record.h"
#include "../../controller/ml_synth.h"
#include "../../controller/ml_train.h"
#include "../../controller/select_ml.h"

#include "unit.h"

static struct ml_model trained;

/* A small model of synthetic data, once. */
static struct ml_model *model_copy(void)
{
	static int done;
	uint8_t *b;
	size_t len;
	char err[256];
	struct ml_model *m = calloc(1, sizeof(*m));

	if (!done) {
		struct ml_synth_conf c;
		struct ml_data d;
		struct ml_forest_params p;
		struct ml_train_report rep;

		ml_synth_conf_default(&c);
		CU_ASSERT_FATAL(ml_synth_dataset(&c, 20000, NULL, &d, err, sizeof(err)) == 0);
		ml_forest_params_default(&p);
		CU_ASSERT_FATAL(ml_train_run(&d, &p, 0.2, NULL, &trained, &rep, err, sizeof(err)) == 0);
		snprintf(trained.meta.source, sizeof(trained.meta.source), "synthetic");
		/* Its route-choice check (test_ml_eval.c runs the real one): better than
		 * nearest where a node degrades, as good when none does. */
		trained.meta.check[ML_CHECK_STEADY] = (struct ml_model_check){ 16000, 0.5, 0.5, 0.1 };
		trained.meta.check[ML_CHECK_SCENARIO] = (struct ml_model_check){ 16000, 1.1, 0.6, 0.1 };
		ml_data_free(&d);
		done = 1;
	}
	/* A copy through the file format: the selector takes its model. */
	CU_ASSERT_FATAL(ml_model_encode(&trained, &b, &len) == 0);
	CU_ASSERT_FATAL(ml_model_decode(b, len, NULL, m, err, sizeof(err)) == 0);
	free(b);
	return m;
}

struct rig {
	struct health h[2];
	struct health_conf hc;
	struct health_report rep[2];
	struct node_facts facts[2];
	struct select_cand cand[2];
	struct ml_probe probe;
	struct select_nearest_conf nc;
	struct select_ml sel;
	uint64_t now;
};

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	health_conf_defaults(&r->hc);
	select_nearest_defaults(&r->nc);
	r->now = 1000000;
	for (int i = 0; i < 2; i++) {
		health_init(&r->h[i], r->now);
		r->facts[i] = (struct node_facts){ "eu-west", 500, 12, 3 };
	}
	ml_probe_init(&r->probe, r->now);
	select_ml_init(&r->sel, &r->nc, &r->probe);
}

/* Run `secs` of 250 ms probes: node 0 answers rtt0, node 1 rtt1 (NAN: lost). */
static void rig_run(struct rig *r, double secs, double rtt0, double rtt1, double load1)
{
	static const char *names[2] = { "a", "b" };

	for (double t = 0; t < secs; t += 0.1) {
		r->now += 100000;
		if (((r->now / 100000) % 2) == 0) { /* a probe every 200 ms, from both */
			double v[2] = { rtt0, rtt1 };
			for (int i = 0; i < 2; i++) {
				if (isnan(v[i]))
					health_missed(&r->h[i], &r->hc, r->now, r->h[i].missed + 1);
				else
					health_sample(&r->h[i], &r->hc, r->now, (uint32_t)(v[i] * 1000), 200,
						      0, 0);
			}
		}
		for (int i = 0; i < 2; i++) {
			health_report(&r->h[i], &r->hc, r->now, &r->rep[i]);
			r->cand[i] = (struct select_cand){ names[i], &r->rep[i], &r->h[i], &r->facts[i],
							   -1, i ? load1 : 0.2, i == 0 };
		}
		struct ml_probe_rec recs[SELECT_MAX];
		ml_probe_round(&r->probe, r->cand, 2, r->now, recs);
	}
}

static void test_probe_series(void)
{
	struct rig r;
	struct ml_series s;

	rig_init(&r);
	CU_ASSERT(!ml_probe_series(&r.probe, 0, r.now, &s));
	rig_run(&r, 10, 30, NAN, 0.5);
	CU_ASSERT_FATAL(ml_probe_series(&r.probe, 0, r.now, &s));
	/* 10 s of 250 ms ticks: about 40 records, each 30 ms, 250 ms apart. */
	CU_ASSERT(s.n >= 38 && s.n <= 41);
	CU_ASSERT_DOUBLE_EQUAL(s.rtt_ms[s.n - 1], 30, 1e-3);
	CU_ASSERT(fabs(s.t[s.n - 1] - s.t[s.n - 2] - 0.25) < 0.11);
	CU_ASSERT_EQUAL(s.hops, 12);
	CU_ASSERT_DOUBLE_EQUAL(s.load[0], 0.2, 1e-6);
	/* Node b lost every probe: its series holds lost records only. */
	CU_ASSERT_FATAL(ml_probe_series(&r.probe, 1, r.now, &s));
	CU_ASSERT(s.n > 10);
	int answered = 0;
	for (size_t i = 0; i < s.n; i++)
		answered += !isnan(s.rtt_ms[i]);
	CU_ASSERT_EQUAL(answered, 0);
	/* The ring keeps the last 150 s, in order. */
	rig_run(&r, 200, 40, 50, 0.5);
	CU_ASSERT_FATAL(ml_probe_series(&r.probe, 0, r.now, &s));
	CU_ASSERT_EQUAL(s.n, ML_PROBE_KEEP);
	int ordered = 1;
	for (size_t i = 1; i < s.n; i++)
		ordered &= s.t[i] > s.t[i - 1];
	CU_ASSERT(ordered);
	CU_ASSERT(s.t[s.n - 1] - s.t[0] < 151 && s.t[s.n - 1] - s.t[0] > 145);
	/* A slot that changes node starts again. */
	r.cand[0].name = "c";
	struct ml_probe_rec recs[SELECT_MAX];
	r.now += 300000;
	ml_probe_round(&r.probe, r.cand, 2, r.now, recs);
	CU_ASSERT(r.probe.node[0].n <= 1);
	CU_ASSERT_STRING_EQUAL(r.probe.node[0].name, "c");
}

static void test_scores(void)
{
	struct rig r;
	struct select_score out[2];
	struct selector sel;

	rig_init(&r);
	rig_run(&r, 20, 30, 45, 0.3);
	sel = select_ml(&r.sel);
	CU_ASSERT_STRING_EQUAL(sel.name, "ml");
	/* No model: nearest's scores, and why. */
	sel.score(sel.self, r.cand, 2, r.now, out);
	CU_ASSERT(out[0].usable && out[1].usable);
	CU_ASSERT_DOUBLE_EQUAL(out[0].score_us, 30000, 1);
	CU_ASSERT(strncmp(out[0].why, "as nearest (no usable model)", 28) == 0);
	CU_ASSERT(!r.sel.pred[0].valid);

	/* A model: the predicted p95 (near the steady 30 and 45 ms), with its parts. */
	select_ml_set_model(&r.sel, model_copy(), NULL);
	if (!r.sel.usable)
		fprintf(stderr, "%s\n", r.sel.status);
	CU_ASSERT(r.sel.usable);
	sel.score(sel.self, r.cand, 2, r.now, out);
	CU_ASSERT_FATAL(r.sel.pred[0].valid && r.sel.pred[1].valid);
	CU_ASSERT(fabs(r.sel.pred[0].p95_ms - 30) < 6);
	CU_ASSERT(fabs(r.sel.pred[1].p95_ms - 45) < 8);
	CU_ASSERT(r.sel.pred[0].low_ms <= r.sel.pred[0].high_ms);
	CU_ASSERT(r.sel.pred[0].n_top >= 1 && r.sel.pred[0].n_top <= 3);
	CU_ASSERT_DOUBLE_EQUAL(out[0].score_us, r.sel.pred[0].p95_ms * 1000, 1);
	CU_ASSERT(strncmp(out[0].why, "p95 next 30 s", 13) == 0);
	CU_ASSERT(out[0].score_us < out[1].score_us);
	/* nearest's loss penalty and server leg come on top. */
	r.h[1].loss_up = 0.02;
	r.cand[1].server_leg_us = 4000;
	health_report(&r.h[1], &r.hc, r.now, &r.rep[1]);
	sel.score(sel.self, r.cand, 2, r.now, out);
	CU_ASSERT_DOUBLE_EQUAL(out[1].score_us,
			       r.sel.pred[1].p95_ms * 1000 + 2 * r.nc.loss_penalty_ms * 1000 + 4000, 5);
	CU_ASSERT(strstr(out[1].why, "+ leg 4.0") != NULL);

	/* A node whose probes stopped: down by health, unusable here too. */
	rig_run(&r, 3, 30, NAN, 0.3);
	sel.score(sel.self, r.cand, 2, r.now, out);
	CU_ASSERT(!out[1].usable);
	CU_ASSERT(!r.sel.pred[1].valid);

	/* A model that does not beat its baseline is kept but not used. */
	struct ml_model *bad = model_copy();
	bad->meta.mae_ms = bad->meta.base_mae_ms + 0.5;
	select_ml_set_model(&r.sel, bad, NULL);
	CU_ASSERT(r.sel.have_model && !r.sel.usable);
	CU_ASSERT(strstr(r.sel.status, "does not beat the no-model baseline") != NULL);
	sel.score(sel.self, r.cand, 2, r.now, out);
	CU_ASSERT(strncmp(out[0].why, "as nearest", 10) == 0);
	/* So is one that chose worse than nearest in its route-choice check. */
	free(bad);
	bad = model_copy();
	bad->meta.check[ML_CHECK_SCENARIO].ml_ms = 1.5;
	select_ml_set_model(&r.sel, bad, NULL);
	CU_ASSERT(r.sel.have_model && !r.sel.usable);
	CU_ASSERT(strstr(r.sel.status, "worse than nearest on the scenario set (mean regret 1.50 ms "
				       "against 1.10 ms)") != NULL);
	sel.score(sel.self, r.cand, 2, r.now, out);
	CU_ASSERT(strncmp(out[0].why, "as nearest (no usable model)", 28) == 0);
	CU_ASSERT(!r.sel.pred[0].valid);
	select_ml_set_model(&r.sel, NULL, "model file refused: x");
	CU_ASSERT_STRING_EQUAL(r.sel.status, "model file refused: x");
	free(bad);
	select_ml_free(&r.sel);
}

/* One controller round: the ml scores, then the anti-flap rule with a active. */
static void rig_decide(struct rig *r, struct select_state *st, const struct select_conf *sc,
		       struct select_score *out, struct select_decision *d)
{
	struct selector sel = select_ml(&r->sel);

	sel.score(sel.self, r->cand, 2, r->now, out);
	select_decide(st, sc, out, 2, 0, r->now, d);
}

/* nearest's anti-flap rule applies to predictions: a node predicted a little better
 * does not take over; one predicted better by the margin does, once it has stayed so
 * for the hold window. */
static void test_anti_flap(void)
{
	struct rig r;
	struct select_conf sc;
	struct select_state st;
	struct select_score out[2];
	struct select_decision d;

	rig_init(&r);
	select_conf_defaults(&sc);
	memset(&st, 0, sizeof(st));
	select_ml_set_model(&r.sel, model_copy(), NULL);
	CU_ASSERT_FATAL(r.sel.usable);
	/* a 30 ms (active), b 27 ms: b is predicted better, within the margin. */
	int switched = 0, challenged = 0;
	for (int i = 0; i < 600; i++) {
		rig_run(&r, 0.1, 30, 27, 0.3);
		rig_decide(&r, &st, &sc, out, &d);
		switched += d.choose >= 0;
		challenged += i >= 300 && d.challenger >= 0;
	}
	CU_ASSERT_FATAL(r.sel.pred[0].valid && r.sel.pred[1].valid);
	CU_ASSERT(out[1].score_us < out[0].score_us);
	CU_ASSERT(!select_beats(&sc, out[1].score_us, out[0].score_us));
	CU_ASSERT_EQUAL(switched, 0);
	CU_ASSERT_EQUAL(challenged, 0);
	/* b drops to 15 ms: its prediction follows; it is chosen only after beating a by
	 * the margin for hold_ms. */
	uint64_t first_beat = 0, chosen = 0;
	for (int i = 0; i < 1500 && !chosen; i++) {
		rig_run(&r, 0.1, 30, 15, 0.3);
		rig_decide(&r, &st, &sc, out, &d);
		if (d.challenger == 1 && !first_beat)
			first_beat = r.now;
		else if (d.challenger != 1)
			first_beat = 0;
		if (d.choose >= 0)
			chosen = r.now;
	}
	CU_ASSERT_FATAL(chosen != 0);
	CU_ASSERT_EQUAL(d.choose, 1);
	CU_ASSERT_EQUAL(d.reason, SELECT_BETTER);
	CU_ASSERT(select_beats(&sc, out[1].score_us, out[0].score_us));
	CU_ASSERT(first_beat != 0 && chosen - first_beat >= (uint64_t)sc.hold_ms * 1000);
	CU_ASSERT(d.beating_us >= (uint64_t)sc.hold_ms * 1000);
}

static void test_record(void)
{
	char dir[64], path[128], err[512];
	struct ml_record rec;
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/ls-test-ml-record-%ld", (long)getpid());
	CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
	/* 3 nodes over 10 minutes at 250 ms from a synthetic history, with a rotation. */
	CU_ASSERT_FATAL(ml_record_open(&rec, dir, 100000, err, sizeof(err)) == 0);
	struct ml_synth_conf sc;
	struct ml_rng rng;
	ml_synth_conf_default(&sc);
	ml_rng_seed(&rng, 3);
	const char *names[3] = { "n1", "n2", "n3" };
	for (int k = 0; k < 3; k++) {
		struct ml_synth_node node;
		struct ml_synth_trace tr;

		ml_synth_node_draw(&sc, &rng, (unsigned)k, &node);
		CU_ASSERT_FATAL(ml_synth_trace_run(&sc, &rng, &node, 86400 + 36000, 600, NULL, &tr) == 0);
		for (size_t i = 0; i < tr.n; i++)
			ml_record_add(&rec, 1700000000000LL + (int64_t)(tr.t[i] * 1000), names[k],
				      tr.rtt_ms[i], tr.load[i], 10, NAN, 800);
		ml_synth_trace_free(&tr);
	}
	CU_ASSERT(!rec.failed);
	CU_ASSERT_EQUAL(rec.records, 3 * 2400);
	ml_record_close(&rec);
	/* About 290 kB written: rotated more than once, and only two files of at most
	 * 100,000 bytes (and one line) stay, the newest records among them. */
	struct stat st;
	char last[64];
	snprintf(path, sizeof(path), "%s/%s.1", dir, ML_RECORD_FILE);
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	CU_ASSERT(st.st_size >= 100000 && st.st_size <= 100000 + 80);
	snprintf(path, sizeof(path), "%s/%s", dir, ML_RECORD_FILE);
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	CU_ASSERT(st.st_size > 0 && st.st_size <= 100000 + 80);
	DIR *dh = opendir(dir);
	int files = 0;
	for (struct dirent *e; dh && (e = readdir(dh));)
		files += e->d_name[0] != '.';
	if (dh)
		closedir(dh);
	CU_ASSERT_EQUAL(files, 2);
	f = fopen(path, "r");
	CU_ASSERT_FATAL(f != NULL);
	while (fgets(last, sizeof(last), f))
		;
	fclose(f);
	CU_ASSERT(strncmp(last, "1700000599", 10) == 0 && strstr(last, ",n3,")); /* n3's last */
	/* A damaged line is skipped and counted. */
	f = fopen(path, "a");
	fputs("12x,n1,30,,,,\nnot a line\n1700000000000,bad name!,1,,,,\n", f);
	fclose(f);

	struct ml_data d;
	struct ml_window w;
	size_t bad = 0;
	ml_data_init(&d);
	ml_features_window_default(&w);
	CU_ASSERT_FATAL(ml_record_rows(dir, &w, 5, &d, &bad, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(bad, 3);
	/* n3's history is whole, 600 s: rows every 5 s from 120 s to 570 s (of n3 and the
	 * part of the others that survived the rotation). */
	CU_ASSERT(d.n >= 80 && d.n <= 3 * 91);
	int facts_ok = 1;
	for (size_t i = 0; i < d.n; i++)
		facts_ok &= d.x[i * ML_NFEAT + ML_F_HOPS] == 10 &&
			    d.x[i * ML_NFEAT + ML_F_AS_PATH] == ML_UNKNOWN &&
			    d.x[i * ML_NFEAT + ML_F_DISTANCE_KM] == 800;
	CU_ASSERT(facts_ok);
	ml_data_free(&d);

	char *text;
	size_t len;
	CU_ASSERT_FATAL(ml_record_export(dir, &text, &len, err, sizeof(err)) == 0);
	CU_ASSERT(strncmp(text, ML_RECORD_HEADER "\n", strlen(ML_RECORD_HEADER) + 1) == 0);
	CU_ASSERT(strstr(text + 1, "time_ms,") == NULL); /* the header once */
	free(text);

	unlink(path);
	snprintf(path, sizeof(path), "%s/%s.1", dir, ML_RECORD_FILE);
	unlink(path);
	ml_data_init(&d);
	CU_ASSERT_EQUAL(ml_record_rows(dir, &w, 5, &d, &bad, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "no recorded samples yet") != NULL);
	rmdir(dir);
	/* A directory that cannot hold the file: refused, with the path. */
	CU_ASSERT_EQUAL(ml_record_open(&rec, "/nonexistent-ls-dir", 1000, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "/nonexistent-ls-dir/ml-samples.csv") != NULL);
	ml_model_free(&trained);
}

UNIT_MAIN("select_ml",
	  { "probe series from health", test_probe_series },
	  { "ml scores and fallbacks", test_scores },
	  { "anti-flap on predictions", test_anti_flap },
	  { "recorded history", test_record })
