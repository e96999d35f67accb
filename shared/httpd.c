/* The control plane's HTTP server (see httpd.h).
 *
 * Threading: libmicrohttpd runs inside its owner's event loop, through the epoll fd
 * MHD exposes (MHD_USE_EPOLL without an internal thread), never in a thread of its
 * own. Every handler reads the controller's (or agent's) live state, which the loop
 * owns and changes between requests; in a thread each handler and every publish
 * would need that state behind one lock, taken also by every health sample the loop
 * handles. The answers are small and built from memory, so serving them on the loop
 * costs less than the lock would, and nothing here ever blocks (static files are sent
 * by MHD from their fd, event streams from a bounded queue). */
#include "httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "addr.h"
#include "log.h"
#include "util.h"

#define DEFAULT_MAX_BODY     (64u << 10)
#define DEFAULT_MAX_CONNS    64u
#define DEFAULT_MAX_SSE      16u
#define DEFAULT_TIMEOUT_S    15u
#define DEFAULT_SSE_BACKLOG  (256u << 10)
#define DEFAULT_KEEPALIVE_S  15u

/* One event stream: a bounded queue of text the client has not read yet. */
struct sse {
	struct sse *next, **pprev;
	struct ls_httpd *h;
	struct MHD_Connection *conn;
	struct ls_buf q;
	size_t q_off;
	unsigned long dropped;  /* events lost since the last one delivered */
	bool suspended;         /* nothing to send: MHD parked the connection */
	bool ended;             /* the server is closing: end the stream */
};

/* The libuv glue lives apart from the server: its handles are freed only in their
 * close callbacks, which may run after the server is gone. */
struct uv_glue {
	uv_poll_t poll;
	uv_timer_t timer;
	struct ls_httpd *h;
	int open_handles;
};

struct ls_httpd {
	struct ls_httpd_conf conf;
	char name[32];
	char token[256];
	bool has_token;
	bool loopback;
	char static_real[PATH_MAX];
	bool has_static;
	struct MHD_Daemon *d;
	uint16_t port;
	struct sse *streams;
	unsigned nstreams;
	uint64_t event_id;
	uint64_t next_keepalive_us;
	struct ls_httpd_stats st;
	struct ls_ratelog rl;
	struct uv_glue *uv;
	bool at_limit;          /* every connection slot was taken at the last run */
	bool resumed;           /* a stream was woken: MHD must run soon to send it */
};

static void uv_rearm(struct uv_glue *g);

/* Per request, from the first call of the access handler to its completion. */
struct reqst {
	const struct ls_httpd_route *route;
	struct ls_httpd_req req;
	struct ls_buf body;
	bool too_big;
	bool done;
};

/* ---------------------------------------------------------------- pure parts */

static bool method_is(const char *m, const char *want)
{
	return strcmp(m, want) == 0 || (strcmp(want, "GET") == 0 && strcmp(m, "HEAD") == 0);
}

/* Match path against pattern segment by segment; a {param} takes one segment. */
static bool path_match(const char *pattern, const char *path, struct ls_httpd_req *req)
{
	const char *p = pattern, *s = path;
	int n = 0;

	if (*p != '/' || *s != '/')
		return false;
	while (*p && *s) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			const char *se = strchr(s, '/');
			size_t slen = se ? (size_t)(se - s) : strlen(s);
			if (!pe || slen == 0 || n >= LS_HTTPD_MAX_PARAMS ||
			    slen >= sizeof(req->params[0].value))
				return false;
			if (req) {
				/* The name points into the pattern, up to its '}'. */
				req->params[n].name = p + 1;
				memcpy(req->params[n].value, s, slen);
				req->params[n].value[slen] = '\0';
			}
			n++;
			p = pe + 1;
			s += slen;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	if (*p || *s)
		return false;
	if (req)
		req->nparams = n;
	return true;
}

enum ls_httpd_match ls_httpd_lookup(const struct ls_httpd_route *routes, const char *method,
				    const char *path, const struct ls_httpd_route **route,
				    struct ls_httpd_req *req, char *allow, size_t allowlen)
{
	bool path_seen = false;
	size_t alen = 0;

