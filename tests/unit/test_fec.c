/* Unit tests for shared/fec.c: the matrix is MDS (checked with an independent GF(2^8)
 * implementation, not ISA-L), every loss pattern up to m recovers byte-identical data,
 * block-number wrap, parity before data, duplicates, time-outs without leaks, short
 * blocks, plain XOR for m = 1, hostile input, parameter parsing, and 10,000 random
 * blocks checked against an exact model of what is solvable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fec.h"

#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint32_t kmask_test(unsigned n) { return n >= 32 ? 0xffffffffu : (1u << n) - 1; }

/* ---- an independent GF(2^8), polynomial 0x11d ---- */

static uint8_t gfm(uint8_t a, uint8_t b)
{
	unsigned r = 0, x = a;

	while (b) {
		if (b & 1)
			r ^= x;
		x <<= 1;
		if (x & 0x100)
			x ^= 0x11d;
		b >>= 1;
	}
	return (uint8_t)r;
}

/* Inverse by search, memoised: slow but obviously right. */
static uint8_t gfi(uint8_t a)
{
	static uint8_t inv[256];
	unsigned x;

	if (a && !inv[a])
		for (x = 1; x < 256; x++)
			if (gfm(a, (uint8_t)x) == 1)
				inv[a] = (uint8_t)x;
	return inv[a];
}

static uint8_t ref_coef(unsigned k, unsigned j, unsigned i)
{
	return gfm((uint8_t)(k ^ i), gfi((uint8_t)((k + j) ^ i)));
}

/* Gaussian elimination on an n x n matrix (row stride n); destroys it. */
static int ref_invertible(uint8_t *a, unsigned n)
{
	unsigned c, r, p, x;

	for (c = 0; c < n; c++) {
		for (p = c; p < n && !a[p * n + c]; p++)
			;
		if (p == n)
			return 0;
		for (x = 0; x < n; x++) {
			uint8_t t = a[c * n + x];

			a[c * n + x] = a[p * n + x];
			a[p * n + x] = t;
		}
		for (r = c + 1; r < n; r++) {
			uint8_t f = gfm(a[r * n + c], gfi(a[c * n + c]));

			for (x = c; x < n; x++)
				a[r * n + x] ^= gfm(f, a[c * n + x]);
		}
	}
	return 1;
}

/* ---- a small deterministic PRNG ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static unsigned rnd_below(unsigned n) { return n ? rnd() % n : 0; }

static void fill(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

/* ---- packets and a capturing deliver callback ---- */

struct pkt {
	struct ls_hdr h;
	size_t len;
	uint8_t buf[LS_MAX_PAYLOAD];
};

#define MAXP (LS_FEC_MAX_K + LS_FEC_MAX_M)

static struct pkt pk[MAXP];      /* the block just encoded: data, then parity */
static uint8_t dat[LS_FEC_MAX_K][LS_MAX_PAYLOAD];
static size_t dlen[LS_FEC_MAX_K];

struct cap {
	unsigned n;
	size_t len[4 * MAXP];
	uint8_t buf[4 * MAXP][LS_MAX_PAYLOAD];
};
static struct cap cap;

static void on_deliver(void *ctx, const uint8_t *p, size_t len)
{
	struct cap *c = ctx;

	CU_ASSERT_FATAL(c->n < NELEM(c->len));
	c->len[c->n] = len;
	memcpy(c->buf[c->n], p, len);
	c->n++;
}

/* Encode one block of n data packets (dlen/dat) with e's parameters into pk[]: closes
 * by count when n == k, else by time. Returns the number of packets (data + parity). */
static unsigned encode_block(struct ls_fec_enc *e, unsigned n, uint64_t t)
{
	const uint8_t *sh;
	size_t plen;
	uint16_t bn;
	uint8_t kk;
	unsigned i, np;
	int m;

	for (i = 0; i < n; i++) {
		bool full;

		memset(&pk[i].h, 0, sizeof(pk[i].h));
		full = ls_fec_enc_add(e, dat[i], dlen[i], t, &pk[i].h);
		CU_ASSERT_EQUAL(full, i + 1 == e->p.k);
		pk[i].len = dlen[i];
		memcpy(pk[i].buf, dat[i], dlen[i]);
	}
	if (n < e->p.k) {
		CU_ASSERT_FALSE(ls_fec_enc_due(e, t + e->p.block_us - 1));
		CU_ASSERT_TRUE(ls_fec_enc_due(e, t + e->p.block_us));
	}
	m = ls_fec_enc_close(e, &sh, &plen, &bn, &kk);
	CU_ASSERT_EQUAL(kk, n);
	np = n;
	for (i = 0; i < (unsigned)m; i++, np++) {
		memset(&pk[np].h, 0, sizeof(pk[np].h));
		pk[np].h.version = LS_VER_FEC;
		pk[np].h.fec_block = bn;
		pk[np].h.fec_index = (uint8_t)(kk + i);
		pk[np].h.fec_k = kk;
		pk[np].len = plen;
		memcpy(pk[np].buf, sh + i * LS_FEC_SHARD_MAX, plen);
	}
	return np;
}

/* The captured deliveries are exactly the data packets in want (a mask), each once. */
static int cap_matches(unsigned n, uint32_t want)
{
	uint32_t used = 0;
	unsigned c, i;

	if (cap.n != (unsigned)__builtin_popcount(want))
		return 0;
	for (c = 0; c < cap.n; c++) {
		for (i = 0; i < n; i++) {
			if (!(want >> i & 1) || (used >> i & 1) || dlen[i] != cap.len[c] ||
			    memcmp(dat[i], cap.buf[c], dlen[i]))
				continue;
			used |= 1u << i;
			break;
		}
		if (i == n)
			return 0;
	}
	return used == want;
}

static void random_data(unsigned n, size_t maxlen)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		dlen[i] = rnd_below((unsigned)maxlen + 1);
		fill(dat[i], dlen[i]);
	}
}

static int feed(struct ls_fec_dec *d, const struct pkt *p, uint64_t t)
{
	return ls_fec_dec_add(d, &p->h, p->buf, p->len, t, on_deliver, &cap);
}

/* What the decoder must do with one block fed in this order (packet x < n is data x,
 * else parity row x - n): the block solves the moment it holds n distinct shards with
 * data missing; any copy of a packet seen (or rebuilt) before is a duplicate. */
struct model {
	uint64_t rec, dup;
};

static void model_block(const unsigned *order, unsigned no, unsigned n, struct model *md)
{
	uint32_t dlv = 0;
	uint64_t par = 0;
	unsigned i, cnt = 0;
	bool solved = false;

	for (i = 0; i < no; i++) {
		unsigned x = order[i];

		if (x < n) {
			if (dlv >> x & 1) {
				md->dup++;
				continue;
			}
			dlv |= 1u << x;
		} else {
			if (par >> (x - n) & 1) {
				md->dup++;
				continue;
			}
			par |= 1ull << (x - n);
		}
		cnt++;
		if (!solved && cnt >= n && dlv != kmask_test(n) && par) {
			solved = true;
			md->rec += (unsigned)__builtin_popcount(kmask_test(n) & ~dlv);
			dlv = kmask_test(n);
		}
	}
}

/* ---- the matrix ---- */

static void test_coef_matches_reference(void)
{
	unsigned k, j, i, bad = 0;

	for (k = 1; k <= LS_FEC_MAX_K; k++)
		for (j = 0; j < LS_FEC_MAX_M; j++)
			for (i = 0; i < k; i++) {
				uint8_t c = ls_fec_coef((uint8_t)k, (uint8_t)j, (uint8_t)i);

				bad += c != ref_coef(k, j, i) || c == 0;
				/* Row 0 is all ones: m = 1 is XOR. */
				bad += j == 0 && c != 1;
			}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(ls_fec_coef(0, 0, 0), 0);
	CU_ASSERT_EQUAL(ls_fec_coef(4, 0, 4), 0);
	CU_ASSERT_EQUAL(ls_fec_coef(4, 16, 0), 0);
}

