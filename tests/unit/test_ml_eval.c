/* Unit tests for controller/ml_eval.c: route choice replayed through the controller's
 * health, nearest, ml, anti-flap and failover code. A model of synthetic data chooses
 * better than nearest on synthetic choices and is used; on a recorded history where a
 * node's reported load says nothing of its latency the same model chooses worse than
 * nearest, the check says so and the selector does not use it; recorded stretches are
 * cut at silences, too short ones skipped, and the newest kept within the budget; the
 * verdict allows for the check's noise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "../../controller/ml_eval.h"
#include "../../controller/ml_train.h"

#include "unit.h"

static struct ml_model model, believer;
static char dir[64];

/* A model of 20,000 synthetic rows, once. */
static void setup(void)
{
	struct ml_synth_conf c;
	struct ml_data d;
	struct ml_forest_params p;
	struct ml_train_report rep;
	char err[256];

	if (model.forest.nodes)
		return;
	ml_synth_conf_default(&c);
	CU_ASSERT_FATAL(ml_synth_dataset(&c, 20000, NULL, &d, err, sizeof(err)) == 0);
	ml_forest_params_default(&p);
	CU_ASSERT_FATAL(ml_train_run(&d, &p, 0.2, NULL, &model, &rep, err, sizeof(err)) == 0);
	snprintf(model.meta.source, sizeof(model.meta.source), "synthetic");
	/* A model that believes reported load far more than the synthetic nodes bear out
	 * (as one trained elsewhere may on a network whose load says little). */
	for (size_t i = 0; i < d.n; i++)
		if (d.x[i * ML_NFEAT + ML_F_LOAD] >= 0)
			d.y[i] += 40 * d.x[i * ML_NFEAT + ML_F_LOAD];
	CU_ASSERT_FATAL(ml_train_run(&d, &p, 0.2, NULL, &believer, &rep, err, sizeof(err)) == 0);
	snprintf(believer.meta.source, sizeof(believer.meta.source), "synthetic");
	ml_data_free(&d);
}

/* A copy of the model (the selector takes the one it is given). */
static struct ml_model *copy_of(const struct ml_model *m)
{
	struct ml_model *c = calloc(1, sizeof(*c));
	uint8_t *b;
	size_t len;
	char err[256];

	CU_ASSERT_FATAL(ml_model_encode(m, &b, &len) == 0);
	CU_ASSERT_FATAL(ml_model_decode(b, len, NULL, c, err, sizeof(err)) == 0);
	free(b);
	return c;
}

/* Record `secs` of two nodes every 250 ms from wall time ms0: a answers 20 ms and
 * reports a load of 0.95, b answers 27 ms with a load of 0.1 (a little noise). */
static void record_misleading(struct ml_record *rec, int64_t ms0, double secs, unsigned seed)
{
	srand(seed);
	for (int i = 0; i < (int)(secs * 4); i++) {
		double na = (rand() % 1000) / 1000.0 - 0.5, nb = (rand() % 1000) / 1000.0 - 0.5;

		ml_record_add(rec, ms0 + i * 250, "a", 20 + na, 0.95, NAN, NAN, NAN);
		ml_record_add(rec, ms0 + i * 250, "b", 27 + nb, 0.1, NAN, NAN, NAN);
	}
}

static void load_dir(struct ml_record_set *set)
{
	char err[256];
	size_t bad;

	CU_ASSERT_FATAL(ml_record_load(dir, set, &bad, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(bad, 0);
}

static void clear_dir(void)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, ML_RECORD_FILE);
	unlink(p);
	snprintf(p, sizeof(p), "%s/%s.1", dir, ML_RECORD_FILE);
	unlink(p);
}

