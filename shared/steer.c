/* Steering socket server (docs/protocol.md section 3). It owns a private epoll set so
 * that its owner's loop needs to watch one fd only. Nothing here runs per packet. */
#include "steer.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdarg.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "prom.h"
#include "util.h"

/* Limits that keep a steering peer from costing the packet loop more than about a
 * millisecond per turn (docs/protocol.md 3, "Limits"). */
#define TURN_US      1000u   /* requests handled per turn: until this much time went... */
#define TURN_LINES   64u     /* ...or this many lines, whichever first */
#define TURN_ACCEPTS 64      /* connections accepted (or refused) per turn */

#define WAKE_TAG UINT32_MAX /* the timer in the set: more work, or a stall to check */

struct conn {
	int fd;
	bool subscribed;
	bool skipping;   /* inside an over-long line: discard up to its newline */
	bool eof;        /* the peer has shut down its side: answer what came, then close */
	bool closing;    /* close once the output is flushed */
	bool dead;       /* close at the end of this turn */
	char *in;        /* LS_STEER_MAX_LINE bytes */
	size_t start, in_len; /* unhandled input is in[start..in_len) */
	size_t scan;     /* in[start..scan) holds no newline */
	struct ls_buf out;
	size_t out_off;
	uint64_t stall_us; /* since when output waits with none of it read; 0: none waits */
	uint32_t watched;  /* the epoll events registered */
};

struct ls_steer {
	int lfd, epfd, wake_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ino_t ino;       /* the socket file made, so that only it is removed at the end */
	dev_t dev;
	const struct ls_steer_def *defs;
	const struct ls_steer_handler *handlers;
	void *ctx;
	struct conn *conns[LS_STEER_MAX_CONNS];
	unsigned next_conn; /* the first served next turn: turns go round */
	struct ls_steer_stats st;
	struct ls_ratelog rl;
	bool in_run;     /* inside ls_steer_run: connections are closed only at its end */
};

static void conn_close(struct ls_steer *s, int slot)
{
	struct conn *c = s->conns[slot];

	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	ls_buf_free(&c->out);
	free(c);
	s->conns[slot] = NULL;
	s->st.connections--;
}

static size_t out_waiting(const struct conn *c)
{
	return c->out.len - c->out_off;
}

/* A connection's requests are handled only while little of its output waits: a peer
 * that does not read its answers stops being served, and costs nothing more. */
static bool conn_paused(const struct conn *c)
{
	return out_waiting(c) > LS_STEER_OUT_PAUSE;
}

static void conn_watch(struct ls_steer *s, int slot)
{
	struct conn *c = s->conns[slot];
	struct epoll_event ev = { .events = 0, .data.u32 = (uint32_t)slot + 1 };

	if (!c->eof && !c->closing && !c->dead && !conn_paused(c))
		ev.events |= EPOLLIN;
	if (out_waiting(c))
		ev.events |= EPOLLOUT;
	if (ev.events != c->watched) {
		epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
		c->watched = ev.events;
	}
}

int ls_steer_flush(int fd, struct ls_buf *out, size_t *off)
{
	while (*off < out->len) {
		ssize_t n = send(fd, out->data + *off, out->len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			return -1;
		}
		*off += (size_t)n;
	}
	if (*off == out->len) {
		out->len = *off = 0;
		/* A big answer (a long session list) should not stay allocated. */
		if (out->cap > 65536) {
			ls_buf_free(out);
			ls_buf_init(out);
		}
	}
	return 0;
}

/* Write what is pending; returns -1 when the connection is over. */
static int conn_flush(struct ls_steer *s, int slot)
{
	struct conn *c = s->conns[slot];
	size_t before = out_waiting(c);

	if (before && ls_steer_flush(c->fd, &c->out, &c->out_off) < 0)
		return -1;
	if (!out_waiting(c))
		c->stall_us = 0;
	else if (!c->stall_us || out_waiting(c) < before)
		c->stall_us = ls_now_us(); /* the peer reads: the clock starts again */
	if (!out_waiting(c) && c->closing)
		return -1;
	conn_watch(s, slot);
	return 0;
}

