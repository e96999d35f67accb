/* Tunnel codec: round trips of every header shape and every malformed length. */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#include "unit.h"

static struct ls_hdr sample(uint8_t version, uint8_t flags)
{
	struct ls_hdr h = {
		.version = version, .flags = flags, .token = 0xab, .seq = 0xfffe,
		.ts_us = 0x89abcdef, .src_ip = 0x7f000001, .dst_ip = 0xcb007105,
		.src_port = 50000, .dst_port = 7777,
	};
	if (version == LS_VER_FEC) {
		h.fec_block = 0xbeef;
		h.fec_index = 5;
		h.fec_k = 4; /* parity row 1 */
	}
	if (flags & LS_F_AUTH)
		h.session_id = 0xdeadbeab;
	return h;
}

static void roundtrip(uint8_t version, uint8_t flags, size_t payload_len)
{
	uint8_t buf[LS_RX_BUF];
	struct ls_hdr h = sample(version, flags);
	size_t n = ls_hdr_encode(&h, buf);
	CU_ASSERT_EQUAL(n, ls_hdr_len(version, flags));
	for (size_t i = 0; i < payload_len; i++)
		buf[n + i] = (uint8_t)(i * 7);
	size_t total = n + payload_len + ((flags & LS_F_AUTH) ? LS_TAG_LEN : 0);
	memset(buf + n + payload_len, 0x5a, total - n - payload_len);

	struct ls_pkt p;
	CU_ASSERT_EQUAL_FATAL(ls_pkt_decode(buf, total, &p), LS_PE_OK);
	CU_ASSERT_EQUAL(p.h.version, version);
	CU_ASSERT_EQUAL(p.h.flags, flags);
	CU_ASSERT_EQUAL(p.h.token, 0xab);
	CU_ASSERT_EQUAL(p.h.seq, 0xfffe);
	CU_ASSERT_EQUAL(p.h.ts_us, 0x89abcdef);
	CU_ASSERT_EQUAL(p.h.src_ip, 0x7f000001);
	CU_ASSERT_EQUAL(p.h.dst_ip, 0xcb007105);
	CU_ASSERT_EQUAL(p.h.src_port, 50000);
	CU_ASSERT_EQUAL(p.h.dst_port, 7777);
	CU_ASSERT_EQUAL(p.h.fec_block, h.fec_block);
	CU_ASSERT_EQUAL(p.h.fec_index, h.fec_index);
	CU_ASSERT_EQUAL(p.h.fec_k, h.fec_k);
	CU_ASSERT_EQUAL(p.h.session_id, h.session_id);
	CU_ASSERT_EQUAL(p.payload_len, payload_len);
	CU_ASSERT_PTR_EQUAL(p.payload, buf + n);
	if (flags & LS_F_AUTH) {
		CU_ASSERT_PTR_EQUAL(p.tag, buf + total - LS_TAG_LEN);
		CU_ASSERT_EQUAL(p.signed_len, total - LS_TAG_LEN);
	} else {
		CU_ASSERT_PTR_NULL(p.tag);
	}
}

static void test_roundtrips(void)
{
	static const size_t sizes[] = { 0, 1, 64, 1400, LS_MAX_PAYLOAD };
	for (int v = LS_VER_PLAIN; v <= LS_VER_FEC; v++)
		for (int auth = 0; auth < 2; auth++)
			for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
				roundtrip((uint8_t)v, auth ? LS_F_AUTH : 0, sizes[i]);
}

static void test_wire_layout(void)
{
	uint8_t buf[64];
	struct ls_hdr h = sample(LS_VER_FEC, LS_F_AUTH | LS_F_KEEPALIVE);
	size_t n = ls_hdr_encode(&h, buf);
	static const uint8_t want[] = {
		0x29, 0xab, 0xff, 0xfe, 0x89, 0xab, 0xcd, 0xef, 0x7f, 0x00, 0x00, 0x01,
		0xcb, 0x00, 0x71, 0x05, 0xc3, 0x50, 0x1e, 0x61, /* base */
		0xbe, 0xef, 0x05, 0x04, /* FEC */
		0xde, 0xad, 0xbe, 0xab, /* session id */
	};
	CU_ASSERT_EQUAL_FATAL(n, sizeof(want));
	CU_ASSERT(memcmp(buf, want, n) == 0);
}

