/* Unit tests for controller/ml_model.c: save and load give back the same model and
 * bit-identical predictions; a truncated, damaged, newer, mismatched or structurally
 * broken file is refused with a message saying which; saving is atomic. */
#include <dirent.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../controller/ml_data.h"
#include "../../controller/ml_model.h"
#include "../../controller/ml_synth.h"
#include "../../controller/ml_train.h"

#include "unit.h"

static struct ml_model model;
static struct ml_data rows;
static char dir[64];
static char path[128];
static struct ml_window win;

/* A small model of synthetic data, trained once for every test. */
static void setup(void)
{
	struct ml_synth_conf c;
	struct ml_forest_params p;
	struct ml_train_report rep;
	char err[256];

	if (rows.n)
		return;
	ml_synth_conf_default(&c);
	c.seed = 11;
	ml_features_window_default(&win);
	CU_ASSERT_EQUAL_FATAL(ml_synth_dataset(&c, 3000, NULL, &rows, err, sizeof(err)), 0);
	ml_forest_params_default(&p);
	p.n_trees = 6;
	CU_ASSERT_EQUAL_FATAL(ml_train_run(&rows, &p, 0.2, NULL, &model, &rep, err, sizeof(err)), 0);
	model.meta.created = 1700000000;
	model.meta.check[ML_CHECK_STEADY] = (struct ml_model_check){ 4200, 0.5, 0.25, 0.0625 };
	model.meta.check[ML_CHECK_SCENARIO] = (struct ml_model_check){ 4200, 1.5, 0.75, 0.125 };
	snprintf(model.meta.source, sizeof(model.meta.source), "synthetic");
	snprintf(dir, sizeof(dir), "/tmp/ls-test-ml-model-%ld", (long)getpid());
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	CU_ASSERT_FATAL(ml_model_path(dir, path, sizeof(path)) == 0);
}

static void teardown_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void fix_digest(uint8_t *b, size_t len)
{
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, len - 32, b);
	sha256_digest(&ctx, 32, b + len - 32);
}

