/* FEC codec micro-benchmark: nanoseconds per block to encode (k ls_fec_enc_add calls
 * and ls_fec_enc_close) and to receive, for 4:2 and 8:2 with 1,200-byte payloads.
 * Receiving is measured lossless (every data packet, then parity ignored as the block
 * is complete), with one data packet lost, and with m data packets lost (recover_ns,
 * the worst solvable case: every parity shard is used). Each figure is the median over
 * many batches of the per-block mean, so a scheduler hiccup does not move it.
 *
 *   fec_speed [BATCHES]     one line per geometry, key=value */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fec.h"

#define PAYLOAD 1200
#define PER_BATCH 32 /* blocks timed together: the clock's cost stays negligible */
#define VARIANTS 16  /* distinct blocks cycled through, each with its own loss pattern */

struct pkt {
	struct ls_hdr h;
	size_t len;
	uint8_t buf[LS_FEC_SHARD_MAX];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static size_t sink_bytes;

static void sink(void *ctx, const uint8_t *p, size_t len)
{
	(void)ctx;
	sink_bytes += len + p[0];
}

static void die(const char *what)
{
	fprintf(stderr, "fec_speed: %s failed\n", what);
	exit(1);
}

/* Encode VARIANTS blocks of k payloads into pk[v][0..k+m-1]. */
static void make_blocks(const struct ls_fec_params *p, struct pkt (*pk)[LS_FEC_MAX_K + LS_FEC_MAX_M])
{
	struct ls_fec_enc e;
	uint8_t data[PAYLOAD];
	unsigned v, i;

	if (ls_fec_enc_init(&e, p))
		die("ls_fec_enc_init");
	for (v = 0; v < VARIANTS; v++) {
		const uint8_t *sh;
		size_t plen;
		uint16_t bn;
		uint8_t k;
		int m;

		for (i = 0; i < p->k; i++) {
			memset(data, (int)(v * 31 + i), sizeof(data));
			memset(&pk[v][i].h, 0, sizeof(pk[v][i].h));
			ls_fec_enc_add(&e, data, PAYLOAD, 0, &pk[v][i].h);
			pk[v][i].len = PAYLOAD;
			memcpy(pk[v][i].buf, data, PAYLOAD);
		}
		m = ls_fec_enc_close(&e, &sh, &plen, &bn, &k);
		for (i = 0; i < (unsigned)m; i++) {
			struct pkt *q = &pk[v][p->k + i];

			memset(&q->h, 0, sizeof(q->h));
			q->h.version = LS_VER_FEC;
			q->h.fec_block = bn;
			q->h.fec_index = (uint8_t)(k + i);
			q->h.fec_k = k;
			q->len = plen;
			memcpy(q->buf, sh + i * LS_FEC_SHARD_MAX, plen);
		}
	}
	ls_fec_enc_free(&e);
}

static double bench_encode(const struct ls_fec_params *p, unsigned batches, double *v)
{
	struct ls_fec_enc e;
	uint8_t data[PAYLOAD];
	unsigned b, n, i;

	memset(data, 0x5a, sizeof(data));
	if (ls_fec_enc_init(&e, p))
		die("ls_fec_enc_init");
	for (b = 0; b < batches; b++) {
		uint64_t t0 = now_ns();

		for (n = 0; n < PER_BATCH; n++) {
			struct ls_hdr h;
			const uint8_t *sh;
			size_t plen;
			uint16_t bn;
			uint8_t k;

			for (i = 0; i < p->k; i++)
				ls_fec_enc_add(&e, data, PAYLOAD, 0, &h);
			ls_fec_enc_close(&e, &sh, &plen, &bn, &k);
			sink_bytes += sh[plen - 1];
		}
		v[b] = (double)(now_ns() - t0) / PER_BATCH;
	}
	ls_fec_enc_free(&e);
	return median(v, batches);
}

/* Feed blocks losing `lose` (at most 2) data packets, the others and all parity in
 * order; which ones varies per variant. */
static double bench_decode(const struct ls_fec_params *p, unsigned lose, unsigned batches,
			   double *v, struct pkt (*pk)[LS_FEC_MAX_K + LS_FEC_MAX_M])
{
	struct ls_fec_dec d;
	uint32_t lost[VARIANTS];
	uint16_t block = 0;
	uint64_t t = 1;
	unsigned b, n, i, x, want = 0;

	/* Variant x loses data x % k and, for a second loss, the one `step` further on
	 * (step never a multiple of k, so the two differ): varied patterns. */
	for (x = 0; x < VARIANTS; x++) {
		unsigned step = 1 + (x / p->k) % (p->k - 1u);

		lost[x] = 0;
		for (i = 0; i < lose; i++)
			lost[x] |= 1u << ((x + i * step) % p->k);
	}
	if (ls_fec_dec_init(&d, 1000000))
		die("ls_fec_dec_init");
	for (b = 0; b < batches; b++) {
		uint64_t t0 = now_ns();

		for (n = 0; n < PER_BATCH; n++, block++, t += 10) {
			struct pkt (*q)[LS_FEC_MAX_K + LS_FEC_MAX_M] = &pk[block % VARIANTS];

			for (i = 0; i < (unsigned)(p->k + p->m); i++) {
				if (i < p->k && (lost[block % VARIANTS] >> i & 1))
					continue;
				(*q)[i].h.fec_block = block;
				ls_fec_dec_add(&d, &(*q)[i].h, (*q)[i].buf, (*q)[i].len, t, sink, NULL);
			}
		}
		v[b] = (double)(now_ns() - t0) / PER_BATCH;
		want += PER_BATCH * lose;
	}
	if (d.recovered != want || d.lost_blocks || d.corrupt)
		die("recovery check");
	ls_fec_dec_free(&d);
	return median(v, batches);
}

int main(int argc, char **argv)
{
	static const struct ls_fec_params geo[] = { { 4, 2, 16000, 0 }, { 8, 2, 16000, 0 } };
	static struct pkt pk[VARIANTS][LS_FEC_MAX_K + LS_FEC_MAX_M];
	unsigned batches = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 2001, g;
	double *v;

	if (batches < 1 || batches > 1000000)
		batches = 2001;
	v = malloc(batches * sizeof(*v));
	if (!v)
		die("malloc");
	for (g = 0; g < sizeof(geo) / sizeof(geo[0]); g++) {
		const struct ls_fec_params *p = &geo[g];
		double enc, ok, one, rec;

		make_blocks(p, pk);
		(void)bench_encode(p, batches / 4 + 1, v); /* warm-up */
		enc = bench_encode(p, batches, v);
		ok = bench_decode(p, 0, batches, v, pk);
		one = bench_decode(p, 1, batches, v, pk);
		rec = bench_decode(p, p->m, batches, v, pk);
		printf("fec=%u:%u bytes=%d encode_ns=%.0f recover_ns=%.0f lossless_ns=%.0f "
		       "recover1_ns=%.0f\n",
		       p->k, p->m, PAYLOAD, enc, rec, ok, one);
	}
	free(v);
	return sink_bytes == 0; /* never: keeps the work observable */
}
