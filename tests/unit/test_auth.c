/* CMAC tags against RFC 4493's vectors, and the replay window across seq wrap. */
#include <string.h>

#include "auth.h"
#include "util.h"

#include "unit.h"

static const char *KEY = "2b7e151628aed2a6abf7158809cf4f3c";

static void check_vector(const char *msg_hex, size_t len, const char *mac_hex)
{
	uint8_t key[16], msg[64], want[16], tag[8];
	struct ls_mac m;

	CU_ASSERT_FATAL(ls_hex_decode(KEY, key, 16) == 0);
	if (len)
		CU_ASSERT_FATAL(ls_hex_decode(msg_hex, msg, len) == 0);
	CU_ASSERT_FATAL(ls_hex_decode(mac_hex, want, 16) == 0);
	ls_mac_init(&m, key);
	ls_mac_tag(&m, msg, len, tag);
	CU_ASSERT(memcmp(tag, want, 8) == 0);
	/* The context is reusable: the same input gives the same tag again. */
	CU_ASSERT(ls_mac_verify(&m, msg, len, want));
	want[7] ^= 1;
	CU_ASSERT(!ls_mac_verify(&m, msg, len, want));
}

static void test_rfc4493(void)
{
	check_vector("", 0, "bb1d6929e95937287fa37d129b756746");
	check_vector("6bc1bee22e409f96e93d7e117393172a", 16, "070a16b46b4d4144f79bdd9dd04a287c");
	check_vector("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
		     "30c81c46a35ce411",
		     40, "dfa66747de9ae63030ca32611497c827");
	check_vector("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
		     "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
		     64, "51f0bebf7e3b9d92fc49741779363cfe");
}

static void test_extend(void)
{
	CU_ASSERT_EQUAL(ls_seq_extend(0, 5), 5);
	CU_ASSERT_EQUAL(ls_seq_extend(65530, 3), 65539);       /* forward across the wrap */
	CU_ASSERT_EQUAL(ls_seq_extend(65539, 65530), 65530);   /* back across it */
	CU_ASSERT_EQUAL(ls_seq_extend(0x30000 + 10, 0xfff0), 0x2fff0);
	CU_ASSERT_EQUAL(ls_seq_extend(100, 40000), 40000);     /* no cycle below zero */
}

static void test_replay(void)
{
	struct ls_replay r;
	uint64_t ext;

	ls_replay_init(&r);
	CU_ASSERT(ls_replay_check(&r, 65500, &ext));
	CU_ASSERT(ls_replay_accept(&r, ext));
	CU_ASSERT(!ls_replay_check(&r, 65500, &ext));          /* exact replay */
	/* Run across the wrap, skipping every third seq. */
	uint16_t seq = 65500;
	for (int i = 0; i < 200; i++) {
		seq++;
		if (i % 3 == 0)
			continue;
		CU_ASSERT_FATAL(ls_replay_check(&r, seq, &ext));
		CU_ASSERT(ls_replay_accept(&r, ext));
	}
	CU_ASSERT_EQUAL(r.top, 65500 + 200);
	/* The skipped ones are still welcome (reordering), once. */
	uint16_t late = (uint16_t)(65500 + 1);
	CU_ASSERT(ls_replay_check(&r, late, &ext));
	CU_ASSERT_EQUAL(ext, 65501);
	CU_ASSERT(!ls_replay_accept(&r, ext));                 /* not newer: no roaming */
	CU_ASSERT(!ls_replay_check(&r, late, &ext));
	/* Accepted ones are refused. */
	CU_ASSERT(!ls_replay_check(&r, (uint16_t)(65500 + 2), &ext));
	/* Older than the window is refused even if never seen. */
	for (int i = 0; i < LS_REPLAY_WINDOW + 10; i++) {
		seq++;
		CU_ASSERT_FATAL(ls_replay_check(&r, seq, &ext));
		ls_replay_accept(&r, ext);
	}
	CU_ASSERT(!ls_replay_check(&r, (uint16_t)(65500 + 4), &ext));
	/* A big jump clears the window. */
	uint64_t top = r.top;
	CU_ASSERT(ls_replay_check(&r, (uint16_t)(top + 20000), &ext));
	CU_ASSERT_EQUAL(ext, top + 20000);
	CU_ASSERT(ls_replay_accept(&r, ext));
	CU_ASSERT(ls_replay_check(&r, (uint16_t)(top + 20000 - 5), &ext));
	CU_ASSERT(!ls_replay_check(&r, (uint16_t)(top + 20000), &ext));
}

UNIT_MAIN("auth",
	  { "AES-CMAC RFC 4493 vectors", test_rfc4493 },
	  { "seq extension", test_extend },
	  { "replay window", test_replay })
