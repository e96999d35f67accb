/* The tunnel codec: base header, FEC extension, AUTH extension and trailer
 * (docs/protocol.md section 1). Decoding never reads past the datagram and never
 * allocates; encoding writes into a caller's buffer. */
#ifndef LS_PROTO_H
#define LS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LS_HDR_LEN       20
#define LS_FEC_EXT_LEN   4
#define LS_AUTH_ID_LEN   4
#define LS_TAG_LEN       8
#define LS_MAX_OVERHEAD  (LS_HDR_LEN + LS_FEC_EXT_LEN + LS_AUTH_ID_LEN + LS_TAG_LEN)
/* The largest game payload carried (a full 1500-byte IPv4 datagram's UDP payload). */
#define LS_MAX_PAYLOAD   1472
#define LS_MAX_DATAGRAM  (LS_MAX_PAYLOAD + LS_MAX_OVERHEAD)
/* A relay hop (version 3, docs/protocol.md 1.9) carries a whole tunnel datagram as its
 * payload, behind its own header, grant id and tag. */
#define LS_RELAY_OVERHEAD (LS_HDR_LEN + LS_AUTH_ID_LEN + LS_TAG_LEN)
#define LS_MAX_RELAY_DATAGRAM (LS_MAX_DATAGRAM + LS_RELAY_OVERHEAD)
/* Receive buffers are larger than any valid datagram so an oversized one is seen whole
 * enough to be counted, never silently cut. */
#define LS_RX_BUF        2048

#define LS_VER_PLAIN 1
#define LS_VER_FEC   2
#define LS_VER_RELAY 3 /* a relay hop: the payload is a tunnel datagram (1.9) */

#define LS_F_KEEPALIVE 0x1
#define LS_F_HANDSHAKE 0x2
#define LS_F_FIN       0x4
#define LS_F_AUTH      0x8

/* FEC block geometry limits (GF(2^8): k + m <= 255; we cap well below). */
#define LS_FEC_MAX_K 32
#define LS_FEC_MAX_M 16

/* Decode results: 0 or one of these (negative); each has a drop-counter name. */
enum ls_proto_err {
	LS_PE_OK = 0,
	LS_PE_SHORT = -1,      /* shorter than its headers */
	LS_PE_VERSION = -2,    /* unknown version */
	LS_PE_FEC_RANGE = -3,  /* FEC extension fields out of range */
	LS_PE_FLAGS = -4,      /* contradictory flags (HANDSHAKE without AUTH, ...) */
	LS_PE_OVERSIZE = -5,   /* larger than LS_MAX_DATAGRAM (LS_MAX_RELAY_DATAGRAM for a relay
				* hop), or a payload over LS_MAX_PAYLOAD (LS_MAX_DATAGRAM) */
	LS_PE_KIND = -6,       /* a keepalive of unknown kind */
};
const char *ls_proto_strerror(int err);

struct ls_hdr {
	uint8_t version;   /* LS_VER_PLAIN or LS_VER_FEC */
	uint8_t flags;     /* LS_F_* */
	uint8_t token;     /* low 8 bits of the session id, 0 without auth */
	uint16_t seq;
	uint32_t ts_us;
	uint32_t src_ip;   /* host byte order */
	uint32_t dst_ip;
	uint16_t src_port;
	uint16_t dst_port;
	/* FEC extension (version 2 only) */
	uint16_t fec_block;
	uint8_t fec_index;
	uint8_t fec_k;
	/* AUTH extension (flag AUTH only) */
	uint32_t session_id;
};

/* A decoded datagram: pointers into the caller's buffer. */
struct ls_pkt {
	struct ls_hdr h;
	const uint8_t *payload;
	size_t payload_len;
	size_t signed_len;   /* with AUTH: bytes covered by the tag (all before it) */
	const uint8_t *tag;  /* with AUTH: the 8-byte tag, else NULL */
};

/* Bytes of headers before the payload for this version and flags. */
size_t ls_hdr_len(uint8_t version, uint8_t flags);

/* Decode a datagram. Returns LS_PE_OK or a negative enum ls_proto_err. */
int ls_pkt_decode(const uint8_t *buf, size_t len, struct ls_pkt *out);

/* Encode headers (base, FEC ext if version 2, session id if AUTH) into buf, which must
 * hold ls_hdr_len() bytes. Returns the bytes written. The caller appends the payload
 * and, with AUTH, the tag (see ls_mac_sign in auth.h). */
size_t ls_hdr_encode(const struct ls_hdr *h, uint8_t *buf);

