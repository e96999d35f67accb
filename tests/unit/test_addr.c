/* Unit tests for shared/addr.c: CIDRs, denied ranges, the allowlist, host:port and
 * destination parsing and formatting. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "util.h"

#include "unit.h"

static uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
	return (uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d;
}

static void test_cidr_parse_ok(void)
{
	struct ls_cidr c;
	char buf[32];

	CU_ASSERT_EQUAL(ls_cidr_parse("10.0.0.0/8", &c), 0);
	CU_ASSERT_EQUAL(c.net, ip4(10, 0, 0, 0));
	CU_ASSERT_EQUAL(c.mask, 0xff000000u);
	CU_ASSERT_EQUAL(c.len, 8);

	CU_ASSERT_EQUAL(ls_cidr_parse("1.2.3.4", &c), 0);
	CU_ASSERT_EQUAL(c.net, ip4(1, 2, 3, 4));
	CU_ASSERT_EQUAL(c.mask, 0xffffffffu);
	CU_ASSERT_EQUAL(c.len, 32);

	/* Host bits are masked off. */
	CU_ASSERT_EQUAL(ls_cidr_parse("1.2.3.4/24", &c), 0);
	CU_ASSERT_EQUAL(c.net, ip4(1, 2, 3, 0));
	CU_ASSERT_EQUAL(c.mask, 0xffffff00u);
	ls_cidr_fmt(&c, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1.2.3.0/24");

	CU_ASSERT_EQUAL(ls_cidr_parse("255.255.255.255/0", &c), 0);
	CU_ASSERT_EQUAL(c.net, 0);
	CU_ASSERT_EQUAL(c.mask, 0);
	CU_ASSERT_EQUAL(c.len, 0);
	ls_cidr_fmt(&c, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "0.0.0.0/0");

	CU_ASSERT_EQUAL(ls_cidr_parse("255.255.255.255/32", &c), 0);
	CU_ASSERT_EQUAL(c.net, 0xffffffffu);
	ls_cidr_fmt(&c, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "255.255.255.255/32");

	CU_ASSERT_EQUAL(ls_cidr_parse("0.0.0.0", &c), 0);
	CU_ASSERT_EQUAL(c.net, 0);
	CU_ASSERT_EQUAL(c.len, 32);

	CU_ASSERT_EQUAL(ls_cidr_parse("100.127.255.255/10", &c), 0);
	CU_ASSERT_EQUAL(c.net, ip4(100, 64, 0, 0));
	CU_ASSERT_EQUAL(c.mask, 0xffc00000u);

	CU_ASSERT_EQUAL(ls_cidr_parse("1.2.3.4/1", &c), 0);
	CU_ASSERT_EQUAL(c.mask, 0x80000000u);
	CU_ASSERT_EQUAL(c.net, 0);
	CU_ASSERT_EQUAL(ls_cidr_parse("1.2.3.5/31", &c), 0);
	CU_ASSERT_EQUAL(c.net, ip4(1, 2, 3, 4));

	/* A short buffer truncates, never overflows. */
	CU_ASSERT_EQUAL(ls_cidr_parse("10.0.0.0/8", &c), 0);
	memset(buf, 'Z', sizeof(buf));
	ls_cidr_fmt(&c, buf, 5);
	CU_ASSERT_STRING_EQUAL(buf, "10.0");
	CU_ASSERT_EQUAL(buf[5], 'Z');
}

static const char *const bad_cidrs[] = {
	"", "1", "1.2", "1.2.3", "1.2.3.4.5", "1.2.3.4/33", "1.2.3.4/", "/8", "/", "01.2.3.4",
	"1.02.3.4", "1.2.3.04", "00.0.0.0", "1.2.3.4/08", "1.2.3.4/00", "256.1.1.1",
	"1.256.1.1", "1.1.1.256", "999.1.1.1", "1.2.3.-1", "-1.2.3.4", " 1.2.3.4",
	"1.2.3.4 ", "1.2.3.4/8 ", "1.2.3.4/ 8", "1.2.3.4 /8", "1..2.3", "1.2.3.", ".1.2.3",
	"1.2.3.4.", "1.2.3.4/8/8", "1.2.3.4/-1", "1.2.3.4/+8", "0x1.2.3.4", "0x01020304",
	"16909060", "1.2.3.4a", "a.b.c.d", "1234.1.1.1", "1.2.3.4:80", "1.2.3.0004",
	"1.2.3.4/1a", "1.2.3.4/100", "1.2.3.4/4294967328", "+1.2.3.4", "1.2.3.4\n",
	"1,2,3,4", "::1", "::ffff:1.2.3.4", "1.2.3.4/255.255.255.0", "localhost",
};

