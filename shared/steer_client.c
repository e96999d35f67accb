/* A client of a steering socket: one connection held in a private epoll set (so the fd
 * its owner watches never changes across reconnects), a FIFO of requests awaiting
 * answers, and a reconnect timer. Every byte from the server is untrusted: a line that
 * is not JSON, an answer to nothing, or an event without a name is counted and skipped;
 * a line over the limit ends the connection (it cannot be resynchronised cheaply and a
 * server sending one is broken). */
#include "steer_client.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "steer.h"
#include "util.h"

#define DEF_MAX_LINE     ((size_t)(4u << 20) + 65536u) /* the server's answer limit + a line */
#define DEF_MAX_PENDING  256u
#define DEF_MAX_QUEUED   ((size_t)1u << 20)
#define DEF_TIMEOUT_MS   5000u
#define DEF_LINES        64u
#define IN_MIN           16384u
/* A connection that lived this long was healthy: the next loss retries quickly again. */
#define HEALTHY_US       ((uint64_t)LS_STEERC_BACKOFF_MAX_MS * 1000u)

struct pending {
	struct pending *next;
	json_int_t id;
	uint64_t deadline_us;
	ls_steerc_answer_fn fn; /* NULL: our own subscribe, answered to nobody */
	void *ud;
};

struct ls_steerc {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ls_steerc_ops ops;
	void *ctx;
	struct ls_steerc_opts o;
	int epfd, fd;            /* fd: -1 while not connected */
	bool want_sub;
	bool said_down;          /* "disconnected" told for the current outage */
	bool lines_left;         /* complete lines read but not yet handled */
	bool out_watched;        /* EPOLLOUT is on */
	uint64_t connect_at_us;  /* next connect attempt; 0: none */
	uint64_t up_since_us;
	unsigned backoff_ms;
	json_int_t next_id;
	struct pending *head, **tail;
	unsigned npending;
	struct ls_buf out;
	size_t out_off;
	char *in;
	size_t in_len, in_cap;
	int busy;                /* inside ls_steerc_run or a callback: free later */
	bool closed;
	char err[256];
	char refusal[256];       /* an error line for no request: why the server closes */
	struct ls_steerc_stats st;
};

/* ---- small helpers --------------------------------------------------------------------- */

static void set_error(struct ls_steerc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct ls_steerc *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static void watch_out(struct ls_steerc *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0) };

	if (c->fd < 0 || on == c->out_watched)
		return;
	epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->out_watched = on;
}

static void answer(struct pending *p, enum ls_rc rc, json_t *result, const char *code,
		   const char *message)
{
	struct ls_steerc_answer a = { rc, result, code, message };

	if (p->fn)
		p->fn(p->ud, &a);
	free(p);
}

static struct pending *pending_pop(struct ls_steerc *c)
{
	struct pending *p = c->head;

	if (!p)
		return NULL;
	c->head = p->next;
	if (!c->head)
		c->tail = &c->head;
	c->npending--;
	return p;
}

/* Answers come in order from our servers, so the head matches; a scan covers a server
 * that answers out of order. */
static struct pending *pending_take(struct ls_steerc *c, json_int_t id)
{
	for (struct pending **pp = &c->head; *pp; pp = &(*pp)->next) {
		struct pending *p = *pp;
		if (p->id != id)
			continue;
		*pp = p->next;
		if (!*pp)
			c->tail = pp;
		c->npending--;
		return p;
	}
	return NULL;
}

/* Every outstanding request gets rc; callbacks may queue new ones, which wait. */
static void fail_all(struct ls_steerc *c, enum ls_rc rc, const char *why)
{
	struct pending *list = c->head;

	c->head = NULL;
	c->tail = &c->head;
	c->npending = 0;
	while (list) {
		struct pending *p = list;
		list = p->next;
		answer(p, rc, NULL, ls_rc_code(rc), why);
	}
}

/* ---- connection ------------------------------------------------------------------------ */

