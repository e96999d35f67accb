/* Unit tests for controller/ctrl_conf.c and node.c's --node syntax: defaults, the file
 * with every section, errors with file:line:col, flags over the file, key files, the
 * token rule off loopback, and that a failed build leaves the old configuration. */

#include "../../controller/ctrl_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "unit.h"

static char dir[64];

static const char *file(const char *name, const char *text)
{
	static char path[4][128];
	static int k;
	char *p = path[k++ % 4];
	FILE *f;

	snprintf(p, 128, "%s/%s", dir, name);
	f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	return p;
}

static int build(const char *text, struct ctrl_conf *c, char *err)
{
	struct ctrl_flags fl = { 0 };

	fl.config = text ? file("c.toml", text) : "/nonexistent/controller.toml";
	return ctrl_conf_build(&fl, c, err, 512);
}

/* A private directory for the files (removed at exit). */
static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void setup_dir(void)
{
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/ls-unit-conf-XXXXXX");
		CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
		atexit(cleanup);
	}
}

static void test_defaults_and_sections(void)
{
	struct ctrl_conf c;
	char err[512];

	setup_dir();
	CU_ASSERT_EQUAL(build("", &c, err), 0);
	CU_ASSERT_STRING_EQUAL(c.api, "127.0.0.1:9000");
	CU_ASSERT_EQUAL(c.select.hold_ms, 5000);
	CU_ASSERT_DOUBLE_EQUAL(c.select.margin_ratio, 1.1, 1e-9);
	CU_ASSERT_EQUAL(c.failover.cooldown_ms, 10000);
	CU_ASSERT_EQUAL(c.health.down_after, 3);
	CU_ASSERT_EQUAL(c.n_nodes, 0);

	CU_ASSERT_EQUAL(build("[controller]\nclient_socket = \"/tmp/x.sock\"\napi = \"127.0.0.1:0\"\n"
			      "state_dir = \"/tmp/st\"\nlog_level = \"debug\"\n"
			      "[health]\nwindow_ms = 5000\ndown_after = 5\ndegraded_loss = 0.1\n"
			      "[select]\nmargin_ratio = 1.2\nmargin_ms = 2.5\nhold_ms = 2000\n"
			      "loss_penalty_ms = 20\nserver_leg = false\n"
			      "[failover]\ncooldown_ms = 3000\nmax_switches = 2\nwindow_ms = 30000\n"
			      "[direct]\nicmp = false\ninterval_ms = 500\ntarget = \"192.0.2.1\"\n"
			      "[[node]]\nname = \"a\"\naddress = \"127.0.0.1:4434\"\nregion = \"eu-west\"\n"
			      "distance_km = 300\nprobe_ms = 100\n"
			      "[[node]]\nname = \"b.2\"\naddress = \"127.0.0.1:4435\"\nsession_id = 7\n"
			      "key = \"000102030405060708090a0b0c0d0e0f\"\n",
			      &c, err),
			0);
	CU_ASSERT_STRING_EQUAL(c.client_socket, "/tmp/x.sock");
	CU_ASSERT_EQUAL(c.health.window_ms, 5000);
	CU_ASSERT_EQUAL(c.health.down_after, 5);
	CU_ASSERT_DOUBLE_EQUAL(c.health.degraded_loss, 0.1, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(c.select.margin_ratio, 1.2, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(c.select.margin_ms, 2.5, 1e-9);
	CU_ASSERT_EQUAL(c.select.hold_ms, 2000);
	CU_ASSERT_DOUBLE_EQUAL(c.nearest.loss_penalty_ms, 20, 1e-9);
	CU_ASSERT_FALSE(c.nearest.use_server_leg);
	CU_ASSERT_EQUAL(c.failover.cooldown_ms, 3000);
	CU_ASSERT_EQUAL(c.failover.max_switches, 2);
	CU_ASSERT_FALSE(c.icmp);
	CU_ASSERT_STRING_EQUAL(c.direct_target, "192.0.2.1");
	CU_ASSERT_EQUAL(c.n_nodes, 2);
	CU_ASSERT_STRING_EQUAL(c.nodes[0].name, "a");
	CU_ASSERT_EQUAL(c.nodes[0].probe_ms, 100);
	CU_ASSERT_EQUAL(c.nodes[0].facts.distance_km, 300);
	CU_ASSERT_EQUAL(c.nodes[0].facts.hops, -1);
	CU_ASSERT_STRING_EQUAL(c.nodes[0].facts.region, "eu-west");
	CU_ASSERT_FALSE(c.nodes[0].key.set);
	CU_ASSERT_EQUAL(c.nodes[0].source, NODE_SRC_CONFIG);
	CU_ASSERT_TRUE(c.nodes[1].key.set);
	CU_ASSERT_EQUAL(c.nodes[1].session_id, 7);
	CU_ASSERT_EQUAL(c.nodes[1].key.b[15], 0x0f);
	CU_ASSERT_EQUAL(ntohs(c.nodes[1].addr.sin_port), 4435);

	/* --check prints it; the key is not shown. */
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	ctrl_conf_print(&c, f);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "hold_ms = 2000"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "name = \"b.2\""));
	CU_ASSERT_PTR_NULL(strstr(out, "0a0b0c0d"));
	free(out);
}