static void test_cidr_parse_bad(void)
{
	struct ls_cidr c = { 0x11111111u, 0x22222222u, 7 };
	size_t i;

	for (i = 0; i < LS_ARRAY_LEN(bad_cidrs); i++) {
		int rc = ls_cidr_parse(bad_cidrs[i], &c);

		if (rc != -1)
			printf("\n  accepted bad CIDR '%s'\n", bad_cidrs[i]);
		CU_ASSERT_EQUAL(rc, -1);
	}
	CU_ASSERT_EQUAL(ls_cidr_parse(NULL, &c), -1);
	/* Untouched on failure. */
	CU_ASSERT_EQUAL(c.net, 0x11111111u);
	CU_ASSERT_EQUAL(c.mask, 0x22222222u);
	CU_ASSERT_EQUAL(c.len, 7);
}

/* Whatever our parser accepts as an address, inet_pton must accept as the same one. */
static void test_cidr_vs_inet_pton(void)
{
	static const char *const cand[] = { "0.0.0.0", "1.2.3.4", "255.255.255.255",
					    "10.20.30.40", "01.2.3.4", "1.2.3", "256.0.0.0",
					    "1.2.3.4 ", "192.168.001.1", "100.64.0.1" };
	size_t i;

	for (i = 0; i < LS_ARRAY_LEN(cand); i++) {
		struct ls_cidr c;
		struct in_addr a;

		if (ls_cidr_parse(cand[i], &c) == 0) {
			CU_ASSERT_EQUAL(inet_pton(AF_INET, cand[i], &a), 1);
			CU_ASSERT_EQUAL(ntohl(a.s_addr), c.net);
		}
	}
}

static void test_cidr_match(void)
{
	struct ls_cidr c;

	CU_ASSERT_EQUAL(ls_cidr_parse("192.168.4.0/22", &c), 0);
	CU_ASSERT(ls_cidr_match(&c, ip4(192, 168, 4, 0)));
	CU_ASSERT(ls_cidr_match(&c, ip4(192, 168, 7, 255)));
	CU_ASSERT(!ls_cidr_match(&c, ip4(192, 168, 3, 255)));
	CU_ASSERT(!ls_cidr_match(&c, ip4(192, 168, 8, 0)));

	CU_ASSERT_EQUAL(ls_cidr_parse("0.0.0.0/0", &c), 0);
	CU_ASSERT(ls_cidr_match(&c, 0));
	CU_ASSERT(ls_cidr_match(&c, 0xffffffffu));

	CU_ASSERT_EQUAL(ls_cidr_parse("8.8.8.8", &c), 0);
	CU_ASSERT(ls_cidr_match(&c, ip4(8, 8, 8, 8)));
	CU_ASSERT(!ls_cidr_match(&c, ip4(8, 8, 8, 9)));
	CU_ASSERT(!ls_cidr_match(&c, ip4(8, 8, 8, 7)));
}

static const struct {
	uint32_t first, last;
	const char *name;
} ranges[] = {
	{ 0x00000000u, 0x00ffffffu, "0.0.0.0/8" },
	{ 0x0a000000u, 0x0affffffu, "10.0.0.0/8" },
	{ 0x64400000u, 0x647fffffu, "100.64.0.0/10" },
	{ 0x7f000000u, 0x7fffffffu, "127.0.0.0/8" },
	{ 0xa9fe0000u, 0xa9feffffu, "169.254.0.0/16" },
	{ 0xac100000u, 0xac1fffffu, "172.16.0.0/12" },
	{ 0xc0000000u, 0xc00000ffu, "192.0.0.0/24" },
	{ 0xc0a80000u, 0xc0a8ffffu, "192.168.0.0/16" },
	{ 0xc6120000u, 0xc613ffffu, "198.18.0.0/15" },
	{ 0xe0000000u, 0xefffffffu, "224.0.0.0/4" },
	{ 0xf0000000u, 0xffffffffu - 1, "240.0.0.0/4" },
	{ 0xffffffffu, 0xffffffffu, "255.255.255.255/32" },
};

