/* Helpers shared by the benchmark tools (each tool here is its own program, so
 * these are static inline rather than a separate object). Loopback IPv4 only. */
#ifndef LS_BENCH_H
#define LS_BENCH_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

/* Socket buffers big enough that a burst never overflows a queue before the reader
 * runs; as root the FORCE variants pass net.core.{r,w}mem_max. */
#define BENCH_SOCKBUF (8 << 20)

static inline void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void bench_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "ip:port" into a sockaddr_in; exits on a malformed address. */
static inline void bench_parse_addr(const char *s, struct sockaddr_in *out)
{
	char ip[64];
	const char *colon = strrchr(s, ':');
	int64_t port;

	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		bench_die("bad address '%s' (want ip:port)", s);
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &out->sin_addr) != 1 ||
	    ls_parse_i64(colon + 1, 0, 65535, &port) != 0)
		bench_die("bad address '%s' (want ip:port)", s);
	out->sin_port = htons((uint16_t)port);
}

static inline double bench_parse_num(const char *opt, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		bench_die("%s: bad value '%s' (want %g..%g)", opt, s, min, max);
	return v;
}

static inline void bench_set_bufs(int fd)
{
	int sz = BENCH_SOCKBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

/* A UDP socket bound to 127.0.0.1:port (0 = any free port), large buffers. */
static inline int bench_udp_socket(uint16_t port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	/* Benchmarks in network namespaces bind another address (capture_run). */
	const char *ip = getenv("LS_BENCH_BIND");

	if (fd < 0)
		bench_die("socket: %s", strerror(errno));
	bench_set_bufs(fd);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ip && inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		bench_die("LS_BENCH_BIND: '%s' is not an IPv4 address", ip);
	a.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		bench_die("bind %s:%u: %s", ip ? ip : "127.0.0.1", port, strerror(errno));
	return fd;
}

static inline uint16_t bench_local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		bench_die("getsockname: %s", strerror(errno));
	return ntohs(a.sin_port);
}

/* Long-running tools die with the runner even if it is killed without cleaning up. */
static inline void bench_tie_to_parent(void)
{
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		exit(1);
}

/* Servers print their port as the first stdout line so the runner never has to guess
 * a free port (no race with other processes). */
static inline void bench_announce_port(int fd)
{
	printf("port %u\n", bench_local_port(fd));
	fflush(stdout);
}

/* What ping sends: its number and send time, at the start of every probe's payload
 * (host byte order: sender and readers run on one machine). */
#define BENCH_PROBE_MAGIC 0x4c53504eu /* "LSPN" */
struct bench_probe {
	uint32_t magic;
	uint32_t seq;
	uint64_t sent_ns;
};

/* Encode a plain (version 1, no auth) data header for payload from src to dst. */
static inline size_t bench_data_hdr(uint8_t *buf, uint16_t seq, const struct sockaddr_in *src,
				    const struct sockaddr_in *dst)
{
	struct ls_hdr h;

	memset(&h, 0, sizeof(h));
	h.version = LS_VER_PLAIN;
	h.seq = seq;
	h.ts_us = (uint32_t)ls_now_us();
	h.src_ip = ntohl(src->sin_addr.s_addr);
	h.src_port = ntohs(src->sin_port);
	h.dst_ip = ntohl(dst->sin_addr.s_addr);
	h.dst_port = ntohs(dst->sin_port);
	return ls_hdr_encode(&h, buf);
}

/* If buf is a KEEPALIVE request (the proxy's address-validation challenge), answer it
 * on the connected socket fd with a reply echoing seq and ts_us. Returns 1 when it was
 * a request (answered), 0 otherwise. */
static inline int bench_answer_keepalive(int fd, const uint8_t *buf, size_t len)
{
	struct ls_pkt p;
	struct ls_keepalive ka;
	struct ls_hdr r;
	uint8_t out[LS_HDR_LEN];

	if (ls_pkt_decode(buf, len, &p) != LS_PE_OK || !(p.h.flags & LS_F_KEEPALIVE))
		return 0;
	ls_keepalive_from_hdr(&p.h, &ka);
	if (ka.kind != LS_KA_REQUEST)
		return 0;
	memset(&r, 0, sizeof(r));
	r.version = LS_VER_PLAIN;
	r.flags = LS_F_KEEPALIVE;
	r.token = p.h.token;
	r.seq = p.h.seq;
	r.ts_us = p.h.ts_us;
	memset(&ka, 0, sizeof(ka));
	ka.kind = LS_KA_REPLY;
	ls_keepalive_to_hdr(&ka, &r);
	ls_hdr_encode(&r, out);
	if (send(fd, out, sizeof(out), 0) < 0 && errno != EAGAIN)
		fprintf(stderr, "keepalive reply: %s\n", strerror(errno));
	return 1;
}

#endif
