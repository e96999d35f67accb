/* lightspeed-agent: what each control request does (docs/protocol.md section 2), and
 * the session lifecycle around it. REGISTER issues a session (or resumes one the agent
 * holds, proven by its key) and answers only once the proxy holds it; DISCONNECT
 * revokes it at the proxy before it is answered; a connection that closes cleanly
 * takes its session with it, one that goes silent (idle timeout, reset, a controller
 * restarting) leaves it detached for `resume_grace` seconds, then it is revoked. When
 * the proxy's steering socket comes (back) up, every session the agent holds and the
 * proxy lacks is added again, and what the proxy still holds is adopted. */
#ifndef LS_AGENT_CTL_H
#define LS_AGENT_CTL_H

#include <jansson.h>

#include "agent.h"
#include "quic_server.h"

extern const struct qs_ops ctl_qs_ops;

/* The proxy link (pxlink_ops). */
void ctl_proxy_up(void *agent, json_t *sessions);
void ctl_proxy_down(void *agent, const char *why);
void ctl_proxy_session_down(void *agent, uint32_t id, const char *reason);

/* Once a second: sessions past their grace. */
void ctl_tick(struct agent *a);
/* The session count, the capacity and the load the agent reports. */
uint32_t ctl_capacity(const struct agent *a);
uint32_t ctl_active(const struct agent *a);
/* Free the connections' state after qs_close (shutdown). */
void ctl_free(struct agent *a);
/* Mark the state file for writing (a short timer writes it). */
void ctl_dirty(struct agent *a);

#endif