static void test_denied_ranges(void)
{
	size_t i;

	for (i = 0; i < LS_ARRAY_LEN(ranges); i++) {
		const char *r;

		r = ls_addr_denied_range(ranges[i].first);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_STRING_EQUAL(r, ranges[i].name);
		r = ls_addr_denied_range(ranges[i].last);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_STRING_EQUAL(r, ranges[i].name);
		r = ls_addr_denied_range(ranges[i].first + (ranges[i].last - ranges[i].first) / 2);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_STRING_EQUAL(r, ranges[i].name);
		/* Just outside belongs to no range or to a neighbouring one. */
		if (ranges[i].first > 0) {
			r = ls_addr_denied_range(ranges[i].first - 1);
			CU_ASSERT(!r || strcmp(r, ranges[i].name) != 0);
		}
		if (ranges[i].last < 0xffffffffu) {
			r = ls_addr_denied_range(ranges[i].last + 1);
			CU_ASSERT(!r || strcmp(r, ranges[i].name) != 0);
		}
	}
	/* The neighbours that are ordinary routable addresses. */
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(1, 0, 0, 0)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(9, 255, 255, 255)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(11, 0, 0, 0)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(100, 63, 255, 255)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(100, 128, 0, 0)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(126, 255, 255, 255)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(128, 0, 0, 0)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(169, 253, 255, 255)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(169, 255, 0, 0)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(172, 15, 255, 255)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(172, 32, 0, 0)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(191, 255, 255, 255)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(192, 0, 1, 0)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(192, 167, 255, 255)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(192, 169, 0, 0)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(198, 17, 255, 255)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(198, 20, 0, 0)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(223, 255, 255, 255)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(8, 8, 8, 8)));
	CU_ASSERT_PTR_NULL(ls_addr_denied_range(ip4(1, 1, 1, 1)));
	/* Adjacent denied ranges report the right one. */
	CU_ASSERT_STRING_EQUAL(ls_addr_denied_range(ip4(239, 255, 255, 255)), "224.0.0.0/4");
	CU_ASSERT_STRING_EQUAL(ls_addr_denied_range(ip4(240, 0, 0, 0)), "240.0.0.0/4");
	CU_ASSERT_STRING_EQUAL(ls_addr_denied_range(ip4(255, 255, 255, 254)), "240.0.0.0/4");
	CU_ASSERT_STRING_EQUAL(ls_addr_denied_range(ip4(255, 255, 255, 255)),
			       "255.255.255.255/32");
}

static void test_permitted(void)
{
	struct ls_allowlist al;

	memset(&al, 0, sizeof(al));
	CU_ASSERT(ls_addr_permitted(NULL, ip4(8, 8, 8, 8)));
	CU_ASSERT(!ls_addr_permitted(NULL, ip4(127, 0, 0, 1)));
	CU_ASSERT(ls_addr_permitted(&al, ip4(8, 8, 8, 8)));
	CU_ASSERT(!ls_addr_permitted(&al, ip4(127, 0, 0, 1)));
	CU_ASSERT(!ls_addr_permitted(&al, ip4(10, 1, 2, 3)));

	CU_ASSERT_EQUAL(ls_cidr_parse("127.0.0.0/8", &al.c[al.n++]), 0);
	CU_ASSERT(ls_addr_permitted(&al, ip4(127, 0, 0, 1)));
	CU_ASSERT(ls_addr_permitted(&al, ip4(127, 255, 255, 255)));
	CU_ASSERT(!ls_addr_permitted(&al, ip4(10, 0, 0, 1)));
	CU_ASSERT(!ls_addr_permitted(&al, ip4(192, 168, 1, 1)));
	CU_ASSERT(ls_addr_permitted(&al, ip4(128, 0, 0, 0)));
	CU_ASSERT(ls_addr_permitted(&al, ip4(8, 8, 8, 8)));

	/* A narrower exception lets only itself through. */
	CU_ASSERT_EQUAL(ls_cidr_parse("10.9.0.0/16", &al.c[al.n++]), 0);
	CU_ASSERT(ls_addr_permitted(&al, ip4(10, 9, 200, 1)));
	CU_ASSERT(!ls_addr_permitted(&al, ip4(10, 10, 0, 1)));
	CU_ASSERT(!ls_addr_permitted(&al, ip4(10, 8, 255, 255)));
}