	if (allow && allowlen)
		allow[0] = '\0';
	for (const struct ls_httpd_route *r = routes; r && r->method; r++) {
		if (!path_match(r->pattern, path, NULL))
			continue;
		if (method_is(method, r->method)) {
			path_match(r->pattern, path, req);
			*route = r;
			return LS_HTTPD_MATCH_OK;
		}
		if (allow && allowlen && !strstr(allow, r->method)) {
			int w = snprintf(allow + alen, allowlen - alen, "%s%s",
					 path_seen ? ", " : "", r->method);
			if (w > 0 && (size_t)w < allowlen - alen)
				alen += (size_t)w;
		}
		path_seen = true;
	}
	return path_seen ? LS_HTTPD_MATCH_NO_METHOD : LS_HTTPD_MATCH_NO_PATH;
}

/* A {param}'s name runs to the closing brace of the pattern; give handlers a
 * NUL-terminated copy. */
static void params_terminate(struct ls_httpd_req *req, char names[][32])
{
	for (int i = 0; i < req->nparams; i++) {
		const char *b = req->params[i].name;
		const char *e = strchr(b, '}');
		size_t n = e ? (size_t)(e - b) : strlen(b);
		if (n >= 32)
			n = 31;
		memcpy(names[i], b, n);
		names[i][n] = '\0';
		req->params[i].name = names[i];
	}
}

static const char *type_name(unsigned t)
{
	switch (t & 0xff) {
	case LS_HTTPD_STRING: return "a string";
	case LS_HTTPD_INT: return "an integer";
	case LS_HTTPD_NUMBER: return "a number";
	case LS_HTTPD_BOOL: return "true or false";
	case LS_HTTPD_OBJECT: return "an object";
	case LS_HTTPD_ARRAY: return "an array";
	}
	return "?";
}

static bool type_ok(unsigned t, const json_t *v)
{
	if (json_is_null(v))
		return t & LS_HTTPD_NULL;
	switch (t & 0xff) {
	case LS_HTTPD_STRING: return json_is_string(v);
	case LS_HTTPD_INT: return json_is_integer(v);
	case LS_HTTPD_NUMBER: return json_is_number(v);
	case LS_HTTPD_BOOL: return json_is_boolean(v);
	case LS_HTTPD_OBJECT: return json_is_object(v);
	case LS_HTTPD_ARRAY: return json_is_array(v);
	}
	return false;
}

static bool all_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

enum ls_rc ls_httpd_check_body(const struct ls_httpd_key *keys, const char *body, size_t len,
			       json_t **out, char *msg, size_t msglen)
{
	json_error_t jerr;
	json_t *o;
	const char *k;
	json_t *v;

	*out = NULL;
	if (!body || all_space(body, len)) {
		*out = json_object();
		return LS_RC_OK;
	}
	if (!keys) {
		snprintf(msg, msglen, "this route takes no request body");
		return LS_RC_BAD_REQUEST;
	}
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!o) {
		snprintf(msg, msglen, "the body is not JSON: %s (line %d, column %d)", jerr.text,
			 jerr.line, jerr.column);
		return LS_RC_BAD_JSON;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(msg, msglen, "the body must be a JSON object");
		return LS_RC_BAD_REQUEST;
	}
	json_object_foreach(o, k, v) {
		const struct ls_httpd_key *kd = NULL;
		for (const struct ls_httpd_key *x = keys; x->name; x++)
			if (strcmp(x->name, k) == 0)
				kd = x;
		if (!kd) {
			char known[160];
			size_t kl = 0;
			known[0] = '\0';
			for (const struct ls_httpd_key *x = keys; x->name; x++) {
				int w = snprintf(known + kl, sizeof(known) - kl, "%s\"%s\"",
						 kl ? ", " : "", x->name);
				if (w > 0 && (size_t)w < sizeof(known) - kl)
					kl += (size_t)w;
			}
			snprintf(msg, msglen, "unknown member \"%.40s\" (this route takes %s)", k,
				 kl ? known : "no members");
			json_decref(o);
			return LS_RC_BAD_REQUEST;
		}
		if (!type_ok(kd->type, v)) {
			snprintf(msg, msglen, "member \"%s\" must be %s%s", kd->name,
				 type_name(kd->type), (kd->type & LS_HTTPD_NULL) ? " or null" : "");
			json_decref(o);
			return LS_RC_INVALID;
		}
	}
	for (const struct ls_httpd_key *x = keys; x->name; x++) {
		if (x->required && !json_object_get(o, x->name)) {
			snprintf(msg, msglen, "member \"%s\" (%s) is required", x->name,
				 type_name(x->type));
			json_decref(o);
			return LS_RC_INVALID;
		}
	}
	*out = o;
	return LS_RC_OK;
}

