/* IPv4 address helpers: "host:port" parsing, CIDRs, allowed destinations, and the
 * denied ranges a proxy never forwards to unless the operator allows them. */
#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Parse exactly n bytes of s as a dotted quad. Stricter than inet_aton: four parts,
 * decimal only, no leading zeros (which some parsers read as octal), each <= 255. */
static int parse_ipv4(const char *s, size_t n, uint32_t *out)
{
	uint32_t ip = 0;
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t start = i;

		if (part > 0) {
			if (i >= n || s[i] != '.')
				return -1;
			start = ++i;
		}
		while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return -1;
		ip = ip << 8 | v;
	}
	if (i != n)
		return -1;
	*out = ip;
	return 0;
}

/* A decimal number of exactly n bytes in [lo, hi], without sign or leading zeros. */
static int parse_num(const char *s, size_t n, unsigned long lo, unsigned long hi,
		     unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0 || n > 9 || (s[0] == '0' && n > 1))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static uint32_t prefix_mask(unsigned len)
{
	return len == 0 ? 0 : UINT32_MAX << (32 - len);
}

/* Parse n bytes of s as "a.b.c.d[/len]". */
static int cidr_parse_n(const char *s, size_t n, struct ls_cidr *out)
{
	const char *slash = memchr(s, '/', n);
	unsigned long len = 32;
	uint32_t ip;

	if (slash) {
		if (parse_num(slash + 1, n - (size_t)(slash + 1 - s), 0, 32, &len) < 0)
			return -1;
		n = (size_t)(slash - s);
	}
	if (parse_ipv4(s, n, &ip) < 0)
		return -1;
	out->len = (uint8_t)len;
	out->mask = prefix_mask((unsigned)len);
	out->net = ip & out->mask;
	return 0;
}

int ls_cidr_parse(const char *s, struct ls_cidr *out)
{
	if (!s)
		return -1;
	return cidr_parse_n(s, strlen(s), out);
}

bool ls_cidr_match(const struct ls_cidr *c, uint32_t ip)
{
	return (ip & c->mask) == c->net;
}

void ls_cidr_fmt(const struct ls_cidr *c, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u/%u", c->net >> 24, (c->net >> 16) & 255,
		 (c->net >> 8) & 255, c->net & 255, c->len);
}

/* Addresses that are private, local, shared, reserved or multicast: forwarding to them
 * would let a client reach the proxy's own networks. */
static const struct {
	uint32_t net;
	uint8_t len;
	const char *name;
} denied[] = {
	{ 0x00000000, 8, "0.0.0.0/8" },
	{ 0x0a000000, 8, "10.0.0.0/8" },
	{ 0x64400000, 10, "100.64.0.0/10" },
	{ 0x7f000000, 8, "127.0.0.0/8" },
	{ 0xa9fe0000, 16, "169.254.0.0/16" },
	{ 0xac100000, 12, "172.16.0.0/12" },
	{ 0xc0000000, 24, "192.0.0.0/24" },
	{ 0xc0a80000, 16, "192.168.0.0/16" },
	{ 0xc6120000, 15, "198.18.0.0/15" },
	{ 0xe0000000, 4, "224.0.0.0/4" },
	/* Inside 240.0.0.0/4 but named on its own: the most specific range first. */
	{ 0xffffffff, 32, "255.255.255.255/32" },
	{ 0xf0000000, 4, "240.0.0.0/4" },
};

const char *ls_dest_denied(const struct ls_allowlist *al, const struct ls_dest *d)
{
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		uint32_t mask = denied[i].len ? ~0u << (32 - denied[i].len) : 0;
		uint32_t both = mask & d->cidr.mask; /* the shorter prefix of the two */

		/* Overlapping prefixes agree on the shorter one; the overlap starts at the
		 * larger network address. */
		if ((denied[i].net & both) != (d->cidr.net & both))
			continue;
		uint32_t first = denied[i].net > d->cidr.net ? denied[i].net : d->cidr.net;
		if (!ls_addr_permitted(al, first))
			return denied[i].name;
	}
	return NULL;
}

