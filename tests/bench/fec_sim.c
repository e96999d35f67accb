/* A fast simulation of the FEC benchmark: the real encoder, decoder and adaptive
 * policy (shared/fec*.c), a game sending PPS packets per second, an echo, and the
 * loss process of ls-netsim (independent loss and Gilbert-Elliott bursts, the same
 * chain and the same seeded generator), in simulated time with no other delay. Each
 * direction's receiver reports, every REPORT ms, the packets it expected and received
 * and its mean loss burst, as keepalives do; with --fec auto each sender feeds those
 * to its own ls_fec_auto. It runs 20,000 packets in well under a second, so the
 * benchmark prints it beside the measurement as a cross-check of the model.
 *
 *   fec_sim --fec off|auto|K:M[:MS[:S]] [--loss P] [--burst LEN] [--packets N]
 *           [--warmup S] [--pps R] [--jitter J] [--size B] [--seed N] [--report-ms MS]
 *
 * --jitter J spaces the game's packets 1/PPS apart times a uniform factor in
 * [1 - J, 1 + J]. --report-ms defaults to the client's cadence with auto (100 ms while
 * either policy learns, else 500 ms: docs/protocol.md 1.2.1) and to 1,000 without.
 *
 * --loss is the average loss per direction (a fraction); with --burst LEN > 1 it comes
 * in Gilbert-Elliott bursts of mean LEN packets (ls-netsim's burst=AVG:LEN), else it is
 * independent (loss=). Prints one line of key=value: packets, rt_lost, residual (round
 * trip), wire (tunnel datagrams per game datagram, both directions), recovered (game
 * packets recovered in either direction), rec_p99_us and rec_max_us (their extra
 * delay), changes (choices made by auto), fec_up, fec_down (the parameters in use at
 * the end). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fec.h"
#include "fec_auto.h"
#include "prng.h"

#define MAGIC 0x4c534653u /* "LSFS" */
#define NONE UINT64_MAX

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "fec_sim: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

/* Set LS_FEC_SIM_TRACE=1 to see every choice of auto on stderr, LS_FEC_SIM_STATE=1 for
 * the upstream policy's estimate every 10 s. */

/* One direction: sender (encoder, policy), lossy path, receiver (decoder, reports). */
struct dir {
	const char *name;
	struct ls_fec_enc enc;
	struct ls_fec_dec dec;
	struct ls_fec_auto au;
	bool autofec, stream_up;
	struct ls_prng rng;
	double p, r, loss; /* Gilbert-Elliott chain, or independent loss when p == 0 */
	bool bad;
	/* receiver's view, by wire sequence number */
	uint64_t seq, highest, received, rep_highest, rep_received;
	uint64_t run, burst_pkts, bursts; /* current gap run; closed bursts this report */
	uint64_t data_sent, data_rep;     /* sender's data packets: total, since the report */
	/* What the benchmark's taps count: measured data packets, and each block's parity
	 * in proportion to the share of its data that is measured (per block number). */
	uint32_t warm, end, *blk_data, *blk_meas, *blk_par; /* measured: [warm, end) */
	uint64_t data_meas;
	uint64_t *at;                     /* per game packet: delivery time, or NONE */
	bool *rec;                        /* per game packet: delivered by recovery */
	int64_t arriving;                 /* game packet whose data is being fed, or -1 */
	uint64_t now;
	uint32_t *q;                      /* up only: game packets delivered, to echo */
	size_t qn;
};

static bool path_loses(struct dir *d)
{
	if (d->p > 0.0) {
		/* ls-netsim's order: the state moves first, then the bad state loses. */
		double u = ls_prng_unit(&d->rng);

		d->bad = d->bad ? u >= d->r : u < d->p;
		return d->bad;
	}
	return ls_prng_unit(&d->rng) < d->loss;
}

static void on_deliver(void *ctx, const uint8_t *p, size_t len)
{
	struct dir *d = ctx;
	uint32_t magic, i;

	if (len < 8)
		return;
	memcpy(&magic, p, 4);
	memcpy(&i, p + 4, 4);
	if (magic != MAGIC || d->at[i] != NONE)
		return;
	d->at[i] = d->now;
	d->rec[i] = d->arriving != (int64_t)i;
	if (d->q)
		d->q[d->qn++] = i;
}

