/* lightspeed-proxy: what the proxy's files share — the configuration, the process
 * context, the drop reasons and the counters (docs/protocol.md sections 1 and 3.1). */
#ifndef LS_PROXY_H
#define LS_PROXY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "auth.h"
#include "conf.h"
#include "drop.h"
#include "log.h"
#include "steer.h"
#include "proxy_session.h"

/* Read without -c when it exists. */
#define PX_DEFAULT_CONFIG "/etc/lightspeed/proxy.toml"

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

struct px_counters {
	uint64_t rx_packets, rx_bytes;
	uint64_t forwarded_packets, forwarded_bytes;
	uint64_t reply_packets, reply_bytes;
	uint64_t relayed_packets, relayed_bytes;         /* a relay's, to next hops (1.9) */
	uint64_t relay_reply_packets, relay_reply_bytes; /* from next hops to clients */
	uint64_t tx_packets, tx_bytes;
	uint64_t keepalives, keepalives_unanswered;
	uint64_t sessions_created, sessions_expired;
	uint64_t drops[LS_DROP__COUNT];
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

/* An optional per-session FEC setting: absent follows what the client asks. */
struct px_opt_fec {
	struct dp_fec_setting v;
	bool set;
};

/* One [[session]] of the config file: a static session for nodes without an agent. */
struct px_static {
	struct px_static *next;
	int64_t id;
	struct px_key key;
	struct px_dest_list dests;
	struct px_opt_rate pps, bps;
	struct px_opt_fec fec;
	struct ls_conf_at at; /* its [[session]] header, for errors found after loading */
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
/* Warn about each [[session]] destination in a denied range that allow does not cover
 * (its packets would be dropped): to stderr with --check, else to the log. */
void px_conf_warn(const struct px_conf *c, bool to_stderr);
/* The effective configuration, TOML-like, on stdout (keys are not shown). */
void px_conf_print(const struct px_conf *c);
void px_conf_free(struct px_conf *c);

/* ---- the process ----------------------------------------------------------------- */

/* A drop with no session to charge, as last seen, for the log (proxy_warn.c). */
struct px_note {
	uint64_t count;        /* since the last log line */
	struct sockaddr_in peer;
	uint32_t session_id;   /* what the datagram named; 0: none */
	struct ls_ratelog rl;
};

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
	struct ls_prf prf;        /* validation nonces and handshake cookies (1.6, 1.8) */
	struct ls_ratelog rl_warn;  /* outside-input problems */
	struct ls_ratelog rl_sess;  /* session up/down caused by packets */
	/* Drops the packet path noted for the loop to log: sessions with new reasons,
	 * and per reason the peer of the latest drop no session was charged for. */
	struct px_session *warn_list;
	struct px_note notes[LS_DROP__COUNT];
	/* Flows with an open FEC block or held-back parity, and the earliest deadline
	 * among them (0: none): the loop's wait ends there. */
	struct px_flow *fec_pending;
	uint64_t fec_next_us;
	struct dp_fec_counters fec_ctr; /* parity sent, and what freed decoders counted */
	/* Events raised while a steering command runs wait here until ls_steer_run has
	 * returned: publishing may close a connection the server is still using. */
	bool in_steer;
	json_t *deferred;           /* [[name, data], ...] or NULL */
};

/* proxy_fwd.c: the packet paths. */
void px_tunnel_readable(struct px *p);
void px_flow_readable(struct px *p, struct px_flow *f);
/* Send what is queued (one sendmmsg per socket). */
void px_tx_flush(struct px *p);
/* The end of a loop turn: the queues go out, closed flows are shut, deleted sessions
 * freed, spare flows refilled, and what the packet path noted is logged. */
void px_turn_end(struct px *p);
/* Housekeeping: resend address-validation requests that went unanswered. */
void px_revalidate(struct px *p, struct px_session *s, uint64_t now);
/* Shutdown: a FIN to every session's validated client address. */
void px_send_fins(struct px *p);
/* Parity whose time has come (blocks closed by their time limit, parity held back). */
void px_fec_due(struct px *p, uint64_t now);

/* proxy_warn.c: what the packet path noted, logged at warn with what to do (the
 * first drop of each reason in a session, then at a rate limit). */
void px_warn_flush(struct px *p);

/* proxy_fec.c: each session's downstream FEC (docs/protocol.md 1.2, 3.1) and the
 * codecs' lifetimes. */
/* Make set the session's explicit setting, or with NULL follow the client's ask again.
 * -1 when out of memory. */
int px_fec_pin(struct px_session *s, const struct dp_fec_setting *set, uint64_t now);
/* A keepalive request from the client: its FEC ask and its report of our packets. */
void px_fec_client_request(struct px_session *s, const struct ls_keepalive *ka, uint64_t now);
/* The flow's encoder while the session's downstream FEC is on (made on first use), its
 * decoder (made on the first version-2 packet); NULL when off or out of memory. */
struct ls_fec_enc *px_fec_enc(struct px_session *s, struct px_flow *f);
struct ls_fec_dec *px_fec_dec(struct px_flow *f);
/* A flow closes: its codecs go (their counters kept), and it leaves the pending list. */
void px_fec_flow_close(struct px *p, struct px_flow *f);
/* A static session waits for a client again: the old client's ask goes. */
void px_fec_session_reset(struct px_session *s);
/* The setting in force ("off", "auto", "K:M"...), where it comes from, and what the
 * encoders use: the members "fec", "fec_source", "fec_down" of a session's object. */
void px_fec_session_write(const struct px_session *s, struct ls_jw *w);
/* The `fec` counters of stats: freed decoders and live ones. */
void px_fec_counters(const struct px *p, struct dp_fec_counters *out);

/* proxy_reload.c: SIGHUP. next was loaded and validated in full (name: its file);
 * what a running proxy can change is applied, the rest logged as needing a restart,
 * and next's contents move into p->conf. */
void px_reload(struct px *p, struct px_conf *next, const char *name);

/* proxy_ctl.c: the steering commands and events. */
extern const struct ls_steer_handler px_ctl_handlers[];
void px_ctl_counters_event(struct px *p);
/* Publish the events deferred during ls_steer_run (and free them when steering is gone). */
void px_ctl_flush_deferred(struct px *p);
void px_ctl_session_event(struct px *p, const struct px_session *s, const char *event,
			  const char *reason);

#endif
