/* lightspeed-agent: the node's control plane. The state every role shares: the
 * configuration, the identity, the QUIC endpoint, the proxy link, the sessions, the
 * ICMP prober and the HTTP server, all on one libuv loop (no threads, no locks). */
#ifndef LS_AGENT_H
#define LS_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent_conf.h"
#include "cert.h"
#include "sessions.h"

#ifndef LS_VERSION
#define LS_VERSION "0.1.0"
#endif

struct qs;
struct pxlink;
struct icmp;
struct agent_http;
struct ctl_conn;

/* What the agent did, for /health and /metrics. */
struct agent_counters {
	uint64_t registrations;   /* sessions issued */
	uint64_t resumes;         /* sessions taken over by a new connection */
	uint64_t disconnects;     /* DISCONNECT from a controller */
	uint64_t refused_full;    /* REGISTER answered DISCONNECT 3: at capacity */
	uint64_t refused_addr;    /* ... : the address holds max_sessions_per_addr */
	uint64_t refused_other;   /* REGISTER answered with an error */
	uint64_t expired;         /* sessions ended after their connection (grace) */
	uint64_t closed;          /* sessions ended by their connection's clean close */
	uint64_t adopted;         /* sessions found at the proxy after a restart */
	uint64_t readded;         /* sessions the proxy had lost, added again */
	uint64_t proxy_connects;  /* the proxy's steering socket came (back) up */
	uint64_t resume_failures; /* resume of an unknown session or with a wrong key */
};

struct agent {
	uv_loop_t *loop;
	struct agent_conf conf;
	struct cert cert;
	struct qs *qs;
	struct pxlink *px;
	struct sessions sess;
	struct icmp *icmp;
	struct agent_http *http;
	uv_timer_t tick;          /* 1 s: sessions past their grace */
	uv_timer_t save;          /* the state file, shortly after a change */
	struct ctl_conn *conns;   /* every open QUIC connection's state (ctl.c) */
	uint64_t start_us;
	bool stopping;
	struct agent_counters ctr;
};

#endif
