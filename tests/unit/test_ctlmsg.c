/* Control-frame codec (docs/protocol.md section 2): every message round trips, the wire
 * bytes of the fixed messages are PROTOCOL.md's, every truncation and every byte too
 * many is refused, fields out of range are refused, each end refuses what the other
 * end should have received. */
#include <stdlib.h>
#include <string.h>

#include "ctlmsg.h"

#include "unit.h"

static struct ls_dest dest(uint32_t net, uint8_t len, uint16_t lo, uint16_t hi)
{
	struct ls_dest d;

	memset(&d, 0, sizeof(d));
	d.cidr.net = net;
	d.cidr.len = len;
	d.cidr.mask = len ? 0xffffffffu << (32 - len) : 0;
	d.port_lo = lo;
	d.port_hi = hi;
	return d;
}

/* Every message kind, filled with distinct values. */
static size_t samples(struct ls_ctl_msg *m, enum ls_ctl_dir *dir)
{
	size_t n = 0;

	memset(m, 0, 16 * sizeof(*m));
	m[n].type = LS_CTL_PING;
	m[n].u.ping.client_ts_us = 0x0102030405060708ull;
	dir[n++] = LS_CTL_TO_AGENT;

	m[n].type = LS_CTL_PONG;
	m[n].u.pong.client_ts_us = 1;
	m[n].u.pong.server_ts_us = 0xfffffffffffffffeull;
	dir[n++] = LS_CTL_TO_CONTROLLER;

	m[n].type = LS_CTL_REGISTER; /* the bare form */
	m[n].u.reg.version = 1;
	m[n].u.reg.game_id = 2;
	dir[n++] = LS_CTL_TO_AGENT;

	m[n].type = LS_CTL_REGISTER; /* resume, with destinations */
	m[n].u.reg.version = 1;
	m[n].u.reg.game_id = 3;
	m[n].u.reg.resume = true;
	m[n].u.reg.session_id = 0xdeadbeef;
	for (int i = 0; i < LS_CTL_KEY_LEN; i++)
		m[n].u.reg.key[i] = (uint8_t)(0xa0 + i);
	m[n].u.reg.ndests = 2;
	m[n].u.reg.dests[0] = dest(0xcb007105, 32, 27015, 27015);
	m[n].u.reg.dests[1] = dest(0xc6336400, 24, 0, 65535);
	dir[n++] = LS_CTL_TO_AGENT;

	m[n].type = LS_CTL_REGISTER_ACK;
	m[n].u.ack.session_id = 0x11223344;
	m[n].u.ack.token = 0x44;
	strcpy(m[n].u.ack.node_id, "node-a.eu_1");
	strcpy(m[n].u.ack.region, "eu-west");
	memset(m[n].u.ack.key, 0x5c, LS_CTL_KEY_LEN);
	m[n].u.ack.data_port = 4434;
	m[n].u.ack.ndests = 1;
	m[n].u.ack.dests[0] = dest(0x7f000001, 32, 7777, 7777);
	dir[n++] = LS_CTL_TO_CONTROLLER;

	m[n].type = LS_CTL_DISCONNECT;
	m[n].u.disc.reason = LS_CTL_R_FULL;
	dir[n++] = LS_CTL_TO_CONTROLLER;

	m[n].type = LS_CTL_SERVER_INFO;
	m[n].query = true;
	dir[n++] = LS_CTL_TO_AGENT;

	m[n].type = LS_CTL_SERVER_INFO;
	m[n].u.info.load_pct = 37;
	m[n].u.info.active = 370;
	m[n].u.info.capacity = 1000;
	m[n].u.info.nlegs = 2;
	m[n].u.info.legs[0].ip = 0xcb007105;
	m[n].u.info.legs[0].rtt_us = 12345;
	m[n].u.info.legs[1].ip = 0xcb007106;
	m[n].u.info.legs[1].rtt_us = LS_CTL_RTT_NONE;
	dir[n++] = LS_CTL_TO_CONTROLLER;

	m[n].type = LS_CTL_ALLOW;
	m[n].u.allow = dest(0x0a000000, 8, 7000, 9000);
	dir[n++] = LS_CTL_TO_AGENT;

	m[n].type = LS_CTL_ALLOW_ACK;
	m[n].u.allow_ack.ndests = 1;
	m[n].u.allow_ack.dests[0] = dest(0, 0, 1, 2);
	dir[n++] = LS_CTL_TO_CONTROLLER;

	m[n].type = LS_CTL_PEERS;
	m[n].query = true;
	dir[n++] = LS_CTL_TO_AGENT;

	m[n].type = LS_CTL_PEERS;
	m[n].u.peers.n = 2;
	strcpy(m[n].u.peers.p[0].name, "b");
	strcpy(m[n].u.peers.p[0].region, "");
	m[n].u.peers.p[0].ip = 0x7f000002;
	m[n].u.peers.p[0].data_port = 4434;
	m[n].u.peers.p[0].control_port = 4433;
	strcpy(m[n].u.peers.p[1].name, "c.sg");
	strcpy(m[n].u.peers.p[1].region, "asia");
	m[n].u.peers.p[1].ip = 0x01020304;
	m[n].u.peers.p[1].data_port = 1;
	m[n].u.peers.p[1].control_port = 65535;
	m[n].u.peers.p[1].has_fp = true;
	memset(m[n].u.peers.p[1].fp, 0xee, LS_CTL_FP_LEN);
	dir[n++] = LS_CTL_TO_CONTROLLER;

	m[n].type = LS_CTL_ERROR;
	m[n].u.err.code = LS_CTL_E_DENIED;
	strcpy(m[n].u.err.msg, "198.51.100.7:27015 is not among the destinations");
	dir[n++] = LS_CTL_TO_CONTROLLER;
	return n;
}

