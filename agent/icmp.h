/* lightspeed-agent: the node's leg to each game server its sessions use, measured by
 * ICMP echo (a raw socket, which needs CAP_NET_RAW; else the kernel's unprivileged
 * ping socket where net.ipv4.ping_group_range allows it). Without either, it says so
 * once and every leg reads "not measured": the agent carries on. Targets are counted
 * references (one per session destination) and each is probed every interval; a
 * target that stops answering reads "not measured" again after a few intervals. */
#ifndef LS_AGENT_ICMP_H
#define LS_AGENT_ICMP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "hist.h"

struct icmp;

struct icmp_stats {
	uint64_t sent, replies, lost, targets;
};

/* interval_ms 0 turns measuring off. Never NULL but when out of memory. */
struct icmp *icmp_open(uv_loop_t *loop, uint32_t interval_ms);
void icmp_close(struct icmp *m);
/* Is a socket open (a permission was there)? */
bool icmp_active(const struct icmp *m);
const char *icmp_mode(const struct icmp *m); /* "raw", "ping socket", "off" */

void icmp_ref(struct icmp *m, uint32_t ip);   /* host order */
void icmp_unref(struct icmp *m, uint32_t ip);
/* Smoothed RTT to ip in microseconds, or LS_CTL_RTT_NONE (0xffffffff). */
uint32_t icmp_rtt_us(const struct icmp *m, uint32_t ip);

void icmp_get_stats(const struct icmp *m, struct icmp_stats *st);
/* Every RTT sample so far (for /metrics). */
const struct ls_hist *icmp_hist(const struct icmp *m);

#endif
