/* What lightspeed-client and lightspeed-proxy share about forward error correction: the
 * setting ("off", "auto", "K:M" or "K:M:MS"), its form in a keepalive's FEC ask
 * (docs/protocol.md 1.4), and the counters both report in `stats`. Control paths only,
 * except dp_fec_add_dec, which only adds. */
#ifndef LS_DP_FEC_H
#define LS_DP_FEC_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "fec.h"
#include "fec_auto.h"
#include "jsonw.h"
#include "prom.h"
#include "proto.h"

enum dp_fec_mode { DP_FEC_OFF, DP_FEC_FIXED, DP_FEC_AUTO };

struct dp_fec_setting {
	uint8_t mode;            /* enum dp_fec_mode */
	struct ls_fec_params p;  /* DP_FEC_FIXED: the parameters */
};

/* "off", "auto", "K:M" or "K:M:MS". Returns 0, or -1 with a message in err. */
static inline int dp_fec_parse(const char *s, struct dp_fec_setting *out, char *err,
			       size_t errlen)
{
	struct ls_fec_params p;

	if (s && strcmp(s, "auto") == 0) {
		memset(out, 0, sizeof(*out));
		out->mode = DP_FEC_AUTO;
		return 0;
	}
	if (ls_fec_params_parse(s, &p, err, errlen) < 0) {
		/* The codec does not know "auto"; name it with the other forms. */
		size_t n = err && errlen ? strlen(err) : 0;
		if (n + 1 < errlen)
			snprintf(err + n, errlen - n, "; or \"auto\"");
		return -1;
	}
	out->mode = p.k ? DP_FEC_FIXED : DP_FEC_OFF;
	out->p = p;
	return 0;
}

static inline void dp_fec_fmt(const struct dp_fec_setting *s, char *buf, size_t len)
{
	if (s->mode == DP_FEC_AUTO)
		snprintf(buf, len, "auto");
	else if (s->mode == DP_FEC_FIXED)
		ls_fec_params_fmt(&s->p, buf, len);
	else
		snprintf(buf, len, "off");
}

/* The keepalive's FEC ask for a setting. The block time does not travel: the peer
 * uses the default one. */
static inline void dp_fec_to_ask(const struct dp_fec_setting *s, uint8_t *k, uint8_t *m)
{
	*k = s->mode == DP_FEC_AUTO ? LS_KA_FEC_AUTO : s->mode == DP_FEC_FIXED ? s->p.k : 0;
	*m = s->mode == DP_FEC_FIXED ? s->p.m : 0;
}

/* The setting a (range-checked, ls_keepalive_from_hdr) ask stands for. */
static inline void dp_fec_from_ask(uint8_t k, uint8_t m, struct dp_fec_setting *s)
{
	memset(s, 0, sizeof(*s));
	if (k == LS_KA_FEC_AUTO) {
		s->mode = DP_FEC_AUTO;
	} else if (k) {
		/* An ask carries no block time: it implies the default one. */
		s->p.block_us = LS_FEC_BLOCK_US_DEFAULT;
		s->p.k = k;
		s->p.m = m;
		s->mode = DP_FEC_FIXED;
	}
}

static inline bool dp_fec_same(const struct dp_fec_setting *a, const struct dp_fec_setting *b)
{
	return a->mode == b->mode &&
	       (a->mode != DP_FEC_FIXED || (a->p.k == b->p.k && a->p.m == b->p.m &&
					    a->p.block_us == b->p.block_us &&
					    a->p.spread == b->p.spread));
}

/* An encoder whose block numbers start at a random place: a receiver that still
 * remembers a restarted sender's earlier blocks (shared/fec.h) then never takes its new
 * ones for those. NULL when out of memory (the flow goes unprotected). */
static inline struct ls_fec_enc *dp_fec_enc_new(const struct ls_fec_params *p)
{
	struct ls_fec_enc *e = ls_fec_enc_new(p);
	uint16_t start;

	if (e && ls_random_bytes(&start, sizeof(start)) == 0)
		e->block = start;
	return e;
}

/* ---- the auto policy of one direction ---------------------------------------- */

/* The policy, and what it learns from our side: the data packets sent since the peer's
 * previous report. */
