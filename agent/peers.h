/* lightspeed-agent: peer exchange. The nodes this agent's operator configured
 * ([[peer]]: name, region, tunnel address, control port, certificate fingerprint),
 * told to a controller that asks with PEERS, so that it finds the other nodes of a
 * mesh from any one of them. The controller still pins and health-checks each before
 * it uses one. */
#ifndef LS_AGENT_PEERS_H
#define LS_AGENT_PEERS_H

#include "agent_conf.h"
#include "ctlmsg.h"

/* The PEERS answer of conf's peers. */
void peers_answer(const struct agent_conf *conf, struct ls_ctl_msg *m);

#endif