char *ls_httpd_error_body(enum ls_rc rc, const char *msg)
{
	json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", ls_rc_code(rc), "message",
			      msg && msg[0] ? msg : ls_rc_code(rc));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

static const struct {
	const char *ext, *type;
} content_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".map", "application/json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".woff2", "font/woff2" },
	{ ".txt", "text/plain; charset=utf-8" },
	{ ".yaml", "application/yaml" },
};

const char *ls_httpd_content_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');

	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < LS_ARRAY_LEN(content_types); i++)
			if (strcasecmp(dot, content_types[i].ext) == 0)
				return content_types[i].type;
	return "application/octet-stream";
}

bool ls_httpd_static_path_ok(const char *path)
{
	if (path[0] != '/')
		return false;
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
			return false;
	/* Every segment: non-empty (no "//") and not starting with '.' (no "..", no
	 * ".git", no dotfiles); the last may be empty (a directory's index). */
	for (const char *s = path + 1;;) {
		const char *e = strchr(s, '/');
		if (!e)
			return *s != '.';
		if (e == s || *s == '.')
			return false;
		s = e + 1;
	}
}

bool ls_httpd_token_ok(const char *authorization, const char *token)
{
	uint8_t a[SHA256_DIGEST_SIZE], b[SHA256_DIGEST_SIZE];
	struct sha256_ctx c;
	uint8_t diff = 0;

	if (!authorization || !token || strncasecmp(authorization, "Bearer ", 7) != 0)
		return false;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	/* Compare digests: equal length, and no early exit, whatever the input. */
	sha256_init(&c);
	sha256_update(&c, strlen(authorization), (const uint8_t *)authorization);
	sha256_digest(&c, sizeof(a), a);
	sha256_init(&c);
	sha256_update(&c, strlen(token), (const uint8_t *)token);
	sha256_digest(&c, sizeof(b), b);
	for (size_t i = 0; i < sizeof(a); i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/* ---------------------------------------------------------------- answers */

static enum MHD_Result queue(struct MHD_Connection *conn, int status, struct MHD_Response *r)
{
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static struct MHD_Response *text_response(char *text, size_t len, const char *type)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);

	if (!r) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(r, "Content-Type", type);
	return r;
}

static enum MHD_Result send_error(struct ls_httpd *h, struct MHD_Connection *conn,
				  enum ls_rc rc, const char *msg, const char *allow)
{
	char *text = ls_httpd_error_body(rc, msg);
	int status = ls_rc_http_status(rc);
	struct MHD_Response *r;

	h->st.errors++;
	if (!text)
		return MHD_NO;
	r = text_response(text, strlen(text), "application/json");
	if (!r)
		return MHD_NO;
	if (allow)
		MHD_add_response_header(r, "Allow", allow);
	if (rc == LS_RC_UNAUTHORIZED)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"lightspeed\"");
	return queue(conn, status, r);
}

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, json_t *j)
{
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	size_t len;

	json_decref(j);
	if (!text)
		return MHD_NO;
	len = strlen(text);
	/* One line more, so that `curl` leaves the prompt on its own line. */
	char *t2 = realloc(text, len + 2);
	if (!t2) {
		free(text);
		return MHD_NO;
	}
	t2[len] = '\n';
	t2[len + 1] = '\0';
	return queue(conn, status, text_response(t2, len + 1, "application/json"));
}

/* ---------------------------------------------------------------- event streams */