static void test_round_trip(void)
{
	struct ml_model back;
	char err[512];

	setup();
	CU_ASSERT_EQUAL_FATAL(ml_model_save(path, &model, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(ml_model_load(path, &win, &back, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(back.forest.n_trees, model.forest.n_trees);
	CU_ASSERT_EQUAL(back.forest.n_nodes, model.forest.n_nodes);
	CU_ASSERT_EQUAL(memcmp(back.forest.nodes, model.forest.nodes,
			       model.forest.n_nodes * sizeof(struct ml_node)), 0);
	CU_ASSERT_EQUAL(memcmp(back.forest.tree, model.forest.tree,
			       (model.forest.n_trees + 1) * sizeof(uint32_t)), 0);
	CU_ASSERT_EQUAL(back.meta.base, ML_F_P95_MS);
	CU_ASSERT_EQUAL(back.meta.created, 1700000000);
	CU_ASSERT_STRING_EQUAL(back.meta.source, "synthetic");
	CU_ASSERT_EQUAL(back.meta.n_train, model.meta.n_train);
	CU_ASSERT_EQUAL(back.meta.n_heldout, model.meta.n_heldout);
	CU_ASSERT(back.meta.n_heldout > 0);
	CU_ASSERT_EQUAL(back.meta.mae_ms, model.meta.mae_ms);
	CU_ASSERT_EQUAL(back.meta.base_p95_err_ms, model.meta.base_p95_err_ms);
	CU_ASSERT_EQUAL(memcmp(back.meta.check, model.meta.check, sizeof(model.meta.check)), 0);
	CU_ASSERT_EQUAL(back.meta.check[ML_CHECK_SCENARIO].decisions, 4200);
	CU_ASSERT_EQUAL(back.meta.check[ML_CHECK_SCENARIO].se_ms, 0.125);
	CU_ASSERT(isnan(back.meta.check[ML_CHECK_RECORDED].ml_ms));
	CU_ASSERT_EQUAL(memcmp(&back.meta.params, &model.meta.params, sizeof(model.meta.params)), 0);
	CU_ASSERT_EQUAL(back.forest.bias, model.forest.bias);
	/* Inference on the loaded model is the trained model's, bit for bit. */
	int differ = 0;
	for (size_t i = 0; i < rows.n; i++) {
		struct ml_pred a, b;
		const double *x = rows.x + i * ML_NFEAT;

		ml_model_predict(&model, x, &a);
		ml_model_predict(&back, x, &b);
		differ += a.mean != b.mean || a.lo != b.lo || a.hi != b.hi || a.sd != b.sd ||
			  memcmp(a.contrib, b.contrib, sizeof(a.contrib)) != 0 ||
			  ml_model_predict_mean(&back, x) != a.mean;
	}
	CU_ASSERT_EQUAL(differ, 0);
	ml_model_free(&back);
}

static void test_atomic_save(void)
{
	struct ml_model back;
	char err[512];
	FILE *f;

	setup();
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("an older file", f);
	fclose(f);
	CU_ASSERT_EQUAL(ml_model_save(path, &model, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(ml_model_load(path, &win, &back, err, sizeof(err)), 0);
	ml_model_free(&back);
	/* No temporary file is left behind. */
	DIR *d = opendir(dir);
	struct dirent *e;
	int others = 0;
	while ((e = readdir(d)))
		others += e->d_name[0] != '.' && strcmp(e->d_name, ML_MODEL_FILE) != 0;
	closedir(d);
	CU_ASSERT_EQUAL(others, 0);
	/* A directory that is not there: the message names the path. */
	CU_ASSERT_EQUAL(ml_model_save("/nonexistent-ls-dir/x", &model, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "/nonexistent-ls-dir/x") != NULL);
	CU_ASSERT_EQUAL(ml_model_load("/nonexistent-ls-dir/x", &win, &back, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "lsctl model train") != NULL);
}

static int refused(const uint8_t *b, size_t len, const char *want)
{
	struct ml_model m;
	char err[512];

	if (ml_model_decode(b, len, &win, &m, err, sizeof(err)) == 0) {
		ml_model_free(&m);
		return 0;
	}
	if (want && !strstr(err, want)) {
		fprintf(stderr, "got \"%s\", wanted \"%s\"\n", err, want);
		return 0;
	}
	return m.forest.nodes == NULL;
}

static void test_truncated(void)
{
	uint8_t *b;
	size_t len;
	int bad = 0;

	setup();
	CU_ASSERT_EQUAL_FATAL(ml_model_encode(&model, &b, &len), 0);
	for (size_t n = 0; n < len; n += (n < 300 ? 1 : 97))
		bad += !refused(b, n, n < 8 ? "not a LightSpeed model" : "truncated");
	bad += !refused(b, len - 1, "truncated");
	CU_ASSERT_EQUAL(bad, 0);
	/* Trailing bytes. */
	uint8_t *longer = malloc(len + 5);
	memcpy(longer, b, len);
	memset(longer + len, 0, 5);
	CU_ASSERT(refused(longer, len + 5, "after the end"));
	free(longer);
	free(b);
}

static void test_damaged(void)
{
	uint8_t *b;
	size_t len;
	int bad = 0;

	setup();
	CU_ASSERT_EQUAL_FATAL(ml_model_encode(&model, &b, &len), 0);
	/* Any flipped bit past the sizes is caught by the checksum (the sizes themselves
	 * turn into "truncated" or "corrupt"). */
	for (size_t i = 24; i < len; i += 13) {
		b[i] ^= 0x10;
		bad += !refused(b, len, NULL);
		b[i] ^= 0x10;
	}
	CU_ASSERT_EQUAL(bad, 0);
	b[len / 2] ^= 1;
	CU_ASSERT(refused(b, len, "checksum mismatch"));
	b[len / 2] ^= 1;
	CU_ASSERT(!refused(b, len, NULL)); /* undamaged again */
	memcpy(b, "LSFORESX", 8);
	CU_ASSERT(refused(b, len, "not a LightSpeed model"));
	free(b);
}

/* Faults that a checksum does not catch (the file is intact, it is just not one this
 * controller can use): each with its digest recomputed. */
static void test_mismatched(void)
{
	uint8_t *b;
	size_t len;

	setup();
	CU_ASSERT_EQUAL_FATAL(ml_model_encode(&model, &b, &len), 0);
	b[8] = 3; /* a newer format */
	fix_digest(b, len);
	CU_ASSERT(refused(b, len, "format version 3"));
	b[8] = 1; /* the first format, without the route-choice check */
	fix_digest(b, len);
	CU_ASSERT(refused(b, len, "format version 1, but this controller reads version 2"));
	b[8] = 2;
	memcpy(b + ML_MODEL_HEADER_BYTES + 24 * ML_F_LOAD, "cpu_load", 9); /* another feature */
	fix_digest(b, len);
	CU_ASSERT(refused(b, len, "mismatched: feature 9"));
	memcpy(b + ML_MODEL_HEADER_BYTES + 24 * ML_F_LOAD, ml_features_name(ML_F_LOAD),
	       strlen(ml_features_name(ML_F_LOAD)) + 1);
	fix_digest(b, len);
	CU_ASSERT(!refused(b, len, NULL));
	/* A model made for another window. */
	struct ml_window other = win;
	struct ml_model m;
	char err[512];
	other.history_s = 300;
	CU_ASSERT_EQUAL(ml_model_decode(b, len, &other, &m, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "mismatched") && strstr(err, "window"));
	free(b);
}

static void test_corrupt_structure(void)
{
	uint8_t *b;
	size_t len;
	size_t nodes = ML_MODEL_HEADER_BYTES + 24 * ML_NFEAT + 4 * model.forest.n_trees;

	setup();
	CU_ASSERT_EQUAL_FATAL(ml_model_encode(&model, &b, &len), 0);
	uint8_t *c = malloc(len);
	/* The root's right child pointing at itself: a loop inference would never leave. */
	memcpy(c, b, len);
	memset(c + nodes + 16, 0, 4);
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "corrupt: tree 0"));
	/* A feature index past the 11. */
	memcpy(c, b, len);
	c[nodes + 20] = 11;
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "out of range"));
	/* A NaN threshold. */
	memcpy(c, b, len);
	memset(c + nodes, 0xff, 8);
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "not finite"));
	/* Tree offsets out of order. */
	memcpy(c, b, len);
	memset(c + ML_MODEL_HEADER_BYTES + 24 * ML_NFEAT + 4, 0, 4);
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "corrupt"));
	/* A depth the parameters do not allow. */
	memcpy(c, b, len);
	c[24] = 40;
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "max_depth"));
	/* Counts that promise more than the file holds. */
	memcpy(c, b, len);
	c[20] ^= 0x40;
	CU_ASSERT(refused(c, len, NULL));
	/* An unknown source. */
	memcpy(c, b, len);
	memset(c + 64, 0, 16);
	memcpy(c + 64, "guessed", 7);
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "unknown source"));
	/* Text after a string's end. */
	c[64 + 10] = 'x';
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "NUL-padded"));
	/* A route-choice check judged on decisions with no regret, or a negative one. */
	memcpy(c, b, len);
	memset(c + 160 + 32 * ML_CHECK_STEADY + 16, 0xff, 8);
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "the steady route-choice check"));
	memcpy(c, b, len);
	c[160 + 32 * ML_CHECK_SCENARIO + 15] |= 0x80; /* nearest's regret negative */
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "the scenario route-choice check"));
	/* ... or regrets where nothing was judged. */
	memcpy(c, b, len);
	memset(c + 160 + 32 * ML_CHECK_RECORDED + 8, 0, 8);
	fix_digest(c, len);
	CU_ASSERT(refused(c, len, "the recorded route-choice check"));
	free(c);
	free(b);
	ml_model_free(&model);
	ml_data_free(&rows);
	teardown_dir();
}

