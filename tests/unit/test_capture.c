/* Unit tests for the capture engine (dataplane/client_capture*.c) in a private network
 * namespace of this process: the nftables table and policy routing it installs and
 * removes (on close, on SIGKILL, stale ones at the next start, --cleanup), datagrams to
 * the matched ports diverted with their destination and none leaving the machine,
 * other UDP untouched, replies put back from the server's address byte for byte, and
 * the game-process match by cgroup and by uid. Needs root (CAP_SYS_ADMIN for the
 * namespace); inspects the kernel with the real `nft` and `ip` tools. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../dataplane/client_capture.h"

#include "unit.h"

#define SERVER "10.77.1.2"
static bool in_netns;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A command's output (stderr too) into buf. */
static const char *sh_out(char *buf, size_t len, const char *cmd)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (!f)
		return buf;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	pclose(f);
	return buf;
}

/* Packets received by dev, from /proc/net/dev (this namespace's: /sys still shows the
 * namespace it was mounted in). */
static uint64_t iface_rx(const char *dev)
{
	char line[512], name[64];
	unsigned long long bytes, pkts = 0;
	FILE *f = fopen("/proc/net/dev", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = ' ';
		if (sscanf(line, "%63s %llu %llu", name, &bytes, &pkts) == 3 && strcmp(name, dev) == 0)
			break;
		pkts = 0;
	}
	if (f)
		fclose(f);
	return pkts;
}

/* The namespace: lo, and lsc0 (10.77.1.1/24) whose peer lsc1 has no address, so a
 * datagram to SERVER that leaves the machine shows as one received on lsc1. */
static void netns_setup(void)
{
	if (in_netns)
		return;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "\n  unshare(CLONE_NEWNET): %s: this suite needs root\n",
			strerror(errno));
		CU_FAIL_FATAL("no private network namespace");
	}
	in_netns = true;
	/* No IPv6: its neighbour discovery would show on lsc1's counter too. */
	CU_ASSERT_FATAL(sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
			   "net.ipv6.conf.default.disable_ipv6=1 && "
			   "ip link set lo up && ip link add lsc0 type veth peer name lsc1 && "
			   "ip addr add 10.77.1.1/24 dev lsc0 && ip link set lsc0 up && "
			   "ip link set lsc1 up && ip neigh add " SERVER
			   " lladdr $(ip -br link show lsc1 | awk '{print $3}') dev lsc0 nud permanent") == 0);
}

static void match_ports(struct client_capture_match *m, uint16_t lo, uint16_t hi)
{
	memset(m, 0, sizeof(*m));
	m->nports = 1;
	m->ports[0].lo = lo;
	m->ports[0].hi = hi;
}

static int udp_sock(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };

	CU_ASSERT_FATAL(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	return fd;
}

static void send_to(int fd, const char *ip, uint16_t port, const void *data, size_t len)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &to.sin_addr);
	CU_ASSERT(sendto(fd, data, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len);
}

/* Receive up to n diverted datagrams waiting at most ms. */
static int cap_recv(struct client_capture *cap, uint8_t bufs[][1600], struct sockaddr_in *from,
		    struct sockaddr_in *dst, int n, int ms)
{
	struct mmsghdr m[8];
	struct iovec iov[8];
	struct pollfd p = { .fd = cap->tproxy_fd, .events = POLLIN };

	if (poll(&p, 1, ms) <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		iov[i] = (struct iovec){ bufs[i], 1600 };
		m[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_iov = &iov[i],
						.msg_iovlen = 1 };
	}
	int got = client_capture_recv(cap, m, (unsigned)n, dst);
	for (int i = 0; i < got; i++)
		bufs[i][m[i].msg_len < 1600 ? m[i].msg_len : 1599] = 0;
	return got < 0 ? 0 : got;
}