static void test_synthetic_check(void)
{
	char err[256];
	struct ml_model *m;
	struct select_nearest_conf nc;
	struct ml_probe probe;
	struct select_ml sel;

	setup();
	m = copy_of(&model);
	/* Never checked: not used, and says so. */
	CU_ASSERT_EQUAL(ml_model_worse_than_nearest(&m->meta), -2);
	select_nearest_defaults(&nc);
	select_ml_init(&sel, &nc, &probe);
	select_ml_set_model(&sel, copy_of(m), NULL);
	CU_ASSERT(sel.have_model && !sel.usable);
	CU_ASSERT(strstr(sel.status, "not checked against nearest") != NULL);

	CU_ASSERT_FATAL(ml_eval_check(m, NULL, NULL, err, sizeof(err)) == 0);
	const struct ml_model_check *st = &m->meta.check[ML_CHECK_STEADY];
	const struct ml_model_check *sc = &m->meta.check[ML_CHECK_SCENARIO];
	/* 16 choices of 3 nodes over 20 minutes, judged every second from the 2nd minute. */
	CU_ASSERT(st->decisions > ML_EVAL_CHECK_GROUPS * 900 && st->decisions <= ML_EVAL_CHECK_GROUPS * 1080);
	CU_ASSERT(sc->decisions > ML_EVAL_CHECK_GROUPS * 900 && sc->decisions <= ML_EVAL_CHECK_GROUPS * 1080);
	CU_ASSERT(st->se_ms > 0 && sc->se_ms > 0);
	CU_ASSERT_EQUAL(m->meta.check[ML_CHECK_RECORDED].decisions, 0);
	CU_ASSERT(isnan(m->meta.check[ML_CHECK_RECORDED].ml_ms));
	/* A fastest node about to degrade: the model leaves it sooner, with less regret. */
	CU_ASSERT(sc->nearest_ms > 0);
	CU_ASSERT(sc->ml_ms < sc->nearest_ms - 2 * sc->se_ms);
	/* Steady: no worse beyond the check's noise. */
	CU_ASSERT(st->ml_ms <= st->nearest_ms + 2 * st->se_ms);
	CU_ASSERT_EQUAL(ml_model_worse_than_nearest(&m->meta), -1);
	select_ml_set_model(&sel, m, NULL);
	CU_ASSERT(sel.usable);
	CU_ASSERT(strstr(sel.status, "route regret") != NULL);
	select_ml_free(&sel);
	free(m);
}

