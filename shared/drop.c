/* Drop reasons (docs/protocol.md 1.7). */
#include "drop.h"

#include "proto.h"

#define BOTH (LS_DROP_PROXY | LS_DROP_CLIENT)

const char *const ls_drop_names[LS_DROP__COUNT] = {
	[LS_DROP_MALFORMED] = "malformed",
	[LS_DROP_BAD_VERSION] = "bad_version",
	[LS_DROP_FEC_RANGE] = "fec_range",
	[LS_DROP_OVERSIZE] = "oversize",
	[LS_DROP_UNAUTHENTICATED] = "unauthenticated",
	[LS_DROP_UNKNOWN_SESSION] = "unknown_session",
	[LS_DROP_BAD_TAG] = "bad_tag",
	[LS_DROP_REPLAY] = "replay",
	[LS_DROP_DUPLICATES] = "duplicates",
	[LS_DROP_DENIED_DESTINATION] = "denied_destination",
	[LS_DROP_NOT_ALLOWED] = "not_allowed",
	[LS_DROP_RATE_LIMITED] = "rate_limited",
	[LS_DROP_SESSION_LIMIT] = "session_limit",
	[LS_DROP_FLOW_LIMIT] = "flow_limit",
	[LS_DROP_UNVALIDATED_LIMIT] = "unvalidated_limit",
	[LS_DROP_UNEXPECTED_SOURCE] = "unexpected_source",
	[LS_DROP_UNKNOWN_FLOW] = "unknown_flow",
	[LS_DROP_HANDSHAKE] = "handshake",
	[LS_DROP_NO_ROUTE] = "no_route",
	[LS_DROP_SEND_ERROR] = "send_error",
};

const unsigned char ls_drop_sides[LS_DROP__COUNT] = {
	[LS_DROP_MALFORMED] = BOTH,
	[LS_DROP_BAD_VERSION] = BOTH,
	[LS_DROP_FEC_RANGE] = BOTH,
	[LS_DROP_OVERSIZE] = BOTH,
	[LS_DROP_UNAUTHENTICATED] = BOTH,
	[LS_DROP_UNKNOWN_SESSION] = BOTH,
	[LS_DROP_BAD_TAG] = BOTH,
	[LS_DROP_REPLAY] = BOTH,
	[LS_DROP_DUPLICATES] = BOTH,
	[LS_DROP_DENIED_DESTINATION] = LS_DROP_PROXY,
	[LS_DROP_NOT_ALLOWED] = LS_DROP_PROXY,
	[LS_DROP_RATE_LIMITED] = LS_DROP_PROXY,
	[LS_DROP_SESSION_LIMIT] = LS_DROP_PROXY,
	[LS_DROP_FLOW_LIMIT] = LS_DROP_PROXY,
	[LS_DROP_UNVALIDATED_LIMIT] = LS_DROP_PROXY,
	[LS_DROP_UNEXPECTED_SOURCE] = BOTH,
	[LS_DROP_UNKNOWN_FLOW] = LS_DROP_CLIENT,
	[LS_DROP_HANDSHAKE] = LS_DROP_CLIENT,
	[LS_DROP_NO_ROUTE] = LS_DROP_CLIENT,
	[LS_DROP_SEND_ERROR] = BOTH,
};

enum ls_drop ls_drop_from_decode(int err)
{
	switch (err) {
	case LS_PE_VERSION:
		return LS_DROP_BAD_VERSION;
	case LS_PE_FEC_RANGE:
		return LS_DROP_FEC_RANGE;
	case LS_PE_OVERSIZE:
		return LS_DROP_OVERSIZE;
	default: /* LS_PE_SHORT, LS_PE_FLAGS, LS_PE_KIND */
		return LS_DROP_MALFORMED;
	}
}
