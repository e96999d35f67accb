/* The FEC benchmark's observer: a relay on the tunnel path (like relay.c) that reads
 * every datagram's headers as it passes and counts, per direction, data, parity and
 * keepalive datagrams, and which game packets' data it saw (the ping probe in the
 * payload names them). Placed before the loss emulator it counts what a sender put
 * on the wire; placed after it, which packets got through: a game packet that came
 * back although its data never passed the second tap was recovered by FEC.
 *
 *   fec_tap --to IP:PORT --first N --count N      prints "port N" (the listening port)
 *
 * Counting covers the measured packets only: data datagrams of probes numbered in
 * [first, first + count); the parity of an FEC block in proportion to the share of
 * its data that is measured (so the block that straddles the warm-up counts in part,
 * and parity held back past the next block's data is still its own block's);
 * keepalives and anything else from the first measured data datagram on. The tunnel
 * here carries one game socket, so block numbers are one sequence per direction.
 * On SIGTERM or SIGINT it prints one JSON
 * line: {"up": DIR, "down": DIR} with DIR = {"data", "parity", "keepalive", "other",
 * "seen": hex bitmap of the probes whose data passed, bit i for probe first + i,
 * "t0_us": CLOCK_MONOTONIC time of the first measured data datagram, "sec": per second
 * from then [data, parity, keepalive] datagrams (all of them, measured or not), "probe_ms":
 * when each measured probe's data passed (ms from t0, -1 never), "parity_ms": when the
 * first parity datagrams passed (ms from t0, at most 4,096)}. "up" is what arrives on
 * the listening socket, "down" what comes back. Times on CLOCK_MONOTONIC compare across
 * the taps of one machine: the cold-start table finds each direction's first lost
 * packet and the first parity after it. */
#include <poll.h>

#include "bench.h"

