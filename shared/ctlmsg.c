/* The control-frame codec (docs/protocol.md section 2). */
#include "ctlmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

const char *ls_ctl_strerror(int err)
{
	switch (err) {
	case LS_CTL_OK: return "ok";
	case LS_CTL_ERR_SHORT: return "truncated frame";
	case LS_CTL_ERR_MALFORMED: return "malformed frame";
	case LS_CTL_ERR_TYPE: return "unexpected frame type";
	}
	return "unknown error";
}

static const char *const type_names[] = {
	[LS_CTL_PING] = "PING", [LS_CTL_PONG] = "PONG", [LS_CTL_REGISTER] = "REGISTER",
	[LS_CTL_REGISTER_ACK] = "REGISTER_ACK", [LS_CTL_DISCONNECT] = "DISCONNECT",
	[LS_CTL_SERVER_INFO] = "SERVER_INFO", [LS_CTL_ALLOW] = "ALLOW",
	[LS_CTL_ALLOW_ACK] = "ALLOW_ACK", [LS_CTL_PEERS] = "PEERS",
};

const char *ls_ctl_type_name(uint8_t type)
{
	if (type == LS_CTL_ERROR)
		return "ERROR";
	if (type < LS_ARRAY_LEN(type_names) && type_names[type])
		return type_names[type];
	return "unknown";
}

static const char *const code_names[] = {
	[LS_CTL_E_MALFORMED] = "malformed", [LS_CTL_E_UNKNOWN_TYPE] = "unknown_type",
	[LS_CTL_E_VERSION] = "version", [LS_CTL_E_NOT_REGISTERED] = "not_registered",
	[LS_CTL_E_REGISTERED] = "registered", [LS_CTL_E_UNKNOWN_SESSION] = "unknown_session",
	[LS_CTL_E_DENIED] = "denied", [LS_CTL_E_UNAVAILABLE] = "unavailable",
	[LS_CTL_E_LIMIT] = "limit", [LS_CTL_E_TOO_LONG] = "too_long",
	[LS_CTL_E_INTERNAL] = "internal",
};

const char *ls_ctl_code_name(uint8_t code)
{
	if (code < LS_ARRAY_LEN(code_names) && code_names[code])
		return code_names[code];
	return "unknown";
}

static const char *const reason_names[] = {
	[LS_CTL_R_NORMAL] = "normal", [LS_CTL_R_TIMEOUT] = "timeout",
	[LS_CTL_R_SHUTDOWN] = "server shutdown", [LS_CTL_R_FULL] = "rate limited or full",
	[LS_CTL_R_AUTH] = "auth failure",
};

