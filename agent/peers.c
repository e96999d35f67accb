/* lightspeed-agent: peer exchange (peers.h). */
#include "peers.h"

#include <arpa/inet.h>
#include <string.h>

void peers_answer(const struct agent_conf *conf, struct ls_ctl_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = LS_CTL_PEERS;
	for (uint32_t i = 0; i < conf->npeers && i < LS_CTL_MAX_PEERS; i++) {
		const struct agent_peer *p = &conf->peers[i];
		struct ls_ctl_peer *o = &m->u.peers.p[m->u.peers.n++];

		memcpy(o->name, p->name, sizeof(o->name));
		memcpy(o->region, p->region, sizeof(o->region));
		o->ip = ntohl(p->addr.sin_addr.s_addr);
		o->data_port = ntohs(p->addr.sin_port);
		o->control_port = (uint16_t)p->control_port;
		o->has_fp = p->has_fp;
		memcpy(o->fp, p->fp, sizeof(o->fp));
	}
}
