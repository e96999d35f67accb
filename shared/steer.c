/* Steering socket server (docs/protocol.md section 3). It owns a private epoll set so
 * that its owner's loop needs to watch one fd only. Nothing here runs per packet. */
#include "steer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* An answer larger than this, still unsent, means the peer does not read: drop it.
 * Subscribers lose events instead. */
#define OUT_MAX (4u << 20)

struct conn {
	int fd;
	bool subscribed;
	bool skipping;   /* inside an over-long line: discard up to its newline */
	bool closing;    /* close once the output is flushed */
	bool dead;       /* failed while a request was being handled: close after it */
	char *in;        /* LS_STEER_MAX_LINE bytes */
	size_t in_len;
	struct ls_buf out;
	size_t out_off;
};

struct ls_steer {
	int lfd, epfd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const struct ls_steer_def *defs;
	const struct ls_steer_handler *handlers;
	void *ctx;
	struct conn *conns[LS_STEER_MAX_CONNS];
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
	s->st.conns--;
}

static void conn_watch(struct ls_steer *s, int slot)
{
	struct conn *c = s->conns[slot];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)slot + 1 };

	if (c->out.len > c->out_off)
		ev.events |= EPOLLOUT;
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
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

/* Write what is pending; returns -1 when the connection is gone. */
static int conn_flush(struct ls_steer *s, int slot)
{
	struct conn *c = s->conns[slot];

	if (ls_steer_flush(c->fd, &c->out, &c->out_off) < 0)
		return -1;
	if (c->out.len == 0 && c->closing)
		return -1;
	conn_watch(s, slot);
	return 0;
}

/* Queue one answer (a newline is added when it lacks one). */
static void conn_queue(struct conn *c, const char *text, size_t len)
{
	ls_buf_append(&c->out, text, len);
	if (len == 0 || text[len - 1] != '\n')
		ls_buf_append(&c->out, "\n", 1);
	if (c->out.oom || c->out.len - c->out_off > OUT_MAX)
		c->closing = true, c->out.len = c->out_off; /* unreadable peer: give up */
}

static void conn_send_json(struct ls_steer *s, int slot, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);

	if (!text)
		return;
	conn_queue(s->conns[slot], text, strlen(text));
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
	} else {
		reply_ok(s, slot, id, call.result); /* takes the result */
	}
	free(call.text);
out:
	json_decref(req);
}

/* Split what arrived into lines; an over-long line is answered once and skipped. */
static int conn_read(struct ls_steer *s, int slot)
{
	struct conn *c = s->conns[slot];

	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, LS_STEER_MAX_LINE - c->in_len,
				 MSG_DONTWAIT);
		if (n == 0)
			return -1;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		}
		c->in_len += (size_t)n;
		size_t start = 0;
		for (size_t i = c->in_len - (size_t)n; i < c->in_len; i++) {
			if (c->in[i] != '\n')
				continue;
			if (c->skipping)
				c->skipping = false;
			else if (i > start && !(i == start + 1 && c->in[start] == '\r'))
				handle_line(s, slot, c->in + start, i - start);
			start = i + 1;
		}
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
		if (c->in_len == LS_STEER_MAX_LINE) {
			if (!c->skipping)
				reply_error(s, slot, NULL, LS_RC_TOO_LONG,
					    "line longer than 65536 bytes; skipped");
			c->skipping = true;
			c->in_len = 0;
		}
		if (c->closing || c->dead)
			return 0;
	}
}

static void accept_all(struct ls_steer *s)
{
	for (;;) {
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
			ls_warn_rl(&s->rl, "steering connection refused: %d connections open",
				   LS_STEER_MAX_CONNS);
			continue;
		}
		c->fd = fd;
		c->in = in;
		ls_buf_init(&c->out);
		s->conns[slot] = c;
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)slot + 1 };
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
		s->st.conns++;
		s->st.conns_total++;
	}
}

void ls_steer_run(struct ls_steer *s)
{
	struct epoll_event evs[16];
	int n = epoll_wait(s->epfd, evs, 16, 0);

	s->in_run = true;
	for (int i = 0; i < n; i++) {
		uint32_t tag = evs[i].data.u32;
		if (tag == 0) {
			accept_all(s);
			continue;
		}
		int slot = (int)tag - 1;
		if (!s->conns[slot])
			continue;
		int dead = 0;
		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			dead = conn_read(s, slot) < 0;
		if (!dead)
			dead = conn_flush(s, slot) < 0;
		if (dead)
			s->conns[slot]->dead = true;
	}
	s->in_run = false;
	for (int i = 0; i < LS_STEER_MAX_CONNS; i++)
		if (s->conns[i] && s->conns[i]->dead)
			conn_close(s, i);
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
		if (c->out.len - c->out_off + len + 1 > OUT_MAX) {
			s->st.events_dropped++;
			continue;
		}
		ls_buf_append(&c->out, text, len);
		ls_buf_append(&c->out, "\n", 1);
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
	s->lfd = s->epfd = -1;
	s->defs = defs;
	s->handlers = handlers;
	s->ctx = ctx;
	snprintf(s->path, sizeof(s->path), "%s", path);

	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		goto fail_errno;
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
	if (chmod(path, mode) < 0 || listen(s->lfd, 16) < 0)
		goto fail_errno;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		goto fail_errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) < 0)
		goto fail_errno;
	return s;

fail_errno:
	snprintf(err, errlen, "steering socket %s: %s", path, strerror(errno));
fail:
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->epfd >= 0)
		close(s->epfd);
	free(s);
	return NULL;
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
	unlink(s->path);
	free(s);
}