static void sse_wake(struct sse *c)
{
	if (c->suspended) {
		c->suspended = false;
		c->h->resumed = true;
		MHD_resume_connection(c->conn);
	}
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *c = cls;
	size_t n;

	(void)pos;
	if (c->q_off < c->q.len) {
		n = c->q.len - c->q_off;
		if (n > max)
			n = max;
		memcpy(buf, c->q.data + c->q_off, n);
		c->q_off += n;
		if (c->q_off == c->q.len) {
			c->q.len = c->q_off = 0;
			if (c->q.cap > 65536) {
				ls_buf_free(&c->q);
				ls_buf_init(&c->q);
			}
		}
		return (ssize_t)n;
	}
	if (c->ended)
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* Nothing to send: park the connection until the next event (no busy loop). */
	c->suspended = true;
	MHD_suspend_connection(c->conn);
	return 0;
}

static void sse_free(void *cls)
{
	struct sse *c = cls;

	if (c->pprev) {
		*c->pprev = c->next;
		if (c->next)
			c->next->pprev = c->pprev;
		c->h->nstreams--;
		c->h->st.streams = c->h->nstreams;
	}
	ls_buf_free(&c->q);
	free(c);
}

static void sse_append_event(struct ls_httpd *h, struct sse *c, const char *event,
			     const char *data)
{
	ls_buf_printf(&c->q, "id: %llu\nevent: %s\ndata: %s\n\n",
		      (unsigned long long)++h->event_id, event, data);
}

static enum MHD_Result sse_start(struct ls_httpd *h, struct MHD_Connection *conn,
				 json_t *snapshot)
{
	struct sse *c;
	struct MHD_Response *r;

	if (h->nstreams >= h->conf.max_sse) {
		json_decref(snapshot);
		return send_error(h, conn, LS_RC_FULL,
				  "too many event streams open; close one and retry", NULL);
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		json_decref(snapshot);
		return MHD_NO;
	}
	c->h = h;
	c->conn = conn;
	ls_buf_init(&c->q);
	/* The browser reconnects after 2 s when the stream breaks. */
	ls_buf_printf(&c->q, "retry: 2000\n\n");
	if (snapshot) {
		char *t = json_dumps(snapshot, JSON_COMPACT | JSON_REAL_PRECISION(9));
		if (t)
			sse_append_event(h, c, "snapshot", t);
		free(t);
		json_decref(snapshot);
	}
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, c, sse_free);
	if (!r) {
		ls_buf_free(&c->q);
		free(c);
		return MHD_NO;
	}
	c->next = h->streams;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &h->streams;
	h->streams = c;
	h->nstreams++;
	h->st.streams = h->nstreams;
	h->st.streams_total++;
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	return queue(conn, 200, r);
}

static void uv_on_timer(uv_timer_t *t);

void ls_httpd_publish(struct ls_httpd *h, const char *event, json_t *data)
{
	char *text = data ? json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(9)) : strdup("{}");

	json_decref(data);
	if (!text)
		return;
	size_t len = strlen(text) + strlen(event) + 48;
	for (struct sse *c = h->streams; c; c = c->next) {
		if (c->ended)
			continue;
		if (c->q.len - c->q_off + len > h->conf.sse_backlog) {
			c->dropped++;
			h->st.events_dropped++;
			continue;
		}
		if (c->dropped) {
			char d[48];
			snprintf(d, sizeof(d), "{\"count\":%lu}", c->dropped);
			sse_append_event(h, c, "dropped", d);
			c->dropped = 0;
		}
		sse_append_event(h, c, event, text);
		h->st.events_sent++;
		sse_wake(c);
	}
	free(text);
	/* Published from outside a run (a timer, a dataplane event): MHD sends a resumed
	 * connection's data only when it runs next, so make that now. */
	if (h->resumed && h->uv)
		uv_rearm(h->uv);
}

unsigned ls_httpd_streams(const struct ls_httpd *h)
{
	return h->nstreams;
}

/* A comment line now and then: proxies keep the stream open, and a vanished client
 * is noticed (the write fails) instead of holding a slot forever. */
