/* lightspeed-agent: the control requests and the session lifecycle (ctl.h). */
#include "ctl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icmp.h"
#include "keys.h"
#include "log.h"
#include "peers.h"
#include "pxlink.h"
#include "util.h"

/* One open QUIC connection. Answers that wait on the proxy hold a reference, and look
 * at `closed` before they use qc (which goes with the connection). */
struct ctl_conn {
	struct agent *a;
	struct ls_quic_conn *qc;
	struct session *s;        /* the session this connection holds */
	bool closed;
	unsigned refs;
	struct ctl_conn *prev, *next;
};

/* What a request waiting for the proxy answers once it has its answer. */
enum pending_kind { P_ACK, P_ALLOW, P_DISCONNECT };

struct pending {
	struct agent *a;
	struct ctl_conn *cc;      /* NULL: nobody to answer */
	int64_t sid;
	struct session *s;
	enum pending_kind kind;
	bool fresh;               /* a new registration (a failure removes the session) */
	struct ls_dest added;     /* P_ALLOW: the destination being added */
};

static struct ls_ratelog rl;

static void pending_done(struct pending *p);

static void cc_unref(struct ctl_conn *cc)
{
	if (--cc->refs > 0)
		return;
	if (cc->prev)
		cc->prev->next = cc->next;
	else
		cc->a->conns = cc->next;
	if (cc->next)
		cc->next->prev = cc->prev;
	free(cc);
}

static void save(struct agent *a)
{
	char err[300];

	if (sessions_save(&a->sess, err, sizeof(err)) != 0)
		ls_warn_rl(&rl, "saving the sessions: %s (an agent restart would not resume "
			   "them)", err);
}

static void on_save(uv_timer_t *t)
{
	save(t->data);
}

/* What the proxy forgets (a revoked session) is written 50 ms after the change: a
 * burst costs one write, and a session the file still names but the proxy does not
 * hold is only added again and expires. */
void ctl_dirty(struct agent *a)
{
	a->sess.dirty = true;
	a->save.data = a;
	if (!a->stopping && !uv_is_active((uv_handle_t *)&a->save))
		uv_timer_start(&a->save, on_save, 50, 0);
}

/* What the proxy is about to be given (a new key, a longer list) is on disk first, so
 * that an agent killed the moment after never leaves the proxy holding a session that
 * the restarted agent cannot resume for its controller. */
static void save_now(struct agent *a)
{
	a->sess.dirty = true;
	uv_timer_stop(&a->save);
	save(a);
}

uint32_t ctl_capacity(const struct agent *a)
{
	int64_t c = a->conf.agent.capacity;

	if (c <= 0)
		c = a->px ? pxlink_max_sessions(a->px) : 0;
	if (c <= 0)
		c = 1000;
	return (uint32_t)c;
}

uint32_t ctl_active(const struct agent *a)
{
	uint32_t n = 0;

	for (const struct session *s = a->sess.head; s; s = s->next)
		n += !s->revoking;
	return n;
}

static uint16_t data_port(const struct agent *a)
{
	if (a->conf.agent.data_port)
		return (uint16_t)a->conf.agent.data_port;
	return pxlink_data_port(a->px);
}

static void answer(struct agent *a, struct ctl_conn *cc, int64_t sid, const struct ls_ctl_msg *m)
{
	if (cc && !cc->closed)
		qs_answer(a->qs, cc->qc, sid, m);
}

static void answer_error(struct agent *a, struct ctl_conn *cc, int64_t sid, enum ls_ctl_code c,
			 const char *msg)
{
	struct ls_ctl_msg m;

	ls_ctl_error(&m, c, "%s", msg);
	answer(a, cc, sid, &m);
}