/* One tunnel datagram onto the path at time t. */
static void wire_send(struct dir *d, const struct ls_hdr *h, const uint8_t *payload, size_t len,
		      int64_t game, uint64_t t)
{
	uint64_t s = ++d->seq;

	if (path_loses(d)) {
		d->run++;
		return;
	}
	if (d->run) {
		d->burst_pkts += d->run;
		d->bursts++;
		d->run = 0;
	}
	d->highest = s;
	d->received++;
	d->now = t;
	d->arriving = game;
	ls_fec_dec_add(&d->dec, h, payload, len, t, on_deliver, d);
}

static void send_parity(struct dir *d, const uint8_t *sh, size_t len, uint16_t block, uint8_t k,
			unsigned row0, int n, uint64_t t)
{
	struct ls_hdr h;
	int j;

	d->blk_par[block] += (uint32_t)(n > 0 ? n : 0);
	for (j = 0; j < n; j++) {
		memset(&h, 0, sizeof(h));
		h.version = LS_VER_FEC;
		h.fec_block = block;
		h.fec_index = (uint8_t)(k + row0 + (unsigned)j);
		h.fec_k = k;
		wire_send(d, &h, sh + (size_t)j * LS_FEC_SHARD_MAX, len, -1, t);
	}
}

static void close_block(struct dir *d, uint64_t t)
{
	const uint8_t *sh;
	size_t len;
	uint16_t block;
	uint8_t k;
	int n = ls_fec_enc_close(&d->enc, &sh, &len, &block, &k);

	send_parity(d, sh, len, block, k, 0, n, t);
}

static void take_held(struct dir *d, uint64_t t)
{
	const uint8_t *sh;
	size_t len;
	uint16_t block;
	uint8_t k, row;
	int n = ls_fec_enc_take_held(&d->enc, t, &sh, &len, &block, &k, &row);

	send_parity(d, sh, len, block, k, row, n, t);
}

/* Blocks and held parity whose time has come by t, in time order. */
static void run_timers(struct dir *d, uint64_t t)
{
	uint64_t dl;

	while ((dl = ls_fec_enc_deadline(&d->enc)) != 0 && dl <= t) {
		if (ls_fec_enc_due(&d->enc, dl))
			close_block(d, dl);
		take_held(d, dl);
		if (ls_fec_enc_deadline(&d->enc) == dl)
			break; /* cannot happen; never spin */
	}
}

/* The order the dataplane uses: data, held parity, then the block's own parity. */
static void send_data(struct dir *d, uint32_t i, uint8_t *payload, size_t size, uint64_t t)
{
	struct ls_hdr h;
	bool full;
	uint32_t magic = MAGIC;

	run_timers(d, t);
	memcpy(payload, &magic, 4);
	memcpy(payload + 4, &i, 4);
	memset(&h, 0, sizeof(h));
	full = ls_fec_enc_add(&d->enc, payload, size, t, &h);
	d->data_meas += i >= d->warm && i < d->end;
	if (h.version == LS_VER_FEC) {
		d->blk_data[h.fec_block]++;
		d->blk_meas[h.fec_block] += i >= d->warm && i < d->end;
	}
	wire_send(d, &h, payload, size, i, t);
	d->data_sent++;
	d->data_rep++;
	if (d->autofec)
		ls_fec_auto_sent(&d->au, t);
	take_held(d, t);
	if (full)
		close_block(d, t);
}

/* The receiver's keepalive report and, with auto, the sender's new choice. */
static void report(struct dir *d, uint64_t t, uint64_t interval_us)
{
	struct ls_fec_params p;
	uint64_t expected = d->highest - d->rep_highest, received = d->received - d->rep_received;

	if (d->autofec) {
		ls_fec_auto_report(&d->au, (uint32_t)expected, (uint32_t)received,
				   d->bursts ? (double)d->burst_pkts / (double)d->bursts : 0.0, t);
		ls_fec_auto_rate(&d->au, (uint32_t)d->data_rep, interval_us);
		if (getenv("LS_FEC_SIM_STATE") && d->stream_up && t % 10000000 < interval_us) {
			double w, wait;
			char b[32];

			ls_fec_params_fmt(&d->au.cur, b, sizeof(b));
			fprintf(stderr, "state t=%.0fs slow=%.4f/%.2f fast=%.4f cur=%s res=%.5f learn=%d\n",
				t / 1e6, d->au.loss, d->au.burst, d->au.fast.lost / (d->au.fast.expected + 1e-9), b,
				ls_fec_auto_eval(&d->au, &d->au.cur, d->au.loss, d->au.burst, &w, &wait), d->au.learning);
		}
		if (ls_fec_auto_choose(&d->au, t, &p)) {
			ls_fec_enc_set(&d->enc, &p);
			if (getenv("LS_FEC_SIM_TRACE")) {
				char b[32];

				ls_fec_params_fmt(&p, b, sizeof(b));
				fprintf(stderr, "%s t=%.0fs loss=%.4f burst=%.2f pps=%.1f -> %s\n",
					d->name,
					t / 1e6, d->au.loss, d->au.burst, d->au.pps, b);
			}
		}
	}
	d->rep_highest = d->highest;
	d->rep_received = d->received;
	d->burst_pkts = d->bursts = 0;
	d->data_rep = 0;
}

