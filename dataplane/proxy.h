/* lightspeed-proxy: what the proxy's files share — the configuration, the process
 * context, the drop reasons and the counters (docs/protocol.md sections 1 and 3.1). */
#ifndef LS_PROXY_H
#define LS_PROXY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "auth.h"
#include "log.h"
#include "steer.h"
#include "proxy_session.h"

#ifndef LS_VERSION
#define LS_VERSION "0.1.0"
#endif

#define PX_PROG "lightspeed-proxy"

/* Limits on configuration values (also the ranges --check and steering enforce). */
#define PX_MAX_DESTS        64      /* destinations per session */
#define PX_IDLE_MAX         86400   /* seconds */
#define PX_SESSIONS_MAX     1000000
#define PX_FLOWS_MAX        256
#define PX_RATE_MAX         INT64_MAX

/* ---- drop reasons (docs/protocol.md 1.7), one enum and its string table ---------- */

enum px_drop {
	PX_DROP_MALFORMED,
	PX_DROP_BAD_VERSION,
	PX_DROP_FEC_RANGE,
	PX_DROP_OVERSIZE,
	PX_DROP_UNAUTHENTICATED,
	PX_DROP_UNKNOWN_SESSION,
	PX_DROP_BAD_TAG,
	PX_DROP_REPLAY,
	PX_DROP_DENIED_DESTINATION,
	PX_DROP_NOT_ALLOWED,
	PX_DROP_RATE_LIMITED,
	PX_DROP_SESSION_LIMIT,
	PX_DROP_FLOW_LIMIT,
	PX_DROP_UNVALIDATED_LIMIT,
	PX_DROP_UNEXPECTED_SOURCE,
	PX_DROP_UNKNOWN_FLOW, /* a client-side reason; listed so stats shows all of 1.7 */
	PX_DROP_SEND_ERROR,
	PX_DROP__COUNT
};
extern const char *const px_drop_names[PX_DROP__COUNT];

struct px_counters {
	uint64_t rx_packets, rx_bytes;
	uint64_t forwarded_packets, forwarded_bytes;
	uint64_t reply_packets, reply_bytes;
	uint64_t tx_packets, tx_bytes;
	uint64_t keepalives, keepalives_unanswered;
	uint64_t sessions_created, sessions_expired;
	uint64_t drops[PX_DROP__COUNT];
};

/* ---- configuration (proxy_conf.c) ------------------------------------------------ */

/* An optional per-session rate: `set` tells "absent" from an explicit 0 (unlimited). */
struct px_opt_rate {
	uint64_t v;
	bool set;
};

struct px_key {
	uint8_t b[LS_KEY_LEN];
	bool set;
};

struct px_dest_list {
	struct ls_dest *v; /* malloc'd */
	size_t n;
};

/* One [[session]] of the config file: a static session for nodes without an agent. */
struct px_static {
	struct px_static *next;
	int64_t id;
	struct px_key key;
	struct px_dest_list dests;
	struct px_opt_rate pps, bps;
};

struct px_conf_main {
	struct sockaddr_in bind;
	char socket[108];
	bool require_auth;
	int64_t idle_timeout;
	int64_t max_sessions;
	int64_t max_flows;
	struct ls_allowlist allow;
	int log_level;
};

struct px_conf_limits {
	uint64_t pps, bps;
};

struct px_conf {
	struct px_conf_main proxy;
	struct px_conf_limits limits;
	struct px_static *statics; /* in file order */
	size_t nstatic;
};

void px_conf_defaults(struct px_conf *c);
/* Load path into c (already holding defaults): -1 with "file:line:col: message". */
int px_conf_load(struct px_conf *c, const char *path, char *err, size_t errlen);
/* What the schema cannot check, run after the command-line overrides: every
 * [[session]] complete, ids unique, room for them under max_sessions. */
int px_conf_validate(const struct px_conf *c, const char *name, char *err, size_t errlen);
/* The effective configuration, TOML-like, on stdout (keys are not shown). */
void px_conf_print(const struct px_conf *c);
void px_conf_free(struct px_conf *c);

/* ---- the process ----------------------------------------------------------------- */

enum px_ev_kind { PX_EV_TUNNEL, PX_EV_STEER, PX_EV_TIMER, PX_EV_SIGNAL, PX_EV_FLOW };

struct px {
	struct px_conf conf;
	int epfd, tun_fd, timer_fd, sig_fd;
	struct px_ev ev_tun, ev_steer, ev_timer, ev_sig;
	struct ls_steer *steer;
	struct px_table tab;
	struct px_counters ctr;
	struct sockaddr_in bound; /* the tunnel socket's actual address */
	uint64_t start_us;
	uint64_t rng;             /* xorshift64* state, seeded from getrandom */
	struct ls_ratelog rl_warn;  /* outside-input problems */
	struct ls_ratelog rl_sess;  /* session up/down caused by packets */
	/* Events raised while a steering command runs wait here until ls_steer_run has
	 * returned: publishing may close a connection the server is still using. */
	bool in_steer;
	json_t *deferred;           /* [[name, data], ...] or NULL */
};

uint64_t px_random(struct px *p);

/* proxy_fwd.c: the packet paths. */
void px_tunnel_readable(struct px *p);
void px_flow_readable(struct px *p, struct px_flow *f);
/* Send what is queued; must run before any flow socket is closed. */
void px_tx_flush(struct px *p);
/* Housekeeping: resend address-validation requests that went unanswered. */
void px_revalidate(struct px *p, struct px_session *s, uint64_t now);
/* Shutdown: a FIN to every session's validated client address. */
void px_send_fins(struct px *p);

/* proxy_ctl.c: the steering commands and events. */
extern const struct ls_steer_cmd px_ctl_cmds[];
void px_ctl_counters_event(struct px *p);
/* Publish the events deferred during ls_steer_run (and free them when steering is gone). */
void px_ctl_flush_deferred(struct px *p);
void px_ctl_session_event(struct px *p, const struct px_session *s, const char *event,
			  const char *reason);

#endif