/* Queue one line (a newline is added when it lacks one). */
static void conn_queue(struct conn *c, const char *text, size_t len)
{
	ls_buf_append(&c->out, text, len);
	if (len == 0 || text[len - 1] != '\n')
		ls_buf_append(&c->out, "\n", 1);
	if (c->out.oom) {
		/* Half a line must never go out: the peer could not parse what follows. */
		c->dead = true;
		c->out.len = c->out_off;
	}
}

static void reply_error(struct ls_steer *s, int slot, json_t *id, enum ls_rc rc, const char *msg);

/* An answer over LS_STEER_ANSWER_MAX is refused rather than queued: no peer needs one,
 * and the memory it would hold is what the limit protects. */
static void conn_send_json(struct ls_steer *s, int slot, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	size_t len = text ? strlen(text) : 0;
	char msg[128];

	if (!text) {
		reply_error(s, slot, json_object_get(obj, "id"), LS_RC_INTERNAL, "out of memory");
		return;
	}
	if (len > LS_STEER_ANSWER_MAX && json_is_true(json_object_get(obj, "ok"))) {
		free(text);
		snprintf(msg, sizeof(msg), "the answer would be %zu bytes, over the %u-byte limit",
			 len, (unsigned)LS_STEER_ANSWER_MAX);
		reply_error(s, slot, json_object_get(obj, "id"), LS_RC_TOO_LONG, msg);
		return;
	}
	conn_queue(s->conns[slot], text, len);
	free(text);
}

static void reply_error(struct ls_steer *s, int slot, json_t *id, enum ls_rc rc, const char *msg)
{
	json_t *o = json_object();

	if (id)
		json_object_set(o, "id", id);
	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "error", json_pack("{s:s,s:s}", "code", ls_rc_code(rc),
						  "message", msg));
	conn_send_json(s, slot, o);
	json_decref(o);
	s->st.errors++;
}

/* The envelope around a result written as text: the same line reply_ok makes. */
static void reply_ok_text(struct ls_steer *s, int slot, json_t *id, const char *result)
{
	char *idtext = id ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	size_t len = strlen(result);
	struct ls_buf b;
	char msg[128];

	if (len > LS_STEER_ANSWER_MAX) {
		free(idtext);
		snprintf(msg, sizeof(msg), "the answer would be %zu bytes, over the %u-byte limit",
			 len, (unsigned)LS_STEER_ANSWER_MAX);
		reply_error(s, slot, id, LS_RC_TOO_LONG, msg);
		return;
	}
	ls_buf_init(&b);
	ls_buf_append(&b, "{", 1);
	if (idtext)
		ls_buf_printf(&b, "\"id\":%s,", idtext);
	ls_buf_printf(&b, "\"ok\":true,\"result\":");
	ls_buf_append(&b, result, len);
	ls_buf_append(&b, "}", 1);
	free(idtext);
	if (b.oom)
		reply_error(s, slot, id, LS_RC_INTERNAL, "out of memory");
	else
		conn_queue(s->conns[slot], b.data, b.len);
	ls_buf_free(&b);
}

static void reply_ok(struct ls_steer *s, int slot, json_t *id, json_t *result)
{
	json_t *o = json_object();

	if (id)
		json_object_set(o, "id", id);
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "result", result ? result : json_object());
	conn_send_json(s, slot, o);
	json_decref(o);
}

enum ls_rc ls_steer_fail(struct ls_steer_call *call, enum ls_rc rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(call->msg, sizeof(call->msg), fmt, ap);
	va_end(ap);
	return rc;
}

int ls_steer_text_format(struct ls_steer_call *call)
{
	const char *f = json_string_value(json_object_get(call->req, "format"));
	bool text = f && strcmp(f, "prometheus") == 0;

	if (!text && json_is_true(json_object_get(call->req, "raw"))) {
		ls_steer_fail(call, LS_RC_INVALID, "raw goes with \"format\":\"prometheus\"");
		return -1;
	}
	return text;
}

enum ls_rc ls_steer_answer_text(struct ls_steer_call *call, char *text)
{
	if (!text)
		return ls_steer_fail(call, LS_RC_INTERNAL, "out of memory");
	if (json_is_true(json_object_get(call->req, "raw"))) {
		call->text = text;
		return LS_RC_OK;
	}
	call->result = json_pack("{s:s}", "text", text);
	free(text);
	return call->result ? LS_RC_OK : ls_steer_fail(call, LS_RC_INTERNAL, "out of memory");
}

