/* lightspeed-agent: the sessions this agent issued. A table by id (hashed: a node may
 * hold thousands), each with its key, its destinations, the connection that holds it
 * (none while detached: its controller went away and may come back to resume it), and
 * whether the proxy holds it. Kept in the state directory (`sessions`, 0600: it holds
 * keys) so that a restarted agent adopts what the proxy still forwards and re-adds what
 * a proxy restarted meanwhile lost. No I/O but that file; no steering, no QUIC. */
#ifndef LS_AGENT_SESSIONS_H
#define LS_AGENT_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "ctlmsg.h"

struct session {
	uint32_t id;
	uint8_t key[LS_CTL_KEY_LEN];
	uint8_t game_id;
	uint8_t ndests;
	struct ls_dest dests[LS_CTL_MAX_DESTS];
	void *owner;           /* the connection holding it (ctl.c's); NULL: detached */
	uint32_t addr;         /* the controller's address (network order) when it last
	                          registered or resumed it; 0 for one loaded from the file */
	uint64_t detached_us;  /* ls_now_us() when it lost its owner */
	bool at_proxy;         /* the proxy confirmed session_add */
	bool adding;           /* a session_add is in flight */
	bool revoking;         /* ended: kept until the proxy confirms session_del */
	bool gone;             /* removed while a request about it was in flight */
	unsigned refs;         /* requests in flight naming it (keeps the memory) */
	struct session *hnext, *prev, *next;
};

struct sessions {
	struct session **tab;
	size_t nbuckets;
	struct session *head;
	size_t n;
	char path[1100];       /* the state file; "" keeps nothing */
	bool dirty;
};

int sessions_init(struct sessions *t, const char *state_dir);
void sessions_free(struct sessions *t);
struct session *sessions_find(const struct sessions *t, uint32_t id);
/* A new session (id not in use), detached, not at the proxy. NULL when out of memory. */
struct session *sessions_add(struct sessions *t, uint32_t id, const uint8_t key[LS_CTL_KEY_LEN],
			     uint8_t game_id, const struct ls_dest *dests, uint8_t ndests);
/* Take it out of the table; the memory stays while refs > 0 (then sessions_unref). */
void sessions_remove(struct sessions *t, struct session *s);
void sessions_unref(struct session *s);
bool sessions_taken(void *t, uint32_t id); /* for keys_new */

/* The state file: write it when dirty (0 or -1 with err); load it into the table as
 * detached sessions (the count, or -1 with err; a bad line is skipped, counted in
 * *skipped). */
int sessions_save(struct sessions *t, char *err, size_t errlen);
int sessions_load(struct sessions *t, uint64_t now_us, unsigned *skipped, char *err,
		  size_t errlen);

#endif
