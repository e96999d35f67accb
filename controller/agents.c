/* lightspeed-controller: the nodes' agents. Each node with an agent (control port) gets
 * a QUIC connection of its own (quic_client.c) from the moment it is in the node table,
 * standby or not, so that a failover never waits for a registration: the session and
 * key the agent issues become the node's route in the client dataplane (route_add by
 * dplink_sync). The agent's reports go where health and selection read them: the
 * node's leg to the game server and its load. A node whose certificate is refused
 * cannot be selected until an operator trusts it. Sessions are kept in the state
 * directory (`agent_sessions`, 0600), so a restarted controller resumes them and the
 * routes the client holds stay as they are. Discovered nodes (discovery_*.c) join the
 * table here. */
#include "controller.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"
#include "log.h"
#include "pin.h"
#include "quic_client.h"
#include "statefile.h"
#include "util.h"

#define SAVED_MAX 64

struct link {
	bool used;
	struct agents *A;
	char name[NODE_NAME_MAX];
	struct sockaddr_in control;
	bool has_fp;
	uint8_t fp[LS_CTL_FP_LEN];
	struct quic_client *q;
	enum quic_client_state st;
	uint64_t ctl_rtt_us;
	struct ls_ctl_msg info;
	bool has_info;
	bool allowed;            /* the game server was asked for */
};

struct saved {
	char name[NODE_NAME_MAX];
	uint32_t id;
	uint8_t key[LS_CTL_KEY_LEN];
};

struct agents {
	struct ctrl *c;
	struct pin_store *pins;
	struct link l[NODE_MAX];
	char path[300];
	struct saved saved[SAVED_MAX];
	unsigned nsaved;
	struct ls_ratelog rl;
};

/* ---- the sessions file ------------------------------------------------------------- */

static void sessions_load(struct agents *A)
{
	char err[300], *text, *save = NULL;
	size_t len = 0;

	if (!A->path[0])
		return;
	text = ls_statefile_read(A->path, 1 << 16, &len, err, sizeof(err));
	if (!text) {
		if (errno != ENOENT)
			ls_warn("agent sessions: %s", err);
		return;
	}
	for (char *line = strtok_r(text, "\n", &save); line && A->nsaved < SAVED_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[64], hex[64];
		unsigned long id;
		struct saved *s = &A->saved[A->nsaved];

		if (line[0] == '#' || sscanf(line, "%63s %lu %63s", name, &id, hex) != 3 ||
		    !node_name_valid(name) || id == 0 || id > 0xffffffffUL ||
		    ls_hex_decode(hex, s->key, LS_CTL_KEY_LEN) < 0)
			continue;
		memcpy(s->name, name, strlen(name) + 1); /* valid: under 32 */
		s->id = (uint32_t)id;
		A->nsaved++;
	}
	memset(text, 0, len);
	free(text);
}

static struct saved *saved_find(struct agents *A, const char *name)
{
	for (unsigned i = 0; i < A->nsaved; i++)
		if (strcmp(A->saved[i].name, name) == 0)
			return &A->saved[i];
	return NULL;
}

static void sessions_save(struct agents *A)
{
	struct ls_buf b;
	char err[300], hex[2 * LS_CTL_KEY_LEN + 1];

	if (!A->path[0])
		return;
	ls_buf_init(&b);
	ls_buf_printf(&b, "# lightspeed-controller: sessions issued by the nodes' agents "
			  "(NAME ID KEY)\n");
	for (unsigned i = 0; i < A->nsaved; i++) {
		ls_hex_encode(A->saved[i].key, LS_CTL_KEY_LEN, hex);
		ls_buf_printf(&b, "%s %u %s\n", A->saved[i].name, A->saved[i].id, hex);
	}
	if (!b.oom && ls_statefile_write(A->path, b.data, b.len, err, sizeof(err)) != 0)
		ls_warn_rl(&A->rl, "agent sessions not saved: %s (a restart registers anew)", err);
	if (b.data)
		memset(b.data, 0, b.len);
	ls_buf_free(&b);
}