static ls_steer_fn handler_find(const struct ls_steer *s, const char *name)
{
	for (const struct ls_steer_handler *h = s->handlers; h->name; h++)
		if (strcmp(h->name, name) == 0)
			return h->fn;
	return NULL;
}

/* The built-ins, run like any handler. */
static enum ls_rc builtin_help(struct ls_steer *s, struct ls_steer_call *call)
{
	const char *only = json_string_value(json_object_get(call->req, "command"));

	call->result = ls_steer_cmd_help(s->defs, only);
	if (!call->result)
		return ls_steer_fail(call, LS_RC_NOT_FOUND, "no command '%.64s' (try {\"cmd\":\"help\"})",
				     only);
	return LS_RC_OK;
}

static void handle_line(struct ls_steer *s, int slot, const char *line, size_t len)
{
	struct ls_steer_call call = { .req = NULL };
	const struct ls_steer_def *def;
	json_error_t jerr;
	json_t *req, *id = NULL;
	enum ls_rc rc;
	char msg[256];

	s->st.requests++;
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		snprintf(msg, sizeof(msg), "not JSON: %s (column %d)", jerr.text, jerr.column);
		reply_error(s, slot, NULL, LS_RC_BAD_JSON, msg);
		return;
	}
	if (!json_is_object(req)) {
		reply_error(s, slot, NULL, LS_RC_BAD_REQUEST, "a request is a JSON object");
		goto out;
	}
	id = json_object_get(req, "id");
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd) {
		reply_error(s, slot, id, LS_RC_BAD_REQUEST, "missing string member \"cmd\"");
		goto out;
	}
	def = ls_steer_cmd_find(s->defs, cmd);
	if (!def) {
		snprintf(msg, sizeof(msg), "unknown command '%.64s' (try {\"cmd\":\"help\"})", cmd);
		reply_error(s, slot, id, LS_RC_UNKNOWN_COMMAND, msg);
		goto out;
	}
	call.req = req;
	rc = ls_steer_cmd_check(def, req, call.msg, sizeof(call.msg));
	if (rc == LS_RC_OK) {
		if (strcmp(cmd, LS_STEER_CMD_HELP) == 0) {
			rc = builtin_help(s, &call);
		} else if (strcmp(cmd, LS_STEER_CMD_SUBSCRIBE) == 0) {
			s->conns[slot]->subscribed = true;
			call.result = json_pack("{s:b}", "subscribed", 1);
		} else {
			rc = handler_find(s, cmd)(s->ctx, &call);
		}
	}
	if (rc != LS_RC_OK) {
		json_decref(call.result);
		reply_error(s, slot, id, rc, call.msg[0] ? call.msg : ls_rc_code(rc));
	} else if (call.text) {
		json_decref(call.result);
		conn_queue(s->conns[slot], call.text, strlen(call.text));
	} else if (call.json) {
		json_decref(call.result);
		reply_ok_text(s, slot, id, call.json);
	} else {
		reply_ok(s, slot, id, call.result); /* takes the result */
	}
	free(call.text);
	free(call.json);
out:
	json_decref(req);
}

/* ---- input ------------------------------------------------------------------------- */

/* The next complete line of the connection, skipping the rest of an over-long one, or
 * false. At the peer's end of input what is left counts as a last line. */
static bool next_line(struct conn *c, const char **line, size_t *len)
{
	for (;;) {
		char *nl = memchr(c->in + c->scan, '\n', c->in_len - c->scan);
		if (!nl) {
			c->scan = c->in_len;
			if (!c->eof || c->start == c->in_len || c->skipping)
				return false;
			nl = c->in + c->in_len; /* the last line had no newline */
		}
		size_t at = c->start, end = (size_t)(nl - c->in);
		c->start = c->scan = end < c->in_len ? end + 1 : end;
		if (c->skipping) {
			c->skipping = false;
			continue;
		}
		if (end > at && c->in[end - 1] == '\r')
			end--;
		if (end == at)
			continue; /* a blank line */
		*line = c->in + at;
		*len = end - at;
		return true;
	}
}

/* Read once into what room is left: 1 when bytes (or the end of input) came, 0 when
 * nothing did, -1 when the connection failed. */
