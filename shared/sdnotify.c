/* sd_notify's datagram protocol, for Type=notify units (shared/sdnotify.h). */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One socket for the life of the process (opened at the first message), and the
 * watchdog's schedule. */
static int sdnotify_fd = -1;
static uint64_t sdnotify_last_us;
static int sdnotify_wd_known;
static uint64_t sdnotify_wd_us;

int ls_sdnotify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n;

	if (!path || !path[0])
		return 0;
	n = strlen(path);
	/* "/..." a path; "@..." the abstract namespace (a NUL first byte). Anything else
	 * is not a socket this protocol knows. */
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	if (sdnotify_fd < 0) {
		sdnotify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (sdnotify_fd < 0)
			return -1;
	}
	if (sendto(sdnotify_fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		return -1;
	return 1;
}

void ls_sdnotify_ready(const char *fmt, ...)
{
	char msg[512] = "READY=1";

	if (fmt) {
		va_list ap;
		size_t n = strlen(msg);

		n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\nSTATUS=");
		va_start(ap, fmt);
		vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
		va_end(ap);
		/* A STATUS= line is one line: a newline in it would start another variable. */
		for (char *p = msg + n; *p; p++)
			if (*p == '\n')
				*p = ' ';
	}
	ls_sdnotify(msg);
}

void ls_sdnotify_stopping(void)
{
	ls_sdnotify("STOPPING=1");
}

uint64_t ls_sdnotify_watchdog_us(void)
{
	if (!sdnotify_wd_known) {
		const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
		char *end;

		sdnotify_wd_known = 1;
		if (!us || !getenv("NOTIFY_SOCKET"))
			return 0;
		/* The variables are inherited: they are for our process only when the
		 * manager says so (or says nothing about the pid). */
		if (pid && strtol(pid, &end, 10) != (long)getpid())
			return 0;
		errno = 0;
		unsigned long long v = strtoull(us, &end, 10);
		if (errno == 0 && end != us && *end == '\0')
			sdnotify_wd_us = (uint64_t)v;
	}
	return sdnotify_wd_us;
}

void ls_sdnotify_watchdog(uint64_t now_us)
{
	uint64_t every = ls_sdnotify_watchdog_us();

	if (!every)
		return;
	if (sdnotify_last_us && now_us - sdnotify_last_us < every / 3)
		return;
	sdnotify_last_us = now_us;
	ls_sdnotify("WATCHDOG=1");
}
