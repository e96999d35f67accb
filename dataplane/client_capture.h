/* lightspeed-client capture mode (Linux): the game is left unmodified and talks to the
 * real server; the kernel diverts its datagrams to the client (client_capture_nft.h),
 * which tunnels them, and the client puts each reply back on the machine as if it came
 * from the game server's address and port.
 *
 * Why TPROXY with policy routing rather than NFQUEUE: a diverted datagram arrives on an
 * ordinary UDP socket, read in batches with recvmmsg like every other socket of the
 * dataplane, with its original destination attached (IP_ORIGDSTADDR); NFQUEUE would
 * copy every packet over netlink and want a verdict back for each, and many kernels
 * (this project's test machines among them) build nftables without its queue
 * expression. Replies go out through one raw socket (IP_HDRINCL) in batches of
 * sendmmsg, each with the server's address and port as its source, over lo to the
 * game's socket. Nothing touches the game process.
 *
 * Privileges: CAP_NET_ADMIN (nftables, policy routing, IP_TRANSPARENT, SO_MARK) and
 * CAP_NET_RAW (the raw socket). Per datagram nothing here allocates, logs or formats. */
#ifndef LS_CLIENT_CAPTURE_H
#define LS_CLIENT_CAPTURE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "client_capture_nft.h"

/* Most datagrams per receive or send call (the caller's batch is no larger). */
#define CL_CAPTURE_BATCH 64

/* The defaults of the kernel state (the marks and the table may clash with another
 * program's: capture_mark moves them). */
#define CL_CAPTURE_MARK 0x4c53u   /* "LS"; the client's own sockets carry MARK + 1 */
#define CL_CAPTURE_RULE_PREF 100u /* before the main table and VPNs' rules */

struct client_capture_counters {
	uint64_t received;       /* diverted datagrams read */
	uint64_t no_destination; /* read without an original destination (dropped) */
	uint64_t injected;       /* replies put back */
	uint64_t inject_errors;  /* replies the kernel refused */
};

/* IPv4 + UDP header of an injected reply. */
struct client_capture_hdr {
	uint8_t b[28];
};

struct client_capture {
	struct client_capture_kconf k;
	struct client_capture_match m;
	struct client_capture_nft nft;
	int tproxy_fd;  /* diverted datagrams arrive here */
	int raw_fd;     /* replies leave here */
	int watch_fd;   /* write end of the watchdog's pipe */
	pid_t watchdog; /* removes the policy routing if the client dies */
	bool route_on;
	struct client_capture_counters ctr;

	union {
		uint8_t b[CMSG_SPACE(sizeof(struct sockaddr_in))];
		struct cmsghdr align;
	} cmsg[CL_CAPTURE_BATCH];
	struct mmsghdr tx[CL_CAPTURE_BATCH];
	struct iovec txiov[CL_CAPTURE_BATCH][2];
	struct client_capture_hdr hdr[CL_CAPTURE_BATCH];
	struct sockaddr_in txto[CL_CAPTURE_BATCH];
};

/* The kernel state's parameters for a mark (0: the default). */
void client_capture_kconf_default(struct client_capture_kconf *k, uint32_t mark);

/* Start diverting what m matches: sockets, a stale diversion removed, the policy
 * routing, the nftables table, the watchdog. 0, or -1 with a message (and nothing left
 * behind). */
int client_capture_open(struct client_capture *cap, const struct client_capture_kconf *k,
			const struct client_capture_match *m, char *err, size_t errlen);
/* Divert what m matches from now on (the game's process changed). */
int client_capture_update(struct client_capture *cap, const struct client_capture_match *m,
			  char *err, size_t errlen);
/* Stop diverting and remove everything open() put in place. */
void client_capture_close(struct client_capture *cap);
/* --cleanup: remove a diversion a killed client left (refused while one runs). */
int client_capture_cleanup(const struct client_capture_kconf *k, char *err, size_t errlen);

/* Give a socket the client's own mark, so the diversion never takes its datagrams. */
int client_capture_mark_socket(const struct client_capture *cap, int fd);

/* One recvmmsg of diverted datagrams into the caller's m[0..n) (n <= CL_CAPTURE_BATCH,
 * names pointing at sockaddr_in); dst[i] gets each one's original destination, port 0
 * when it had none (count those as dropped). Returns the count, or -1 (EAGAIN: none). */
int client_capture_recv(struct client_capture *cap, struct mmsghdr *m, unsigned n,
			struct sockaddr_in *dst);

/* Put n replies (n <= CL_CAPTURE_BATCH) back on the machine: payload[i], from the game
 * server from[i] to the game socket to[i]. Returns how many left; *bytes gets their
 * payload bytes. Refused ones are counted. */
unsigned client_capture_send(struct client_capture *cap, const struct iovec *payload,
			     const struct sockaddr_in *from, const struct sockaddr_in *to, unsigned n,
			     uint64_t *bytes);

/* The IPv4 and UDP headers of a datagram of len payload bytes, checksums included. */
void client_capture_build_hdr(struct client_capture_hdr *h, const struct sockaddr_in *from,
			      const struct sockaddr_in *to, const void *payload, size_t len);

/* Match the sockets of process pid: its cgroup v2 when it has one of its own (not the
 * root), else its uid. 0, or -1 with a message (no such process). describe gets what
 * was chosen ("cgroup /user.slice/... (level 3)" or "uid 1000"). */
int client_capture_match_pid(struct client_capture_match *m, pid_t pid, char *describe,
			     size_t dlen, char *err, size_t errlen);

#endif