static int conn_fill(struct ls_steer *s, int slot)
{
	struct conn *c = s->conns[slot];
	ssize_t n;

	if (c->start > 0) {
		memmove(c->in, c->in + c->start, c->in_len - c->start);
		c->in_len -= c->start;
		c->scan -= c->start;
		c->start = 0;
	}
	if (c->in_len == LS_STEER_MAX_LINE) {
		/* A whole buffer without a newline: answered once, the rest skipped. */
		if (!c->skipping)
			reply_error(s, slot, NULL, LS_RC_TOO_LONG,
				    "line longer than 65536 bytes; skipped");
		c->skipping = true;
		c->in_len = c->scan = 0;
	}
	do
		n = recv(c->fd, c->in + c->in_len, LS_STEER_MAX_LINE - c->in_len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		c->eof = true;
		return 1;
	}
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	c->in_len += (size_t)n;
	return 1;
}

/* Serve one connection within what is left of the turn's budget; true when it still
 * has requests ready (the turn ran out). */
static bool conn_serve(struct ls_steer *s, int slot, uint64_t t0, unsigned *lines)
{
	struct conn *c = s->conns[slot];
	const char *line;
	size_t len;
	bool more = false;

	if (conn_flush(s, slot) < 0) {
		c->dead = true;
		return false;
	}
	while (!c->dead && !c->closing && !conn_paused(c)) {
		if (*lines >= TURN_LINES || ls_now_us() - t0 >= TURN_US) {
			more = true;
			break;
		}
		if (next_line(c, &line, &len)) {
			(*lines)++;
			handle_line(s, slot, line, len);
			continue;
		}
		if (c->eof)
			break;
		int got = conn_fill(s, slot);
		if (got < 0)
			c->dead = true;
		if (got <= 0)
			break; /* nothing more has come */
	}
	/* The peer is done sending and every request of it is answered: close once the
	 * answers are out (a half-close never loses them). */
	if (c->eof && !c->dead && !more && !conn_paused(c))
		c->closing = true;
	if (!c->dead && conn_flush(s, slot) < 0)
		c->dead = true;
	if (!c->dead && c->stall_us && ls_now_us() - c->stall_us >= LS_STEER_STALL_US) {
		ls_warn_rl(&s->rl, "steering peer read none of its %zu bytes of answers in %u s: "
			   "connection closed", out_waiting(c), LS_STEER_STALL_US / 1000000u);
		s->st.cut_off++;
		c->dead = true;
	}
	return more;
}

static void accept_some(struct ls_steer *s)
{
	for (int k = 0; k < TURN_ACCEPTS; k++) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				ls_warn_rl(&s->rl, "accept on steering socket: %s", strerror(errno));
			return;
		}
		int slot = -1;
		for (int i = 0; i < LS_STEER_MAX_CONNS; i++)
			if (!s->conns[i]) {
				slot = i;
				break;
			}
		struct conn *c = slot < 0 ? NULL : calloc(1, sizeof(*c));
		char *in = c ? malloc(LS_STEER_MAX_LINE) : NULL;
		if (!in) {
			static const char full[] =
				"{\"ok\":false,\"error\":{\"code\":\"full\",\"message\":"
				"\"too many steering connections\"}}\n";
			ssize_t w = send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
			close(fd);
			free(c);
			s->st.refused++;
			ls_warn_rl(&s->rl, "steering connection refused: %d connections open",
				   LS_STEER_MAX_CONNS);
			continue;
		}
		c->fd = fd;
		c->in = in;
		c->watched = EPOLLIN;
		ls_buf_init(&c->out);
		s->conns[slot] = c;
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)slot + 1 };
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
		s->st.connections++;
		s->st.connections_total++;
	}
}

/* The timer in the set: at once when requests wait for the next turn, in a second when
 * a connection's output waits (to cut a peer that stopped reading), else off. */
static void wake_arm(struct ls_steer *s, bool now)
{
	struct itimerspec its = { .it_value = { 0, 0 } };
	bool waiting = false;

	for (int i = 0; i < LS_STEER_MAX_CONNS && !now; i++)
		waiting |= s->conns[i] && out_waiting(s->conns[i]);
	if (now)
		its.it_value.tv_nsec = 1;
	else if (waiting)
		its.it_value.tv_sec = 1;
	timerfd_settime(s->wake_fd, 0, &its, NULL);
}

