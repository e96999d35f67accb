/* IPv4 address helpers: "host:port" parsing, CIDRs, allowed destinations, and the
 * denied ranges a proxy never forwards to unless the operator allows them. */
#ifndef LS_ADDR_H
#define LS_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define LS_ADDRSTRLEN 24 /* "255.255.255.255:65535" + NUL */

struct ls_cidr {
	uint32_t net;  /* host order, already masked */
	uint32_t mask; /* host order */
	uint8_t len;
};

/* "a.b.c.d/len" or "a.b.c.d" (= /32). Return 0 or -1. */
int ls_cidr_parse(const char *s, struct ls_cidr *out);
bool ls_cidr_match(const struct ls_cidr *c, uint32_t ip);
void ls_cidr_fmt(const struct ls_cidr *c, char *buf, size_t len);

/* The denied range holding ip ("10.0.0.0/8", ...), or NULL when ip is routable. */
const char *ls_addr_denied_range(uint32_t ip);

/* A set of operator exceptions (--allow), checked against the denied ranges. */
#define LS_MAX_ALLOW 16
struct ls_allowlist {
	struct ls_cidr c[LS_MAX_ALLOW];
	int n;
};
/* True when ip is not in a denied range, or is in one the allowlist lets through. */
bool ls_addr_permitted(const struct ls_allowlist *al, uint32_t ip);

/* "host:port" with a numeric IPv4 or, when resolve is set, a host name (getaddrinfo;
 * configuration time only). Port 1..65535 (0 accepted when allow_zero). Return 0 or -1
 * with a message in err. */
int ls_hostport_parse(const char *s, struct sockaddr_in *out, bool resolve, bool allow_zero,
		      char *err, size_t errlen);
/* "a.b.c.d:port" into buf (LS_ADDRSTRLEN). Returns buf. */
char *ls_addr_fmt(const struct sockaddr_in *a, char *buf);
char *ls_ipport_fmt(uint32_t ip, uint16_t port, char *buf); /* host order */

/* An allowed destination: "ip[/len][:port[-port]]"; no port means any port. */
struct ls_dest {
	struct ls_cidr cidr;
	uint16_t port_lo, port_hi;
};
int ls_dest_parse(const char *s, struct ls_dest *out);
bool ls_dest_match(const struct ls_dest *d, uint32_t ip, uint16_t port);
/* A denied range that d reaches into and the allowlist does not let through (its name),
 * or NULL: packets to such a destination would be dropped as denied_destination. */
const char *ls_dest_denied(const struct ls_allowlist *al, const struct ls_dest *d);
void ls_dest_fmt(const struct ls_dest *d, char *buf, size_t len);

#endif