static void test_roundtrip_all(void)
{
	struct ls_ctl_msg m[16], out;
	enum ls_ctl_dir dir[16];
	uint8_t buf[LS_CTL_MAX_FRAME];
	size_t n = samples(m, dir);

	for (size_t i = 0; i < n; i++) {
		long len = ls_ctl_encode(&m[i], buf, sizeof(buf));
		size_t need;

		CU_ASSERT_FATAL(len >= LS_CTL_HDR_LEN);
		CU_ASSERT_EQUAL(ls_ctl_frame_len(buf, (size_t)len, &need), LS_CTL_OK);
		CU_ASSERT_EQUAL(need, (size_t)len);
		CU_ASSERT_EQUAL(ls_ctl_decode(buf, (size_t)len, dir[i], &out), LS_CTL_OK);
		/* Decoding fills the same struct we encoded: compare it whole. */
		CU_ASSERT_EQUAL(memcmp(&out, &m[i], sizeof(out)), 0);
	}
}

static void test_wire_bytes(void)
{
	struct ls_ctl_msg m;
	uint8_t buf[64];

	/* PROTOCOL.md: u16 len | u8 type | body, big-endian; len counts type + body. */
	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_PING;
	m.u.ping.client_ts_us = 0x0102030405060708ull;
	CU_ASSERT_EQUAL(ls_ctl_encode(&m, buf, sizeof(buf)), 11);
	static const uint8_t ping[] = { 0, 9, 1, 1, 2, 3, 4, 5, 6, 7, 8 };
	CU_ASSERT_EQUAL(memcmp(buf, ping, sizeof(ping)), 0);

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_REGISTER;
	m.u.reg.version = 1;
	m.u.reg.game_id = 1;
	CU_ASSERT_EQUAL(ls_ctl_encode(&m, buf, sizeof(buf)), 5);
	static const uint8_t reg[] = { 0, 3, 3, 1, 1 };
	CU_ASSERT_EQUAL(memcmp(buf, reg, sizeof(reg)), 0);

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_DISCONNECT;
	m.u.disc.reason = 3;
	CU_ASSERT_EQUAL(ls_ctl_encode(&m, buf, sizeof(buf)), 4);
	static const uint8_t disc[] = { 0, 2, 5, 3 };
	CU_ASSERT_EQUAL(memcmp(buf, disc, sizeof(disc)), 0);

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_SERVER_INFO;
	m.u.info.load_pct = 50;
	m.u.info.active = 0x01020304;
	m.u.info.capacity = 0x0a0b0c0d;
	/* Without legs: the fixed SERVER_INFO of PROTOCOL.md, nothing more. */
	CU_ASSERT_EQUAL(ls_ctl_encode(&m, buf, sizeof(buf)), 3 + 9);
	static const uint8_t bare[] = { 0, 10, 6, 50, 1, 2, 3, 4, 10, 11, 12, 13 };
	CU_ASSERT_EQUAL(memcmp(buf, bare, sizeof(bare)), 0);
	CU_ASSERT_EQUAL(ls_ctl_decode(bare, sizeof(bare), LS_CTL_TO_CONTROLLER, &m), LS_CTL_OK);
	CU_ASSERT_EQUAL(m.u.info.capacity, 0x0a0b0c0d);
	CU_ASSERT_EQUAL(m.u.info.nlegs, 0);
	/* One spelling: an extension of no legs, or a REGISTER extension saying nothing,
	 * is malformed. */
	static const uint8_t zero_legs[] = { 0, 11, 6, 50, 1, 2, 3, 4, 10, 11, 12, 13, 0 };
	CU_ASSERT_EQUAL(ls_ctl_decode(zero_legs, sizeof(zero_legs), LS_CTL_TO_CONTROLLER, &m),
			LS_CTL_ERR_MALFORMED);
	static const uint8_t empty_ext[] = { 0, 5, 3, 1, 1, 0, 0 };
	CU_ASSERT_EQUAL(ls_ctl_decode(empty_ext, sizeof(empty_ext), LS_CTL_TO_AGENT, &m),
			LS_CTL_ERR_MALFORMED);
}

