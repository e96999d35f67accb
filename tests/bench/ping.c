/* The latency probe: sends RATE datagrams per second of SIZE bytes to TARGET for
 * SECONDS (after WARMUP seconds whose answers are discarded: the tunnel creates and
 * validates its session on the first packets), and measures every round trip on
 * CLOCK_MONOTONIC. Each datagram carries its own number and send time (struct
 * bench_probe), so a late answer is still measured against the right packet and a
 * duplicate is counted once.
 *   ping --to IP:PORT [--seconds S | --count N] [--warmup S] [--cooldown S]
 *        [--rate PPS] [--jitter J] [--size BYTES] [--samples FILE] [--trace FILE]
 * SECONDS defaults to $LS_BENCH_SECONDS, else 10. Prints one line of key=value:
 *   sent= received= lost= min_us= median_us= p99_us= max_us= duplicates=
 * (duplicates: answers to a probe that had been answered already).
 * --samples also writes every round trip (nanoseconds, one per line) to FILE, so that
 * a runner can merge interleaved runs into one distribution. --trace writes one line
 * per measured probe in the order sent, its round trip in nanoseconds or -1 if no
 * answer came; the measured probes are numbered from WARMUP * RATE. --count sets the
 * measured probes instead of SECONDS. --cooldown goes on sending for S seconds after
 * the measured probes, unmeasured, so that whatever groups packets (FEC blocks) treats
 * the last measured ones as it treats the others. Answers are awaited up to 1 s after
 * the last send (0.2 s without --trace). --jitter J spaces the probes 1/RATE apart times
 * a factor drawn uniformly from [1 - J, 1 + J] (seeded, the same every run), as a game's
 * send timing jitters; the mean rate stays RATE. */
#include <poll.h>

