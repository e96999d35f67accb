/* Leveled logging to stderr, with the program name; journald priorities when run
 * under systemd, a UTC timestamp otherwise (journald stamps lines itself). Control paths only: the per-packet path counts, it does not log. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define LOG_MSG_MAX 1024 /* longer messages are truncated */
#define RL_BURST 5
#define RL_PERIOD_US 1000000u

static char log_prog[64] = "lightspeed";
static enum ls_log_level log_level = LS_LOG_INFO;
static bool log_journal;
static bool log_stamp;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
/* syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const char *const level_prio[] = { "<3>", "<4>", "<6>", "<7>" };

/* systemd sets JOURNAL_STREAM to "dev:inode" of the stream it connected to stderr.
 * Comparing it with our stderr keeps a child whose stderr was redirected elsewhere
 * (which inherits the variable) from writing "<6>" into a plain file. */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!env || sscanf(env, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void ls_log_init(const char *prog, enum ls_log_level level)
{
	const char *base;

	if (prog) {
		base = strrchr(prog, '/');
		snprintf(log_prog, sizeof(log_prog), "%s", base ? base + 1 : prog);
	}
	ls_log_set_level(level);
	log_journal = stderr_is_journal();
	log_stamp = !log_journal;
}

void ls_log_set_timestamps(bool on)
{
	log_stamp = on;
}

/* "2026-01-31T12:34:56.789Z " into buf (at least 32 bytes); returns its length. */
static size_t stamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm))
		return 0;
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		return 0;
	return n + (size_t)snprintf(buf + n, len - n, ".%03ldZ ", ts.tv_nsec / 1000000);
}

void ls_log_set_level(enum ls_log_level level)
{
	if ((int)level < (int)LS_LOG_ERR)
		level = LS_LOG_ERR;
	if (level > LS_LOG_DEBUG)
		level = LS_LOG_DEBUG;
	log_level = level;
}

enum ls_log_level ls_log_get_level(void)
{
	return log_level;
}

int ls_log_level_parse(const char *s)
{
	size_t i;

	if (!s)
		return -1;
	for (i = 0; i < LS_ARRAY_LEN(level_names); i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *ls_log_level_name(enum ls_log_level level)
{
	if ((int)level < 0 || (size_t)level >= LS_ARRAY_LEN(level_names))
		return "unknown";
	return level_names[level];
}

static void vlog(enum ls_log_level level, const char *func, const char *suffix,
		 const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* Format one line and write it with a single write(), so lines from several processes
 * sharing stderr (or journald's stream) never interleave. */
static void vlog(enum ls_log_level level, const char *func, const char *suffix,
		 const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX + 1];
	char line[LOG_MSG_MAX + 256];
	size_t n = 0, i, mlen;
	int r;
	ssize_t w;

	/* vsnprintf stops at the buffer's end: a long message is cut, never overflows. */
	r = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (r < 0)
		snprintf(msg, sizeof(msg), "(bad log format '%s')", fmt);
	mlen = strlen(msg);
	while (mlen > 0 && msg[mlen - 1] == '\n')
		msg[--mlen] = '\0';
	/* One message is one line: text from the network must not forge extra lines. */
	for (i = 0; i < mlen; i++)
		if (msg[i] == '\n' || msg[i] == '\r')
			msg[i] = ' ';

	if (log_journal)
		n += (size_t)snprintf(line, sizeof(line), "%s", level_prio[level]);
	else if (log_stamp)
		n += stamp(line, 40);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: %s: ", log_prog,
			      level_names[level]);
	if (level == LS_LOG_DEBUG && func)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%.64s: ", func);
	/* The header is at most 25 + 63 + 9 + 66 bytes, the message LOG_MSG_MAX and the
	 * suffix under 64, so everything fits; the clipping below is only a guard that
	 * keeps room for the newline. */
	r = snprintf(line + n, sizeof(line) - n - 1, "%s%s", msg, suffix ? suffix : "");
	if (r < 0)
		r = 0;
	n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	line[n++] = '\n';

	do
		w = write(STDERR_FILENO, line, n);
	while (w < 0 && errno == EINTR);
}

void ls_log(enum ls_log_level level, const char *func, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if ((int)level < 0 || level > log_level)
		return;
	va_start(ap, fmt);
	vlog(level, func, NULL, fmt, ap);
	va_end(ap);
	/* Logging must not disturb the errno the caller is about to inspect. */
	errno = saved;
}

void ls_log_rl(struct ls_ratelog *rl, enum ls_log_level level, const char *func,
	       const char *fmt, ...)
{
	int saved = errno;
	char suffix[64] = "";
	uint64_t now;
	va_list ap;

	if ((int)level < 0 || level > log_level)
		return;
	now = ls_now_us();
	if (now - rl->window_start_us >= RL_PERIOD_US || now < rl->window_start_us) {
		rl->window_start_us = now;
		rl->in_window = 0;
	}
	if (rl->in_window >= RL_BURST) {
		if (rl->suppressed < UINT32_MAX)
			rl->suppressed++;
		return;
	}
	rl->in_window++;
	if (rl->suppressed) {
		snprintf(suffix, sizeof(suffix), " (%u similar messages suppressed)",
			 rl->suppressed);
		rl->suppressed = 0;
	}
	errno = saved; /* for a %m in fmt */
	va_start(ap, fmt);
	vlog(level, func, suffix, fmt, ap);
	va_end(ap);
	errno = saved;
}
