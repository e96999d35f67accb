/* Adaptive FEC (fec_auto.h): a Gilbert-Elliott model of the path, an exact residual-
 * loss computation per candidate, and a chooser with confidence-bound hysteresis. */
#include "fec_auto.h"

#include <math.h>
#include <string.h>

#define FAST_TAU_US 3e6
#define SLOW_TAU_US 120e6
/* Step up when the current choice's residual at the estimate exceeds twice the
 * target; step down when a cheaper one meets the target. A residual is steep in the
 * loss rate and the burst length (2:4 with spread doubles from 2 % in bursts of 2 to
 * bursts of 2.4), so a narrower band would follow the estimate's noise: at 2 % loss
 * a minute holds only about a hundred bursts. */
#define UP_SLACK    2.0
#define Z_UP_FAST   3.0 /* a rise in the last seconds counts when this sure */
#define Z_SHIFT     4.0 /* the path changed when the last seconds are this sure */
#define Z_BURSTY    2.0 /* bursts count as real when this sure ... */
#define BURSTY_MARGIN 1.1 /* ... that they are this much longer than independent loss's */
#define BURST_MAX   16.0 /* the report's field saturates at 15.9 */
/* A block of k must span k - 1 packet intervals with this much to spare within the
 * block time, so that the game's timing jitter does not split it (a split block pays
 * parity for each part). */
#define JITTER_SPARE 1.15

void ls_fec_auto_conf_default(struct ls_fec_auto_conf *c)
{
	c->target_residual = 0.0005;
	c->max_recovery_us = 20000;
	c->max_overhead = 4.0;
	c->hold_us = 10000000;
	c->quiet_us = 60000000;
}

void ls_fec_auto_init(struct ls_fec_auto *a, const struct ls_fec_auto_conf *c)
{
	memset(a, 0, sizeof(*a));
	if (c)
		a->conf = *c;
	else
		ls_fec_auto_conf_default(&a->conf);
	a->burst = 1.0;
	a->cur.block_us = a->conf.max_recovery_us;
}

/* ---- the model ---- */

/* Chain parameters for loss L in bursts of mean B: P(good -> bad) and P(bad -> good). */
static void ge_params(double loss, double burst, double *p, double *r)
{
	double bmin = 1.0 / (1.0 - loss);

	if (!(burst >= bmin)) /* also catches NaN */
		burst = bmin;
	*r = 1.0 / burst;
	*p = *r * loss / (1.0 - loss);
	if (*p > 1.0)
		*p = 1.0;
}

/* Position in the stream (relative to the block's first packet) of the block's j-th
 * packet in sending order, and whether it is data. The stream per block is: data 0,
 * the previous block's held parity (spread), data 1..k-1, parity sent at the close;
 * then the next block's data 0 and this block's held parity. */
static unsigned stream_pos(unsigned k, unsigned m, unsigned s, unsigned j, bool *data)
{
	*data = j < k;
	if (j == 0)
		return 0;
	if (j < k + m - s)
		return s + j;
	return k + m + 1 + (j - (k + m - s));
}