static void sse_keepalive(struct ls_httpd *h)
{
	uint64_t now = ls_now_us();

	if (now < h->next_keepalive_us)
		return;
	h->next_keepalive_us = now + (uint64_t)h->conf.sse_keepalive_s * 1000000u;
	for (struct sse *c = h->streams; c; c = c->next) {
		if (c->q.len == c->q_off) {
			ls_buf_append(&c->q, ": keepalive\n\n", 13);
			sse_wake(c);
		}
	}
}

/* ---------------------------------------------------------------- static files */

static enum MHD_Result serve_static(struct ls_httpd *h, struct MHD_Connection *conn,
				    const char *path)
{
	char full[PATH_MAX], real[PATH_MAX];
	struct stat st;
	int fd;

	if (!ls_httpd_static_path_ok(path))
		return send_error(h, conn, LS_RC_NOT_FOUND, "no such file", NULL);
	int n = snprintf(full, sizeof(full), "%s%s%s", h->static_real, path,
			 path[strlen(path) - 1] == '/' ? "index.html" : "");
	if (n < 0 || (size_t)n >= sizeof(full))
		return send_error(h, conn, LS_RC_NOT_FOUND, "no such file", NULL);
	/* The resolved file must still be under the root (a symlink out of it is not). */
	size_t rl = strlen(h->static_real);
	if (!realpath(full, real) || strncmp(real, h->static_real, rl) != 0 || real[rl] != '/')
		return send_error(h, conn, LS_RC_NOT_FOUND, "no such file", NULL);
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return send_error(h, conn, LS_RC_NOT_FOUND, "no such file", NULL);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return send_error(h, conn, LS_RC_NOT_FOUND, "no such file", NULL);
	}
	struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	if (!r) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ls_httpd_content_type(real));
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'self'; img-src 'self' data:; style-src 'self' "
				"'unsafe-inline'");
	return queue(conn, 200, r);
}

/* ---------------------------------------------------------------- requests */

/* A page on another site must not drive the API through the user's browser: the
 * Host of a loopback server must be a loopback name (no DNS rebinding). */
static bool host_ok(const char *host)
{
	char name[64];
	size_t n;

	if (!host)
		return true; /* HTTP/1.0 */
	if (host[0] == '[')
		return strncmp(host, "[::1]", 5) == 0;
	n = strcspn(host, ":");
	if (n >= sizeof(name))
		return false;
	memcpy(name, host, n);
	name[n] = '\0';
	if (strcasecmp(name, "localhost") == 0)
		return true;
	struct in_addr a;
	return inet_aton(name, &a) && (ntohl(a.s_addr) >> 24) == 127;
}

/* A state-changing request from a browser carries Origin: only the page served by
 * this same server (same scheme, host and port) may send one. */
static bool origin_ok(const char *origin, const char *host)
{
	if (!origin)
		return true;
	return host && strncmp(origin, "http://", 7) == 0 && strcmp(origin + 7, host) == 0;
}

struct query_check {
	const char *const *allowed;
	const char *bad;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct query_check *q = cls;

	(void)kind;
	(void)value;
	for (const char *const *a = q->allowed; a && *a; a++)
		if (strcmp(*a, key) == 0)
			return MHD_YES;
	q->bad = key;
	return MHD_NO;
}

