/* Adaptive FEC: choose k, m, block time and spread for one direction of a path from
 * what the peer reports about the packets it receives (loss rate and mean loss burst,
 * docs/protocol.md 1.4) and from the sender's own packet rate, aiming at a residual
 * loss target with the least overhead and a bound on recovery delay.
 *
 * The model. Loss is a Gilbert-Elliott chain over the packets of the tunnel in one
 * direction (data and parity alike): a lost packet starts a burst of mean length B,
 * and the loss rate L fixes how often bursts start (r = 1/B, p = r L / (1 - L); B = 1 /
 * (1 - L) is independent loss, and a shorter reported burst is read as that). For a
 * candidate (k, m, spread) the expected share of data packets that stay lost is
 * computed exactly by following the chain along the block's positions in the stream
 * the encoder produces: its data, the previous block's held parity after its first
 * packet, its own parity, and its held parity after the next block's first packet.
 *
 * The choice. A block closes when it holds k packets or its time (the recovery bound)
 * has run out since its first packet. The sender records the spacing of its last 128
 * data packets, and each candidate's blocks are laid over that real spacing as the
 * encoder would close them: how many blocks fill, how many close by time with fewer
 * packets (they get parity in proportion, the fraction carried on, at least one), and
 * how long a packet waits for its block's parity. The residual and the wire cost of a
 * candidate are those of that mixture of blocks, so a jittered sender near a k
 * boundary pays for the blocks that split, not for a smaller k (before any spacing is
 * recorded, the mean rate stands for it, with 15 % to spare for jitter). Among the
 * candidates within max_overhead wire packets per data packet, the one meeting the
 * target with the fewest wire packets is the reference; a candidate that also meets
 * it, costs at most delay_budget more than the reference and recovers within the
 * packet interval (no packet waits for a later one: duplication, where a block of two
 * waits for the next packet) wins over it. When none meets
 * the target, the lowest residual within max_overhead wins. Spread parity leaves one
 * packet interval after the block: a recovery that needs it takes that much longer,
 * which only bursty loss makes worth it.
 *
 * Learning. While the policy knows little (from its start, and from the onset of loss:
 * the first report with loss after 3 s without any) it chooses at every report, up or
 * down, for the lower confidence bound (z = 1) of the loss counted since then, so it
 * protects at once but is not driven above its steady choice by the noise of a few
 * dozen packets. Learning ends after 600 packets reported; the counts since then become
 * the long window. ls_fec_auto_learning tells the dataplane to report faster meanwhile
 * (docs/protocol.md 1.2.1).
 *
 * The estimate and hysteresis. The peer's reports are summed in two exponentially
 * decaying windows (3 s and 120 s); the estimate is the long one, raised to the 3 s
 * window's lower confidence bound (Wilson, z = 3) when that is higher, so a rise in
 * loss counts within seconds but noise does not. Confidence bounds count a burst's
 * losses as one draw, roughly: the sample is divided by the variance factor of the
 * chain. When the 3 s window rules out the long estimate (z = 4), the path has
 * changed and the long window restarts from the short one. Bursts count only once
 * the long window shows them for sure (lower bound, z = 2, 10 % above the
 * 1 / (1 - L) of independent loss); until then the loss is modelled as independent,
 * so noise in the burst estimate buys no spread parity. The choice steps up at once
 * when the current one's residual at the estimate exceeds twice the target, to the
 * best for the estimate; it steps down only after hold_us with the current choice, to
 * the best for the estimate and the 3 s window's, if that costs fewer wire packets.
 * The band between the two keeps it from following the estimate's noise: a residual
 * is steep in loss and burst length, and at 2 % loss a minute holds only about a
 * hundred bursts. FEC is off before the first report showing loss and after quiet_us
 * without any. */
#ifndef LS_FEC_AUTO_H
#define LS_FEC_AUTO_H

#include <stdbool.h>
#include <stdint.h>

#include "fec.h"

struct ls_fec_auto_conf {
	double target_residual;   /* per direction, default 0.0005 (0.05 %) */
	uint32_t max_recovery_us; /* a block's first parity leaves this soon after its
				   * first packet, default 20000; also the block time */
	double max_overhead;      /* wire packets per data packet, default 4.0 */
	uint64_t hold_us;         /* least time between a change and a step down,
				   * default 10 s */
	uint64_t quiet_us;        /* FEC goes off after this long without any loss
				   * reported, default 60 s */
	double delay_budget;      /* extra wire cost (a fraction of the cheapest
				   * choice's) paid to recover sooner, default 0.2 */
};
void ls_fec_auto_conf_default(struct ls_fec_auto_conf *c);

