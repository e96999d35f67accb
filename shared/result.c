/* One result-code enum for every control interface, with its string table and its HTTP
 * status, mapped in exactly one place (result.c). */
#include "result.h"

#include <string.h>

static const struct {
	const char *code;
	int http;
} rc_table[LS_RC__COUNT] = {
	[LS_RC_OK] = { "ok", 200 },
	[LS_RC_BAD_JSON] = { "bad_json", 400 },
	[LS_RC_BAD_REQUEST] = { "bad_request", 400 },
	[LS_RC_UNKNOWN_COMMAND] = { "unknown_command", 404 },
	[LS_RC_INVALID] = { "invalid", 400 },
	[LS_RC_NOT_FOUND] = { "not_found", 404 },
	[LS_RC_EXISTS] = { "exists", 409 },
	[LS_RC_CONFLICT] = { "conflict", 409 },
	/* A full table is the server's state, not the client's fault or a rate: 503. */
	[LS_RC_FULL] = { "full", 503 },
	[LS_RC_TOO_LONG] = { "too_long", 413 },
	[LS_RC_METHOD] = { "method_not_allowed", 405 },
	[LS_RC_NOT_READY] = { "not_ready", 503 },
	[LS_RC_INTERNAL] = { "internal", 500 },
	[LS_RC_UNAUTHORIZED] = { "unauthorized", 401 },
	[LS_RC_FORBIDDEN] = { "forbidden", 403 },
	[LS_RC_TIMEOUT] = { "timeout", 504 },
};

/* An out-of-range value is a bug of ours, so it maps to the internal error. */
static int rc_valid(enum ls_rc rc)
{
	return (int)rc >= 0 && (int)rc < (int)LS_RC__COUNT && rc_table[rc].code;
}

const char *ls_rc_code(enum ls_rc rc)
{
	return rc_valid(rc) ? rc_table[rc].code : "internal";
}

int ls_rc_http_status(enum ls_rc rc)
{
	return rc_valid(rc) ? rc_table[rc].http : 500;
}

enum ls_rc ls_rc_from_code(const char *code)
{
	for (int i = 0; code && i < (int)LS_RC__COUNT; i++)
		if (rc_table[i].code && strcmp(rc_table[i].code, code) == 0)
			return (enum ls_rc)i;
	return LS_RC_INTERNAL;
}