static void test_hostport(void)
{
	struct sockaddr_in sa;
	char err[128], buf[LS_ADDRSTRLEN];

	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:80", &sa, false, false, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(sa.sin_family, AF_INET);
	CU_ASSERT_EQUAL(ntohl(sa.sin_addr.s_addr), ip4(1, 2, 3, 4));
	CU_ASSERT_EQUAL(ntohs(sa.sin_port), 80);
	CU_ASSERT_STRING_EQUAL(ls_addr_fmt(&sa, buf), "1.2.3.4:80");

	CU_ASSERT_EQUAL(ls_hostport_parse("0.0.0.0:65535", &sa, false, false, err, sizeof(err)),
			0);
	CU_ASSERT_EQUAL(ntohs(sa.sin_port), 65535);
	CU_ASSERT_EQUAL(sa.sin_addr.s_addr, 0);

	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:0", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "bad port '0' in '1.2.3.4:0'");
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:0", &sa, false, true, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(ntohs(sa.sin_port), 0);

	CU_ASSERT_EQUAL(ls_hostport_parse("x", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "missing port in 'x'");
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4", &sa, true, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "missing port in '1.2.3.4'");
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "missing port in '1.2.3.4:'");
	CU_ASSERT_EQUAL(ls_hostport_parse("", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "missing port in ''");
	CU_ASSERT_EQUAL(ls_hostport_parse(":80", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "missing host in ':80'");

	CU_ASSERT_EQUAL(ls_hostport_parse("x:70000", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "bad port '70000' in 'x:70000'");
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:65536", &sa, false, false, err, sizeof(err)),
			-1);
	CU_ASSERT_STRING_EQUAL(err, "bad port '65536' in '1.2.3.4:65536'");
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:080", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "bad port '080' in '1.2.3.4:080'");
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:-1", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4: 80", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:80 ", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:+80", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:8a", &sa, false, false, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:99999999999999999999", &sa, false, false, err,
					  sizeof(err)),
			-1);

	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3:80", &sa, true, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "bad address '1.2.3' in '1.2.3:80'");
	CU_ASSERT_EQUAL(ls_hostport_parse("1.2.3.4:5:80", &sa, true, false, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(ls_hostport_parse("256.1.1.1:80", &sa, true, false, err, sizeof(err)), -1);
	/* Never read as octal by the resolver. */
	CU_ASSERT_EQUAL(ls_hostport_parse("010.1.1.1:80", &sa, true, false, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "bad address '010.1.1.1' in '010.1.1.1:80'");

	/* Names only when resolving. */
	CU_ASSERT_EQUAL(ls_hostport_parse("localhost:80", &sa, false, false, err, sizeof(err)),
			-1);
	CU_ASSERT_STRING_EQUAL(err, "bad address 'localhost' in 'localhost:80'");
	CU_ASSERT_EQUAL(ls_hostport_parse("localhost:80", &sa, true, false, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(ntohl(sa.sin_addr.s_addr) >> 24, 127);
	CU_ASSERT_EQUAL(ntohs(sa.sin_port), 80);
	/* .invalid never resolves (RFC 6761). */
	CU_ASSERT_EQUAL(ls_hostport_parse("foo.invalid:80", &sa, true, false, err, sizeof(err)),
			-1);
	CU_ASSERT_EQUAL(strncmp(err, "cannot resolve 'foo.invalid': ", 30), 0);
	CU_ASSERT(strlen(err) > 30);

	/* No error buffer is fine, and a short one truncates. */
	CU_ASSERT_EQUAL(ls_hostport_parse("x", &sa, false, false, NULL, 0), -1);
	CU_ASSERT_EQUAL(ls_hostport_parse("x", &sa, false, false, err, 8), -1);
	CU_ASSERT_STRING_EQUAL(err, "missing");
	CU_ASSERT_EQUAL(ls_hostport_parse(NULL, &sa, false, false, err, sizeof(err)), -1);
}

static void test_ipport_fmt(void)
{
	char buf[LS_ADDRSTRLEN];

	CU_ASSERT_STRING_EQUAL(ls_ipport_fmt(0xffffffffu, 65535, buf), "255.255.255.255:65535");
	CU_ASSERT_STRING_EQUAL(ls_ipport_fmt(0, 0, buf), "0.0.0.0:0");
	CU_ASSERT_STRING_EQUAL(ls_ipport_fmt(ip4(10, 0, 20, 3), 27015, buf), "10.0.20.3:27015");
}

static void test_dest_parse(void)
{
	struct ls_dest d;
	char buf[64];

	CU_ASSERT_EQUAL(ls_dest_parse("1.2.3.4", &d), 0);
	CU_ASSERT_EQUAL(d.cidr.net, ip4(1, 2, 3, 4));
	CU_ASSERT_EQUAL(d.cidr.len, 32);
	CU_ASSERT_EQUAL(d.port_lo, 0);
	CU_ASSERT_EQUAL(d.port_hi, 65535);
	ls_dest_fmt(&d, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1.2.3.4");

	CU_ASSERT_EQUAL(ls_dest_parse("1.2.3.4:7777", &d), 0);
	CU_ASSERT_EQUAL(d.cidr.net, ip4(1, 2, 3, 4));
	CU_ASSERT_EQUAL(d.port_lo, 7777);
	CU_ASSERT_EQUAL(d.port_hi, 7777);
	ls_dest_fmt(&d, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1.2.3.4:7777");

	CU_ASSERT_EQUAL(ls_dest_parse("1.2.3.0/24:27015-27050", &d), 0);
	CU_ASSERT_EQUAL(d.cidr.net, ip4(1, 2, 3, 0));
	CU_ASSERT_EQUAL(d.cidr.len, 24);
	CU_ASSERT_EQUAL(d.port_lo, 27015);
	CU_ASSERT_EQUAL(d.port_hi, 27050);
	ls_dest_fmt(&d, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1.2.3.0/24:27015-27050");

	CU_ASSERT_EQUAL(ls_dest_parse("1.2.3.77/24", &d), 0);
	CU_ASSERT_EQUAL(d.cidr.net, ip4(1, 2, 3, 0));
	CU_ASSERT_EQUAL(d.port_lo, 0);
	CU_ASSERT_EQUAL(d.port_hi, 65535);
	ls_dest_fmt(&d, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1.2.3.0/24");

	CU_ASSERT_EQUAL(ls_dest_parse("0.0.0.0/0:1-65535", &d), 0);
	CU_ASSERT_EQUAL(d.port_lo, 1);
	CU_ASSERT_EQUAL(d.port_hi, 65535);
	ls_dest_fmt(&d, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "0.0.0.0/0:1-65535");

	CU_ASSERT_EQUAL(ls_dest_parse("5.6.7.8:100-100", &d), 0);
	CU_ASSERT_EQUAL(d.port_lo, 100);
	CU_ASSERT_EQUAL(d.port_hi, 100);
	CU_ASSERT_EQUAL(ls_dest_parse("5.6.7.8/32:65535", &d), 0);
	CU_ASSERT_EQUAL(d.port_lo, 65535);
	ls_dest_fmt(&d, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "5.6.7.8:65535");
}

static void test_dest_parse_bad(void)
{
	static const char *const bad[] = {
		"", ":", ":80", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:10-5",
		"1.2.3.4:-5", "1.2.3.4:5-", "1.2.3.4:-", "1.2.3.4:5-6-7", "1.2.3.4:5:6",
		"1.2.3.4/33:80", "1.2.3.4/:80", "1.2.3.4:a", "1.2.3.4: 80", "1.2.3.4:80 ",
		" 1.2.3.4:80", "1.2.3.4 :80", "1.2.3.4:080", "1.2.3.4:0-10", "1.2.3.4:10-0",
		"1.2.3.4:10-065535", "1.2.3.4:10-70000", "1.2.3.4:+80", "1.2.3.4:80-+90",
		"1.2.3:80", "01.2.3.4:80", "1.2.3.4.5", "1.2.3.4/24/24", "1.2.3.4:80/24",
		"host:80", "1.2.3.4:1 - 2", "1.2.3.4:4294967377", "1.2.3.4:99999999999999",
	};
	struct ls_dest d = { { 1, 2, 3 }, 4, 5 };
	size_t i;

	for (i = 0; i < LS_ARRAY_LEN(bad); i++) {
		int rc = ls_dest_parse(bad[i], &d);

		if (rc != -1)
			printf("\n  accepted bad destination '%s'\n", bad[i]);
		CU_ASSERT_EQUAL(rc, -1);
	}
	CU_ASSERT_EQUAL(ls_dest_parse(NULL, &d), -1);
	/* Untouched on failure. */
	CU_ASSERT_EQUAL(d.cidr.net, 1);
	CU_ASSERT_EQUAL(d.port_lo, 4);
	CU_ASSERT_EQUAL(d.port_hi, 5);
}

static void test_dest_match(void)
{
	struct ls_dest d;

	CU_ASSERT_EQUAL(ls_dest_parse("1.2.3.0/24:27015-27050", &d), 0);
	CU_ASSERT(ls_dest_match(&d, ip4(1, 2, 3, 9), 27015));
	CU_ASSERT(ls_dest_match(&d, ip4(1, 2, 3, 255), 27050));
	CU_ASSERT(ls_dest_match(&d, ip4(1, 2, 3, 0), 27030));
	CU_ASSERT(!ls_dest_match(&d, ip4(1, 2, 3, 9), 27014));
	CU_ASSERT(!ls_dest_match(&d, ip4(1, 2, 3, 9), 27051));
	CU_ASSERT(!ls_dest_match(&d, ip4(1, 2, 4, 9), 27020));
	CU_ASSERT(!ls_dest_match(&d, ip4(1, 2, 2, 255), 27020));

	CU_ASSERT_EQUAL(ls_dest_parse("9.9.9.9", &d), 0);
	CU_ASSERT(ls_dest_match(&d, ip4(9, 9, 9, 9), 0));
	CU_ASSERT(ls_dest_match(&d, ip4(9, 9, 9, 9), 65535));
	CU_ASSERT(!ls_dest_match(&d, ip4(9, 9, 9, 8), 53));

	CU_ASSERT_EQUAL(ls_dest_parse("9.9.9.9:53", &d), 0);
	CU_ASSERT(ls_dest_match(&d, ip4(9, 9, 9, 9), 53));
	CU_ASSERT(!ls_dest_match(&d, ip4(9, 9, 9, 9), 52));
	CU_ASSERT(!ls_dest_match(&d, ip4(9, 9, 9, 9), 54));
}

/* ls_dest_fmt's output parses back to the same destination. */
static void test_dest_roundtrip(void)
{
	static const char *const in[] = { "1.2.3.4", "1.2.3.4:1", "10.0.0.0/8:1000-2000",
					  "0.0.0.0/0", "255.255.255.255/32:65535",
					  "128.0.0.0/1:1-2" };
	size_t i;

	for (i = 0; i < LS_ARRAY_LEN(in); i++) {
		struct ls_dest a, b;
		char buf[64];

		CU_ASSERT_EQUAL_FATAL(ls_dest_parse(in[i], &a), 0);
		ls_dest_fmt(&a, buf, sizeof(buf));
		CU_ASSERT_EQUAL_FATAL(ls_dest_parse(buf, &b), 0);
		/* Field by field: the structs have padding. */
		CU_ASSERT_EQUAL(a.cidr.net, b.cidr.net);
		CU_ASSERT_EQUAL(a.cidr.mask, b.cidr.mask);
		CU_ASSERT_EQUAL(a.cidr.len, b.cidr.len);
		CU_ASSERT_EQUAL(a.port_lo, b.port_lo);
		CU_ASSERT_EQUAL(a.port_hi, b.port_hi);
	}
}

UNIT_MAIN("addr",
	  { "cidr parse ok", test_cidr_parse_ok },
	  { "cidr parse bad", test_cidr_parse_bad },
	  { "cidr vs inet_pton", test_cidr_vs_inet_pton },
	  { "cidr match", test_cidr_match },
	  { "denied ranges", test_denied_ranges },
	  { "permitted", test_permitted },
	  { "hostport", test_hostport },
	  { "ipport fmt", test_ipport_fmt },
	  { "dest parse", test_dest_parse },
	  { "dest parse bad", test_dest_parse_bad },
	  { "dest match", test_dest_match },
	  { "dest roundtrip", test_dest_roundtrip })
