/* libFuzzer harness: the agent's HTTP routes (agent/http.c on shared/httpd and
 * libmicrohttpd), end to end: each input is written as the raw bytes of one request
 * to the real server on loopback, the loop runs until the server has answered or shut
 * the connection, and whatever comes back must be an HTTP answer. Sanitizers catch the
 * rest. */
#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../agent/agent.h"
#include "../../agent/ctl.h"
#include "../../agent/http.h"
#include "../../agent/icmp.h"
#include "log.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static struct agent ag;
static unsigned port;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[300];

	(void)argc;
	(void)argv;
	ls_log_init("fuzz_agent_http", LS_LOG_ERR);
	ag.loop = uv_default_loop();
	agent_conf_defaults(&ag.conf);
	ag.conf.agent.http.sin_port = 0;
	ag.start_us = ls_now_us();
	snprintf(ag.cert.fp_str, sizeof(ag.cert.fp_str), "sha256:%064d", 0);
	sessions_init(&ag.sess, "");
	/* Sessions to report (detached: no connection holds them). */
	for (uint32_t id = 1; id <= 3; id++) {
		static const uint8_t key[LS_CTL_KEY_LEN];

		sessions_add(&ag.sess, id, key, 2, NULL, 0);
	}
	ag.icmp = icmp_open(ag.loop, 0);
	ag.http = http_open(&ag, err, sizeof(err));
	if (!ag.http)
		abort();
	port = http_port(ag.http);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint8_t buf[65536];
	size_t got = 0;
	uint64_t end = ls_now_us() + 200000;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return 0;
	}
	for (size_t off = 0; off < len && ls_now_us() < end;) {
		ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);

		if (n > 0)
			off += (size_t)n;
		uv_run(ag.loop, UV_RUN_NOWAIT);
	}
	shutdown(fd, SHUT_WR);
	/* Until the server closes, or has been quiet for 5 ms (on loopback it answers
	 * within a loop turn; quiet means a request it is still waiting the rest of: the
	 * next input goes on). */
	uint64_t quiet = ls_now_us() + 5000;
	while (ls_now_us() < end && ls_now_us() < quiet) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		uv_run(ag.loop, UV_RUN_NOWAIT);
		if (poll(&p, 1, 1) <= 0)
			continue;
		quiet = ls_now_us() + 5000;
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf))
			got = 0; /* a long answer: only its start is checked */
	}
	close(fd);
	/* Whatever came back is HTTP (or nothing: the server may just close). */
	if (got >= 5 && memcmp(buf, "HTTP/", 5) != 0 && got < sizeof(buf))
		abort();
	return 0;
}