/* Decaying sums of the peer's reports over one window. */
struct ls_fec_auto_win {
	double expected, lost, bursts;
};

/* The spacing of the sender's latest data packets, in 8 us units (saturated). */
#define LS_FEC_AUTO_GAPS 128
struct ls_fec_auto_gaps {
	uint16_t gap[LS_FEC_AUTO_GAPS];
	uint16_t n, pos;  /* gaps recorded (at most LS_FEC_AUTO_GAPS), next slot */
	uint64_t last_us; /* the latest data packet, 0: none yet */
};

struct ls_fec_auto {
	struct ls_fec_auto_conf conf;
	double loss;       /* smoothed loss fraction of our packets at the peer (30 s) */
	double burst;      /* smoothed mean burst length (packets), >= 1 */
	double pps;        /* smoothed data packets per second we send */
	bool have_report;
	struct ls_fec_params cur;
	uint64_t changed_us;
	double residual;   /* the model's residual for cur at the smoothed estimate */
	struct ls_fec_auto_win fast, slow;
	uint64_t report_us; /* the latest report */
	uint64_t loss_us;   /* the latest report with loss */
	uint64_t checked_us; /* the latest look for a cheaper choice */
	uint64_t changes;   /* choices made */
	uint64_t shifts;    /* times the long window restarted: the path changed */
	struct ls_fec_auto_gaps gaps;
	struct ls_fec_auto_win learn; /* undecayed counts since learning (re)started */
	bool learning;
	bool stepped_up;    /* the latest change cost more wire packets */
	uint64_t onsets;    /* times loss began after a quiet spell */
};
void ls_fec_auto_init(struct ls_fec_auto *a, const struct ls_fec_auto_conf *c);
/* A report from the peer covering an interval: packets it expected and received from
 * us (growth of rx_highest and rx_count) and the mean loss burst it saw (packets; the
 * keepalive's burst field / 16, 0 when it saw no loss). */
void ls_fec_auto_report(struct ls_fec_auto *a, uint32_t expected, uint32_t received,
			double mean_burst, uint64_t now_us);
/* Our own data packet count over an interval of interval_us. Call it regularly (with
 * the reports is enough): the packet rate decides how many packets fit in a block. */
void ls_fec_auto_rate(struct ls_fec_auto *a, uint32_t data_packets, uint64_t interval_us);
/* A data packet left now: its spacing from the previous one decides how blocks fill.
 * Per packet, so it only stores the gap. */
void ls_fec_auto_sent(struct ls_fec_auto *a, uint64_t now_us);
/* The parameters to use now (FEC off until a report shows loss). Returns true when
 * they differ from the previous call's. */
bool ls_fec_auto_choose(struct ls_fec_auto *a, uint64_t now_us, struct ls_fec_params *out);
/* True while the policy is learning (see above): reports should come faster. */
bool ls_fec_auto_learning(const struct ls_fec_auto *a);

/* ---- the model, for tests and tools ---- */

/* Expected share of data packets lost after recovery with p (full blocks, spread as
 * the encoder places it) on a path losing `loss` of its packets in bursts of mean
 * `burst` packets. p->k == 0 (off) gives loss. */
double ls_fec_auto_residual(const struct ls_fec_params *p, double loss, double burst);
/* The largest k whose block fits in max_recovery_us at pps data packets per second. */
unsigned ls_fec_auto_kmax(const struct ls_fec_auto_conf *c, double pps);
/* The choice for a known path, without hysteresis, for packets sent at exactly pps
 * (with the 15 % jitter spare); returns its residual. */
double ls_fec_auto_best(const struct ls_fec_auto_conf *c, double loss, double burst, double pps,
			struct ls_fec_params *out);
/* What a candidate gives with the policy's recorded spacing (or its mean rate): the
 * residual of the mixture of full and short blocks; *wire, wire packets per data
 * packet; *wait_us, the mean time a data packet waits for its block's parity. */
double ls_fec_auto_eval(const struct ls_fec_auto *a, const struct ls_fec_params *p, double loss,
			double burst, double *wire, double *wait_us);

#endif
