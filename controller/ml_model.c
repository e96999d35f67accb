/* The model (ml_model.h): prediction through the base feature, and the file: encoding,
 * strict decoding, atomic saving. */
#include "ml_model.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char model_magic[8] = { 'L', 'S', 'F', 'O', 'R', 'E', 'S', 'T' };

#define MODEL_HEADER ML_MODEL_HEADER_BYTES
#define MODEL_CHECK 160 /* the route-choice check, 32 bytes a set */
#define MODEL_NAME 24
#define MODEL_NODE 24
#define MODEL_DIGEST 32

static const char *const model_sources[] = { "synthetic", "recorded", "both" };

/* ------------------------------------------------------------ byte order */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void putf64(uint8_t *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	put64(p, v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static double getf64(const uint8_t *p)
{
	uint64_t v = get64(p);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

static void model_digest(const uint8_t *buf, size_t len, uint8_t out[MODEL_DIGEST])
{
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, len, buf);
	sha256_digest(&ctx, MODEL_DIGEST, out);
}

static size_t model_size(uint32_t nf, uint32_t nt, uint32_t nn)
{
	return MODEL_HEADER + (size_t)MODEL_NAME * nf + 4 * (size_t)nt + (size_t)MODEL_NODE * nn +
	       MODEL_DIGEST;
}

/* ------------------------------------------------------ route-choice check */

const char *ml_model_check_name(unsigned set)
{
	static const char *const names[ML_CHECK__COUNT] = { "steady", "scenario", "recorded" };

	return set < ML_CHECK__COUNT ? names[set] : "?";
}

int ml_model_worse_than_nearest(const struct ml_model_meta *mt)
{
	int judged = 0;

	for (unsigned s = 0; s < ML_CHECK__COUNT; s++) {
		const struct ml_model_check *c = &mt->check[s];

		if (!c->decisions)
			continue;
		judged = 1;
		double allow = isfinite(c->se_ms) ? 2 * c->se_ms : 0;
		if (!(c->ml_ms - c->nearest_ms <= allow))
			return (int)s;
	}
	return judged ? -1 : -2;
}

/* ----------------------------------------------------------- prediction */

void ml_model_predict(const struct ml_model *m, const double x[ML_NFEAT], struct ml_pred *out)
{
	double base = m->meta.base == ML_MODEL_BASE_NONE ? 0 : x[m->meta.base];

	ml_forest_predict(&m->forest, x, out);
	out->mean += base;
	out->lo += base;
	out->hi += base;
	out->bias += base;
}

double ml_model_predict_mean(const struct ml_model *m, const double x[ML_NFEAT])
{
	double base = m->meta.base == ML_MODEL_BASE_NONE ? 0 : x[m->meta.base];

	return base + ml_forest_predict_mean(&m->forest, x);
}

/* --------------------------------------------------------------- encode */

int ml_model_encode(const struct ml_model *m, uint8_t **buf, size_t *len)
{
	const struct ml_forest *f = &m->forest;
	const struct ml_model_meta *mt = &m->meta;
	size_t n = model_size(f->n_features, f->n_trees, f->n_nodes);
	uint8_t *b = calloc(1, n), *p;

	if (!b)
		return -1;
	memcpy(b, model_magic, 8);
	put32(b + 8, ML_MODEL_VERSION);
	put32(b + 12, f->n_features);
	put32(b + 16, f->n_trees);
	put32(b + 20, f->n_nodes);
	put32(b + 24, f->max_depth);
	put32(b + 28, mt->params.min_samples_split);
	put32(b + 32, mt->params.min_samples_leaf);
	put32(b + 36, mt->params.max_features);
	put32(b + 40, mt->params.bootstrap);
	put32(b + 44, mt->base);
	put64(b + 48, mt->params.seed);
	put64(b + 56, mt->created);
	memcpy(b + 64, mt->source, strnlen(mt->source, sizeof(mt->source) - 1));
	put64(b + 80, mt->n_train);
	put64(b + 88, mt->n_heldout);
	putf64(b + 96, mt->mae_ms);
	putf64(b + 104, mt->p95_err_ms);
	putf64(b + 112, mt->base_mae_ms);
	putf64(b + 120, mt->base_p95_err_ms);
	putf64(b + 128, mt->window.history_s);
	putf64(b + 136, mt->window.current_s);
	putf64(b + 144, mt->window.horizon_s);
	put32(b + 152, mt->window.min_future);
	for (unsigned s = 0; s < ML_CHECK__COUNT; s++) {
		put64(b + MODEL_CHECK + 32 * s, mt->check[s].decisions);
		putf64(b + MODEL_CHECK + 32 * s + 8, mt->check[s].nearest_ms);
		putf64(b + MODEL_CHECK + 32 * s + 16, mt->check[s].ml_ms);
		putf64(b + MODEL_CHECK + 32 * s + 24, mt->check[s].se_ms);
	}
	p = b + MODEL_HEADER;
	for (uint32_t j = 0; j < f->n_features; j++, p += MODEL_NAME)
		snprintf((char *)p, MODEL_NAME, "%s", ml_features_name(j));
	for (uint32_t t = 0; t < f->n_trees; t++, p += 4)
		put32(p, f->tree[t]);
	for (uint32_t i = 0; i < f->n_nodes; i++, p += MODEL_NODE) {
		const struct ml_node *nd = &f->nodes[i];

		putf64(p, nd->threshold);
		putf64(p + 8, nd->value);
		put32(p + 16, nd->right);
		p[20] = (uint8_t)nd->feature;
		p[21] = (uint8_t)(nd->feature >> 8);
	}
	model_digest(b, n - MODEL_DIGEST, p);
	*buf = b;
	*len = n;
	return 0;
}

/* --------------------------------------------------------------- decode */

static int model_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int model_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A string from the file, fit for a message: printable ASCII, the rest '?'. */
static const char *model_printable(char *out, const uint8_t *p, size_t n)
{
	size_t i = 0;

	for (; i < n && p[i]; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? (char)p[i] : '?';
	out[i] = '\0';
	return out;
}

/* A string field: text, then NULs to its end (at least one), so that a file that
 * decodes encodes back to the same bytes. */
static int model_padded(const uint8_t *p, size_t n)
{
	size_t len = strnlen((const char *)p, n);

	if (len == n)
		return 0;
	for (size_t i = len; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static int model_window_same(const struct ml_window *a, const struct ml_window *b)
{
	return a->history_s == b->history_s && a->current_s == b->current_s &&
	       a->horizon_s == b->horizon_s && a->min_future == b->min_future;
}

static int model_decode(const uint8_t *b, size_t len, const struct ml_window *win,
			struct ml_model *m, char *err, size_t errlen)
{
	struct ml_forest *f = &m->forest;
	struct ml_model_meta *mt = &m->meta;
	uint8_t digest[MODEL_DIGEST];
	const uint8_t *p;
	char sub[160];

	if (len < 8 || memcmp(b, model_magic, 8) != 0)
		return model_fail(err, errlen, "not a LightSpeed model file (no LSFOREST magic)");
	if (len < MODEL_HEADER + MODEL_DIGEST)
		return model_fail(err, errlen, "truncated: %zu bytes, shorter than any model file",
				  len);
	uint32_t version = get32(b + 8);
	if (version != ML_MODEL_VERSION)
		return model_fail(err, errlen,
				  "format version %u, but this controller reads version %u: "
				  "train a new model (lsctl model train)", version, ML_MODEL_VERSION);
	uint32_t nf = get32(b + 12), nt = get32(b + 16), nn = get32(b + 20);
	if (nf == 0 || nf > ML_FOREST_MAX_FEATURES || nt == 0 || nt > ML_FOREST_MAX_TREES ||
	    nn < nt || nn > ML_FOREST_MAX_NODES)
		return model_fail(err, errlen, "corrupt: %u features, %u trees, %u nodes", nf, nt,
				  nn);
	size_t want = model_size(nf, nt, nn);
	if (len < want)
		return model_fail(err, errlen, "truncated: %zu of %zu bytes", len, want);
	if (len > want)
		return model_fail(err, errlen, "corrupt: %zu bytes after the end of the model",
				  len - want);
	model_digest(b, want - MODEL_DIGEST, digest);
	if (memcmp(digest, b + want - MODEL_DIGEST, MODEL_DIGEST) != 0)
		return model_fail(err, errlen, "corrupt: checksum mismatch (the file was damaged)");

	/* Intact: from here a fault is a file this controller cannot use. */
	if (nf != ML_NFEAT)
		return model_fail(err, errlen, "mismatched: the model has %u features, this "
				  "controller uses %u: train a new model", nf, ML_NFEAT);
	p = b + MODEL_HEADER;
	for (uint32_t j = 0; j < nf; j++, p += MODEL_NAME) {
		char name[MODEL_NAME + 1];

		memcpy(name, p, MODEL_NAME);
		name[MODEL_NAME] = '\0';
		if (strcmp(name, ml_features_name(j)) != 0)
			return model_fail(err, errlen, "mismatched: feature %u is \"%s\" in the "
					  "model, \"%s\" here: train a new model", j,
					  model_printable(name, p, MODEL_NAME), ml_features_name(j));
		if (!model_padded(p, MODEL_NAME))
			return model_fail(err, errlen, "corrupt: feature %u's name is not NUL-padded", j);
	}
	mt->params.n_trees = nt;
	mt->params.max_depth = get32(b + 24);
	mt->params.min_samples_split = get32(b + 28);
	mt->params.min_samples_leaf = get32(b + 32);
	mt->params.max_features = get32(b + 36);
	mt->params.bootstrap = get32(b + 40);
	mt->params.seed = get64(b + 48);
	if (ml_forest_params_check(&mt->params, nf, sub, sizeof(sub)) < 0)
		return model_fail(err, errlen, "corrupt: %s", sub);
	if (get32(b + 156) != 0)
		return model_fail(err, errlen, "corrupt: reserved fields are not zero");
	mt->base = get32(b + 44);
	if (mt->base != ML_MODEL_BASE_NONE && mt->base >= nf)
		return model_fail(err, errlen, "corrupt: base feature %u out of range", mt->base);
	mt->created = get64(b + 56);
	memcpy(mt->source, b + 64, 16);
	if (!model_padded(b + 64, 16))
		return model_fail(err, errlen, "corrupt: source is not a NUL-padded string");
	int known = 0;
	for (size_t i = 0; i < sizeof(model_sources) / sizeof(model_sources[0]); i++)
		known |= strcmp(mt->source, model_sources[i]) == 0;
	if (!known) {
		char shown[17];

		return model_fail(err, errlen, "corrupt: unknown source \"%s\"",
				  model_printable(shown, b + 64, 16));
	}
	mt->n_train = get64(b + 80);
	mt->n_heldout = get64(b + 88);
	mt->mae_ms = getf64(b + 96);
	mt->p95_err_ms = getf64(b + 104);
	mt->base_mae_ms = getf64(b + 112);
	mt->base_p95_err_ms = getf64(b + 120);
	mt->window.history_s = getf64(b + 128);
	mt->window.current_s = getf64(b + 136);
	mt->window.horizon_s = getf64(b + 144);
	mt->window.min_future = get32(b + 152);
	for (unsigned s = 0; s < ML_CHECK__COUNT; s++) {
		struct ml_model_check *c = &mt->check[s];

		c->decisions = get64(b + MODEL_CHECK + 32 * s);
		c->nearest_ms = getf64(b + MODEL_CHECK + 32 * s + 8);
		c->ml_ms = getf64(b + MODEL_CHECK + 32 * s + 16);
		c->se_ms = getf64(b + MODEL_CHECK + 32 * s + 24);
		/* Regrets are means of non-negative numbers, there only when judged; the
		 * error is non-negative or unknown. */
		if (c->decisions ? !(c->nearest_ms >= 0 && c->ml_ms >= 0 && isfinite(c->nearest_ms) &&
				     isfinite(c->ml_ms) && (isnan(c->se_ms) ||
							    (c->se_ms >= 0 && isfinite(c->se_ms)))) :
				   !(isnan(c->nearest_ms) && isnan(c->ml_ms) && isnan(c->se_ms)))
			return model_fail(err, errlen, "corrupt: the %s route-choice check is not "
					  "a pair of regrets", ml_model_check_name(s));
	}
	if (win && !model_window_same(&mt->window, win))
		return model_fail(err, errlen, "mismatched: the model's features use a %gs/%gs "
				  "window and a %gs horizon, this controller %gs/%gs and %gs: "
				  "train a new model", mt->window.history_s, mt->window.current_s,
				  mt->window.horizon_s, win->history_s, win->current_s,
				  win->horizon_s);

	f->n_features = nf;
	f->n_trees = nt;
	f->n_nodes = nn;
	f->max_depth = mt->params.max_depth;
	f->tree = malloc(((size_t)nt + 1) * sizeof(*f->tree));
	f->nodes = malloc((size_t)nn * sizeof(*f->nodes));
	if (!f->tree || !f->nodes)
		return model_fail(err, errlen, "out of memory for %u nodes", nn);
	for (uint32_t t = 0; t < nt; t++, p += 4)
		f->tree[t] = get32(p);
	f->tree[nt] = nn;
	for (uint32_t i = 0; i < nn; i++, p += MODEL_NODE) {
		struct ml_node *nd = &f->nodes[i];

		nd->threshold = getf64(p);
		nd->value = getf64(p + 8);
		nd->right = get32(p + 16);
		nd->feature = (uint16_t)(p[20] | p[21] << 8);
		nd->reserved = 0;
		if (p[22] || p[23])
			return model_fail(err, errlen, "corrupt: node %u: reserved bytes are not zero",
					  i);
	}
	if (ml_forest_check(f, sub, sizeof(sub)) < 0)
		return model_fail(err, errlen, "corrupt: %s", sub);
	double bias = 0;
	for (uint32_t t = 0; t < nt; t++)
		bias += f->nodes[f->tree[t]].value;
	f->bias = bias / nt;
	return 0;
}

int ml_model_decode(const uint8_t *buf, size_t len, const struct ml_window *win,
		    struct ml_model *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	if (model_decode(buf, len, win, m, err, errlen) < 0) {
		ml_model_free(m);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ files */

int ml_model_path(const char *dir, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", dir, ML_MODEL_FILE);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static int model_write_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int ml_model_save(const char *path, const struct ml_model *m, char *err, size_t errlen)
{
	char tmp[4096], dirbuf[4096];
	uint8_t *buf;
	size_t len;
	int fd, rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return model_fail(err, errlen, "%s: path too long", path);
	if (ml_model_encode(m, &buf, &len) < 0)
		return model_fail(err, errlen, "%s: out of memory", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		model_fail(err, errlen, "%s: cannot create: %s (is the state directory there and "
			   "writable?)", tmp, strerror(errno));
		goto out;
	}
	if (model_write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
		model_fail(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		model_fail(err, errlen, "%s: cannot rename into place: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	/* The rename itself must reach the disk too. */
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

int ml_model_load(const char *path, const struct ml_window *win, struct ml_model *m, char *err,
		  size_t errlen)
{
	char sub[320];
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, rc = -1;

	memset(m, 0, sizeof(*m));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return model_fail(err, errlen, "%s: %s%s", path, strerror(errno),
				  errno == ENOENT ? " (no model yet: lsctl model train)" : "");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		model_fail(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)ML_MODEL_MAX_BYTES) {
		model_fail(err, errlen, "%s: %lld bytes, larger than any model (%u MiB)", path,
			   (long long)st.st_size, ML_MODEL_MAX_BYTES >> 20);
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		model_fail(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			model_fail(err, errlen, "%s: read failed: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (ml_model_decode(buf, got, win, m, sub, sizeof(sub)) < 0) {
		model_fail(err, errlen, "%s: %s", path, sub);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

void ml_model_free(struct ml_model *m)
{
	ml_forest_free(&m->forest);
	memset(m, 0, sizeof(*m));
}