static bool table_present(void)
{
	char out[256];

	sh_out(out, sizeof(out), "nft list tables 2>&1");
	return strstr(out, "table ip " CL_CAPTURE_TABLE) != NULL;
}

static bool rule_present(void)
{
	char out[2048];

	sh_out(out, sizeof(out), "ip rule show 2>&1");
	return strstr(out, "fwmark 0x4c53") != NULL;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_checksums_verify(void)
{
	struct client_capture_hdr h;
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(7777) },
			   to = { .sin_family = AF_INET, .sin_port = htons(40000) };
	uint8_t payload[301];
	uint32_t acc = 0;

	inet_pton(AF_INET, "203.0.113.7", &from.sin_addr);
	inet_pton(AF_INET, "192.168.1.20", &to.sin_addr);
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	client_capture_build_hdr(&h, &from, &to, payload, sizeof(payload));
	/* A correct IPv4 header sums (ones' complement) to 0xffff with its checksum. */
	for (int i = 0; i < 20; i += 2)
		acc += (uint32_t)h.b[i] << 8 | h.b[i + 1];
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	CU_ASSERT_EQUAL(acc, 0xffff);
	/* And so does the UDP checksum over pseudo-header, header and payload (odd length). */
	acc = 0;
	for (int i = 12; i < 20; i += 2)
		acc += (uint32_t)h.b[i] << 8 | h.b[i + 1];
	acc += 17 + 8 + sizeof(payload);
	for (int i = 20; i < 28; i += 2)
		acc += (uint32_t)h.b[i] << 8 | h.b[i + 1];
	for (size_t i = 0; i < sizeof(payload); i += 2)
		acc += (uint32_t)payload[i] << 8 | (i + 1 < sizeof(payload) ? payload[i + 1] : 0);
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	CU_ASSERT_EQUAL(acc, 0xffff);
	CU_ASSERT_EQUAL(h.b[0], 0x45);
	CU_ASSERT_EQUAL(h.b[9], 17);
	CU_ASSERT_EQUAL((h.b[2] << 8 | h.b[3]), 28 + 301);
	CU_ASSERT(memcmp(h.b + 12, &from.sin_addr, 4) == 0 && memcmp(h.b + 16, &to.sin_addr, 4) == 0);
	CU_ASSERT(memcmp(h.b + 20, &from.sin_port, 2) == 0 && memcmp(h.b + 22, &to.sin_port, 2) == 0);
}