#include "bench.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank quantile of a sorted array. */
static double quantile_us(const uint64_t *v, size_t n, double q)
{
	size_t rank = (size_t)(q * (double)n + 0.999999);

	if (n == 0)
		return 0;
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1000.0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in to;
	int have_to = 0;
	double seconds = 10, warmup = 1, rate = 64, size = 100, count = 0, cooldown = 0, jitter = 0;
	const char *samples = NULL, *trace = NULL;
	const char *env = getenv("LS_BENCH_SECONDS");

	if (env && *env)
		seconds = bench_parse_num("LS_BENCH_SECONDS", env, 0.1, 3600);
	for (int i = 1; i < argc; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			bench_die("%s: missing value", o);
		if (!strcmp(o, "--to")) {
			bench_parse_addr(v, &to);
			have_to = 1;
		} else if (!strcmp(o, "--seconds")) {
			seconds = bench_parse_num(o, v, 0.1, 3600);
		} else if (!strcmp(o, "--warmup")) {
			warmup = bench_parse_num(o, v, 0, 60);
		} else if (!strcmp(o, "--rate")) {
			rate = bench_parse_num(o, v, 1, 100000);
		} else if (!strcmp(o, "--jitter")) {
			jitter = bench_parse_num(o, v, 0, 0.9);
		} else if (!strcmp(o, "--cooldown")) {
			cooldown = bench_parse_num(o, v, 0, 60);
		} else if (!strcmp(o, "--count")) {
			count = bench_parse_num(o, v, 1, 1e8);
		} else if (!strcmp(o, "--samples")) {
			samples = v;
		} else if (!strcmp(o, "--trace")) {
			trace = v;
		} else if (!strcmp(o, "--size")) {
			size = bench_parse_num(o, v, (double)sizeof(struct bench_probe), LS_MAX_PAYLOAD);
		} else {
			bench_die("usage: ping --to IP:PORT [--seconds S | --count N] [--warmup S] "
				  "[--cooldown S] [--rate PPS] [--jitter J] [--size B] [--samples FILE] "
				  "[--trace FILE]");
		}
	}
	if (!have_to)
		bench_die("ping: --to is required");

	uint64_t period_ns = (uint64_t)(1e9 / rate);
	uint32_t n_warm = (uint32_t)(warmup * rate);
	uint32_t n_meas = count ? (uint32_t)count : (uint32_t)(seconds * rate);
	uint32_t n_total = n_warm + n_meas + (uint32_t)(cooldown * rate);
	uint64_t *rtt = calloc(n_meas ? n_meas : 1, sizeof(*rtt));
	uint32_t n_end = n_warm + n_meas;
	uint64_t *by_seq = calloc(n_meas ? n_meas : 1, sizeof(*by_seq)); /* 0: no answer */
	uint8_t *seen = calloc(n_total ? n_total : 1, 1);
	size_t n_rtt = 0, n_dup = 0;
	uint8_t buf[LS_RX_BUF];

	uint64_t *at = calloc((size_t)n_total + 1, sizeof(*at)); /* send times from start */
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	if (!rtt || !by_seq || !seen || !at)
		bench_die("out of memory");
	for (uint32_t i = 1; i <= n_total; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		at[i] = at[i - 1] + (uint64_t)((double)period_ns *
					       (1.0 + jitter * (2.0 * (double)(rng >> 11) /
								9007199254740992.0 - 1.0)));
	}
	int fd = bench_udp_socket(0);
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0)
		bench_die("connect: %s", strerror(errno));
	memset(buf, 0xa5, sizeof(buf));

	uint64_t start = bench_now_ns();
	/* Answers may trail the last send by a round trip (and a recovery); wait a little
	 * for them. */
	uint64_t end = start + at[n_total] + (trace ? 1000000000u : 200000000u);
	uint32_t next = 0;

	for (;;) {
		uint64_t now = bench_now_ns();

		if (next < n_total && now >= start + at[next]) {
			struct bench_probe p = { BENCH_PROBE_MAGIC, next, bench_now_ns() };

			memcpy(buf, &p, sizeof(p));
			/* ECONNREFUSED from an earlier ICMP error is reported here; the
			 * packet is simply lost. */
			(void)send(fd, buf, (size_t)size, 0);
			next++;
			continue;
		}
		if (now >= end || (next == n_total && n_rtt == n_meas))
			break;
		uint64_t wake = next < n_total ? start + at[next] : end;
		uint64_t wait = wake > now ? wake - now : 0;
		struct timespec ts = { (time_t)(wait / 1000000000u), (long)(wait % 1000000000u) };
		struct pollfd pfd = { fd, POLLIN, 0 };

		if (ppoll(&pfd, 1, &ts, NULL) <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		uint64_t got = bench_now_ns();
		struct bench_probe p;

		if (n < (ssize_t)sizeof(p))
			continue;
		memcpy(&p, buf, sizeof(p));
		if (p.magic != BENCH_PROBE_MAGIC || p.seq >= n_total)
			continue;
		if (seen[p.seq]) {
			n_dup++;
			continue;
		}
		seen[p.seq] = 1;
		if (p.seq >= n_warm && p.seq < n_end) {
			rtt[n_rtt++] = got - p.sent_ns;
			by_seq[p.seq - n_warm] = got - p.sent_ns ? got - p.sent_ns : 1;
		}
	}
	if (trace) {
		FILE *f = fopen(trace, "w");

		if (!f)
			bench_die("%s: %s", trace, strerror(errno));
		for (uint32_t i = 0; i < n_meas; i++)
			fprintf(f, "%lld\n", by_seq[i] ? (long long)by_seq[i] : -1LL);
		if (fclose(f) != 0)
			bench_die("%s: %s", trace, strerror(errno));
	}
	qsort(rtt, n_rtt, sizeof(*rtt), cmp_u64);
	if (samples) {
		FILE *f = fopen(samples, "w");

		if (!f)
			bench_die("%s: %s", samples, strerror(errno));
		for (size_t i = 0; i < n_rtt; i++)
			fprintf(f, "%llu\n", (unsigned long long)rtt[i]);
		if (fclose(f) != 0)
			bench_die("%s: %s", samples, strerror(errno));
	}
	printf("sent=%u received=%zu lost=%zu min_us=%.1f median_us=%.1f p99_us=%.1f max_us=%.1f "
	       "duplicates=%zu\n",
	       n_meas, n_rtt, (size_t)n_meas - n_rtt, quantile_us(rtt, n_rtt, 0),
	       quantile_us(rtt, n_rtt, 0.5), quantile_us(rtt, n_rtt, 0.99),
	       quantile_us(rtt, n_rtt, 1), n_dup);
	free(rtt);
	free(by_seq);
	free(seen);
	free(at);
	return n_rtt ? 0 : 1;
}