const char *ls_ctl_reason_name(uint8_t reason)
{
	return reason < LS_ARRAY_LEN(reason_names) ? reason_names[reason] : "unknown";
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static bool name_bytes_ok(const char *s, size_t n, size_t min)
{
	if (n < min || n > LS_CTL_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

bool ls_ctl_name_ok(const char *s)
{
	return s && name_bytes_ok(s, strlen(s), 1);
}

/* ---- reading ---------------------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t n, off;
	bool bad;
};

static bool rd_has(struct rd *r, size_t k)
{
	if (r->bad || r->n - r->off < k) {
		r->bad = true;
		return false;
	}
	return true;
}

static uint8_t rd_u8(struct rd *r)
{
	return rd_has(r, 1) ? r->p[r->off++] : 0;
}

static uint16_t rd_u16(struct rd *r)
{
	uint16_t v = 0;

	if (rd_has(r, 2)) {
		v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
		r->off += 2;
	}
	return v;
}

static uint32_t rd_u32(struct rd *r)
{
	uint32_t hi = rd_u16(r);

	return hi << 16 | rd_u16(r);
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t hi = rd_u32(r);

	return hi << 32 | rd_u32(r);
}

static void rd_bytes(struct rd *r, uint8_t *out, size_t k)
{
	if (rd_has(r, k)) {
		memcpy(out, r->p + r->off, k);
		r->off += k;
	}
}

/* u8 length + that many name bytes, at least min of them. */
static void rd_name(struct rd *r, char out[LS_CTL_NAME_MAX + 1], size_t min)
{
	size_t k = rd_u8(r);

	out[0] = '\0';
	if (!rd_has(r, k))
		return;
	if (!name_bytes_ok((const char *)r->p + r->off, k, min)) {
		r->bad = true;
		return;
	}
	memcpy(out, r->p + r->off, k);
	out[k] = '\0';
	r->off += k;
}

static void rd_dest(struct rd *r, struct ls_dest *d)
{
	uint32_t net = rd_u32(r);
	uint8_t len = rd_u8(r);

	d->port_lo = rd_u16(r);
	d->port_hi = rd_u16(r);
	if (r->bad)
		return;
	if (len > 32 || d->port_lo > d->port_hi) {
		r->bad = true;
		return;
	}
	d->cidr.len = len;
	d->cidr.mask = len ? 0xffffffffu << (32 - len) : 0;
	/* One spelling per destination: host bits set would be a second one. */
	if ((net & d->cidr.mask) != net) {
		r->bad = true;
		return;
	}
	d->cidr.net = net;
}

static uint8_t rd_dests(struct rd *r, struct ls_dest *d)
{
	uint8_t n = rd_u8(r);

	if (n > LS_CTL_MAX_DESTS) {
		r->bad = true;
		return 0;
	}
	for (uint8_t i = 0; i < n && !r->bad; i++)
		rd_dest(r, &d[i]);
	return n;
}

static void decode_body(struct rd *r, struct ls_ctl_msg *m, enum ls_ctl_dir dir)
{
	switch (m->type) {
	case LS_CTL_PING:
		m->u.ping.client_ts_us = rd_u64(r);
		break;
	case LS_CTL_PONG:
		m->u.pong.client_ts_us = rd_u64(r);
		m->u.pong.server_ts_us = rd_u64(r);
		break;
	case LS_CTL_REGISTER:
		m->u.reg.version = rd_u8(r);
		m->u.reg.game_id = rd_u8(r);
		if (m->u.reg.game_id > 3)
			r->bad = true;
		if (r->bad || r->off == r->n)
			break; /* the bare form of PROTOCOL.md: no extension */
		{
			uint8_t flags = rd_u8(r);

			if (flags & ~1u)
				r->bad = true;
			m->u.reg.resume = flags & 1u;
		}
		if (m->u.reg.resume) {
			m->u.reg.session_id = rd_u32(r);
			rd_bytes(r, m->u.reg.key, LS_CTL_KEY_LEN);
			if (m->u.reg.session_id == 0)
				r->bad = true;
		}
		m->u.reg.ndests = rd_dests(r, m->u.reg.dests);
		/* An extension that says nothing is the bare form spelt twice. */
		if (!m->u.reg.resume && m->u.reg.ndests == 0)
			r->bad = true;
		break;
	case LS_CTL_REGISTER_ACK:
		m->u.ack.session_id = rd_u32(r);
		m->u.ack.token = rd_u8(r);
		rd_name(r, m->u.ack.node_id, 1);
		rd_name(r, m->u.ack.region, 0);
		rd_bytes(r, m->u.ack.key, LS_CTL_KEY_LEN);
		m->u.ack.data_port = rd_u16(r);
		m->u.ack.ndests = rd_dests(r, m->u.ack.dests);
		if (m->u.ack.session_id == 0 || m->u.ack.data_port == 0 ||
		    m->u.ack.token != (uint8_t)m->u.ack.session_id)
			r->bad = true;
		break;
	case LS_CTL_DISCONNECT:
		m->u.disc.reason = rd_u8(r);
		if (m->u.disc.reason > LS_CTL_R_AUTH)
			r->bad = true;
		break;
	case LS_CTL_SERVER_INFO:
		if (dir == LS_CTL_TO_AGENT) {
			m->query = true;
			break;
		}
		m->u.info.load_pct = rd_u8(r);
		m->u.info.active = rd_u32(r);
		m->u.info.capacity = rd_u32(r);
		if (m->u.info.load_pct > 100)
			r->bad = true;
		if (r->bad || r->off == r->n)
			break;
		m->u.info.nlegs = rd_u8(r);
		/* No legs is the bare form: one spelling per message. */
		if (m->u.info.nlegs == 0 || m->u.info.nlegs > LS_CTL_MAX_LEGS) {
			r->bad = true;
			break;
		}
		for (uint8_t i = 0; i < m->u.info.nlegs; i++) {
			m->u.info.legs[i].ip = rd_u32(r);
			m->u.info.legs[i].rtt_us = rd_u32(r);
		}
		break;
	case LS_CTL_ALLOW:
		rd_dest(r, &m->u.allow);
		break;
	case LS_CTL_ALLOW_ACK:
		m->u.allow_ack.ndests = rd_dests(r, m->u.allow_ack.dests);
		break;
	case LS_CTL_PEERS:
		if (dir == LS_CTL_TO_AGENT) {
			m->query = true;
			break;
		}
		m->u.peers.n = rd_u8(r);
		if (m->u.peers.n > LS_CTL_MAX_PEERS) {
			r->bad = true;
			break;
		}
		for (uint8_t i = 0; i < m->u.peers.n && !r->bad; i++) {
			struct ls_ctl_peer *p = &m->u.peers.p[i];
			uint8_t fplen;

			rd_name(r, p->name, 1);
			rd_name(r, p->region, 0);
			p->ip = rd_u32(r);
			p->data_port = rd_u16(r);
			p->control_port = rd_u16(r);
			fplen = rd_u8(r);
			if (fplen != 0 && fplen != LS_CTL_FP_LEN) {
				r->bad = true;
				break;
			}
			p->has_fp = fplen != 0;
			rd_bytes(r, p->fp, fplen);
			if (p->data_port == 0 || p->control_port == 0)
				r->bad = true;
		}
		break;
	case LS_CTL_ERROR: {
		uint8_t k;

		m->u.err.code = rd_u8(r);
		k = rd_u8(r);
		if (m->u.err.code == 0)
			r->bad = true;
		if (!rd_has(r, k))
			break;
		for (uint8_t i = 0; i < k; i++) {
			uint8_t c = r->p[r->off + i];

			/* Printable ASCII only: a message ends up in logs and JSON. */
			if (c < 0x20 || c > 0x7e) {
				r->bad = true;
				return;
			}
			m->u.err.msg[i] = (char)c;
		}
		m->u.err.msg[k] = '\0';
		r->off += k;
		break;
	}
	}
}

/* Which types each end accepts: the agent answers requests, the controller reads
 * answers (DISCONNECT travels both ways). */
static bool type_expected(uint8_t type, enum ls_ctl_dir dir)
{
	switch (type) {
	case LS_CTL_PING: case LS_CTL_REGISTER: case LS_CTL_ALLOW:
		return dir == LS_CTL_TO_AGENT;
	case LS_CTL_PONG: case LS_CTL_REGISTER_ACK: case LS_CTL_ALLOW_ACK: case LS_CTL_ERROR:
		return dir == LS_CTL_TO_CONTROLLER;
	case LS_CTL_DISCONNECT: case LS_CTL_SERVER_INFO: case LS_CTL_PEERS:
		return true;
	}
	return false;
}

int ls_ctl_frame_len(const uint8_t *buf, size_t n, size_t *need)
{
	size_t len;

	if (n < 2)
		return LS_CTL_ERR_SHORT;
	len = (size_t)buf[0] << 8 | buf[1];
	if (len == 0)
		return LS_CTL_ERR_MALFORMED;
	*need = 2 + len;
	return LS_CTL_OK;
}

int ls_ctl_decode(const uint8_t *buf, size_t n, enum ls_ctl_dir dir, struct ls_ctl_msg *m)
{
	struct rd r;
	size_t need;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = ls_ctl_frame_len(buf, n, &need)) != LS_CTL_OK)
		return rc;
	if (n < need)
		return LS_CTL_ERR_SHORT;
	if (n > need)
		return LS_CTL_ERR_MALFORMED;
	m->type = buf[2];
	if (!type_expected(m->type, dir))
		return LS_CTL_ERR_TYPE;
	r = (struct rd){ .p = buf + LS_CTL_HDR_LEN, .n = n - LS_CTL_HDR_LEN };
	decode_body(&r, m, dir);
	/* Every byte accounted for: a frame has one meaning. */
	if (r.bad || r.off != r.n)
		return LS_CTL_ERR_MALFORMED;
	return LS_CTL_OK;
}

/* ---- writing ---------------------------------------------------------------------- */

struct wr {
	uint8_t *p;
	size_t cap, off;
	bool bad;
};

static bool wr_room(struct wr *w, size_t k)
{
	if (w->bad || w->cap - w->off < k) {
		w->bad = true;
		return false;
	}
	return true;
}

static void wr_u8(struct wr *w, uint8_t v)
{
	if (wr_room(w, 1))
		w->p[w->off++] = v;
}

static void wr_u16(struct wr *w, uint16_t v)
{
	wr_u8(w, (uint8_t)(v >> 8));
	wr_u8(w, (uint8_t)v);
}

static void wr_u32(struct wr *w, uint32_t v)
{
	wr_u16(w, (uint16_t)(v >> 16));
	wr_u16(w, (uint16_t)v);
}

static void wr_u64(struct wr *w, uint64_t v)
{
	wr_u32(w, (uint32_t)(v >> 32));
	wr_u32(w, (uint32_t)v);
}

static void wr_bytes(struct wr *w, const void *b, size_t k)
{
	if (wr_room(w, k)) {
		memcpy(w->p + w->off, b, k);
		w->off += k;
	}
}

static void wr_name(struct wr *w, const char *s, size_t min)
{
	size_t k = strnlen(s, LS_CTL_NAME_MAX + 1);

	if (!name_bytes_ok(s, k, min)) {
		w->bad = true;
		return;
	}
	wr_u8(w, (uint8_t)k);
	wr_bytes(w, s, k);
}

static void wr_dest(struct wr *w, const struct ls_dest *d)
{
	if (d->cidr.len > 32 || d->port_lo > d->port_hi) {
		w->bad = true;
		return;
	}
	wr_u32(w, d->cidr.net & (d->cidr.len ? 0xffffffffu << (32 - d->cidr.len) : 0));
	wr_u8(w, d->cidr.len);
	wr_u16(w, d->port_lo);
	wr_u16(w, d->port_hi);
}

static void wr_dests(struct wr *w, const struct ls_dest *d, uint8_t n)
{
	if (n > LS_CTL_MAX_DESTS) {
		w->bad = true;
		return;
	}
	wr_u8(w, n);
	for (uint8_t i = 0; i < n; i++)
		wr_dest(w, &d[i]);
}

static void encode_body(struct wr *w, const struct ls_ctl_msg *m)
{
	switch (m->type) {
	case LS_CTL_PING:
		wr_u64(w, m->u.ping.client_ts_us);
		break;
	case LS_CTL_PONG:
		wr_u64(w, m->u.pong.client_ts_us);
		wr_u64(w, m->u.pong.server_ts_us);
		break;
	case LS_CTL_REGISTER:
		wr_u8(w, m->u.reg.version);
		wr_u8(w, m->u.reg.game_id);
		if (!m->u.reg.resume && m->u.reg.ndests == 0)
			break; /* the bare form */
		wr_u8(w, m->u.reg.resume ? 1 : 0);
		if (m->u.reg.resume) {
			wr_u32(w, m->u.reg.session_id);
			wr_bytes(w, m->u.reg.key, LS_CTL_KEY_LEN);
		}
		wr_dests(w, m->u.reg.dests, m->u.reg.ndests);
		break;
	case LS_CTL_REGISTER_ACK:
		wr_u32(w, m->u.ack.session_id);
		wr_u8(w, (uint8_t)m->u.ack.session_id);
		wr_name(w, m->u.ack.node_id, 1);
		wr_name(w, m->u.ack.region, 0);
		wr_bytes(w, m->u.ack.key, LS_CTL_KEY_LEN);
		wr_u16(w, m->u.ack.data_port);
		wr_dests(w, m->u.ack.dests, m->u.ack.ndests);
		break;
	case LS_CTL_DISCONNECT:
		wr_u8(w, m->u.disc.reason);
		break;
	case LS_CTL_SERVER_INFO:
		if (m->query)
			break;
		wr_u8(w, m->u.info.load_pct);
		wr_u32(w, m->u.info.active);
		wr_u32(w, m->u.info.capacity);
		if (m->u.info.nlegs > LS_CTL_MAX_LEGS) {
			w->bad = true;
			break;
		}
		if (m->u.info.nlegs == 0)
			break; /* the bare form */
		wr_u8(w, m->u.info.nlegs);
		for (uint8_t i = 0; i < m->u.info.nlegs; i++) {
			wr_u32(w, m->u.info.legs[i].ip);
			wr_u32(w, m->u.info.legs[i].rtt_us);
		}
		break;
	case LS_CTL_ALLOW:
		wr_dest(w, &m->u.allow);
		break;
	case LS_CTL_ALLOW_ACK:
		wr_dests(w, m->u.allow_ack.dests, m->u.allow_ack.ndests);
		break;
	case LS_CTL_PEERS:
		if (m->query)
			break;
		if (m->u.peers.n > LS_CTL_MAX_PEERS) {
			w->bad = true;
			break;
		}
		wr_u8(w, m->u.peers.n);
		for (uint8_t i = 0; i < m->u.peers.n; i++) {
			const struct ls_ctl_peer *p = &m->u.peers.p[i];

			wr_name(w, p->name, 1);
			wr_name(w, p->region, 0);
			wr_u32(w, p->ip);
			wr_u16(w, p->data_port);
			wr_u16(w, p->control_port);
			wr_u8(w, p->has_fp ? LS_CTL_FP_LEN : 0);
			if (p->has_fp)
				wr_bytes(w, p->fp, LS_CTL_FP_LEN);
		}
		break;
	case LS_CTL_ERROR: {
		size_t k = strnlen(m->u.err.msg, LS_CTL_MAX_MSG);

		wr_u8(w, m->u.err.code);
		wr_u8(w, (uint8_t)k);
		for (size_t i = 0; i < k; i++) {
			char c = m->u.err.msg[i];

			wr_u8(w, (uint8_t)(c >= 0x20 && c <= 0x7e ? c : '?'));
		}
		break;
	}
	default:
		w->bad = true;
	}
}

long ls_ctl_encode(const struct ls_ctl_msg *m, uint8_t *buf, size_t cap)
{
	struct wr w = { .p = buf, .cap = cap, .off = LS_CTL_HDR_LEN };
	size_t len;

	if (cap < LS_CTL_HDR_LEN)
		return -1;
	encode_body(&w, m);
	if (w.bad)
		return -1;
	len = w.off - 2;
	if (len > 0xffff)
		return -1;
	buf[0] = (uint8_t)(len >> 8);
	buf[1] = (uint8_t)len;
	buf[2] = m->type;
	return (long)w.off;
}

void ls_ctl_error(struct ls_ctl_msg *m, enum ls_ctl_code code, const char *fmt, ...)
{
	va_list ap;

	memset(m, 0, sizeof(*m));
	m->type = LS_CTL_ERROR;
	m->u.err.code = (uint8_t)code;
	va_start(ap, fmt);
	vsnprintf(m->u.err.msg, sizeof(m->u.err.msg), fmt, ap);
	va_end(ap);
}

/* ---- fingerprints ----------------------------------------------------------------- */

void ls_ctl_fp_fmt(const uint8_t fp[LS_CTL_FP_LEN], char out[LS_CTL_FP_STRLEN])
{
	memcpy(out, "sha256:", 7);
	ls_hex_encode(fp, LS_CTL_FP_LEN, out + 7);
}

int ls_ctl_fp_parse(const char *s, uint8_t fp[LS_CTL_FP_LEN])
{
	size_t i = 0;

	if (!s)
		return -1;
	if (strncasecmp(s, "sha256:", 7) == 0)
		s += 7;
	else if (strncasecmp(s, "sha256=", 7) == 0)
		s += 7;
	while (i < LS_CTL_FP_LEN) {
		int hi = ls_hex_nibble(s[0]), lo = hi < 0 ? -1 : ls_hex_nibble(s[1]);

		if (hi < 0 || lo < 0)
			return -1;
		fp[i++] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (*s == ':' && i < LS_CTL_FP_LEN)
			s++;
	}
	return *s == '\0' ? 0 : -1;
}
