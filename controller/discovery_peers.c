/* lightspeed-controller: nodes told by the agents (peer exchange, discovery.h). An agent
 * speaks for its peers only over a connection whose certificate passed its pin, and
 * each peer it names comes with the fingerprint its own agent must show. */
#include "discovery.h"

#include <arpa/inet.h>
#include <string.h>

void discovery_peers_take(const struct ls_ctl_msg *m, discovery_found_fn found, void *ctx)
{
	if (m->type != LS_CTL_PEERS || m->query)
		return;
	for (uint8_t i = 0; i < m->u.peers.n && i < LS_CTL_MAX_PEERS; i++) {
		const struct ls_ctl_peer *p = &m->u.peers.p[i];
		struct discovered d;

		memset(&d, 0, sizeof(d));
		memcpy(d.name, p->name, sizeof(d.name));
		memcpy(d.region, p->region, sizeof(d.region));
		d.addr.sin_family = AF_INET;
		d.addr.sin_addr.s_addr = htonl(p->ip);
		d.addr.sin_port = htons(p->data_port);
		d.control_port = p->control_port;
		d.has_fp = p->has_fp;
		memcpy(d.fp, p->fp, sizeof(d.fp));
		found(ctx, &d);
	}
}