const char *ls_httpd_query(const struct ls_httpd_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* Checks made before any body is read: auth, origin, route, query, declared size. */
static enum MHD_Result on_first_call(struct ls_httpd *h, struct MHD_Connection *conn,
				     const char *url, const char *method, struct reqst *rs)
{
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	char allow[64], msg[200];

	h->st.requests++;
	if (h->has_token) {
		const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							       "Authorization");
		if (!ls_httpd_token_ok(auth, h->token)) {
			h->st.auth_failures++;
			rs->done = true;
			return send_error(h, conn, LS_RC_UNAUTHORIZED,
					  auth ? "wrong token"
					       : "this server needs Authorization: Bearer TOKEN "
						 "(lsctl --token T or $LSCTL_TOKEN)",
					  NULL);
		}
	}
	if (h->loopback && !host_ok(host)) {
		rs->done = true;
		return send_error(h, conn, LS_RC_FORBIDDEN,
				  "Host must be a loopback address or localhost", NULL);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    !origin_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"), host)) {
		rs->done = true;
		return send_error(h, conn, LS_RC_FORBIDDEN,
				  "cross-origin requests may only read", NULL);
	}
	enum ls_httpd_match m = ls_httpd_lookup(h->conf.routes, method, url, &rs->route, &rs->req,
						allow, sizeof(allow));
	if (m == LS_HTTPD_MATCH_NO_PATH && h->has_static &&
	    (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) {
		rs->done = true;
		return serve_static(h, conn, url);
	}
	if (m == LS_HTTPD_MATCH_NO_PATH) {
		snprintf(msg, sizeof(msg), "no such path: %.120s", url);
		rs->done = true;
		return send_error(h, conn, LS_RC_UNKNOWN_COMMAND, msg, NULL);
	}
	if (m == LS_HTTPD_MATCH_NO_METHOD) {
		snprintf(msg, sizeof(msg), "%.100s takes %s, not %.16s", url, allow, method);
		rs->done = true;
		return send_error(h, conn, LS_RC_METHOD, msg, allow);
	}
	struct query_check q = { rs->route->query, NULL };
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_iter, &q);
	if (q.bad) {
		snprintf(msg, sizeof(msg), "unknown query parameter \"%.40s\"", q.bad);
		rs->done = true;
		return send_error(h, conn, LS_RC_BAD_REQUEST, msg, NULL);
	}
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	uint64_t len;
	if (cl && ls_parse_u64(cl, UINT64_MAX, &len) == 0 && len > h->conf.max_body) {
		snprintf(msg, sizeof(msg), "the body is larger than %zu bytes", h->conf.max_body);
		rs->done = true;
		return send_error(h, conn, LS_RC_TOO_LONG, msg, NULL);
	}
	return MHD_YES;
}

static enum MHD_Result on_complete_body(struct ls_httpd *h, struct MHD_Connection *conn,
					struct reqst *rs)
{
	struct ls_httpd_reply rep = { .status = 200 };
	char names[LS_HTTPD_MAX_PARAMS][32];
	json_t *body;
	enum ls_rc rc;

	rs->done = true;
	if (rs->too_big) {
		snprintf(rep.msg, sizeof(rep.msg), "the body is larger than %zu bytes",
			 h->conf.max_body);
		return send_error(h, conn, LS_RC_TOO_LONG, rep.msg, NULL);
	}
	rc = ls_httpd_check_body(rs->route->keys, rs->body.data, rs->body.len, &body, rep.msg,
				 sizeof(rep.msg));
	if (rc != LS_RC_OK)
		return send_error(h, conn, rc, rep.msg, NULL);
	params_terminate(&rs->req, names);
	rs->req.body = body;
	rs->req.conn = conn;
	rc = rs->route->fn ? rs->route->fn(h->conf.ctx, &rs->req, &rep) : LS_RC_OK;
	json_decref(body);
	rs->req.body = NULL;
	if (rc != LS_RC_OK) {
		json_decref(rep.json);
		free(rep.text);
		return send_error(h, conn, rc, rep.msg, NULL);
	}
	if (rs->route->sse) {
		free(rep.text);
		return sse_start(h, conn, rep.json);
	}
	if (rep.text) {
		json_decref(rep.json);
		return queue(conn, rep.status,
			     text_response(rep.text, rep.text_len,
					   rep.content_type ? rep.content_type : "text/plain"));
	}
	return send_json(conn, rep.status, rep.json ? rep.json : json_object());
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct ls_httpd *h = cls;
	struct reqst *rs = *con_cls;

