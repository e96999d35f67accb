/* lightspeed-controller: where nodes come from besides the configuration. DNS
 * (discovery_dns.c): SRV records `_lightspeed._udp.DOMAIN`, one per node (target and
 * its tunnel port), with a TXT record at each target for its agent
 * ("control=PORT", "fingerprint=sha256:HEX", "region=NAME"), asked through c-ares on
 * the loop and asked again when their TTL runs out. Peer exchange (discovery_peers.c):
 * the nodes a registered agent tells with PEERS. Discovery only finds: a node found is
 * added to the node table with its source, and it carries traffic only once its agent
 * passed pinning and registration and its path is healthy, like any other. */
#ifndef LS_CTRL_DISCOVERY_H
#define LS_CTRL_DISCOVERY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "conf.h"
#include "ctlmsg.h"

struct discovery_conf {
	char dns_domain[254];     /* "": no DNS discovery */
	char dns_server[64];      /* "ip" or "ip:port"; "": the system's resolver */
	uint32_t dns_retry_ms;    /* after a failed query */
	uint32_t dns_min_ttl_s;   /* TTLs are clamped into [min, max] */
	uint32_t dns_max_ttl_s;
	bool peers;               /* take the nodes the agents tell */
};
void discovery_conf_defaults(struct discovery_conf *c);
extern const struct ls_conf_field discovery_conf_fields[];
void discovery_conf_print(const struct discovery_conf *c, FILE *f);

/* A node found: its name, tunnel address and agent. */
struct discovered {
	char name[LS_CTL_NAME_MAX + 1];
	char region[LS_CTL_NAME_MAX + 1];
	struct sockaddr_in addr;
	uint16_t control_port;
	bool has_fp;
	uint8_t fp[LS_CTL_FP_LEN];
};

typedef void (*discovery_found_fn)(void *ctx, const struct discovered *d);

/* ---- discovery_dns.c ---- */
struct discovery_dns;
struct discovery_dns_stats {
	uint64_t queries, answers, failures, found;
	uint32_t ttl_s;           /* the last answer's (clamped) */
	char last_error[320];
};
/* Start asking (at once, then at the TTL). NULL with err (c-ares could not start, or a
 * bad dns_server). */
struct discovery_dns *discovery_dns_open(uv_loop_t *loop, const struct discovery_conf *conf,
					 discovery_found_fn found, void *ctx, char *err,
					 size_t errlen);
/* Ask again now (a reload, a test). */
void discovery_dns_refresh(struct discovery_dns *d);
void discovery_dns_get_stats(const struct discovery_dns *d, struct discovery_dns_stats *st);
/* The memory goes once the loop has run. */
void discovery_dns_close(struct discovery_dns *d);

/* Pure parts, for the unit suite and the fuzz harness. */
/* A TXT record's strings ("key=value" each, in any order) into d. 0, or -1 with a
 * message when a known key has a bad value (unknown keys are ignored). */
int discovery_txt_parse(const char *const *strs, const size_t *lens, size_t n,
			struct discovered *d, char *err, size_t errlen);
/* A node name from a target host: its first label, kept to [A-Za-z0-9._-] and 31
 * characters. 0, or -1 when nothing is left. */
int discovery_name_from_host(const char *host, char name[LS_CTL_NAME_MAX + 1]);
/* The smallest TTL of the answer records of a DNS response; -1 if it does not parse. */
int64_t discovery_answer_ttl(const uint8_t *msg, size_t len);

/* ---- discovery_peers.c ---- */
/* The nodes of a PEERS answer, each as found (the peer's own fingerprint pins it). */
void discovery_peers_take(const struct ls_ctl_msg *peers, discovery_found_fn found, void *ctx);

#endif