double ls_fec_auto_residual(const struct ls_fec_params *prm, double loss, double burst)
{
	/* pr[(g * k + rc) * (k + 1) + ld]: the chain in state g (1 = bad), rc of the block's
	 * packets received so far and ld of its data lost. rc stays below k: a state that
	 * reaches k is solved, every loss recovered, and drops out. */
	double cur[2 * LS_FEC_MAX_K * (LS_FEC_MAX_K + 1)], nxt[2 * LS_FEC_MAX_K * (LS_FEC_MAX_K + 1)];
	unsigned k = prm->k, m = prm->m, s = prm->spread, j, rc, ld, prev = 0, w, half;
	double p, r, pi, lam, sum = 0;

	if (k == 0 || loss <= 0.0)
		return loss > 0.0 ? loss : 0.0;
	if (loss >= 1.0)
		return 1.0;
	if (k > LS_FEC_MAX_K)
		k = LS_FEC_MAX_K;
	if (m > LS_FEC_MAX_M)
		m = LS_FEC_MAX_M;
	if (s >= m)
		s = m ? m - 1 : 0;
	w = k + 1;
	half = k * w; /* offset of the bad state */
	ge_params(loss, burst, &p, &r);
	pi = p / (p + r);
	lam = 1.0 - p - r;
	memset(cur, 0, 2 * half * sizeof(double));
	cur[0] = 1.0 - pi;
	cur[half] = pi;
	for (j = 0; j < k + m; j++) {
		bool data;
		unsigned pos = stream_pos(k, m, s, j, &data), i;

		if (pos > prev) {
			/* g steps of the chain: P(bad after g steps) = pi + (x - pi) lam^g
			 * from x = 1 (bad) or 0 (good); lam^g by repeated products, g is small. */
			double lg = 1.0, bb, gb;

			for (i = prev; i < pos; i++)
				lg *= lam;
			bb = pi + (1.0 - pi) * lg;
			gb = pi - pi * lg;
			for (i = 0; i < half; i++) {
				double g0 = cur[i], b0 = cur[half + i];

				cur[i] = g0 * (1.0 - gb) + b0 * (1.0 - bb);
				cur[half + i] = g0 * gb + b0 * bb;
			}
		}
		prev = pos;
		memset(nxt, 0, 2 * half * sizeof(double));
		for (rc = 0; rc < k; rc++)
			for (ld = 0; ld <= k; ld++) {
				double g0 = cur[rc * w + ld], b0 = cur[half + rc * w + ld];

				if (rc + 1 < k)
					nxt[(rc + 1) * w + ld] += g0;
				if (b0 != 0.0) /* data lost: ld grows (never past k: only k data) */
					nxt[half + rc * w + ld + (data ? 1 : 0)] += b0;
			}
		memcpy(cur, nxt, 2 * half * sizeof(double));
	}
	for (rc = 0; rc < k; rc++)
		for (ld = 1; ld <= k; ld++)
			sum += (cur[rc * w + ld] + cur[half + rc * w + ld]) * ld;
	return sum / k;
}

unsigned ls_fec_auto_kmax(const struct ls_fec_auto_conf *c, double pps)
{
	double span;
	unsigned k;

	if (!(pps > 0.0))
		return 1;
	span = c->max_recovery_us / (1e6 / pps * JITTER_SPARE);
	if (span >= LS_FEC_MAX_K - 1)
		return LS_FEC_MAX_K;
	k = 1 + (unsigned)span;
	return k;
}

/* Negative when a costs fewer wire packets per data packet than b. */
static int cmp_overhead(const struct ls_fec_params *a, const struct ls_fec_params *b)
{
	unsigned x, y;

	if (a->k == 0 || b->k == 0)
		return (a->k != 0) - (b->k != 0);
	x = (unsigned)(a->k + a->m) * b->k;
	y = (unsigned)(b->k + b->m) * a->k;
	return (x > y) - (x < y);
}

/* Longest recovery delay, in packet intervals. */
static unsigned delay_key(const struct ls_fec_params *p)
{
	return p->k ? (p->k - 1u) + (p->spread ? 1u : 0u) : 0u;
}

/* Equal but for rounding: where packets sit changes nothing under independent loss,
 * though the sums come out a few ulps apart. */
static bool same_residual(double x, double y)
{
	return fabs(x - y) <= 1e-9 * (x > y ? x : y);
}

/* Better candidate (for the target): meets it, then fewer wire packets, then shorter
 * delay, then lower residual; when neither meets it, the lower residual, then fewer
 * wire packets. */
static bool better(const struct ls_fec_params *a, double ra, const struct ls_fec_params *b,
		   double rb, double target)
{
	bool ma = ra <= target, mb = rb <= target;
	int c;

	if (ma != mb)
		return ma;
	if (!ma && !same_residual(ra, rb))
		return ra < rb;
	c = cmp_overhead(a, b);
	if (c)
		return c < 0;
	if (delay_key(a) != delay_key(b))
		return delay_key(a) < delay_key(b);
	return ra < rb && !same_residual(ra, rb);
}

double ls_fec_auto_best(const struct ls_fec_auto_conf *c, double loss, double burst, double pps,
			struct ls_fec_params *out)
{
	struct ls_fec_params best = { 0, 0, c->max_recovery_us, 0 }, t;
	double rbest = loss > 0.0 ? loss : 0.0;
	unsigned kmax = ls_fec_auto_kmax(c, pps), k, m, i;

	for (k = 1; k <= kmax; k++) {
		unsigned mmax = (unsigned)floor(k * (c->max_overhead - 1.0) + 1e-9);

		if (mmax > LS_FEC_MAX_M)
			mmax = LS_FEC_MAX_M;
		for (m = 1; m <= mmax; m++) {
			/* Spread: none, half, or all but one of the parity. */
			unsigned sp[3] = { 0, m / 2, m - 1 };
			bool met = false;

			for (i = 0; i < 3; i++) {
				double rt;

				if (i && (sp[i] == sp[i - 1] || (i == 2 && sp[2] == sp[0])))
					continue;
				t = (struct ls_fec_params){ (uint8_t)k, (uint8_t)m, c->max_recovery_us,
							    (uint8_t)sp[i] };
				rt = ls_fec_auto_residual(&t, loss, burst);
				if (better(&t, rt, &best, rbest, c->target_residual)) {
					best = t;
					rbest = rt;
				}
				met |= rt <= c->target_residual;
			}
			if (met) /* more parity for this k only costs more */
				break;
		}
	}
	*out = best;
	return rbest;
}