	(void)version;
	if (!rs) {
		rs = calloc(1, sizeof(*rs));
		if (!rs)
			return MHD_NO;
		ls_buf_init(&rs->body);
		rs->req.method = method;
		rs->req.path = url;
		*con_cls = rs;
		return on_first_call(h, conn, url, method, rs);
	}
	if (rs->done) {
		/* Answered before the body came: whatever follows is discarded. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rs->too_big && rs->body.len + *upload_data_size > h->conf.max_body) {
			rs->too_big = true;
			ls_buf_free(&rs->body);
			ls_buf_init(&rs->body);
		}
		if (!rs->too_big)
			ls_buf_append(&rs->body, upload_data, *upload_data_size);
		if (rs->body.oom)
			rs->too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return on_complete_body(h, conn, rs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct reqst *rs = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!rs)
		return;
	ls_buf_free(&rs->body);
	free(rs);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct ls_httpd *h = cls;
	char line[256];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	ls_log_rl(&h->rl, LS_LOG_DEBUG, __func__, "%s: %s", h->name, line);
}

/* ---------------------------------------------------------------- life cycle */

static bool addr_is_loopback(const struct sockaddr_in *a)
{
	return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

struct ls_httpd *ls_httpd_open(const struct ls_httpd_conf *conf, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	struct ls_httpd *h;
	char perr[128];

	if (ls_hostport_parse(conf->listen, &sa, true, true, perr, sizeof(perr)) < 0) {
		snprintf(err, errlen, "%s address %s: %s", conf->name ? conf->name : "HTTP",
			 conf->listen, perr);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->conf = *conf;
	snprintf(h->name, sizeof(h->name), "%s", conf->name ? conf->name : "HTTP");
	h->loopback = addr_is_loopback(&sa);
	if (conf->token && conf->token[0]) {
		if (strlen(conf->token) >= sizeof(h->token)) {
			snprintf(err, errlen, "%s: the token is longer than %zu bytes", h->name,
				 sizeof(h->token) - 1);
			goto fail;
		}
		snprintf(h->token, sizeof(h->token), "%s", conf->token);
		h->has_token = true;
	}
	if (!h->loopback && !h->has_token) {
		snprintf(err, errlen,
			 "%s on %s would be reachable from other hosts: set a token (it is then "
			 "required as Authorization: Bearer TOKEN), or listen on 127.0.0.1",
			 h->name, conf->listen);
		goto fail;
	}
	if (conf->static_root) {
		if (!realpath(conf->static_root, h->static_real)) {
			snprintf(err, errlen, "%s: static files in %s: %s", h->name,
				 conf->static_root, strerror(errno));
			goto fail;
		}
		h->has_static = true;
	}
	if (!h->conf.max_body)
		h->conf.max_body = DEFAULT_MAX_BODY;
	if (!h->conf.max_conns)
		h->conf.max_conns = DEFAULT_MAX_CONNS;
	if (!h->conf.max_sse)
		h->conf.max_sse = DEFAULT_MAX_SSE;
	if (!h->conf.timeout_s)
		h->conf.timeout_s = DEFAULT_TIMEOUT_S;
	if (!h->conf.sse_backlog)
		h->conf.sse_backlog = DEFAULT_SSE_BACKLOG;
	if (!h->conf.sse_keepalive_s)
		h->conf.sse_keepalive_s = DEFAULT_KEEPALIVE_S;
	/* Streams count against the connection limit: keep room for plain requests. */
	if (h->conf.max_sse >= h->conf.max_conns)
		h->conf.max_sse = h->conf.max_conns / 2 ? h->conf.max_conns / 2 : 1;

	h->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
				0, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)h->conf.max_conns,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)h->conf.timeout_s,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32u << 10),
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				MHD_OPTION_LISTEN_BACKLOG_SIZE, 64u,
				MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "%s: cannot listen on %s (%s; is another program using the "
			 "port?)", h->name, conf->listen, errno ? strerror(errno) : "failed");
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : ntohs(sa.sin_port);
	if (h->has_token)
		ls_info("%s on %s:%u: every request needs Authorization: Bearer TOKEN%s", h->name,
			inet_ntoa(sa.sin_addr), h->port,
			h->loopback ? "" : " (reachable from other hosts)");
	else
		ls_info("%s on %s:%u (loopback only, no token)", h->name, inet_ntoa(sa.sin_addr),
			h->port);
	return h;
fail:
	free(h);
	return NULL;
}

uint16_t ls_httpd_port(const struct ls_httpd *h)
{
	return h->port;
}