static void test_install_divert_inject_remove(void)
{
	struct client_capture *cap = calloc(1, sizeof(*cap));
	struct client_capture_kconf k;
	struct client_capture_match m;
	uint8_t bufs[8][1600];
	struct sockaddr_in from[8], dst[8];
	char err[512], out[4096];
	int game, other;
	uint64_t rx0, diverted = 0;

	netns_setup();
	client_capture_kconf_default(&k, 0);
	match_ports(&m, 7000, 9000);
	if (client_capture_open(cap, &k, &m, err, sizeof(err)) < 0)
		fprintf(stderr, "\n  open: %s\n", err);
	CU_ASSERT_FATAL(cap->tproxy_fd >= 0);
	CU_ASSERT(table_present() && rule_present());
	sh_out(out, sizeof(out), "nft list table ip " CL_CAPTURE_TABLE " 2>&1");
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "flags owner"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "udp dport 7000-9000"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "tproxy to 127.0.0.1:"));
	sh_out(out, sizeof(out), "ip route show table 19539 2>&1");
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "local default dev lo"));

	game = udp_sock();
	other = udp_sock();
	rx0 = iface_rx("lsc1");
	send_to(game, SERVER, 7777, "hello", 5);
	CU_ASSERT_EQUAL(cap_recv(cap, bufs, from, dst, 8, 1000), 1);
	CU_ASSERT_STRING_EQUAL((char *)bufs[0], "hello");
	CU_ASSERT_EQUAL(dst[0].sin_addr.s_addr, inet_addr(SERVER));
	CU_ASSERT_EQUAL(ntohs(dst[0].sin_port), 7777);
	/* Nothing left the machine. */
	CU_ASSERT_EQUAL(iface_rx("lsc1"), rx0);

	/* Other ports go their way. */
	send_to(other, SERVER, 5000, "direct", 6);
	CU_ASSERT_EQUAL(cap_recv(cap, bufs, from, dst, 8, 200), 0);
	usleep(100000);
	CU_ASSERT_EQUAL(iface_rx("lsc1"), rx0 + 1);
	CU_ASSERT_EQUAL(client_capture_nft_diverted(&cap->nft, &diverted, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(diverted, 1);

	/* The reply comes from the server's address and port, byte for byte. */
	uint8_t reply[1400];
	for (size_t i = 0; i < sizeof(reply); i++)
		reply[i] = (uint8_t)(i ^ 0x5a);
	struct iovec pl = { reply, sizeof(reply) };
	struct sockaddr_in to = from[0], srv = dst[0];
	uint64_t bytes = 0;
	to.sin_addr.s_addr = inet_addr("10.77.1.1"); /* the game socket is bound to 0.0.0.0 */
	CU_ASSERT_EQUAL(client_capture_send(cap, &pl, &srv, &to, 1, &bytes), 1);
	CU_ASSERT_EQUAL(bytes, sizeof(reply));
	uint8_t got[2000];
	struct sockaddr_in peer;
	socklen_t pl_len = sizeof(peer);
	struct pollfd p = { .fd = game, .events = POLLIN };
	CU_ASSERT_FATAL(poll(&p, 1, 1000) == 1);
	ssize_t n = recvfrom(game, got, sizeof(got), 0, (struct sockaddr *)&peer, &pl_len);
	CU_ASSERT_EQUAL(n, (ssize_t)sizeof(reply));
	CU_ASSERT(memcmp(got, reply, sizeof(reply)) == 0);
	CU_ASSERT_EQUAL(peer.sin_addr.s_addr, inet_addr(SERVER));
	CU_ASSERT_EQUAL(ntohs(peer.sin_port), 7777);
	/* The injected reply is not diverted itself (it carries the client's mark). */
	CU_ASSERT_EQUAL(cap_recv(cap, bufs, from, dst, 8, 100), 0);

	/* A change of match: the new range only. */
	match_ports(&m, 27015, 27050);
	CU_ASSERT_EQUAL(client_capture_update(cap, &m, err, sizeof(err)), 0);
	send_to(game, SERVER, 7777, "now-direct", 10);
	send_to(game, SERVER, 27020, "now-diverted", 12);
	CU_ASSERT_EQUAL(cap_recv(cap, bufs, from, dst, 8, 1000), 1);
	CU_ASSERT_STRING_EQUAL((char *)bufs[0], "now-diverted");

	client_capture_close(cap);
	CU_ASSERT(!table_present());
	CU_ASSERT(!rule_present());
	sh_out(out, sizeof(out), "ip route show table 19539 2>&1");
	CU_ASSERT_PTR_NULL(strstr(out, "local default"));
	/* Direct again. */
	rx0 = iface_rx("lsc1");
	send_to(game, SERVER, 27020, "direct", 6);
	usleep(100000);
	CU_ASSERT_EQUAL(iface_rx("lsc1"), rx0 + 1);
	close(game);
	close(other);
	free(cap);
}

/* A child that installs a diversion and waits to be killed. */
static pid_t capturing_child(int *ready_fd)
{
	int p[2];
	pid_t pid;

	CU_ASSERT_FATAL(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		static struct client_capture cap;
		struct client_capture_kconf k;
		struct client_capture_match m;
		char err[512];

		close(p[0]);
		client_capture_kconf_default(&k, 0);
		match_ports(&m, 7000, 9000);
		if (client_capture_open(&cap, &k, &m, err, sizeof(err)) < 0) {
			fprintf(stderr, "child: %s\n", err);
			_exit(1);
		}
		(void)!write(p[1], "r", 1);
		for (;;)
			pause();
	}
	close(p[1]);
	*ready_fd = p[0];
	char c;
	CU_ASSERT_FATAL(read(p[0], &c, 1) == 1);
	return pid;
}

static void test_sigkill_leaves_nothing(void)
{
	int fd;
	pid_t child;
	char err[512];

	netns_setup();
	child = capturing_child(&fd);
	CU_ASSERT(table_present() && rule_present());
	/* A second client in the same namespace is refused, and so is --cleanup. */
	struct client_capture_kconf k;
	client_capture_kconf_default(&k, 0);
	CU_ASSERT_EQUAL(client_capture_cleanup(&k, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "another lightspeed-client is capturing"));
	CU_ASSERT(table_present() && rule_present());

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(fd);
	/* The kernel deleted the owned table with its socket; the watchdog the routing. */
	CU_ASSERT(!table_present());
	for (int i = 0; i < 200 && rule_present(); i++)
		usleep(10000);
	CU_ASSERT(!rule_present());
}

static void test_stale_state_cleaned(void)
{
	struct client_capture *cap = calloc(1, sizeof(*cap));
	struct client_capture_kconf k;
	struct client_capture_match m;
	char err[512], out[4096];

	netns_setup();
	client_capture_kconf_default(&k, 0);
	/* As a client that could not own its table would leave them. */
	CU_ASSERT_FATAL(sh("nft add table ip " CL_CAPTURE_TABLE " && nft add chain ip " CL_CAPTURE_TABLE
			   " junk && ip rule add fwmark 0x4c53 lookup 19539 pref 100 && "
			   "ip route add local default dev lo table 19539") == 0);
	CU_ASSERT(table_present() && rule_present());
	CU_ASSERT_EQUAL(client_capture_cleanup(&k, err, sizeof(err)), 0);
	CU_ASSERT(!table_present() && !rule_present());
	CU_ASSERT_EQUAL(client_capture_cleanup(&k, err, sizeof(err)), 0); /* twice is fine */

	/* And at start: the stale copy goes, the new one is complete. */
	CU_ASSERT_FATAL(sh("nft add table ip " CL_CAPTURE_TABLE " && nft add chain ip " CL_CAPTURE_TABLE
			   " junk && ip rule add fwmark 0x4c53 lookup 19539 pref 100") == 0);
	match_ports(&m, 7000, 9000);
	CU_ASSERT_EQUAL_FATAL(client_capture_open(cap, &k, &m, err, sizeof(err)), 0);
	sh_out(out, sizeof(out), "nft list table ip " CL_CAPTURE_TABLE " 2>&1");
	CU_ASSERT_PTR_NULL(strstr(out, "junk"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "flags owner"));
	sh_out(out, sizeof(out), "ip rule show | grep -c 'fwmark 0x4c53'");
	CU_ASSERT_STRING_EQUAL(out, "1\n");
	client_capture_close(cap);
	CU_ASSERT(!table_present() && !rule_present());
	free(cap);
}

/* A process in a cgroup of its own that sends one datagram to SERVER:port on demand. */
static pid_t sender_in_cgroup(const char *cgdir, int *cmd_fd)
{
	int p[2];
	pid_t pid;

	CU_ASSERT_FATAL(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		char path[300], c;
		int fd;
		close(p[1]);
		if (cgdir) {
			snprintf(path, sizeof(path), "%s/cgroup.procs", cgdir);
			fd = open(path, O_WRONLY);
			if (fd < 0 || write(fd, "0", 1) != 1)
				_exit(2);
			close(fd);
		}
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		while (read(p[0], &c, 1) == 1) {
			struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7777) };
			inet_pton(AF_INET, SERVER, &to.sin_addr);
			(void)!sendto(fd, "child", 5, 0, (struct sockaddr *)&to, sizeof(to));
		}
		_exit(0);
	}
	close(p[0]);
	*cmd_fd = p[1];
	return pid;
}

