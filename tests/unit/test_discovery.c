/* The controller's discovery, its pure parts: TXT records of a node's agent, node names
 * from SRV targets, the TTL of a DNS answer (what the next query waits for), and the
 * nodes of a PEERS answer. */
#include <arpa/inet.h>
#include <string.h>

#include "../../controller/discovery.h"

#include "unit.h"

static void test_txt(void)
{
	struct discovered d;
	char err[200];
	const char *fp = "fingerprint=sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	const char *strs[] = { "control=4433", fp, "region=eu-west", "other=ignored", "junk" };
	size_t lens[5];

	for (int i = 0; i < 5; i++)
		lens[i] = strlen(strs[i]);
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(discovery_txt_parse(strs, lens, 5, &d, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(d.control_port, 4433);
	CU_ASSERT(d.has_fp);
	CU_ASSERT_EQUAL(d.fp[1], 0x11);
	CU_ASSERT_STRING_EQUAL(d.region, "eu-west");
	/* Bad values of known keys are refused with a message; a NUL inside is not ours. */
	const char *bad1[] = { "control=0" }, *bad2[] = { "control=70000" },
		   *bad3[] = { "fingerprint=sha256:00" }, *bad4[] = { "region=a b" };
	size_t l1 = strlen(bad1[0]), l2 = strlen(bad2[0]), l3 = strlen(bad3[0]), l4 = strlen(bad4[0]);
	CU_ASSERT_EQUAL(discovery_txt_parse(bad1, &l1, 1, &d, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(discovery_txt_parse(bad2, &l2, 1, &d, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(discovery_txt_parse(bad3, &l3, 1, &d, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(discovery_txt_parse(bad4, &l4, 1, &d, err, sizeof(err)), -1);
	const char nul[] = "control=1\0xyz";
	const char *strn[] = { nul };
	size_t ln = sizeof(nul) - 1;
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(discovery_txt_parse(strn, &ln, 1, &d, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(d.control_port, 0);
}

static void test_names(void)
{
	char n[LS_CTL_NAME_MAX + 1];

	CU_ASSERT_EQUAL(discovery_name_from_host("node-a.ls.test", n), 0);
	CU_ASSERT_STRING_EQUAL(n, "node-a");
	CU_ASSERT_EQUAL(discovery_name_from_host("we!rd_na me.x", n), 0);
	CU_ASSERT_STRING_EQUAL(n, "werd_name");
	CU_ASSERT_EQUAL(discovery_name_from_host(".x", n), -1);
	CU_ASSERT_EQUAL(discovery_name_from_host("0123456789012345678901234567890123456789.x", n), 0);
	CU_ASSERT_EQUAL(strlen(n), LS_CTL_NAME_MAX);
}

/* A response to _l._udp.t SRV with two answers (TTL 300 and 30), the second name
 * compressed. */
static const uint8_t answer[] = {
	0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
	2, '_', 'l', 4, '_', 'u', 'd', 'p', 1, 't', 0, 0, 33, 0, 1,
	0xc0, 12, 0, 33, 0, 1, 0, 0, 0x01, 0x2c, 0, 9, 0, 0, 0, 0, 0x11, 0x52, 1, 'a', 0,
	0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 30, 0, 9, 0, 0, 0, 0, 0x11, 0x53, 1, 'b', 0,
};

static void test_ttl(void)
{
	CU_ASSERT_EQUAL(discovery_answer_ttl(answer, sizeof(answer)), 30);
	/* Every truncation is refused, never read past. */
	for (size_t k = 0; k < sizeof(answer); k++)
		CU_ASSERT(discovery_answer_ttl(answer, k) == -1 || k >= sizeof(answer) - 21);
	uint8_t loop[sizeof(answer)];
	memcpy(loop, answer, sizeof(answer));
	loop[12] = 0xc0; /* a pointer where a label was: still bounded */
	loop[13] = 12;
	CU_ASSERT(discovery_answer_ttl(loop, sizeof(loop)) >= -1);
}

static unsigned nfound;
static struct discovered last;
static void found(void *ctx, const struct discovered *d)
{
	(void)ctx;
	nfound++;
	last = *d;
}

static void test_peers(void)
{
	struct ls_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_PEERS;
	m.u.peers.n = 2;
	strcpy(m.u.peers.p[0].name, "b");
	m.u.peers.p[0].ip = 0x7f000002;
	m.u.peers.p[0].data_port = 4434;
	m.u.peers.p[0].control_port = 4433;
	strcpy(m.u.peers.p[1].name, "c");
	strcpy(m.u.peers.p[1].region, "asia");
	m.u.peers.p[1].ip = 0x01020304;
	m.u.peers.p[1].data_port = 1;
	m.u.peers.p[1].control_port = 2;
	m.u.peers.p[1].has_fp = true;
	m.u.peers.p[1].fp[0] = 0xab;
	discovery_peers_take(&m, found, NULL);
	CU_ASSERT_EQUAL(nfound, 2);
	CU_ASSERT_STRING_EQUAL(last.name, "c");
	CU_ASSERT_STRING_EQUAL(last.region, "asia");
	CU_ASSERT_EQUAL(ntohl(last.addr.sin_addr.s_addr), 0x01020304u);
	CU_ASSERT_EQUAL(ntohs(last.addr.sin_port), 1);
	CU_ASSERT_EQUAL(last.control_port, 2);
	CU_ASSERT(last.has_fp && last.fp[0] == 0xab);
	m.query = true; /* a request is not an answer */
	discovery_peers_take(&m, found, NULL);
	CU_ASSERT_EQUAL(nfound, 2);
}

UNIT_MAIN("discovery",
	  { "TXT records of an agent", test_txt },
	  { "node names from SRV targets", test_names },
	  { "the TTL of an answer, and truncated answers", test_ttl },
	  { "the nodes of a PEERS answer", test_peers })