static void saved_set(struct agents *A, const char *name, uint32_t id, const uint8_t *key)
{
	struct saved *s = saved_find(A, name);

	if (!s) {
		if (A->nsaved >= SAVED_MAX)
			return;
		s = &A->saved[A->nsaved++];
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	if (s->id == id && memcmp(s->key, key, LS_CTL_KEY_LEN) == 0)
		return;
	s->id = id;
	memcpy(s->key, key, LS_CTL_KEY_LEN);
	sessions_save(A);
}

static void saved_drop(struct agents *A, const char *name)
{
	struct saved *s = saved_find(A, name);

	if (!s)
		return;
	memset(s->key, 0, sizeof(s->key));
	*s = A->saved[--A->nsaved];
	sessions_save(A);
}

/* ---- one node's link --------------------------------------------------------------- */

static int link_slot(const struct link *k)
{
	return node_find(&k->A->c->nodes, k->name);
}

/* The node's session into its route (dplink_sync sends route_add, replacing the route
 * when the session changed). */
static void apply_session(struct link *k)
{
	const struct quic_client_session *s = quic_client_session(k->q);
	struct ctrl *c = k->A->c;
	int slot = link_slot(k);
	struct node *n;

	if (!s || slot < 0 || k->st != QC_REGISTERED)
		return;
	n = &c->nodes.n[slot];
	if (n->conf.key.set && n->conf.session_id == s->session_id &&
	    memcmp(n->conf.key.b, s->key, NODE_KEY_LEN) == 0 &&
	    ntohs(n->conf.addr.sin_port) == s->data_port)
		return;
	n->conf.session_id = s->session_id;
	memcpy(n->conf.key.b, s->key, NODE_KEY_LEN);
	n->conf.key.set = true;
	if (s->data_port && ntohs(n->conf.addr.sin_port) != s->data_port) {
		ls_info("node %s: its agent says the tunnel is on port %u", n->conf.name, s->data_port);
		n->conf.addr.sin_port = htons(s->data_port);
	}
	dplink_sync(c->dp);
}

static void on_registered(void *ctx, const struct quic_client_session *s)
{
	struct link *k = ctx;
	struct ctrl *c = k->A->c;

	k->st = QC_REGISTERED;
	ls_info("node %s: %s session %u with its agent (%s%s%s)", k->name,
		s->resumed ? "resumed" : "registered", s->session_id, s->node_id,
		s->region[0] ? ", " : "", s->region);
	saved_set(k->A, k->name, s->session_id, s->key);
	apply_session(k);
	ctrl_publish(c, "node", json_pack("{s:s,s:s}", "name", k->name, "change",
					  s->resumed ? "resumed" : "registered"));
}

static void on_lost(void *ctx, enum quic_client_state st, const char *why)
{
	struct link *k = ctx;
	struct ctrl *c = k->A->c;

	k->st = st;
	if (st == QC_PIN_REFUSED) {
		/* quic_client has said it loudly; the node leaves selection now. */
		ctrl_publish(c, "node", json_pack("{s:s,s:s,s:s}", "name", k->name, "change",
						  "certificate_refused", "detail", why));
		ctrl_round(c);
	} else {
		ls_info("node %s: control connection to its agent: %s", k->name, why);
	}
}

static void on_revoked(void *ctx, const char *why)
{
	struct link *k = ctx;

	/* The route keeps its old key until the next session replaces it. */
	ls_info("node %s: its agent ended the session (%s)", k->name, why);
	saved_drop(k->A, k->name);
}

static void on_rtt(void *ctx, uint64_t rtt)
{
	((struct link *)ctx)->ctl_rtt_us = rtt;
}

/* The game server's address (host order) from the dataplane, or 0. */
static uint32_t game_server_ip(struct ctrl *c, uint16_t *port)
{
	const char *gs = dplink_game_server(c->dp);
	struct sockaddr_in a;
	char msg[100];

	if (!gs || ls_hostport_parse(gs, &a, false, false, msg, sizeof(msg)) < 0)
		return 0;
	if (port)
		*port = ntohs(a.sin_port);
	return ntohl(a.sin_addr.s_addr);
}

static void on_info(void *ctx, const struct ls_ctl_msg *m)
{
	struct link *k = ctx;
	struct ctrl *c = k->A->c;
	int slot = link_slot(k);
	uint32_t gs = game_server_ip(c, NULL);
	int64_t leg = -1;

	k->info = *m;
	k->has_info = true;
	if (slot < 0)
		return;
	/* The leg to the game server this client plays on; else the only one there is. */
	for (uint8_t i = 0; i < m->u.info.nlegs; i++)
		if ((m->u.info.legs[i].ip == gs || (m->u.info.nlegs == 1 && !gs)) &&
		    m->u.info.legs[i].rtt_us != LS_CTL_RTT_NONE)
			leg = m->u.info.legs[i].rtt_us;
	c->nodes.n[slot].server_leg_us = leg;
	c->nodes.n[slot].load = m->u.info.load_pct / 100.0;
}

static void found_peer(void *ctx, const struct discovered *d);

static void on_peers(void *ctx, const struct ls_ctl_msg *m)
{
	struct link *k = ctx;

	if (k->A->c->conf.discovery.peers)
		discovery_peers_take(m, found_peer, k);
}

static const struct quic_client_ops link_ops = {
	.registered = on_registered, .lost = on_lost, .revoked = on_revoked, .rtt = on_rtt,
	.info = on_info, .peers = on_peers,
};

static struct link *link_find(const struct agents *A, const char *name)
{
	for (int i = 0; i < NODE_MAX; i++)
		if (A->l[i].used && strcmp(A->l[i].name, name) == 0)
			return (struct link *)(uintptr_t)&A->l[i];
	return NULL;
}

/* The destination a session needs: the game server, once the dataplane says it. */
static bool game_dest(struct ctrl *c, struct ls_dest *d)
{
	uint16_t port = 0;
	uint32_t ip = game_server_ip(c, &port);

	if (!ip)
		return false;
	memset(d, 0, sizeof(*d));
	d->cidr.net = ip;
	d->cidr.len = 32;
	d->cidr.mask = 0xffffffffu;
	d->port_lo = d->port_hi = port;
	return true;
}

static void link_open(struct agents *A, const struct node *n)
{
	struct quic_client_conf qc;
	struct link *k = NULL;
	const struct saved *sv = saved_find(A, n->conf.name);
	char err[300];

	for (int i = 0; i < NODE_MAX && !k; i++)
		if (!A->l[i].used)
			k = &A->l[i];
	if (!k)
		return;
	memset(k, 0, sizeof(*k));
	k->A = A;
	snprintf(k->name, sizeof(k->name), "%s", n->conf.name);
	k->control = n->conf.addr;
	k->control.sin_port = htons(n->conf.control_port);
	k->has_fp = n->conf.has_fp;
	memcpy(k->fp, n->conf.fp, sizeof(k->fp));
	memset(&qc, 0, sizeof(qc));
	snprintf(qc.name, sizeof(qc.name), "%s", n->conf.name);
	qc.control = k->control;
	qc.has_pin = n->conf.has_fp;
	memcpy(qc.pin, n->conf.fp, sizeof(qc.pin));
	qc.pins = A->pins;
	if (game_dest(A->c, &qc.dests[0])) {
		qc.ndests = 1;
		k->allowed = true;
	}
	qc.peers_ms = A->c->conf.discovery.peers ? 0 : UINT32_MAX;
	if (sv) {
		qc.has_session = true;
		qc.session_id = sv->id;
		memcpy(qc.key, sv->key, LS_CTL_KEY_LEN);
	}
	k->st = QC_CONNECTING;
	k->q = quic_client_open(A->c->loop, &qc, &link_ops, k, err, sizeof(err));
	if (!k->q) {
		ls_warn_rl(&A->rl, "node %s: %s", n->conf.name, err);
		return;
	}
	k->used = true;
	ls_info("node %s: connecting to its agent at %s:%u%s", k->name, inet_ntoa(k->control.sin_addr),
		n->conf.control_port, qc.has_session ? " (resuming its session)" : "");
}

static void link_close(struct link *k, bool revoke)
{
	quic_client_close(k->q, revoke);
	if (revoke)
		saved_drop(k->A, k->name);
	memset(k, 0, sizeof(*k));
}

/* ---- entry points -------------------------------------------------------------------- */

int agents_open(struct ctrl *c, char *err, size_t errlen)
{
	struct agents *A = calloc(1, sizeof(*A));
	char perr[300];

	if (!A) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	A->c = c;
	A->pins = pin_open(c->conf.state_dir, perr, sizeof(perr));
	if (!A->pins) {
		/* Pins must not be silently forgotten: without the store every agent would be
		 * trusted anew. Keep them in memory and say so. */
		ls_warn("%s: pinned fingerprints kept in memory only (check state_dir)", perr);
		A->pins = pin_open(NULL, err, errlen);
		if (!A->pins) {
			free(A);
			return -1;
		}
	} else {
		snprintf(A->path, sizeof(A->path), "%s/agent_sessions", c->conf.state_dir);
		sessions_load(A);
	}
	c->agents = A;
	agents_sync(c);
	return 0;
}

void agents_close(struct ctrl *c)
{
	struct agents *A = c->agents;

	if (!A)
		return;
	/* A stopping controller leaves the sessions to the agents: a restart resumes
	 * them, and the dataplane keeps forwarding meanwhile. */
	for (int i = 0; i < NODE_MAX; i++)
		if (A->l[i].used)
			link_close(&A->l[i], false);
	pin_close(A->pins);
	memset(A->saved, 0, sizeof(A->saved));
	free(A);
	c->agents = NULL;
}

void agents_sync(struct ctrl *c)
{
	struct agents *A = c->agents;
	struct ls_dest gd;
	bool have_gd;

	if (!A)
		return;
	have_gd = game_dest(c, &gd);
	/* Links of nodes gone (removed, or no longer with an agent): their sessions end. */
	for (int i = 0; i < NODE_MAX; i++) {
		struct link *k = &A->l[i];
		int slot;

		if (!k->used)
			continue;
		slot = node_find(&c->nodes, k->name);
		if (slot < 0 || c->nodes.n[slot].removing || !c->nodes.n[slot].conf.control_port) {
			ls_info("node %s: removed: its session at the agent is ended", k->name);
			link_close(k, true);
			continue;
		}
		apply_session(k);
		if (have_gd && !k->allowed) {
			k->allowed = true;
			quic_client_allow(k->q, &gd);
		}
	}
	for (int i = 0; i < NODE_MAX; i++) {
		const struct node *n = &c->nodes.n[i];

		if (n->used && !n->removing && n->conf.control_port && !link_find(A, n->conf.name))
			link_open(A, n);
	}
}

bool agents_usable(const struct ctrl *c, int slot, char *why, size_t len)
{
	const struct node *n = &c->nodes.n[slot];
	const struct link *k;

	if (!c->agents || !n->used || !n->conf.control_port)
		return true;
	k = link_find(c->agents, n->conf.name);
	if (k && k->st == QC_PIN_REFUSED) {
		snprintf(why, len, "its agent's certificate is not the pinned one (lsctl trust %s)",
			 n->conf.name);
		return false;
	}
	if (!n->conf.key.set) {
		snprintf(why, len, "not registered with its agent yet");
		return false;
	}
	return true;
}

bool agents_refused(const struct ctrl *c, int slot)
{
	const struct link *k;

	if (!c->agents || !c->nodes.n[slot].used || !c->nodes.n[slot].conf.control_port)
		return false;
	k = link_find(c->agents, c->nodes.n[slot].conf.name);
	return k && k->st == QC_PIN_REFUSED;
}

static json_t *fp_json(const uint8_t *fp)
{
	char s[LS_CTL_FP_STRLEN];

	if (!fp)
		return json_null();
	ls_ctl_fp_fmt(fp, s);
	return json_string(s);
}

json_t *agents_json(const struct ctrl *c, int slot)
{
	const struct node *n = &c->nodes.n[slot];
	const struct link *k;
	const struct quic_client_session *s;
	const char *err;
	json_t *o;

	if (!c->agents || !n->conf.control_port)
		return json_null();
	k = link_find(c->agents, n->conf.name);
	s = k ? quic_client_session(k->q) : NULL;
	err = k ? quic_client_error(k->q) : "";
	o = json_object();
	json_object_set_new(o, "control_port", json_integer(n->conf.control_port));
	json_object_set_new(o, "state", json_string(k ? quic_client_state_name(k->st) : "connecting"));
	json_object_set_new(o, "fingerprint", fp_json(k ? quic_client_fingerprint(k->q) : NULL));
	json_object_set_new(o, "pinned", fp_json(n->conf.has_fp ? n->conf.fp
							    : pin_get(c->agents->pins, n->conf.name)));
	json_object_set_new(o, "pinned_by", json_string(n->conf.has_fp ? "config" : "first_use"));
	json_object_set_new(o, "offered", fp_json(pin_offered(c->agents->pins, n->conf.name)));
	json_object_set_new(o, "session_id", s ? json_integer(s->session_id) : json_null());
	json_object_set_new(o, "control_rtt_ms",
			    k && k->ctl_rtt_us ? json_real(k->ctl_rtt_us / 1000.0) : json_null());
	json_object_set_new(o, "load", k && k->has_info ? json_real(k->info.u.info.load_pct / 100.0)
							 : json_null());
	json_object_set_new(o, "error", err && err[0] ? json_string(err) : json_null());
	return o;
}

enum ls_rc agents_trust(struct ctrl *c, const char *name, char *msg, size_t msglen)
{
	int slot = node_find(&c->nodes, name);
	struct link *k = c->agents ? link_find(c->agents, name) : NULL;

	if (slot < 0) {
		snprintf(msg, msglen, "no node named %s", name);
		return LS_RC_NOT_FOUND;
	}
	if (!k) {
		snprintf(msg, msglen, "node %s has no agent (no control port)", name);
		return LS_RC_CONFLICT;
	}
	if (c->nodes.n[slot].conf.has_fp) {
		snprintf(msg, msglen, "node %s is pinned by its configuration (fingerprint=): change "
			 "it there", name);
		return LS_RC_CONFLICT;
	}
	if (!pin_offered(c->agents->pins, name)) {
		snprintf(msg, msglen, "node %s has offered no other certificate", name);
		return LS_RC_CONFLICT;
	}
	if (quic_client_trust(k->q, msg, msglen) != 0)
		return LS_RC_INTERNAL;
	k->st = QC_CONNECTING;
	ctrl_publish(c, "node", json_pack("{s:s,s:s}", "name", name, "change", "trusted"));
	return LS_RC_OK;
}

/* ---- discovered nodes ---------------------------------------------------------------- */

void agents_discovered(struct ctrl *c, const struct discovered *d, enum node_source src,
		       const char *via)
{
	struct node_conf nc;
	char msg[200], a[LS_ADDRSTRLEN];
	int slot = node_find(&c->nodes, d->name);

	if (slot >= 0) {
		const struct node *n = &c->nodes.n[slot];

		/* Known already (from the configuration, or found before): it stays as its
		 * source said. A discovery that disagrees is worth a word. */
		if (n->conf.source == src && (n->conf.addr.sin_addr.s_addr != d->addr.sin_addr.s_addr ||
					      n->conf.addr.sin_port != d->addr.sin_port))
			ls_warn_rl(&c->agents->rl, "node %s: %s now says %s; kept at %s", d->name,
				   node_source_name(src), ls_addr_fmt(&d->addr, a),
				   ls_addr_fmt(&n->conf.addr, msg));
		return;
	}
	node_conf_init(&nc);
	snprintf(nc.name, sizeof(nc.name), "%s", d->name);
	ls_addr_fmt(&d->addr, nc.address);
	nc.addr = d->addr;
	nc.control_port = d->control_port;
	nc.has_fp = d->has_fp;
	memcpy(nc.fp, d->fp, sizeof(nc.fp));
	snprintf(nc.facts.region, sizeof(nc.facts.region), "%s", d->region);
	nc.source = src;
	snprintf(nc.via, sizeof(nc.via), "%s", via ? via : "");
	if (ctrl_node_add(c, &nc, msg, sizeof(msg)) != LS_RC_OK) {
		ls_warn_rl(&c->agents->rl, "node %s (found by %s): not added: %s", d->name,
			   node_source_name(src), msg);
		return;
	}
	ls_info("node %s: found by %s%s%s at %s (agent port %u, %s): used once its agent is "
		"pinned and registered and its path healthy", d->name, node_source_name(src),
		via && via[0] ? " from " : "", via ? via : "", ls_addr_fmt(&d->addr, a),
		d->control_port, d->has_fp ? "fingerprint given" : "trust on first use");
	ctrl_publish(c, "node", json_pack("{s:s,s:s}", "name", d->name, "change", "added"));
	agents_sync(c);
}

static void found_peer(void *ctx, const struct discovered *d)
{
	struct link *k = ctx;

	agents_discovered(k->A->c, d, NODE_SRC_PEER, k->name);
}

void agents_found_dns(void *ctx, const struct discovered *d)
{
	agents_discovered(ctx, d, NODE_SRC_DNS, NULL);
}
