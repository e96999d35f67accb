/* lightspeed-agent: what a session is given. A session id and a 128-bit key straight
 * from the kernel's CSPRNG (getrandom; an id is 32 random bits, never 0, never one in
 * use), and its destinations: those the controller asked for when each lies within the
 * node's policy (`destinations`) and outside the denied ranges (unless `allow`s), or,
 * when it asked for none, the policy's entries for its game's ports. Pure but for
 * getrandom: no I/O, no logging. */
#ifndef LS_AGENT_KEYS_H
#define LS_AGENT_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "agent_conf.h"
#include "ctlmsg.h"

/* A new id and key; taken(ctx, id) says whether an id is in use. 0, or -1 (getrandom
 * failed, or no free id after many tries). */
int keys_new(uint32_t *id, uint8_t key[LS_CTL_KEY_LEN], bool (*taken)(void *ctx, uint32_t id),
	     void *ctx);

/* The destinations of a session: LS_CTL_OK-style 0 with out/nout, or an enum
 * ls_ctl_code (LS_CTL_E_DENIED, LS_CTL_E_LIMIT) with a message saying which. */
int keys_dests(const struct agent_dests *policy, const struct ls_allowlist *allow, uint8_t game_id,
	       const struct ls_dest *req, uint8_t nreq, struct ls_dest *out, uint8_t *nout,
	       char *msg, size_t msglen);

/* Does the policy cover d (its whole address range and port range)? */
bool keys_dest_allowed(const struct agent_dests *policy, const struct ls_dest *d);

/* Constant-time comparison of two keys. */
bool keys_equal(const uint8_t a[LS_CTL_KEY_LEN], const uint8_t b[LS_CTL_KEY_LEN]);

#endif
