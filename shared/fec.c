/* Forward error correction (docs/protocol.md 1.2): a systematic MDS code over GF(2^8)
 * whose arithmetic runs through ISA-L. See fec.h for the matrix and the packet rules.
 *
 * Shard i of a block is the u16 big-endian payload length followed by the payload,
 * zero-padded to the block's longest shard; every parity shard has that length. The
 * length prefix is what lets a rebuilt packet regain its exact size. */
#include "fec.h"
#include "isal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS (LS_FEC_MAX_K + LS_FEC_MAX_M)
#define NO_SHARD 0xff

/* The largest ISA-L table set: 32 bytes per coefficient of an m x k matrix. */
#define TBL_MAX (32 * LS_FEC_MAX_K * LS_FEC_MAX_M)

_Static_assert(LS_FEC_DEC_POOL >= LS_FEC_MAX_K + LS_FEC_MAX_M,
	       "a block's k sources and m rebuilt shards must fit in the pool at once");
_Static_assert(LS_FEC_DEC_POOL < NO_SHARD, "pool indices are bytes");
_Static_assert((LS_FEC_DEC_BLOCKS & (LS_FEC_DEC_BLOCKS - 1)) == 0, "ring size");
_Static_assert(LS_FEC_MAX_K <= 32 && LS_FEC_MAX_M <= 16, "masks are 32 and 16 bits");
_Static_assert(LS_FEC_MAX_DATA + 2 <= LS_FEC_SHARD_MAX, "shard stride");

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t kmask(unsigned k) { return k >= 32 ? 0xffffffffu : (1u << k) - 1; }

static inline unsigned popcount(uint32_t v) { return (unsigned)__builtin_popcount(v); }

/* ---- parameters ---- */

/* Decimal digits only (no sign, space or base prefix); at most 9 digits so it cannot
 * overflow. Returns the position after the number, or NULL. */
static const char *parse_num(const char *s, unsigned long *out)
{
	unsigned long v = 0;
	int n = 0;

	while (*s >= '0' && *s <= '9') {
		if (++n > 9)
			return NULL;
		v = v * 10 + (unsigned long)(*s - '0');
		s++;
	}
	if (n == 0)
		return NULL;
	*out = v;
	return s;
}

int ls_fec_params_parse(const char *s, struct ls_fec_params *p, char *err, size_t errlen)
{
	unsigned long k = 0, m = 0, ms = LS_FEC_BLOCK_US_DEFAULT / 1000, spread = 0;
	const char *q;

	if (!s || !*s) {
		snprintf(err, errlen,
			 "empty FEC setting: expected \"off\", \"K:M\", \"K:M:MS\" or \"K:M:MS:S\"");
		return -1;
	}
	if (strcmp(s, "off") == 0) {
		memset(p, 0, sizeof(*p));
		p->block_us = LS_FEC_BLOCK_US_DEFAULT;
		return 0;
	}
	q = parse_num(s, &k);
	if (q && *q == ':')
		q = parse_num(q + 1, &m);
	else
		q = NULL;
	if (q && *q == ':')
		q = parse_num(q + 1, &ms);
	if (q && *q == ':')
		q = parse_num(q + 1, &spread);
	if (!q || *q) {
		snprintf(err, errlen,
			 "'%.32s': expected \"off\", \"K:M\", \"K:M:MS\" or \"K:M:MS:S\" (e.g. \"8:2\")",
			 s);
		return -1;
	}
	if (k < 1 || k > LS_FEC_MAX_K) {
		snprintf(err, errlen, "'%.32s': K (data packets per block) must be 1..%d", s,
			 LS_FEC_MAX_K);
		return -1;
	}
	if (m > LS_FEC_MAX_M) {
		snprintf(err, errlen, "'%.32s': M (parity packets per block) must be 0..%d", s,
			 LS_FEC_MAX_M);
		return -1;
	}
	if (ms < 1 || ms > 1000) {
		snprintf(err, errlen, "'%.32s': MS (block time in milliseconds) must be 1..1000", s);
		return -1;
	}
	if (spread && spread >= m) {
		snprintf(err, errlen, "'%.32s': S (parity held back) must be below M", s);
		return -1;
	}
	p->k = (uint8_t)k;
	p->m = (uint8_t)m;
	p->block_us = (uint32_t)ms * 1000u;
	p->spread = (uint8_t)spread;
	return 0;
}