struct dp_fec_auto {
	struct ls_fec_auto au;
	uint32_t sent;       /* data packets sent since the previous report */
	uint64_t report_us;  /* when that report came; 0: none yet */
};

/* The parameters a setting puts in force now; auto starts its policy afresh (a new
 * path, or a switch to auto), which keeps FEC off until a report shows loss. */
static inline void dp_fec_start(const struct dp_fec_setting *s, struct dp_fec_auto *x,
				uint64_t now_us, struct ls_fec_params *out)
{
	struct ls_fec_auto_conf conf;

	*out = s->p;
	if (s->mode == DP_FEC_OFF)
		out->k = 0;
	x->sent = 0;
	x->report_us = 0;
	if (s->mode != DP_FEC_AUTO)
		return;
	ls_fec_auto_conf_default(&conf);
	ls_fec_auto_init(&x->au, &conf);
	ls_fec_auto_choose(&x->au, now_us, out);
}

/* The peer reported on our packets (growth since its previous report, burst in 1/16
 * packet); with the policy active it learns from the report and from our own rate over
 * the same interval. True when its choice changed, into *out. */
static inline bool dp_fec_report(struct dp_fec_auto *x, bool active, uint32_t expected,
				 uint32_t received, uint8_t burst, uint64_t now_us,
				 struct ls_fec_params *out)
{
	bool changed = false;

	if (active) {
		ls_fec_auto_report(&x->au, expected, received, burst / 16.0, now_us);
		if (x->report_us && now_us > x->report_us)
			ls_fec_auto_rate(&x->au, x->sent, now_us - x->report_us);
		changed = ls_fec_auto_choose(&x->au, now_us, out);
	}
	x->sent = 0;
	x->report_us = now_us;
	return changed;
}

/* A data packet left now (per packet: it only counts and notes the spacing). */
static inline void dp_fec_auto_sent(struct dp_fec_auto *x, uint64_t now_us)
{
	x->sent++;
	ls_fec_auto_sent(&x->au, now_us);
}

/* The peer's policy seen from here: the client runs a copy of the proxy's downstream
 * policy on the same reports its keepalive requests carry, to know whether that
 * policy is still learning (it never acts on the copy's choices). */
struct dp_fec_mirror {
	struct ls_fec_auto au;
	struct ls_rx_base base;
};

static inline void dp_fec_mirror_start(struct dp_fec_mirror *w, uint64_t now_us)
{
	struct ls_fec_params p;

	memset(&w->base, 0, sizeof(w->base));
	ls_fec_auto_init(&w->au, NULL);
	ls_fec_auto_choose(&w->au, now_us, &p);
}

/* A keepalive request carrying ka is about to leave. */
static inline void dp_fec_mirror_report(struct dp_fec_mirror *w, const struct ls_keepalive *ka,
					uint64_t now_us)
{
	uint32_t expected, received;
	struct ls_fec_params p;

	if (ls_rx_growth(&w->base, ka, &expected, &received)) {
		ls_fec_auto_report(&w->au, expected, received, ka->burst / 16.0, now_us);
		ls_fec_auto_choose(&w->au, now_us, &p);
	}
}

/* The client's keepalive cadence (docs/protocol.md 1.2.1): with auto, every
 * DP_FEC_KA_LEARN_MS while game packets flow and either direction's policy is
 * learning, else every DP_FEC_KA_WATCH_MS (so that the onset of loss is reported
 * within that); the configured interval when it is shorter, or without auto. */
#define DP_FEC_KA_LEARN_MS 100u
#define DP_FEC_KA_WATCH_MS 500u
#define DP_FEC_TRAFFIC_US 1000000u /* game packets flow: one sent this recently */
static inline uint32_t dp_fec_ka_ms(const struct dp_fec_setting *s, const struct dp_fec_auto *up,
				    const struct dp_fec_mirror *down, uint32_t keepalive_ms,
				    uint64_t now_us)
{
	uint64_t last = up->au.gaps.last_us;
	uint32_t want = DP_FEC_KA_WATCH_MS;

	if (s->mode != DP_FEC_AUTO)
		return keepalive_ms;
	if (last && now_us - last <= DP_FEC_TRAFFIC_US &&
	    (ls_fec_auto_learning(&up->au) || ls_fec_auto_learning(&down->au)))
		want = DP_FEC_KA_LEARN_MS;
	return want < keepalive_ms ? want : keepalive_ms;
}

