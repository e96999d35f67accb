/* lightspeed-agent: the link to the proxy's steering socket (docs/protocol.md 3.1),
 * through the shared steering client on the loop. It comes back by itself after a
 * proxy restart (the steering client's backoff), and each time it is up it reads the
 * proxy's status (data port, max_sessions) and its sessions and hands them to the
 * agent, which re-adds what the proxy lost and adopts what it holds. It subscribes to
 * the proxy's events: session_down (the agent's sessions that the proxy dropped) and
 * the counters every second (kept for /health and /metrics). */
#ifndef LS_AGENT_PXLINK_H
#define LS_AGENT_PXLINK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "result.h"
#include "sessions.h"

struct pxlink;

struct pxlink_ops {
	/* Connected and read: sessions is the proxy's `sessions` array (borrowed). */
	void (*up)(void *ctx, json_t *sessions);
	void (*down)(void *ctx, const char *why);
	/* The proxy ended a session (reason "fin", "idle", "deleted"). */
	void (*session_down)(void *ctx, uint32_t id, const char *reason);
};

/* The answer to pxlink_add / pxlink_del: rc LS_RC_OK, or the error (code as the proxy
 * or the steering client said it, and its message). */
typedef void (*pxlink_done)(void *ud, enum ls_rc rc, const char *code, const char *msg);

struct pxlink *pxlink_open(uv_loop_t *loop, const char *path, const struct pxlink_ops *ops,
			   void *ctx, char *err, size_t errlen);
void pxlink_close(struct pxlink *p);

/* Up and read (status and sessions known). */
bool pxlink_ready(const struct pxlink *p);
/* From the proxy's status: its tunnel port and max_sessions (0 before the first). */
uint16_t pxlink_data_port(const struct pxlink *p);
int64_t pxlink_max_sessions(const struct pxlink *p);
/* The proxy's latest `stats` object (counters event), or NULL (borrowed). */
json_t *pxlink_stats(const struct pxlink *p);

/* session_add of s with its key and destinations and the limits; done is called
 * once (never from inside this call) unless this returns non-OK. */
enum ls_rc pxlink_add(struct pxlink *p, const struct session *s, uint64_t pps, uint64_t bps,
		      pxlink_done done, void *ud);
enum ls_rc pxlink_del(struct pxlink *p, uint32_t id, pxlink_done done, void *ud);

#endif