static void answer_ack(struct agent *a, struct ctl_conn *cc, int64_t sid, const struct session *s)
{
	struct ls_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_REGISTER_ACK;
	m.u.ack.session_id = s->id;
	m.u.ack.token = (uint8_t)s->id;
	memcpy(m.u.ack.node_id, a->conf.agent.node_id, sizeof(m.u.ack.node_id));
	memcpy(m.u.ack.region, a->conf.agent.region, sizeof(m.u.ack.region));
	memcpy(m.u.ack.key, s->key, LS_CTL_KEY_LEN);
	m.u.ack.data_port = data_port(a);
	m.u.ack.ndests = s->ndests;
	memcpy(m.u.ack.dests, s->dests, s->ndests * sizeof(s->dests[0]));
	answer(a, cc, sid, &m);
	memset(m.u.ack.key, 0, sizeof(m.u.ack.key));
}

/* The ICMP targets of a session: its single-address destinations. */
static void legs_ref(struct agent *a, const struct session *s, bool ref)
{
	for (uint8_t i = 0; i < s->ndests; i++)
		if (s->dests[i].cidr.len == 32)
			(ref ? icmp_ref : icmp_unref)(a->icmp, s->dests[i].cidr.net);
}

static uint32_t conn_ip(const struct ctl_conn *cc)
{
	return qs_conn_addr(cc->qc)->sin_addr.s_addr;
}

/* Sessions held for one controller address, detached ones included: a peer that
 * registers and vanishes, again and again, would otherwise fill the node for
 * resume_grace from a single address. */
static uint32_t sessions_of_addr(const struct agent *a, uint32_t ip)
{
	uint32_t n = 0;

	for (const struct session *s = a->sess.head; s; s = s->next)
		n += !s->revoking && s->addr == ip;
	return n;
}

static void bind_conn(struct ctl_conn *cc, struct session *s)
{
	s->owner = cc;
	s->addr = conn_ip(cc);
	s->detached_us = 0;
	cc->s = s;
}

static void detach(struct session *s, uint64_t now)
{
	struct ctl_conn *cc = s->owner;

	if (cc)
		cc->s = NULL;
	s->owner = NULL;
	s->detached_us = now;
}

/* ---- revoking ---------------------------------------------------------------------- */

static void ctl_forget(struct agent *a, struct session *s)
{
	legs_ref(a, s, false);
	detach(s, 0);
	sessions_remove(&a->sess, s);
	ctl_dirty(a);
}

static void on_del_answer(void *ud, enum ls_rc rc, const char *code, const char *msg)
{
	struct pending *p = ud;
	struct agent *a = p->a;
	struct session *s = p->s;

	if (!s->gone) {
		if (rc == LS_RC_OK || rc == LS_RC_NOT_FOUND || strcmp(code, "not_found") == 0) {
			ctl_forget(a, s);
		} else {
			/* The proxy went away mid-request: the next reconcile deletes it. */
			ls_warn_rl(&rl, "session_del %u: %s (%s); retried when the proxy is back",
				   s->id, msg, code);
		}
	}
	if (p->cc) {
		struct ls_ctl_msg m = { .type = LS_CTL_DISCONNECT };

		m.u.disc.reason = LS_CTL_R_NORMAL;
		answer(a, p->cc, p->sid, &m);
	}
	pending_done(p);
}

/* End s: it stays (revoking) until the proxy confirms, and the DISCONNECT answer (when
 * cc is set) waits for that, so a controller that has its answer knows the key is
 * dead. */