/* ---- the estimate ---- */

static void win_decay(struct ls_fec_auto_win *w, double f)
{
	w->expected *= f;
	w->lost *= f;
	w->bursts *= f;
}

static void win_add(struct ls_fec_auto_win *w, double expected, double lost, double bursts)
{
	w->expected += expected;
	w->lost += lost;
	w->bursts += bursts;
}

/* Losses in bursts are not independent draws: over n packets the variance of the
 * loss count is n L (1 - L) (1 + lam) / (1 - lam), lam = 1 - p - r being the chain's
 * memory, so a bound counts n divided by that factor as its sample. */
static double var_factor(double loss, double burst)
{
	double p, r, lam;

	if (!(loss > 0.0 && loss < 1.0))
		return 1.0;
	ge_params(loss, burst, &p, &r);
	lam = 1.0 - p - r;
	return lam > 0.0 ? (1.0 + lam) / (1.0 - lam) : 1.0;
}

/* Wilson score bound on the loss rate: side > 0 upper, < 0 lower, 0 the estimate;
 * vf is var_factor. */
static double loss_bound(const struct ls_fec_auto_win *w, double z, int side, double vf)
{
	double n = w->expected / vf, x = w->lost / vf, ph, z2 = z * z, den, c, h;

	if (n <= 0.0)
		return 0.0;
	if (x > n)
		x = n;
	ph = x / n;
	if (side == 0)
		return ph;
	den = 1.0 + z2 / n;
	c = (ph + z2 / (2.0 * n)) / den;
	h = z * sqrt(ph * (1.0 - ph) / n + z2 / (4.0 * n * n)) / den;
	c += side > 0 ? h : -h;
	return c < 0.0 ? 0.0 : c > 1.0 ? 1.0 : c;
}

/* Mean burst length and its bound: burst lengths are geometric, so the mean of nb of
 * them has standard deviation sqrt(B (B - 1) / nb). */
static double burst_bound(const struct ls_fec_auto_win *w, double z, int side)
{
	double b, sd;

	if (w->bursts <= 0.0 || w->lost <= 0.0)
		return 1.0;
	b = w->lost / w->bursts;
	if (b < 1.0)
		b = 1.0;
	sd = sqrt(b * (b - 1.0) / w->bursts);
	b += side * z * sd;
	return b < 1.0 ? 1.0 : b > BURST_MAX ? BURST_MAX : b;
}

/* e^-x for x >= 0, without libm (the dataplane links no math library: its pages would
 * count against the idle memory budget). Halving x until the series converges fast,
 * then squaring back, keeps the relative error near 1e-6, plenty for decay weights. */
static double exp_neg(double x)
{
	double t;
	int halvings = 0;

	if (!(x < 700.0))
		return 0.0;
	while (x > 0.125) {
		x *= 0.5;
		halvings++;
	}
	t = 1.0 - x * (1.0 - x / 2.0 * (1.0 - x / 3.0 * (1.0 - x / 4.0 * (1.0 - x / 5.0 *
									  (1.0 - x / 6.0)))));
	while (halvings--)
		t *= t;
	return t;
}