#define TAP_SECONDS 256
#define TAP_PARITY_TIMES 4096
struct dir {
	uint64_t data, keepalive, other;
	int counting;
	uint8_t *seen;
	uint64_t t0_ns;                      /* first measured data datagram */
	uint32_t sec[TAP_SECONDS][3];        /* data, parity, keepalive per second */
	float *probe_ms;                     /* per measured probe; -1 never */
	float parity_ms[TAP_PARITY_TIMES];
	uint32_t nparity;
	/* Per block, by its number extended past 16 bits relative to the first one seen:
	 * data datagrams, of them measured ones, parity datagrams. */
	uint32_t *blk_data, *blk_meas, *blk_par, nblk;
	int64_t last_blk;
	int have_blk;
	double parity_loose; /* parity of blocks out of the table's range */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint32_t first, count;

/* The table slot of block number b, or -1. */
static int64_t blk_slot(struct dir *d, uint16_t b)
{
	int64_t ext = d->have_blk ? d->last_blk + (int16_t)(uint16_t)(b - (uint16_t)d->last_blk) : b;

	if (!d->have_blk || ext > d->last_blk)
		d->last_blk = ext;
	d->have_blk = 1;
	return ext >= 0 && ext < d->nblk ? ext : -1;
}

/* The second since t0 that now falls in, for the per-second counts; -1 outside. */
static int sec_of(const struct dir *d, uint64_t now)
{
	uint64_t s;

	if (!d->counting)
		return -1;
	s = (now - d->t0_ns) / 1000000000u;
	return s < TAP_SECONDS ? (int)s : -1;
}

static float ms_of(const struct dir *d, uint64_t now)
{
	return (float)((double)(now - d->t0_ns) / 1e6);
}

static void classify(struct dir *d, const uint8_t *buf, size_t len)
{
	struct ls_pkt p;
	struct bench_probe pr;
	int measured = 0, sec;
	int64_t slot;
	uint64_t now = bench_now_ns();

	if (ls_pkt_decode(buf, len, &p) != LS_PE_OK) {
		d->other += d->counting;
		return;
	}
	sec = sec_of(d, now);
	if (p.h.flags & (LS_F_KEEPALIVE | LS_F_FIN)) {
		d->keepalive += d->counting;
		if (sec >= 0)
			d->sec[sec][2]++;
		return;
	}
	slot = p.h.version == LS_VER_FEC ? blk_slot(d, p.h.fec_block) : -1;
	if (p.h.version == LS_VER_FEC && p.h.fec_k && p.h.fec_index >= p.h.fec_k) {
		if (slot >= 0)
			d->blk_par[slot]++;
		else
			d->parity_loose += d->counting;
		if (sec >= 0)
			d->sec[sec][1]++;
		if (d->counting && d->nparity < TAP_PARITY_TIMES)
			d->parity_ms[d->nparity++] = ms_of(d, now);
		return;
	}
	if (p.payload_len >= sizeof(pr)) {
		memcpy(&pr, p.payload, sizeof(pr));
		if (pr.magic == BENCH_PROBE_MAGIC && pr.seq >= first && pr.seq - first < count) {
			if (!d->counting) {
				d->t0_ns = now;
				sec = 0;
			}
			measured = d->counting = 1;
			d->seen[(pr.seq - first) / 8] |= (uint8_t)(1u << ((pr.seq - first) % 8));
			if (d->probe_ms[pr.seq - first] < 0)
				d->probe_ms[pr.seq - first] = ms_of(d, now);
		}
	}
	if (sec >= 0)
		d->sec[sec][0]++;
	d->data += (uint64_t)measured;
	if (slot >= 0) {
		d->blk_data[slot]++;
		d->blk_meas[slot] += (uint32_t)measured;
	}
}

static double parity_measured(const struct dir *d)
{
	double s = d->parity_loose;

	for (uint32_t i = 0; i < d->nblk; i++)
		if (d->blk_par[i] && d->blk_data[i])
			s += (double)d->blk_par[i] * d->blk_meas[i] / d->blk_data[i];
	return s;
}

static void dir_init(struct dir *d)
{
	/* Never more blocks than data packets, with room for a first block number seen
	 * late (numbers start at 0 on both ends). */
	d->nblk = first + count + 4096;
	d->seen = calloc((count + 7) / 8, 1);
	d->blk_data = calloc(d->nblk, sizeof(uint32_t));
	d->blk_meas = calloc(d->nblk, sizeof(uint32_t));
	d->blk_par = calloc(d->nblk, sizeof(uint32_t));
	d->probe_ms = malloc(count * sizeof(float));
	if (!d->seen || !d->blk_data || !d->blk_meas || !d->blk_par || !d->probe_ms)
		bench_die("out of memory");
	for (uint32_t i = 0; i < count; i++)
		d->probe_ms[i] = -1;
}

static void print_dir(const char *name, const struct dir *d, const char *sep)
{
	printf("\"%s\":{\"data\":%llu,\"parity\":%.2f,\"keepalive\":%llu,\"other\":%llu,\"seen\":\"",
	       name, (unsigned long long)d->data, parity_measured(d),
	       (unsigned long long)d->keepalive, (unsigned long long)d->other);
	for (uint32_t i = 0; i < (count + 7) / 8; i++)
		printf("%02x", d->seen[i]);
	/* How full the measured blocks were: a block closed by time holds fewer data
	 * packets and pays relatively more parity. */
	printf("\",\"block_data\":{");
	for (uint32_t n = 1, comma = 0; n <= LS_FEC_MAX_K; n++) {
		uint32_t c = 0;

		for (uint32_t i = 0; i < d->nblk; i++)
			c += d->blk_meas[i] && d->blk_data[i] == n;
		if (c) {
			printf("%s\"%u\":%u", comma ? "," : "", n, c);
			comma = 1;
		}
	}
	printf("},\"t0_us\":%llu,\"sec\":[", (unsigned long long)(d->t0_ns / 1000));
	for (int i = 0, last = -1; i < TAP_SECONDS; i++) {
		if (d->sec[i][0] || d->sec[i][1] || d->sec[i][2])
			last = i;
		if (i == TAP_SECONDS - 1)
			for (int j = 0; j <= last; j++)
				printf("%s[%u,%u,%u]", j ? "," : "", d->sec[j][0], d->sec[j][1],
				       d->sec[j][2]);
	}
	printf("],\"probe_ms\":[");
	for (uint32_t i = 0; i < count; i++)
		printf("%s%.1f", i ? "," : "", d->probe_ms[i]);
	printf("],\"parity_ms\":[");
	for (uint32_t i = 0; i < d->nparity; i++)
		printf("%s%.1f", i ? "," : "", d->parity_ms[i]);
	printf("]}%s", sep);
}

int main(int argc, char **argv)
{
	struct sockaddr_in to, peer;
	struct dir up = { 0 }, down = { 0 };
	int have_to = 0, have_peer = 0;
	uint8_t buf[LS_RX_BUF];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--to")) {
			bench_parse_addr(argv[i + 1], &to);
			have_to = 1;
		} else if (!strcmp(argv[i], "--first")) {
			first = (uint32_t)bench_parse_num(argv[i], argv[i + 1], 0, 1e9);
		} else if (!strcmp(argv[i], "--count")) {
			count = (uint32_t)bench_parse_num(argv[i], argv[i + 1], 1, 1e8);
		} else {
			bench_die("usage: fec_tap --to IP:PORT --first N --count N");
		}
	}
	if (!have_to || !count || argc % 2 == 0)
		bench_die("usage: fec_tap --to IP:PORT --first N --count N");
	dir_init(&up);
	dir_init(&down);
	bench_tie_to_parent();
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: poll returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int lfd = bench_udp_socket(0), ufd = bench_udp_socket(0);
	if (connect(ufd, (struct sockaddr *)&to, sizeof(to)) != 0)
		bench_die("connect: %s", strerror(errno));
	bench_announce_port(lfd);

	while (!stop) {
		struct pollfd pfd[2] = { { lfd, POLLIN, 0 }, { ufd, POLLIN, 0 } };

		if (poll(pfd, 2, -1) < 0)
			continue; /* EINTR: the signal ends the loop */
		if (pfd[0].revents & POLLIN) {
			struct sockaddr_in from;
			socklen_t flen = sizeof(from);
			ssize_t n = recvfrom(lfd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&from, &flen);

			if (n >= 0) {
				peer = from;
				have_peer = 1;
				classify(&up, buf, (size_t)n);
				/* A refused send loses the datagram, as the network would. */
				(void)send(ufd, buf, (size_t)n, 0);
			}
		}
		if (pfd[1].revents & POLLIN) {
			ssize_t n = recv(ufd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n >= 0 && have_peer) {
				classify(&down, buf, (size_t)n);
				(void)sendto(lfd, buf, (size_t)n, 0, (struct sockaddr *)&peer,
					     sizeof(peer));
			}
		}
	}
	printf("{");
	print_dir("up", &up, ",");
	print_dir("down", &down, "");
	printf("}\n");
	return 0;
}
