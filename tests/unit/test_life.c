/* Session lifetimes and the handshake (docs/protocol.md 1.3, 1.8): the AUTH checks in
 * their order, freshness at every distance across the 32-bit ts_us wrap, nothing of one
 * lifetime accepted in another, a proxy that answers recorded handshakes without
 * changing state, and the drop-reason table. */
#include <string.h>

#include "drop.h"
#include "life.h"
#include "seal.h"

#include "unit.h"

static const uint8_t KEY[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
#define SID 0x01020309u
#define TOKEN 0x09

/* A data datagram sealed under mac, decoded into *p (buf keeps the bytes). */
static void data_pkt(struct ls_mac *mac, uint16_t seq, uint32_t ts, uint8_t *buf,
		     struct ls_pkt *p, size_t *len)
{
	struct ls_seal k = { .mac = mac, .token = TOKEN, .session_id = SID };
	struct ls_hdr h = { .version = LS_VER_PLAIN, .seq = seq, .ts_us = ts };
	size_t hl = ls_hdr_len(LS_VER_PLAIN, LS_F_AUTH);

	memcpy(buf + hl, "game", 4);
	*len = ls_seal_at(&k, &h, buf, 4);
	CU_ASSERT_FATAL(ls_pkt_decode(buf, *len, p) == LS_PE_OK);
}

struct pair {
	struct ls_mac base_c, base_p;  /* the session key, on each side */
	struct ls_prf secret;          /* the proxy's */
	struct ls_hs hs;               /* the client's handshake */
	struct ls_lives client, proxy;
};

/* One full handshake from the client's address 127.0.0.1:5000 at time now. */
static void handshake(struct pair *x, uint64_t now)
{
	uint8_t a[LS_HS_MAX_LEN], b[LS_HS_MAX_LEN];
	struct ls_pkt p;
	size_t n, m;
	enum ls_drop why;

	CU_ASSERT_FATAL(ls_hs_start(&x->hs, now) == 0);
	n = ls_hs_due(&x->hs, &x->base_c, TOKEN, SID, now, a);
	CU_ASSERT_EQUAL_FATAL(n, LS_HS_MAX_LEN);
	CU_ASSERT_FATAL(ls_pkt_decode(a, n, &p) == LS_PE_OK);
	CU_ASSERT_FATAL(ls_hs_tag_ok(&x->base_p, TOKEN, &p, a));
	CU_ASSERT_EQUAL_FATAL(ls_hs_respond(&x->proxy, &x->base_p, &x->secret, TOKEN, SID, &p,
					    0x7f000001, 5000, now, b, &m, &why),
			      LS_HSV_ANSWER);
	CU_ASSERT(m <= n); /* no answer outgrows its request */
	CU_ASSERT_FATAL(ls_pkt_decode(b, m, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL_FATAL(ls_hs_receive(&x->hs, &x->client, &x->base_c, TOKEN, &p, b, now, &why),
			      LS_HSE_SEND);
	n = ls_hs_due(&x->hs, &x->base_c, TOKEN, SID, now, a);
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_FATAL(ls_pkt_decode(a, n, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL_FATAL(ls_hs_respond(&x->proxy, &x->base_p, &x->secret, TOKEN, SID, &p,
					    0x7f000001, 5000, now, b, &m, &why),
			      LS_HSV_COMMIT);
	CU_ASSERT(m <= n);
	CU_ASSERT_FATAL(ls_pkt_decode(b, m, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL_FATAL(ls_hs_receive(&x->hs, &x->client, &x->base_c, TOKEN, &p, b, now, &why),
			      LS_HSE_UP);
}

static void pair_init(struct pair *x)
{
	memset(x, 0, sizeof(*x));
	ls_mac_init(&x->base_c, KEY);
	ls_mac_init(&x->base_p, KEY);
	CU_ASSERT_FATAL(ls_prf_init(&x->secret) == 0);
	ls_lives_init(&x->client);
	ls_lives_init(&x->proxy);
}

static bool accept_at(struct ls_lives *L, const uint8_t *buf, const struct ls_pkt *p,
		      uint64_t now, enum ls_drop *why)
{
	struct ls_rx_ok ok;

	return ls_lives_check(L, TOKEN, p, buf, false, true, false, now, &ok, why);
}

static void test_handshake_derives_one_key(void)
{
	struct pair x;
	uint8_t buf[128];
	struct ls_pkt p;
	size_t n;
	enum ls_drop why;

	pair_init(&x);
	handshake(&x, 1000000);
	CU_ASSERT(ls_lives_up(&x.client, 1000000));
	CU_ASSERT(ls_lives_up(&x.proxy, 1000000));
	/* What the client seals under its lifetime, the proxy accepts, once. */
	data_pkt(&x.client.cur.mac, 1, 1000, buf, &p, &n);
	CU_ASSERT(accept_at(&x.proxy, buf, &p, 1000000, &why));
	CU_ASSERT(!accept_at(&x.proxy, buf, &p, 1000001, &why));
	CU_ASSERT_EQUAL(why, LS_DROP_REPLAY);
	/* Sealed with the bare session key it is nothing. */
	data_pkt(&x.base_c, 2, 1000, buf, &p, &n);
	CU_ASSERT(!accept_at(&x.proxy, buf, &p, 1000002, &why));
	CU_ASSERT_EQUAL(why, LS_DROP_BAD_TAG);
	/* Check order: a wrong token is bad_tag before anything else. */
	data_pkt(&x.client.cur.mac, 3, 1000, buf, &p, &n);
	p.h.token ^= 1;
	CU_ASSERT(!accept_at(&x.proxy, buf, &p, 1000003, &why));
	CU_ASSERT_EQUAL(why, LS_DROP_BAD_TAG);
}

/* A datagram recorded at time t and replayed at any later time is refused: within the
 * lifetime by freshness (at every distance, across the ts wrap), after it by the key. */
/* Copies over several paths (docs/protocol.md 1.9): a repeat in the window is a
 * duplicate only when the caller says copies are expected; the first copy is accepted
 * at once either way, and one below the window stays a replay. */
static void test_copies_are_duplicates(void)
{
	struct pair x;
	uint8_t buf[128];
	struct ls_pkt p;
	struct ls_rx_ok ok;
	size_t n;
	enum ls_drop why;

	pair_init(&x);
	handshake(&x, 1000000);
	data_pkt(&x.client.cur.mac, 1, 1000, buf, &p, &n);
	CU_ASSERT(ls_lives_check(&x.proxy, TOKEN, &p, buf, false, true, true, 1000100, &ok, &why));
	CU_ASSERT(!ls_lives_check(&x.proxy, TOKEN, &p, buf, false, true, true, 1000200, &ok, &why));
	CU_ASSERT_EQUAL(why, LS_DROP_DUPLICATES);
	CU_ASSERT(!ls_lives_check(&x.proxy, TOKEN, &p, buf, false, true, false, 1000200, &ok, &why));
	CU_ASSERT_EQUAL(why, LS_DROP_REPLAY);
	/* Far ahead: seq 1 falls out of the window, too old to tell. */
	data_pkt(&x.client.cur.mac, 1 + LS_REPLAY_WINDOW + 5, 1000, buf, &p, &n);
	CU_ASSERT(ls_lives_check(&x.proxy, TOKEN, &p, buf, false, true, true, 1000300, &ok, &why));
	data_pkt(&x.client.cur.mac, 1, 1000, buf, &p, &n);
	CU_ASSERT(!ls_lives_check(&x.proxy, TOKEN, &p, buf, false, true, true, 1000400, &ok, &why));
	CU_ASSERT_EQUAL(why, LS_DROP_REPLAY);
	CU_ASSERT_STRING_EQUAL(ls_drop_names[LS_DROP_DUPLICATES], "duplicates");
}

static void test_freshness_across_the_wrap(void)
{
	struct pair x;
	uint8_t rec[128], buf[128];
	struct ls_pkt prec, p;
	size_t n;
	enum ls_drop why;
	uint64_t t0 = 5000000000ull; /* receiver's clock */
	uint32_t c0 = 0xfff00000u;   /* the sender's, about to wrap */

	pair_init(&x);
	handshake(&x, t0);
	data_pkt(&x.client.cur.mac, 10, c0, rec, &prec, &n);
	CU_ASSERT(accept_at(&x.proxy, rec, &prec, t0, &why));
	/* The sender's clock goes on; each second a fresh packet, and the recording is
	 * offered again at every distance up to the lifetime's end, in steps that cross
	 * the wrap of both clocks' low 32 bits. */
	uint16_t seq = 11;
	for (uint64_t dt = 11000000; dt < LS_LIFE_MAX_US; dt += 7777777) {
		data_pkt(&x.client.cur.mac, seq++, c0 + (uint32_t)dt, buf, &p, &n);
		CU_ASSERT(accept_at(&x.proxy, buf, &p, t0 + dt, &why));
		/* A new ls_pkt view of the recording: its seq extends near the top. */
		CU_ASSERT(ls_pkt_decode(rec, sizeof(rec) < n ? n : 36, &prec) == LS_PE_OK);
		CU_ASSERT(!accept_at(&x.proxy, rec, &prec, t0 + dt, &why));
	}
	/* A ts_us "from the future" (what 36 to 72 minutes old looks like as a signed
	 * 32-bit difference) is refused as well. */
	data_pkt(&x.client.cur.mac, seq++, c0 + 2000000000u + 12000000u, buf, &p, &n);
	CU_ASSERT(!accept_at(&x.proxy, buf, &p, t0 + 12000000, &why));
	CU_ASSERT_EQUAL(why, LS_DROP_REPLAY);
	/* Past LS_LIFE_MAX_US the lifetime accepts nothing at all. */
	data_pkt(&x.client.cur.mac, seq++, c0 + (uint32_t)LS_LIFE_MAX_US, buf, &p, &n);
	CU_ASSERT(!accept_at(&x.proxy, buf, &p, t0 + LS_LIFE_MAX_US, &why));
	/* After the next handshake nothing of the first lifetime authenticates (after
	 * its grace), whatever its ts_us. */
	handshake(&x, t0 + 1000);
	data_pkt(&x.client.prev.mac, seq++, c0 + 1000, buf, &p, &n);
	CU_ASSERT(!accept_at(&x.proxy, buf, &p, t0 + 1000 + LS_LIFE_GRACE_US, &why));
	CU_ASSERT_EQUAL(why, LS_DROP_BAD_TAG);
}

/* Recorded handshakes replayed: an INIT costs a REPLY of its size and changes nothing;
 * a CONFIRM is refused once its epoch is old, and from another address at once; a
 * REPLY or ACK the client did not ask for is refused. */
static void test_recorded_handshakes(void)
{
	struct pair x;
	uint8_t init[LS_HS_MAX_LEN], confirm[LS_HS_MAX_LEN], out[LS_HS_MAX_LEN], reply[128];
	struct ls_pkt p;
	size_t ni, nc, no, nr;
	enum ls_drop why;
	uint64_t t = 100000000;

	pair_init(&x);
	CU_ASSERT_FATAL(ls_hs_start(&x.hs, t) == 0);
	ni = ls_hs_due(&x.hs, &x.base_c, TOKEN, SID, t, init);
	CU_ASSERT_FATAL(ls_pkt_decode(init, ni, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL(ls_hs_respond(&x.proxy, &x.base_p, &x.secret, TOKEN, SID, &p, 1, 2, t, out,
				      &no, &why), LS_HSV_ANSWER);
	memcpy(reply, out, no);
	nr = no;
	CU_ASSERT_FATAL(ls_pkt_decode(reply, nr, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL(ls_hs_receive(&x.hs, &x.client, &x.base_c, TOKEN, &p, reply, t, &why),
			LS_HSE_SEND);
	nc = ls_hs_due(&x.hs, &x.base_c, TOKEN, SID, t, confirm);
	/* The same CONFIRM from another address: not this address's cookie. */
	CU_ASSERT_FATAL(ls_pkt_decode(confirm, nc, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL(ls_hs_respond(&x.proxy, &x.base_p, &x.secret, TOKEN, SID, &p, 1, 3, t, out,
				      &no, &why), LS_HSV_DROP);
	CU_ASSERT_EQUAL(why, LS_DROP_BAD_TAG);
	CU_ASSERT(!x.proxy.cur.live);
	/* From its address: the lifetime begins; again: acknowledged, nothing changes. */
	CU_ASSERT_EQUAL(ls_hs_respond(&x.proxy, &x.base_p, &x.secret, TOKEN, SID, &p, 1, 2, t, out,
				      &no, &why), LS_HSV_COMMIT);
	uint32_t gen = x.proxy.gen;
	CU_ASSERT_EQUAL(ls_hs_respond(&x.proxy, &x.base_p, &x.secret, TOKEN, SID, &p, 1, 2, t + 1,
				      out, &no, &why), LS_HSV_ANSWER);
	CU_ASSERT_EQUAL(x.proxy.gen, gen);
	/* Ten seconds later the CONFIRM is stale. */
	CU_ASSERT_EQUAL(ls_hs_respond(&x.proxy, &x.base_p, &x.secret, TOKEN, SID, &p, 1, 2,
				      t + LS_HS_EPOCH_US + 1, out, &no, &why), LS_HSV_DROP);
	CU_ASSERT_EQUAL(why, LS_DROP_REPLAY);
	/* A recorded INIT, much later: answered, no state changed. */
	CU_ASSERT_FATAL(ls_pkt_decode(init, ni, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL(ls_hs_respond(&x.proxy, &x.base_p, &x.secret, TOKEN, SID, &p, 9, 9,
				      t + 3600000000ull, out, &no, &why), LS_HSV_ANSWER);
	CU_ASSERT(no <= ni);
	CU_ASSERT_EQUAL(x.proxy.gen, gen);
	/* A proxy restarted (another secret) takes no CONFIRM of the one before. */
	struct ls_prf other;
	struct ls_lives fresh;
	CU_ASSERT_FATAL(ls_prf_init(&other) == 0);
	ls_lives_init(&fresh);
	CU_ASSERT_FATAL(ls_pkt_decode(confirm, nc, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL(ls_hs_respond(&fresh, &x.base_p, &other, TOKEN, SID, &p, 1, 2, t + 5, out,
				      &no, &why), LS_HSV_DROP);
	/* The client takes no REPLY it did not ask for (the old one, replayed). */
	CU_ASSERT_FATAL(ls_pkt_decode(reply, nr, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL(ls_hs_receive(&x.hs, &x.client, &x.base_c, TOKEN, &p, reply, t, &why),
			LS_HSE_NONE);
	struct ls_hs again;
	CU_ASSERT_FATAL(ls_hs_start(&again, t) == 0);
	CU_ASSERT_EQUAL(ls_hs_receive(&again, &x.client, &x.base_c, TOKEN, &p, reply, t, &why),
			LS_HSE_DROP);
	CU_ASSERT_EQUAL(why, LS_DROP_REPLAY);
}

/* The previous lifetime is accepted for its grace only, and never ahead of the current
 * one's rules; a datagram under the pending key completes a handshake whose ACK is
 * lost. */
static void test_grace_and_pending(void)
{
	struct pair x;
	uint8_t buf[128], a[LS_HS_MAX_LEN], b[LS_HS_MAX_LEN];
	struct ls_pkt p;
	struct ls_rx_ok ok;
	size_t n, m;
	enum ls_drop why;
	uint64_t t = 7000000;

	pair_init(&x);
	handshake(&x, t);
	struct ls_mac first = x.client.cur.mac;
	handshake(&x, t + 10);
	data_pkt(&first, 40, 500, buf, &p, &n);
	CU_ASSERT(ls_lives_check(&x.proxy, TOKEN, &p, buf, false, true, false, t + 20, &ok, &why));
	CU_ASSERT(ok.prev);
	data_pkt(&first, 41, 500, buf, &p, &n);
	CU_ASSERT(!accept_at(&x.proxy, buf, &p, t + 10 + LS_LIFE_GRACE_US, &why));

	/* ACK lost: the proxy's first datagram under the new key completes it. */
	t += 20;
	CU_ASSERT_FATAL(ls_hs_start(&x.hs, t) == 0);
	n = ls_hs_due(&x.hs, &x.base_c, TOKEN, SID, t, a);
	CU_ASSERT_FATAL(ls_pkt_decode(a, n, &p) == LS_PE_OK);
	ls_hs_respond(&x.proxy, &x.base_p, &x.secret, TOKEN, SID, &p, 1, 1, t, b, &m, &why);
	CU_ASSERT_FATAL(ls_pkt_decode(b, m, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL(ls_hs_receive(&x.hs, &x.client, &x.base_c, TOKEN, &p, b, t, &why),
			LS_HSE_SEND);
	n = ls_hs_due(&x.hs, &x.base_c, TOKEN, SID, t, a);
	CU_ASSERT_FATAL(ls_pkt_decode(a, n, &p) == LS_PE_OK);
	CU_ASSERT_EQUAL(ls_hs_respond(&x.proxy, &x.base_p, &x.secret, TOKEN, SID, &p, 1, 1, t, b,
				      &m, &why), LS_HSV_COMMIT);
	data_pkt(&x.proxy.cur.mac, 7, 99, buf, &p, &n);
	CU_ASSERT(!accept_at(&x.client, buf, &p, t, &why));
	CU_ASSERT(ls_hs_try_pending(&x.hs, &x.client, TOKEN, &p, buf, t));
	CU_ASSERT(accept_at(&x.client, buf, &p, t, &why));
}

/* Resends, then a fresh nonce when nothing comes back. */
static void test_initiator_timers(void)
{
	struct pair x;
	uint8_t a[LS_HS_MAX_LEN], nc[LS_HS_NONCE_LEN];
	uint64_t t = 1000;

	pair_init(&x);
	CU_ASSERT_FATAL(ls_hs_start(&x.hs, t) == 0);
	memcpy(nc, x.hs.nc, sizeof(nc));
	CU_ASSERT(ls_hs_due(&x.hs, &x.base_c, TOKEN, SID, t, a) > 0);
	CU_ASSERT_EQUAL(ls_hs_due(&x.hs, &x.base_c, TOKEN, SID, t + 1, a), 0);
	CU_ASSERT(ls_hs_due(&x.hs, &x.base_c, TOKEN, SID, t + LS_HS_RESEND_US, a) > 0);
	CU_ASSERT(memcmp(nc, x.hs.nc, sizeof(nc)) == 0);
	CU_ASSERT(ls_hs_due(&x.hs, &x.base_c, TOKEN, SID, t + LS_HS_RESTART_US, a) > 0);
	CU_ASSERT(memcmp(nc, x.hs.nc, sizeof(nc)) != 0);
}

static void test_prf_and_drop_names(void)
{
	struct ls_prf a, b;

	CU_ASSERT_FATAL(ls_prf_init(&a) == 0 && ls_prf_init(&b) == 0);
	/* Two processes' nonces have nothing in common; one's never repeat. */
	uint64_t x = ls_prf_next(&a), y = ls_prf_next(&a);
	CU_ASSERT(x != y);
	CU_ASSERT(ls_prf_next(&b) != x);
	for (int i = 0; i < LS_DROP__COUNT; i++) {
		CU_ASSERT_PTR_NOT_NULL(ls_drop_names[i]);
		CU_ASSERT(ls_drop_sides[i] != 0);
	}
	CU_ASSERT_STRING_EQUAL(ls_drop_names[ls_drop_from_decode(LS_PE_OVERSIZE)], "oversize");
	CU_ASSERT_STRING_EQUAL(ls_drop_names[ls_drop_from_decode(LS_PE_FLAGS)], "malformed");
	CU_ASSERT(ls_drop_counted_by(LS_DROP_NO_ROUTE, LS_DROP_CLIENT));
	CU_ASSERT(!ls_drop_counted_by(LS_DROP_NOT_ALLOWED, LS_DROP_CLIENT));
}

UNIT_MAIN("life",
	  { "a handshake derives one key; checks in order", test_handshake_derives_one_key },
	  { "freshness across the ts wrap and lifetimes", test_freshness_across_the_wrap },
	  { "copies over several paths are duplicates", test_copies_are_duplicates },
	  { "recorded handshakes change nothing", test_recorded_handshakes },
	  { "grace of the previous lifetime; pending key", test_grace_and_pending },
	  { "initiator resends and restarts", test_initiator_timers },
	  { "PRF and drop names", test_prf_and_drop_names })
