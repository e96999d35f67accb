/* lightspeed-client capture mode: the diversion socket, the reply injection, the
 * game-process match and the lifecycle of the kernel state (see client_capture.h). */
#include "client_capture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#endif
#ifndef IP_ORIGDSTADDR
#define IP_ORIGDSTADDR IP_RECVORIGDSTADDR
#endif

void client_capture_kconf_default(struct client_capture_kconf *k, uint32_t mark)
{
	memset(k, 0, sizeof(*k));
	k->divert_mark = mark ? mark : CL_CAPTURE_MARK;
	k->own_mark = k->divert_mark + 1;
	k->route_table = k->divert_mark;
	k->rule_pref = CL_CAPTURE_RULE_PREF;
}

/* ---- headers -------------------------------------------------------------------- */

static uint32_t sum16(uint32_t acc, const uint8_t *p, size_t n)
{
	for (; n > 1; p += 2, n -= 2)
		acc += (uint32_t)p[0] << 8 | p[1];
	if (n)
		acc += (uint32_t)p[0] << 8;
	return acc;
}

static uint16_t fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)~acc;
}

void client_capture_build_hdr(struct client_capture_hdr *h, const struct sockaddr_in *from,
			      const struct sockaddr_in *to, const void *payload, size_t len)
{
	uint8_t *ip = h->b, *udp = h->b + 20;
	uint16_t tot = (uint16_t)(28 + len), ulen = (uint16_t)(8 + len), c;
	uint32_t acc;

	memset(h->b, 0, sizeof(h->b));
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[6] = 0x40; /* DF; the id is left 0 for the kernel to fill */
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, &from->sin_addr.s_addr, 4);
	memcpy(ip + 16, &to->sin_addr.s_addr, 4);
	c = fold(sum16(0, ip, 20));
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;

	memcpy(udp, &from->sin_port, 2);
	memcpy(udp + 2, &to->sin_port, 2);
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	/* Pseudo-header, UDP header, payload (RFC 768). */
	acc = sum16(0, ip + 12, 8);
	acc += IPPROTO_UDP + ulen;
	acc = sum16(acc, udp, 8);
	acc = sum16(acc, payload, len);
	c = fold(acc);
	if (c == 0)
		c = 0xffff; /* 0 would mean "no checksum" */
	udp[6] = (uint8_t)(c >> 8);
	udp[7] = (uint8_t)c;
}

/* ---- the packet paths ----------------------------------------------------------- */

int client_capture_recv(struct client_capture *cap, struct mmsghdr *m, unsigned n,
			struct sockaddr_in *dst)
{
	int got;

	if (n > CL_CAPTURE_BATCH)
		n = CL_CAPTURE_BATCH;
	for (unsigned i = 0; i < n; i++) {
		m[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
		m[i].msg_hdr.msg_control = cap->cmsg[i].b;
		m[i].msg_hdr.msg_controllen = sizeof(cap->cmsg[i].b);
		m[i].msg_hdr.msg_flags = 0;
	}
	do
		got = recvmmsg(cap->tproxy_fd, m, n, MSG_TRUNC | MSG_DONTWAIT, NULL);
	while (got < 0 && errno == EINTR);
	for (int i = 0; i < got; i++) {
		struct msghdr *mh = &m[i].msg_hdr;
		struct cmsghdr *c;

		memset(&dst[i], 0, sizeof(dst[i]));
		for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
			if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR &&
			    c->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in)))
				memcpy(&dst[i], CMSG_DATA(c), sizeof(dst[i]));
		cap->ctr.received++;
		if (dst[i].sin_port == 0)
			cap->ctr.no_destination++;
	}
	return got;
}

unsigned client_capture_send(struct client_capture *cap, const struct iovec *payload,
			     const struct sockaddr_in *from, const struct sockaddr_in *to, unsigned n,
			     uint64_t *bytes)
{
	unsigned i = 0, sent = 0;

	*bytes = 0;
	if (n > CL_CAPTURE_BATCH)
		n = CL_CAPTURE_BATCH;
	for (unsigned k = 0; k < n; k++) {
		client_capture_build_hdr(&cap->hdr[k], &from[k], &to[k], payload[k].iov_base,
					 payload[k].iov_len);
		cap->txiov[k][0].iov_base = cap->hdr[k].b;
		cap->txiov[k][0].iov_len = sizeof(cap->hdr[k].b);
		cap->txiov[k][1] = payload[k];
		cap->txto[k] = to[k];
		cap->tx[k].msg_hdr = (struct msghdr){
			.msg_name = &cap->txto[k],
			.msg_namelen = sizeof(cap->txto[k]),
			.msg_iov = cap->txiov[k],
			.msg_iovlen = 2,
		};
	}
	while (i < n) {
		int r = sendmmsg(cap->raw_fd, cap->tx + i, n - i, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* A reply late is worse than lost: count it and go on. */
			cap->ctr.inject_errors++;
			i++;
			continue;
		}
		for (int k = 0; k < r; k++, i++) {
			*bytes += payload[i].iov_len;
			sent++;
		}
	}
	cap->ctr.injected += sent;
	return sent;
}

