/* The per-packet decisions of one direction. */
#include "impair.h"

#include <math.h>
#include <string.h>

void ns_dir_init(struct ns_dir *d, const char *name, uint64_t seed, uint64_t stream)
{
	struct ns_spec none;

	memset(d, 0, sizeof(*d));
	memset(&none, 0, sizeof(none));
	d->name = name;
	ls_prng_seed(&d->rng, seed, stream);
	ns_dir_set_spec(d, &none);
}

void ns_dir_set_spec(struct ns_dir *d, const struct ns_spec *s)
{
	d->spec = *s;
	d->queue_limit = ns_spec_queue_limit(s);
	d->ge_bad = false;
	d->tb_started = false;
	d->tb_v_ns = d->tb_v_rem = 0;
}

/* Extra delay from jitter around the fixed delay, in signed nanoseconds. */
static double jitter_ns(const struct ns_spec *s, double u1, double u2)
{
	if (!s->jitter_ns)
		return 0;
	if (!s->jitter_normal)
		return (double)s->jitter_ns * (2.0 * u1 - 1.0);
	/* Box-Muller; 1 - u1 lies in (0, 1], so the logarithm is finite. */
	return (double)s->jitter_ns * sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

/* Admit len bytes to the bottleneck at now and set its departure time; false when the
 * queue limit would be exceeded. A token bucket of depth B at rate R is the same as a
 * virtual clock v that may lag now by at most B/R: tokens = (now - v) * R. */
static bool rate_admit(struct ns_dir *d, uint64_t now, size_t len, uint64_t *depart)
{
	uint64_t rate = d->spec.rate_bps;
	uint64_t bucket_ns = (uint64_t)((double)d->spec.bucket_bytes * 8e9 / (double)rate);
	uint64_t floor_ns = now > bucket_ns ? now - bucket_ns : 0;
	uint64_t v = d->tb_v_ns, rem = d->tb_v_rem, num, end;

	if (!d->tb_started || v < floor_ns) {
		v = floor_ns;
		rem = 0;
	}
	/* len * 8e9 stays below 2^53 for any datagram, so this is exact. */
	num = (uint64_t)len * 8000000000u + rem;
	end = v + num / rate;
	rem = num % rate;
	if (end > now) {
		double backlog = (double)(end - now) * (double)rate / 8e9;
		if (backlog > (double)d->queue_limit)
			return false;
	}
	d->tb_started = true;
	d->tb_v_ns = end;
	d->tb_v_rem = rem;
	*depart = end > now ? end : now;
	return true;
}

void ns_dir_decide(struct ns_dir *d, uint64_t now_ns, size_t len, struct ns_verdict *v)
{
	const struct ns_spec *s = &d->spec;
	double u[7];
	double extra;
	uint64_t depart;

	/* Always the same number of draws per packet, whatever the SPEC: a packet's
	 * decisions then depend only on the seed and its position in the direction's
	 * sequence, so turning one impairment on does not reshuffle the others. */
	for (int i = 0; i < 7; i++)
		u[i] = ls_prng_unit(&d->rng);
	memset(v, 0, sizeof(*v));

	if (s->ge) {
		/* Move between states first, then lose by the state's probability: a burst
		 * starts with the packet that entered the bad state. */
		if (d->ge_bad ? u[0] < s->ge_r : u[0] < s->ge_p)
			d->ge_bad = !d->ge_bad;
		if (d->ge_bad && u[1] < s->ge_h) {
			d->c.lost_burst++;
			v->fate = NS_LOST_BURST;
			return;
		}
	}
	if (u[2] < s->loss) {
		d->c.lost_random++;
		v->fate = NS_LOST_RANDOM;
		return;
	}
	depart = now_ns;
	if (s->rate_bps) {
		if (!rate_admit(d, now_ns, len, &depart)) {
			d->c.rate_dropped++;
			v->fate = NS_RATE_DROP;
			return;
		}
	}
	extra = (double)s->delay_ns + jitter_ns(s, u[5], u[6]);
	v->t_ns = depart + (extra > 0 ? (uint64_t)llround(extra) : 0);
	v->dup = u[3] < s->dup;
	v->hold = u[4] < s->reorder;
	v->fate = NS_PASS;
}