int ls_httpd_fd(const struct ls_httpd *h)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);

	return di ? di->epoll_fd : -1;
}

int ls_httpd_timeout_ms(const struct ls_httpd *h)
{
	MHD_UNSIGNED_LONG_LONG t;
	int64_t ms = -1;

	if (h->resumed)
		return 0;
	if (MHD_get_timeout(h->d, &t) == MHD_YES)
		ms = t > INT32_MAX ? INT32_MAX : (int64_t)t;
	if (h->nstreams) {
		uint64_t now = ls_now_us();
		int64_t k = h->next_keepalive_us > now
				    ? (int64_t)((h->next_keepalive_us - now) / 1000) + 1
				    : 0;
		if (ms < 0 || k < ms)
			ms = k;
	}
	return (int)ms;
}

void ls_httpd_run(struct ls_httpd *h)
{
	if (h->nstreams)
		sse_keepalive(h);
	else
		h->next_keepalive_us = ls_now_us() + (uint64_t)h->conf.sse_keepalive_s * 1000000u;
	h->resumed = false;
	MHD_run(h->d);
	/* At the connection limit MHD takes its listening socket out of its epoll set and
	 * puts it back only on a later run; when the run above freed a slot, nothing else
	 * would wake us for the connections waiting in the backlog. */
	const union MHD_DaemonInfo *di =
		MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	unsigned now_conns = di ? di->num_connections : 0;
	if (h->at_limit && now_conns < h->conf.max_conns)
		MHD_run(h->d);
	h->at_limit = now_conns >= h->conf.max_conns;
}

void ls_httpd_get_stats(const struct ls_httpd *h, struct ls_httpd_stats *st)
{
	*st = h->st;
}

/* ---- libuv glue: one poll on MHD's epoll fd and one timer for its deadlines ---- */


static void uv_rearm(struct uv_glue *g)
{
	int ms = ls_httpd_timeout_ms(g->h);

	if (ms < 0)
		uv_timer_stop(&g->timer);
	else
		uv_timer_start(&g->timer, uv_on_timer, (uint64_t)ms, 0);
}

static void uv_on_timer(uv_timer_t *t)
{
	struct uv_glue *g = t->data;

	if (!g->h)
		return;
	ls_httpd_run(g->h);
	uv_rearm(g);
}

static void uv_on_poll(uv_poll_t *p, int status, int events)
{
	struct uv_glue *g = p->data;

	(void)status;
	(void)events;
	if (!g->h)
		return;
	ls_httpd_run(g->h);
	uv_rearm(g);
}

static void uv_on_close(uv_handle_t *hd)
{
	struct uv_glue *g = hd->data;

	if (--g->open_handles == 0)
		free(g);
}

int ls_httpd_attach_uv(struct ls_httpd *h, struct uv_loop_s *loop)
{
	struct uv_glue *g = calloc(1, sizeof(*g));

	if (!g)
		return -1;
	g->h = h;
	if (uv_poll_init(loop, &g->poll, ls_httpd_fd(h)) < 0) {
		free(g);
		return -1;
	}
	g->poll.data = g;
	uv_timer_init(loop, &g->timer);
	g->timer.data = g;
	g->open_handles = 2;
	h->uv = g;
	uv_poll_start(&g->poll, UV_READABLE, uv_on_poll);
	uv_rearm(g);
	return 0;
}

void ls_httpd_close(struct ls_httpd *h)
{
	if (!h)
		return;
	/* End every stream, then let MHD close them with the rest. */
	for (struct sse *c = h->streams; c; c = c->next) {
		c->ended = true;
		sse_wake(c);
	}
	MHD_stop_daemon(h->d);
	/* Streams MHD did not free (it frees a response with its connection) are ours. */
	while (h->streams)
		sse_free(h->streams);
	if (h->uv) {
		h->uv->h = NULL;
		uv_poll_stop(&h->uv->poll);
		uv_timer_stop(&h->uv->timer);
		uv_close((uv_handle_t *)&h->uv->poll, uv_on_close);
		uv_close((uv_handle_t *)&h->uv->timer, uv_on_close);
	}
	free(h);
}