static void test_match_by_cgroup_and_uid(void)
{
	struct client_capture *cap = calloc(1, sizeof(*cap));
	struct client_capture_kconf k;
	struct client_capture_match m;
	uint8_t bufs[8][1600];
	struct sockaddr_in from[8], dst[8];
	char err[512], desc[256], cgdir[256], mnt[256] = "";
	int cmd, me;
	pid_t child;
	FILE *f;

	netns_setup();
	/* A cgroup of its own for the "game", as a launcher's scope would give it. */
	f = popen("awk '$9 == \"cgroup2\" { print $5; exit }' /proc/self/mountinfo", "r");
	CU_ASSERT_FATAL(f && fgets(mnt, sizeof(mnt), f));
	pclose(f);
	mnt[strcspn(mnt, "\n")] = '\0';
	snprintf(cgdir, sizeof(cgdir), "%s/ls-test-capture-%d", mnt, (int)getpid());
	CU_ASSERT_FATAL(mkdir(cgdir, 0755) == 0);
	child = sender_in_cgroup(cgdir, &cmd);
	usleep(50000);

	client_capture_kconf_default(&k, 0);
	match_ports(&m, 7000, 9000);
	CU_ASSERT_EQUAL_FATAL(client_capture_match_pid(&m, child, desc, sizeof(desc), err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(desc, "ls-test-capture-"));
	CU_ASSERT(m.cgroup_level >= 1 && !m.by_uid);
	CU_ASSERT_EQUAL_FATAL(client_capture_open(cap, &k, &m, err, sizeof(err)), 0);

	me = udp_sock();
	send_to(me, SERVER, 7777, "not-the-game", 12);
	CU_ASSERT_EQUAL(cap_recv(cap, bufs, from, dst, 8, 200), 0);
	CU_ASSERT(write(cmd, "s", 1) == 1);
	CU_ASSERT_EQUAL(cap_recv(cap, bufs, from, dst, 8, 1000), 1);
	CU_ASSERT_STRING_EQUAL((char *)bufs[0], "child");

	/* By uid: another uid's sockets are not matched; ours are. */
	memset(&m, 0, sizeof(m));
	match_ports(&m, 7000, 9000);
	m.by_uid = true;
	m.uid = 54321;
	CU_ASSERT_EQUAL(client_capture_update(cap, &m, err, sizeof(err)), 0);
	send_to(me, SERVER, 7777, "uid0", 4);
	CU_ASSERT_EQUAL(cap_recv(cap, bufs, from, dst, 8, 200), 0);
	m.uid = getuid();
	CU_ASSERT_EQUAL(client_capture_update(cap, &m, err, sizeof(err)), 0);
	send_to(me, SERVER, 7777, "uid0", 4);
	CU_ASSERT_EQUAL(cap_recv(cap, bufs, from, dst, 8, 1000), 1);

	/* A process in the root cgroup is matched by its uid. */
	CU_ASSERT_EQUAL(client_capture_match_pid(&m, 1, desc, sizeof(desc), err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(client_capture_match_pid(&m, 999999999, desc, sizeof(desc), err, sizeof(err)), -1);

	client_capture_close(cap);
	close(cmd);
	waitpid(child, NULL, 0);
	close(me);
	CU_ASSERT(rmdir(cgdir) == 0);
	free(cap);
}

UNIT_MAIN("capture",
	  { "checksums verify", test_checksums_verify },
	  { "install, divert, inject, remove", test_install_divert_inject_remove },
	  { "SIGKILL leaves nothing", test_sigkill_leaves_nothing },
	  { "stale state cleaned", test_stale_state_cleaned },
	  { "match by cgroup and uid", test_match_by_cgroup_and_uid })
