/* lightspeed-agent: session ids, keys and destinations (keys.h). */
#include "keys.h"

#include <stdio.h>
#include <string.h>

#include "quic.h"

int keys_new(uint32_t *id, uint8_t key[LS_CTL_KEY_LEN], bool (*taken)(void *ctx, uint32_t id),
	     void *ctx)
{
	uint32_t v;

	/* With at most a million sessions among 2^32 ids, 64 draws never all collide
	 * unless getrandom is broken. */
	for (int i = 0; i < 64; i++) {
		if (ls_quic_random(&v, sizeof(v)) != 0)
			return -1;
		if (v != 0 && !taken(ctx, v)) {
			*id = v;
			return ls_quic_random(key, LS_CTL_KEY_LEN);
		}
	}
	return -1;
}

static bool cidr_within(const struct ls_cidr *in, const struct ls_cidr *outer)
{
	return in->len >= outer->len && (in->net & outer->mask) == outer->net;
}

bool keys_dest_allowed(const struct agent_dests *policy, const struct ls_dest *d)
{
	for (uint32_t i = 0; i < policy->n; i++) {
		const struct ls_dest *p = &policy->v[i];

		if (cidr_within(&d->cidr, &p->cidr) && d->port_lo >= p->port_lo &&
		    d->port_hi <= p->port_hi)
			return true;
	}
	return false;
}

/* The game profiles' server ports (README: Fortnite 7000-9000, CS2 and Dota 2
 * 27015-27050). */
static void game_ports(uint8_t game_id, uint16_t *lo, uint16_t *hi)
{
	switch (game_id) {
	case 1:
		*lo = 7000;
		*hi = 9000;
		break;
	case 2:
	case 3:
		*lo = 27015;
		*hi = 27050;
		break;
	default:
		*lo = 0;
		*hi = 65535;
	}
}

int keys_dests(const struct agent_dests *policy, const struct ls_allowlist *allow, uint8_t game_id,
	       const struct ls_dest *req, uint8_t nreq, struct ls_dest *out, uint8_t *nout,
	       char *msg, size_t msglen)
{
	char buf[64];
	uint16_t lo, hi;

	*nout = 0;
	if (nreq > LS_CTL_MAX_DESTS) {
		snprintf(msg, msglen, "at most %d destinations", LS_CTL_MAX_DESTS);
		return LS_CTL_E_LIMIT;
	}
	for (uint8_t i = 0; i < nreq; i++) {
		ls_dest_fmt(&req[i], buf, sizeof(buf));
		if (!keys_dest_allowed(policy, &req[i])) {
			snprintf(msg, msglen, "%s is not among the destinations this node serves",
				 buf);
			return LS_CTL_E_DENIED;
		}
		if (req[i].cidr.len == 32 && !ls_addr_permitted(allow, req[i].cidr.net)) {
			snprintf(msg, msglen, "%s is in a denied range (%s)", buf,
				 ls_addr_denied_range(req[i].cidr.net));
			return LS_CTL_E_DENIED;
		}
		out[(*nout)++] = req[i];
	}
	if (nreq > 0)
		return 0;
	game_ports(game_id, &lo, &hi);
	for (uint32_t i = 0; i < policy->n && *nout < LS_CTL_MAX_DESTS; i++) {
		struct ls_dest d = policy->v[i];

		if (d.port_hi < lo || d.port_lo > hi)
			continue;
		if (d.port_lo < lo)
			d.port_lo = lo;
		if (d.port_hi > hi)
			d.port_hi = hi;
		out[(*nout)++] = d;
	}
	if (*nout == 0) {
		snprintf(msg, msglen, "this node serves no destination on game %u's ports %u-%u",
			 game_id, lo, hi);
		return LS_CTL_E_DENIED;
	}
	return 0;
}

bool keys_equal(const uint8_t a[LS_CTL_KEY_LEN], const uint8_t b[LS_CTL_KEY_LEN])
{
	uint8_t d = 0;

	for (int i = 0; i < LS_CTL_KEY_LEN; i++)
		d |= (uint8_t)(a[i] ^ b[i]);
	return d == 0;
}
