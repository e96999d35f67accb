/* The control-frame codec (docs/protocol.md section 2): the messages between the
 * controller and a node's agent, carried one request per QUIC bidirectional stream.
 * One definition for both ends. Decoding never reads past the frame, never allocates,
 * and refuses every field out of range; encoding writes into a caller's buffer. */
#ifndef LS_CTLMSG_H
#define LS_CTLMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "addr.h"

#define LS_CTL_ALPN       "lightspeed-ctl/1"
#define LS_CTL_VERSION    1
#define LS_CTL_KEY_LEN    16
#define LS_CTL_FP_LEN     32   /* SHA-256 certificate fingerprint */
#define LS_CTL_HDR_LEN    3    /* u16 len + u8 type */
/* The longest frame either side sends (len counts type + body, so at most 65,535). */
#define LS_CTL_MAX_FRAME  (2 + 65535)
/* The longest request an agent reads; anything longer is answered `too_long`. */
#define LS_CTL_MAX_REQUEST 512
#define LS_CTL_NAME_MAX   31   /* node id, region, peer name: [A-Za-z0-9._-] */
#define LS_CTL_MAX_DESTS  16   /* destinations in one REGISTER or answer */
#define LS_CTL_MAX_LEGS   16   /* game servers in one SERVER_INFO */
#define LS_CTL_MAX_PEERS  32   /* nodes in one PEERS answer */
#define LS_CTL_MAX_MSG    255  /* bytes of an ERROR's message */
#define LS_CTL_RTT_NONE   0xffffffffu /* a leg not measured (no answer yet) */

enum ls_ctl_type {
	LS_CTL_PING = 0x01,
	LS_CTL_PONG = 0x02,
	LS_CTL_REGISTER = 0x03,
	LS_CTL_REGISTER_ACK = 0x04,
	LS_CTL_DISCONNECT = 0x05,
	LS_CTL_SERVER_INFO = 0x06, /* empty: the request; with a body: the answer */
	LS_CTL_ALLOW = 0x07,
	LS_CTL_ALLOW_ACK = 0x08,
	LS_CTL_PEERS = 0x09,       /* empty: the request; with a body: the answer */
	LS_CTL_ERROR = 0x7f,
};

/* DISCONNECT reasons (PROTOCOL.md section 2); also the application error code of a
 * CONNECTION_CLOSE the agent sends. */
enum ls_ctl_reason {
	LS_CTL_R_NORMAL = 0,
	LS_CTL_R_TIMEOUT = 1,
	LS_CTL_R_SHUTDOWN = 2,
	LS_CTL_R_FULL = 3,         /* rate limited or full */
	LS_CTL_R_AUTH = 4,
};

/* ERROR codes. */
enum ls_ctl_code {
	LS_CTL_E_MALFORMED = 1,      /* the frame does not decode; the stream is closed */
	LS_CTL_E_UNKNOWN_TYPE = 2,   /* not a request this end answers */
	LS_CTL_E_VERSION = 3,        /* REGISTER of a protocol version not spoken */
	LS_CTL_E_NOT_REGISTERED = 4, /* the request needs a session on this connection */
	LS_CTL_E_REGISTERED = 5,     /* the connection holds a session already */
	LS_CTL_E_UNKNOWN_SESSION = 6,/* resume of a session the agent does not hold */
	LS_CTL_E_DENIED = 7,         /* a destination the node does not serve */
	LS_CTL_E_UNAVAILABLE = 8,    /* the proxy is not reachable now: try again */
	LS_CTL_E_LIMIT = 9,          /* too many destinations for the session */
	LS_CTL_E_TOO_LONG = 10,      /* the request is longer than LS_CTL_MAX_REQUEST */
	LS_CTL_E_INTERNAL = 11,
	LS_CTL_E__MAX = 11,
};

/* Direction: what the receiver expects. An agent decodes requests, a controller
 * decodes answers. */
enum ls_ctl_dir { LS_CTL_TO_AGENT, LS_CTL_TO_CONTROLLER };

/* Decode results. */
enum ls_ctl_err {
	LS_CTL_OK = 0,
	LS_CTL_ERR_SHORT = -1,    /* fewer bytes than the frame needs */
	LS_CTL_ERR_MALFORMED = -2,/* a field out of range, or bytes left over */
	LS_CTL_ERR_TYPE = -3,     /* a type not expected in this direction */
};
const char *ls_ctl_strerror(int err);

