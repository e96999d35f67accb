/* libFuzzer harness: the ML model file loader (controller/ml_model.c). Whatever the
 * bytes, decoding accepts or refuses with one line, never crashes; an accepted model
 * answers predictions for any finite input (inference walks only what the loader
 * checked) and encodes back to exactly the bytes it came from.
 *
 * The first byte picks how the rest is used, so the fuzzer reaches past the checksum:
 *   bit 0  recompute the trailing SHA-256 before decoding
 *   bit 1  the rest edits a valid model file: 3 bytes per edit, offset (2, little
 *          endian, modulo the file's length) and the new byte; then decode it
 *   else   the rest is the file
 */
#include <math.h>
#include <nettle/sha2.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../controller/ml_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static uint8_t *valid;
static size_t valid_len;

/* A real model: a small forest over a deterministic function of the 11 features. */
static void make_valid(void)
{
	enum { N = 300 };
	static double x[N * ML_NFEAT], y[N];
	struct ml_model m;
	char err[256];

	memset(&m, 0, sizeof(m));
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < ML_NFEAT; j++)
			x[i * ML_NFEAT + j] = (double)((i * (j + 3)) % 37);
		y[i] = x[i * ML_NFEAT] * 2 + x[i * ML_NFEAT + 9];
	}
	ml_forest_params_default(&m.meta.params);
	m.meta.params.n_trees = 3;
	m.meta.params.max_depth = 4;
	if (ml_forest_train(&m.forest, x, y, N, ML_NFEAT, &m.meta.params, NULL, err,
			    sizeof(err)) < 0)
		abort();
	m.meta.base = ML_F_P95_MS;
	for (unsigned s = 0; s < ML_CHECK__COUNT; s++)
		m.meta.check[s] = (struct ml_model_check){ 0, NAN, NAN, NAN };
	snprintf(m.meta.source, sizeof(m.meta.source), "synthetic");
	ml_features_window_default(&m.meta.window);
	if (ml_model_encode(&m, &valid, &valid_len) < 0)
		abort();
	ml_model_free(&m);
}

static void fix_digest(uint8_t *b, size_t n)
{
	struct sha256_ctx ctx;

	if (n < 32)
		return;
	sha256_init(&ctx);
	sha256_update(&ctx, n - 32, b);
	sha256_digest(&ctx, 32, b + n - 32);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct ml_window win;
	struct ml_model m;
	uint8_t *b, *again;
	size_t n, again_len;
	char err[512];

	if (len < 1)
		return 0;
	if (!valid)
		make_valid();
	ml_features_window_default(&win);
	if (data[0] & 2) {
		n = valid_len;
		b = malloc(n);
		memcpy(b, valid, n);
		for (size_t i = 1; i + 3 <= len; i += 3)
			b[(data[i] | (size_t)data[i + 1] << 8) % n] = data[i + 2];
	} else {
		n = len - 1;
		b = malloc(n ? n : 1);
		memcpy(b, data + 1, n);
	}
	if (data[0] & 1)
		fix_digest(b, n);
	err[0] = '\0';
	if (ml_model_decode(b, n, &win, &m, err, sizeof(err)) < 0) {
		if (!err[0] || strchr(err, '\n') || m.forest.nodes)
			abort();
		free(b);
		return 0;
	}
	/* Accepted: inference on corner inputs, and the canonical round trip. */
	static const double probes[] = { -1e300, -1, 0, 0.5, 1, 37, 1e300 };
	for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
		double x[ML_NFEAT];
		struct ml_pred pr;

		for (int j = 0; j < ML_NFEAT; j++)
			x[j] = probes[(k + (size_t)j) % (sizeof(probes) / sizeof(probes[0]))];
		ml_model_predict(&m, x, &pr);
		if (pr.n_top > 3)
			abort();
	}
	if (ml_model_encode(&m, &again, &again_len) < 0)
		abort();
	if (again_len != n || memcmp(again, b, n) != 0)
		abort();
	free(again);
	ml_model_free(&m);
	free(b);
	return 0;
}
