/* Unit tests for shared/steer.c, the steering server, through raw Unix sockets in a
 * private temporary directory: half-closing peers, over-long lines, the per-turn budget,
 * a peer that does not read, answers over the size limit, and what the socket path may
 * replace. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "steer.h"
#include "util.h"

#include "unit.h"

static char dir[64], path[96];
static struct ls_steer *srv;

static const struct ls_steer_arg big_args[] = {
	{ .key = "bytes", .types = LS_SA_INT, .required = true, .min = 1, .max = 8000000,
	  .help = "the answer's size" },
	{ NULL },
};
static const struct ls_steer_def defs[] = {
	{ "ping", NULL, "pong" },
	{ "big", big_args, "a large answer" },
	LS_STEER_CMD_BUILTINS,
	{ NULL, NULL, NULL },
};

static enum ls_rc h_ping(void *ctx, struct ls_steer_call *call)
{
	(void)ctx;
	call->result = json_pack("{s:b}", "pong", 1);
	return LS_RC_OK;
}

static enum ls_rc h_big(void *ctx, struct ls_steer_call *call)
{
	size_t n = (size_t)json_integer_value(json_object_get(call->req, "bytes"));
	char *s = malloc(n + 1);

	(void)ctx;
	memset(s, 'b', n);
	s[n] = '\0';
	call->result = json_pack("{s:s}", "s", s);
	free(s);
	return LS_RC_OK;
}

static const struct ls_steer_handler handlers[] = {
	{ "ping", h_ping },
	{ "big", h_big },
	{ NULL, NULL },
};

static void setup(void)
{
	char err[256];

	snprintf(dir, sizeof(dir), "/tmp/ls-steer-%d-XXXXXX", (int)getpid());
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	srv = ls_steer_open(path, 0600, defs, handlers, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
}

static void teardown(void)
{
	ls_steer_close(srv);
	srv = NULL;
	unlink(path);
	rmdir(dir);
}

static int peer(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ls_steer_run(srv); /* accepts it */
	return fd;
}

/* Run the server while its fd is ready (at most ms). */
static void serve(int ms)
{
	uint64_t end = ls_now_us() + (uint64_t)ms * 1000u;

	while (ls_now_us() < end) {
		struct pollfd p = { .fd = ls_steer_fd(srv), .events = POLLIN };
		if (poll(&p, 1, 5) > 0)
			ls_steer_run(srv);
	}
}

