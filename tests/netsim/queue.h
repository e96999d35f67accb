/* The delay queue: a preallocated pool of packet slots and a binary min-heap of the
 * ones scheduled, keyed by (send time, arrival order). Nothing is allocated per packet:
 * when the pool is empty the caller counts a queue_full drop. */
#ifndef NS_QUEUE_H
#define NS_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_SLOT_SMALL 2048u   /* covers every ordinary datagram (MTU-sized and below) */
#define NS_SLOT_LARGE 65536u  /* the largest UDP payload fits */
#define NS_QUEUE_CAP_DEFAULT 65536u
#define NS_QUEUE_LARGE_DEFAULT 512u

#define NS_PKT_HELD 0x1 /* waiting for a successor (reorder), not yet re-keyed */

struct ns_pkt {
	uint64_t t;     /* send time, CLOCK_MONOTONIC nanoseconds */
	uint64_t order; /* tie-break: equal times leave in scheduling order */
	uint8_t *data;
	uint32_t len;
	uint32_t client, gen; /* the client table slot and its generation */
	int32_t hpos;         /* index in the heap, -1 when not in it */
	uint8_t dir;
	uint8_t flags;
	bool large;
};

struct ns_queue {
	struct ns_pkt *pkts; /* cap_small small slots, then cap_large large ones */
	uint32_t cap_small, cap_large;
	uint32_t *free_small, nfree_small;
	uint32_t *free_large, nfree_large;
	uint32_t *heap, n;
	uint8_t *arena;
	size_t arena_len;
	uint64_t next_order;
};

/* Reserve the pool (address space only; pages are touched as they are used).
 * Return 0 or -1 (errno). */
int ns_queue_init(struct ns_queue *q, uint32_t cap_small, uint32_t cap_large);
void ns_queue_free_all(struct ns_queue *q);

/* A free slot able to hold len bytes, or -1 when none is left. */
int32_t ns_queue_alloc(struct ns_queue *q, size_t len);
void ns_queue_release(struct ns_queue *q, int32_t i);

/* Insert slot i (its t set) with the next arrival order; remove it again. */
void ns_queue_push(struct ns_queue *q, int32_t i);
void ns_queue_remove(struct ns_queue *q, int32_t i);
/* The earliest slot, or -1 when the queue is empty. */
static inline int32_t ns_queue_top(const struct ns_queue *q)
{
	return q->n ? (int32_t)q->heap[0] : -1;
}

#endif