/* Every length shorter than the headers a packet claims is refused, never read past. */
static void test_every_short_length(void)
{
	static const uint8_t shapes[][2] = {
		{ LS_VER_PLAIN, 0 }, { LS_VER_FEC, 0 }, { LS_VER_PLAIN, LS_F_AUTH },
		{ LS_VER_FEC, LS_F_AUTH },
	};
	for (size_t s = 0; s < 4; s++) {
		uint8_t buf[64];
		struct ls_hdr h = sample(shapes[s][0], shapes[s][1]);
		size_t need = ls_hdr_len(h.version, h.flags) +
			      ((h.flags & LS_F_AUTH) ? LS_TAG_LEN : 0);
		ls_hdr_encode(&h, buf);
		memset(buf + ls_hdr_len(h.version, h.flags), 0, 16);
		for (size_t len = 0; len < need; len++) {
			struct ls_pkt p;
			CU_ASSERT_EQUAL(ls_pkt_decode(buf, len, &p), LS_PE_SHORT);
		}
		struct ls_pkt p;
		CU_ASSERT_EQUAL(ls_pkt_decode(buf, need, &p), LS_PE_OK);
		CU_ASSERT_EQUAL(p.payload_len, 0);
	}
}

static void test_bad_fields(void)
{
	uint8_t buf[LS_RX_BUF] = { 0 };
	struct ls_pkt p;
	struct ls_hdr h = sample(LS_VER_PLAIN, 0);

	for (int v = 0; v < 16; v++) {
		h.version = (uint8_t)v;
		ls_hdr_encode(&h, buf);
		buf[0] = (uint8_t)(v << 4);
		int rc = ls_pkt_decode(buf, 40, &p);
		/* Version 3 (a relay hop) is known, but only with AUTH alone. */
		CU_ASSERT_EQUAL(rc, (v == 1 || v == 2) ? LS_PE_OK :
				    v == 3 ? LS_PE_FLAGS : LS_PE_VERSION);
	}
	buf[0] = 0x10 | LS_F_HANDSHAKE;
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, 40, &p), LS_PE_FLAGS);
	buf[0] = 0x10 | LS_F_KEEPALIVE | LS_F_FIN;
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, 40, &p), LS_PE_FLAGS);
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, LS_MAX_DATAGRAM + 1, &p), LS_PE_OVERSIZE);
	buf[0] = 0x10;
	/* The payload limit holds without AUTH too: its headers are shorter, not its room. */
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, LS_HDR_LEN + LS_MAX_PAYLOAD, &p), LS_PE_OK);
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, LS_HDR_LEN + LS_MAX_PAYLOAD + 1, &p), LS_PE_OVERSIZE);
	buf[0] = 0x10 | LS_F_AUTH;
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, LS_MAX_DATAGRAM - LS_FEC_EXT_LEN, &p), LS_PE_OK);
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, LS_MAX_DATAGRAM - LS_FEC_EXT_LEN + 1, &p),
			LS_PE_OVERSIZE);
	buf[0] = 0x20;
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, LS_HDR_LEN + LS_FEC_EXT_LEN + LS_MAX_PAYLOAD + 1, &p),
			LS_PE_OVERSIZE);
	/* A handshake always carries AUTH, and is never a keepalive or FIN as well. */
	buf[0] = 0x10 | LS_F_HANDSHAKE | LS_F_AUTH;
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, 64, &p), LS_PE_OK);
	buf[0] = 0x10 | LS_F_HANDSHAKE | LS_F_AUTH | LS_F_KEEPALIVE;
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, 64, &p), LS_PE_FLAGS);
	buf[0] = 0x10 | LS_F_HANDSHAKE | LS_F_AUTH | LS_F_FIN;
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, 64, &p), LS_PE_FLAGS);
}

static int fec_check(uint8_t index, uint8_t k, uint8_t flags)
{
	uint8_t buf[64] = { 0 };
	struct ls_hdr h = sample(LS_VER_FEC, flags);
	struct ls_pkt p;
	h.fec_index = index;
	h.fec_k = k;
	ls_hdr_encode(&h, buf);
	return ls_pkt_decode(buf, 40, &p);
}

