/* lightspeed-agent: the proxy's steering link (pxlink.h). */
#include "pxlink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "steer_cmd.h"
#include "steer_uv.h"
#include "util.h"

struct pxlink {
	struct ls_steer_uv *uv;
	struct ls_steerc *c;
	const struct pxlink_ops *ops;
	void *ctx;
	bool ready;
	uint16_t data_port;
	int64_t max_sessions;
	json_t *stats;
};

struct call {
	pxlink_done done;
	void *ud;
};

static void on_sessions(void *ud, const struct ls_steerc_answer *a)
{
	struct pxlink *p = ud;
	json_t *arr;

	if (a->rc != LS_RC_OK) {
		ls_warn("the proxy did not list its sessions: %s (%s)", a->message, a->code);
		return;
	}
	arr = json_object_get(a->result, "sessions");
	if (!json_is_array(arr)) {
		ls_warn("the proxy's sessions answer holds no sessions array");
		return;
	}
	p->ready = true;
	if (p->ops->up)
		p->ops->up(p->ctx, arr);
}

static void on_status(void *ud, const struct ls_steerc_answer *a)
{
	struct pxlink *p = ud;
	const char *bind;
	const char *colon;
	json_t *ms;
	enum ls_rc rc;

	if (a->rc != LS_RC_OK) {
		ls_warn("the proxy did not answer status: %s (%s)", a->message, a->code);
		return;
	}
	bind = json_string_value(json_object_get(a->result, "bind"));
	colon = bind ? strrchr(bind, ':') : NULL;
	if (colon) {
		uint64_t port;

		if (ls_parse_u64(colon + 1, 65535, &port) == 0)
			p->data_port = (uint16_t)port;
	}
	ms = json_object_get(a->result, "max_sessions");
	if (json_is_integer(ms))
		p->max_sessions = json_integer_value(ms);
	rc = ls_steerc_request(p->c, "sessions", NULL, on_sessions, p);
	if (rc != LS_RC_OK)
		ls_warn("asking the proxy for its sessions: %s", ls_steerc_error(p->c));
}

static void on_connected(void *ctx)
{
	struct pxlink *p = ctx;
	enum ls_rc rc;

	ls_info("proxy steering socket connected: reading its sessions");
	rc = ls_steerc_request(p->c, "status", NULL, on_status, p);
	if (rc != LS_RC_OK)
		ls_warn("asking the proxy for its status: %s", ls_steerc_error(p->c));
}

static void on_disconnected(void *ctx, const char *why)
{
	struct pxlink *p = ctx;
	bool was = p->ready;

	p->ready = false;
	json_decref(p->stats);
	p->stats = NULL;
	if (was && p->ops->down)
		p->ops->down(p->ctx, why);
}

static void on_event(void *ctx, const char *name, json_t *ev)
{
	struct pxlink *p = ctx;

	if (strcmp(name, "counters") == 0) {
		json_decref(p->stats);
		p->stats = json_incref(ev);
	} else if (strcmp(name, "session_down") == 0) {
		json_t *id = json_object_get(ev, "session_id");
		const char *reason = json_string_value(json_object_get(ev, "reason"));

		if (json_is_integer(id) && json_integer_value(id) > 0 &&
		    json_integer_value(id) <= UINT32_MAX && p->ops->session_down)
			p->ops->session_down(p->ctx, (uint32_t)json_integer_value(id),
					     reason ? reason : "?");
	}
}

static const struct ls_steerc_ops steer_ops = {
	.connected = on_connected,
	.disconnected = on_disconnected,
	.event = on_event,
};

struct pxlink *pxlink_open(uv_loop_t *loop, const char *path, const struct pxlink_ops *ops,
			   void *ctx, char *err, size_t errlen)
{
	struct pxlink *p = calloc(1, sizeof(*p));
	struct ls_steerc_opts opts = { .defs = ls_steer_cmd_proxy };

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->ops = ops;
	p->ctx = ctx;
	p->uv = ls_steer_uv_open(loop, path, &steer_ops, p, &opts, err, errlen);
	if (!p->uv) {
		free(p);
		return NULL;
	}
	p->c = ls_steer_uv_client(p->uv);
	ls_steerc_subscribe(p->c);
	return p;
}

void pxlink_close(struct pxlink *p)
{
	if (!p)
		return;
	ls_steer_uv_close(p->uv);
	json_decref(p->stats);
	free(p);
}

bool pxlink_ready(const struct pxlink *p)
{
	return p->ready;
}

uint16_t pxlink_data_port(const struct pxlink *p)
{
	return p->data_port;
}

int64_t pxlink_max_sessions(const struct pxlink *p)
{
	return p->max_sessions;
}

json_t *pxlink_stats(const struct pxlink *p)
{
	return p->stats;
}

static void on_answer(void *ud, const struct ls_steerc_answer *a)
{
	struct call *c = ud;

	if (c->done)
		c->done(c->ud, a->rc, a->code ? a->code : "ok", a->message ? a->message : "");
	free(c);
}

static enum ls_rc send_call(struct pxlink *p, const char *cmd, json_t *args, pxlink_done done,
			    void *ud)
{
	struct call *c = malloc(sizeof(*c));
	enum ls_rc rc;

	if (!c) {
		json_decref(args);
		return LS_RC_INTERNAL;
	}
	c->done = done;
	c->ud = ud;
	rc = ls_steerc_request(p->c, cmd, args, on_answer, c);
	if (rc != LS_RC_OK)
		free(c);
	return rc;
}

enum ls_rc pxlink_add(struct pxlink *p, const struct session *s, uint64_t pps, uint64_t bps,
		      pxlink_done done, void *ud)
{
	char hex[2 * LS_CTL_KEY_LEN + 1], d[64];
	json_t *args, *dests = json_array();

	if (!p->ready) {
		json_decref(dests);
		return LS_RC_NOT_READY;
	}
	for (uint8_t i = 0; i < s->ndests; i++) {
		ls_dest_fmt(&s->dests[i], d, sizeof(d));
		json_array_append_new(dests, json_string(d));
	}
	ls_hex_encode(s->key, LS_CTL_KEY_LEN, hex);
	args = json_pack("{s:I,s:s,s:o,s:I,s:I}", "session_id", (json_int_t)s->id, "key", hex,
			 "destinations", dests, "pps", (json_int_t)pps, "bps", (json_int_t)bps);
	memset(hex, 0, sizeof(hex));
	if (!args)
		return LS_RC_INTERNAL;
	return send_call(p, "session_add", args, done, ud);
}

enum ls_rc pxlink_del(struct pxlink *p, uint32_t id, pxlink_done done, void *ud)
{
	if (!p->ready)
		return LS_RC_NOT_READY;
	return send_call(p, "session_del", json_pack("{s:I}", "session_id", (json_int_t)id), done,
			 ud);
}
