/* Drop reasons of the tunnel (docs/protocol.md 1.7): one enum and one name table for
 * both dataplane processes, so a reason is spelt the same in every `stats`. */
#ifndef LS_DROP_H
#define LS_DROP_H

#include <stdbool.h>

enum ls_drop {
	LS_DROP_MALFORMED,
	LS_DROP_BAD_VERSION,
	LS_DROP_FEC_RANGE,
	LS_DROP_OVERSIZE,
	LS_DROP_UNAUTHENTICATED,
	LS_DROP_UNKNOWN_SESSION,
	LS_DROP_BAD_TAG,
	LS_DROP_REPLAY,
	LS_DROP_DUPLICATES,
	LS_DROP_DENIED_DESTINATION,
	LS_DROP_NOT_ALLOWED,
	LS_DROP_RATE_LIMITED,
	LS_DROP_SESSION_LIMIT,
	LS_DROP_FLOW_LIMIT,
	LS_DROP_UNVALIDATED_LIMIT,
	LS_DROP_UNEXPECTED_SOURCE,
	LS_DROP_UNKNOWN_FLOW,
	LS_DROP_HANDSHAKE,
	LS_DROP_NO_ROUTE,
	LS_DROP_SEND_ERROR,
	LS_DROP__COUNT
};

/* Which process counts a reason (the other never can, so its stats leave it out). */
enum ls_drop_side { LS_DROP_PROXY = 1, LS_DROP_CLIENT = 2 };

extern const char *const ls_drop_names[LS_DROP__COUNT];
/* LS_DROP_PROXY | LS_DROP_CLIENT bits per reason. */
extern const unsigned char ls_drop_sides[LS_DROP__COUNT];

static inline bool ls_drop_counted_by(enum ls_drop d, enum ls_drop_side side)
{
	return (ls_drop_sides[d] & side) != 0;
}

/* The reason for a decode error of ls_pkt_decode (proto.h). */
enum ls_drop ls_drop_from_decode(int err);

#endif
