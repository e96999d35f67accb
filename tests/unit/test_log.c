/* Unit tests for shared/log.c: line format, levels, the journald prefix, truncation
 * and the rate limiter, with stderr captured through a pipe. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#include "unit.h"

static int saved_stderr = -1;
static int cap_read = -1;
static char captured[65536];

/* Point fd 2 at a fresh pipe; the messages are short enough to sit in its buffer
 * until capture_end reads them. */
static void capture_begin(void)
{
	int p[2];

	CU_ASSERT_FATAL(pipe(p) == 0);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	CU_ASSERT_FATAL(saved_stderr >= 0);
	CU_ASSERT_FATAL(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
	close(p[1]);
	cap_read = p[0];
}

/* Restore stderr and return everything written meanwhile (NUL-terminated). */
static const char *capture_end(void)
{
	size_t n = 0;
	ssize_t r;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	/* Every write end is closed now, so read() ends at EOF. */
	while (n < sizeof(captured) - 1 &&
	       (r = read(cap_read, captured + n, sizeof(captured) - 1 - n)) > 0)
		n += (size_t)r;
	captured[n] = '\0';
	close(cap_read);
	cap_read = -1;
	return captured;
}

/* The byte-exact tests compare lines without the timestamp a terminal gets. */
static void log_init(const char *prog, enum ls_log_level level)
{
	ls_log_init(prog, level);
	ls_log_set_timestamps(false);
}

/* Count lines (newlines) in s. */
static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_format(void)
{
	const char *out;

	log_init("/usr/bin/lsprog", LS_LOG_INFO);
	capture_begin();
	ls_err("hello %d", 42);
	ls_warn("careful");
	ls_info("fyi %s", "x");
	ls_debug("hidden");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "lsprog: error: hello 42\n"
				    "lsprog: warn: careful\n"
				    "lsprog: info: fyi x\n");
}

static void test_levels(void)
{
	const char *out;

	log_init("p", LS_LOG_WARN);
	CU_ASSERT_EQUAL(ls_log_get_level(), LS_LOG_WARN);
	capture_begin();
	ls_info("no");
	ls_debug("no");
	ls_warn("yes");
	ls_err("yes");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "p: warn: yes\np: error: yes\n");

	ls_log_set_level(LS_LOG_ERR);
	capture_begin();
	ls_warn("no");
	ls_err("only");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "p: error: only\n");

	/* Debug lines name the function that logged. */
	ls_log_set_level(LS_LOG_DEBUG);
	capture_begin();
	ls_debug("x=%d", 3);
	ls_log(LS_LOG_DEBUG, "somefunc", "direct");
	ls_log(LS_LOG_INFO, "somefunc", "info has no func");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "p: debug: test_levels: x=3\n"
				    "p: debug: somefunc: direct\n"
				    "p: info: info has no func\n");
}

static void test_level_names(void)
{
	CU_ASSERT_EQUAL(ls_log_level_parse("error"), LS_LOG_ERR);
	CU_ASSERT_EQUAL(ls_log_level_parse("warn"), LS_LOG_WARN);
	CU_ASSERT_EQUAL(ls_log_level_parse("info"), LS_LOG_INFO);
	CU_ASSERT_EQUAL(ls_log_level_parse("debug"), LS_LOG_DEBUG);
	CU_ASSERT_EQUAL(ls_log_level_parse("DEBUG"), -1);
	CU_ASSERT_EQUAL(ls_log_level_parse("verbose"), -1);
	CU_ASSERT_EQUAL(ls_log_level_parse(""), -1);
	CU_ASSERT_EQUAL(ls_log_level_parse("info "), -1);
	CU_ASSERT_EQUAL(ls_log_level_parse(NULL), -1);
	CU_ASSERT_STRING_EQUAL(ls_log_level_name(LS_LOG_ERR), "error");
	CU_ASSERT_STRING_EQUAL(ls_log_level_name(LS_LOG_WARN), "warn");
	CU_ASSERT_STRING_EQUAL(ls_log_level_name(LS_LOG_INFO), "info");
	CU_ASSERT_STRING_EQUAL(ls_log_level_name(LS_LOG_DEBUG), "debug");
}

static void test_journald(void)
{
	struct stat st;
	char env[64];
	const char *out;

	capture_begin();
	/* JOURNAL_STREAM names the stream stderr is connected to, as systemd sets it. */
	CU_ASSERT_FATAL(fstat(STDERR_FILENO, &st) == 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_init("jp", LS_LOG_DEBUG);
	ls_err("e");
	ls_warn("w");
	ls_info("i");
	ls_log(LS_LOG_DEBUG, "fn", "d");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "<3>jp: error: e\n"
				    "<4>jp: warn: w\n"
				    "<6>jp: info: i\n"
				    "<7>jp: debug: fn: d\n");

	/* Inherited from a parent whose journal stream is not our stderr: no prefix. */
	capture_begin();
	setenv("JOURNAL_STREAM", "1:2", 1);
	log_init("jp", LS_LOG_INFO);
	ls_err("e");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "jp: error: e\n");

	capture_begin();
	setenv("JOURNAL_STREAM", "garbage", 1);
	log_init("jp", LS_LOG_INFO);
	ls_err("e");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "jp: error: e\n");

	capture_begin();
	unsetenv("JOURNAL_STREAM");
	log_init("jp", LS_LOG_INFO);
	ls_err("e");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "jp: error: e\n");
}

