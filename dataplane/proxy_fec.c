/* lightspeed-proxy: each session's forward error correction (docs/protocol.md 1.2).
 * Downstream the proxy protects replies with the session's explicit setting if it has
 * one (session_add, [[session]], set_fec), else with what the client asks in its
 * keepalive requests; "auto" runs the policy on the client's reports of our packets.
 * Upstream every flow decodes what the client encoded. State is allocated when a
 * session or flow first needs it, so sessions without FEC cost only a pointer. */
#include "proxy.h"

#include <stdlib.h>
#include <string.h>

static struct px_fec *fec_get(struct px_session *s)
{
	if (!s->fec)
		s->fec = calloc(1, sizeof(*s->fec));
	return s->fec;
}

static const struct dp_fec_setting *in_force(const struct px_fec *x)
{
	return x->pinned ? &x->pin : &x->ask;
}

/* The encoders take new parameters from their next block; flows without one get it
 * with their next reply. */
static void apply(struct px_session *s, const struct ls_fec_params *p)
{
	s->fec->down = *p;
	for (struct px_flow *f = s->flows; f; f = f->next)
		if (f->enc)
			ls_fec_enc_set(f->enc, p);
}

/* The setting in force changed (or auto must measure a new client's path afresh). */
static void setting_changed(struct px_session *s, uint64_t now)
{
	struct ls_fec_params p;

	dp_fec_start(in_force(s->fec), &s->fec->au, now, &p);
	apply(s, &p);
}

int px_fec_pin(struct px_session *s, const struct dp_fec_setting *set, uint64_t now)
{
	struct px_fec *x;

	if (!set && !s->fec)
		return 0;
	x = fec_get(s);
	if (!x)
		return -1;
	x->pinned = set != NULL;
	if (set)
		x->pin = *set;
	setting_changed(s, now);
	return 0;
}

void px_fec_client_request(struct px_session *s, const struct ls_keepalive *ka, uint64_t now)
{
	struct dp_fec_setting ask;
	struct px_fec *x = s->fec;
	uint32_t expected, received;
	struct ls_fec_params par;

	dp_fec_from_ask(ka->fec_k, ka->fec_m, &ask);
	/* A client that asks for nothing costs nothing. */
	if (!x && ask.mode == DP_FEC_OFF)
		return;
	if (!x && !(x = fec_get(s)))
		return;
	if (!dp_fec_same(&ask, &x->ask)) {
		x->ask = ask;
		if (!x->pinned)
			setting_changed(s, now);
	}
	if (ls_rx_growth(&x->base, ka, &expected, &received) &&
	    dp_fec_report(&x->au, in_force(x)->mode == DP_FEC_AUTO, expected, received,
			  ka->burst, now, &par))
		apply(s, &par);
}

struct ls_fec_enc *px_fec_enc(struct px_session *s, struct px_flow *f)
{
	/* Out of memory: replies go unprotected rather than unsent. */
	if (!f->enc && s->fec && s->fec->down.k)
		f->enc = dp_fec_enc_new(&s->fec->down);
	return f->enc;
}

struct ls_fec_dec *px_fec_dec(struct px_flow *f)
{
	if (!f->dec)
		f->dec = ls_fec_dec_new(0);
	/* Parity over another path may come later than the data (1.9). */
	if (f->dec)
		f->dec->timeout_us = f->s->multipath ? LS_FEC_DEC_TIMEOUT_PATHS
						     : LS_FEC_DEC_TIMEOUT_DEFAULT;
	return f->dec;
}

void px_fec_flow_close(struct px *p, struct px_flow *f)
{
	if (f->fec_pending) {
		struct px_flow **pp = &p->fec_pending;

		while (*pp && *pp != f)
			pp = &(*pp)->fec_next;
		if (*pp)
			*pp = f->fec_next;
		f->fec_pending = false;
	}
	ls_fec_enc_delete(f->enc);
	f->enc = NULL;
	if (f->dec) {
		dp_fec_add_dec(&p->fec_ctr, f->dec);
		ls_fec_dec_delete(f->dec);
		f->dec = NULL;
	}
}

void px_fec_session_reset(struct px_session *s)
{
	struct px_fec *x = s->fec;
	uint64_t now = ls_now_us();

	if (!x)
		return;
	memset(&x->base, 0, sizeof(x->base));
	memset(&x->ask, 0, sizeof(x->ask));
	setting_changed(s, now);
}

void px_fec_session_write(const struct px_session *s, struct ls_jw *w)
{
	static const struct ls_fec_params off = { 0 };
	const struct px_fec *x = s->fec;
	const struct ls_fec_params *d = x ? &x->down : &off;
	struct dp_fec_setting none = { 0 };
	char buf[32];

	dp_fec_fmt(x ? in_force(x) : &none, buf, sizeof(buf));
	ls_jw_key(w, "fec");
	ls_jw_str(w, buf);
	ls_jw_key(w, "fec_source");
	ls_jw_str(w, x && x->pinned ? "session" : "client");
	ls_jw_key(w, "fec_down");
	dp_fec_params_write(d, w);
}

void px_fec_counters(const struct px *p, struct dp_fec_counters *out)
{
	*out = p->fec_ctr;
	for (const struct px_session *s = p->tab.head; s; s = s->next)
		for (const struct px_flow *f = s->flows; f; f = f->next)
			if (f->dec)
				dp_fec_add_dec(out, f->dec);
}