/* Every choice of k rows out of [I; P] for k <= 8, m <= 4 is invertible. */
static void test_mds_exhaustive(void)
{
	uint8_t a[8 * 8];
	unsigned k, m, sel, r, c, row, checked = 0, bad = 0;

	for (k = 1; k <= 8; k++)
		for (m = 1; m <= 4; m++)
			for (sel = 0; sel < 1u << (k + m); sel++) {
				if ((unsigned)__builtin_popcount(sel) != k)
					continue;
				for (r = 0, row = 0; row < k + m; row++) {
					if (!(sel >> row & 1))
						continue;
					for (c = 0; c < k; c++)
						a[r * k + c] = row < k ? (uint8_t)(row == c)
								       : ref_coef(k, row - k, c);
					r++;
				}
				bad += !ref_invertible(a, k);
				checked++;
			}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(checked, 1988); /* sum of C(k+m, k) */
}

/* Larger geometries: [I; P] is MDS iff every square submatrix of P is invertible.
 * All 1x1 and 2x2 ones for every k <= 32 and m = 16, then random larger ones. */
static void test_mds_large(void)
{
	uint8_t a[16 * 16];
	unsigned k, j1, j2, i1, i2, n, t, bad = 0;

	for (k = 1; k <= LS_FEC_MAX_K; k++)
		for (j1 = 0; j1 < LS_FEC_MAX_M; j1++)
			for (i1 = 0; i1 < k; i1++) {
				bad += ref_coef(k, j1, i1) == 0;
				for (j2 = j1 + 1; j2 < LS_FEC_MAX_M; j2++)
					for (i2 = i1 + 1; i2 < k; i2++)
						bad += (gfm(ref_coef(k, j1, i1), ref_coef(k, j2, i2)) ^
							gfm(ref_coef(k, j1, i2), ref_coef(k, j2, i1))) == 0;
			}
	for (t = 0; t < 3000; t++) {
		uint8_t rows[16], cols[32];
		unsigned x, y;

		k = 1 + rnd_below(LS_FEC_MAX_K);
		n = 1 + rnd_below(k < LS_FEC_MAX_M ? k : LS_FEC_MAX_M);
		/* n distinct rows of 16 and n distinct columns of k */
		for (x = 0; x < LS_FEC_MAX_M; x++)
			rows[x] = (uint8_t)x;
		for (x = 0; x < k; x++)
			cols[x] = (uint8_t)x;
		for (x = 0; x < n; x++) {
			y = x + rnd_below(LS_FEC_MAX_M - x);
			uint8_t tmp = rows[x];
			rows[x] = rows[y];
			rows[y] = tmp;
			y = x + rnd_below(k - x);
			tmp = cols[x];
			cols[x] = cols[y];
			cols[y] = tmp;
		}
		for (x = 0; x < n; x++)
			for (y = 0; y < n; y++)
				a[x * n + y] = ref_coef(k, rows[x], cols[y]);
		bad += !ref_invertible(a, n);
	}
	CU_ASSERT_EQUAL(bad, 0);
}