static void test_fec_ranges(void)
{
	CU_ASSERT_EQUAL(fec_check(0, 0, 0), LS_PE_OK);   /* data, block open */
	CU_ASSERT_EQUAL(fec_check(31, 0, 0), LS_PE_OK);
	CU_ASSERT_EQUAL(fec_check(32, 0, 0), LS_PE_FEC_RANGE);
	CU_ASSERT_EQUAL(fec_check(3, 4, 0), LS_PE_OK);   /* data, block closed */
	CU_ASSERT_EQUAL(fec_check(4, 4, 0), LS_PE_OK);   /* parity row 0 */
	CU_ASSERT_EQUAL(fec_check(19, 4, 0), LS_PE_OK);  /* parity row 15 */
	CU_ASSERT_EQUAL(fec_check(20, 4, 0), LS_PE_FEC_RANGE);
	CU_ASSERT_EQUAL(fec_check(47, 32, 0), LS_PE_OK);
	CU_ASSERT_EQUAL(fec_check(0, 33, 0), LS_PE_FEC_RANGE);
	CU_ASSERT_EQUAL(fec_check(255, 255, 0), LS_PE_FEC_RANGE);
	/* A keepalive's extension is ignored. */
	CU_ASSERT_EQUAL(fec_check(255, 255, LS_F_KEEPALIVE), LS_PE_OK);
}

/* A relay hop (1.9): version 3, AUTH alone, its payload a whole tunnel datagram. */
static void test_relay_hop(void)
{
	uint8_t buf[LS_RX_BUF] = { 0 };
	struct ls_pkt p;
	struct ls_hdr h = sample(LS_VER_RELAY, LS_F_AUTH);
	size_t n = ls_hdr_encode(&h, buf);

	CU_ASSERT_EQUAL(n, LS_HDR_LEN + LS_AUTH_ID_LEN);
	CU_ASSERT_EQUAL(LS_RELAY_OVERHEAD, 32);
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, n + LS_MAX_DATAGRAM + LS_TAG_LEN, &p), LS_PE_OK);
	CU_ASSERT_EQUAL(p.payload_len, LS_MAX_DATAGRAM);
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, n + LS_MAX_DATAGRAM + LS_TAG_LEN + 1, &p),
			LS_PE_OVERSIZE);
	CU_ASSERT_EQUAL(LS_MAX_RELAY_DATAGRAM, n + LS_MAX_DATAGRAM + LS_TAG_LEN);
	/* Control on a hop is version 1: a version-3 keepalive, FIN or handshake is not. */
	for (uint8_t f = 0; f < 16; f++) {
		buf[0] = (uint8_t)(LS_VER_RELAY << 4 | f);
		CU_ASSERT_EQUAL(ls_pkt_decode(buf, 64, &p), f == LS_F_AUTH ? LS_PE_OK : LS_PE_FLAGS);
	}
	/* Versions 1 and 2 keep their own limit. */
	buf[0] = 0x10 | LS_F_AUTH;
	CU_ASSERT_EQUAL(ls_pkt_decode(buf, LS_MAX_DATAGRAM + 1, &p), LS_PE_OVERSIZE);
}

/* Roles in requests, a path's count in replies (1.9). */
static void test_keepalive_roles(void)
{
	struct ls_keepalive ka = { .kind = LS_KA_REQUEST, .role = LS_ROLE_PARITY, .fec_k = 4,
				   .fec_m = 2 }, out;
	struct ls_hdr h = sample(LS_VER_PLAIN, LS_F_KEEPALIVE);
	uint8_t buf[64];

	ls_keepalive_to_hdr(&ka, &h);
	ls_hdr_encode(&h, buf);
	CU_ASSERT_EQUAL(buf[17], (LS_ROLE_PARITY << 4) | LS_KA_REQUEST);
	CU_ASSERT_EQUAL(ls_keepalive_from_hdr(&h, &out), LS_PE_OK);
	CU_ASSERT_EQUAL(out.role, LS_ROLE_PARITY);
	CU_ASSERT_EQUAL(out.fec_k, 4);
	CU_ASSERT_EQUAL(out.fec_m, 2);
	ka = (struct ls_keepalive){ .kind = LS_KA_REPLY, .path_rx = 0xbeef };
	ls_keepalive_to_hdr(&ka, &h);
	ls_hdr_encode(&h, buf);
	CU_ASSERT_EQUAL(buf[18], 0xbe);
	CU_ASSERT_EQUAL(buf[19], 0xef);
	CU_ASSERT_EQUAL(ls_keepalive_from_hdr(&h, &out), LS_PE_OK);
	CU_ASSERT_EQUAL(out.path_rx, 0xbeef);
	CU_ASSERT_EQUAL(out.fec_k, 0);
	/* A role above probe, or any role in a reply, is malformed. */
	h.src_port = (uint16_t)((LS_ROLE_MAX + 1) << 4);
	CU_ASSERT_EQUAL(ls_keepalive_from_hdr(&h, &out), LS_PE_KIND);
	h.src_port = (uint16_t)(LS_ROLE_DATA << 4 | LS_KA_REPLY);
	CU_ASSERT_EQUAL(ls_keepalive_from_hdr(&h, &out), LS_PE_KIND);
}