static void schedule_connect(struct ls_steerc *c, uint64_t now)
{
	if (c->o.no_reconnect) {
		c->connect_at_us = 0;
		return;
	}
	c->connect_at_us = now + (uint64_t)c->backoff_ms * 1000u;
	c->backoff_ms = c->backoff_ms * 2 > LS_STEERC_BACKOFF_MAX_MS ? LS_STEERC_BACKOFF_MAX_MS
								      : c->backoff_ms * 2;
}

static void drop_connection(struct ls_steerc *c, uint64_t now, const char *reason)
{
	char why[256], msg[300];

	snprintf(why, sizeof(why), "%s", reason); /* reason may be c->err */

	epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->out_watched = false;
	c->out.len = c->out_off = 0;
	c->in_len = 0;
	c->lines_left = false;
	c->st.disconnects++;
	if (now - c->up_since_us >= HEALTHY_US)
		c->backoff_ms = LS_STEERC_BACKOFF_MIN_MS;
	schedule_connect(c, now);
	set_error(c, "%s: %s", c->path, why);
	snprintf(msg, sizeof(msg), "steering connection lost: %s", c->err);
	fail_all(c, LS_RC_NOT_READY, msg);
	c->said_down = true;
	if (!c->closed && c->ops.disconnected)
		c->ops.disconnected(c->ctx, c->err);
}

static void queue_subscribe(struct ls_steerc *c);

static void try_connect(struct ls_steerc *c, uint64_t now)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	int fd;

	c->connect_at_us = 0;
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* A Unix connect completes at once or fails (EAGAIN: the listen queue is full). */
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		set_error(c, "%s: %s", c->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		schedule_connect(c, now);
		if (!c->said_down) {
			c->said_down = true;
			if (c->ops.disconnected)
				c->ops.disconnected(c->ctx, c->err);
		}
		return;
	}
	c->fd = fd;
	c->up_since_us = now;
	c->said_down = false;
	c->refusal[0] = '\0';
	c->st.connects++;
	if (c->want_sub)
		queue_subscribe(c);
	if (c->ops.connected)
		c->ops.connected(c->ctx);
}

/* ---- requests -------------------------------------------------------------------------- */

static enum ls_rc enqueue(struct ls_steerc *c, const char *cmd, json_t *args,
			  ls_steerc_answer_fn fn, void *ud)
{
	struct pending *p;
	json_t *req;
	char *text;
	size_t len;

	if (c->fd < 0) {
		set_error(c, "not connected to %s", c->path);
		return LS_RC_NOT_READY;
	}
	if (c->npending >= c->o.max_pending) {
		set_error(c, "%u requests await an answer already", c->npending);
		return LS_RC_FULL;
	}
	req = json_pack("{s:I,s:s}", "id", c->next_id, "cmd", cmd);
	if (!req || (args && json_object_update(req, args) < 0)) {
		json_decref(req);
		set_error(c, "out of memory");
		return LS_RC_INTERNAL;
	}
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text) {
		set_error(c, "out of memory");
		return LS_RC_INTERNAL;
	}
	len = strlen(text);
	if (len + 1 > LS_STEER_MAX_LINE) {
		free(text);
		set_error(c, "request of %zu bytes: the server takes lines of at most %d", len + 1,
			  LS_STEER_MAX_LINE);
		return LS_RC_TOO_LONG;
	}
	if (c->out.len - c->out_off + len + 1 > c->o.max_queued) {
		free(text);
		set_error(c, "%zu bytes wait to be written already", c->out.len - c->out_off);
		return LS_RC_FULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		free(text);
		set_error(c, "out of memory");
		return LS_RC_INTERNAL;
	}
	ls_buf_append(&c->out, text, len);
	ls_buf_append(&c->out, "\n", 1);
	free(text);
	if (c->out.oom) {
		free(p);
		c->out.len = c->out_off; /* nothing half-queued goes out */
		c->out.oom = 0;
		set_error(c, "out of memory");
		return LS_RC_INTERNAL;
	}
	p->id = c->next_id++;
	p->deadline_us = ls_now_us() + (uint64_t)c->o.timeout_ms * 1000u;
	p->fn = fn;
	p->ud = ud;
	*c->tail = p;
	c->tail = &p->next;
	c->npending++;
	c->st.requests++;
	/* Written from ls_steerc_run: the set turns readable as soon as the socket can
	 * take it, and no callback can run inside this call. */
	watch_out(c, true);
	return LS_RC_OK;
}