/* The encoder's parity is the matrix product, computed here without ISA-L. */
static void test_parity_is_matrix_product(void)
{
	struct ls_fec_enc e;
	struct ls_fec_params p = { 0, 0, 16000, 0 };
	unsigned t, k, m, j, i, b, np, bad = 0;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	for (t = 0; t < 200; t++) {
		size_t L = 0;

		p.k = (uint8_t)(1 + rnd_below(LS_FEC_MAX_K));
		p.m = (uint8_t)(1 + rnd_below(LS_FEC_MAX_M));
		ls_fec_enc_set(&e, &p);
		k = p.k;
		m = p.m;
		random_data(k, 300);
		np = encode_block(&e, k, 1000);
		CU_ASSERT_EQUAL(np, k + m);
		for (i = 0; i < k; i++)
			if (dlen[i] + 2 > L)
				L = dlen[i] + 2;
		for (j = 0; j < m; j++) {
			CU_ASSERT_EQUAL(pk[k + j].len, L);
			for (b = 0; b < L; b++) {
				uint8_t v = 0;

				for (i = 0; i < k; i++) {
					uint8_t s = b == 0 ? (uint8_t)(dlen[i] >> 8)
						  : b == 1 ? (uint8_t)dlen[i]
						  : b - 2 < dlen[i] ? dat[i][b - 2] : 0;

					v ^= gfm(ref_coef(k, j, i), s);
				}
				bad += pk[k + j].buf[b] != v;
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	ls_fec_enc_free(&e);
}

/* m = 1: the parity is the XOR of the zero-padded shards. */
static void test_m1_is_xor(void)
{
	struct ls_fec_enc e;
	struct ls_fec_params p = { 5, 1, 16000, 0 };
	uint8_t x[LS_FEC_SHARD_MAX];
	unsigned i, b;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	dlen[0] = 10;
	dlen[1] = 1;
	dlen[2] = 600;
	dlen[3] = 0;
	dlen[4] = 599;
	for (i = 0; i < 5; i++)
		fill(dat[i], dlen[i]);
	CU_ASSERT_EQUAL(encode_block(&e, 5, 0), 6);
	memset(x, 0, sizeof(x));
	for (i = 0; i < 5; i++) {
		x[0] ^= (uint8_t)(dlen[i] >> 8);
		x[1] ^= (uint8_t)dlen[i];
		for (b = 0; b < dlen[i]; b++)
			x[2 + b] ^= dat[i][b];
	}
	CU_ASSERT_EQUAL(pk[5].len, 602);
	CU_ASSERT_EQUAL(memcmp(pk[5].buf, x, 602), 0);
	CU_ASSERT_EQUAL(pk[5].h.fec_index, 5);
	CU_ASSERT_EQUAL(pk[5].h.fec_k, 5);
	ls_fec_enc_free(&e);
}

/* ---- recovery ---- */

/* Every pattern of up to m lost packets, for every k <= 8 and m <= 4, fed in order and
 * in reverse (parity first): all data arrives byte-identical, each packet once. */
static void test_all_loss_patterns(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 1, 1, 16000, 0 };
	unsigned k, m, lost, order, np, i, bad = 0, patterns = 0;
	uint64_t t = 1000;
	struct model md = { 0, 0 };

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 50000), 0);
	for (k = 1; k <= 8; k++) {
		for (m = 1; m <= 4; m++) {
			p.k = (uint8_t)k;
			p.m = (uint8_t)m;
			ls_fec_enc_set(&e, &p);
			for (lost = 0; lost < 1u << (k + m); lost++) {
				if ((unsigned)__builtin_popcount(lost) > m)
					continue;
				for (order = 0; order < 2; order++) {
					unsigned seq[MAXP], no = 0;

					random_data(k, 1 + rnd_below(2) * 1200);
					np = encode_block(&e, k, t);
					cap.n = 0;
					for (i = 0; i < np; i++) {
						unsigned x = order ? np - 1 - i : i;

						if (!(lost >> x & 1)) {
							seq[no++] = x;
							feed(&d, &pk[x], t);
						}
					}
					model_block(seq, no, k, &md);
					bad += !cap_matches(k, kmask_test(k));
					patterns++;
					t += 100;
				}
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(d.recovered, md.rec);
	CU_ASSERT_EQUAL(d.duplicates, md.dup);
	CU_ASSERT_EQUAL(d.lost_blocks, 0);
	CU_ASSERT_EQUAL(d.corrupt, 0);
	CU_ASSERT_EQUAL(d.late, 0);
	CU_ASSERT_EQUAL(patterns, 6804); /* 2 orders x sum of C(k+m, <=m) */
	ls_fec_dec_expire(&d, t + 1000000);
	CU_ASSERT_EQUAL(d.lost_blocks, 0);
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* Payload sizes 1..1400 mixed in one block; the longest and another lost each time. */
static void test_mixed_sizes(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 8, 2, 16000, 0 };
	unsigned s, i, np, bad = 0, longest, other, sizes = 0;
	uint64_t t = 0;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	for (s = 1; s <= 1400; s += 8) {
		for (i = 0; i < 8; i++) {
			/* sizes spread from tiny to s + ~1400 wrapped into 1..1400 */
			dlen[i] = 1 + (s - 1 + i * 175) % 1400;
			fill(dat[i], dlen[i]);
		}
		np = encode_block(&e, 8, t);
		cap.n = 0;
		for (i = 1, longest = 0; i < 8; i++)
			if (dlen[i] > dlen[longest])
				longest = i;
		other = (longest + 1 + (s / 8) % 7) % 8;
		for (i = 0; i < np; i++)
			if (i != longest && i != other)
				feed(&d, &pk[i], t);
		bad += !cap_matches(8, 0xff);
		sizes += 8;
		t += 1000;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(sizes, 1400); /* each of 1..1400 exactly once */
	CU_ASSERT_EQUAL(d.recovered, 2 * 175);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* Block numbers wrap 65535 -> 0, with reordering across the wrap. */
static void test_block_wrap(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 4, 1, 16000, 0 };
	static struct pkt held[5];
	unsigned b, i, np;
	uint64_t t = 0;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	e.block = 65533;
	for (b = 0; b < 6; b++) {
		random_data(4, 500);
		np = encode_block(&e, 4, t);
		CU_ASSERT_EQUAL(pk[0].h.fec_block, (uint16_t)(65533 + b));
		cap.n = 0;
		if (b == 2) {
			/* block 65535: hold back its parity until block 0 is in */
			memcpy(held, pk, sizeof(held));
			for (i = 0; i < 4; i++)
				if (i != 1)
					feed(&d, &pk[i], t);
			CU_ASSERT_EQUAL(cap.n, 3);
			continue;
		}
		for (i = 0; i < np; i++)
			if (i != b % 4)
				feed(&d, &pk[i], t);
		CU_ASSERT(cap_matches(4, 0xf));
		if (b == 3) {
			CU_ASSERT_EQUAL(pk[0].h.fec_block, 0);
			cap.n = 0;
			feed(&d, &held[4], t);
			CU_ASSERT_EQUAL(cap.n, 1);
			CU_ASSERT(cap.len[0] == held[1].len &&
				  !memcmp(cap.buf[0], held[1].buf, held[1].len));
		}
		t += 1000;
	}
	CU_ASSERT_EQUAL(e.block, 3);
	CU_ASSERT_EQUAL(d.recovered, 6);
	CU_ASSERT_EQUAL(d.late, 0);
	CU_ASSERT_EQUAL(d.lost_blocks, 0);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* Parity first: the block solves as soon as k shards are in; the originals arriving
 * afterwards are duplicates. */
static void test_parity_before_data(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 4, 2, 16000, 0 };

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	random_data(4, 1400);
	CU_ASSERT_EQUAL(encode_block(&e, 4, 0), 6);
	cap.n = 0;
	CU_ASSERT_EQUAL(feed(&d, &pk[5], 0), 0);
	CU_ASSERT_EQUAL(feed(&d, &pk[4], 0), 0);
	CU_ASSERT_EQUAL(feed(&d, &pk[2], 0), 1);
	CU_ASSERT_EQUAL(feed(&d, &pk[0], 0), 3); /* itself plus 1 and 3 rebuilt */
	CU_ASSERT(cap_matches(4, 0xf));
	CU_ASSERT_EQUAL(d.recovered, 2);
	CU_ASSERT_EQUAL(feed(&d, &pk[1], 0), 0);
	CU_ASSERT_EQUAL(feed(&d, &pk[3], 0), 0);
	CU_ASSERT_EQUAL(d.duplicates, 2);
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL); /* solved: nothing held */
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* Every packet twice: each data packet delivered once, every copy counted. */
static void test_duplicates(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 6, 3, 16000, 0 };
	unsigned i, np;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	random_data(6, 800);
	np = encode_block(&e, 6, 0);
	cap.n = 0;
	for (i = 0; i < np; i++) {
		if (i == 2)
			continue;
		feed(&d, &pk[i], 0);
		feed(&d, &pk[i], 0);
	}
	CU_ASSERT(cap_matches(6, 0x3f));
	CU_ASSERT_EQUAL(d.recovered, 1);
	CU_ASSERT_EQUAL(d.duplicates, np - 1);
	/* The lost original turning up late after its recovery is not delivered again. */
	CU_ASSERT_EQUAL(feed(&d, &pk[2], 0), 0);
	CU_ASSERT_EQUAL(d.duplicates, np);
	CU_ASSERT_EQUAL(cap.n, 6);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* A block that never completes is dropped after its time, its buffers back in the
 * pool; what arrives for it afterwards is late. */
static void test_timeout(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 4, 1, 16000, 0 };
	uint64_t t = 5000000;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 30000), 0);
	random_data(4, 1000);
	CU_ASSERT_EQUAL(encode_block(&e, 4, t), 5);
	cap.n = 0;
	feed(&d, &pk[0], t);
	feed(&d, &pk[3], t + 10);
	feed(&d, &pk[4], t + 20);
	CU_ASSERT_EQUAL(cap.n, 2);
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL - 3);
	ls_fec_dec_expire(&d, t + 29999);
	CU_ASSERT_EQUAL(d.lost_blocks, 0);
	/* A clock stepping back does not age anything. */
	ls_fec_dec_expire(&d, 1);
	CU_ASSERT_EQUAL(d.lost_blocks, 0);
	/* A second block keeps the window alive. */
	random_data(4, 1000);
	CU_ASSERT_EQUAL(encode_block(&e, 4, t + 20000), 5);
	feed(&d, &pk[0], t + 20000);
	feed(&d, &pk[2], t + 20000); /* index 1 missing: a known gap */
	ls_fec_dec_expire(&d, t + 30000);
	CU_ASSERT_EQUAL(d.lost_blocks, 1);
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL - 2);
	/* Block 0's parity now is late and dropped; its missing data is late but
	 * delivered; its delivered data is still known. */
	memset(&pk[10].h, 0, sizeof(pk[10].h));
	pk[10].h.version = LS_VER_FEC;
	pk[10].h.fec_block = 0;
	pk[10].h.fec_index = 1;
	pk[10].len = 3;
	memcpy(pk[10].buf, "abc", 3);
	cap.n = 0;
	CU_ASSERT_EQUAL(feed(&d, &pk[10], t + 30001), 1);
	CU_ASSERT_EQUAL(feed(&d, &pk[10], t + 30002), 0);
	CU_ASSERT_EQUAL(d.late, 1);
	CU_ASSERT_EQUAL(d.duplicates, 1);
	pk[10].h.fec_index = 0;
	CU_ASSERT_EQUAL(feed(&d, &pk[10], t + 30003), 0);
	CU_ASSERT_EQUAL(d.duplicates, 2);
	pk[10].h.fec_index = 4;
	pk[10].h.fec_k = 4;
	CU_ASSERT_EQUAL(feed(&d, &pk[10], t + 30004), 0);
	CU_ASSERT_EQUAL(d.late, 2);
	CU_ASSERT_EQUAL(cap.n, 1);
	ls_fec_dec_expire(&d, t + 100000);
	CU_ASSERT_EQUAL(d.lost_blocks, 2); /* block 1 has its gap */
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* The window: blocks that fall out of it are retired (lost if data is missing), a
 * packet behind it is late (data delivered, parity dropped), and after a silence any
 * block number starts a fresh window (a restarted sender). */