static void expect_error(const char *text, const char *want)
{
	struct ctrl_conf c;
	char err[512];

	CU_ASSERT_EQUAL(build(text, &c, err), -1);
	if (!strstr(err, want))
		fprintf(stderr, "\n  got '%s', want '%s'\n", err, want);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
}

static void test_errors(void)
{
	setup_dir();
	expect_error("[controller]\nbogus = 1\n", "c.toml:2:1");
	expect_error("[select]\nmargin_ratio = 0.5\n", "c.toml:2:16: must be a number in 1..10");
	expect_error("[health]\ndown_after = 0\n", "c.toml:2:14");
	expect_error("[controller]\napi = \"localhost\"\n", "c.toml:2:7");
	expect_error("[controller]\nstrategy = \"random\"\n", "not a strategy");
	expect_error("[[node]]\nname = \"bad name\"\naddress = \"127.0.0.1:1\"\n", "not a node name");
	expect_error("[[node]]\nname = \"a\"\n", "node a: address (HOST:PORT) is required");
	expect_error("[[node]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\nsession_id = 5\n",
		     "session_id and key go together");
	expect_error("[[node]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n"
		     "[[node]]\nname = \"a\"\naddress = \"127.0.0.1:2\"\n",
		     "node a is defined twice");
	expect_error("[[node]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\nkey_file = \"/nonexistent/k\"\n"
		     "session_id = 1\n",
		     "node a: key file /nonexistent/k: No such file or directory");
	/* Off loopback the API needs a token. */
	expect_error("[controller]\napi = \"0.0.0.0:9000\"\n", "not a loopback address: set api_token");
	/* Nine nodes: one more than the client's route table. */
	char nine[2048] = "";
	for (int i = 0; i < 9; i++)
		snprintf(nine + strlen(nine), sizeof(nine) - strlen(nine),
			 "[[node]]\nname = \"n%d\"\naddress = \"127.0.0.1:%d\"\n", i, 1000 + i);
	expect_error(nine, "too many [[node]] sections (at most 8");
}

