/* Steering socket server (docs/protocol.md section 3). It owns a private epoll set so
 * that its owner's loop needs to watch one fd only. Nothing here runs per packet. */
#include "steer.h"

#include <errno.h>
#include <fcntl.h>
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
	const struct ls_steer_cmd *cmds;
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

/* Write what is pending; returns -1 when the connection is gone. */
static int conn_flush(struct ls_steer *s, int slot)
{
	struct conn *c = s->conns[slot];

	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out.len) {
		c->out.len = c->out_off = 0;
		/* A big answer (a long session list) should not stay allocated. */
		if (c->out.cap > 65536) {
			ls_buf_free(&c->out);
			ls_buf_init(&c->out);
		}
		if (c->closing)
			return -1;
	}
	conn_watch(s, slot);
	return 0;
}

static void conn_send_json(struct ls_steer *s, int slot, json_t *obj)
{
	struct conn *c = s->conns[slot];
	char *text = json_dumps(obj, JSON_COMPACT);

	if (!text)
		return;
	ls_buf_append(&c->out, text, strlen(text));
	ls_buf_append(&c->out, "\n", 1);
	free(text);
	if (c->out.oom || c->out.len - c->out_off > OUT_MAX)
		c->closing = true, c->out.len = c->out_off; /* unreadable peer: give up */
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

static json_t *help_result(const struct ls_steer *s)
{
	json_t *arr = json_array();

	for (const struct ls_steer_cmd *c = s->cmds; c->name; c++)
		json_array_append_new(arr, json_pack("{s:s,s:s}", "cmd", c->name, "help",
						     c->help ? c->help : ""));
	json_array_append_new(arr, json_pack("{s:s,s:s}", "cmd", "help", "help",
					     "list the commands"));
	json_array_append_new(arr, json_pack("{s:s,s:s}", "cmd", "subscribe", "help",
					     "turn this connection into an event stream"));
	return json_pack("{s:o}", "commands", arr);
}

static void handle_line(struct ls_steer *s, int slot, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req, *id = NULL;
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
	if (strcmp(cmd, "help") == 0) {
		reply_ok(s, slot, id, help_result(s));
		goto out;
	}
	if (strcmp(cmd, "subscribe") == 0) {
		s->conns[slot]->subscribed = true;
		reply_ok(s, slot, id, json_pack("{s:b}", "subscribed", 1));
		goto out;
	}
	for (const struct ls_steer_cmd *c = s->cmds; c->name; c++) {
		if (strcmp(c->name, cmd) != 0)
			continue;
		json_t *result = NULL;
		msg[0] = '\0';
		enum ls_rc rc = c->fn(s->ctx, req, &result, msg, sizeof(msg));
		if (rc == LS_RC_OK) {
			reply_ok(s, slot, id, result);
		} else {
			json_decref(result);
			reply_error(s, slot, id, rc, msg[0] ? msg : ls_rc_code(rc));
		}
		goto out;
	}
	snprintf(msg, sizeof(msg), "unknown command '%.64s' (try {\"cmd\":\"help\"})", cmd);
	reply_error(s, slot, id, LS_RC_UNKNOWN_COMMAND, msg);
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

struct ls_steer *ls_steer_open(const char *path, mode_t mode, const struct ls_steer_cmd *cmds,
			       void *ctx, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ls_steer *s;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "steering socket path too long (at most %zu bytes): %s",
			 sizeof(sa.sun_path) - 1, path);
		return NULL;
	}
	if (make_parent(path, err, errlen) < 0)
		return NULL;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->lfd = s->epfd = -1;
	s->cmds = cmds;
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
