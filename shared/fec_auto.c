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
#define GAP_UNIT_US 8      /* the spacing record's unit (a u16 holds 0.5 s) */
#define GAPS_MIN 4         /* fewer recorded gaps: the mean rate stands for them */
#define FULL_SHARE_MIN 0.1 /* no longer k once fewer blocks than this fill */
#define Z_LEARN 1.0        /* learning chooses for this lower bound */
#define LEARN_PACKETS 600.0 /* learning ends after this many packets reported */
#define WAIT_STEP_US 1000.0 /* a wait shorter by less than this is no better */
#define UP_RECHECK_US 2000000 /* a step up is looked at again this soon */

void ls_fec_auto_conf_default(struct ls_fec_auto_conf *c)
{
	c->target_residual = 0.0005;
	c->max_recovery_us = 20000;
	c->max_overhead = 4.0;
	c->hold_us = 10000000;
	c->quiet_us = 60000000;
	c->delay_budget = 0.2;
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
	a->learning = true; /* it knows nothing yet */
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

/* ---- blocks laid over the sender's spacing ---- */

/* The gaps between the packets a choice is judged on: the recorded ones, oldest
 * first, or n copies of one exact gap. */
struct spacing {
	const uint16_t *ring; /* NULL: exact */
	unsigned n, first;
	double exact_us;
};

static double sp_gap(const struct spacing *sp, unsigned i)
{
	if (!sp->ring)
		return sp->exact_us;
	return (double)sp->ring[(sp->first + i) % LS_FEC_AUTO_GAPS] * GAP_UNIT_US;
}

static void spacing_of(const struct ls_fec_auto *a, struct spacing *sp)
{
	const struct ls_fec_auto_gaps *g = &a->gaps;

	memset(sp, 0, sizeof(*sp));
	if (g->n >= GAPS_MIN) {
		sp->ring = g->gap;
		sp->n = g->n;
		sp->first = (unsigned)(g->pos + LS_FEC_AUTO_GAPS - g->n) % LS_FEC_AUTO_GAPS;
	} else if (a->pps > 0.0) {
		sp->n = LS_FEC_AUTO_GAPS;
		sp->exact_us = 1e6 / a->pps * JITTER_SPARE;
	}
}

/* How blocks of k with block time block_us close over the spacing: blocks by their
 * data count, and the total time data packets wait for their block to close. */
struct layout {
	double blocks[LS_FEC_MAX_K + 1];
	double packets, wait_us, span_us;
};

static void lay_blocks(const struct spacing *sp, unsigned k, uint32_t block_us,
		       struct layout *l)
{
	double t = 0, opened = 0, sum_t = 0;
	unsigned n = 1, i;
	bool open = true; /* the first packet opens a block */

	memset(l, 0, sizeof(*l));
	if (k == 0)
		return;
	if (k == 1) {
		l->blocks[1] = sp->n;
		l->packets = sp->n;
		for (i = 0; i < sp->n; i++)
			l->span_us += sp_gap(sp, i);
		return;
	}
	for (i = 0; i < sp->n; i++) {
		double g = sp_gap(sp, i);

		t += g;
		l->span_us += g;
		if (open && t - opened >= block_us) {
			/* Its time ran out before this packet: it closed short. */
			l->blocks[n]++;
			l->packets += n;
			l->wait_us += n * (opened + block_us) - sum_t;
			open = false;
		}
		if (!open) {
			open = true;
			opened = sum_t = t;
			n = 1;
			continue;
		}
		n++;
		sum_t += t;
		if (n == k) {
			l->blocks[k]++;
			l->packets += k;
			l->wait_us += k * t - sum_t;
			open = false;
		}
	}
}

/* Rows held back of a block with mp parity packets (ls_fec_spread_for's scaling). */
static unsigned spread_scaled(const struct ls_fec_params *p, unsigned mp)
{
	unsigned s = p->m ? (unsigned)p->spread * mp / p->m : 0;

	return mp == 0 ? 0 : s < mp ? s : mp - 1;
}

static double block_residual(const struct ls_fec_params *p, unsigned n, unsigned mp,
			     double loss, double burst)
{
	struct ls_fec_params q = { (uint8_t)n, (uint8_t)mp, p->block_us, 0 };

	q.spread = (uint8_t)(n >= p->k ? p->spread : spread_scaled(p, mp));
	return ls_fec_auto_residual(&q, loss, burst);
}

/* The residual of p's mixture of blocks over a layout; *wire and *wait_us as in
 * ls_fec_auto_eval. A short block of n owes m n / k parity packets: it gets the whole
 * part or one more (the fraction carried on), at least one. */
static double mix_eval(const struct ls_fec_params *p, const struct layout *l, double loss,
		       double burst, double *wire, double *wait_us)
{
	double data = 0, par = 0, lost = 0;
	unsigned n;

	*wire = 1.0;
	*wait_us = 0.0;
	if (p->k == 0)
		return loss > 0.0 ? loss : 0.0;
	for (n = 1; n <= p->k; n++) {
		double cnt = l->blocks[n], r, pm;

		if (cnt <= 0.0)
			continue;
		if (n == p->k) {
			r = block_residual(p, n, p->m, loss, burst);
			pm = p->m;
		} else {
			double x = (double)p->m * n / p->k;
			unsigned lo = (unsigned)x;
			double f = x - lo;

			if (lo < 1) {
				lo = 1;
				f = 0.0;
			}
			pm = lo + f;
			r = (1.0 - f) * block_residual(p, n, lo, loss, burst);
			if (f > 0.0)
				r += f * block_residual(p, n, lo + 1, loss, burst);
		}
		data += cnt * n;
		par += cnt * pm;
		lost += cnt * n * r;
	}
	if (data <= 0.0) {
		/* Nothing laid out (no spacing known): full blocks. */
		*wire = (double)(p->k + p->m) / p->k;
		return ls_fec_auto_residual(p, loss, burst);
	}
	*wire = (data + par) / data;
	*wait_us = l->wait_us / l->packets;
	/* Held parity leaves after the next packet: recoveries that need it wait that
	 * gap more. */
	if (p->spread && p->m && l->packets > 0.0)
		*wait_us += l->span_us / l->packets * p->spread / p->m;
	return lost / data;
}

double ls_fec_auto_eval(const struct ls_fec_auto *a, const struct ls_fec_params *p, double loss,
			double burst, double *wire, double *wait_us)
{
	struct spacing sp;
	struct layout l;

	spacing_of(a, &sp);
	lay_blocks(&sp, p->k, p->block_us, &l);
	return mix_eval(p, &l, loss, burst, wire, wait_us);
}

/* ---- the choice ---- */

struct cand {
	struct ls_fec_params p;
	double r, wire, wait_us;
};

static bool wire_less(double x, double y) { return x < y - 1e-9 * y; }

/* Equal but for rounding: where packets sit changes nothing under independent loss,
 * though the sums come out a few ulps apart. */
static bool same_residual(double x, double y)
{
	return fabs(x - y) <= 1e-9 * (x > y ? x : y);
}

/* The reference order: meets the target, then fewer wire packets, then less wait,
 * then lower residual; when neither meets it, the lower residual, then fewer wire
 * packets. */
static bool better(const struct cand *a, const struct cand *b, double target)
{
	bool ma = a->r <= target, mb = b->r <= target;

	if (ma != mb)
		return ma;
	if (!ma && !same_residual(a->r, b->r))
		return a->r < b->r;
	if (wire_less(a->wire, b->wire) || wire_less(b->wire, a->wire))
		return wire_less(a->wire, b->wire);
	if (fabs(a->wait_us - b->wait_us) >= WAIT_STEP_US)
		return a->wait_us < b->wait_us;
	return a->r < b->r && !same_residual(a->r, b->r);
}

/* Within the delay budget of the reference: less wait, then fewer wire packets. */
static bool sooner(const struct cand *a, const struct cand *b)
{
	if (fabs(a->wait_us - b->wait_us) >= WAIT_STEP_US)
		return a->wait_us < b->wait_us;
	if (wire_less(a->wire, b->wire) || wire_less(b->wire, a->wire))
		return wire_less(a->wire, b->wire);
	return a->r < b->r && !same_residual(a->r, b->r);
}

#define MAX_MET (3 * LS_FEC_MAX_K)

static void best_for(const struct ls_fec_auto_conf *c, const struct spacing *sp, double loss,
		     double burst, struct cand *out)
{
	struct cand best = { { 0, 0, c->max_recovery_us, 0 }, loss > 0.0 ? loss : 0.0, 1.0, 0.0 };
	struct cand met[MAX_MET];
	unsigned nmet = 0, k, m, i;

	if (best.r <= c->target_residual) {
		*out = best; /* off meets it: nothing is cheaper or sooner */
		return;
	}
	for (k = 1; k <= LS_FEC_MAX_K; k++) {
		unsigned mmax = (unsigned)floor(k * (c->max_overhead - 1.0) + 1e-9);
		struct layout l;

		if (sp->n == 0 && k > 1)
			break; /* no spacing known: one packet per block */
		lay_blocks(sp, k, c->max_recovery_us, &l);
		if (k > 1 && !(l.blocks[k] * k >= FULL_SHARE_MIN * l.packets))
			break; /* blocks of k hardly ever fill */
		if (mmax > LS_FEC_MAX_M)
			mmax = LS_FEC_MAX_M;
		for (m = 1; m <= mmax; m++) {
			/* Spread: none, half, or all but one of the parity. */
			unsigned spr[3] = { 0, m / 2, m - 1 };
			bool any = false;

			for (i = 0; i < 3; i++) {
				struct cand t;

				if (i && (spr[i] == spr[i - 1] || (i == 2 && spr[2] == spr[0])))
					continue;
				t.p = (struct ls_fec_params){ (uint8_t)k, (uint8_t)m,
							      c->max_recovery_us, (uint8_t)spr[i] };
				t.r = mix_eval(&t.p, &l, loss, burst, &t.wire, &t.wait_us);
				if (t.wire > c->max_overhead + 1e-9)
					continue;
				if (better(&t, &best, c->target_residual))
					best = t;
				if (t.r <= c->target_residual) {
					any = true;
					if (nmet < MAX_MET)
						met[nmet++] = t;
				}
			}
			if (any) /* more parity for this k only costs more */
				break;
		}
	}
	/* The cheapest that meets the target is the reference; one that recovers
	 * within the packet interval (its packets wait for no later one) for at most
	 * delay_budget more wire packets wins over it. */
	if (best.r <= c->target_residual) {
		struct cand pick = best;
		double cap = best.wire * (1.0 + c->delay_budget) + 1e-9;

		for (i = 0; i < nmet; i++)
			if (met[i].wire <= cap && met[i].wait_us < WAIT_STEP_US &&
			    sooner(&met[i], &pick))
				pick = met[i];
		best = pick;
	}
	*out = best;
}

double ls_fec_auto_best(const struct ls_fec_auto_conf *c, double loss, double burst, double pps,
			struct ls_fec_params *out)
{
	struct spacing sp = { NULL, 0, 0, 0 };
	struct cand b;

	if (pps > 0.0) {
		sp.n = LS_FEC_AUTO_GAPS;
		sp.exact_us = 1e6 / pps * JITTER_SPARE;
	}
	best_for(c, &sp, loss, burst, &b);
	*out = b.p;
	return b.r;
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
	bool onset;

	if (a->report_us && now_us > a->report_us) {
		double dt = (double)(now_us - a->report_us);

		win_decay(&a->fast, exp_neg(dt / FAST_TAU_US));
		win_decay(&a->slow, exp_neg(dt / SLOW_TAU_US));
	}
	a->report_us = now_us;
	if (expected == 0)
		return;
	/* Loss after FEC went quiet (or before it ever came): the path has just turned
	 * lossy, and what came before says nothing about how lossy. */
	onset = lost > 0.0 && (a->loss_us == 0 || a->cur.k == 0);
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
	if (onset) {
		memset(&a->learn, 0, sizeof(a->learn));
		a->learning = true;
		a->onsets++;
	}
	if (a->learning) {
		/* The long window is what was learnt, undecayed, until learning ends. */
		win_add(&a->learn, expected, lost, bursts);
		a->slow = a->learn;
		if (a->learn.expected >= LEARN_PACKETS)
			a->learning = false;
	} else {
		/* The path changed when the last seconds rule out the long estimate: the
		 * long window then starts again from them, rather than taking minutes to
		 * forget. */
		vf = var_factor(loss_bound(&a->slow, 0, 0, 1.0), burst_bound(&a->slow, 0, 0));
		slow = loss_bound(&a->slow, 0, 0, 1.0);
		if (loss_bound(&a->fast, Z_SHIFT, -1, vf) > slow ||
		    loss_bound(&a->fast, Z_SHIFT, 1, vf) < slow) {
			a->slow = a->fast;
			a->shifts++;
		}
	}
	a->loss = loss_bound(&a->slow, 0, 0, 1.0);
	a->burst = burst_bound(&a->slow, 0, 0);
}

void ls_fec_auto_sent(struct ls_fec_auto *a, uint64_t now_us)
{
	struct ls_fec_auto_gaps *g = &a->gaps;

	if (g->last_us && now_us >= g->last_us) {
		uint64_t u = (now_us - g->last_us) / GAP_UNIT_US;

		g->gap[g->pos] = (uint16_t)(u > UINT16_MAX ? UINT16_MAX : u);
		g->pos = (uint16_t)((g->pos + 1) % LS_FEC_AUTO_GAPS);
		if (g->n < LS_FEC_AUTO_GAPS)
			g->n++;
	}
	g->last_us = now_us ? now_us : 1;
}

void ls_fec_auto_rate(struct ls_fec_auto *a, uint32_t data_packets, uint64_t interval_us)
{
	double x;

	if (interval_us == 0)
		return;
	x = data_packets * 1e6 / (double)interval_us;
	a->pps = a->pps > 0.0 ? a->pps + 0.5 * (x - a->pps) : x;
}

bool ls_fec_auto_learning(const struct ls_fec_auto *a)
{
	return a->learning;
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
	/* A step up is looked at again after UP_RECHECK_US: the last seconds that
	 * called for it may have been a fluctuation, and it must not cost more than it
	 * needs for long. A step down holds for hold_us. */
	uint64_t hold = a->stepped_up ? UP_RECHECK_US : c->hold_us;
	bool held_long = now_us - a->changed_us >= hold || a->changes == 0;
	struct spacing sp;
	struct cand best;
	bool changed;
	double w, wait;

	spacing_of(a, &sp);
	if (!a->have_report || a->loss_us == 0 ||
	    (now_us >= a->loss_us && now_us - a->loss_us >= c->quiet_us)) {
		next = off; /* no loss reported (lately): nothing to protect against */
	} else if (a->learning) {
		/* Few packets counted: the choice follows what they show for sure, both
		 * ways, at every report. */
		/* Bursts as counted so far: too few to be sure of, but loss on a real
		 * path mostly comes in bursts, and independent loss reads as 1 anyway. */
		double bl = burst_bound(&a->learn, 0, 0);
		double ll = loss_bound(&a->learn, Z_LEARN, -1, var_factor(a->loss, bl));

		best_for(c, &sp, ll, bl, &best);
		next = best.p;
	} else {
		/* The estimate, unless the last seconds show more than it for sure. */
		bool b = bursty(a);
		double lu = maxd(a->loss, loss_bound(&a->fast, Z_UP_FAST, -1,
						     var_factor(a->loss, b ? a->burst : 1.0)));
		double bu = b ? maxd(a->burst, burst_bound(&a->fast, Z_UP_FAST, -1)) : 1.0;

		/* Judged over the sender's spacing: a block that the rate no longer fills
		 * closes short and protects less. */
		if (ls_fec_auto_eval(a, &a->cur, lu, bu, &w, &wait) > c->target_residual * UP_SLACK) {
			best_for(c, &sp, lu, bu, &best);
			next = best.p;
		} else if (held_long && now_us - a->checked_us >= hold) {
			/* Down to what is enough for the estimate, and for the last seconds,
			 * or to what recovers sooner within the delay budget; looked for
			 * once per hold_us, as the search costs more than the rest of a
			 * report (a proxy runs one policy per session). */
			double ld = maxd(a->loss, loss_bound(&a->fast, 0, 0, 1.0));
			double bd = b ? a->burst : 1.0;
			bool instant;

			a->checked_us = now_us;
			best_for(c, &sp, ld, bd, &best);
			/* Cheaper: down, but with a band between cost and wait as for the
			 * residual: a choice that recovers within the packet interval and
			 * meets the target stays while it is within the delay budget of the
			 * cheaper one, and one
			 * that waits less replaces the current one only for no more wire
			 * packets. */
			instant = ls_fec_auto_eval(a, &a->cur, ld, bd, &w, &wait) <= c->target_residual &&
				  wait < WAIT_STEP_US;
			if ((wire_less(best.wire, w) &&
			     (!instant || wire_less(best.wire * (1.0 + c->delay_budget), w))) ||
			    (best.wait_us <= wait - WAIT_STEP_US && !wire_less(w, best.wire)))
				next = best.p;
		}
	}
	if (next.k == 0)
		next = off;
	changed = !params_same(&next, &a->cur);
	if (changed) {
		double wn, wc;

		ls_fec_auto_eval(a, &next, 0, 1, &wn, &wait);
		ls_fec_auto_eval(a, &a->cur, 0, 1, &wc, &wait);
		a->stepped_up = !a->learning && wire_less(wc, wn);
		a->cur = next;
		a->changed_us = now_us;
		a->changes++;
	}
	a->residual = ls_fec_auto_eval(a, &a->cur, a->loss, a->burst, &w, &wait);
	*out = a->cur;
	return changed;
}