static void test_window(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 2, 1, 16000, 0 };
	static struct pkt first[3];
	unsigned b;
	uint64_t t = 0;
	enum { NB = LS_FEC_DEC_BLOCKS + 4 }; /* blocks sent: the first falls out */

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 1000000), 0);
	for (b = 0; b < NB; b++) {
		random_data(2, 100);
		encode_block(&e, 2, t);
		if (b == 0)
			memcpy(first, pk, sizeof(first));
		cap.n = 0;
		/* block 0 loses both data packets */
		if (b != 0) {
			feed(&d, &pk[0], t);
			feed(&d, &pk[1], t);
		}
		feed(&d, &pk[2], t);
		t += 100;
		CU_ASSERT_EQUAL(d.lost_blocks, b >= LS_FEC_DEC_BLOCKS ? 1u : 0u);
	}
	cap.n = 0;
	CU_ASSERT_EQUAL(feed(&d, &first[1], t), 1);
	CU_ASSERT_EQUAL(feed(&d, &first[2], t), 0);
	CU_ASSERT_EQUAL(d.late, 2);
	CU_ASSERT_EQUAL(cap.n, 1);
	/* The window's edge: with block NB open (data 1 missing), block NB - BLOCKS,
	 * which shares its ring slot, is late and must not disturb it. */
	random_data(2, 100);
	encode_block(&e, 2, t);
	CU_ASSERT_EQUAL(pk[0].h.fec_block, NB);
	cap.n = 0;
	feed(&d, &pk[0], t);
	first[0].h.fec_block = NB - LS_FEC_DEC_BLOCKS;
	CU_ASSERT_EQUAL(feed(&d, &first[0], t), 1);
	CU_ASSERT_EQUAL(d.late, 3);
	first[0].h.fec_block = NB - LS_FEC_DEC_BLOCKS + 1; /* inside: done, a duplicate */
	CU_ASSERT_EQUAL(feed(&d, &first[0], t), 0);
	CU_ASSERT_EQUAL(d.duplicates, 1);
	CU_ASSERT_EQUAL(feed(&d, &pk[2], t), 1);
	CU_ASSERT_EQUAL(cap.n, 3);
	CU_ASSERT_EQUAL(d.recovered, 1);
	d.late = 2;
	/* silence longer than the timeout, then a sender restarted at block 0 */
	t += 2000000;
	ls_fec_enc_free(&e);
	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	random_data(2, 100);
	encode_block(&e, 2, t);
	cap.n = 0;
	feed(&d, &pk[1], t);
	feed(&d, &pk[2], t);
	CU_ASSERT(cap_matches(2, 3));
	CU_ASSERT_EQUAL(d.late, 2);
	CU_ASSERT_EQUAL(d.lost_blocks, 1);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* A straggler (docs/protocol.md 1.9): a packet rebuilt from parity that came over a
 * faster path, whose original comes over a slower one after its block was forgotten
 * (every block timed out), is still a duplicate, never delivered twice. */
static void test_straggler_after_recovery(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 2, 2, 16000, 0 };
	uint64_t t = 1000;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 100000), 0);
	random_data(2, 200);
	encode_block(&e, 2, t);
	cap.n = 0;
	/* The parity first (the fast path), with data 0: data 1 is rebuilt. */
	feed(&d, &pk[2], t);
	feed(&d, &pk[0], t);
	feed(&d, &pk[3], t);
	CU_ASSERT_EQUAL(d.recovered, 1);
	CU_ASSERT_EQUAL(cap.n, 2);
	/* 300 ms later, long after the block's 100 ms: data 1's original. */
	t += 300000;
	ls_fec_dec_expire(&d, t);
	CU_ASSERT_EQUAL(feed(&d, &pk[1], t), 0);
	CU_ASSERT_EQUAL(cap.n, 2);
	CU_ASSERT_EQUAL(d.duplicates, 1);
	/* The next block, then another straggler of the first: still known. */
	random_data(2, 200);
	encode_block(&e, 2, t);
	feed(&d, &pk[0], t);
	feed(&d, &pk[1], t);
	CU_ASSERT_EQUAL(cap.n, 4);
	t += 300000;
	CU_ASSERT_EQUAL(d.lost_blocks, 0);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* A complete block hands its buffers back at once, parity or not. */
static void test_complete_releases(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 4, 2, 16000, 0 };
	unsigned i;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	random_data(4, 300);
	encode_block(&e, 4, 0);
	cap.n = 0;
	for (i = 0; i < 3; i++)
		feed(&d, &pk[i], 0);
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL - 3);
	feed(&d, &pk[3], 0); /* the closing packet says k = 4: all in */
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL);
	CU_ASSERT_EQUAL(feed(&d, &pk[4], 0), 0);
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL);
	CU_ASSERT(cap_matches(4, 0xf));
	CU_ASSERT_EQUAL(d.recovered + d.duplicates + d.corrupt + d.late, 0);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* A short block closed by time: n < k, parity for n, k = n in the parity packets. */
static void test_short_block(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 8, 4, 16000, 0 };
	uint64_t t = 777;
	unsigned i;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	CU_ASSERT_EQUAL(ls_fec_enc_deadline(&e), 0);
	CU_ASSERT_FALSE(ls_fec_enc_due(&e, t + 100000));
	random_data(3, 1200);
	CU_ASSERT_EQUAL(encode_block(&e, 3, t), 4); /* 4 * 3 / 8 = 1.5: 1 parity, 0.5 owed */
	for (i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(pk[i].h.version, LS_VER_FEC);
		CU_ASSERT_EQUAL(pk[i].h.fec_index, i);
		CU_ASSERT_EQUAL(pk[i].h.fec_k, 0);
	}
	CU_ASSERT_EQUAL(pk[3].h.fec_k, 3);
	CU_ASSERT_EQUAL(pk[3].h.fec_index, 3);
	CU_ASSERT_EQUAL(ls_fec_enc_deadline(&e), 0);
	cap.n = 0;
	feed(&d, &pk[3], t);
	feed(&d, &pk[2], t);
	feed(&d, &pk[1], t);
	CU_ASSERT(cap_matches(3, 7));
	CU_ASSERT_EQUAL(d.recovered, 1);
	/* The next short block gets the half owed: 2 parity, and survives 2 losses. */
	random_data(3, 900);
	CU_ASSERT_EQUAL(encode_block(&e, 3, t + 100000), 5);
	cap.n = 0;
	feed(&d, &pk[3], t + 100000);
	feed(&d, &pk[1], t + 100000);
	feed(&d, &pk[4], t + 100000);
	CU_ASSERT(cap_matches(3, 7));
	CU_ASSERT_EQUAL(d.recovered, 3);
	/* the deadline of an open block */
	memset(&pk[0].h, 0, sizeof(pk[0].h));
	ls_fec_enc_add(&e, dat[0], dlen[0], 5000, &pk[0].h);
	CU_ASSERT_EQUAL(ls_fec_enc_deadline(&e), 21000);
	CU_ASSERT_EQUAL(pk[0].h.fec_block, 2);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* Short blocks average m * n / k parity, never running ahead of it; full blocks keep
 * m; and a lone packet still gets one parity. */
