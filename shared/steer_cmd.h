/* Steering command definitions (docs/protocol.md section 3): every command of every
 * steering socket, its arguments (key, JSON type, range, required or not) and its help,
 * written once. The servers refuse a request that does not fit its definition before a
 * handler runs; clients check theirs before sending; `help` is generated from them. */
#ifndef LS_STEER_CMD_H
#define LS_STEER_CMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "result.h"

/* The JSON types an argument may take: a bit set. */
#define LS_SA_STRING  0x01u /* a string */
#define LS_SA_INT     0x02u /* an integer */
#define LS_SA_BOOL    0x04u /* true or false */
#define LS_SA_NULL    0x08u /* null, which a handler reads as "absent" */
#define LS_SA_STRINGS 0x10u /* an array of strings */

struct ls_steer_arg {
	const char *key;
	unsigned types;   /* LS_SA_* */
	bool required;    /* the key must be present (null counts when LS_SA_NULL is set) */
	/* Integers: the value's range; strings: the length in bytes; arrays: the number of
	 * items. Both 0: no bound. */
	int64_t min, max;
	const char *const *choices; /* strings: the only values allowed (ends with NULL) */
	const char *help;
};

struct ls_steer_def {
	const char *name;
	const struct ls_steer_arg *args; /* ends with a {NULL} entry; NULL: no arguments */
	const char *help;
};

/* Every steering server has these two built in (steer.c runs them). */
#define LS_STEER_CMD_HELP "help"
#define LS_STEER_CMD_SUBSCRIBE "subscribe"
extern const struct ls_steer_arg ls_steer_cmd_help_args[];
#define LS_STEER_CMD_BUILTINS                                                                \
	{ LS_STEER_CMD_HELP, ls_steer_cmd_help_args,                                        \
	  "the commands and their arguments (all, or the one named by command)" },          \
	{ LS_STEER_CMD_SUBSCRIBE, NULL,                                                      \
	  "turn this connection into an event stream (requests are still answered)" }

/* The tables of the two dataplanes, each ending with a {NULL} entry. */
extern const struct ls_steer_def ls_steer_cmd_proxy[];  /* lightspeed-proxy, 3.1 */
extern const struct ls_steer_def ls_steer_cmd_client[]; /* lightspeed-client, 3.2 */

/* The definition named name, or NULL. */
const struct ls_steer_def *ls_steer_cmd_find(const struct ls_steer_def *defs, const char *name);
/* Check a request object's arguments against def ("id" and "cmd" are always allowed):
 * LS_RC_OK, or LS_RC_INVALID with a message naming the key and what it must be (an
 * unknown key, a wrong type, a value out of range, a required key missing). */
enum ls_rc ls_steer_cmd_check(const struct ls_steer_def *def, json_t *req, char *msg,
			      size_t msglen);
/* {"commands":[{"cmd","help","args":[{"key","type","required","help"}...]}...]} for
 * every definition, or for the one named only (NULL: all; not found: NULL). */
json_t *ls_steer_cmd_help(const struct ls_steer_def *defs, const char *only);
/* What an argument must be, in words: "an integer in 1..4294967295", "\"json\" or
 * \"prometheus\"", "a string of 32 bytes, or null". */
void ls_steer_cmd_describe(const struct ls_steer_arg *a, char *buf, size_t len);

#endif