/* Everything the server sends until it closes or ms pass, serving meanwhile. */
static size_t drain(int fd, char *buf, size_t cap, int ms, bool *eof)
{
	uint64_t end = ls_now_us() + (uint64_t)ms * 1000u;
	size_t n = 0;

	*eof = false;
	while (ls_now_us() < end && !*eof) {
		ls_steer_run(srv);
		ssize_t r = recv(fd, buf + n, cap - 1 - n, MSG_DONTWAIT);
		if (r == 0)
			*eof = true;
		else if (r > 0)
			n += (size_t)r;
		else
			usleep(1000);
	}
	buf[n] = '\0';
	return n;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_half_close_keeps_every_answer(void)
{
	static char buf[65536];
	bool eof;

	setup();
	for (int i = 0; i < 50; i++) {
		int fd = peer();
		/* Three requests, the last without its newline, then the write side closes. */
		static const char req[] = "{\"id\":1,\"cmd\":\"ping\"}\n{\"id\":2,\"cmd\":\"ping\"}\n"
					  "{\"id\":3,\"cmd\":\"ping\"}";
		CU_ASSERT(send(fd, req, sizeof(req) - 1, 0) == (ssize_t)sizeof(req) - 1);
		shutdown(fd, SHUT_WR);
		drain(fd, buf, sizeof(buf), 2000, &eof);
		CU_ASSERT(eof);
		CU_ASSERT_EQUAL(count_lines(buf), 3);
		CU_ASSERT_PTR_NOT_NULL(strstr(buf, "{\"id\":3,\"ok\":true"));
		close(fd);
	}
	struct ls_steer_stats st;
	ls_steer_get_stats(srv, &st);
	CU_ASSERT_EQUAL(st.connections, 0);
	teardown();
}

static void test_over_long_line_answered_once_and_skipped(void)
{
	static char buf[65536];
	char *line = malloc(200000);
	bool eof;
	int fd;

	setup();
	fd = peer();
	memset(line, 'x', 200000);
	/* 200,000 bytes without a newline, then two good requests. */
	for (size_t off = 0; off < 200000;) {
		ssize_t w = send(fd, line + off, 200000 - off, MSG_DONTWAIT);
		if (w > 0)
			off += (size_t)w;
		ls_steer_run(srv);
	}
	static const char tail[] = "\n{\"id\":7,\"cmd\":\"ping\"}\n{\"id\":8,\"cmd\":\"ping\"}\n";
	CU_ASSERT(send(fd, tail, sizeof(tail) - 1, 0) > 0);
	shutdown(fd, SHUT_WR);
	drain(fd, buf, sizeof(buf), 2000, &eof);
	CU_ASSERT(eof);
	CU_ASSERT_EQUAL(count_lines(buf), 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"code\":\"too_long\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "{\"id\":8,\"ok\":true"));
	close(fd);
	free(line);
	teardown();
}

static void test_turn_budget(void)
{
	static char buf[1 << 20];
	struct ls_steer_stats st;
	char *many = malloc(1000 * 24);
	size_t len = 0;
	bool eof;
	int fd;

	setup();
	fd = peer();
	for (int i = 0; i < 1000; i++)
		len += (size_t)sprintf(many + len, "{\"cmd\":\"ping\",\"id\":%d}\n", i % 10);
	CU_ASSERT(send(fd, many, len, 0) == (ssize_t)len);
	ls_steer_run(srv);
	ls_steer_get_stats(srv, &st);
	/* One turn handles a bounded share... */
	CU_ASSERT(st.requests > 0);
	CU_ASSERT(st.requests <= 64);
	/* ...and says there is more: the fd is ready again at once. */
	struct pollfd p = { .fd = ls_steer_fd(srv), .events = POLLIN };
	CU_ASSERT_EQUAL(poll(&p, 1, 100), 1);
	shutdown(fd, SHUT_WR);
	drain(fd, buf, sizeof(buf), 5000, &eof);
	CU_ASSERT(eof);
	CU_ASSERT_EQUAL(count_lines(buf), 1000);
	close(fd);
	free(many);
	teardown();
}

static void test_peer_that_does_not_read_is_not_served(void)
{
	static char buf[1 << 20];
	struct ls_steer_stats st;
	char req[64];
	int fd, n = snprintf(req, sizeof(req), "{\"cmd\":\"big\",\"bytes\":100000}\n");
	size_t got = 0;

	setup();
	fd = peer();
	for (int i = 0; i < 100; i++)
		CU_ASSERT(send(fd, req, (size_t)n, 0) == n);
	serve(300);
	ls_steer_get_stats(srv, &st);
	/* What the kernel holds plus one answer over the pause mark: a few, not 100. */
	CU_ASSERT(st.requests >= 1);
	CU_ASSERT(st.requests <= 6);
	/* Reading resumes the service; every answer comes, whole and in order. */
	int lines = 0;
	uint64_t end = ls_now_us() + 10000000;
	while (lines < 100 && ls_now_us() < end) {
		ls_steer_run(srv);
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r > 0) {
			for (ssize_t i = 0; i < r; i++)
				lines += buf[i] == '\n';
			got += (size_t)r;
		} else {
			usleep(500);
		}
	}
	CU_ASSERT_EQUAL(lines, 100);
	CU_ASSERT(got > 100u * 100000u);
	close(fd);
	teardown();
}

static void test_answer_over_the_limit_is_refused(void)
{
	static char buf[65536];
	bool eof;
	int fd;

	setup();
	fd = peer();
	static const char req[] = "{\"id\":1,\"cmd\":\"big\",\"bytes\":5000000}\n";
	CU_ASSERT(send(fd, req, sizeof(req) - 1, 0) > 0);
	shutdown(fd, SHUT_WR);
	drain(fd, buf, sizeof(buf), 3000, &eof);
	CU_ASSERT(eof);
	CU_ASSERT_EQUAL(count_lines(buf), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"code\":\"too_long\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "4194304-byte limit"));
	close(fd);
	teardown();
}

static void test_socket_path_rules(void)
{
	struct ls_steer *other;
	struct stat st;
	char err[256];
	int fd;

	setup();
	/* Another process listens there: refused. */
	other = ls_steer_open(path, 0600, defs, handlers, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NULL(other);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "another process is listening"));
	/* A file that is not a socket is never replaced. */
	char file[128];
	snprintf(file, sizeof(file), "%s/proxy.toml", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	CU_ASSERT(write(fd, "keep me\n", 8) == 8);
	close(fd);
	other = ls_steer_open(file, 0600, defs, handlers, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NULL(other);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not a socket"));
	CU_ASSERT(stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 8);
	unlink(file);
	/* The socket was removed and another instance made its own: closing the first
	 * leaves the second's. */
	unlink(path);
	other = ls_steer_open(path, 0600, defs, handlers, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	ls_steer_close(srv);
	srv = other;
	CU_ASSERT(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	/* A stale socket (nobody listens) is replaced. */
	ls_steer_close(srv);
	srv = NULL;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	CU_ASSERT(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	close(s); /* leaves the file, with no listener */
	srv = ls_steer_open(path, 0600, defs, handlers, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL(srv);
	teardown();
}

UNIT_MAIN("steer",
	  { "a half-close keeps every answer", test_half_close_keeps_every_answer },
	  { "an over-long line is answered once and skipped",
	    test_over_long_line_answered_once_and_skipped },
	  { "the turn's budget", test_turn_budget },
	  { "a peer that does not read is not served", test_peer_that_does_not_read_is_not_served },
	  { "an answer over the limit is refused", test_answer_over_the_limit_is_refused },
	  { "socket path rules", test_socket_path_rules })
