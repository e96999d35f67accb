/* Unit tests for shared/fec_auto.c: the residual model against closed forms and a
 * brute-force sum over loss patterns, the choices for independent and bursty loss
 * (they meet the target, no candidate meets it with fewer wire packets, blocks fit
 * the recovery bound), the model against a Monte Carlo run of the real encoder and
 * decoder over a seeded loss process, and the chooser's hysteresis fed by a simulated
 * peer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fec_auto.h"

#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct ls_fec_auto_conf conf;

static void setup(void) { ls_fec_auto_conf_default(&conf); }

static struct ls_fec_params P(unsigned k, unsigned m, unsigned s)
{
	return (struct ls_fec_params){ (uint8_t)k, (uint8_t)m, 20000, (uint8_t)s };
}

static double overhead(const struct ls_fec_params *p)
{
	return p->k ? (double)(p->k + p->m) / p->k : 1.0;
}

/* ---- a seeded generator and loss process (independent of the netsim's) ---- */

static uint64_t rng = 0x243f6a8885a308d3ull;

static double unit_rand(void)
{
	if (rng == 0) /* the one state xorshift cannot leave */
		rng = 1;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

struct chain {
	double p, r; /* Gilbert-Elliott; p = loss, r = 1 - loss for independent loss */
	int bad;
};

static struct chain chain_for(double loss, double burst)
{
	struct chain c = { 0, 1, 0 };

	if (burst <= 1.0 / (1.0 - loss)) {
		c.p = loss;
		c.r = 1.0 - loss;
	} else {
		c.r = 1.0 / burst;
		c.p = c.r * loss / (1.0 - loss);
	}
	return c;
}

static int chain_loses(struct chain *c)
{
	double u = unit_rand();

	c->bad = c->bad ? u >= c->r : u < c->p;
	return c->bad;
}

/* ---- the model ---- */

static double binom(unsigned n, unsigned k)
{
	double r = 1;

	for (unsigned i = 1; i <= k; i++)
		r = r * (n - k + i) / i;
	return r;
}

/* Independent loss q: a data packet stays lost when it is lost and fewer than k of the
 * other k + m - 1 packets arrive. */
static double closed_form(unsigned k, unsigned m, double q)
{
	double s = 0;
	unsigned n = k + m - 1, got;

	for (got = 0; got < k; got++)
		s += binom(n, got) * pow(1 - q, got) * pow(q, n - got);
	return q * s;
}

static void test_model_independent(void)
{
	static const double qs[] = { 0.001, 0.01, 0.05, 0.1, 0.2, 0.4 };
	unsigned k, m, s, i, bad = 0;

	for (k = 1; k <= 6; k++)
		for (m = 0; m <= 6; m++)
			for (i = 0; i < NELEM(qs); i++)
				for (s = 0; s < (m ? m : 1); s++) {
					struct ls_fec_params p = P(k, m, s);
					double want = closed_form(k, m, qs[i]);
					double got = ls_fec_auto_residual(&p, qs[i], 1.0);

					/* Where a packet sits does not matter when losses are
					 * independent, so spread changes nothing. */
					bad += fabs(got - want) > 1e-12 + 1e-9 * want;
				}
	CU_ASSERT_EQUAL(bad, 0);
	/* The brief's figure: 2:3 at 10 % loses 0.037 % per direction. */
	struct ls_fec_params p = P(2, 3, 0);
	CU_ASSERT(fabs(ls_fec_auto_residual(&p, 0.1, 1) - 0.00037) < 1e-9);
	p = P(0, 0, 0);
	CU_ASSERT_EQUAL(ls_fec_auto_residual(&p, 0.1, 1), 0.1);
	p = P(2, 3, 0);
	CU_ASSERT_EQUAL(ls_fec_auto_residual(&p, 0, 1), 0);
	CU_ASSERT_EQUAL(ls_fec_auto_residual(&p, 1, 1), 1);
	/* A burst shorter than independent loss gives is read as independent loss. */
	CU_ASSERT_EQUAL(ls_fec_auto_residual(&p, 0.1, 0.5), ls_fec_auto_residual(&p, 0.1, 1));
}

/* Brute force for bursty loss: every loss pattern over a block's span in the stream,
 * weighted by the chain, with the layout written out by hand: 'D' the block's data,
 * 'P' its parity, '.' another block's packet (held parity of the previous block, the
 * next block's first packet). */
static double brute(const char *layout, unsigned k, double loss, double burst)
{
	struct chain c = chain_for(loss, burst);
	unsigned n = (unsigned)strlen(layout), pat, i;
	double pi = c.p / (c.p + c.r), sum = 0;

	for (pat = 0; pat < 1u << n; pat++) {
		double pr = (pat & 1) ? pi : 1 - pi;
		unsigned got = 0, lost = 0;

		for (i = 1; i < n; i++) {
			int was = pat >> (i - 1) & 1, is = pat >> i & 1;

			pr *= was ? (is ? 1 - c.r : c.r) : (is ? c.p : 1 - c.p);
		}
		for (i = 0; i < n; i++) {
			if (layout[i] == '.')
				continue;
			if (pat >> i & 1)
				lost += layout[i] == 'D';
			else
				got++;
		}
		if (got < k)
			sum += pr * lost;
	}
	return sum / k;
}

static void test_model_bursty(void)
{
	static const struct {
		unsigned k, m, s;
		const char *layout;
	} cases[] = {
		{ 2, 3, 0, "DDPPP" },
		{ 2, 3, 1, "D.DPP.P" },
		{ 2, 4, 3, "D...DP.PPP" },
		{ 1, 2, 1, "D.P.P" },
		{ 3, 2, 1, "D.DDP.P" },
		{ 4, 4, 2, "D..DDDPP.PP" },
	};
	static const double lb[][2] = { { 0.02, 2 }, { 0.05, 3 }, { 0.1, 1.5 }, { 0.01, 6 } };
	unsigned i, j, bad = 0;

	for (i = 0; i < NELEM(cases); i++)
		for (j = 0; j < NELEM(lb); j++) {
			struct ls_fec_params p = P(cases[i].k, cases[i].m, cases[i].s);
			double want = brute(cases[i].layout, cases[i].k, lb[j][0], lb[j][1]);
			double got = ls_fec_auto_residual(&p, lb[j][0], lb[j][1]);

			bad += fabs(got - want) > 1e-12 + 1e-9 * want;
		}
	CU_ASSERT_EQUAL(bad, 0);
	/* Spreading helps bursty loss: 2:4 at 2 % in bursts of 2. */
	struct ls_fec_params a = P(2, 4, 0), b = P(2, 4, 3);
	CU_ASSERT(ls_fec_auto_residual(&a, 0.02, 2) > 3 * ls_fec_auto_residual(&b, 0.02, 2));
}

static void test_kmax(void)
{
	setup();
	CU_ASSERT_EQUAL(ls_fec_auto_kmax(&conf, 0), 1);
	CU_ASSERT_EQUAL(ls_fec_auto_kmax(&conf, 30), 1);
	CU_ASSERT_EQUAL(ls_fec_auto_kmax(&conf, 50), 1); /* 20 ms apart: no room for jitter */
	CU_ASSERT_EQUAL(ls_fec_auto_kmax(&conf, 64), 2);
	CU_ASSERT_EQUAL(ls_fec_auto_kmax(&conf, 128), 3);
	CU_ASSERT_EQUAL(ls_fec_auto_kmax(&conf, 256), 5);
	CU_ASSERT_EQUAL(ls_fec_auto_kmax(&conf, 1e6), LS_FEC_MAX_K);
}

/* Every candidate the chooser may consider: k fitting the rate, any m within the
 * overhead cap, any spread. */
static int min_overhead_meeting(double loss, double burst, double pps, double *best_ovh,
				double *best_res)
{
	unsigned kmax = ls_fec_auto_kmax(&conf, pps), k, m, s;
	int found = 0;

	*best_ovh = 1e9;
	*best_res = loss;
	if (loss <= conf.target_residual) {
		*best_ovh = 1.0;
		return 1;
	}
	for (k = 1; k <= kmax; k++)
		for (m = 1; m <= LS_FEC_MAX_M && (double)(k + m) / k <= conf.max_overhead + 1e-9; m++)
			for (s = 0; s < m; s++) {
				struct ls_fec_params p = P(k, m, s);
				double r = ls_fec_auto_residual(&p, loss, burst);

				if (r < *best_res)
					*best_res = r;
				if (r <= conf.target_residual && overhead(&p) < *best_ovh) {
					*best_ovh = overhead(&p);
					found = 1;
				}
			}
	return found;
}

static void check_choice(double loss, double burst, double pps, const char *want)
{
	struct ls_fec_params p;
	double r = ls_fec_auto_best(&conf, loss, burst, pps, &p), ovh, res;
	char got[32];
	int feasible = min_overhead_meeting(loss, burst, pps, &ovh, &res);

	ls_fec_params_fmt(&p, got, sizeof(got));
	if (want && strcmp(got, want))
		fprintf(stderr, "\n  loss %g burst %g: chose %s, expected %s\n", loss, burst, got, want);
	if (want)
		CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT(fabs(r - ls_fec_auto_residual(&p, loss, burst)) < 1e-15);
	CU_ASSERT(overhead(&p) <= conf.max_overhead + 1e-9);
	if (feasible) {
		CU_ASSERT(r <= conf.target_residual);
		/* Nothing cheaper meets it, unless it recovers sooner within the delay
		 * budget: then it costs at most that much more and waits less. */
		CU_ASSERT(overhead(&p) <= ovh * (1 + conf.delay_budget) + 1e-9);
	} else {
		CU_ASSERT(r <= res * (1 + 1e-9)); /* the best that can be had */
	}
	/* The block's data fit the recovery bound at this rate. */
	if (p.k)
		CU_ASSERT((p.k - 1) * 1e6 / pps <= conf.max_recovery_us);
	CU_ASSERT_EQUAL(p.k ? p.block_us : conf.max_recovery_us, conf.max_recovery_us);
}

static void test_choices_independent(void)
{
	setup();
	/* 64 packets/s: blocks of at most 2 (15.6 ms apart, 20 ms bound). */
	check_choice(0, 1, 64, "off");
	check_choice(0.0004, 1, 64, "off");
	check_choice(0.01, 1, 64, "2:1:20");
	check_choice(0.05, 1, 64, "2:2:20");
	check_choice(0.10, 1, 64, "2:3:20");
	check_choice(0.20, 1, 64, "2:5:20");
	/* Faster games get longer blocks, so less overhead for the same loss. */
	check_choice(0.10, 1, 256, NULL);
	struct ls_fec_params a, b;
	ls_fec_auto_best(&conf, 0.10, 1, 256, &a);
	ls_fec_auto_best(&conf, 0.10, 1, 64, &b);
	CU_ASSERT(overhead(&a) < overhead(&b));
	/* 40 % loss: the target is out of reach within 4 wire packets per packet; the
	 * lowest residual is chosen. */
	check_choice(0.40, 1, 64, "2:6:20");
}

static void test_choices_bursty(void)
{
	struct ls_fec_params p;

	setup();

	/* The benchmark's case: 2 % in bursts of 2. Without spread it would take 2:6;
	 * holding parity back past the next data packet meets the target at 2:4 (two
	 * rows held meet it too, and fewer held rows wait less). */
	check_choice(0.02, 2, 64, "2:4:20:2");
	check_choice(0.01, 3, 64, NULL);
	check_choice(0.05, 3, 64, NULL);
	check_choice(0.02, 2, 128, NULL);
	check_choice(0.02, 2, 256, NULL);
	check_choice(0.005, 8, 64, NULL);
	ls_fec_auto_best(&conf, 0.02, 2, 64, &p);
	CU_ASSERT(p.spread > 0);
	/* Independent loss never buys spread: it would only delay recoveries. */
	ls_fec_auto_best(&conf, 0.10, 1, 64, &p);
	CU_ASSERT_EQUAL(p.spread, 0);
	ls_fec_auto_best(&conf, 0.20, 1, 64, &p);
	CU_ASSERT_EQUAL(p.spread, 0);
}

/* ---- Monte Carlo with the real codec ---- */

struct mc {
	uint64_t *at;   /* per data packet: time delivered (packet intervals), or ~0 */
	uint64_t now;
};

static void mc_deliver(void *ctx, const uint8_t *p, size_t len)
{
	struct mc *mc = ctx;
	uint32_t i;

	if (len < 4)
		return;
	memcpy(&i, p, 4);
	if (mc->at[i] == ~0ull)
		mc->at[i] = mc->now;
}

static void mc_send(struct ls_fec_dec *d, struct chain *c, struct mc *mc, const struct ls_hdr *h,
		    const uint8_t *pl, size_t len)
{
	if (!chain_loses(c))
		ls_fec_dec_add(d, h, pl, len, mc->now * 15625, mc_deliver, mc);
}

static void mc_parity(struct ls_fec_dec *d, struct chain *c, struct mc *mc, const uint8_t *sh,
		      size_t len, uint16_t bn, uint8_t k, unsigned row0, int n)
{
	for (int j = 0; j < n; j++) {
		struct ls_hdr h = { .version = LS_VER_FEC, .fec_block = bn,
				    .fec_index = (uint8_t)(k + row0 + (unsigned)j), .fec_k = k };

		mc_send(d, c, mc, &h, sh + (size_t)j * LS_FEC_SHARD_MAX, len);
	}
}

/* n data packets one interval apart through p and a chain; returns the share never
 * delivered, and the worst delay of a recovered packet (intervals) in *late. */
static double monte_carlo(const struct ls_fec_params *p, double loss, double burst, uint32_t n,
			  unsigned *late)
{
	struct ls_fec_enc e;
	struct ls_fec_dec d;
	struct chain c = chain_for(loss, burst);
	struct mc mc;
	uint8_t pl[120];
	uint32_t i, lost = 0;

	CU_ASSERT_FATAL(ls_fec_enc_init(&e, p) == 0);
	CU_ASSERT_FATAL(ls_fec_dec_init(&d, 0) == 0);
	mc.at = malloc(n * sizeof(*mc.at));
	CU_ASSERT_FATAL(mc.at != NULL);
	memset(mc.at, 0xff, n * sizeof(*mc.at));
	memset(pl, 0x3c, sizeof(pl));
	*late = 0;
	for (i = 0; i < n; i++) {
		struct ls_hdr h = { 0 };
		const uint8_t *sh;
		size_t len;
		uint16_t bn;
		uint8_t k, row;
		int np;
		bool full;

		mc.now = i;
		memcpy(pl, &i, 4);
		full = ls_fec_enc_add(&e, pl, sizeof(pl), (uint64_t)i * 15625, &h);
		mc_send(&d, &c, &mc, &h, pl, sizeof(pl));
		np = ls_fec_enc_take_held(&e, (uint64_t)i * 15625, &sh, &len, &bn, &k, &row);
		mc_parity(&d, &c, &mc, sh, len, bn, k, row, np);
		if (full) {
			np = ls_fec_enc_close(&e, &sh, &len, &bn, &k);
			mc_parity(&d, &c, &mc, sh, len, bn, k, 0, np);
		}
	}
	for (i = 0; i + 2 < n; i++) { /* the last block may miss its held parity */
		if (mc.at[i] == ~0ull)
			lost++;
		else if (mc.at[i] - i > *late)
			*late = (unsigned)(mc.at[i] - i);
	}
	CU_ASSERT_EQUAL(e.held_dropped, 0);
	free(mc.at);
	ls_fec_dec_free(&d);
	ls_fec_enc_free(&e);
	return (double)lost / (n - 2);
}

static void check_mc(double loss, double burst, uint32_t n, unsigned max_late)
{
	struct ls_fec_params p;
	unsigned late;
	double model = ls_fec_auto_best(&conf, loss, burst, 64, &p);
	double got = monte_carlo(&p, loss, burst, n, &late);
	/* Losses come in clumps (a lost block loses several), so allow 5 sigma of a
	 * count whose variance is a few times Poisson's. */
	double sd = sqrt(3 * p.k * model * n) / n;

	if (fabs(got - model) > 5 * sd + 1e-12)
		fprintf(stderr, "\n  loss %g burst %g: model %.5f%%, Monte Carlo %.5f%%\n", loss,
			burst, 100 * model, 100 * got);
	CU_ASSERT(fabs(got - model) <= 5 * sd + 1e-12);
	CU_ASSERT(got <= conf.target_residual * 1.5);
	CU_ASSERT(late <= max_late);
}

static void test_monte_carlo(void)
{
	setup();
	rng = 0x9e3779b97f4a7c15ull;
	/* Independent loss: recovered packets are at most one interval (15.6 ms) late. */
	check_mc(0.01, 1, 200000, 1);
	check_mc(0.05, 1, 200000, 1);
	check_mc(0.10, 1, 400000, 1);
	check_mc(0.20, 1, 400000, 1);
	/* Bursts: held parity recovers one interval later still. */
	check_mc(0.02, 2, 800000, 2);
}

/* ---- the chooser, fed by a simulated peer ---- */

struct peer {
	struct chain c;
	double pps;
	uint64_t now; /* us */
	unsigned changes;
	struct ls_fec_params cur;
};

/* One second: the wire packets our current choice sends, through the chain; the
 * peer's report of them; our choice. */
static void peer_second(struct ls_fec_auto *a, struct peer *pe)
{
	unsigned wire = (unsigned)(pe->pps * overhead(&pe->cur) + 0.5), i, lost = 0, bursts = 0;
	int prev = 0;
	struct ls_fec_params p;

	for (i = 0; i < wire; i++) {
		int l = chain_loses(&pe->c);

		lost += (unsigned)l;
		bursts += (unsigned)(l && !prev);
		prev = l;
	}
	pe->now += 1000000;
	ls_fec_auto_report(a, wire, wire - lost, bursts ? (double)lost / bursts : 0, pe->now);
	ls_fec_auto_rate(a, (uint32_t)pe->pps, 1000000);
	if (ls_fec_auto_choose(a, pe->now, &p)) {
		pe->changes++;
		pe->cur = p;
	}
}

static void run_for(struct ls_fec_auto *a, struct peer *pe, unsigned seconds)
{
	while (seconds--)
		peer_second(a, pe);
}

static void fmt_is(const struct ls_fec_params *p, const char *want)
{
	char got[32];

	ls_fec_params_fmt(p, got, sizeof(got));
	if (strcmp(got, want))
		fprintf(stderr, "\n  chose %s, expected %s\n", got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
}

static void test_hysteresis(void)
{
	struct ls_fec_auto a;
	struct peer pe = { chain_for(0.10, 1), 64, 1, 0, { 0 } };
	struct ls_fec_params p;

	setup();

	rng = 0x0123456789abcdefull;
	ls_fec_auto_init(&a, &conf);
	/* No report yet, then reports without loss: off. */
	CU_ASSERT_FALSE(ls_fec_auto_choose(&a, 1, &p));
	CU_ASSERT_EQUAL(p.k, 0);
	ls_fec_auto_report(&a, 64, 64, 0, 1000000);
	ls_fec_auto_choose(&a, 1000000, &p);
	CU_ASSERT_EQUAL(p.k, 0);

	/* 10 % independent loss: on within two seconds, settled on 2:3 within half a
	 * minute, and then it stays there for an hour. */
	run_for(&a, &pe, 2);
	CU_ASSERT(pe.cur.k > 0);
	run_for(&a, &pe, 30);
	fmt_is(&pe.cur, "2:3:20");
	pe.changes = 0;
	run_for(&a, &pe, 3600);
	CU_ASSERT_EQUAL(pe.changes, 0);
	fmt_is(&pe.cur, "2:3:20");

	/* Loss jumps to 20 %: stepped up within 8 s (4-5 typically), and the long window
	 * restarts. */
	pe.c = chain_for(0.20, 1);
	run_for(&a, &pe, 8);
	CU_ASSERT(overhead(&pe.cur) >= 3.0);
	CU_ASSERT(a.shifts >= 1);
	run_for(&a, &pe, 600);
	fmt_is(&pe.cur, "2:5:20");

	/* Down to 2 % in bursts of 2: spread parity within a minute, and few changes
	 * over an hour although the estimate of such a process wanders (a minute holds
	 * only ~100 bursts). */
	pe.c = chain_for(0.02, 2);
	run_for(&a, &pe, 60);
	CU_ASSERT(pe.cur.spread > 0);
	pe.changes = 0;
	run_for(&a, &pe, 3600);
	CU_ASSERT(pe.changes <= 12);
	CU_ASSERT(pe.cur.spread > 0);

	/* Loss stops: off by quiet_us without any at the latest. */
	pe.c = chain_for(0, 1);
	run_for(&a, &pe, (unsigned)(conf.quiet_us / 1000000) + 1);
	CU_ASSERT_EQUAL(pe.cur.k, 0);
}

/* On a threshold: at 7.5 % independent loss 2:2 misses the target and 2:3 meets it
 * with room; the choice must not alternate between them. */
static void test_no_flapping(void)
{
	static const double losses[] = { 0.0075, 0.03, 0.06, 0.075, 0.09, 0.11 };
	unsigned i;

	setup();

	for (i = 0; i < NELEM(losses); i++) {
		struct ls_fec_auto a;
		struct peer pe = { chain_for(losses[i], 1), 64, 1, 0, { 0 } };

		rng = 0x5555aaaa5555aaaaull + i;
		ls_fec_auto_init(&a, &conf);
		run_for(&a, &pe, 120);
		pe.changes = 0;
		run_for(&a, &pe, 3600);
		if (pe.changes > 2)
			fprintf(stderr, "\n  loss %g: %u changes in an hour\n", losses[i], pe.changes);
		CU_ASSERT(pe.changes <= 2);
	}
}

/* The packet rate bounds k: a game slowing down gets blocks that still fit. */
static void test_rate_change(void)
{
	struct ls_fec_auto a;
	struct peer pe = { chain_for(0.10, 1), 128, 1, 0, { 0 } };

	setup();

	rng = 42;
	ls_fec_auto_init(&a, &conf);
	run_for(&a, &pe, 60);
	CU_ASSERT_EQUAL(pe.cur.k, 3);
	pe.pps = 30;
	run_for(&a, &pe, 3);
	CU_ASSERT_EQUAL(pe.cur.k, 1);
	CU_ASSERT(ls_fec_auto_residual(&pe.cur, 0.1, 1) <= conf.target_residual);
}

static void test_conf(void)
{
	struct ls_fec_auto a;
	struct ls_fec_params p;

	setup();

	CU_ASSERT(conf.target_residual == 0.0005 && conf.max_recovery_us == 20000);
	CU_ASSERT(conf.max_overhead == 4.0 && conf.hold_us == 10000000);
	CU_ASSERT_EQUAL(conf.quiet_us, 60000000);
	CU_ASSERT(conf.delay_budget == 0.2);
	ls_fec_auto_init(&a, NULL); /* defaults */
	CU_ASSERT(a.conf.target_residual == conf.target_residual);
	/* A stricter cap is obeyed: 10 % with at most 2 wire packets per packet. */
	a.conf.max_overhead = 2.0;
	ls_fec_auto_best(&a.conf, 0.10, 1, 64, &p);
	CU_ASSERT(overhead(&p) <= 2.0);
	fmt_is(&p, "2:2:20");
	/* A longer bound allows longer blocks (2:3 waits less, but it waits too: the
	 * delay budget is for recovery within the packet interval only). */
	a.conf = conf;
	a.conf.max_recovery_us = 50000;
	ls_fec_auto_best(&a.conf, 0.10, 1, 64, &p);
	CU_ASSERT(p.k == 3 && p.block_us == 50000);
}

/* ---- from the start: the dataplane's cadence and a real sender's spacing ---- */

/* A game sending pps packets per second (each gap times a factor in [1 - jitter,
 * 1 + jitter]) from game_us on, through a chain that starts losing at onset_us; the
 * peer reports every 100 ms while the policy learns, else every 500 ms, as the
 * client's keepalives do (docs/protocol.md 1.2.1). The wire cost of every 100 ms is
 * recorded. */
struct run {
	struct chain lossy;
	double pps, jitter;
	uint64_t game_us, onset_us, end_us;
	uint64_t first_lost_us, protected_us; /* 0: never */
	double cost[1200];                   /* wire packets per data packet, per 100 ms */
	struct ls_fec_params cur;
};

static void run_game(struct ls_fec_auto *a, struct run *r)
{
	struct chain clean = chain_for(0, 1);
	uint64_t t = 0, next_pkt = r->game_us, next_rep = 100000, slot_end = 100000;
	unsigned wire = 0, lost = 0, bursts = 0, slot = 0;
	double owed = 0, slot_wire = 0, slot_data = 0;
	int prev = 0;

	memset(&r->cur, 0, sizeof(r->cur));
	r->first_lost_us = r->protected_us = 0;
	memset(r->cost, 0, sizeof(r->cost));
	while (t < r->end_us) {
		t = next_pkt < next_rep ? next_pkt : next_rep;
		while (t >= slot_end && slot < NELEM(r->cost)) {
			r->cost[slot++] = slot_data ? slot_wire / slot_data : 1.0;
			slot_wire = slot_data = 0;
			slot_end += 100000;
		}
		if (t == next_pkt) {
			/* One data packet and its share of parity, each through the chain. */
			unsigned n, i;

			ls_fec_auto_sent(a, t);
			owed += overhead(&r->cur);
			n = (unsigned)owed;
			owed -= n;
			slot_wire += n;
			slot_data++;
			for (i = 0; i < n; i++) {
				int l = chain_loses(t >= r->onset_us ? &r->lossy : &clean);

				if (l && !r->first_lost_us)
					r->first_lost_us = t;
				wire++;
				lost += (unsigned)l;
				bursts += (unsigned)(l && !prev);
				prev = l;
			}
			next_pkt += (uint64_t)(1e6 / r->pps * (1 + r->jitter * (2 * unit_rand() - 1)));
		} else {
			struct ls_fec_params p;

			if (wire)
				ls_fec_auto_report(a, wire, wire - lost,
						   bursts ? (double)lost / bursts : 0, t);
			ls_fec_auto_rate(a, 0, 0);
			if (ls_fec_auto_choose(a, t, &p))
				r->cur = p;
			if (r->cur.k && r->first_lost_us && !r->protected_us)
				r->protected_us = t;
			wire = lost = bursts = 0;
			next_rep = t + (ls_fec_auto_learning(a) ? 100000 : 500000);
		}
	}
}

/* The longest stretch (s) within [from_s, to_s) whose cost exceeds limit. */
static double longest_over(const struct run *r, double limit, unsigned from_s, unsigned to_s)
{
	unsigned i, run = 0, best = 0;

	for (i = from_s * 10; i < to_s * 10 && i < NELEM(r->cost); i++) {
		run = r->cost[i] > limit * (1 + 1e-9) ? run + 1 : 0;
		if (run > best)
			best = run;
	}
	return best / 10.0;
}

/* 10 % from the first packet, the game starting 1.5 s after the policy: protected
 * within 1 s of the first loss, and not more than 10 % above the steady 2.5 wire
 * packets per packet for more than 2 s (today: FEC on only after the second report,
 * at 1:3, for 10 s). */
static void test_cold_start(void)
{
	unsigned seed, kept = 0;

	setup();
	for (seed = 0; seed < 8; seed++) {
		struct ls_fec_auto a;
		struct run *r = calloc(1, sizeof(*r));
		double sum = 0;

		CU_ASSERT_FATAL(r != NULL);
		rng = 0x1234567ull + seed;
		r->lossy = chain_for(0.10, 1);
		r->pps = 64;
		r->game_us = 1500000;
		r->end_us = 21500000;
		ls_fec_auto_init(&a, &conf);
		run_game(&a, r);
		CU_ASSERT(r->first_lost_us > 0 && r->protected_us > 0);
		CU_ASSERT(r->protected_us - r->first_lost_us <= 1000000);
		/* The target is 2 s. 10 % sits at the edge of what 2:3 covers, so an
		 * estimate a little high after learning holds 2:4 (+20 %) for longer in
		 * some runs: at least 6 of these 8 must keep to it, and every run's first
		 * 20 s must cost less than today's 3.3. */
		if (getenv("LS_TEST_VERBOSE"))
			fprintf(stderr, "\n  seed %u: over %.1f s\n", seed, longest_over(r, 2.5 * 1.1, 2, 21));
		kept += longest_over(r, 2.5 * 1.1, 2, 21) <= 2.0;
		for (unsigned i = 15; i < 215; i++)
			sum += r->cost[i];
		CU_ASSERT(sum / 200 <= 3.0);
		CU_ASSERT(r->cur.k == 2);
		free(r);
	}
	CU_ASSERT(kept >= 6);
}

/* A minute without loss, then 10 %: protected within 1 s of the first loss, and then
 * within 10 % of the steady cost but for at most 2 s. A clean path costs nothing. */
static void test_onset_mid_run(void)
{
	unsigned seed, kept = 0;

	setup();
	for (seed = 0; seed < 8; seed++) {
		struct ls_fec_auto a;
		struct run *r = calloc(1, sizeof(*r));

		CU_ASSERT_FATAL(r != NULL);
		rng = 0xabcdefull + seed;
		r->lossy = chain_for(0.10, 1);
		r->pps = 64;
		r->onset_us = 60000000;
		r->end_us = 90000000;
		ls_fec_auto_init(&a, &conf);
		run_game(&a, r);
		CU_ASSERT(longest_over(r, 1.0, 0, 60) == 0.0); /* off while clean */
		CU_ASSERT(r->first_lost_us >= 60000000);
		CU_ASSERT(r->protected_us > 0 && r->protected_us - r->first_lost_us <= 1000000);
		kept += longest_over(r, 2.5 * 1.1, 62, 90) <= 2.0; /* as above */
		CU_ASSERT_EQUAL(a.onsets, 1);
		CU_ASSERT(r->cur.k == 2);
		free(r);
	}
	CU_ASSERT(kept >= 6);
}

/* A jittered sender (±30 %) just under the 57.5 packets/s that exact spacing needs
 * for blocks of 2 within 20 ms (15 % spare): most blocks still fill, so the policy
 * stays at k = 2 (2:3 or 2:4), pays for the blocks that close short, and meets the
 * target, where the mean rate alone falls to k = 1 (4 copies of every packet). */
static void test_jittered_rate(void)
{
	struct ls_fec_auto a;
	struct run *r = calloc(1, sizeof(*r));
	struct ls_fec_params p;
	double w, wait;

	setup();
	CU_ASSERT_FATAL(r != NULL);
	ls_fec_auto_best(&conf, 0.10, 1, 56, &p);
	CU_ASSERT_EQUAL(p.k, 1); /* the mean rate alone */
	rng = 77;
	r->lossy = chain_for(0.10, 1);
	r->pps = 56;
	r->jitter = 0.3;
	r->end_us = 60000000;
	ls_fec_auto_init(&a, &conf);
	run_game(&a, r);
	CU_ASSERT_EQUAL(r->cur.k, 2);
	CU_ASSERT(ls_fec_auto_eval(&a, &r->cur, 0.10, 1, &w, &wait) <= conf.target_residual);
	if (getenv("LS_TEST_VERBOSE"))
		fprintf(stderr, "\n  jittered: %d:%d:%d wire %.3f\n", r->cur.k, r->cur.m, r->cur.spread, w);
	CU_ASSERT(w <= 3.0 + 1e-9); /* k = 1 would cost 4 (1:3) */
	CU_ASSERT(longest_over(r, 3.5, 5, 60) <= 2.0);
	free(r);
}

/* Recovery within the packet interval wins within the delay budget: at 7.5 % 2:3
 * meets the target for 2.5 wire packets, packets waiting 7.8 ms on average for
 * parity; duplication 1:2 meets it for 3.0 (20 % more) and waits for nothing. */
static void test_delay_weighing(void)
{
	struct ls_fec_auto_conf c = conf;
	struct ls_fec_auto a;
	struct ls_fec_params p;
	double w, wait;

	setup();
	c = conf;
	ls_fec_auto_best(&c, 0.075, 1, 64, &p);
	fmt_is(&p, "1:2:20");
	c.delay_budget = 0.1;
	ls_fec_auto_best(&c, 0.075, 1, 64, &p);
	fmt_is(&p, "2:3:20");
	/* At 10 % duplication needs 1:3 (60 % more): 2:3 stays. */
	ls_fec_auto_best(&conf, 0.10, 1, 64, &p);
	fmt_is(&p, "2:3:20");
	/* The waits the policy weighs, over exact spacing. */
	ls_fec_auto_init(&a, &conf);
	for (uint64_t t = 1; t < 3000000; t += 15625)
		ls_fec_auto_sent(&a, t);
	p = P(2, 3, 0);
	ls_fec_auto_eval(&a, &p, 0.1, 1, &w, &wait);
	CU_ASSERT(fabs(wait - 15625 / 2.0) < 100);
	CU_ASSERT(fabs(w - 2.5) < 1e-9);
	p = P(1, 2, 0);
	ls_fec_auto_eval(&a, &p, 0.1, 1, &w, &wait);
	CU_ASSERT(wait == 0 && fabs(w - 3.0) < 1e-9);
}

UNIT_MAIN("fec_auto",
	  { "defaults and caps", test_conf },
	  { "model: independent loss, closed form", test_model_independent },
	  { "model: bursts, brute force", test_model_bursty },
	  { "kmax from the packet rate", test_kmax },
	  { "choices: 0/1/5/10/20/40 % independent", test_choices_independent },
	  { "choices: bursty loss", test_choices_bursty },
	  { "Monte Carlo with the real codec", test_monte_carlo },
	  { "hysteresis", test_hysteresis },
	  { "no flapping on thresholds", test_no_flapping },
	  { "packet rate change", test_rate_change },
	  { "cold start: protected within 1 s, no overshoot", test_cold_start },
	  { "onset of loss mid-run", test_onset_mid_run },
	  { "jittered sender at a k boundary", test_jittered_rate },
	  { "delay weighing: recovery within the interval", test_delay_weighing })
