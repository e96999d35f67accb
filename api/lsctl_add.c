/* lsctl add NAME HOST:PORT [--session-id ID --key HEX] [--probe-ms MS] [--region NAME]:
 * POST /proxies. Arguments are checked here as strictly as the API checks them, so a
 * typo is a usage error (exit 2) before anything is sent. */
#include "lsctl.h"

#include <string.h>

#include "util.h"

static bool hostport_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	uint64_t port;

	if (!colon || colon == s || colon - s > 253)
		return false;
	if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-") !=
	    (size_t)(colon - s))
		return false;
	return ls_parse_u64(colon + 1, 65535, &port) == 0 && port > 0;
}

static bool hex32(const char *s)
{
	return strlen(s) == 32 && strspn(s, "0123456789abcdefABCDEF") == 32;
}

int lsctl_cmd_add(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	const char *pos[2];
	int npos = 0;
	json_t *body = json_object();

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || strcmp(a, "-") == 0) {
			if (npos == 2) {
				json_decref(body);
				return lsctl_usage_error(cmd, "unexpected argument '%s'", a);
			}
			pos[npos++] = a;
			continue;
		}
		const char *val = strchr(a, '=');
		size_t klen = val ? (size_t)(val - a) : strlen(a);
		if (val)
			val++;
		else if (i + 1 < argc)
			val = argv[++i];
		if (!val) {
			json_decref(body);
			return lsctl_usage_error(cmd, "%s needs a value", a);
		}
		uint64_t v;
		if (klen == 12 && strncmp(a, "--session-id", klen) == 0) {
			if (ls_parse_u64(val, 0xffffffffu, &v) < 0) {
				json_decref(body);
				return lsctl_usage_error(cmd, "--session-id: '%s' is not a number "
							 "0..4294967295", val);
			}
			json_object_set_new(body, "session_id", json_integer((json_int_t)v));
		} else if (klen == 5 && strncmp(a, "--key", klen) == 0) {
			if (!hex32(val)) {
				json_decref(body);
				return lsctl_usage_error(cmd, "--key must be 32 hex digits");
			}
			json_object_set_new(body, "key", json_string(val));
		} else if (klen == 10 && strncmp(a, "--probe-ms", klen) == 0) {
			if (ls_parse_u64(val, 3600000, &v) < 0 || v < 20) {
				json_decref(body);
				return lsctl_usage_error(cmd, "--probe-ms: '%s' is not a number of "
							 "milliseconds of at least 20", val);
			}
			json_object_set_new(body, "probe_ms", json_integer((json_int_t)v));
		} else if (klen == 8 && strncmp(a, "--region", klen) == 0) {
			if (!val[0] || strlen(val) > 63) {
				json_decref(body);
				return lsctl_usage_error(cmd, "--region: 1 to 63 characters");
			}
			json_object_set_new(body, "region", json_string(val));
		} else {
			json_decref(body);
			return lsctl_usage_error(cmd, "unknown option '%.*s'", (int)klen, a);
		}
	}
	if (npos != 2) {
		json_decref(body);
		return lsctl_usage_error(cmd, "needs a NAME and the node's HOST:PORT");
	}
	if (!lsctl_name_ok(pos[0])) {
		json_decref(body);
		return lsctl_usage_error(cmd, "'%s' is not a node name (1-31 of A-Z a-z 0-9 . _ -)",
					 pos[0]);
	}
	if (!hostport_ok(pos[1])) {
		json_decref(body);
		return lsctl_usage_error(cmd, "'%s' is not HOST:PORT (e.g. 203.0.113.7:4434)", pos[1]);
	}
	if (!json_object_get(body, "session_id") != !json_object_get(body, "key")) {
		json_decref(body);
		return lsctl_usage_error(cmd, "--session-id and --key go together");
	}
	json_object_set_new(body, "name", json_string(pos[0]));
	json_object_set_new(body, "address", json_string(pos[1]));
	return lsctl_request(l, "POST", "/proxies", body, l->out->proxy);
}
