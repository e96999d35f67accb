/* Slot pool and binary heap for scheduled sends. */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int ns_queue_init(struct ns_queue *q, uint32_t cap_small, uint32_t cap_large)
{
	uint32_t total = cap_small + cap_large;

	memset(q, 0, sizeof(*q));
	q->cap_small = cap_small;
	q->cap_large = cap_large;
	q->pkts = calloc(total, sizeof(*q->pkts));
	q->free_small = calloc(cap_small ? cap_small : 1, sizeof(uint32_t));
	q->free_large = calloc(cap_large ? cap_large : 1, sizeof(uint32_t));
	q->heap = calloc(total ? total : 1, sizeof(uint32_t));
	/* Reserved, not committed: a 65,536-slot pool costs memory only for the slots a
	 * test actually fills. */
	q->arena_len = (size_t)cap_small * NS_SLOT_SMALL + (size_t)cap_large * NS_SLOT_LARGE;
	q->arena = mmap(NULL, q->arena_len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (q->arena == MAP_FAILED)
		q->arena = NULL;
	if (!q->pkts || !q->free_small || !q->free_large || !q->heap || !q->arena) {
		ns_queue_free_all(q);
		errno = ENOMEM;
		return -1;
	}
	/* Free lists are stacks; filling them in reverse hands out low slots first,
	 * which keeps the touched part of the arena small. */
	for (uint32_t i = 0; i < cap_small; i++) {
		struct ns_pkt *p = &q->pkts[i];
		p->data = q->arena + (size_t)i * NS_SLOT_SMALL;
		p->hpos = -1;
		q->free_small[cap_small - 1 - i] = i;
	}
	for (uint32_t i = 0; i < cap_large; i++) {
		struct ns_pkt *p = &q->pkts[cap_small + i];
		p->data = q->arena + (size_t)cap_small * NS_SLOT_SMALL + (size_t)i * NS_SLOT_LARGE;
		p->hpos = -1;
		p->large = true;
		q->free_large[cap_large - 1 - i] = cap_small + i;
	}
	q->nfree_small = cap_small;
	q->nfree_large = cap_large;
	return 0;
}

void ns_queue_free_all(struct ns_queue *q)
{
	if (q->arena)
		munmap(q->arena, q->arena_len);
	free(q->pkts);
	free(q->free_small);
	free(q->free_large);
	free(q->heap);
	memset(q, 0, sizeof(*q));
}

int32_t ns_queue_alloc(struct ns_queue *q, size_t len)
{
	uint32_t i;

	/* Small packets never spill into the large slots: --queue-cap is then exactly
	 * the number of ordinary packets the queue holds. */
	if (len <= NS_SLOT_SMALL) {
		if (!q->nfree_small)
			return -1;
		i = q->free_small[--q->nfree_small];
	} else {
		if (len > NS_SLOT_LARGE || !q->nfree_large)
			return -1;
		i = q->free_large[--q->nfree_large];
	}
	q->pkts[i].flags = 0;
	q->pkts[i].hpos = -1;
	return (int32_t)i;
}

void ns_queue_release(struct ns_queue *q, int32_t i)
{
	struct ns_pkt *p = &q->pkts[i];

	if (p->large)
		q->free_large[q->nfree_large++] = (uint32_t)i;
	else
		q->free_small[q->nfree_small++] = (uint32_t)i;
}

static bool before(const struct ns_queue *q, uint32_t a, uint32_t b)
{
	const struct ns_pkt *x = &q->pkts[a], *y = &q->pkts[b];

	return x->t < y->t || (x->t == y->t && x->order < y->order);
}

static void place(struct ns_queue *q, uint32_t pos, uint32_t i)
{
	q->heap[pos] = i;
	q->pkts[i].hpos = (int32_t)pos;
}

static void sift_up(struct ns_queue *q, uint32_t pos)
{
	uint32_t i = q->heap[pos];

	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (!before(q, i, q->heap[parent]))
			break;
		place(q, pos, q->heap[parent]);
		pos = parent;
	}
	place(q, pos, i);
}

static void sift_down(struct ns_queue *q, uint32_t pos)
{
	uint32_t i = q->heap[pos];

	for (;;) {
		uint32_t c = 2 * pos + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && before(q, q->heap[c + 1], q->heap[c]))
			c++;
		if (!before(q, q->heap[c], i))
			break;
		place(q, pos, q->heap[c]);
		pos = c;
	}
	place(q, pos, i);
}

void ns_queue_push(struct ns_queue *q, int32_t i)
{
	q->pkts[i].order = q->next_order++;
	q->heap[q->n] = (uint32_t)i;
	q->n++;
	sift_up(q, q->n - 1);
}

void ns_queue_remove(struct ns_queue *q, int32_t i)
{
	uint32_t pos = (uint32_t)q->pkts[i].hpos;
	uint32_t last;

	q->pkts[i].hpos = -1;
	q->n--;
	if (pos == q->n)
		return;
	last = q->heap[q->n];
	place(q, pos, last);
	/* The moved element may belong above or below its new place. */
	if (pos > 0 && before(q, last, q->heap[(pos - 1) / 2]))
		sift_up(q, pos);
	else
		sift_down(q, pos);
}