/* Every prefix of every frame is short; every frame with a byte more is malformed
 * (its length field kept) or short (its length field grown). */
static void test_truncation_and_extra(void)
{
	struct ls_ctl_msg m[16], out;
	enum ls_ctl_dir dir[16];
	uint8_t buf[LS_CTL_MAX_FRAME + 1];
	size_t n = samples(m, dir);

	for (size_t i = 0; i < n; i++) {
		long len = ls_ctl_encode(&m[i], buf, sizeof(buf) - 1);

		for (long k = 0; k < len; k++)
			CU_ASSERT_EQUAL(ls_ctl_decode(buf, (size_t)k, dir[i], &out),
					k < 2 ? LS_CTL_ERR_SHORT : LS_CTL_ERR_SHORT);
		buf[len] = 0;
		CU_ASSERT_EQUAL(ls_ctl_decode(buf, (size_t)len + 1, dir[i], &out),
				LS_CTL_ERR_MALFORMED);
		/* A length field one larger with a byte more: a body with a byte left over
		 * (or a shape it does not have) is malformed, never read past. */
		uint16_t l = (uint16_t)(buf[0] << 8 | buf[1]);
		l++;
		buf[0] = (uint8_t)(l >> 8);
		buf[1] = (uint8_t)l;
		int rc = ls_ctl_decode(buf, (size_t)len + 1, dir[i], &out);
		/* A body may legitimately grow by an optional part (REGISTER's or
		 * SERVER_INFO's extension) only when a whole part follows: one zero byte
		 * after a bare REGISTER is a flags byte with no destination count. */
		CU_ASSERT(rc == LS_CTL_ERR_MALFORMED);
	}
}