/* [multipath] and [[relay]] (controller/paths.h). */
static void test_relays(void)
{
	struct ctrl_conf c;
	char err[512];
	const char *k = "key = \"000102030405060708090a0b0c0d0e0f\"\n";
	char text[1024];

	setup_dir();
	CU_ASSERT_EQUAL(build("", &c, err), 0);
	CU_ASSERT_EQUAL(c.mp.paths, 3);
	CU_ASSERT_TRUE(c.mp.direct);
	CU_ASSERT_STRING_EQUAL(c.mp.mode, "");
	CU_ASSERT_EQUAL(c.mp.n_relays, 0);
	snprintf(text, sizeof(text),
		 "[multipath]\nmode = \"split\"\npaths = 2\ndirect = false\n"
		 "[[relay]]\nname = \"r1\"\naddress = \"127.0.0.1:4000\"\nsession_id = 7\n%s"
		 "nodes = [\"e\", \"f\"]\n"
		 "[[relay]]\nname = \"r2\"\naddress = \"127.0.0.1:4001\"\nsession_id = 8\n%s",
		 k, k);
	CU_ASSERT_EQUAL_FATAL(build(text, &c, err), 0);
	CU_ASSERT_STRING_EQUAL(c.mp.mode, "split");
	CU_ASSERT_EQUAL(c.mp.paths, 2);
	CU_ASSERT_FALSE(c.mp.direct);
	CU_ASSERT_EQUAL(c.mp.n_relays, 2);
	CU_ASSERT_EQUAL(c.mp.relays[0].nodes.n, 2);
	CU_ASSERT_STRING_EQUAL(c.mp.relays[0].nodes.name[1], "f");
	CU_ASSERT_EQUAL(c.mp.relays[1].nodes.n, 0);
	CU_ASSERT_EQUAL(ntohs(c.mp.relays[1].addr.sin_port), 4001);
	CU_ASSERT_TRUE(c.mp.relays[1].key.set);

	expect_error("[multipath]\nmode = \"triple\"\n", "c.toml:2:8: expected single, duplicate");
	expect_error("[multipath]\npaths = 4\n", "c.toml:2:9");
	expect_error("[[relay]]\nname = \"r\"\naddress = \"127.0.0.1:1\"\n",
		     "relay r: session_id and key (or key_file) are required");
	expect_error("[[relay]]\nname = \"r\"\n", "relay r: address (HOST:PORT) is required");
	expect_error("[[relay]]\nname = \"r\"\naddress = \"127.0.0.1:1\"\nnodes = [\"a b\"]\n",
		     "not a node name");
	snprintf(text, sizeof(text),
		 "[[relay]]\nname = \"direct\"\naddress = \"127.0.0.1:1\"\nsession_id = 1\n%s", k);
	expect_error(text, "relay direct: the name is the path straight to the egress");
	snprintf(text, sizeof(text),
		 "[[relay]]\nname = \"r\"\naddress = \"127.0.0.1:1\"\nsession_id = 1\n%s"
		 "[[relay]]\nname = \"r\"\naddress = \"127.0.0.1:2\"\nsession_id = 2\n%s", k, k);
	expect_error(text, "relay r is defined twice");
}