/* KEEPALIVE: the address fields carry the measurement and the FEC the sender asks of
 * its peer (docs/protocol.md 1.4); a request also names the role of the path it
 * travels (1.9), and a reply to a request with a role counts that path's packets. */
#define LS_KA_REQUEST 0
#define LS_KA_REPLY   1
#define LS_KA_FEC_OFF  0   /* fec_k: no FEC towards the sender */
#define LS_KA_FEC_AUTO 255 /* fec_k: the peer chooses from the sender's reports */
/* Path roles (the kind byte's high nibble in a request). */
#define LS_ROLE_ONLY   0   /* the session's only path (one path: roaming, 1.3) */
#define LS_ROLE_DATA   1   /* game replies go this way */
#define LS_ROLE_PARITY 2   /* FEC parity of the replies goes this way */
#define LS_ROLE_PROBE  3   /* keepalive answers only */
#define LS_ROLE_MAX    LS_ROLE_PROBE
struct ls_keepalive {
	uint32_t rx_count;   /* packets the sender has received from its peer (mod 2^32) */
	uint32_t rx_highest; /* highest extended seq received from the peer (mod 2^32) */
	uint8_t burst;       /* mean loss burst since the sender's previous keepalive, in
			      * 1/16 packet; 0 without loss, 255 for 15.9 or more */
	uint8_t kind;        /* LS_KA_REQUEST or LS_KA_REPLY */
	uint8_t role;        /* a request: LS_ROLE_* of the path it travels; a reply: 0 */
	uint8_t fec_k;       /* a request: LS_KA_FEC_OFF, 1..LS_FEC_MAX_K, or LS_KA_FEC_AUTO */
	uint8_t fec_m;       /* a request: with fec_k 1..LS_FEC_MAX_K the parity count; else 0 */
	uint16_t path_rx;    /* a reply (in place of fec_k, fec_m): packets received on the
			      * request's path, copies included (mod 2^16); 0 for role 0 */
};
void ls_keepalive_to_hdr(const struct ls_keepalive *ka, struct ls_hdr *h);
/* Returns LS_PE_OK, LS_PE_KIND (an unknown kind or role, or a role in a reply), or
 * LS_PE_FEC_RANGE for a request's FEC ask out of range (fec_k 33..254, or fec_m above
 * LS_FEC_MAX_M). */
int ls_keepalive_from_hdr(const struct ls_hdr *h, struct ls_keepalive *ka);

/* HANDSHAKE (docs/protocol.md 1.8): the address fields carry a kind and a 64-bit value
 * (the proxy's epoch). */
#define LS_HS_INIT    0
#define LS_HS_REPLY   1
#define LS_HS_CONFIRM 2
#define LS_HS_ACK     3
#define LS_HS_NONCE_LEN 16
/* INIT, REPLY and CONFIRM carry two nonce-sized fields, so no answer outgrows its
 * request. */
#define LS_HS_PAYLOAD_LEN (2 * LS_HS_NONCE_LEN)
struct ls_handshake {
	uint8_t kind;   /* LS_HS_* */
	uint64_t value; /* the proxy's epoch (REPLY, CONFIRM, ACK); 0 in an INIT */
};
void ls_handshake_to_hdr(const struct ls_handshake *hs, struct ls_hdr *h);
/* LS_PE_OK, or LS_PE_KIND for an unknown kind or nonzero reserved bytes. */
int ls_handshake_from_hdr(const struct ls_hdr *h, struct ls_handshake *hs);

/* What a receiver counts of its peer's packets for the reports its keepalives carry
 * (1.4): the packets, the highest extended seq, and the runs of missing seqs since its
 * previous keepalive. */
struct ls_rx_count {
	uint64_t top;      /* highest extended seq received */
	uint32_t count;    /* packets received (mod 2^32) */
	uint32_t gap_lost; /* seqs missing since the previous report */
	uint32_t gap_runs; /* the runs they form */
	bool any;
};
/* A packet that takes a seq arrived (echoes do not count). */
void ls_rx_note(struct ls_rx_count *r, uint64_t ext);
/* Fill ka's rx_count, rx_highest and burst; the burst measure starts over. */
void ls_rx_report(struct ls_rx_count *r, struct ls_keepalive *ka);

/* The previous report heard from the peer: loss is the growth between two reports. */
struct ls_rx_base {
	uint32_t count, highest;
	bool any;
};
/* Packets the peer expected and received since its previous report (received at most
 * expected). False for the first report and for one that does not move forward (a
 * reordered report, or a restarted peer): those only move the baseline. */
bool ls_rx_growth(struct ls_rx_base *b, const struct ls_keepalive *ka, uint32_t *expected,
		  uint32_t *received);

#endif