void ls_fec_params_fmt(const struct ls_fec_params *p, char *buf, size_t len)
{
	if (p->k == 0)
		snprintf(buf, len, "off");
	else if (p->spread)
		snprintf(buf, len, "%u:%u:%u:%u", p->k, p->m,
			 (unsigned)((p->block_us + 999u) / 1000u), p->spread);
	else if (p->block_us == LS_FEC_BLOCK_US_DEFAULT)
		snprintf(buf, len, "%u:%u", p->k, p->m);
	else /* a block time set in microseconds shows rounded up to whole ms */
		snprintf(buf, len, "%u:%u:%u", p->k, p->m,
			 (unsigned)((p->block_us + 999u) / 1000u));
}

uint8_t ls_fec_parity_for(const struct ls_fec_params *p, uint8_t n)
{
	unsigned m;

	if (p->k == 0 || p->m == 0 || n == 0)
		return 0;
	if (n >= p->k)
		return p->m;
	m = ((unsigned)p->m * n + p->k - 1) / p->k;
	return (uint8_t)(m ? m : 1);
}

/* Rows held back of a block of n data packets and m parity packets. */
static uint8_t spread_of(const struct ls_fec_params *p, uint8_t n, unsigned m)
{
	unsigned s;

	if (m == 0 || p->spread == 0)
		return 0;
	s = n >= p->k ? p->spread : (unsigned)p->spread * m / p->m;
	return (uint8_t)(s < m ? s : m - 1);
}

uint8_t ls_fec_spread_for(const struct ls_fec_params *p, uint8_t n)
{
	return spread_of(p, n, ls_fec_parity_for(p, n));
}

/* Parity for the block being closed. A full block gets its m. A block closed early by
 * its time limit owes m * n / k parity packets plus what earlier short blocks of the
 * flow left owing: it gets the whole part of that, at least one, and the fraction is
 * carried on; so a flow never sends more than (k + m) / k wire packets per data packet,
 * however its blocks close (but for the one parity every block gets). The carry is in
 * 1/k packet. */
static uint8_t parity_due(struct ls_fec_enc *e, uint8_t n)
{
	const struct ls_fec_params *p = &e->p;
	int owed, m;

	if (p->k == 0 || p->m == 0 || n == 0)
		return 0;
	if (n >= p->k)
		return p->m;
	owed = p->m * n + e->parity_owed;
	m = owed / p->k;
	if (m < 1)
		m = 1; /* more than owed: nothing is carried */
	if (m > p->m)
		m = p->m;
	owed -= m * p->k;
	e->parity_owed = (int16_t)(owed > 0 ? owed : 0);
	return (uint8_t)m;
}

/* ---- the matrix ---- */

/* ISA-L, loaded by the first encoder or decoder (or coefficient) that needs it. */
static const struct ls_isal *isal;

static int isal_ready(void)
{
	if (!isal)
		isal = ls_isal();
	return isal ? 0 : -1;
}

uint8_t ls_fec_coef(uint8_t k, uint8_t j, uint8_t i)
{
	/* Row x-values k + j and column y-values i are disjoint, so neither XOR is 0. */
	if (k == 0 || k > LS_FEC_MAX_K || j >= LS_FEC_MAX_M || i >= k || isal_ready() < 0)
		return 0;
	return isal->gf_mul((uint8_t)(k ^ i), isal->gf_inv((uint8_t)((k + j) ^ i)));
}

/* ---- sender ---- */

static void params_clamp(struct ls_fec_params *p)
{
	if (p->k > LS_FEC_MAX_K)
		p->k = LS_FEC_MAX_K;
	if (p->m > LS_FEC_MAX_M)
		p->m = LS_FEC_MAX_M;
	if (p->spread && p->spread >= p->m)
		p->spread = p->m ? (uint8_t)(p->m - 1) : 0;
}