/* epoll_wait's timeout for the earliest block deadline (0: none pending, -1 returned):
 * rounded up to the next millisecond, so parity never leaves before its time. */
static inline int dp_fec_wait_ms(uint64_t deadline_us, uint64_t now_us)
{
	uint64_t ms;

	if (!deadline_us)
		return -1;
	if (deadline_us <= now_us)
		return 0;
	ms = (deadline_us - now_us + 999) / 1000;
	return ms > 1000 ? 1000 : (int)ms;
}

/* Parameters as JSON: {"k":K,"m":M,"block_ms":MS,"spread":S}. */
static inline json_t *dp_fec_params_json(const struct ls_fec_params *p)
{
	return json_pack("{s:i,s:i,s:i,s:i}", "k", p->k, "m", p->m, "block_ms",
			 (int)((p->block_us + 999) / 1000), "spread", p->spread);
}

/* The same object through a JSON writer (long listings). */
static inline void dp_fec_params_write(const struct ls_fec_params *p, struct ls_jw *w)
{
	ls_jw_obj(w);
	ls_jw_key(w, "k");
	ls_jw_u64(w, p->k);
	ls_jw_key(w, "m");
	ls_jw_u64(w, p->m);
	ls_jw_key(w, "block_ms");
	ls_jw_u64(w, (p->block_us + 999) / 1000);
	ls_jw_key(w, "spread");
	ls_jw_u64(w, p->spread);
	ls_jw_end_obj(w);
}

/* ---- counters ---------------------------------------------------------------- */

struct dp_fec_counters {
	uint64_t parity_sent;  /* parity packets sent */
	uint64_t recovered;    /* data packets rebuilt and delivered */
	uint64_t lost_blocks;  /* blocks given up with data missing */
	uint64_t duplicates;   /* data or parity packets seen before */
	uint64_t corrupt;      /* packets that contradict their block */
};

/* Fold a decoder's counters in (when it is freed, or to sum the live ones). */
static inline void dp_fec_add_dec(struct dp_fec_counters *c, const struct ls_fec_dec *d)
{
	c->recovered += d->recovered;
	c->lost_blocks += d->lost_blocks;
	c->duplicates += d->duplicates;
	c->corrupt += d->corrupt;
}

static const struct {
	const char *name;
	size_t offset;
	const char *help;
} dp_fec_counter_defs[] = {
#define DP_FEC_C(n, h) { #n, offsetof(struct dp_fec_counters, n), h }
	DP_FEC_C(parity_sent, "FEC parity packets sent."),
	DP_FEC_C(recovered, "Lost packets rebuilt by FEC and delivered."),
	DP_FEC_C(lost_blocks, "FEC blocks lost beyond repair."),
	DP_FEC_C(duplicates, "FEC data or parity packets received twice."),
	DP_FEC_C(corrupt, "FEC packets that contradict their block."),
#undef DP_FEC_C
};

static inline uint64_t dp_fec_counter(const struct dp_fec_counters *c, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)c + dp_fec_counter_defs[i].offset, sizeof(v));
	return v;
}

/* The `fec` object of `stats`. */
static inline json_t *dp_fec_counters_json(const struct dp_fec_counters *c)
{
	json_t *o = json_object();

	for (size_t i = 0; i < sizeof(dp_fec_counter_defs) / sizeof(dp_fec_counter_defs[0]); i++)
		json_object_set_new(o, dp_fec_counter_defs[i].name,
				    json_integer((json_int_t)dp_fec_counter(c, i)));
	return o;
}

/* The same as Prometheus counters, PREFIX_fec_NAME_total. */
static inline void dp_fec_counters_prom(struct ls_buf *b, const char *prefix,
					const struct dp_fec_counters *c)
{
	char name[96];

	for (size_t i = 0; i < sizeof(dp_fec_counter_defs) / sizeof(dp_fec_counter_defs[0]); i++) {
		snprintf(name, sizeof(name), "%s_fec_%s_total", prefix, dp_fec_counter_defs[i].name);
		ls_prom_header(b, name, "counter", dp_fec_counter_defs[i].help);
		ls_prom_u64(b, name, NULL, dp_fec_counter(c, i));
	}
}

#endif