static void queue_subscribe(struct ls_steerc *c)
{
	/* Its answer goes to nobody; events follow it. A failure (full) shows as no events
	 * and is retried at the next connect. */
	(void)enqueue(c, LS_STEER_CMD_SUBSCRIBE, NULL, NULL, NULL);
}

enum ls_rc ls_steerc_request(struct ls_steerc *c, const char *cmd, json_t *args,
			     ls_steerc_answer_fn fn, void *ud)
{
	enum ls_rc rc = LS_RC_OK;

	if (!args)
		args = json_object();
	if (!cmd || !json_is_object(args)) {
		set_error(c, "a request is a command name and an object of arguments");
		rc = LS_RC_INVALID;
	} else if (json_object_get(args, "id") || json_object_get(args, "cmd")) {
		set_error(c, "\"id\" and \"cmd\" are the client's to set");
		rc = LS_RC_INVALID;
	} else if (c->o.defs) {
		const struct ls_steer_def *d = ls_steer_cmd_find(c->o.defs, cmd);
		if (!d) {
			set_error(c, "unknown command '%.64s'", cmd);
			rc = LS_RC_UNKNOWN_COMMAND;
		} else {
			rc = ls_steer_cmd_check(d, args, c->err, sizeof(c->err));
		}
	}
	if (rc == LS_RC_OK)
		rc = enqueue(c, cmd, args, fn, ud);
	json_decref(args);
	return rc;
}

void ls_steerc_subscribe(struct ls_steerc *c)
{
	if (c->want_sub)
		return;
	c->want_sub = true;
	if (c->fd >= 0)
		queue_subscribe(c);
}

/* ---- input ----------------------------------------------------------------------------- */