int ls_fec_enc_init(struct ls_fec_enc *e, const struct ls_fec_params *p)
{
	memset(e, 0, sizeof(*e));
	if (isal_ready() < 0) {
		errno = ENOSYS;
		return -1;
	}
	if (p->k > LS_FEC_MAX_K || p->m > LS_FEC_MAX_M || (p->spread && p->spread >= p->m)) {
		errno = EINVAL;
		return -1;
	}
	e->p = *p;
	e->next = *p;
	e->data = malloc((size_t)LS_FEC_MAX_K * LS_FEC_SHARD_MAX);
	e->parity = malloc((size_t)LS_FEC_MAX_M * LS_FEC_SHARD_MAX);
	e->gftbls = malloc(TBL_MAX);
	if (!e->data || !e->parity || !e->gftbls) {
		ls_fec_enc_free(e);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void ls_fec_enc_free(struct ls_fec_enc *e)
{
	free(e->data);
	free(e->parity);
	free(e->gftbls);
	e->data = e->parity = NULL;
	e->gftbls = NULL;
}

void ls_fec_enc_set(struct ls_fec_enc *e, const struct ls_fec_params *p)
{
	e->next = *p;
	params_clamp(&e->next);
	if (e->n == 0)
		e->p = e->next;
}

static void enc_next_block(struct ls_fec_enc *e)
{
	e->block++; /* wraps at 65536 */
	e->n = 0;
	e->maxlen = 0;
	/* The carry is counted in 1/k of the old geometry. */
	if (e->next.k != e->p.k || e->next.m != e->p.m)
		e->parity_owed = 0;
	e->p = e->next;
}

bool ls_fec_enc_add(struct ls_fec_enc *e, const uint8_t *payload, size_t len, uint64_t now_us,
		    struct ls_hdr *h)
{
	uint8_t *shard;

	/* This packet is "the next data packet" that releases parity held back. */
	if (e->held_n)
		e->held_go = true;
	/* A full block the caller did not close loses its parity rather than overflow. */
	if (e->p.k && e->n >= e->p.k)
		enc_next_block(e);
	if (e->n == 0)
		e->p = e->next;
	if (e->p.k == 0 || len > LS_FEC_MAX_DATA || !e->data) {
		h->version = LS_VER_PLAIN;
		h->fec_block = 0;
		h->fec_index = 0;
		h->fec_k = 0;
		return false;
	}
	if (e->n == 0)
		e->opened_us = now_us;
	e->last_us = now_us;
	shard = e->data + (size_t)e->n * LS_FEC_SHARD_MAX;
	put16(shard, (uint16_t)len);
	if (len)
		memcpy(shard + 2, payload, len);
	if (2 + len > e->maxlen)
		e->maxlen = (uint16_t)(2 + len);
	h->version = LS_VER_FEC;
	h->fec_block = e->block;
	h->fec_index = e->n;
	e->n++;
	h->fec_k = e->n == e->p.k ? e->p.k : 0;
	return e->n == e->p.k;
}

bool ls_fec_enc_due(const struct ls_fec_enc *e, uint64_t now_us)
{
	return e->n > 0 && now_us >= e->opened_us && now_us - e->opened_us >= e->p.block_us;
}

uint64_t ls_fec_enc_deadline(const struct ls_fec_enc *e)
{
	uint64_t t = 0, h;

	if (e->n) {
		t = e->opened_us + e->p.block_us;
		if (t == 0)
			t = 1; /* 0 means "nothing pending" */
	}
	if (e->held_n) {
		h = e->held_go ? 1 : e->held_due_us;
		if (t == 0 || h < t)
			t = h;
	}
	return t;
}

/* ISA-L tables for the parity rows of a block of n: kept for the last (n, m) used, so
 * full blocks, the common case, never rebuild them. */
static void enc_tables(struct ls_fec_enc *e, uint8_t n, uint8_t m)
{
	unsigned char a[LS_FEC_MAX_M * LS_FEC_MAX_K];
	unsigned j, i;

	if (e->tbl_n == n && e->tbl_m == m)
		return;
	for (j = 0; j < m; j++)
		for (i = 0; i < n; i++)
			a[j * n + i] = ls_fec_coef(n, (uint8_t)j, (uint8_t)i);
	isal->ec_init_tables(n, m, a, e->gftbls);
	e->tbl_n = n;
	e->tbl_m = m;
}

int ls_fec_enc_close(struct ls_fec_enc *e, const uint8_t **shards, size_t *len,
		     uint16_t *block, uint8_t *k)
{
	unsigned char *src[LS_FEC_MAX_K], *dst[LS_FEC_MAX_M];
	uint8_t n = e->n, m, held;
	unsigned i;
	size_t L = e->maxlen;
	uint64_t t;

	*shards = e->parity;
	*len = 0;
	*block = e->block;
	*k = n;
	if (n == 0)
		return 0;
	if (e->held_n) { /* the caller closed before taking them: they are overwritten */
		e->held_dropped += e->held_n;
		e->held_n = 0;
	}
	m = parity_due(e, n);
	if (m) {
		for (i = 0; i < n; i++) {
			uint8_t *s = e->data + (size_t)i * LS_FEC_SHARD_MAX;
			size_t sl = 2u + get16(s);

			src[i] = s;
			memset(s + sl, 0, L - sl); /* zero padding is part of the code */
		}
		for (i = 0; i < m; i++)
			dst[i] = e->parity + (size_t)i * LS_FEC_SHARD_MAX;
		enc_tables(e, n, m);
		isal->ec_encode_data((int)L, n, m, e->gftbls, src, dst);
		*len = L;
	}
	e->parity_sent += m;
	e->blocks++;
	held = spread_of(&e->p, n, m);
	if (held) {
		e->held_n = held;
		e->held_row = (uint8_t)(m - held);
		e->held_k = n;
		e->held_block = e->block;
		e->held_len = (uint16_t)L;
		e->held_go = false;
		/* block_us after the close: the last packet's time for a full block, the
		 * block's deadline for one closed by time. */
		t = n >= e->p.k ? e->last_us : e->opened_us + e->p.block_us;
		e->held_due_us = t + e->p.block_us;
		if (e->held_due_us < t || e->held_due_us == 0)
			e->held_due_us = UINT64_MAX;
	}
	enc_next_block(e);
	return m - held;
}

int ls_fec_enc_take_held(struct ls_fec_enc *e, uint64_t now_us, const uint8_t **shards,
			 size_t *len, uint16_t *block, uint8_t *k, uint8_t *row)
{
	int n = e->held_n;

	*shards = e->parity + (size_t)e->held_row * LS_FEC_SHARD_MAX;
	*len = e->held_len;
	*block = e->held_block;
	*k = e->held_k;
	*row = e->held_row;
	if (n == 0 || (!e->held_go && now_us < e->held_due_us))
		return 0;
	e->held_n = 0;
	e->held_go = false;
	return n;
}

/* ---- receiver ---- */

enum { SLOT_FREE, SLOT_LIVE, SLOT_GONE };

/* One block being received. LIVE: collecting shards. GONE: forgotten (timed out or
 * evicted) but its number and delivered set are kept while it stays in the window,
 * so a late copy of a delivered packet is still recognised. */
struct ls_fec_dec_block {
	uint8_t state;
	bool done;          /* finished (all data in, or solved): holds no shards */
	uint16_t block;
	uint8_t k;          /* 0 until a parity packet or the closing data packet says */
	uint16_t plen;      /* the block's parity shard length, 0 until one arrives */
	uint16_t maxdata;   /* longest data shard stored */
	uint32_t delivered; /* data indices delivered (received or rebuilt) */
	uint32_t have_data; /* data shards stored */
	uint16_t have_par;  /* parity rows stored */
	uint16_t par_seen;  /* parity rows received (duplicate detection) */
	uint64_t first_us;
	uint8_t shard[MAX_ROWS]; /* pool index per data index, then per parity row */
};

/* Decode tables by loss pattern. Tables vary from 32 bytes (k = 1, one loss) to 16 KiB
 * (32 data, 16 losses), so they live in one arena used as a ring: a new entry takes
 * the next span and invalidates whatever older entries overlapped it. Oldest-first
 * replacement is enough since a flow's loss patterns repeat over short spans. */
struct dec_cache {
	uint64_t key[LS_FEC_DEC_CACHE]; /* 0 = empty; a key always has k >= 1 */
	uint16_t off[LS_FEC_DEC_CACHE];
	uint16_t len[LS_FEC_DEC_CACHE];
	unsigned next;                  /* entry replaced next */
	unsigned head;                  /* arena position of the next table */
	unsigned char arena[TBL_MAX];
};

_Static_assert(TBL_MAX <= 65535, "arena offsets are u16");

static inline uint8_t *pool_at(const struct ls_fec_dec *d, uint8_t i)
{
	return d->pool + (size_t)i * LS_FEC_SHARD_MAX;
}

int ls_fec_dec_init(struct ls_fec_dec *d, uint32_t timeout_us)
{
	unsigned i;

	memset(d, 0, sizeof(*d));
	if (isal_ready() < 0) {
		errno = ENOSYS;
		return -1;
	}
	d->timeout_us = timeout_us ? timeout_us : LS_FEC_DEC_TIMEOUT_DEFAULT;
	d->blocks = calloc(LS_FEC_DEC_BLOCKS, sizeof(*d->blocks));
	/* The pool and the cache's arena are left untouched (malloc, not calloc), so a
	 * decoder that never sees loss costs little resident memory. */
	d->cache = malloc(sizeof(struct dec_cache));
	d->pool = malloc((size_t)LS_FEC_DEC_POOL * LS_FEC_SHARD_MAX);
	if (!d->blocks || !d->cache || !d->pool) {
		ls_fec_dec_free(d);
		errno = ENOMEM;
		return -1;
	}
	memset(d->cache, 0, offsetof(struct dec_cache, arena));
	for (i = 0; i < LS_FEC_DEC_POOL; i++)
		d->free_shards[i] = (uint8_t)i;
	d->nfree = LS_FEC_DEC_POOL;
	return 0;
}

void ls_fec_dec_free(struct ls_fec_dec *d)
{
	free(d->blocks);
	free(d->cache);
	free(d->pool);
	d->blocks = NULL;
	d->cache = NULL;
	d->pool = NULL;
	d->nfree = 0;
}

static void release_shards(struct ls_fec_dec *d, struct ls_fec_dec_block *b)
{
	unsigned i;

	for (i = 0; i < MAX_ROWS; i++) {
		if (b->shard[i] != NO_SHARD) {
			d->free_shards[d->nfree++] = b->shard[i];
			b->shard[i] = NO_SHARD;
		}
	}
	b->have_data = 0;
	b->have_par = 0;
}

/* Data known missing: some index below k (or, with k unknown, below the highest index
 * seen) never arrived and was not rebuilt. A block whose closing packet and parity all
 * vanished may hide lost tail packets; those cannot be counted. */
static bool data_missing(const struct ls_fec_dec_block *b)
{
	uint32_t want;

	if (b->k)
		want = kmask(b->k);
	else if (b->delivered)
		want = kmask(32u - (unsigned)__builtin_clz(b->delivered));
	else
		return false;
	return (b->delivered & want) != want;
}

/* Forget a LIVE block: count it lost if data is missing (never arrived, or rebuilt
 * corrupt), free its shards, and keep its delivered set (GONE). */
static void retire(struct ls_fec_dec *d, struct ls_fec_dec_block *b)
{
	if (b->state != SLOT_LIVE)
		return;
	if (data_missing(b))
		d->lost_blocks++;
	release_shards(d, b);
	b->state = SLOT_GONE;
}

static void slot_open(struct ls_fec_dec_block *b, uint16_t block, uint64_t now_us)
{
	memset(b, 0, sizeof(*b));
	memset(b->shard, NO_SHARD, sizeof(b->shard));
	b->state = SLOT_LIVE;
	b->block = block;
	b->first_us = now_us;
}

void ls_fec_dec_expire(struct ls_fec_dec *d, uint64_t now_us)
{
	unsigned i;

	if (!d->blocks)
		return;
	for (i = 0; i < LS_FEC_DEC_BLOCKS; i++) {
		struct ls_fec_dec_block *b = &d->blocks[i];

		/* A clock stepping back never ages a block. */
		if (b->state == SLOT_LIVE && now_us >= b->first_us &&
		    now_us - b->first_us >= d->timeout_us)
			retire(d, b);
	}
}

/* How far block a is behind block b, in serial-number arithmetic. */
static inline uint16_t behind(uint16_t a, uint16_t b) { return (uint16_t)(b - a); }

/* The tracked block for number bn, opening it if it is new; NULL when it is behind
 * the window (late). The ring holds the window [newest - BLOCKS + 1, newest]: block bn
 * lives in slot bn % BLOCKS, and moving the window forward retires what falls out. */
static struct ls_fec_dec_block *find_block(struct ls_fec_dec *d, uint16_t bn, uint64_t now_us)
{
	struct ls_fec_dec_block *b;
	bool live = false;
	unsigned i;
	uint16_t back;

	ls_fec_dec_expire(d, now_us);
	for (i = 0; i < LS_FEC_DEC_BLOCKS; i++)
		live |= d->blocks[i].state == SLOT_LIVE;
	if (!d->started ||
	    (!live && behind(bn, d->newest) >= LS_FEC_DEC_BLOCKS &&
	     behind(d->newest, bn) >= LS_FEC_DEC_BLOCKS)) {
		/* Nothing in flight and a number far from the window: start a fresh window
		 * here (a restarted sender's numbers must not be taken for late ones). A
		 * number near the window is a straggler, or the next block: what the window
		 * remembers stays. */
		for (i = 0; i < LS_FEC_DEC_BLOCKS; i++)
			d->blocks[i].state = SLOT_FREE;
		d->started = true;
		d->newest = bn;
	}
	back = behind(bn, d->newest);
	if (back >= 0x8000) {
		/* Ahead: the window moves; blocks falling out of it are retired. */
		for (i = 0; i < LS_FEC_DEC_BLOCKS; i++) {
			b = &d->blocks[i];
			if (b->state != SLOT_FREE && behind(b->block, bn) >= LS_FEC_DEC_BLOCKS) {
				retire(d, b);
				b->state = SLOT_FREE;
			}
		}
		d->newest = bn;
	} else if (back >= LS_FEC_DEC_BLOCKS) {
		return NULL;
	}
	b = &d->blocks[bn & (LS_FEC_DEC_BLOCKS - 1)];
	if (b->state != SLOT_FREE && b->block != bn) {
		/* Cannot happen while the window invariant holds; never reuse blindly. */
		retire(d, b);
		b->state = SLOT_FREE;
	}
	if (b->state == SLOT_FREE)
		slot_open(b, bn, now_us);
	return b;
}

/* A free shard buffer; under pressure the oldest other block holding shards is
 * retired. Returns NO_SHARD only if nothing else can be freed. */
static uint8_t pool_get(struct ls_fec_dec *d, const struct ls_fec_dec_block *keep)
{
	while (d->nfree == 0) {
		struct ls_fec_dec_block *old = NULL;
		unsigned i;

		for (i = 0; i < LS_FEC_DEC_BLOCKS; i++) {
			struct ls_fec_dec_block *b = &d->blocks[i];

			if (b == keep || b->state != SLOT_LIVE || !(b->have_data | b->have_par))
				continue;
			if (!old || behind(b->block, d->newest) > behind(old->block, d->newest))
				old = b;
		}
		if (!old)
			return NO_SHARD;
		retire(d, old);
	}
	return d->free_shards[--d->nfree];
}

static bool k_consistent(const struct ls_fec_dec_block *b, uint8_t k)
{
	if (b->k)
		return b->k == k;
	/* A data index at or past k already seen contradicts it. */
	return (b->delivered & ~kmask(k)) == 0;
}

/* Decode tables for a pattern: which data are missing (miss) and which parity rows
 * (rows) replace them. Output s rebuilds the s-th missing index from the sources in
 * order: the present data ascending, then the parity rows ascending. With A the
 * parity rows restricted to the missing columns and B to the present ones, the rows
 * say p = A d_miss + B d_have, so d_miss = A^-1 p + A^-1 B d_have (minus is plus). */
static unsigned char *dec_tables(struct ls_fec_dec *d, uint8_t k, uint32_t miss, uint16_t rows)
{
	struct dec_cache *c = d->cache;
	uint64_t key = (uint64_t)k | (uint64_t)miss << 6 | (uint64_t)rows << 38;
	unsigned char a[LS_FEC_MAX_M * LS_FEC_MAX_M], ainv[LS_FEC_MAX_M * LS_FEC_MAX_M];
	unsigned char r[LS_FEC_MAX_M * LS_FEC_MAX_K];
	uint8_t mi[LS_FEC_MAX_M], ji[LS_FEC_MAX_M], di[LS_FEC_MAX_K];
	unsigned nm = 0, nj = 0, nd = 0, i, s, t, need, e;

	for (e = 0; e < LS_FEC_DEC_CACHE; e++)
		if (c->key[e] == key)
			return c->arena + c->off[e];

	for (i = 0; i < k; i++) {
		if (miss >> i & 1)
			mi[nm++] = (uint8_t)i;
		else
			di[nd++] = (uint8_t)i;
	}
	for (i = 0; i < LS_FEC_MAX_M; i++)
		if (rows >> i & 1)
			ji[nj++] = (uint8_t)i;
	if (nm != nj || nm == 0 || nm > LS_FEC_MAX_M)
		return NULL;
	for (t = 0; t < nm; t++)
		for (s = 0; s < nm; s++)
			a[t * nm + s] = ls_fec_coef(k, ji[t], mi[s]);
	if (isal->gf_invert_matrix(a, ainv, (int)nm) != 0)
		return NULL; /* impossible for this matrix; refuse rather than emit junk */
	for (s = 0; s < nm; s++) {
		for (i = 0; i < nd; i++) {
			unsigned char v = 0;

			for (t = 0; t < nm; t++)
				v ^= isal->gf_mul(ainv[s * nm + t], ls_fec_coef(k, ji[t], di[i]));
			r[s * k + i] = v;
		}
		for (t = 0; t < nm; t++)
			r[s * k + nd + t] = ainv[s * nm + t];
	}

	need = 32u * k * nm;
	if (c->head + need > sizeof(c->arena))
		c->head = 0;
	for (e = 0; e < LS_FEC_DEC_CACHE; e++)
		if (c->key[e] && c->off[e] < c->head + need && c->off[e] + c->len[e] > c->head)
			c->key[e] = 0;
	e = c->next;
	c->next = (c->next + 1) % LS_FEC_DEC_CACHE;
	c->key[e] = key;
	c->off[e] = (uint16_t)c->head;
	c->len[e] = (uint16_t)need;
	c->head += need;
	isal->ec_init_tables(k, (int)nm, r, c->arena + c->off[e]);
	return c->arena + c->off[e];
}

/* The block has k distinct shards but some data missing: rebuild and deliver the
 * missing data, then let the block go (done). */
static int solve(struct ls_fec_dec *d, struct ls_fec_dec_block *b, ls_fec_deliver_fn deliver,
		 void *ctx)
{
	unsigned char *src[LS_FEC_MAX_K], *dst[LS_FEC_MAX_M];
	uint8_t out[LS_FEC_MAX_M], mi[LS_FEC_MAX_M];
	unsigned char *tbl;
	uint32_t miss = kmask(b->k) & ~b->have_data;
	uint16_t rows = 0;
	unsigned nm = popcount(miss), ns = 0, nr = 0, i, got = 0;
	size_t L = b->plen;
	int n = 0;

	for (i = 0; i < LS_FEC_MAX_M && nr < nm; i++) {
		if (b->have_par >> i & 1) {
			rows |= (uint16_t)(1u << i);
			nr++;
		}
	}
	tbl = nr == nm ? dec_tables(d, b->k, miss, rows) : NULL;
	if (!tbl) {
		d->corrupt++;
		goto out;
	}
	for (i = 0; i < b->k; i++) {
		uint8_t *s;
		size_t sl;

		if (miss >> i & 1) {
			mi[got++] = (uint8_t)i;
			continue;
		}
		s = pool_at(d, b->shard[i]);
		sl = 2u + get16(s);
		memset(s + sl, 0, L - sl); /* stored unpadded; maxdata <= plen was checked */
		src[ns++] = s;
	}
	for (i = 0; i < LS_FEC_MAX_M; i++)
		if (rows >> i & 1)
			src[ns++] = pool_at(d, b->shard[LS_FEC_MAX_K + i]);
	for (i = 0; i < nm; i++) {
		out[i] = pool_get(d, b);
		if (out[i] == NO_SHARD) { /* the static assert on the pool size rules it out */
			while (i--)
				d->free_shards[d->nfree++] = out[i];
			d->corrupt++;
			goto out;
		}
		dst[i] = pool_at(d, out[i]);
	}
	isal->ec_encode_data((int)L, b->k, (int)nm, tbl, src, dst);
	for (i = 0; i < nm; i++) {
		uint16_t pl = get16(dst[i]);

		if (pl > L - 2) {
			d->corrupt++; /* the shards did not belong together */
		} else if (!(b->delivered >> mi[i] & 1)) {
			deliver(ctx, dst[i] + 2, pl);
			b->delivered |= 1u << mi[i];
			d->recovered++;
			n++;
		}
	}
	for (i = 0; i < nm; i++)
		d->free_shards[d->nfree++] = out[i];
out:
	b->done = true;
	release_shards(d, b);
	return n;
}

/* After a change to a block whose k is known: finish it if all data is in, or solve it
 * if it holds k distinct shards. */
static int progress(struct ls_fec_dec *d, struct ls_fec_dec_block *b, ls_fec_deliver_fn deliver,
		    void *ctx)
{
	uint32_t full;

	if (!b->k || b->done)
		return 0;
	full = kmask(b->k);
	if ((b->delivered & full) == full) {
		b->done = true;
		release_shards(d, b);
		return 0;
	}
	if (popcount(b->have_data) + popcount(b->have_par) < b->k)
		return 0;
	return solve(d, b, deliver, ctx);
}

static int add_data(struct ls_fec_dec *d, struct ls_fec_dec_block *b, uint8_t idx, uint8_t k,
		    const uint8_t *payload, size_t len, ls_fec_deliver_fn deliver, void *ctx)
{
	uint8_t slot;
	uint8_t *s;

	if (b->delivered >> idx & 1) {
		d->duplicates++;
		return 0;
	}
	/* Data goes out first whatever its FEC fields say: only recovery trusts them. */
	deliver(ctx, payload, len);
	b->delivered |= 1u << idx;
	if (b->done) {
		if (idx >= b->k)
			d->corrupt++;
		return 1;
	}
	if ((k && !k_consistent(b, k)) || (b->k && idx >= b->k) || len > LS_FEC_MAX_DATA ||
	    (b->plen && 2 + len > b->plen)) {
		d->corrupt++;
		return 1;
	}
	if (k)
		b->k = k;
	slot = pool_get(d, b);
	if (slot != NO_SHARD) {
		s = pool_at(d, slot);
		put16(s, (uint16_t)len);
		if (len)
			memcpy(s + 2, payload, len);
		b->shard[idx] = slot;
		b->have_data |= 1u << idx;
		if (2 + len > b->maxdata)
			b->maxdata = (uint16_t)(2 + len);
	}
	return 1 + progress(d, b, deliver, ctx);
}

static int add_parity(struct ls_fec_dec *d, struct ls_fec_dec_block *b, uint8_t row, uint8_t k,
		      const uint8_t *payload, size_t len, ls_fec_deliver_fn deliver, void *ctx)
{
	uint16_t bit = (uint16_t)(1u << row);
	uint8_t slot;

	if (b->par_seen & bit) {
		d->duplicates++;
		return 0;
	}
	if (b->done) {
		b->par_seen |= bit;
		return 0;
	}
	/* Parity shards of one block all have the block's longest shard length. A
	 * rejected one is not marked seen: the genuine row may still come. */
	if (!k_consistent(b, k) || len < 2 || (b->plen ? len != b->plen : len < b->maxdata)) {
		d->corrupt++;
		return 0;
	}
	b->par_seen |= bit;
	b->k = k;
	b->plen = (uint16_t)len;
	slot = pool_get(d, b);
	if (slot != NO_SHARD) {
		memcpy(pool_at(d, slot), payload, len);
		b->shard[LS_FEC_MAX_K + row] = slot;
		b->have_par |= bit;
	}
	return progress(d, b, deliver, ctx);
}

int ls_fec_dec_add(struct ls_fec_dec *d, const struct ls_hdr *h, const uint8_t *payload,
		   size_t len, uint64_t now_us, ls_fec_deliver_fn deliver, void *ctx)
{
	struct ls_fec_dec_block *b;
	uint8_t k = h->fec_k, idx = h->fec_index;
	bool parity = k != 0 && idx >= k;

	if (h->flags & (LS_F_KEEPALIVE | LS_F_FIN))
		return 0;
	if (len > LS_MAX_PAYLOAD || (len && !payload) || !d->blocks) {
		d->corrupt++;
		return 0;
	}
	if (h->version == LS_VER_PLAIN) {
		deliver(ctx, payload, len);
		return 1;
	}
	if (h->version != LS_VER_FEC || k > LS_FEC_MAX_K ||
	    (parity ? idx - k >= LS_FEC_MAX_M : idx >= LS_FEC_MAX_K)) {
		d->corrupt++;
		return 0;
	}
	b = find_block(d, h->fec_block, now_us);
	if (!b || b->state == SLOT_GONE) {
		if (parity) {
			d->late++;
			return 0;
		}
		if (b && (b->delivered >> idx & 1)) {
			d->duplicates++;
			return 0;
		}
		d->late++;
		if (b)
			b->delivered |= 1u << idx;
		deliver(ctx, payload, len);
		return 1;
	}
	if (parity)
		return add_parity(d, b, (uint8_t)(idx - k), k, payload, len, deliver, ctx);
	return add_data(d, b, idx, k, payload, len, deliver, ctx);
}

/* ---- heap-allocated coders ---- */

struct ls_fec_enc *ls_fec_enc_new(const struct ls_fec_params *p)
{
	struct ls_fec_enc *e = malloc(sizeof(*e));

	if (e && ls_fec_enc_init(e, p) != 0) {
		free(e);
		e = NULL;
	}
	return e;
}

void ls_fec_enc_delete(struct ls_fec_enc *e)
{
	if (!e)
		return;
	ls_fec_enc_free(e);
	free(e);
}

struct ls_fec_dec *ls_fec_dec_new(uint32_t timeout_us)
{
	struct ls_fec_dec *d = malloc(sizeof(*d));

	if (d && ls_fec_dec_init(d, timeout_us) != 0) {
		free(d);
		d = NULL;
	}
	return d;
}

void ls_fec_dec_delete(struct ls_fec_dec *d)
{
	if (!d)
		return;
	ls_fec_dec_free(d);
	free(d);
}
