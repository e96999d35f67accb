/* The load generator of the relay forwarding benchmark: a keyed sender. It begins a
 * lifetime with the proxy at TO (the handshake of docs/protocol.md 1.8, through the
 * shared code both dataplanes use), then sends authenticated datagrams as fast as
 * sendmmsg allows for SECONDS:
 *   --egress DST   data packets (version 1, AUTH) for game server DST: what an egress
 *                  forwards, the proxy's own figure;
 *   --relay NEXT   relay hops (version 3, 1.9) for next hop NEXT, each carrying a tunnel
 *                  datagram of SIZE payload bytes: what a relay forwards.
 * Every datagram is sealed (CMAC) as it goes, as the client does. --rate caps the rate
 * (batches of 32 spaced evenly): a receiver that falls 32,768 seqs behind the sender
 * can no longer tell where the 16-bit seq stands (1.3), so an overload has a limit.
 *   hopgen --to IP:PORT --session ID --key HEX (--egress IP:PORT | --relay IP:PORT)
 *          [--seconds S] [--size B] [--rate PPS]
 * Prints: sent= seconds= pps= */
#include <poll.h>

#include "bench.h"
#include "life.h"
#include "seal.h"

#define BATCH 32

static int hex_key(const char *s, uint8_t out[LS_KEY_LEN])
{
	return ls_hex_decode(s, out, LS_KEY_LEN);
}

/* The handshake with the proxy: INIT, REPLY, CONFIRM, ACK, resent as the client does. */
static void begin_lifetime(int fd, struct ls_lives *L, struct ls_mac *base, uint32_t sid)
{
	struct ls_hs hs;
	uint8_t buf[LS_RX_BUF];
	uint64_t until = bench_now_ns() + 5000000000ull;

	if (ls_hs_start(&hs, ls_now_us()) < 0)
		bench_die("hopgen: no randomness");
	while (bench_now_ns() < until) {
		size_t n = ls_hs_due(&hs, base, (uint8_t)sid, sid, ls_now_us(), buf);
		struct pollfd pfd = { fd, POLLIN, 0 };
		struct ls_pkt p;
		enum ls_drop why;
		ssize_t got;

		if (n)
			(void)send(fd, buf, n, 0);
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		got = recv(fd, buf, sizeof(buf), 0);
		if (got <= 0 || ls_pkt_decode(buf, (size_t)got, &p) != LS_PE_OK ||
		    !(p.h.flags & LS_F_HANDSHAKE))
			continue;
		switch (ls_hs_receive(&hs, L, base, (uint8_t)sid, &p, buf, ls_now_us(), &why)) {
		case LS_HSE_UP:
			return;
		default:
			break;
		}
	}
	bench_die("hopgen: no lifetime with the proxy within 5 s");
}

int main(int argc, char **argv)
{
	struct sockaddr_in to, dst;
	int have_to = 0, have_dst = 0, relay = 0;
	double seconds = 3, size = 64, sid = 0, rate = 0;
	const char *key_hex = NULL;
	static uint8_t bufs[BATCH][LS_MAX_RELAY_DATAGRAM];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	uint8_t key[LS_KEY_LEN];
	struct ls_mac base;
	struct ls_lives L;

	for (int i = 1; i < argc; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			bench_die("%s: missing value", o);
		if (!strcmp(o, "--to")) {
			bench_parse_addr(v, &to);
			have_to = 1;
		} else if (!strcmp(o, "--egress") || !strcmp(o, "--relay")) {
			bench_parse_addr(v, &dst);
			have_dst = 1;
			relay = !strcmp(o, "--relay");
		} else if (!strcmp(o, "--session")) {
			sid = bench_parse_num(o, v, 1, 4294967295.0);
		} else if (!strcmp(o, "--key")) {
			key_hex = v;
		} else if (!strcmp(o, "--seconds")) {
			seconds = bench_parse_num(o, v, 0.1, 3600);
		} else if (!strcmp(o, "--size")) {
			size = bench_parse_num(o, v, 0, LS_MAX_PAYLOAD);
		} else if (!strcmp(o, "--rate")) {
			rate = bench_parse_num(o, v, 0, 1e8);
		} else {
			bench_die("usage: hopgen --to IP:PORT --session ID --key HEX (--egress IP:PORT | "
				  "--relay IP:PORT) [--seconds S] [--size B] [--rate PPS]");
		}
	}
	if (!have_to || !have_dst || !sid || !key_hex || hex_key(key_hex, key) < 0)
		bench_die("hopgen: --to, --session, --key (32 hex digits) and --egress or --relay "
			  "are required");

	int fd = bench_udp_socket(0);
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0)
		bench_die("connect: %s", strerror(errno));
	ls_mac_init(&base, key);
	ls_lives_init(&L);
	begin_lifetime(fd, &L, &base, (uint32_t)sid);

	struct ls_seal k = { .mac = &L.cur.mac, .token = (uint8_t)sid, .session_id = (uint32_t)sid };
	/* The tunnel datagram a relay hop carries: a relay reads its headers only, so one
	 * made up once serves (a version-1 AUTH datagram of SIZE payload bytes). */
	uint8_t inner[LS_MAX_DATAGRAM];
	size_t inner_len;
	{
		struct ls_hdr h = { .version = LS_VER_PLAIN, .flags = LS_F_AUTH, .token = 1,
				    .session_id = 1 };
		inner_len = ls_hdr_encode(&h, inner);
		memset(inner + inner_len, 'x', (size_t)size + LS_TAG_LEN);
		inner_len += (size_t)size + LS_TAG_LEN;
	}
	size_t payload = relay ? inner_len : (size_t)size;
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	uint16_t seq = 1;
	uint64_t sent = 0, start = bench_now_ns(), now = start, batches = 0;
	uint64_t stop = start + (uint64_t)(seconds * 1e9);
	uint64_t every = rate > 0 ? (uint64_t)(BATCH * 1e9 / rate) : 0;
	while (now < stop) {
		if (every && now < start + batches * every) {
			now = bench_now_ns();
			continue;
		}
		batches++;
		uint32_t ts = (uint32_t)ls_now_us();

		for (int i = 0; i < BATCH; i++) {
			struct ls_hdr h = { .version = relay ? LS_VER_RELAY : LS_VER_PLAIN, .seq = seq++,
					    .ts_us = ts };
			size_t off;

			if (relay) {
				h.dst_ip = ntohl(dst.sin_addr.s_addr);
				h.dst_port = ntohs(dst.sin_port);
			} else {
				h.src_ip = 0x7f000001;
				h.src_port = 1;
				h.dst_ip = ntohl(dst.sin_addr.s_addr);
				h.dst_port = ntohs(dst.sin_port);
			}
			off = ls_hdr_len(h.version, LS_F_AUTH);
			if (relay)
				memcpy(bufs[i] + off, inner, inner_len);
			else
				memset(bufs[i] + off, 'x', payload);
			iov[i].iov_len = ls_seal_at(&k, &h, bufs[i], payload);
		}
		int n = sendmmsg(fd, msgs, BATCH, 0);
		if (n > 0)
			sent += (uint64_t)n;
		now = bench_now_ns();
	}
	double el = (double)(now - start) / 1e9;
	printf("sent=%llu seconds=%.3f pps=%.0f\n", (unsigned long long)sent, el, (double)sent / el);
	return 0;
}