static void handle_answer(struct ls_steerc *c, json_t *m)
{
	json_t *id = json_object_get(m, "id"), *ok = json_object_get(m, "ok");
	json_t *err = json_object_get(m, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *message = json_string_value(json_object_get(err, "message"));
	struct pending *p;

	if (!json_is_boolean(ok)) {
		c->st.bad_lines++;
		return;
	}
	if (!json_is_integer(id)) {
		/* An error for no request of ours: the server refusing the connection
		 * ("full") before it closes. Kept as the reason the connection goes. */
		if (json_is_false(ok))
			snprintf(c->refusal, sizeof(c->refusal), "refused (%.32s: %.160s)",
				 code ? code : "error", message ? message : "");
		else
			c->st.bad_lines++;
		return;
	}
	p = pending_take(c, json_integer_value(id));
	if (!p) {
		c->st.bad_lines++; /* an answer to nothing, or to a request given up */
		return;
	}
	c->st.answers++;
	if (json_is_true(ok)) {
		json_t *result = json_object_get(m, "result");
		answer(p, LS_RC_OK, result ? result : json_null(), "ok", "");
	} else {
		enum ls_rc rc = ls_rc_from_code(code);
		answer(p, rc == LS_RC_OK ? LS_RC_INTERNAL : rc, NULL, code ? code : "internal",
		       message ? message : "");
	}
}

static void handle_line(struct ls_steerc *c, const char *line, size_t len)
{
	json_t *m = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *ev = json_object_get(m, "event");

	if (!json_is_object(m)) {
		c->st.bad_lines++;
	} else if (ev) {
		if (!json_is_string(ev)) {
			c->st.bad_lines++;
		} else {
			c->st.events++;
			if (c->ops.event)
				c->ops.event(c->ctx, json_string_value(ev), m);
		}
	} else {
		handle_answer(c, m);
	}
	json_decref(m);
}

/* Handle up to lines_per_run complete lines from the input buffer. */
static void handle_lines(struct ls_steerc *c)
{
	size_t start = 0;
	unsigned done = 0;
	char *nl;

	/* Callbacks cannot drop the connection (requests are written from here, later),
	 * but one may close the client: then nothing more is delivered. */
	while (!c->closed && done < c->o.lines_per_run &&
	       (nl = memchr(c->in + start, '\n', c->in_len - start))) {
		size_t len = (size_t)(nl - (c->in + start));
		if (len > 0 && !(len == 1 && c->in[start] == '\r'))
			handle_line(c, c->in + start, len);
		start += len + 1;
		done++;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	c->lines_left = memchr(c->in, '\n', c->in_len) != NULL;
}

/* Read what fits; -1 with the reason when the connection is over. */
static int read_some(struct ls_steerc *c, const char **why)
{
	if (c->in_len == c->in_cap) {
		if (c->in_cap >= c->o.max_line) {
			if (!memchr(c->in, '\n', c->in_len)) {
				*why = "the server sent a line over the limit";
				return -1;
			}
			return 0; /* full of lines still to handle */
		}
		size_t cap = c->in_cap ? c->in_cap * 2 : IN_MIN;
		if (cap > c->o.max_line)
			cap = c->o.max_line;
		char *in = realloc(c->in, cap);
		if (!in) {
			*why = "out of memory";
			return -1;
		}
		c->in = in;
		c->in_cap = cap;
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n == 0) {
		*why = c->refusal[0] ? c->refusal : "closed by the server";
		return -1;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		*why = strerror(errno);
		return -1;
	}
	c->in_len += (size_t)n;
	return 0;
}

static int flush_out(struct ls_steerc *c, const char **why)
{
	if (ls_steer_flush(c->fd, &c->out, &c->out_off) < 0) {
		*why = strerror(errno);
		return -1;
	}
	watch_out(c, c->out_off < c->out.len);
	return 0;
}

/* ---- the owner's interface ------------------------------------------------------------- */

static void expire(struct ls_steerc *c, uint64_t now)
{
	while (!c->closed && c->head && c->head->deadline_us <= now) {
		struct pending *p = pending_pop(c);
		char msg[96];

		c->st.timeouts++;
		snprintf(msg, sizeof(msg), "no answer within %u ms", c->o.timeout_ms);
		answer(p, LS_RC_TIMEOUT, NULL, ls_rc_code(LS_RC_TIMEOUT), msg);
	}
}

static void client_free(struct ls_steerc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	close(c->epfd);
	ls_buf_free(&c->out);
	free(c->in);
	free(c);
}

void ls_steerc_run(struct ls_steerc *c, uint64_t now)
{
	const char *why = "";

	/* The set is level-triggered: nothing needs taking out of it; what read and send
	 * return says what was ready. */
	c->busy++;
	if (!c->closed && c->fd < 0 && c->connect_at_us && now >= c->connect_at_us)
		try_connect(c, now);
	if (!c->closed && c->fd >= 0) {
		int dead = read_some(c, &why) < 0;
		/* Lines that came before the server closed are answers all the same. */
		handle_lines(c);
		if (!dead && !c->closed)
			dead = flush_out(c, &why) < 0;
		if (dead && !c->closed)
			drop_connection(c, now, why);
	}
	expire(c, now);
	if (--c->busy == 0 && c->closed)
		client_free(c);
}

uint64_t ls_steerc_deadline(const struct ls_steerc *c)
{
	uint64_t d = 0;

	if (c->fd >= 0 && c->lines_left)
		return 1; /* at once */
	if (c->fd < 0 && c->connect_at_us)
		d = c->connect_at_us;
	if (c->head && (!d || c->head->deadline_us < d))
		d = c->head->deadline_us;
	return d;
}

int ls_steerc_fd(const struct ls_steerc *c)
{
	return c->epfd;
}

short ls_steerc_events(const struct ls_steerc *c)
{
	(void)c;
	return POLLIN;
}

bool ls_steerc_connected(const struct ls_steerc *c)
{
	return c->fd >= 0;
}

const char *ls_steerc_error(const struct ls_steerc *c)
{
	return c->err;
}

void ls_steerc_get_stats(const struct ls_steerc *c, struct ls_steerc_stats *st)
{
	*st = c->st;
}

struct ls_steerc *ls_steerc_open(const char *path, const struct ls_steerc_ops *ops, void *ctx,
				 const struct ls_steerc_opts *opts)
{
	struct ls_steerc *c;

	if (!path || strlen(path) >= sizeof(c->path))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0) {
		free(c);
		return NULL;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (ops)
		c->ops = *ops;
	c->ctx = ctx;
	if (opts)
		c->o = *opts;
	if (!c->o.max_line)
		c->o.max_line = DEF_MAX_LINE;
	if (c->o.max_line < 2)
		c->o.max_line = 2;
	if (!c->o.max_pending)
		c->o.max_pending = DEF_MAX_PENDING;
	if (!c->o.max_queued)
		c->o.max_queued = DEF_MAX_QUEUED;
	if (!c->o.timeout_ms)
		c->o.timeout_ms = DEF_TIMEOUT_MS;
	if (!c->o.lines_per_run)
		c->o.lines_per_run = DEF_LINES;
	c->fd = -1;
	c->connect_at_us = 1; /* due at the first run */
	c->backoff_ms = LS_STEERC_BACKOFF_MIN_MS;
	c->next_id = 1;
	c->tail = &c->head;
	ls_buf_init(&c->out);
	return c;
}

void ls_steerc_close(struct ls_steerc *c)
{
	if (!c || c->closed)
		return;
	c->closed = true;
	c->busy++;
	fail_all(c, LS_RC_NOT_READY, "steering client closed");
	if (--c->busy == 0)
		client_free(c);
}

/* ---- one blocking call ----------------------------------------------------------------- */

struct call_state {
	bool done, down;
	enum ls_rc rc;
	json_t *result;
	char msg[256];
};

static void call_answer(void *ud, const struct ls_steerc_answer *a)
{
	struct call_state *st = ud;

	st->done = true;
	st->rc = a->rc;
	if (a->rc == LS_RC_OK)
		st->result = json_incref(a->result);
	else
		snprintf(st->msg, sizeof(st->msg), "%s", a->message);
}

static void call_down(void *ctx, const char *why)
{
	struct call_state *st = ctx;

	st->down = true;
	if (!st->done)
		snprintf(st->msg, sizeof(st->msg), "cannot reach the steering socket %s", why);
}

enum ls_rc ls_steerc_call(const char *path, const char *cmd, json_t *args, unsigned timeout_ms,
			  json_t **result, char *msg, size_t msglen)
{
	struct ls_steerc_ops ops = { .disconnected = call_down };
	struct ls_steerc_opts opts = { .timeout_ms = timeout_ms ? timeout_ms : DEF_TIMEOUT_MS,
				       .no_reconnect = true };
	struct call_state st = { .rc = LS_RC_NOT_READY };
	struct ls_steerc *c = ls_steerc_open(path, &ops, &st, &opts);

	*result = NULL;
	if (!c) {
		json_decref(args);
		snprintf(msg, msglen, "steering socket path too long, or out of memory");
		return LS_RC_INTERNAL;
	}
	ls_steerc_run(c, ls_now_us());
	if (!ls_steerc_connected(c)) {
		json_decref(args);
		snprintf(msg, msglen, "%s", st.msg);
		ls_steerc_close(c);
		return LS_RC_NOT_READY;
	}
	st.rc = ls_steerc_request(c, cmd, args, call_answer, &st);
	if (st.rc != LS_RC_OK) {
		snprintf(msg, msglen, "%s", ls_steerc_error(c));
		ls_steerc_close(c);
		return st.rc;
	}
	while (!st.done) {
		struct pollfd pfd = { .fd = ls_steerc_fd(c), .events = ls_steerc_events(c) };
		uint64_t now = ls_now_us(), d = ls_steerc_deadline(c);
		int wait = d == 0 ? 1000 : d <= now ? 0 : (int)((d - now + 999) / 1000);

		if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
			break;
		ls_steerc_run(c, ls_now_us());
	}
	ls_steerc_close(c);
	if (!st.done) {
		snprintf(msg, msglen, "poll: %s", strerror(errno));
		return LS_RC_INTERNAL;
	}
	if (st.rc == LS_RC_OK)
		*result = st.result;
	else
		snprintf(msg, msglen, "%s", st.msg);
	return st.rc;
}