void ls_steer_run(struct ls_steer *s)
{
	uint64_t t0 = ls_now_us(), expirations;
	unsigned lines = 0;
	bool more = false;

	/* Nothing is taken out of the set but the timer's count: every connection is
	 * looked at each turn (there are at most 32), which is what a fair budget needs. */
	if (read(s->wake_fd, &expirations, sizeof(expirations)) < 0)
		expirations = 0;
	s->in_run = true;
	for (unsigned k = 0; k < LS_STEER_MAX_CONNS; k++) {
		int slot = (int)((s->next_conn + k) % LS_STEER_MAX_CONNS);
		if (s->conns[slot])
			more |= conn_serve(s, slot, t0, &lines);
	}
	s->next_conn = (s->next_conn + 1) % LS_STEER_MAX_CONNS;
	s->in_run = false;
	for (int i = 0; i < LS_STEER_MAX_CONNS; i++) {
		if (s->conns[i] && s->conns[i]->dead)
			conn_close(s, i);
		else if (s->conns[i])
			conn_watch(s, i);
	}
	/* After the closed ones are gone, so that their slots serve newcomers at once. */
	accept_some(s);
	wake_arm(s, more);
}

void ls_steer_publish(struct ls_steer *s, const char *event, json_t *data)
{
	json_t *o = json_pack("{s:s,s:I}", "event", event, "ts_us", (json_int_t)ls_now_us());

	if (data) {
		json_object_update(o, data);
		json_decref(data);
	}
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return;
	size_t len = strlen(text);
	for (int i = 0; i < LS_STEER_MAX_CONNS; i++) {
		struct conn *c = s->conns[i];
		if (!c || !c->subscribed || c->closing || c->dead)
			continue;
		/* A subscriber that reads too slowly loses events, never stalls us. */
		if (out_waiting(c) + len + 1 > LS_STEER_OUT_PAUSE) {
			s->st.events_dropped++;
			continue;
		}
		conn_queue(c, text, len);
		s->st.events_sent++;
		/* A command handler may publish: then the connection it serves must survive
		 * until ls_steer_run is done with it. */
		if (conn_flush(s, i) < 0) {
			if (s->in_run)
				c->dead = true;
			else
				conn_close(s, i);
		}
	}
	free(text);
	if (!s->in_run)
		wake_arm(s, false);
}

bool ls_steer_has_subscribers(const struct ls_steer *s)
{
	for (int i = 0; i < LS_STEER_MAX_CONNS; i++)
		if (s->conns[i] && s->conns[i]->subscribed)
			return true;
	return false;
}

void ls_steer_get_stats(const struct ls_steer *s, struct ls_steer_stats *st)
{
	*st = s->st;
}

/* One table, so that JSON, Prometheus and both dataplanes spell every counter alike. */
static const struct {
	const char *name;
	size_t offset;
	bool gauge;
	const char *help;
} stat_defs[] = {
#define S(f, g, h) { #f, offsetof(struct ls_steer_stats, f), g, h }
	S(connections, true, "Steering connections open."),
	S(connections_total, false, "Steering connections accepted."),
	S(refused, false, "Steering connections refused: too many open."),
	S(cut_off, false, "Steering connections closed for not reading their answers."),
	S(requests, false, "Steering requests handled."),
	S(errors, false, "Steering requests answered with an error."),
	S(events_sent, false, "Events queued for subscribers."),
	S(events_dropped, false, "Events dropped for subscribers that read too slowly."),
#undef S
};

static unsigned long stat_get(const struct ls_steer_stats *st, size_t i)
{
	unsigned long v;

	memcpy(&v, (const char *)st + stat_defs[i].offset, sizeof(v));
	return v;
}

json_t *ls_steer_stats_json(const struct ls_steer *s)
{
	json_t *o = json_object();

	for (size_t i = 0; i < LS_ARRAY_LEN(stat_defs); i++)
		json_object_set_new(o, stat_defs[i].name, json_integer((json_int_t)stat_get(&s->st, i)));
	return o;
}

void ls_steer_stats_prom(const struct ls_steer *s, struct ls_buf *b, const char *prefix)
{
	char name[128];

	for (size_t i = 0; i < LS_ARRAY_LEN(stat_defs); i++) {
		snprintf(name, sizeof(name), "%s_steering_%s%s", prefix, stat_defs[i].name,
			 stat_defs[i].gauge ? "" : "_total");
		ls_prom_header(b, name, stat_defs[i].gauge ? "gauge" : "counter", stat_defs[i].help);
		ls_prom_u64(b, name, NULL, stat_get(&s->st, i));
	}
}