static void test_short_blocks_average(void)
{
	struct ls_fec_enc e;
	struct ls_fec_params p = { 2, 3, 20000, 0 };
	unsigned total = 0, i;

	random_data(2, 120);
	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	for (i = 0; i < 100; i++) {
		unsigned np = encode_block(&e, 1, 1000 + 100000 * (uint64_t)i);
		CU_ASSERT_EQUAL(np - 1, i % 2 == 0 ? 1u : 2u); /* 1.5 on average, never ahead */
		total += np - 1;
	}
	CU_ASSERT_EQUAL(total, 150);
	CU_ASSERT_EQUAL(encode_block(&e, 1, 20000000), 1 + 1); /* 1, half owed */
	CU_ASSERT_EQUAL(encode_block(&e, 2, 30000000), 2 + 3); /* a full block: all of m */
	CU_ASSERT_EQUAL(encode_block(&e, 1, 40000000), 1 + 2); /* what was owed is kept */
	ls_fec_enc_free(&e);

	/* 8:4, three-packet blocks: 12/8 = 1.5 parity, alternating 1 and 2. */
	struct ls_fec_params q = { 8, 4, 16000, 0 };
	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &q), 0);
	random_data(3, 700);
	CU_ASSERT_EQUAL(encode_block(&e, 3, 1000), 4);
	CU_ASSERT_EQUAL(encode_block(&e, 3, 100000), 5);
	CU_ASSERT_EQUAL(encode_block(&e, 3, 200000), 4);
	/* 8:1 lone packets: at least one parity each, the excess is never "owed" back. */
	struct ls_fec_params r = { 8, 1, 16000, 0 };
	ls_fec_enc_set(&e, &r);
	for (i = 0; i < 20; i++)
		CU_ASSERT_EQUAL(encode_block(&e, 1, 300000 + 100000 * (uint64_t)i), 2);
	ls_fec_enc_free(&e);
}

static void test_parity_for(void)
{
	struct ls_fec_params p = { 8, 4, 16000, 0 };

	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 8), 4);
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 9), 4);
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 3), 2);
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 2), 1);
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 1), 1);
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 0), 0);
	p.m = 2;
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 4), 1);
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 5), 2);
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 7), 2);
	p.m = 0;
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 3), 0);
	p.k = 32;
	p.m = 16;
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 1), 1);
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 31), 16);
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 30), 15);
	p.k = 0;
	CU_ASSERT_EQUAL(ls_fec_parity_for(&p, 3), 0);
}

static void test_spread_for(void)
{
	struct ls_fec_params p = { 2, 4, 20000, 2 };

	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 2), 2);
	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 1), 1); /* 2 parity, 1 held */
	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 0), 0);
	p.spread = 3;
	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 2), 3);
	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 1), 1); /* never all of them */
	p = (struct ls_fec_params){ 1, 2, 20000, 1 };
	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 1), 1);
	p = (struct ls_fec_params){ 8, 2, 20000, 1 };
	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 8), 1);
	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 3), 0); /* 1 parity: it goes at once */
	p.spread = 0;
	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 8), 0);
	p = (struct ls_fec_params){ 4, 0, 20000, 1 };
	CU_ASSERT_EQUAL(ls_fec_spread_for(&p, 4), 0);
}

/* Close and collect a block's parity into pk[from..]: the rows sent at once, then the
 * held ones once a data packet of the next block has been added (data[0] of next). */
static unsigned take_all_held(struct ls_fec_enc *e, uint64_t t, unsigned at)
{
	const uint8_t *sh;
	size_t plen;
	uint16_t bn;
	uint8_t kk, row;
	int n = ls_fec_enc_take_held(e, t, &sh, &plen, &bn, &kk, &row), i;

	for (i = 0; i < n; i++, at++) {
		memset(&pk[at].h, 0, sizeof(pk[at].h));
		pk[at].h.version = LS_VER_FEC;
		pk[at].h.fec_block = bn;
		pk[at].h.fec_index = (uint8_t)(kk + row + i);
		pk[at].h.fec_k = kk;
		pk[at].len = plen;
		memcpy(pk[at].buf, sh + (size_t)i * LS_FEC_SHARD_MAX, plen);
	}
	return (unsigned)n;
}

/* Spread: the last rows wait for the next data packet (or block_us after the close),
 * are the same rows an encoder without spread computes, and recover on their own. */
static void test_spread(void)
{
	struct ls_fec_params sp = { 2, 4, 20000, 2 }, plain = { 2, 4, 20000, 0 };
	struct ls_fec_enc e, ref;
	struct ls_fec_dec d;
	struct pkt refp[MAXP], next;
	const uint8_t *sh;
	size_t plen;
	uint16_t bn;
	uint8_t kk;
	unsigned np, i;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &sp), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&ref, &plain), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	random_data(2, 200);
	CU_ASSERT_EQUAL(encode_block(&ref, 2, 1000), 6);
	memcpy(refp, pk, sizeof(refp));

	/* Data at 1000 and 16625 us: full, so close sends rows 0 and 1 only. */
	memset(&pk[0].h, 0, sizeof(pk[0].h));
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, dat[0], dlen[0], 1000, &pk[0].h));
	CU_ASSERT_TRUE(ls_fec_enc_add(&e, dat[1], dlen[1], 16625, &pk[1].h));
	CU_ASSERT_EQUAL(ls_fec_enc_close(&e, &sh, &plen, &bn, &kk), 2);
	CU_ASSERT(plen == refp[2].len && !memcmp(sh, refp[2].buf, plen));
	CU_ASSERT(!memcmp(sh + LS_FEC_SHARD_MAX, refp[3].buf, plen));
	CU_ASSERT_EQUAL(e.held_n, 2);
	/* Held until the next data packet or 20 ms after the close. */
	CU_ASSERT_EQUAL(ls_fec_enc_deadline(&e), 36625);
	CU_ASSERT_EQUAL(take_all_held(&e, 36624, 2), 0);
	memset(&next.h, 0, sizeof(next.h));
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, dat[0], 10, 32250, &next.h));
	CU_ASSERT_EQUAL(ls_fec_enc_deadline(&e), 1); /* due now */
	CU_ASSERT_EQUAL(take_all_held(&e, 32250, 2), 2);
	for (i = 2; i < 4; i++) {
		CU_ASSERT(pk[i].h.fec_block == 0 && pk[i].h.fec_k == 2);
		CU_ASSERT_EQUAL(pk[i].h.fec_index, 2 + i);
		CU_ASSERT(pk[i].len == refp[2 + i].len &&
			  !memcmp(pk[i].buf, refp[2 + i].buf, pk[i].len));
	}
	CU_ASSERT_EQUAL(take_all_held(&e, 32250, 2), 0); /* taken once */
	CU_ASSERT_EQUAL(ls_fec_enc_deadline(&e), 32250 + 20000);
	/* The held rows alone rebuild both data packets. */
	cap.n = 0;
	CU_ASSERT_EQUAL(feed(&d, &pk[2], 40000), 0);
	CU_ASSERT_EQUAL(feed(&d, &pk[3], 40001), 2);
	CU_ASSERT(cap_matches(2, 0x3));
	CU_ASSERT_EQUAL(e.parity_sent, 4);

	/* A short block (closed by time, n = 1): 2 parity, 1 of them held, which leaves
	 * 20 ms after the block's deadline when no data follows. */
	CU_ASSERT_EQUAL(ls_fec_enc_close(&e, &sh, &plen, &bn, &kk), 1);
	CU_ASSERT(bn == 1 && kk == 1);
	CU_ASSERT_EQUAL(ls_fec_enc_deadline(&e), 32250 + 40000);
	CU_ASSERT_EQUAL(take_all_held(&e, 32250 + 39999, 0), 0);
	np = take_all_held(&e, 32250 + 40000, 0);
	CU_ASSERT_EQUAL(np, 1);
	CU_ASSERT(pk[0].h.fec_index == 2 && pk[0].h.fec_block == 1 && pk[0].h.fec_k == 1);
	CU_ASSERT_EQUAL(ls_fec_enc_deadline(&e), 0);

	/* Closing again before taking held parity drops it, counted. */
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, dat[0], 10, 100000, &next.h));
	CU_ASSERT_TRUE(ls_fec_enc_add(&e, dat[1], 10, 100001, &next.h));
	CU_ASSERT_EQUAL(ls_fec_enc_close(&e, &sh, &plen, &bn, &kk), 2);
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, dat[0], 10, 100002, &next.h));
	CU_ASSERT_TRUE(ls_fec_enc_add(&e, dat[1], 10, 100003, &next.h));
	CU_ASSERT_EQUAL(ls_fec_enc_close(&e, &sh, &plen, &bn, &kk), 2);
	CU_ASSERT_EQUAL(e.held_dropped, 2);
	CU_ASSERT_EQUAL(e.held_n, 2);

	/* Without spread nothing is ever held. */
	CU_ASSERT_EQUAL(take_all_held(&ref, UINT64_MAX, 0), 0);
	CU_ASSERT_EQUAL(ref.held_dropped, 0);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
	ls_fec_enc_free(&ref);
}