static void test_flags_override(void)
{
	struct ctrl_conf c;
	struct ctrl_flags fl = { 0 };
	char err[512];
	const char *key;

	setup_dir();
	key = file("k.hex", "  00112233445566778899aabbccddeeff \n");
	fl.config = file("f.toml", "[controller]\napi = \"127.0.0.1:9100\"\nclient_socket = \"/a\"\n"
				   "[[node]]\nname = \"a\"\naddress = \"127.0.0.1:4434\"\n"
				   "[[node]]\nname = \"b\"\naddress = \"127.0.0.1:4435\"\n");
	fl.api = "127.0.0.1:9200";
	fl.client_socket = "/b";
	fl.state_dir = "/tmp/s";
	char spec_b[160], spec_c[64];
	snprintf(spec_b, sizeof(spec_b), "b=127.0.0.1:5555,session=9,key-file=%s,probe-ms=50", key);
	snprintf(spec_c, sizeof(spec_c), "c=127.0.0.1:6666");
	fl.nodes[0] = spec_b;
	fl.nodes[1] = spec_c;
	fl.n_nodes = 2;
	CU_ASSERT_EQUAL(ctrl_conf_build(&fl, &c, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.api, "127.0.0.1:9200");
	CU_ASSERT_STRING_EQUAL(c.client_socket, "/b");
	CU_ASSERT_STRING_EQUAL(c.state_dir, "/tmp/s");
	CU_ASSERT_EQUAL(c.n_nodes, 3);
	/* b replaced in place by the flag, c appended. */
	CU_ASSERT_STRING_EQUAL(c.nodes[1].name, "b");
	CU_ASSERT_EQUAL(ntohs(c.nodes[1].addr.sin_port), 5555);
	CU_ASSERT_EQUAL(c.nodes[1].session_id, 9);
	CU_ASSERT_TRUE(c.nodes[1].key.set);
	CU_ASSERT_EQUAL(c.nodes[1].key.b[0], 0x00);
	CU_ASSERT_EQUAL(c.nodes[1].key.b[15], 0xff);
	CU_ASSERT_EQUAL(c.nodes[1].probe_ms, 50);
	CU_ASSERT_EQUAL(c.nodes[1].source, NODE_SRC_CMDLINE);
	CU_ASSERT_STRING_EQUAL(c.nodes[2].name, "c");

	/* A failed build leaves the caller's configuration untouched (reload keeps it). */
	struct ctrl_conf before = c;
	fl.api = "nonsense";
	CU_ASSERT_EQUAL(ctrl_conf_build(&fl, &c, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(memcmp(&before, &c, sizeof(c)), 0);
	/* A missing -c file is an error (the default one may be absent). */
	fl.api = NULL;
	fl.config = "/nonexistent/x.toml";
	CU_ASSERT_EQUAL(ctrl_conf_build(&fl, &c, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/x.toml"));
}

static void test_node_spec(void)
{
	struct node_conf n;
	char err[256];

	CU_ASSERT_EQUAL(node_parse_spec("a=1.2.3.4:5", &n, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(n.name, "a");
	CU_ASSERT_STRING_EQUAL(n.address, "1.2.3.4:5");
	CU_ASSERT_EQUAL(n.probe_ms, NODE_PROBE_MS_DEFAULT);
	CU_ASSERT_EQUAL(node_parse_spec("x=h:1,session=4,key-file=/k", &n, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(n.session_id, 4);
	CU_ASSERT_STRING_EQUAL(n.key_file, "/k");
	CU_ASSERT_EQUAL(node_parse_spec("nameonly", &n, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(node_parse_spec("a=", &n, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(node_parse_spec("=1.2.3.4:5", &n, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(node_parse_spec("a=h:1,session=4", &n, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "session and key-file go together"));
	CU_ASSERT_EQUAL(node_parse_spec("a=h:1,session=0,key-file=/k", &n, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(node_parse_spec("a=h:1,colour=red", &n, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown option 'colour'"));
	CU_ASSERT_EQUAL(node_parse_spec("a=h:1,probe-ms=5", &n, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(node_parse_spec("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=h:1", &n, err, sizeof(err)), -1);

	CU_ASSERT_TRUE(node_name_valid("a"));
	CU_ASSERT_TRUE(node_name_valid("eu-west_1.b"));
	CU_ASSERT_TRUE(node_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 31 */
	CU_ASSERT_FALSE(node_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	CU_ASSERT_FALSE(node_name_valid(""));
	CU_ASSERT_FALSE(node_name_valid("a b"));
	CU_ASSERT_FALSE(node_name_valid("a/b"));
	CU_ASSERT_FALSE(node_name_valid("\xc3\xa9"));
}

static void test_node_table(void)
{
	struct node_table t;
	struct node_conf n;
	bool full;
	int slots[NODE_MAX];

	node_table_init(&t);
	node_conf_init(&n);
	for (int i = 0; i < NODE_MAX; i++) {
		snprintf(n.name, sizeof(n.name), "n%d", i);
		slots[i] = node_add(&t, &n, 1, &full);
		CU_ASSERT_EQUAL(slots[i], i);
	}
	CU_ASSERT_EQUAL(node_count(&t), NODE_MAX);
	snprintf(n.name, sizeof(n.name), "extra");
	CU_ASSERT_EQUAL(node_add(&t, &n, 1, &full), -1);
	CU_ASSERT_TRUE(full);
	CU_ASSERT_EQUAL(node_find(&t, "n3"), 3);
	node_remove(&t, 3);
	CU_ASSERT_EQUAL(node_find(&t, "n3"), -1);
	/* A freed slot is reused; a taken name is refused. */
	CU_ASSERT_EQUAL(node_add(&t, &n, 1, &full), 3);
	CU_ASSERT_EQUAL(node_add(&t, &n, 1, &full), -1);
	CU_ASSERT_FALSE(full);
	/* A new node starts with nothing measured. */
	CU_ASSERT_EQUAL(t.n[3].health.state, HEALTH_UNKNOWN);
	CU_ASSERT_EQUAL(t.n[3].server_leg_us, -1);
	CU_ASSERT_FALSE(t.n[3].dp.present);
	CU_ASSERT_STRING_EQUAL(node_source_name(NODE_SRC_CMDLINE), "command_line");
	CU_ASSERT_STRING_EQUAL(node_source_name(NODE_SRC_DATAPLANE), "dataplane");
}

UNIT_MAIN("ctrl_conf",
	  { "defaults and every section", test_defaults_and_sections },
	  { "errors with file:line:col", test_errors },
	  { "[multipath] and [[relay]]", test_relays },
	  { "flags over the file, key files, failed build", test_flags_override },
	  { "--node syntax and names", test_node_spec },
	  { "node table", test_node_table })