void ls_fec_auto_report(struct ls_fec_auto *a, uint32_t expected, uint32_t received,
			double mean_burst, uint64_t now_us)
{
	double lost = expected > received ? (double)(expected - received) : 0.0, bursts = 0.0;
	double vf, slow;

	if (a->report_us && now_us > a->report_us) {
		double dt = (double)(now_us - a->report_us);

		win_decay(&a->fast, exp_neg(dt / FAST_TAU_US));
		win_decay(&a->slow, exp_neg(dt / SLOW_TAU_US));
	}
	a->report_us = now_us;
	if (expected == 0)
		return;
	if (lost > 0.0) {
		/* A peer that saw loss but reports no burst length is read as single losses. */
		if (!(mean_burst >= 1.0))
			mean_burst = 1.0;
		if (mean_burst > BURST_MAX)
			mean_burst = BURST_MAX;
		bursts = lost / mean_burst;
		a->loss_us = now_us ? now_us : 1;
	}
	win_add(&a->fast, expected, lost, bursts);
	win_add(&a->slow, expected, lost, bursts);
	a->have_report = true;
	/* The path changed when the last seconds rule out the long estimate: the long
	 * window then starts again from them, rather than taking minutes to forget. */
	vf = var_factor(loss_bound(&a->slow, 0, 0, 1.0), burst_bound(&a->slow, 0, 0));
	slow = loss_bound(&a->slow, 0, 0, 1.0);
	if (loss_bound(&a->fast, Z_SHIFT, -1, vf) > slow || loss_bound(&a->fast, Z_SHIFT, 1, vf) < slow) {
		a->slow = a->fast;
		a->shifts++;
	}
	a->loss = loss_bound(&a->slow, 0, 0, 1.0);
	a->burst = burst_bound(&a->slow, 0, 0);
}

void ls_fec_auto_rate(struct ls_fec_auto *a, uint32_t data_packets, uint64_t interval_us)
{
	double x;

	if (interval_us == 0)
		return;
	x = data_packets * 1e6 / (double)interval_us;
	a->pps = a->pps > 0.0 ? a->pps + 0.5 * (x - a->pps) : x;
}

static bool params_same(const struct ls_fec_params *a, const struct ls_fec_params *b)
{
	if (a->k == 0 && b->k == 0)
		return true;
	return a->k == b->k && a->m == b->m && a->block_us == b->block_us && a->spread == b->spread;
}

static double maxd(double x, double y) { return x > y ? x : y; }

/* Whether the bursts are real: the lower bound of their mean length clearly above
 * the 1 / (1 - L) that independent loss gives. Until then the loss is modelled as
 * independent, so noise in the burst estimate does not buy spread parity, which
 * delays the recoveries that use it. */
static bool bursty(const struct ls_fec_auto *a)
{
	return burst_bound(&a->slow, Z_BURSTY, -1) > BURSTY_MARGIN / (1.0 - a->loss) ||
	       burst_bound(&a->fast, Z_UP_FAST, -1) > BURSTY_MARGIN / (1.0 - a->loss);
}

bool ls_fec_auto_choose(struct ls_fec_auto *a, uint64_t now_us, struct ls_fec_params *out)
{
	const struct ls_fec_auto_conf *c = &a->conf;
	struct ls_fec_params next = a->cur, off = { 0, 0, c->max_recovery_us, 0 };
	bool held_long = now_us - a->changed_us >= c->hold_us || a->changes == 0;
	bool changed;

	if (!a->have_report || a->loss_us == 0 ||
	    (now_us >= a->loss_us && now_us - a->loss_us >= c->quiet_us)) {
		next = off; /* no loss reported (lately): nothing to protect against */
	} else {
		/* The estimate, unless the last seconds show more than it for sure. */
		bool b = bursty(a);
		double lu = maxd(a->loss, loss_bound(&a->fast, Z_UP_FAST, -1,
						     var_factor(a->loss, b ? a->burst : 1.0)));
		double bu = b ? maxd(a->burst, burst_bound(&a->fast, Z_UP_FAST, -1)) : 1.0;
		unsigned kmax = ls_fec_auto_kmax(c, a->pps);
		/* A block longer than the packet rate allows would close by time, short. */
		bool unfit = a->cur.k > kmax && a->pps >= 1.0;

		if (unfit || ls_fec_auto_residual(&a->cur, lu, bu) > c->target_residual * UP_SLACK) {
			ls_fec_auto_best(c, lu, bu, a->pps, &next);
		} else if (held_long && now_us - a->checked_us >= c->hold_us) {
			/* Down to what is enough for the estimate, and for the last seconds;
			 * looked for once per hold_us, as the search costs more than the rest
			 * of a report (a proxy runs one policy per session). */
			double ld = maxd(a->loss, loss_bound(&a->fast, 0, 0, 1.0));
			double bd = b ? a->burst : 1.0;
			struct ls_fec_params cand;

			a->checked_us = now_us;
			ls_fec_auto_best(c, ld, bd, a->pps, &cand);
			if (cmp_overhead(&cand, &a->cur) < 0)
				next = cand;
		}
	}
	if (next.k == 0)
		next = off;
	changed = !params_same(&next, &a->cur);
	if (changed) {
		a->cur = next;
		a->changed_us = now_us;
		a->changes++;
	}
	a->residual = ls_fec_auto_residual(&a->cur, a->loss, a->burst);
	*out = a->cur;
	return changed;
}