static void test_keepalive_fields(void)
{
	struct ls_keepalive ka = { .rx_count = 123456, .rx_highest = 0x10002, .burst = 40,
				   .kind = LS_KA_REQUEST, .fec_k = 8, .fec_m = 3 };
	struct ls_hdr h = sample(LS_VER_PLAIN, LS_F_KEEPALIVE), back;
	uint8_t buf[64];
	struct ls_pkt p;
	struct ls_keepalive out;

	ls_keepalive_to_hdr(&ka, &h);
	ls_hdr_encode(&h, buf);
	/* 1.4: burst at offset 16, kind 17, fec_k 18, fec_m 19. */
	CU_ASSERT_EQUAL(buf[16], 40);
	CU_ASSERT_EQUAL(buf[17], LS_KA_REQUEST);
	CU_ASSERT_EQUAL(buf[18], 8);
	CU_ASSERT_EQUAL(buf[19], 3);
	CU_ASSERT_EQUAL_FATAL(ls_pkt_decode(buf, LS_HDR_LEN, &p), LS_PE_OK);
	back = p.h;
	CU_ASSERT_EQUAL(ls_keepalive_from_hdr(&back, &out), LS_PE_OK);
	CU_ASSERT_EQUAL(out.rx_count, 123456);
	CU_ASSERT_EQUAL(out.rx_highest, 0x10002);
	CU_ASSERT_EQUAL(out.burst, 40);
	CU_ASSERT_EQUAL(out.kind, LS_KA_REQUEST);
	CU_ASSERT_EQUAL(out.fec_k, 8);
	CU_ASSERT_EQUAL(out.fec_m, 3);
}

static int ka_check(uint8_t kind, uint8_t fec_k, uint8_t fec_m)
{
	struct ls_keepalive ka = { .kind = kind, .fec_k = fec_k, .fec_m = fec_m }, out;
	struct ls_hdr h = sample(LS_VER_PLAIN, LS_F_KEEPALIVE);

	ls_keepalive_to_hdr(&ka, &h);
	return ls_keepalive_from_hdr(&h, &out);
}

static void test_keepalive_ranges(void)
{
	CU_ASSERT_EQUAL(ka_check(LS_KA_REQUEST, LS_KA_FEC_OFF, 0), LS_PE_OK);
	CU_ASSERT_EQUAL(ka_check(LS_KA_REQUEST, LS_KA_FEC_AUTO, 0), LS_PE_OK);
	CU_ASSERT_EQUAL(ka_check(LS_KA_REQUEST, 32, 16), LS_PE_OK);
	CU_ASSERT_EQUAL(ka_check(2, 0, 0), LS_PE_KIND);
	CU_ASSERT_EQUAL(ka_check(255, 0, 0), LS_PE_KIND);
	CU_ASSERT_EQUAL(ka_check(LS_KA_REQUEST, 33, 0), LS_PE_FEC_RANGE);
	CU_ASSERT_EQUAL(ka_check(LS_KA_REQUEST, 254, 0), LS_PE_FEC_RANGE);
	CU_ASSERT_EQUAL(ka_check(LS_KA_REQUEST, 4, 17), LS_PE_FEC_RANGE);
	/* A reply asks nothing: its last two bytes are a count, never out of range. */
	CU_ASSERT_EQUAL(ka_check(LS_KA_REPLY, 4, 17), LS_PE_OK);
}