int ls_steer_fd(const struct ls_steer *s)
{
	return s->epfd;
}

/* Create the socket's directory if needed (one level, as systemd's RuntimeDirectory). */
static int make_parent(const char *path, char *err, size_t errlen)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(tmp, sizeof(tmp), "%s", path);
	char *dir = dirname(tmp);
	struct stat st;
	if (stat(dir, &st) == 0)
		return 0;
	if (mkdir(dir, 0755) == 0 || errno == EEXIST)
		return 0;
	snprintf(err, errlen, "cannot create directory %s for the steering socket: %s "
		 "(choose another path with --socket or in the config)", dir, strerror(errno));
	return -1;
}

/* Every definition but the built-ins has a handler, and every handler a definition: a
 * mismatch is a bug of the program, found at its start rather than at a request. */
static int handlers_match(const struct ls_steer_def *defs, const struct ls_steer_handler *handlers,
			  char *err, size_t errlen)
{
	for (const struct ls_steer_def *d = defs; d->name; d++) {
		bool found = strcmp(d->name, LS_STEER_CMD_HELP) == 0 ||
			     strcmp(d->name, LS_STEER_CMD_SUBSCRIBE) == 0;
		for (const struct ls_steer_handler *h = handlers; !found && h->name; h++)
			found = strcmp(h->name, d->name) == 0 && h->fn;
		if (!found) {
			snprintf(err, errlen, "steering command '%s' has no handler", d->name);
			return -1;
		}
	}
	for (const struct ls_steer_handler *h = handlers; h->name; h++) {
		if (!ls_steer_cmd_find(defs, h->name)) {
			snprintf(err, errlen, "steering handler '%s' has no definition", h->name);
			return -1;
		}
	}
	return 0;
}

struct ls_steer *ls_steer_open(const char *path, mode_t mode, const struct ls_steer_def *defs,
			       const struct ls_steer_handler *handlers, void *ctx, char *err,
			       size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ls_steer *s;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "steering socket path too long (at most %zu bytes): %s",
			 sizeof(sa.sun_path) - 1, path);
		return NULL;
	}
	if (handlers_match(defs, handlers, err, errlen) < 0 || make_parent(path, err, errlen) < 0)
		return NULL;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->lfd = s->epfd = s->wake_fd = -1;
	s->defs = defs;
	s->handlers = handlers;
	s->ctx = ctx;
	snprintf(s->path, sizeof(s->path), "%s", path);

	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		goto fail_errno;
	/* Only a socket is ever replaced: a mistyped --socket must not delete a file. */
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket: refusing to replace it "
			 "(choose another steering socket path with --socket or 'socket')", path);
		goto fail;
	}
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EADDRINUSE)
			goto fail_errno;
		/* A socket file exists: refuse if someone answers, else it is stale. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int alive = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (alive) {
			snprintf(err, errlen, "%s: another process is listening there", path);
			goto fail;
		}
		unlink(path);
		if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail_errno;
	}
	if (chmod(path, mode) < 0 || listen(s->lfd, 16) < 0 || lstat(path, &st) < 0)
		goto fail_errno;
	s->ino = st.st_ino;
	s->dev = st.st_dev;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wake_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->epfd < 0 || s->wake_fd < 0)
		goto fail_errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	struct epoll_event wake = { .events = EPOLLIN, .data.u32 = WAKE_TAG };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &wake) < 0)
		goto fail_errno;
	return s;

fail_errno:
	snprintf(err, errlen, "steering socket %s: %s", path, strerror(errno));
fail:
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	free(s);
	return NULL;
}

/* Remove the socket file if it is still ours (not one a later instance made). */
static void unlink_ours(const struct ls_steer *s)
{
	struct stat st;

	if (lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == s->ino &&
	    st.st_dev == s->dev)
		unlink(s->path);
}

void ls_steer_close(struct ls_steer *s)
{
	if (!s)
		return;
	for (int i = 0; i < LS_STEER_MAX_CONNS; i++)
		if (s->conns[i])
			conn_close(s, i);
	close(s->lfd);
	close(s->epfd);
	close(s->wake_fd);
	unlink_ours(s);
	free(s);
}