/* Not under journald: every line starts with a UTC timestamp, milliseconds included. */
static void test_timestamps(void)
{
	const char *out;
	int y, mo, d, h, mi, sec, ms, used = 0;
	char z = 0;

	unsetenv("JOURNAL_STREAM");
	capture_begin();
	ls_log_init("ts", LS_LOG_INFO);
	ls_warn("stamped");
	out = capture_end();
	CU_ASSERT_EQUAL(sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c %n", &y, &mo, &d, &h, &mi, &sec,
			       &ms, &z, &used), 8);
	CU_ASSERT_EQUAL(z, 'Z');
	CU_ASSERT(y >= 2024 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60);
	CU_ASSERT_EQUAL(used, 25);
	CU_ASSERT_STRING_EQUAL(out + used, "ts: warn: stamped\n");
	/* The journal stamps lines itself: no timestamp there. */
	struct stat st;
	char env[64];
	capture_begin();
	CU_ASSERT_FATAL(fstat(STDERR_FILENO, &st) == 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	ls_log_init("ts", LS_LOG_INFO);
	ls_warn("journal");
	out = capture_end();
	unsetenv("JOURNAL_STREAM");
	CU_ASSERT_STRING_EQUAL(out, "<4>ts: warn: journal\n");
}

static void test_truncate_and_newlines(void)
{
	static char big[5000];
	const char *out;
	size_t hdr = strlen("t: error: ");

	log_init("t", LS_LOG_INFO);
	memset(big, 'a', sizeof(big) - 1);
	capture_begin();
	ls_err("%s", big);
	out = capture_end();
	/* The message is cut at 1 KiB; the line still ends with its newline. */
	CU_ASSERT_EQUAL(strlen(out), hdr + 1024 + 1);
	CU_ASSERT_EQUAL(strncmp(out, "t: error: aaaa", hdr + 4), 0);
	CU_ASSERT_EQUAL(out[strlen(out) - 1], '\n');
	CU_ASSERT_EQUAL(out[strlen(out) - 2], 'a');
	CU_ASSERT_EQUAL(lines(out), 1);

	/* Embedded newlines cannot forge a second line; a trailing one is dropped. */
	capture_begin();
	ls_err("a\nb\r\nc\n");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "t: error: a b  c\n");

	capture_begin();
	ls_err("%s", "");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "t: error: \n");
}

static void test_errno_kept(void)
{
	const char *out;

	log_init("t", LS_LOG_INFO);
	capture_begin();
	errno = ENOENT;
	ls_err("open: %m");
	CU_ASSERT_EQUAL(errno, ENOENT);
	ls_debug("filtered");
	CU_ASSERT_EQUAL(errno, ENOENT);
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "t: error: open: No such file or directory\n");
}

static void test_ratelimit(void)
{
	struct ls_ratelog rl;
	const char *out;
	int i;

	memset(&rl, 0, sizeof(rl));
	log_init("rl", LS_LOG_INFO);
	capture_begin();
	for (i = 0; i < 20; i++)
		ls_warn_rl(&rl, "packet %d", i);
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "rl: warn: packet 0\nrl: warn: packet 1\nrl: warn: packet 2\n"
				    "rl: warn: packet 3\nrl: warn: packet 4\n");
	CU_ASSERT_EQUAL(rl.suppressed, 15);

	/* Age the window instead of sleeping: the next message opens a new one and
	 * reports what was dropped, once. */
	rl.window_start_us -= 2000000;
	capture_begin();
	ls_warn_rl(&rl, "again");
	ls_warn_rl(&rl, "and again");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "rl: warn: again (15 similar messages suppressed)\n"
				    "rl: warn: and again\n");
	CU_ASSERT_EQUAL(rl.suppressed, 0);

	/* That window now holds two; three more pass, the fourth is dropped. */
	capture_begin();
	for (i = 0; i < 4; i++)
		ls_warn_rl(&rl, "m%d", i);
	out = capture_end();
	CU_ASSERT_EQUAL(lines(out), 3);
	CU_ASSERT_EQUAL(rl.suppressed, 1);

	/* A filtered level neither prints nor counts. */
	rl.window_start_us -= 2000000;
	capture_begin();
	ls_log_rl(&rl, LS_LOG_DEBUG, __func__, "quiet");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "");
	CU_ASSERT_EQUAL(rl.suppressed, 1);
	capture_begin();
	ls_log_rl(&rl, LS_LOG_ERR, __func__, "loud");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "rl: error: loud (1 similar messages suppressed)\n");
}

UNIT_MAIN("log",
	  { "format", test_format },
	  { "levels", test_levels },
	  { "level names", test_level_names },
	  { "journald", test_journald },
	  { "timestamps", test_timestamps },
	  { "truncate and newlines", test_truncate_and_newlines },
	  { "errno kept", test_errno_kept },
	  { "ratelimit", test_ratelimit })