static void ctl_revoke(struct agent *a, struct session *s, struct ctl_conn *cc, int64_t sid)
{
	struct pending *p;

	detach(s, 0);
	s->revoking = true;
	ctl_dirty(a);
	if (!s->at_proxy && !s->adding) {
		ctl_forget(a, s);
		goto answer_now;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		goto answer_now;
	*p = (struct pending){ .a = a, .cc = cc, .sid = sid, .s = s, .kind = P_DISCONNECT };
	if (pxlink_del(a->px, s->id, on_del_answer, p) != LS_RC_OK) {
		/* Not connected: kept as revoking, deleted at the next reconcile. */
		free(p);
		goto answer_now;
	}
	s->refs++;
	if (cc)
		cc->refs++;
	return;
answer_now:
	if (cc) {
		struct ls_ctl_msg m = { .type = LS_CTL_DISCONNECT };

		answer(a, cc, sid, &m);
	}
}

/* ---- adding ------------------------------------------------------------------------ */

static void answer_allow_ack(struct agent *a, struct ctl_conn *cc, int64_t sid,
			     const struct session *s)
{
	struct ls_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_ALLOW_ACK;
	m.u.allow_ack.ndests = s->ndests;
	memcpy(m.u.allow_ack.dests, s->dests, s->ndests * sizeof(s->dests[0]));
	answer(a, cc, sid, &m);
}

static int ctl_push(struct agent *a, struct session *s, struct ctl_conn *cc, int64_t sid,
		enum pending_kind kind, bool fresh, const struct ls_dest *added);

/* Take back a destination an ALLOW added (the proxy refused the new list). */
static void allow_undo(struct agent *a, struct session *s, const struct ls_dest *d)
{
	for (uint8_t i = 0; i < s->ndests; i++)
		if (memcmp(&s->dests[i], d, sizeof(*d)) == 0) {
			if (d->cidr.len == 32)
				icmp_unref(a->icmp, d->cidr.net);
			memmove(&s->dests[i], &s->dests[i + 1],
				(size_t)(s->ndests - i - 1) * sizeof(*d));
			s->ndests--;
			ctl_dirty(a);
			return;
		}
}

static void pending_done(struct pending *p)
{
	if (p->cc)
		cc_unref(p->cc);
	sessions_unref(p->s);
	free(p);
}

static void on_add_answer(void *ud, enum ls_rc rc, const char *code, const char *msg)
{
	struct pending *p = ud;
	struct agent *a = p->a;
	struct session *s = p->s;
	char why[300];

	s->adding = false;
	if (s->gone) {
		/* Revoked meanwhile; if the proxy added it after all, take it back. */
		if (rc == LS_RC_OK)
			pxlink_del(a->px, s->id, NULL, NULL);
		pending_done(p);
		return;
	}
	if (s->revoking) {
		if (rc == LS_RC_OK)
			s->at_proxy = true;
		ctl_revoke(a, s, NULL, -1);
		pending_done(p);
		return;
	}
	if (rc == LS_RC_OK || strcmp(code, "exists") == 0) {
		/* exists: the proxy held it already (a reconcile raced a resume). */
		s->at_proxy = true;
		if (p->kind == P_ALLOW)
			answer_allow_ack(a, p->cc, p->sid, s);
		else
			answer_ack(a, p->cc, p->sid, s);
		pending_done(p);
		return;
	}
	snprintf(why, sizeof(why), "the proxy refused the session: %s (%s)", msg ? msg : "",
		 code ? code : "?");
	ls_warn_rl(&rl, "session %u: %s", s->id, why);
	answer_error(a, p->cc, p->sid,
		     strcmp(code, "invalid") == 0 ? LS_CTL_E_DENIED : LS_CTL_E_UNAVAILABLE, why);
	if (p->fresh) {
		a->ctr.refused_other++;
		ctl_forget(a, s);
	} else if (p->kind == P_ALLOW) {
		/* Back to the list the proxy took before. */
		allow_undo(a, s, &p->added);
		ctl_push(a, s, NULL, -1, P_ACK, false, NULL);
	}
	pending_done(p);
}

/* session_add of s; the answer (REGISTER_ACK or ALLOW_ACK, or the error) goes to cc's
 * stream sid when cc is set. */
static int ctl_push(struct agent *a, struct session *s, struct ctl_conn *cc, int64_t sid,
		enum pending_kind kind, bool fresh, const struct ls_dest *added)
{
	struct pending *p = calloc(1, sizeof(*p));
	enum ls_rc rc;

	if (!p)
		return -1;
	*p = (struct pending){ .a = a, .cc = cc, .sid = sid, .s = s, .kind = kind, .fresh = fresh };
	if (added)
		p->added = *added;
	rc = pxlink_add(a->px, s, a->conf.limits.pps, a->conf.limits.bps, on_add_answer, p);
	if (rc != LS_RC_OK) {
		free(p);
		return -1;
	}
	s->adding = true;
	s->refs++;
	if (cc)
		cc->refs++;
	return 0;
}

/* ALLOW, second step: the old session is gone from the proxy, add the new list. */
static void on_allow_del(void *ud, enum ls_rc rc, const char *code, const char *msg)
{
	struct pending *p = ud;
	struct agent *a = p->a;
	struct session *s = p->s;
	char why[300];

	s->adding = false;
	if (s->gone || s->revoking) {
		answer_error(a, p->cc, p->sid, LS_CTL_E_NOT_REGISTERED, "the session has ended");
		if (!s->gone && s->revoking)
			ctl_revoke(a, s, NULL, -1);
		pending_done(p);
		return;
	}
	if (rc != LS_RC_OK && strcmp(code, "not_found") != 0) {
		snprintf(why, sizeof(why), "the proxy did not take the change: %s (%s)", msg, code);
		allow_undo(a, s, &p->added);
		answer_error(a, p->cc, p->sid, LS_CTL_E_UNAVAILABLE, why);
		pending_done(p);
		return;
	}
	s->at_proxy = false;
	if (ctl_push(a, s, p->cc, p->sid, P_ALLOW, false, &p->added) != 0) {
		allow_undo(a, s, &p->added);
		answer_error(a, p->cc, p->sid, LS_CTL_E_UNAVAILABLE,
			     "the proxy is not reachable: try again");
	}
	pending_done(p);
}

/* A destination more for the session. The proxy's session_add takes a whole list, so
 * the session is deleted and added again with the longer one (its id and key stay; the
 * client's next packets carry on, as after a proxy restart). */
static void do_allow(struct agent *a, struct ctl_conn *cc, int64_t sid, const struct ls_dest *d)
{
	struct session *s = cc->s;
	struct pending *p;
	char buf[64], why[160];

	if (!s) {
		answer_error(a, cc, sid, LS_CTL_E_NOT_REGISTERED, "register first");
		return;
	}
	ls_dest_fmt(d, buf, sizeof(buf));
	if (!keys_dest_allowed(&a->conf.agent.destinations, d) ||
	    (d->cidr.len == 32 && !ls_addr_permitted(&a->conf.agent.allow, d->cidr.net))) {
		snprintf(why, sizeof(why), "%s is not a destination this node serves", buf);
		answer_error(a, cc, sid, LS_CTL_E_DENIED, why);
		return;
	}
	for (uint8_t i = 0; i < s->ndests; i++)
		if (memcmp(&s->dests[i], d, sizeof(*d)) == 0) {
			answer_allow_ack(a, cc, sid, s);
			return;
		}
	if (s->ndests >= LS_CTL_MAX_DESTS) {
		snprintf(why, sizeof(why), "a session holds at most %d destinations", LS_CTL_MAX_DESTS);
		answer_error(a, cc, sid, LS_CTL_E_LIMIT, why);
		return;
	}
	if (s->adding) {
		answer_error(a, cc, sid, LS_CTL_E_UNAVAILABLE, "a change is in progress: try again");
		return;
	}
	s->dests[s->ndests++] = *d;
	if (d->cidr.len == 32)
		icmp_ref(a->icmp, d->cidr.net);
	save_now(a);
	if (!s->at_proxy) {
		/* Not at the proxy now: the next add carries the new list. */
		if (ctl_push(a, s, cc, sid, P_ALLOW, false, d) != 0)
			answer_allow_ack(a, cc, sid, s);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		allow_undo(a, s, d);
		answer_error(a, cc, sid, LS_CTL_E_INTERNAL, "out of memory");
		return;
	}
	*p = (struct pending){ .a = a, .cc = cc, .sid = sid, .s = s, .kind = P_ALLOW, .added = *d };
	if (pxlink_del(a->px, s->id, on_allow_del, p) != LS_RC_OK) {
		free(p);
		allow_undo(a, s, d);
		answer_error(a, cc, sid, LS_CTL_E_UNAVAILABLE, "the proxy is not reachable: try again");
		return;
	}
	s->adding = true;
	s->refs++;
	cc->refs++;
}

/* ---- requests ---------------------------------------------------------------------- */

static void do_resume(struct agent *a, struct ctl_conn *cc, int64_t sid, const struct ls_ctl_msg *m)
{
	struct session *s = sessions_find(&a->sess, m->u.reg.session_id);
	char why[160];

	if (!s || s->revoking || !keys_equal(s->key, m->u.reg.key)) {
		a->ctr.resume_failures++;
		snprintf(why, sizeof(why), "no session %u here with that key: register anew",
			 m->u.reg.session_id);
		answer_error(a, cc, sid, LS_CTL_E_UNKNOWN_SESSION, why);
		return;
	}
	if (s->owner) {
		/* The controller came back on a new connection before the old one timed
		 * out: the old one is dead to it. */
		struct ctl_conn *old = s->owner;

		detach(s, 0);
		if (!old->closed)
			ls_quic_conn_close(old->qc, LS_CTL_R_NORMAL, "session resumed elsewhere");
	}
	bind_conn(cc, s);
	a->ctr.resumes++;
	ls_info("session %u resumed", s->id);
	if (s->at_proxy) {
		answer_ack(a, cc, sid, s);
		return;
	}
	if (s->adding) {
		/* A reconcile's add is in flight: a second one answers this stream. */
		if (ctl_push(a, s, cc, sid, P_ACK, false, NULL) == 0)
			return;
	} else if (ctl_push(a, s, cc, sid, P_ACK, false, NULL) == 0) {
		a->ctr.readded++;
		return;
	}
	answer_error(a, cc, sid, LS_CTL_E_UNAVAILABLE, "the proxy is not reachable: try again");
}

static void do_register(struct agent *a, struct ctl_conn *cc, int64_t sid, const struct ls_ctl_msg *m)
{
	struct ls_dest dests[LS_CTL_MAX_DESTS];
	uint8_t key[LS_CTL_KEY_LEN], nd;
	char why[200];
	uint32_t id;
	struct session *s;
	int code;

	if (m->u.reg.version != LS_CTL_VERSION) {
		snprintf(why, sizeof(why), "protocol version %u is not spoken here (only %u)",
			 m->u.reg.version, LS_CTL_VERSION);
		answer_error(a, cc, sid, LS_CTL_E_VERSION, why);
		return;
	}
	if (cc->s) {
		snprintf(why, sizeof(why), "this connection holds session %u already", cc->s->id);
		answer_error(a, cc, sid, LS_CTL_E_REGISTERED, why);
		return;
	}
	if (m->u.reg.resume) {
		do_resume(a, cc, sid, m);
		return;
	}
	if (!pxlink_ready(a->px)) {
		a->ctr.refused_other++;
		answer_error(a, cc, sid, LS_CTL_E_UNAVAILABLE, "the proxy is not reachable: try again");
		return;
	}
	if (ctl_active(a) >= ctl_capacity(a) ||
	    sessions_of_addr(a, conn_ip(cc)) >= (uint64_t)a->conf.agent.max_sessions_per_addr) {
		struct ls_ctl_msg d = { .type = LS_CTL_DISCONNECT };
		char ab[LS_ADDRSTRLEN];

		if (ctl_active(a) >= ctl_capacity(a)) {
			a->ctr.refused_full++;
		} else {
			a->ctr.refused_addr++;
			ls_warn_rl(&rl, "REGISTER from %s refused: that address holds %lld sessions "
				   "(max_sessions_per_addr)", ls_addr_fmt(qs_conn_addr(cc->qc), ab),
				   (long long)a->conf.agent.max_sessions_per_addr);
		}
		d.u.disc.reason = LS_CTL_R_FULL;
		answer(a, cc, sid, &d);
		return;
	}
	code = keys_dests(&a->conf.agent.destinations, &a->conf.agent.allow, m->u.reg.game_id,
			  m->u.reg.dests, m->u.reg.ndests, dests, &nd, why, sizeof(why));
	if (code != 0) {
		a->ctr.refused_other++;
		answer_error(a, cc, sid, (enum ls_ctl_code)code, why);
		return;
	}
	if (keys_new(&id, key, sessions_taken, &a->sess) != 0 ||
	    !(s = sessions_add(&a->sess, id, key, m->u.reg.game_id, dests, nd))) {
		memset(key, 0, sizeof(key));
		answer_error(a, cc, sid, LS_CTL_E_INTERNAL, "no session could be made");
		return;
	}
	memset(key, 0, sizeof(key));
	bind_conn(cc, s);
	legs_ref(a, s, true);
	save_now(a);
	if (ctl_push(a, s, cc, sid, P_ACK, true, NULL) != 0) {
		ctl_forget(a, s);
		answer_error(a, cc, sid, LS_CTL_E_UNAVAILABLE, "the proxy is not reachable: try again");
		return;
	}
	a->ctr.registrations++;
}

static void do_server_info(struct agent *a, struct ctl_conn *cc, int64_t sid)
{
	struct ls_ctl_msg m;
	uint32_t cap = ctl_capacity(a), act = ctl_active(a);

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_SERVER_INFO;
	m.u.info.active = act;
	m.u.info.capacity = cap;
	m.u.info.load_pct = (uint8_t)(act >= cap ? 100 : (uint64_t)act * 100 / cap);
	if (cc->s)
		for (uint8_t i = 0; i < cc->s->ndests && m.u.info.nlegs < LS_CTL_MAX_LEGS; i++)
			if (cc->s->dests[i].cidr.len == 32) {
				struct ls_ctl_leg *l = &m.u.info.legs[m.u.info.nlegs++];

				l->ip = cc->s->dests[i].cidr.net;
				l->rtt_us = icmp_rtt_us(a->icmp, l->ip);
			}
	answer(a, cc, sid, &m);
}

static void on_request(struct qs *qs, struct ls_quic_conn *qc, int64_t sid, const struct ls_ctl_msg *m)
{
	struct agent *a = qs_ctx(qs);
	struct ctl_conn *cc = qs_conn_user(qc);
	struct ls_ctl_msg out;

	if (!cc)
		return;
	switch (m->type) {
	case LS_CTL_PING:
		memset(&out, 0, sizeof(out));
		out.type = LS_CTL_PONG;
		out.u.pong.client_ts_us = m->u.ping.client_ts_us;
		out.u.pong.server_ts_us = ls_now_us();
		answer(a, cc, sid, &out);
		break;
	case LS_CTL_REGISTER:
		do_register(a, cc, sid, m);
		break;
	case LS_CTL_DISCONNECT:
		a->ctr.disconnects++;
		if (cc->s) {
			ls_info("session %u: DISCONNECT from its controller", cc->s->id);
			ctl_revoke(a, cc->s, cc, sid);
		} else {
			memset(&out, 0, sizeof(out));
			out.type = LS_CTL_DISCONNECT;
			answer(a, cc, sid, &out);
		}
		break;
	case LS_CTL_SERVER_INFO:
		do_server_info(a, cc, sid);
		break;
	case LS_CTL_PEERS:
		peers_answer(&a->conf, &out);
		answer(a, cc, sid, &out);
		break;
	case LS_CTL_ALLOW:
		do_allow(a, cc, sid, &m->u.allow);
		break;
	default:
		answer_error(a, cc, sid, LS_CTL_E_UNKNOWN_TYPE, "not a request");
	}
}

static void on_open(struct qs *qs, struct ls_quic_conn *qc)
{
	struct agent *a = qs_ctx(qs);
	struct ctl_conn *cc = calloc(1, sizeof(*cc));

	if (!cc) {
		ls_quic_conn_close(qc, LS_CTL_R_FULL, "out of memory");
		return;
	}
	cc->a = a;
	cc->qc = qc;
	cc->refs = 1;
	cc->next = a->conns;
	if (a->conns)
		a->conns->prev = cc;
	a->conns = cc;
	qs_conn_set_user(qc, cc);
}

static void on_closed(struct qs *qs, struct ls_quic_conn *qc, const struct ls_quic_end *end)
{
	struct agent *a = qs_ctx(qs);
	struct ctl_conn *cc = qs_conn_user(qc);
	struct session *s;

	if (!cc)
		return;
	qs_conn_set_user(qc, NULL);
	cc->closed = true;
	s = cc->s;
	if (s) {
		if (end->kind == LS_QUIC_END_PEER && end->app && end->code == LS_CTL_R_NORMAL) {
			/* The controller closed its connection on purpose: the session ends
			 * with it. */
			ls_info("session %u: its connection was closed by the controller", s->id);
			a->ctr.closed++;
			ctl_revoke(a, s, NULL, -1);
		} else {
			ls_info("session %u detached (%s): kept %lld s for its controller to "
				"resume it", s->id, ls_quic_end_name(end->kind),
				(long long)a->conf.agent.resume_grace);
			detach(s, ls_now_us());
		}
	}
	cc_unref(cc);
}

const struct qs_ops ctl_qs_ops = {
	.open = on_open,
	.request = on_request,
	.closed = on_closed,
};

/* ---- the proxy --------------------------------------------------------------------- */

void ctl_proxy_up(void *agent, json_t *list)
{
	struct agent *a = agent;
	unsigned adopted = 0, readded = 0, revoked = 0;
	size_t i;
	json_t *o;

	a->ctr.proxy_connects++;
	for (struct session *s = a->sess.head; s; s = s->next)
		s->at_proxy = false;
	json_array_foreach(list, i, o) {
		json_t *id = json_object_get(o, "session_id");
		struct session *s;

		if (!json_is_integer(id) || json_is_true(json_object_get(o, "static")))
			continue;
		s = sessions_find(&a->sess, (uint32_t)json_integer_value(id));
		if (s && (json_int_t)s->id == json_integer_value(id))
			s->at_proxy = true;
	}
	for (struct session *s = a->sess.head, *next; s; s = next) {
		next = s->next;
		if (s->revoking) {
			ctl_revoke(a, s, NULL, -1);
			revoked++;
		} else if (s->at_proxy) {
			adopted++;
		} else if (!s->adding && ctl_push(a, s, NULL, -1, P_ACK, false, NULL) == 0) {
			readded++;
		}
	}
	a->ctr.adopted += adopted;
	a->ctr.readded += readded;
	ls_info("proxy up: %u of this agent's sessions held there, %u added again, %u revoked",
		adopted, readded, revoked);
}

void ctl_proxy_down(void *agent, const char *why)
{
	struct agent *a = agent;

	ls_warn("proxy steering socket lost (%s): sessions keep forwarding there; "
		"reconnecting", why);
	for (struct session *s = a->sess.head; s; s = s->next)
		s->at_proxy = false;
}

void ctl_proxy_session_down(void *agent, uint32_t id, const char *reason)
{
	struct agent *a = agent;
	struct session *s = sessions_find(&a->sess, id);

	if (!s || s->adding)
		return;
	s->at_proxy = false;
	if (s->revoking) {
		ctl_forget(a, s);
		return;
	}
	/* A session whose controller is still connected stays usable: its client's next
	 * keepalive brings the traffic back. A detached one is re-added if resumed. */
	if (s->owner) {
		ls_info("the proxy ended session %u (%s) while its controller holds it: added "
			"again", id, reason);
		if (ctl_push(a, s, NULL, -1, P_ACK, false, NULL) == 0)
			a->ctr.readded++;
	}
}

void ctl_tick(struct agent *a)
{
	uint64_t now = ls_now_us(), grace = (uint64_t)a->conf.agent.resume_grace * 1000000u;

	for (struct session *s = a->sess.head, *next; s; s = next) {
		next = s->next;
		if (!s->owner && !s->revoking && s->detached_us && now - s->detached_us >= grace) {
			ls_info("session %u: not resumed within %lld s: revoked", s->id,
				(long long)a->conf.agent.resume_grace);
			a->ctr.expired++;
			ctl_revoke(a, s, NULL, -1);
		}
	}
}

void ctl_free(struct agent *a)
{
	while (a->conns) {
		struct ctl_conn *cc = a->conns;

		a->conns = cc->next;
		if (cc->s)
			cc->s->owner = NULL;
		free(cc);
	}
}