static void test_zero_length_and_types(void)
{
	struct ls_ctl_msg m;
	uint8_t zero[] = { 0, 0 }, unk[] = { 0, 1, 0x42 }, pong[] = { 0, 17, 2, 0, 0, 0, 0, 0, 0,
								       0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	size_t need;

	CU_ASSERT_EQUAL(ls_ctl_frame_len(zero, 2, &need), LS_CTL_ERR_MALFORMED);
	CU_ASSERT_EQUAL(ls_ctl_decode(zero, 2, LS_CTL_TO_AGENT, &m), LS_CTL_ERR_MALFORMED);
	CU_ASSERT_EQUAL(ls_ctl_decode(unk, 3, LS_CTL_TO_AGENT, &m), LS_CTL_ERR_TYPE);
	CU_ASSERT_EQUAL(ls_ctl_decode(unk, 3, LS_CTL_TO_CONTROLLER, &m), LS_CTL_ERR_TYPE);
	/* A PONG is an answer: the agent does not take it as a request. */
	CU_ASSERT_EQUAL(ls_ctl_decode(pong, sizeof(pong), LS_CTL_TO_AGENT, &m), LS_CTL_ERR_TYPE);
	CU_ASSERT_EQUAL(ls_ctl_decode(pong, sizeof(pong), LS_CTL_TO_CONTROLLER, &m), LS_CTL_OK);
	/* Requests with a body where none belongs. */
	uint8_t info_q[] = { 0, 2, 6, 0 };
	CU_ASSERT_EQUAL(ls_ctl_decode(info_q, 4, LS_CTL_TO_AGENT, &m), LS_CTL_ERR_MALFORMED);
	uint8_t peers_q[] = { 0, 1, 9 };
	CU_ASSERT_EQUAL(ls_ctl_decode(peers_q, 3, LS_CTL_TO_AGENT, &m), LS_CTL_OK);
	CU_ASSERT(m.query);
	/* The largest length field: the frame is 65,537 bytes; fewer is short. */
	uint8_t big[] = { 0xff, 0xff, 1 };
	CU_ASSERT_EQUAL(ls_ctl_frame_len(big, 3, &need), LS_CTL_OK);
	CU_ASSERT_EQUAL(need, 65537u);
	CU_ASSERT_EQUAL(ls_ctl_decode(big, 3, LS_CTL_TO_AGENT, &m), LS_CTL_ERR_SHORT);
}

static void expect_bad(const uint8_t *f, size_t n, enum ls_ctl_dir dir)
{
	struct ls_ctl_msg m;

	CU_ASSERT_EQUAL(ls_ctl_decode(f, n, dir, &m), LS_CTL_ERR_MALFORMED);
}

static void test_out_of_range(void)
{
	/* game id 4, unknown REGISTER flags, resume of session 0 */
	expect_bad((const uint8_t[]){ 0, 3, 3, 1, 4 }, 5, LS_CTL_TO_AGENT);
	expect_bad((const uint8_t[]){ 0, 5, 3, 1, 0, 2, 0 }, 7, LS_CTL_TO_AGENT);
	uint8_t resume0[3 + 2 + 1 + 4 + 16 + 1] = { 0, 25, 3, 1, 0, 1, 0, 0, 0, 0 };
	expect_bad(resume0, sizeof(resume0), LS_CTL_TO_AGENT);
	/* a destination with host bits set, a prefix over 32, ports reversed */
	expect_bad((const uint8_t[]){ 0, 10, 7, 10, 0, 0, 1, 8, 0, 0, 0, 0 }, 12, LS_CTL_TO_AGENT);
	expect_bad((const uint8_t[]){ 0, 10, 7, 10, 0, 0, 0, 33, 0, 0, 0, 0 }, 12, LS_CTL_TO_AGENT);
	expect_bad((const uint8_t[]){ 0, 10, 7, 10, 0, 0, 0, 8, 0, 9, 0, 8 }, 12, LS_CTL_TO_AGENT);
	/* more destinations than the maximum */
	uint8_t many[3 + 2 + 1 + 1] = { 0, 5, 3, 1, 0, 0, LS_CTL_MAX_DESTS + 1 };
	expect_bad(many, sizeof(many), LS_CTL_TO_AGENT);
	/* DISCONNECT reason 5, load over 100 */
	expect_bad((const uint8_t[]){ 0, 2, 5, 5 }, 4, LS_CTL_TO_CONTROLLER);
	expect_bad((const uint8_t[]){ 0, 10, 6, 101, 0, 0, 0, 0, 0, 0, 0, 0 }, 12,
		   LS_CTL_TO_CONTROLLER);
	/* ERROR code 0, a control byte in its message */
	expect_bad((const uint8_t[]){ 0, 3, 0x7f, 0, 0 }, 5, LS_CTL_TO_CONTROLLER);
	expect_bad((const uint8_t[]){ 0, 4, 0x7f, 1, 1, '\n' }, 6, LS_CTL_TO_CONTROLLER);
	/* REGISTER_ACK: token not the id's low byte; a node id with a space; port 0 */
	uint8_t ack[3 + 4 + 1 + 2 + 1 + 16 + 2 + 1] = { 0, 28, 4, 0, 0, 0, 7, 8, 1, 'a', 0 };
	expect_bad(ack, sizeof(ack), LS_CTL_TO_CONTROLLER);
	ack[7] = 7;
	ack[9] = ' ';
	expect_bad(ack, sizeof(ack), LS_CTL_TO_CONTROLLER);
	ack[9] = 'a';
	/* data port 0 (bytes 27..28) */
	expect_bad(ack, sizeof(ack), LS_CTL_TO_CONTROLLER);
	ack[28] = 1;
	struct ls_ctl_msg m;
	CU_ASSERT_EQUAL(ls_ctl_decode(ack, sizeof(ack), LS_CTL_TO_CONTROLLER, &m), LS_CTL_OK);
	/* a fingerprint of 31 bytes in PEERS */
	uint8_t peer[3 + 1 + 2 + 1 + 4 + 2 + 2 + 1] = { 0, 14, 9, 1, 1, 'x', 0, 1, 2, 3, 4,
							0, 1, 0, 1, 31 };
	expect_bad(peer, sizeof(peer), LS_CTL_TO_CONTROLLER);
}

static void test_encode_refuses(void)
{
	struct ls_ctl_msg m;
	uint8_t buf[LS_CTL_MAX_FRAME];

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_REGISTER_ACK;
	m.u.ack.session_id = 5;
	strcpy(m.u.ack.node_id, "bad name");
	m.u.ack.data_port = 1;
	CU_ASSERT_EQUAL(ls_ctl_encode(&m, buf, sizeof(buf)), -1);
	strcpy(m.u.ack.node_id, "");
	CU_ASSERT_EQUAL(ls_ctl_encode(&m, buf, sizeof(buf)), -1);
	strcpy(m.u.ack.node_id, "ok");
	CU_ASSERT(ls_ctl_encode(&m, buf, sizeof(buf)) > 0);
	CU_ASSERT_EQUAL(ls_ctl_encode(&m, buf, 10), -1); /* does not fit */
	m.type = 0x55;
	CU_ASSERT_EQUAL(ls_ctl_encode(&m, buf, sizeof(buf)), -1);
	/* an ERROR message's control bytes leave as '?' */
	ls_ctl_error(&m, LS_CTL_E_INTERNAL, "a\nb");
	long n = ls_ctl_encode(&m, buf, sizeof(buf));
	CU_ASSERT_EQUAL(n, 3 + 2 + 3);
	CU_ASSERT_EQUAL(buf[6], '?');
}

static void test_fingerprints(void)
{
	uint8_t fp[LS_CTL_FP_LEN], back[LS_CTL_FP_LEN];
	char s[LS_CTL_FP_STRLEN], colons[200];

	for (int i = 0; i < LS_CTL_FP_LEN; i++)
		fp[i] = (uint8_t)(i * 9 + 1);
	ls_ctl_fp_fmt(fp, s);
	CU_ASSERT_EQUAL(strncmp(s, "sha256:", 7), 0);
	CU_ASSERT_EQUAL(strlen(s), 7u + 64u);
	CU_ASSERT_EQUAL(ls_ctl_fp_parse(s, back), 0);
	CU_ASSERT_EQUAL(memcmp(fp, back, sizeof(fp)), 0);
	/* openssl's form: upper case, colons, "SHA256 Fingerprint=" stripped by the user */
	size_t k = 0;
	for (int i = 0; i < LS_CTL_FP_LEN; i++)
		k += (size_t)snprintf(colons + k, sizeof(colons) - k, "%s%02X", i ? ":" : "", fp[i]);
	CU_ASSERT_EQUAL(ls_ctl_fp_parse(colons, back), 0);
	CU_ASSERT_EQUAL(memcmp(fp, back, sizeof(fp)), 0);
	CU_ASSERT_EQUAL(ls_ctl_fp_parse("sha256:00", back), -1);
	s[70] = 'g';
	CU_ASSERT_EQUAL(ls_ctl_fp_parse(s, back), -1);
	CU_ASSERT_EQUAL(ls_ctl_fp_parse(NULL, back), -1);
	strcat(colons, "00");
	CU_ASSERT_EQUAL(ls_ctl_fp_parse(colons, back), -1);
}

static void test_names(void)
{
	CU_ASSERT(ls_ctl_name_ok("a"));
	CU_ASSERT(ls_ctl_name_ok("node-1.eu_west"));
	CU_ASSERT(!ls_ctl_name_ok(""));
	CU_ASSERT(!ls_ctl_name_ok("has space"));
	CU_ASSERT(!ls_ctl_name_ok("0123456789012345678901234567890123"));
	CU_ASSERT_STRING_EQUAL(ls_ctl_type_name(LS_CTL_REGISTER), "REGISTER");
	CU_ASSERT_STRING_EQUAL(ls_ctl_type_name(0x33), "unknown");
	CU_ASSERT_STRING_EQUAL(ls_ctl_code_name(LS_CTL_E_TOO_LONG), "too_long");
	CU_ASSERT_STRING_EQUAL(ls_ctl_reason_name(LS_CTL_R_FULL), "rate limited or full");
}

UNIT_MAIN("ctlmsg",
	  { "every message round trips", test_roundtrip_all },
	  { "wire bytes of PROTOCOL.md", test_wire_bytes },
	  { "truncated and over-long frames", test_truncation_and_extra },
	  { "zero length, unknown and misdirected types", test_zero_length_and_types },
	  { "fields out of range", test_out_of_range },
	  { "encoding refuses what cannot decode", test_encode_refuses },
	  { "fingerprints", test_fingerprints },
	  { "names", test_names })
