/* One result-code enum for every control interface, with its string table and its HTTP
 * status, mapped in exactly one place (result.c). */
#ifndef LS_RESULT_H
#define LS_RESULT_H

enum ls_rc {
	LS_RC_OK = 0,
	LS_RC_BAD_JSON,        /* the line or body is not JSON */
	LS_RC_BAD_REQUEST,     /* JSON, but not a request of the right shape */
	LS_RC_UNKNOWN_COMMAND, /* no such command or route */
	LS_RC_INVALID,         /* an argument is missing or out of range */
	LS_RC_NOT_FOUND,       /* the named object does not exist */
	LS_RC_EXISTS,          /* the object exists already */
	LS_RC_CONFLICT,        /* the request contradicts current state */
	LS_RC_FULL,            /* a table or limit is full */
	LS_RC_TOO_LONG,        /* the request exceeds the size limit */
	LS_RC_METHOD,          /* wrong method for the route */
	LS_RC_NOT_READY,       /* cannot answer yet */
	LS_RC_INTERNAL,        /* a fault of ours */
	LS_RC_UNAUTHORIZED,    /* no credentials, or wrong ones */
	LS_RC_FORBIDDEN,       /* credentials fine, but this request is not allowed */
	LS_RC_TIMEOUT,         /* no answer in time from the component behind */
	LS_RC__COUNT
};

/* "bad_json", "bad_request", ... */
const char *ls_rc_code(enum ls_rc rc);
/* 200, 400, 401, 403, 404, 405, 409, 413, 503, 500, 504. */
int ls_rc_http_status(enum ls_rc rc);
/* The code back from its string ("not_found" -> LS_RC_NOT_FOUND); a string no code has
 * (a newer peer's) is LS_RC_INTERNAL. */
enum ls_rc ls_rc_from_code(const char *code);

#endif
