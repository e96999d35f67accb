/* lightspeed-client capture mode: the kernel side of the diversion, spoken directly in
 * netlink (nf_tables and rtnetlink): an nftables table of the client's own, and one
 * policy-routing rule with its route. No packet passes through here.
 *
 *   table ip lightspeed_client (flags owner)
 *     chain divert  (route hook output, priority mangle)
 *       meta mark OWN return            the client's own sockets (tunnel, replies)
 *       ip daddr 127.0.0.0/8 return     never loopback
 *       fib daddr type local return     never this machine
 *       meta l4proto udp udp dport LO-HI [ip daddr S udp dport P] [process]
 *           counter meta mark set DIVERT              (one rule per port range)
 *     chain tproxy  (filter hook prerouting, priority mangle)
 *       iif lo meta mark DIVERT meta l4proto udp counter tproxy to 127.0.0.1:PORT
 *   ip rule fwmark DIVERT lookup TABLE pref PREF
 *   ip route local 0.0.0.0/0 dev lo table TABLE
 *
 * A marked datagram is routed to lo instead of out of the machine, and on lo TPROXY
 * hands it to the client's socket with its destination intact; it never leaves the
 * machine directly. The table carries the owner flag: the kernel deletes it the
 * moment the netlink socket that made it closes, so a client killed by SIGKILL
 * takes its diversion with it. (process) is the socket's cgroup v2 at its level when
 * known, else its owner's uid. */
#ifndef LS_CLIENT_CAPTURE_NFT_H
#define LS_CLIENT_CAPTURE_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"

#define CL_CAPTURE_TABLE "lightspeed_client"

/* What a run's kernel state is made of; fixed for the run. */
struct client_capture_kconf {
	uint32_t divert_mark; /* set on datagrams to divert */
	uint32_t own_mark;    /* SO_MARK of the client's own sockets: never diverted */
	uint32_t route_table; /* policy-routing table holding the local default route */
	uint32_t rule_pref;   /* the ip rule's priority */
	uint16_t tproxy_port; /* the diversion socket, 127.0.0.1:port (host order) */
};

/* Which datagrams to divert; changes at run time (the game's process). */
struct client_capture_match {
	struct ls_port_range ports[LS_PROFILE_MAX_PORTS];
	size_t nports;
	uint32_t server_ip;   /* network order; 0: any server */
	uint16_t server_port; /* host order; 0: any port of the ranges */
	uint64_t cgroup_id;   /* with cgroup_level > 0: the socket's cgroup v2 ancestor */
	uint32_t cgroup_level;
	bool by_uid;          /* else, with by_uid: the socket owner's uid */
	uint32_t uid;
};

struct client_capture_nft {
	int fd;          /* nf_tables netlink socket: it owns the table while open */
	uint32_t seq;
	bool owned;      /* the kernel took the owner flag */
};

/* Open the netlink socket (keep it open for the life of the diversion). */
int client_capture_nft_open(struct client_capture_nft *n, char *err, size_t errlen);
/* The table and both chains in one transaction, after removing a stale copy left by
 * a client that could not own it. Fails when a live client owns one in this network
 * namespace. */
int client_capture_nft_install(struct client_capture_nft *n, const struct client_capture_kconf *k, const struct client_capture_match *m,
		    char *err, size_t errlen);
/* Replace the divert chain's rules in one transaction (nothing is diverted by halves). */
int client_capture_nft_update(struct client_capture_nft *n, const struct client_capture_kconf *k, const struct client_capture_match *m,
		   char *err, size_t errlen);
/* The packets the divert rules have matched so far (their counters). */
int client_capture_nft_diverted(struct client_capture_nft *n, uint64_t *packets, char *err, size_t errlen);
/* Delete the table and close the socket. */
void client_capture_nft_close(struct client_capture_nft *n);

/* Does the table exist in this network namespace? 1 (owner: its netlink port id, or 0
 * when not owned), 0 (no), -1 (error). */
int client_capture_nft_probe(uint32_t *owner, char *err, size_t errlen);
/* Delete a table nobody owns (a stale one); 0 also when there is none. */
int client_capture_nft_delete_stale(char *err, size_t errlen);

/* The policy-routing rule and route: add, or remove (absent is not an error). */
int client_capture_nft_route_add(const struct client_capture_kconf *k, char *err, size_t errlen);
int client_capture_nft_route_del(const struct client_capture_kconf *k, char *err, size_t errlen);

#endif