/* Online retraining: a new model takes the current one's place only when it is better
 * on the new training's held-out rows (or in use where the current one is not). */
static void test_replacement_rule(void)
{
	CU_ASSERT(ml_train_replaces(false, false, NAN, false, 9));      /* none yet */
	CU_ASSERT(ml_train_replaces(true, true, 1.50, true, 1.40));     /* lower error */
	CU_ASSERT(!ml_train_replaces(true, true, 1.40, true, 1.40));    /* equal: kept */
	CU_ASSERT(!ml_train_replaces(true, true, 1.40, true, 1.41));    /* higher: kept */
	CU_ASSERT(!ml_train_replaces(true, true, 1.50, false, 1.00));   /* lower, not usable */
	CU_ASSERT(ml_train_replaces(true, false, 1.00, true, 1.50));    /* usable beats unused */
	CU_ASSERT(ml_train_replaces(true, false, 1.50, false, 1.40));   /* both unused: lower */
	CU_ASSERT(!ml_train_replaces(true, false, 1.40, false, 1.50));
	CU_ASSERT(ml_train_replaces(true, true, NAN, true, 1.40));      /* current unmeasured */
	CU_ASSERT(!ml_train_replaces(true, true, 1.40, true, NAN));
}

UNIT_MAIN("ml_model",
	  { "save and load round trip", test_round_trip },
	  { "atomic save, missing paths", test_atomic_save },
	  { "truncated files refused", test_truncated },
	  { "damaged files refused", test_damaged },
	  { "newer or mismatched files refused", test_mismatched },
	  { "corrupt structure refused", test_corrupt_structure },
	  { "replacement rule", test_replacement_rule })