struct ls_ctl_leg {
	uint32_t ip;          /* game server, host order */
	uint32_t rtt_us;      /* the node's ICMP echo RTT to it, or LS_CTL_RTT_NONE */
};

struct ls_ctl_peer {
	char name[LS_CTL_NAME_MAX + 1];
	char region[LS_CTL_NAME_MAX + 1];
	uint32_t ip;          /* host order */
	uint16_t data_port, control_port;
	bool has_fp;
	uint8_t fp[LS_CTL_FP_LEN];
};

struct ls_ctl_msg {
	uint8_t type;         /* enum ls_ctl_type */
	bool query;           /* SERVER_INFO / PEERS: the empty request form */
	union {
		struct { uint64_t client_ts_us; } ping;
		struct { uint64_t client_ts_us, server_ts_us; } pong;
		struct {
			uint8_t version, game_id;
			bool resume;           /* take over a session held by the agent */
			uint32_t session_id;   /* with resume */
			uint8_t key[LS_CTL_KEY_LEN];
			uint8_t ndests;        /* 0: the node's default destinations */
			struct ls_dest dests[LS_CTL_MAX_DESTS];
		} reg;
		struct {
			uint32_t session_id;
			uint8_t token;
			char node_id[LS_CTL_NAME_MAX + 1];
			char region[LS_CTL_NAME_MAX + 1];
			uint8_t key[LS_CTL_KEY_LEN];
			uint16_t data_port;
			uint8_t ndests;
			struct ls_dest dests[LS_CTL_MAX_DESTS];
		} ack;
		struct { uint8_t reason; } disc;
		struct {
			uint8_t load_pct;
			uint32_t active, capacity;
			uint8_t nlegs;
			struct ls_ctl_leg legs[LS_CTL_MAX_LEGS];
		} info;
		struct ls_dest allow;
		struct {
			uint8_t ndests;
			struct ls_dest dests[LS_CTL_MAX_DESTS];
		} allow_ack;
		struct {
			uint8_t n;
			struct ls_ctl_peer p[LS_CTL_MAX_PEERS];
		} peers;
		struct {
			uint8_t code;          /* enum ls_ctl_code */
			char msg[LS_CTL_MAX_MSG + 1];
		} err;
	} u;
};

/* The whole frame's length from its first bytes: 0 with *need set (LS_CTL_HDR_LEN + the
 * body), or LS_CTL_ERR_SHORT when fewer than 2 bytes are there, or
 * LS_CTL_ERR_MALFORMED when len is 0 (a frame holds at least its type). */
int ls_ctl_frame_len(const uint8_t *buf, size_t n, size_t *need);

/* Decode exactly one frame of n bytes (the frame's own length; bytes after it are the
 * caller's concern) for a receiver of direction dir. */
int ls_ctl_decode(const uint8_t *buf, size_t n, enum ls_ctl_dir dir, struct ls_ctl_msg *m);

/* Encode m into buf; the frame's length, or -1 when it does not fit in cap or a field
 * is out of range (a name not of [A-Za-z0-9._-], more entries than the maximum). */
long ls_ctl_encode(const struct ls_ctl_msg *m, uint8_t *buf, size_t cap);

/* Convenience constructors of the small messages. */
void ls_ctl_error(struct ls_ctl_msg *m, enum ls_ctl_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Names for logs and tests: "PING", ...; "malformed", ...; "normal", ... */
const char *ls_ctl_type_name(uint8_t type);
const char *ls_ctl_code_name(uint8_t code);
const char *ls_ctl_reason_name(uint8_t reason);

/* A name is 1..LS_CTL_NAME_MAX bytes of [A-Za-z0-9._-]. */
bool ls_ctl_name_ok(const char *s);

/* Fingerprints: "sha256:" and 64 hex digits (what the agent prints), parsed also with
 * colons between bytes and in either case (what openssl prints). */
#define LS_CTL_FP_STRLEN (7 + 2 * LS_CTL_FP_LEN + 1)
void ls_ctl_fp_fmt(const uint8_t fp[LS_CTL_FP_LEN], char out[LS_CTL_FP_STRLEN]);
int ls_ctl_fp_parse(const char *s, uint8_t fp[LS_CTL_FP_LEN]);

#endif