const char *ls_addr_denied_range(uint32_t ip)
{
	size_t i;

	for (i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
		if ((ip & prefix_mask(denied[i].len)) == denied[i].net)
			return denied[i].name;
	return NULL;
}

bool ls_addr_permitted(const struct ls_allowlist *al, uint32_t ip)
{
	int i;

	if (!ls_addr_denied_range(ip))
		return true;
	if (!al)
		return false;
	for (i = 0; i < al->n && i < LS_MAX_ALLOW; i++)
		if (ls_cidr_match(&al->c[i], ip))
			return true;
	return false;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int ls_hostport_parse(const char *s, struct sockaddr_in *out, bool resolve, bool allow_zero,
		      char *err, size_t errlen)
{
	char host[256];
	const char *colon;
	size_t hlen, i;
	unsigned long port;
	uint32_t ip;
	bool numeric = true;
	struct addrinfo hints, *res = NULL;
	int rc;

	if (!s)
		s = "";
	colon = strrchr(s, ':');
	if (!colon || colon[1] == '\0') {
		set_err(err, errlen, "missing port in '%s'", s);
		return -1;
	}
	hlen = (size_t)(colon - s);
	if (hlen == 0) {
		set_err(err, errlen, "missing host in '%s'", s);
		return -1;
	}
	if (parse_num(colon + 1, strlen(colon + 1), allow_zero ? 0 : 1, 65535, &port) < 0) {
		set_err(err, errlen, "bad port '%s' in '%s'", colon + 1, s);
		return -1;
	}
	if (hlen >= sizeof(host)) {
		set_err(err, errlen, "host name too long in '%s'", s);
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	/* Something made only of digits and dots is meant as an address: never hand it
	 * to the resolver, which would read "010.1.1.1" as octal. */
	for (i = 0; i < hlen; i++)
		if (host[i] != '.' && (host[i] < '0' || host[i] > '9'))
			numeric = false;

	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (parse_ipv4(host, hlen, &ip) == 0) {
		out->sin_addr.s_addr = htonl(ip);
		return 0;
	}
	if (numeric || !resolve) {
		set_err(err, errlen, "bad address '%s' in '%s'", host, s);
		return -1;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_DGRAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0 || !res) {
		set_err(err, errlen, "cannot resolve '%s': %s", host,
			rc != 0 ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return -1;
	}
	out->sin_addr = ((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}

char *ls_ipport_fmt(uint32_t ip, uint16_t port, char *buf)
{
	snprintf(buf, LS_ADDRSTRLEN, "%u.%u.%u.%u:%u", ip >> 24, (ip >> 16) & 255,
		 (ip >> 8) & 255, ip & 255, port);
	return buf;
}

char *ls_addr_fmt(const struct sockaddr_in *a, char *buf)
{
	return ls_ipport_fmt(ntohl(a->sin_addr.s_addr), ntohs(a->sin_port), buf);
}

int ls_dest_parse(const char *s, struct ls_dest *out)
{
	const char *colon, *dash;
	struct ls_cidr c;
	unsigned long lo = 0, hi = 65535;

	if (!s)
		return -1;
	colon = strchr(s, ':');
	if (cidr_parse_n(s, colon ? (size_t)(colon - s) : strlen(s), &c) < 0)
		return -1;
	if (colon) {
		const char *p = colon + 1;
		size_t n = strlen(p);

		dash = memchr(p, '-', n);
		if (dash) {
			if (parse_num(p, (size_t)(dash - p), 1, 65535, &lo) < 0 ||
			    parse_num(dash + 1, n - (size_t)(dash + 1 - p), 1, 65535, &hi) < 0 ||
			    lo > hi)
				return -1;
		} else {
			if (parse_num(p, n, 1, 65535, &lo) < 0)
				return -1;
			hi = lo;
		}
	}
	out->cidr = c;
	out->port_lo = (uint16_t)lo;
	out->port_hi = (uint16_t)hi;
	return 0;
}

bool ls_dest_match(const struct ls_dest *d, uint32_t ip, uint16_t port)
{
	return ls_cidr_match(&d->cidr, ip) && port >= d->port_lo && port <= d->port_hi;
}

void ls_dest_fmt(const struct ls_dest *d, char *buf, size_t len)
{
	char cidr[24], ports[16] = "";

	/* The form ls_dest_parse reads back: a single host without "/32", no port part
	 * when every port is allowed. */
	if (d->cidr.len == 32)
		snprintf(cidr, sizeof(cidr), "%u.%u.%u.%u", d->cidr.net >> 24,
			 (d->cidr.net >> 16) & 255, (d->cidr.net >> 8) & 255, d->cidr.net & 255);
	else
		ls_cidr_fmt(&d->cidr, cidr, sizeof(cidr));
	if (d->port_lo == d->port_hi)
		snprintf(ports, sizeof(ports), ":%u", d->port_lo);
	else if (d->port_lo != 0 || d->port_hi != 65535)
		snprintf(ports, sizeof(ports), ":%u-%u", d->port_lo, d->port_hi);
	snprintf(buf, len, "%s%s", cidr, ports);
}