/* Send the echoes of what up has delivered, in delivery order, at delivery time. */
static void echo(struct dir *up, struct dir *down, uint8_t *payload, size_t size)
{
	size_t j;

	for (j = 0; j < up->qn; j++)
		send_data(down, up->q[j], payload, size, up->at[up->q[j]]);
	up->qn = 0;
}

/* Tunnel datagrams (data and parity) the taps would count for the measured packets. */
static double wire_measured(const struct dir *d)
{
	double w = (double)d->data_meas;

	for (uint32_t b = 0; b < 65536; b++)
		if (d->blk_data[b])
			w += (double)d->blk_par[b] * d->blk_meas[b] / d->blk_data[b];
	return w;
}

static void dir_init(struct dir *d, const struct ls_fec_params *fp, bool autofec, double loss,
		     double burst, uint64_t seed, uint64_t stream, uint32_t n, uint32_t warm,
		     uint32_t end)
{
	memset(d, 0, sizeof(*d));
	if (ls_fec_enc_init(&d->enc, fp) || ls_fec_dec_init(&d->dec, 0))
		die("%s", "out of memory");
	ls_fec_auto_init(&d->au, NULL);
	d->autofec = autofec;
	ls_prng_seed(&d->rng, seed, stream);
	d->loss = loss;
	if (burst > 1.0 && loss > 0.0) {
		d->r = 1.0 / burst;
		d->p = d->r * loss / (1.0 - loss);
	}
	d->at = malloc(n * sizeof(*d->at));
	d->rec = calloc(n, sizeof(*d->rec));
	d->blk_data = calloc(65536, sizeof(uint32_t));
	d->blk_meas = calloc(65536, sizeof(uint32_t));
	d->blk_par = calloc(65536, sizeof(uint32_t));
	if (!d->at || !d->rec || !d->blk_data || !d->blk_meas || !d->blk_par)
		die("%s", "out of memory");
	for (uint32_t i = 0; i < n; i++)
		d->at[i] = NONE;
	d->arriving = -1;
	d->name = stream ? "down" : "up";
	d->stream_up = stream == 0;
	d->warm = warm;
	d->end = end;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double num(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= lo && v <= hi))
		die("bad value for %s", opt);
	return v;
}