/* Runs of missing seqs: their mean length in 1/16 packet, over one report interval. */
static void test_loss_bursts(void)
{
	struct ls_rx_count r = { 0 };
	struct ls_keepalive ka;
	uint64_t s;

	for (s = 10; s < 20; s++)
		ls_rx_note(&r, s);
	ls_rx_report(&r, &ka);
	CU_ASSERT_EQUAL(ka.rx_count, 10);
	CU_ASSERT_EQUAL(ka.rx_highest, 19);
	CU_ASSERT_EQUAL(ka.burst, 0);
	/* Lose 20 (a run of 1) and 22..24 (a run of 3): mean 2 packets. */
	ls_rx_note(&r, 21);
	ls_rx_note(&r, 25);
	ls_rx_report(&r, &ka);
	CU_ASSERT_EQUAL(ka.rx_count, 12);
	CU_ASSERT_EQUAL(ka.rx_highest, 25);
	CU_ASSERT_EQUAL(ka.burst, 32);
	/* The measure starts over at each report; a late packet fills its hole. */
	ls_rx_note(&r, 28);
	ls_rx_note(&r, 26);
	ls_rx_report(&r, &ka);
	CU_ASSERT_EQUAL(ka.burst, 16);
	ls_rx_note(&r, 29);
	ls_rx_report(&r, &ka);
	CU_ASSERT_EQUAL(ka.burst, 0);
	/* A long outage saturates. */
	ls_rx_note(&r, 1029);
	ls_rx_report(&r, &ka);
	CU_ASSERT_EQUAL(ka.burst, 255);
}

static void test_report_growth(void)
{
	struct ls_rx_base b = { 0 };
	struct ls_keepalive ka = { .rx_count = 100, .rx_highest = 0xfffffff0 };
	uint32_t exp = 0, rec = 0;

	CU_ASSERT_FALSE(ls_rx_growth(&b, &ka, &exp, &rec)); /* the baseline */
	ka.rx_count = 190;
	ka.rx_highest = 0x5a; /* wrapped: 106 more expected */
	CU_ASSERT_TRUE(ls_rx_growth(&b, &ka, &exp, &rec));
	CU_ASSERT_EQUAL(exp, 106);
	CU_ASSERT_EQUAL(rec, 90);
	/* Nothing new, or a report from before: only the baseline moves. */
	CU_ASSERT_FALSE(ls_rx_growth(&b, &ka, &exp, &rec));
	ka.rx_highest = 0x50;
	CU_ASSERT_FALSE(ls_rx_growth(&b, &ka, &exp, &rec));
	/* Duplicates never make received exceed expected. */
	ka.rx_highest = 0x54;
	ka.rx_count = 300;
	CU_ASSERT_TRUE(ls_rx_growth(&b, &ka, &exp, &rec));
	CU_ASSERT_EQUAL(exp, 4);
	CU_ASSERT_EQUAL(rec, 4);
}

/* Random bytes never crash the decoder and a success always stays inside the buffer. */
static void test_random(void)
{
	uint8_t buf[LS_MAX_DATAGRAM + 8];
	unsigned seed = 12345;
	for (int iter = 0; iter < 200000; iter++) {
		size_t len = (size_t)rand_r(&seed) % sizeof(buf);
		for (size_t i = 0; i < len && i < 40; i++)
			buf[i] = (uint8_t)rand_r(&seed);
		struct ls_pkt p;
		if (ls_pkt_decode(buf, len, &p) == LS_PE_OK) {
			CU_ASSERT_FATAL(p.payload >= buf && p.payload + p.payload_len <= buf + len);
			CU_ASSERT_FATAL(!p.tag || p.tag + LS_TAG_LEN == buf + len);
		}
	}
}

UNIT_MAIN("proto",
	  { "round trips", test_roundtrips },
	  { "wire layout", test_wire_layout },
	  { "every short length", test_every_short_length },
	  { "bad version and flags", test_bad_fields },
	  { "FEC extension ranges", test_fec_ranges },
	  { "keepalive fields", test_keepalive_fields },
	  { "relay hop: version 3", test_relay_hop },
	  { "keepalive path roles and counts", test_keepalive_roles },
	  { "keepalive kind and FEC ask ranges", test_keepalive_ranges },
	  { "loss bursts per report", test_loss_bursts },
	  { "report growth", test_report_growth },
	  { "random input", test_random })