/* ---- the game's process ------------------------------------------------------------ */

/* The cgroup v2 mount point and the root it shows, from /proc/self/mountinfo. */
static int cgroup2_mount(char *mnt, size_t mlen, char *root, size_t rlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	int rc = -1;

	if (!f)
		return -1;
	while (rc < 0 && fgets(line, sizeof(line), f)) {
		char r[512], m[512];
		const char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %511s %511s", r, m) == 2 && strlen(m) < mlen &&
		    strlen(r) < rlen) {
			snprintf(mnt, mlen, "%s", m);
			snprintf(root, rlen, "%s", r);
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

/* A cgroup's id as the kernel compares it (its kernfs node id, which is also the
 * directory's inode number on 64-bit kernels). */
static int cgroup_id(const char *dir, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	int mount_id;
	struct stat st;

	h.fh.handle_bytes = sizeof(h.id);
	if (name_to_handle_at(AT_FDCWD, dir, &h.fh, &mount_id, 0) == 0 && h.fh.handle_bytes == 8) {
		memcpy(id, h.fh.f_handle, 8);
		return 0;
	}
	if (stat(dir, &st) < 0)
		return -1;
	*id = (uint64_t)st.st_ino;
	return 0;
}

int client_capture_match_pid(struct client_capture_match *m, pid_t pid, char *describe,
			     size_t dlen, char *err, size_t errlen)
{
	char path[64], line[1024], cg[1024] = "", mnt[512], root[512], dir[1600];
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "no process %d", (int)pid);
		return -1;
	}
	m->cgroup_id = 0;
	m->cgroup_level = 0;
	m->by_uid = false;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			snprintf(cg, sizeof(cg), "%s", line + 3);
			cg[strcspn(cg, "\n")] = '\0';
		}
	if (f)
		fclose(f);
	/* The root cgroup is the whole machine: the owner's uid says more. */
	if (cg[0] == '/' && cg[1] && cgroup2_mount(mnt, sizeof(mnt), root, sizeof(root)) == 0) {
		const char *rel = cg;
		size_t rl = strlen(root);
		if (strcmp(root, "/") != 0) {
			rel = strncmp(cg, root, rl) == 0 && (cg[rl] == '/' || !cg[rl]) ? cg + rl : NULL;
		}
		if (rel && *rel) {
			uint32_t level = 0;
			for (const char *p = rel; *p; p++)
				if (*p == '/' && p[1] && p[1] != '/')
					level++;
			snprintf(dir, sizeof(dir), "%s%s", mnt, rel);
			if (level && cgroup_id(dir, &m->cgroup_id) == 0) {
				m->cgroup_level = level;
				snprintf(describe, dlen, "cgroup %s (level %u)", rel, level);
				return 0;
			}
		}
	}
	m->by_uid = true;
	m->uid = st.st_uid;
	snprintf(describe, dlen, "uid %u", (unsigned)st.st_uid);
	return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int tproxy_socket(uint16_t *port, char *err, size_t errlen)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int one = 1, size = 4 << 20;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0) {
		snprintf(err, errlen, "IP_TRANSPARENT: %s%s", strerror(errno),
			 errno == EPERM ? " (capture mode needs CAP_NET_ADMIN)" : "");
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
		snprintf(err, errlen, "bind 127.0.0.1: %s", strerror(errno));
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static int raw_socket(uint32_t mark, char *err, size_t errlen)
{
	int size = 4 << 20;
	int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);

	if (fd < 0) {
		snprintf(err, errlen, "raw socket: %s%s", strerror(errno),
			 errno == EPERM ? " (capture mode needs CAP_NET_RAW)" : "");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		snprintf(err, errlen, "SO_MARK: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A process that outlives a killed client just long enough to remove the policy
 * routing (the nftables table goes by itself: it is owned). It holds only the read end
 * of a pipe, and acts when that reads end-of-file: the client is gone. The dying
 * client's table may outlast the pipe by a moment (the kernel closes a dead process's
 * files one by one), so a table still owned by the client's own netlink port is waited
 * out; one owned by any other port belongs to a client started since, whose routing
 * this is now. */
static pid_t watchdog_start(const struct client_capture_kconf *k, uint32_t portid, int *wfd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		char err[256], c;
		uint32_t owner = 0;

		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		if (dup2(p[0], 3) < 0)
			_exit(1);
		/* Nothing of the client's stays open here: not its netlink socket above all,
		 * which would keep the owned table alive. */
		syscall(SYS_close_range, 4, ~0u, 0);
		while (read(3, &c, 1) < 0 && errno == EINTR)
			;
		for (int i = 0; i < 200; i++) {
			int found = client_capture_nft_probe(&owner, err, sizeof(err));
			if (found == 1 && owner && owner != portid)
				_exit(0);
			if (found != 1 || !owner)
				break;
			usleep(10000);
		}
		client_capture_nft_route_del(k, err, sizeof(err));
		_exit(0);
	}
	close(p[0]);
	*wfd = p[1];
	return pid;
}

static void watchdog_stop(struct client_capture *cap)
{
	if (cap->watchdog > 0) {
		/* The client cleans up itself: the watchdog has nothing left to do. */
		kill(cap->watchdog, SIGKILL);
		waitpid(cap->watchdog, NULL, 0);
		cap->watchdog = 0;
	}
	if (cap->watch_fd >= 0)
		close(cap->watch_fd);
	cap->watch_fd = -1;
}

int client_capture_open(struct client_capture *cap, const struct client_capture_kconf *k,
			const struct client_capture_match *m, char *err, size_t errlen)
{
	memset(&cap->ctr, 0, sizeof(cap->ctr));
	cap->k = *k;
	cap->m = *m;
	cap->nft.fd = cap->tproxy_fd = cap->raw_fd = cap->watch_fd = -1;
	cap->watchdog = 0;
	cap->route_on = false;

	cap->tproxy_fd = tproxy_socket(&cap->k.tproxy_port, err, errlen);
	if (cap->tproxy_fd < 0)
		return -1;
	cap->raw_fd = raw_socket(cap->k.own_mark, err, errlen);
	if (cap->raw_fd < 0)
		goto fail;
	/* What a killed client left goes first (and a live one makes this fail). */
	if (client_capture_nft_delete_stale(err, errlen) < 0 ||
	    client_capture_nft_route_del(&cap->k, err, errlen) < 0)
		goto fail;
	if (client_capture_nft_open(&cap->nft, err, errlen) < 0)
		goto fail;
	/* The table first, then the routing that its marks need: a watchdog of an earlier
	 * client that sees the table leaves the routing alone. */
	if (client_capture_nft_install(&cap->nft, &cap->k, &cap->m, err, errlen) < 0)
		goto fail;
	if (client_capture_nft_route_add(&cap->k, err, errlen) < 0)
		goto fail;
	cap->route_on = true;
	struct sockaddr_nl nl;
	socklen_t nll = sizeof(nl);
	if (getsockname(cap->nft.fd, (struct sockaddr *)&nl, &nll) < 0)
		nl.nl_pid = 0;
	cap->watchdog = watchdog_start(&cap->k, nl.nl_pid, &cap->watch_fd);
	if (cap->watchdog < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		cap->watchdog = 0;
		goto fail;
	}
	return 0;
fail:
	client_capture_close(cap);
	return -1;
}

int client_capture_update(struct client_capture *cap, const struct client_capture_match *m,
			  char *err, size_t errlen)
{
	if (client_capture_nft_update(&cap->nft, &cap->k, m, err, errlen) < 0)
		return -1;
	cap->m = *m;
	return 0;
}

void client_capture_close(struct client_capture *cap)
{
	char err[256];

	if (cap->nft.fd >= 0)
		client_capture_nft_close(&cap->nft);
	if (cap->route_on)
		client_capture_nft_route_del(&cap->k, err, sizeof(err));
	cap->route_on = false;
	watchdog_stop(cap);
	if (cap->tproxy_fd >= 0)
		close(cap->tproxy_fd);
	if (cap->raw_fd >= 0)
		close(cap->raw_fd);
	cap->tproxy_fd = cap->raw_fd = -1;
}

int client_capture_cleanup(const struct client_capture_kconf *k, char *err, size_t errlen)
{
	if (client_capture_nft_delete_stale(err, errlen) < 0)
		return -1;
	return client_capture_nft_route_del(k, err, errlen);
}

int client_capture_mark_socket(const struct client_capture *cap, int fd)
{
	return setsockopt(fd, SOL_SOCKET, SO_MARK, &cap->k.own_mark, sizeof(cap->k.own_mark));
}
