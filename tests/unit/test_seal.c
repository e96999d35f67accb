/* Sealing datagrams and sending parity (shared/seal.h): what both dataplanes put on the
 * wire decodes, verifies, and rebuilds a lost packet; a sink that refuses a slot costs
 * the seq nothing. */
#include <string.h>

#include "fec.h"
#include "seal.h"

#include "unit.h"

static const uint8_t KEY[16] = { 9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1 };

static void test_seal_both_forms(void)
{
	struct ls_mac mac;
	struct ls_seal k = { .mac = &mac, .token = 0x42, .session_id = 0x1142 };
	struct ls_seal open_k = { .mac = NULL };
	uint8_t a[LS_RX_BUF], b[LS_RX_BUF], *start;
	struct ls_hdr h = { .version = LS_VER_PLAIN, .seq = 7, .ts_us = 99, .src_ip = 1 };
	struct ls_pkt p;
	size_t na, nb;

	ls_mac_init(&mac, KEY);
	memcpy(a + ls_hdr_len(LS_VER_PLAIN, LS_F_AUTH), "payload", 7);
	na = ls_seal_at(&k, &h, a, 7);
	CU_ASSERT_EQUAL(na, LS_HDR_LEN + LS_AUTH_ID_LEN + 7 + LS_TAG_LEN);
	memcpy(b + LS_SEAL_HEADROOM, "payload", 7);
	h.flags = 0;
	nb = ls_seal_in_place(&k, &h, b + LS_SEAL_HEADROOM, 7, &start);
	CU_ASSERT_EQUAL(nb, na);
	CU_ASSERT(memcmp(start, a, na) == 0);
	CU_ASSERT_FATAL(ls_pkt_decode(a, na, &p) == LS_PE_OK);
	CU_ASSERT(p.h.flags & LS_F_AUTH);
	CU_ASSERT_EQUAL(p.h.token, 0x42);
	CU_ASSERT_EQUAL(p.h.session_id, 0x1142);
	CU_ASSERT(ls_mac_verify(&mac, a, p.signed_len, p.tag));
	CU_ASSERT(memcmp(p.payload, "payload", 7) == 0);
	/* Without a key: no AUTH, token 0, nothing after the payload. */
	h.flags = LS_F_AUTH;
	memcpy(a + LS_HDR_LEN, "xy", 2);
	na = ls_seal_at(&open_k, &h, a, 2);
	CU_ASSERT_EQUAL(na, LS_HDR_LEN + 2);
	CU_ASSERT_FATAL(ls_pkt_decode(a, na, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL(p.h.flags & LS_F_AUTH, 0);
	CU_ASSERT_EQUAL(p.h.token, 0);
}

/* A queue of sealed datagrams, refusing one slot on request. */
struct sink_state {
	uint8_t slots[8][LS_SEAL_HEADROOM + LS_FEC_SHARD_MAX + LS_TAG_LEN];
	uint8_t *out[8];
	size_t len[8];
	int n, refuse_at, asked;
};

static uint8_t *slot(void *arg, size_t wire)
{
	struct sink_state *s = arg;

	CU_ASSERT(wire <= LS_MAX_DATAGRAM);
	if (s->asked++ == s->refuse_at)
		return NULL;
	return s->slots[s->n];
}

static void queue(void *arg, uint8_t *start, size_t len)
{
	struct sink_state *s = arg;

	s->out[s->n] = start;
	s->len[s->n] = len;
	s->n++;
}

static void deliver(void *arg, const uint8_t *payload, size_t len)
{
	int *got = arg;

	if (len == 5 && memcmp(payload, "data1", 5) == 0)
		(*got)++;
}

static void test_parity_rebuilds(void)
{
	struct ls_fec_params fp = { .k = 2, .m = 2, .block_us = 16000 };
	struct ls_fec_enc *enc = ls_fec_enc_new(&fp);
	struct ls_fec_dec *dec = ls_fec_dec_new(0);
	struct ls_mac mac;
	struct ls_seal k = { .mac = &mac, .token = 3, .session_id = 3 };
	struct ls_hdr h0 = { .version = LS_VER_PLAIN }, h1 = { .version = LS_VER_PLAIN };
	struct ls_hdr addrs = { .src_ip = 10, .src_port = 20, .dst_ip = 30, .dst_port = 40 };
	struct sink_state s = { .refuse_at = -1 };
	struct ls_pkt p;
	const uint8_t *shards;
	size_t len;
	uint16_t block, seq = 100;
	uint8_t kk;
	int got = 0, m;

	CU_ASSERT_FATAL(enc && dec);
	ls_mac_init(&mac, KEY);
	ls_fec_enc_add(enc, (const uint8_t *)"data0", 5, 0, &h0);
	CU_ASSERT(ls_fec_enc_add(enc, (const uint8_t *)"data1", 5, 0, &h1));
	m = ls_fec_enc_close(enc, &shards, &len, &block, &kk);
	CU_ASSERT_EQUAL(m, 2);
	struct ls_parity_sink sink = { .slot = slot, .queue = queue, .ctx = &s };
	CU_ASSERT_EQUAL(ls_parity_send(&k, &addrs, &seq, 5, shards, len, block, kk, 0, m, &sink), 2);
	CU_ASSERT_EQUAL(seq, 102);
	/* data0 arrives, data1 is lost: the first parity packet rebuilds it. */
	h0.src_ip = 10;
	ls_fec_dec_add(dec, &h0, (const uint8_t *)"data0", 5, 0, deliver, &got);
	CU_ASSERT_FATAL(ls_pkt_decode(s.out[0], s.len[0], &p) == LS_PE_OK);
	CU_ASSERT(ls_mac_verify(&mac, s.out[0], p.signed_len, p.tag));
	CU_ASSERT_EQUAL(p.h.version, LS_VER_FEC);
	CU_ASSERT_EQUAL(p.h.seq, 100);
	CU_ASSERT_EQUAL(p.h.fec_index, 2);
	CU_ASSERT_EQUAL(p.h.fec_k, 2);
	CU_ASSERT_EQUAL(p.h.src_ip, 10);
	CU_ASSERT_EQUAL(p.h.dst_port, 40);
	ls_fec_dec_add(dec, &p.h, p.payload, p.payload_len, 0, deliver, &got);
	CU_ASSERT_EQUAL(got, 1);
	/* A refused slot: nothing queued for it, and it takes no seq. */
	memset(&s, 0, sizeof(s));
	s.refuse_at = 0;
	CU_ASSERT_EQUAL(ls_parity_send(&k, &addrs, &seq, 5, shards, len, block, kk, 0, m, &sink), 1);
	CU_ASSERT_EQUAL(seq, 103);
	ls_fec_enc_delete(enc);
	ls_fec_dec_delete(dec);
}

UNIT_MAIN("seal",
	  { "seal at a place and in place", test_seal_both_forms },
	  { "parity decodes and rebuilds; refused slots", test_parity_rebuilds })