static void test_params(void)
{
	static const char *bad[] = {
		"", "8", "8:", ":2", "0:2", "33:1", "8:17", "8:2:0", "8:2:1001", "8:2:5:2",
		"8:2:5:1:1", "8:2:5:", "8:0:5:1", "1:1:5:1",
		"-1:2", "+8:2", " 8:2", "8:2 ", "8:x", "9999999999:1", "OFF", "8:2:", "8::2",
		"0x8:2", "8:-0",
	};
	struct ls_fec_params p;
	char err[160], buf[32];
	unsigned i;

	CU_ASSERT_EQUAL(ls_fec_params_parse("off", &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.k, 0);
	ls_fec_params_fmt(&p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "off");
	CU_ASSERT_EQUAL(ls_fec_params_parse("8:2", &p, err, sizeof(err)), 0);
	CU_ASSERT(p.k == 8 && p.m == 2 && p.block_us == 16000);
	ls_fec_params_fmt(&p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "8:2");
	CU_ASSERT_EQUAL(ls_fec_params_parse("32:16:1000", &p, err, sizeof(err)), 0);
	CU_ASSERT(p.k == 32 && p.m == 16 && p.block_us == 1000000);
	ls_fec_params_fmt(&p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "32:16:1000");
	CU_ASSERT_EQUAL(ls_fec_params_parse("1:0:1", &p, err, sizeof(err)), 0);
	CU_ASSERT(p.k == 1 && p.m == 0 && p.block_us == 1000);
	CU_ASSERT_EQUAL(ls_fec_params_parse("04:02:005", &p, err, sizeof(err)), 0);
	CU_ASSERT(p.k == 4 && p.m == 2 && p.block_us == 5000 && p.spread == 0);
	CU_ASSERT_EQUAL(ls_fec_params_parse("2:4:20:2", &p, err, sizeof(err)), 0);
	CU_ASSERT(p.k == 2 && p.m == 4 && p.block_us == 20000 && p.spread == 2);
	ls_fec_params_fmt(&p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "2:4:20:2");
	CU_ASSERT_EQUAL(ls_fec_params_parse("2:4:16:0", &p, err, sizeof(err)), 0);
	ls_fec_params_fmt(&p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "2:4");
	CU_ASSERT_EQUAL(ls_fec_params_parse("off", &p, err, sizeof(err)), 0);
	CU_ASSERT(p.k == 0 && p.spread == 0);
	for (i = 0; i < NELEM(bad); i++) {
		p.k = 7;
		err[0] = '\0';
		CU_ASSERT_EQUAL(ls_fec_params_parse(bad[i], &p, err, sizeof(err)), -1);
		CU_ASSERT(strlen(err) > 10);
		CU_ASSERT_EQUAL(p.k, 7); /* untouched on error */
	}
	CU_ASSERT_EQUAL(ls_fec_params_parse(NULL, &p, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(ls_fec_params_parse("0:2", &p, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "1..32") != NULL);
	CU_ASSERT_EQUAL(ls_fec_params_parse("8:20", &p, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "0..16") != NULL);
	CU_ASSERT_EQUAL(ls_fec_params_parse("8:2:2000", &p, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "1..1000") != NULL);
	CU_ASSERT_EQUAL(ls_fec_params_parse("8:2:5:2", &p, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "below M") != NULL);
}

/* Encoder edge cases: parameters change from the next block; FEC off and oversized
 * payloads go out as version 1 outside any block; numbering is per block. */
static void test_encoder_rules(void)
{
	struct ls_fec_enc e;
	struct ls_fec_params p = { 3, 1, 16000, 0 }, q = { 2, 2, 5000, 0 }, off = { 0, 0, 16000, 0 };
	struct ls_hdr h;
	uint8_t big[LS_MAX_PAYLOAD] = { 0 };
	const uint8_t *sh;
	size_t len;
	uint16_t bn;
	uint8_t k;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	memset(&h, 0, sizeof(h));
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, big, 10, 0, &h));
	ls_fec_enc_set(&e, &q); /* block open: 3:1 goes on */
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, big, LS_FEC_MAX_DATA + 1, 0, &h));
	CU_ASSERT_EQUAL(h.version, LS_VER_PLAIN);
	CU_ASSERT_EQUAL(e.n, 1);
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, big, LS_FEC_MAX_DATA, 0, &h));
	CU_ASSERT_EQUAL(h.version, LS_VER_FEC);
	CU_ASSERT_TRUE(ls_fec_enc_add(&e, big, 1, 0, &h));
	CU_ASSERT_EQUAL(h.fec_k, 3);
	CU_ASSERT_EQUAL(h.fec_index, 2);
	CU_ASSERT_EQUAL(ls_fec_enc_close(&e, &sh, &len, &bn, &k), 1);
	CU_ASSERT(len == LS_MAX_PAYLOAD && bn == 0 && k == 3);
	/* now 2:2 */
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, big, 5, 0, &h));
	CU_ASSERT_EQUAL(h.fec_block, 1);
	CU_ASSERT_TRUE(ls_fec_enc_add(&e, big, 5, 0, &h));
	CU_ASSERT_EQUAL(h.fec_k, 2);
	CU_ASSERT_EQUAL(ls_fec_enc_close(&e, &sh, &len, &bn, &k), 2);
	CU_ASSERT(len == 7 && bn == 1 && k == 2);
	CU_ASSERT_EQUAL(ls_fec_enc_close(&e, &sh, &len, &bn, &k), 0); /* empty */
	CU_ASSERT_EQUAL(e.blocks, 2);
	CU_ASSERT_EQUAL(e.parity_sent, 3);
	/* off: nothing joins a block */
	ls_fec_enc_set(&e, &off);
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, big, 5, 0, &h));
	CU_ASSERT_EQUAL(h.version, LS_VER_PLAIN);
	CU_ASSERT_EQUAL(ls_fec_enc_deadline(&e), 0);
	CU_ASSERT_EQUAL(ls_fec_enc_close(&e, &sh, &len, &bn, &k), 0);
	/* m = 0: numbered blocks, no parity */
	q.m = 0;
	ls_fec_enc_set(&e, &q);
	CU_ASSERT_FALSE(ls_fec_enc_add(&e, big, 5, 0, &h));
	CU_ASSERT(h.version == LS_VER_FEC && h.fec_block == 2);
	CU_ASSERT_EQUAL(ls_fec_enc_close(&e, &sh, &len, &bn, &k), 0);
	CU_ASSERT_EQUAL(e.block, 3);
	/* bad geometry is refused at init */
	p.k = 33;
	ls_fec_enc_free(&e);
	CU_ASSERT_EQUAL(ls_fec_enc_init(&e, &p), -1);
	ls_fec_enc_free(&e);
}