int main(int argc, char **argv)
{
	const char *fec = "off";
	double loss = 0, burst = 1, pps = 64, warmup = 30, size = 120, report_ms = 0, jitter = 0;
	struct ls_prng jrng;
	uint64_t *sent_at;
	uint32_t packets = 20000, seed = 1, n, warm, i;
	struct ls_fec_params fp;
	struct dir up, down;
	char err[160], fup[32], fdown[32];
	bool autofec;
	uint8_t payload[LS_MAX_PAYLOAD];
	uint64_t *extra, nextra = 0, lost = 0, T, rep_us, next_rep;

	for (int a = 1; a < argc; a += 2) {
		const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;

		if (!v)
			die("%s: missing value", o);
		if (!strcmp(o, "--fec"))
			fec = v;
		else if (!strcmp(o, "--loss"))
			loss = num(o, v, 0, 0.99);
		else if (!strcmp(o, "--burst"))
			burst = num(o, v, 1, 1000);
		else if (!strcmp(o, "--packets"))
			packets = (uint32_t)num(o, v, 1, 1e8);
		else if (!strcmp(o, "--warmup"))
			warmup = num(o, v, 0, 3600);
		else if (!strcmp(o, "--pps"))
			pps = num(o, v, 1, 100000);
		else if (!strcmp(o, "--size"))
			size = num(o, v, 8, LS_FEC_MAX_DATA);
		else if (!strcmp(o, "--seed"))
			seed = (uint32_t)num(o, v, 0, 4294967295.0);
		else if (!strcmp(o, "--jitter"))
			jitter = num(o, v, 0, 0.9);
		else if (!strcmp(o, "--report-ms"))
			report_ms = num(o, v, 20, 60000);
		else
			die("unknown option %s (see the comment at the top of fec_sim.c)", o);
	}
	autofec = !strcmp(fec, "auto");
	if (autofec)
		ls_fec_params_parse("off", &fp, err, sizeof(err));
	else if (ls_fec_params_parse(fec, &fp, err, sizeof(err)))
		die("%s", err);
	warm = (uint32_t)(warmup * pps);
	/* One second more after the measured packets, unmeasured, as the benchmark's ping
	 * does: the last measured block closes as any other. */
	n = warm + packets + (uint32_t)pps;
	if (n >= 65536)
		die("%s", "at most 65,535 packets with the warm-up (block numbers would wrap)");
	dir_init(&up, &fp, autofec, loss, burst, seed, 0, n, warm, warm + packets);
	dir_init(&down, &fp, autofec, loss, burst, seed, 1, n, warm, warm + packets);
	extra = malloc(n * sizeof(*extra));
	up.q = malloc(n * sizeof(*up.q));
	sent_at = malloc(n * sizeof(*sent_at));
	if (!extra || !up.q || !sent_at)
		die("%s", "out of memory");
	memset(payload, 0x5a, sizeof(payload));
	T = (uint64_t)(1e6 / pps);
	ls_prng_seed(&jrng, seed, 2);
	for (i = 0; i < n; i++)
		sent_at[i] = i == 0 ? 1000000 : sent_at[i - 1] + (uint64_t)(T * (1.0 + jitter *
					(2.0 * ls_prng_unit(&jrng) - 1.0)));
	rep_us = (uint64_t)((report_ms > 0 ? report_ms : autofec ? 500 : 1000) * 1000);
	next_rep = rep_us;
	/* The path has no delay, so the echo of packet i leaves when up delivers i: at
	 * its send time, or when it is recovered. Up runs ahead of down by at most the
	 * step just taken, so down's stream stays in time order. */
	for (i = 0; i < n; i++) {
		uint64_t t = sent_at[i];

		while (next_rep <= t) {
			run_timers(&up, next_rep);
			echo(&up, &down, payload, (size_t)size);
			run_timers(&down, next_rep);
			report(&up, next_rep, rep_us);
			report(&down, next_rep, rep_us);
			/* The client's cadence: faster while either policy learns. */
			if (report_ms <= 0 && autofec)
				rep_us = (ls_fec_auto_learning(&up.au) || ls_fec_auto_learning(&down.au)
					  ? 100 : 500) * 1000;
			next_rep += rep_us;
		}
		send_data(&up, i, payload, (size_t)size, t);
		echo(&up, &down, payload, (size_t)size);
	}
	/* Drain: the last blocks and held parity. */
	run_timers(&up, UINT64_MAX - 1);
	echo(&up, &down, payload, (size_t)size);
	run_timers(&down, UINT64_MAX - 1);
	for (i = warm; i < warm + packets; i++) {
		uint64_t ts = sent_at[i];

		if (up.at[i] == NONE || down.at[i] == NONE) {
			lost++;
			continue;
		}
		if (up.rec[i] || down.rec[i])
			extra[nextra++] = down.at[i] - ts;
	}
	qsort(extra, nextra, sizeof(*extra), cmp_u64);
	ls_fec_params_fmt(&up.enc.next, fup, sizeof(fup));
	ls_fec_params_fmt(&down.enc.next, fdown, sizeof(fdown));
	{
		/* Game datagrams: packets one way, echoes the other. */
		uint64_t game = packets, echoes = 0;

		for (i = warm; i < warm + packets; i++)
			echoes += up.at[i] != NONE;
		printf("packets=%u rt_lost=%llu residual=%.6f wire=%.4f recovered=%llu "
		       "rec_p99_us=%.0f rec_max_us=%.0f changes=%llu fec_up=%s fec_down=%s\n",
		       packets, (unsigned long long)lost, (double)lost / packets,
		       (wire_measured(&up) + wire_measured(&down)) / (double)(game + echoes),
		       (unsigned long long)nextra,
		       nextra ? (double)extra[(size_t)ceil(0.99 * nextra) - 1] : 0.0,
		       nextra ? (double)extra[nextra - 1] : 0.0,
		       (unsigned long long)(up.au.changes + down.au.changes), fup, fdown);
	}
	return 0;
}