static void test_misleading_recorded(void)
{
	char err[256];
	struct ml_record rec;
	struct ml_record_set set;
	struct ml_eval_sum sum;

	setup();
	snprintf(dir, sizeof(dir), "/tmp/ls-test-ml-eval-%ld", (long)getpid());
	CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
	CU_ASSERT_FATAL(ml_record_open(&rec, dir, 64 << 20, err, sizeof(err)) == 0);
	record_misleading(&rec, 1700000000000LL, 900, 1);
	ml_record_close(&rec);
	load_dir(&set);

	/* nearest keeps a, the faster; the believer takes a's load for a coming
	 * degradation and takes b. */
	struct ml_eval *e = ml_eval_new(&believer, true, err, sizeof(err));
	CU_ASSERT_FATAL(e != NULL);
	memset(&sum, 0, sizeof(sum));
	CU_ASSERT_FATAL(ml_eval_recorded(e, &set, 1e9, NULL, 0, &sum) == 0);
	CU_ASSERT_EQUAL(sum.choices, 1);
	CU_ASSERT(sum.decisions > 700 && sum.decisions <= 750);
	CU_ASSERT_DOUBLE_EQUAL(ml_eval_mean(&sum, ML_EVAL_NEAREST), 0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(ml_eval_mean(&sum, ML_EVAL_ORACLE), 0, 1e-9);
	CU_ASSERT(ml_eval_mean(&sum, ML_EVAL_ML) > 5);

	/* The controller's check: worse than nearest there, so not used, and why. */
	struct ml_model *m = copy_of(&believer);
	CU_ASSERT_FATAL(ml_eval_check(m, &set, NULL, err, sizeof(err)) == 0);
	const struct ml_model_check *rc = &m->meta.check[ML_CHECK_RECORDED];
	CU_ASSERT(rc->decisions > 700);
	CU_ASSERT_DOUBLE_EQUAL(rc->nearest_ms, 0, 1e-9);
	/* Three 5-minute blocks, every one worse: far beyond the noise. */
	CU_ASSERT(rc->se_ms < 1);
	CU_ASSERT(rc->ml_ms > 5);
	/* The verdict names the first set it lost (the believer may lose the synthetic
	 * ones too). */
	int w = ml_model_worse_than_nearest(&m->meta);
	CU_ASSERT(w >= 0);
	struct select_nearest_conf nc;
	struct ml_probe probe;
	struct select_ml sel;
	select_nearest_defaults(&nc);
	select_ml_init(&sel, &nc, &probe);
	select_ml_set_model(&sel, m, NULL);
	CU_ASSERT(sel.have_model && !sel.usable);
	CU_ASSERT(strstr(sel.status, "worse than nearest on the") != NULL);
	CU_ASSERT(strstr(sel.status, ml_model_check_name((unsigned)w)) != NULL);
	select_ml_free(&sel);
	free(m);
	ml_record_set_free(&set);

	/* Stretches: a second one two hours later (5 minutes: judged), a third (100 s:
	 * too short to judge). Within a budget of 400 s only the newest judged one. */
	CU_ASSERT_FATAL(ml_record_open(&rec, dir, 64 << 20, err, sizeof(err)) == 0);
	record_misleading(&rec, 1700000000000LL + 7200000, 300, 2);
	record_misleading(&rec, 1700000000000LL + 14400000, 100, 3);
	ml_record_close(&rec);
	load_dir(&set);
	memset(&sum, 0, sizeof(sum));
	CU_ASSERT_FATAL(ml_eval_recorded(e, &set, 1e9, NULL, 0, &sum) == 0);
	CU_ASSERT_EQUAL(sum.choices, 2);
	memset(&sum, 0, sizeof(sum));
	CU_ASSERT_FATAL(ml_eval_recorded(e, &set, 400, NULL, 0, &sum) == 0);
	CU_ASSERT_EQUAL(sum.choices, 1);
	CU_ASSERT(sum.decisions > 100 && sum.decisions <= 150);
	ml_record_set_free(&set);
	ml_eval_free(e);
	clear_dir();
	rmdir(dir);
	ml_model_free(&model);
	ml_model_free(&believer);
}

static void test_verdict(void)
{
	struct ml_model_meta mt;

	memset(&mt, 0, sizeof(mt));
	for (unsigned s = 0; s < ML_CHECK__COUNT; s++)
		mt.check[s] = (struct ml_model_check){ 0, NAN, NAN, NAN };
	CU_ASSERT_EQUAL(ml_model_worse_than_nearest(&mt), -2);
	mt.check[ML_CHECK_STEADY] = (struct ml_model_check){ 1000, 0.5, 0.6, 0.1 };
	CU_ASSERT_EQUAL(ml_model_worse_than_nearest(&mt), -1); /* within twice the error */
	mt.check[ML_CHECK_STEADY].se_ms = 0.04;
	CU_ASSERT_EQUAL(ml_model_worse_than_nearest(&mt), ML_CHECK_STEADY);
	mt.check[ML_CHECK_STEADY].se_ms = NAN; /* one block: any excess counts */
	CU_ASSERT_EQUAL(ml_model_worse_than_nearest(&mt), ML_CHECK_STEADY);
	mt.check[ML_CHECK_STEADY].ml_ms = 0.5;
	CU_ASSERT_EQUAL(ml_model_worse_than_nearest(&mt), -1);
	mt.check[ML_CHECK_RECORDED] = (struct ml_model_check){ 10, 0, 3, NAN };
	CU_ASSERT_EQUAL(ml_model_worse_than_nearest(&mt), ML_CHECK_RECORDED);
	CU_ASSERT_STRING_EQUAL(ml_model_check_name(ML_CHECK_SCENARIO), "scenario");
}

UNIT_MAIN("ml_eval",
	  { "verdict against nearest", test_verdict },
	  { "synthetic route-choice check", test_synthetic_check },
	  { "misleading recorded history: worse than nearest, not used", test_misleading_recorded })