static struct pkt mk(uint16_t block, uint8_t index, uint8_t k, size_t len, uint8_t byte)
{
	struct pkt p;

	memset(&p.h, 0, sizeof(p.h));
	p.h.version = LS_VER_FEC;
	p.h.fec_block = block;
	p.h.fec_index = index;
	p.h.fec_k = k;
	p.len = len;
	memset(p.buf, byte, len);
	return p;
}

/* Hostile or inconsistent input is counted and dropped; nothing junk is delivered. */
static void test_hostile(void)
{
	struct ls_fec_dec d;
	static struct pkt x;

	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	cap.n = 0;
	/* out of range */
	x = mk(1, 32, 0, 10, 1);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	x = mk(1, 40, 33, 10, 1);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	x = mk(1, 20, 4, 10, 1); /* parity row 16 */
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	x = mk(1, 0, 0, 10, 1);
	CU_ASSERT_EQUAL(ls_fec_dec_add(&d, &x.h, x.buf, LS_MAX_PAYLOAD + 1, 0, on_deliver, &cap), 0);
	x.h.version = 3;
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	CU_ASSERT_EQUAL(d.corrupt, 5);
	CU_ASSERT_EQUAL(cap.n, 0);
	/* control packets are ignored, version 1 is passed through */
	x = mk(1, 0, 0, 10, 1);
	x.h.flags = LS_F_KEEPALIVE;
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	x.h.flags = 0;
	x.h.version = LS_VER_PLAIN;
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 1);
	CU_ASSERT_EQUAL(d.corrupt, 5);

	/* block 7: parity says k = 3; a second parity saying k = 4 is dropped, as is one of
	 * another length; a data index >= k is delivered but not used */
	cap.n = 0;
	x = mk(7, 3, 3, 100, 0xaa);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	x = mk(7, 5, 4, 100, 0xbb);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	x = mk(7, 4, 3, 99, 0xbb);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	CU_ASSERT_EQUAL(d.corrupt, 7);
	x = mk(7, 5, 0, 10, 0xcc);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 1);
	CU_ASSERT_EQUAL(d.corrupt, 8);
	/* data longer than the parity shard cannot belong to the block */
	x = mk(7, 0, 0, 99, 0xcc);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 1);
	CU_ASSERT_EQUAL(d.corrupt, 9);
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL - 1);

	/* block 8: two data then junk parity of the right length: the rebuilt shard's
	 * length is impossible, so it is counted and not delivered */
	cap.n = 0;
	x = mk(8, 0, 0, 10, 0x11);
	feed(&d, &x, 0);
	x = mk(8, 1, 0, 10, 0x22);
	feed(&d, &x, 0);
	x = mk(8, 3, 3, 12, 0xff);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	CU_ASSERT_EQUAL(cap.n, 2);
	CU_ASSERT_EQUAL(d.corrupt, 10);
	CU_ASSERT_EQUAL(d.recovered, 0);
	/* the length check's boundary: a rebuilt length of shard length - 2 is fine,
	 * one more is not (block 10 and 11: data 10 bytes, parity 12) */
	{
		unsigned bl;

		for (bl = 10; bl <= 11; bl++) {
			cap.n = 0;
			x = mk((uint16_t)bl, 0, 0, 10, 0x11);
			feed(&d, &x, 0);
			x = mk((uint16_t)bl, 1, 0, 10, 0x22);
			feed(&d, &x, 0);
			x = mk((uint16_t)bl, 3, 3, 12, 0x44);
			x.buf[0] = 0;
			x.buf[1] = (uint8_t)bl; /* XOR of the data's prefixes (10 ^ 10) is 0 */
			CU_ASSERT_EQUAL(feed(&d, &x, 0), bl == 10);
			CU_ASSERT_EQUAL(cap.n, bl == 10 ? 3u : 2u);
			if (bl == 10) {
				CU_ASSERT(cap.len[2] == 10 && cap.buf[2][0] == (0x44 ^ 0x11 ^ 0x22));
			}
		}
		CU_ASSERT_EQUAL(d.recovered, 1);
		CU_ASSERT_EQUAL(d.corrupt, 11);
		d.corrupt = 10;
	}
	/* a closing data packet contradicting known data: delivered, k not taken */
	x = mk(9, 4, 0, 10, 0x33);
	feed(&d, &x, 0);
	x = mk(9, 1, 2, 10, 0x33);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 1);
	CU_ASSERT_EQUAL(d.corrupt, 11);
	/* parity shorter than stored data is dropped */
	x = mk(9, 5, 5, 5, 0x33);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	CU_ASSERT_EQUAL(d.corrupt, 12);
	x = mk(9, 5, 5, 1, 0x33); /* parity can never be under 2 bytes */
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	CU_ASSERT_EQUAL(d.corrupt, 13);
	CU_ASSERT_EQUAL(d.late, 0);
	CU_ASSERT_EQUAL(d.lost_blocks, 0);
	ls_fec_dec_expire(&d, 1000000000);
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL);
	/* lost: 7 (data 1, 2 never came), 8 and 11 (rebuilt corrupt), 9 (a gap) */
	CU_ASSERT_EQUAL(d.lost_blocks, 4);
	ls_fec_dec_free(&d);
}

/* Pool pressure: big unsolvable blocks push the oldest out (counted lost). */
static void test_pool_pressure(void)
{
	struct ls_fec_dec d;
	static struct pkt x;
	unsigned b, i;

	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	for (b = 0; b < 4; b++) {
		for (i = 0; i < 32; i++) {
			if (i == 5)
				continue; /* a gap: known lost */
			x = mk((uint16_t)b, (uint8_t)i, 0, 200, (uint8_t)i);
			CU_ASSERT_EQUAL(feed(&d, &x, 0), 1);
		}
		CU_ASSERT_EQUAL(d.lost_blocks, b);
	}
	/* block 3 holds 31, so the pool has 17 left */
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL - 31);
	x = mk(0, 32, 32, 202, 0);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	CU_ASSERT_EQUAL(d.late, 1);
	ls_fec_dec_free(&d);
	/* a freed decoder can be freed again */
	ls_fec_dec_free(&d);

	/* The oldest goes first: blocks 10 and 11 hold 20 shards each (data 0..20 but
	 * 5), block 12 needs a ninth buffer: block 10 is retired, 11 can still solve. */
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 0), 0);
	for (b = 10; b <= 12; b++)
		for (i = 0; i < (b == 12 ? 9u : 21u); i++)
			if (i != 5 || b == 12) {
				x = mk((uint16_t)b, (uint8_t)i, 0, 50, (uint8_t)i);
				feed(&d, &x, 0);
			}
	CU_ASSERT_EQUAL(d.lost_blocks, 1);
	x = mk(11, 21, 21, 52, 0);
	cap.n = 0;
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 1);
	CU_ASSERT_EQUAL(d.recovered, 1);
	CU_ASSERT_EQUAL(d.late, 0);
	x = mk(10, 21, 21, 52, 0);
	CU_ASSERT_EQUAL(feed(&d, &x, 0), 0);
	CU_ASSERT_EQUAL(d.late, 1);
	ls_fec_dec_free(&d);
}

/* 10,000 random blocks: random k, m, short blocks, sizes, losses, order and copies;
 * exactly the solvable blocks recover, and the counters match a model. */
