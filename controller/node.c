/* lightspeed-controller: the node table and the --node flag's syntax. */
#include "node.h"

#include <stdio.h>
#include <string.h>

#include "ctlmsg.h"
#include "util.h"

const char *node_source_name(enum node_source s)
{
	static const char *const names[NODE_SRC__COUNT] = {
		[NODE_SRC_CONFIG] = "config", [NODE_SRC_CMDLINE] = "command_line",
		[NODE_SRC_API] = "api", [NODE_SRC_DATAPLANE] = "dataplane",
		[NODE_SRC_DNS] = "dns", [NODE_SRC_PEER] = "peer",
	};

	return (unsigned)s < NODE_SRC__COUNT ? names[s] : "config";
}

void node_conf_init(struct node_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->probe_ms = NODE_PROBE_MS_DEFAULT;
	c->facts.distance_km = -1;
	c->facts.hops = -1;
	c->facts.as_path_len = -1;
}

bool node_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n >= NODE_NAME_MAX)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

bool node_conf_same_route(const struct node_conf *a, const struct node_conf *b)
{
	return a->addr.sin_addr.s_addr == b->addr.sin_addr.s_addr &&
	       a->addr.sin_port == b->addr.sin_port && a->key.set == b->key.set &&
	       (!a->key.set || (a->session_id == b->session_id &&
				memcmp(a->key.b, b->key.b, NODE_KEY_LEN) == 0)) &&
	       a->probe_ms == b->probe_ms && a->direct == b->direct;
}

void node_table_init(struct node_table *t)
{
	memset(t, 0, sizeof(*t));
}

int node_find(const struct node_table *t, const char *name)
{
	for (int i = 0; i < NODE_MAX; i++)
		if (t->n[i].used && strcmp(t->n[i].conf.name, name) == 0)
			return i;
	return -1;
}

int node_add(struct node_table *t, const struct node_conf *c, uint64_t now_us, bool *full)
{
	*full = false;
	if (node_find(t, c->name) >= 0)
		return -1;
	for (int i = 0; i < NODE_MAX; i++) {
		struct node *n = &t->n[i];
		if (n->used)
			continue;
		memset(n, 0, sizeof(*n));
		n->used = true;
		n->conf = *c;
		n->added_us = now_us;
		health_init(&n->health, now_us);
		n->server_leg_us = -1;
		n->load = -1;
		n->dp.session_id = -1;
		n->dp.rtt_us = n->dp.rtt_min_us = n->dp.jitter_us = -1;
		n->dp.loss_up = n->dp.loss_down = -1;
		n->dp.last_rx_ms = -1;
		return i;
	}
	*full = true;
	return -1;
}

void node_remove(struct node_table *t, int slot)
{
	if (slot >= 0 && slot < NODE_MAX)
		memset(&t->n[slot], 0, sizeof(t->n[slot]));
}

unsigned node_count(const struct node_table *t)
{
	unsigned k = 0;

	for (int i = 0; i < NODE_MAX; i++)
		k += t->n[i].used;
	return k;
}

int node_parse_spec(const char *spec, struct node_conf *c, char *err, size_t errlen)
{
	char buf[1024], *eq, *opt, *save = NULL;
	size_t n = strlen(spec);

	node_conf_init(c);
	if (n >= sizeof(buf)) {
		snprintf(err, errlen, "too long");
		return -1;
	}
	memcpy(buf, spec, n + 1);
	eq = strchr(buf, '=');
	if (!eq) {
		snprintf(err, errlen, "expected NAME=HOST:PORT[,session=ID,key-file=PATH][,control=PORT[,fingerprint=sha256:HEX]], not '%.64s'",
			 spec);
		return -1;
	}
	*eq = '\0';
	if (!node_name_valid(buf)) {
		snprintf(err, errlen, "bad node name '%.40s' (1..31 of A-Z a-z 0-9 . _ -)", buf);
		return -1;
	}
	memcpy(c->name, buf, strlen(buf) + 1);
	opt = strtok_r(eq + 1, ",", &save);
	if (!opt || !*opt) {
		snprintf(err, errlen, "node %s: HOST:PORT is missing", c->name);
		return -1;
	}
	if (strlen(opt) >= sizeof(c->address)) {
		snprintf(err, errlen, "node %s: address too long", c->name);
		return -1;
	}
	snprintf(c->address, sizeof(c->address), "%s", opt);
	bool have_session = false;
	while ((opt = strtok_r(NULL, ",", &save))) {
		char *v = strchr(opt, '=');
		int64_t x;
		if (!v) {
			snprintf(err, errlen, "node %s: expected KEY=VALUE, not '%.40s'", c->name, opt);
			return -1;
		}
		*v++ = '\0';
		if (strcmp(opt, "session") == 0) {
			if (ls_parse_i64(v, 1, 0xffffffffll, &x) < 0) {
				snprintf(err, errlen, "node %s: session must be 1..4294967295", c->name);
				return -1;
			}
			c->session_id = (uint32_t)x;
			have_session = true;
		} else if (strcmp(opt, "key-file") == 0) {
			if (!*v || strlen(v) >= sizeof(c->key_file)) {
				snprintf(err, errlen, "node %s: bad key-file path", c->name);
				return -1;
			}
			snprintf(c->key_file, sizeof(c->key_file), "%s", v);
		} else if (strcmp(opt, "probe-ms") == 0) {
			if (ls_parse_i64(v, NODE_PROBE_MS_MIN, NODE_PROBE_MS_MAX, &x) < 0) {
				snprintf(err, errlen, "node %s: probe-ms must be %d..%d", c->name,
					 NODE_PROBE_MS_MIN, NODE_PROBE_MS_MAX);
				return -1;
			}
			c->probe_ms = (uint32_t)x;
		} else if (strcmp(opt, "control") == 0) {
			if (ls_parse_i64(v, 1, 65535, &x) < 0) {
				snprintf(err, errlen, "node %s: control must be the agent's port, 1..65535",
					 c->name);
				return -1;
			}
			c->control_port = (uint16_t)x;
		} else if (strcmp(opt, "fingerprint") == 0) {
			if (ls_ctl_fp_parse(v, c->fp) < 0) {
				snprintf(err, errlen, "node %s: fingerprint must be sha256: and 64 hex digits "
					 "(the agent prints it at start)", c->name);
				return -1;
			}
			c->has_fp = true;
		} else {
			snprintf(err, errlen, "node %s: unknown option '%.32s' (session, key-file, "
				 "probe-ms, control, fingerprint)", c->name, opt);
			return -1;
		}
	}
	if (c->control_port && have_session) {
		snprintf(err, errlen, "node %s: its agent issues the session: control= goes without "
			 "session= and key-file=", c->name);
		return -1;
	}
	if (c->has_fp && !c->control_port) {
		snprintf(err, errlen, "node %s: fingerprint= pins an agent: give control=PORT too",
			 c->name);
		return -1;
	}
	if (have_session != !!c->key_file[0]) {
		snprintf(err, errlen, "node %s: session and key-file go together", c->name);
		return -1;
	}
	return 0;
}