static void test_random_blocks(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 1, 0, 16000, 0 };
	static unsigned order[2 * MAXP];
	unsigned blk, bad = 0, solved_blocks = 0, unsolved = 0;
	uint64_t t = 1, want_lost = 0;
	struct model md = { 0, 0 };

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 50000), 0);
	e.block = 60000; /* cross the wrap too */
	for (blk = 0; blk < 10000; blk++) {
		unsigned n, np, i, no = 0, recv = 0, lossp;
		uint32_t got_data = 0, lost_data;
		uint16_t got_par = 0;
		bool solvable, k_known;
		size_t maxlen;

		p.k = (uint8_t)(1 + rnd_below(LS_FEC_MAX_K));
		p.m = (uint8_t)rnd_below(LS_FEC_MAX_M + 1);
		ls_fec_enc_set(&e, &p);
		n = rnd_below(10) < 7 ? p.k : 1 + rnd_below(p.k);
		maxlen = rnd_below(4) == 0 ? 40 : LS_FEC_MAX_DATA;
		random_data(n, maxlen);
		np = encode_block(&e, n, t);
		lossp = (unsigned[]){ 0, 5, 20, 50 }[rnd_below(4)];
		for (i = 0; i < np; i++) {
			if (rnd_below(100) < lossp)
				continue;
			order[no++] = i;
			if (i < n)
				got_data |= 1u << i;
			else
				got_par |= (uint16_t)(1u << (i - n));
			recv++;
			if (rnd_below(10) == 0)
				order[no++] = i; /* a copy */
		}
		for (i = no; i > 1; i--) {
			unsigned j = rnd_below(i), tmp = order[i - 1];

			order[i - 1] = order[j];
			order[j] = tmp;
		}
		lost_data = kmask_test(n) & ~got_data;
		solvable = !lost_data || recv >= n;
		k_known = got_par || (n == p.k && (got_data >> (n - 1) & 1));
		cap.n = 0;
		for (i = 0; i < no; i++)
			feed(&d, &pk[order[i]], t);
		model_block(order, no, n, &md);
		bad += !cap_matches(n, solvable ? kmask_test(n) : got_data);
		if (solvable) {
			solved_blocks += lost_data != 0;
		} else {
			unsigned hi = got_data ? 32u - (unsigned)__builtin_clz(got_data) : 0;

			want_lost += k_known || (got_data & kmask_test(hi)) != kmask_test(hi);
			unsolved++;
		}
		t += rnd_below(50) == 0 ? 60000 : 1000; /* sometimes a silence */
	}
	ls_fec_dec_expire(&d, t + 1000000);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(d.recovered, md.rec);
	CU_ASSERT_EQUAL(d.lost_blocks, want_lost);
	CU_ASSERT_EQUAL(d.duplicates, md.dup);
	CU_ASSERT_EQUAL(d.late, 0);
	CU_ASSERT_EQUAL(d.corrupt, 0);
	CU_ASSERT_EQUAL(d.nfree, LS_FEC_DEC_POOL);
	CU_ASSERT(solved_blocks > 1000);
	CU_ASSERT(unsolved > 500);
	printf("\n    random: %u blocks rebuilt, %u unsolvable, %llu packets recovered, "
	       "%llu lost blocks ",
	       solved_blocks, unsolved, (unsigned long long)d.recovered,
	       (unsigned long long)d.lost_blocks);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

/* A stream through one decoder with packets reordered across neighbouring blocks:
 * every payload carries its sequence number, so each delivery is identified. */
static uint8_t seen_seq[40000];

static void on_seq(void *ctx, const uint8_t *pl, size_t len)
{
	unsigned s;

	(void)ctx;
	CU_ASSERT_FATAL(len >= 4);
	s = (unsigned)pl[0] << 24 | (unsigned)pl[1] << 16 | (unsigned)pl[2] << 8 | pl[3];
	CU_ASSERT_FATAL(s < sizeof(seen_seq));
	seen_seq[s]++;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_reordered_stream(void)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct ls_fec_params p = { 8, 2, 16000, 0 };
	enum { NB = 3000, WIN = 12 };
	static struct pkt q[NB * 10];
	static unsigned char lost[NB * 10];
	static uint64_t key[NB * 10];
	unsigned nq = 0, seq = 0, b, i, bad = 0, wantmiss = 0, miss = 0, rx_data = 0;
	uint64_t t = 0;

	CU_ASSERT_EQUAL_FATAL(ls_fec_enc_init(&e, &p), 0);
	CU_ASSERT_EQUAL_FATAL(ls_fec_dec_init(&d, 1000000), 0);
	memset(seen_seq, 0, sizeof(seen_seq));
	for (b = 0; b < NB; b++) {
		unsigned first = nq, nlost = 0, np;

		for (i = 0; i < 8; i++) {
			dlen[i] = 4 + rnd_below(1200);
			fill(dat[i], dlen[i]);
			dat[i][0] = (uint8_t)(seq >> 24);
			dat[i][1] = (uint8_t)(seq >> 16);
			dat[i][2] = (uint8_t)(seq >> 8);
			dat[i][3] = (uint8_t)seq;
			seq++;
		}
		np = encode_block(&e, 8, t);
		for (i = 0; i < np; i++) {
			q[nq] = pk[i];
			lost[nq] = rnd_below(100) < 12;
			nlost += lost[nq];
			nq++;
		}
		/* with more than 2 lost, the lost data stays missing */
		if (nlost > 2)
			for (i = 0; i < 8; i++)
				wantmiss += lost[first + i];
	}
	/* reorder: packet i goes out at i + a random 0..WIN-1, so none moves further */
	for (i = 0; i < nq; i++)
		key[i] = (uint64_t)(i + rnd_below(WIN)) << 32 | i;
	qsort(key, nq, sizeof(key[0]), cmp_u64);
	for (i = 0; i < nq; i++) {
		unsigned x = (uint32_t)key[i];

		if (!lost[x]) {
			ls_fec_dec_add(&d, &q[x].h, q[x].buf, q[x].len, t, on_seq, NULL);
			rx_data += q[x].h.fec_index < 8;
		}
		t += 100;
	}
	for (i = 0; i < seq; i++) {
		bad += seen_seq[i] > 1;
		miss += seen_seq[i] == 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(miss, wantmiss);
	/* every delivery is a received original or a rebuilt one */
	CU_ASSERT_EQUAL(d.recovered + rx_data - d.duplicates, seq - miss);
	CU_ASSERT(d.recovered > 1000);
	CU_ASSERT_EQUAL(d.late, 0);
	CU_ASSERT_EQUAL(d.corrupt, 0);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
}

UNIT_MAIN("fec",
	  { "coefficients match a reference", test_coef_matches_reference },
	  { "MDS: every k x k of [I;P], k<=8 m<=4", test_mds_exhaustive },
	  { "MDS: larger geometries", test_mds_large },
	  { "parity is the matrix product", test_parity_is_matrix_product },
	  { "m = 1 is XOR", test_m1_is_xor },
	  { "every loss pattern k<=8 m<=4", test_all_loss_patterns },
	  { "mixed sizes 1..1400", test_mixed_sizes },
	  { "block number wrap", test_block_wrap },
	  { "parity before data", test_parity_before_data },
	  { "duplicates", test_duplicates },
	  { "timeout", test_timeout },
	  { "window, late, restart", test_window },
	  { "a straggler after its recovery is a duplicate", test_straggler_after_recovery },
	  { "complete block releases buffers", test_complete_releases },
	  { "short block closed by time", test_short_block },
	  { "short blocks average m*n/k parity", test_short_blocks_average },
	  { "parity_for", test_parity_for },
	  { "spread_for", test_spread_for },
	  { "spread: held parity", test_spread },
	  { "params parse and fmt", test_params },
	  { "encoder rules", test_encoder_rules },
	  { "hostile input", test_hostile },
	  { "pool pressure", test_pool_pressure },
	  { "10,000 random blocks", test_random_blocks },
	  { "reordered stream", test_reordered_stream })
