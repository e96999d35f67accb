/* Unit tests for game profiles (shared/profile.c): every shipped profile, the errors a
 * broken file gets, the search path and its overrides, process-name matching, and the
 * /proc scan against real processes started under a profile's names. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "profile.h"

#include "unit.h"

static char tmpdir[64];

static void mk_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ls-profile-%d-XXXXXX", (int)getpid());
	CU_ASSERT_FATAL(mkdtemp(tmpdir) != NULL);
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	CU_ASSERT(system(cmd) == 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

static const struct ls_profile *in_set(const struct ls_profile_set *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->p[i].id, id) == 0)
			return &s->p[i];
	return NULL;
}

static bool has_range(const struct ls_profile *p, unsigned lo, unsigned hi)
{
	for (size_t i = 0; i < p->nports; i++)
		if (p->ports[i].lo == lo && p->ports[i].hi == hi)
			return true;
	return false;
}

static void warn_count(void *ctx, const char *msg)
{
	(void)msg;
	(*(int *)ctx)++;
}

/* ---- the shipped profiles -------------------------------------------------------- */

static void test_shipped_profiles_all_load(void)
{
	static const char *const ids[] = { "fortnite", "cs2", "dota2", "valorant", "apex",
					   "overwatch2", "lol", "rocketleague", "pubg",
					   "callofduty" };
	struct ls_profile_set *s = calloc(1, sizeof(*s));
	int warns = 0;

	setenv(LS_PROFILE_PATH_ENV, "profiles", 1);
	CU_ASSERT_EQUAL(ls_profile_load_all(s, warn_count, &warns), sizeof(ids) / sizeof(ids[0]));
	CU_ASSERT_EQUAL(warns, 0);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const struct ls_profile *p = in_set(s, ids[i]);
		CU_ASSERT_PTR_NOT_NULL(p);
		if (!p)
			continue;
		CU_ASSERT(p->name[0] && p->nprocs > 0 && p->nports > 0);
		CU_ASSERT(p->anti_cheat[0]);
		CU_ASSERT(p->pps > 0 && p->size_min > 0 && p->size_max >= p->size_min);
		CU_ASSERT(p->fec[0] && p->keepalive_ms >= 20);
	}
	const struct ls_profile *fn = in_set(s, "fortnite"), *cs = in_set(s, "cs2"),
				*dota = in_set(s, "dota2");
	CU_ASSERT_FATAL(fn && cs && dota);
	CU_ASSERT(has_range(fn, 7000, 9000));
	CU_ASSERT_PTR_NOT_NULL(strstr(fn->anti_cheat, "Easy Anti-Cheat"));
	CU_ASSERT(has_range(cs, 27015, 27050) && has_range(dota, 27015, 27050));
	CU_ASSERT_PTR_NOT_NULL(strstr(cs->anti_cheat, "VAC"));
	CU_ASSERT_PTR_NOT_NULL(strstr(dota->anti_cheat, "VAC"));
	/* Both Valve games say they ride Valve's relays. */
	CU_ASSERT_PTR_NOT_NULL(strstr(cs->relay, "Steam Datagram Relay"));
	CU_ASSERT_PTR_NOT_NULL(strstr(dota->relay, "Steam Datagram Relay"));
	/* REGISTER's game ids (docs/protocol.md 2). */
	CU_ASSERT_EQUAL(fn->control_id, 1);
	CU_ASSERT_EQUAL(cs->control_id, 2);
	CU_ASSERT_EQUAL(dota->control_id, 3);
	CU_ASSERT_EQUAL(in_set(s, "valorant")->control_id, -1);
	/* Native names and the Windows .exe both. */
	CU_ASSERT(ls_profile_matches(cs, "cs2", NULL, NULL));
	CU_ASSERT(ls_profile_matches(cs, NULL, NULL, "Z:\\steam\\cs2.exe"));
	unsetenv(LS_PROFILE_PATH_ENV);
	free(s);
}

/* ---- errors ------------------------------------------------------------------------ */

static void expect_error(const char *name, const char *text, const char *want)
{
	char path[256], err[512] = "";
	struct ls_profile p;

	write_file(tmpdir, name, text);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	CU_ASSERT_EQUAL(ls_profile_load(path, &p, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fprintf(stderr, "\n  wanted '%s' in: %s\n", want, err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
	unlink(path);
}

static void test_errors_say_where_and_what(void)
{
	mk_tmp();
	expect_error("a.toml", "[game]\nname = \"A\"\nprocesses = [\"a\"]\nports = [\"9000-7000\"]\n",
		     "a.toml:4:9: 'ports' item 1 is not a UDP port");
	expect_error("b.toml", "[game]\nname = \"B\"\nprocesses = [\"b\"]\nports = [\"70000\"]\n",
		     "b.toml:4:9:");
	expect_error("c.toml", "[game]\nname = \"C\"\nprocesses = [\"c\"]\nports = [\"1\"]\nspeed = 1\n",
		     "c.toml:5:1:");
	expect_error("d.toml", "[game]\nprocesses = [\"d\"]\nports = [\"1\"]\n", "[game] needs 'name'");
	expect_error("e.toml", "[game]\nname = \"E\"\nports = [\"1\"]\n", "needs 'processes'");
	expect_error("f.toml",
		     "[game]\nname = \"F\"\nprocesses = [\"f\"]\nports = [\"1\"]\n[tunnel]\nfec = \"9:99\"\n",
		     "f.toml:6:7: 'fec':");
	expect_error("g.toml", "[game]\nname = \"G\"\nprocesses = [\"C:\\\\g.exe\"]\nports = [\"1\"]\n",
		     "g.toml:3:13: 'processes' item 1 must be a file name");
	expect_error("h.toml",
		     "[game]\nname = \"H\"\nprocesses = [\"h\"]\nports = [\"1\"]\n[traffic]\n"
		     "size_min = 900\nsize_max = 100\n",
		     "size_min 900 is above size_max 100");
	expect_error("Bad Name.toml", "[game]\nname = \"X\"\nprocesses = [\"x\"]\nports = [\"1\"]\n",
		     "a profile's file name is its id");
	expect_error("k.toml", "[game]\nname = \"K\"\nprocesses = []\nports = [\"1\"]\n",
		     "'processes' must hold 1 to 12 entries");
	rm_tmp();
}

/* ---- the search path --------------------------------------------------------------- */

static void test_user_directory_overrides_and_extends(void)
{
	char user[128], shipped[128], path[300], err[512];
	struct ls_profile_set *s = calloc(1, sizeof(*s));
	struct ls_profile p;
	int warns = 0;

	mk_tmp();
	snprintf(user, sizeof(user), "%s/user", tmpdir);
	snprintf(shipped, sizeof(shipped), "%s/shipped", tmpdir);
	CU_ASSERT_FATAL(mkdir(user, 0700) == 0 && mkdir(shipped, 0700) == 0);
	write_file(shipped, "alpha.toml", "[game]\nname = \"Alpha\"\nprocesses = [\"alpha\"]\nports = [\"7000-7100\"]\n");
	write_file(shipped, "beta.toml", "[game]\nname = \"Beta\"\nprocesses = [\"beta\"]\nports = [\"7200\"]\n");
	/* The user's alpha takes other ports; gamma is new; broken is reported and skipped. */
	write_file(user, "alpha.toml", "[game]\nname = \"My Alpha\"\nprocesses = [\"alpha\"]\nports = [\"7300-7301\"]\n");
	write_file(user, "gamma.toml", "[game]\nname = \"Gamma\"\nprocesses = [\"gamma.exe\"]\nports = [\"7400\"]\n");
	write_file(user, "broken.toml", "[game\n");
	write_file(user, "README.txt", "not a profile\n");
	snprintf(path, sizeof(path), "%s:%s", user, shipped);
	setenv(LS_PROFILE_PATH_ENV, path, 1);

	CU_ASSERT_EQUAL(ls_profile_load_all(s, warn_count, &warns), 3);
	CU_ASSERT_EQUAL(warns, 1);
	CU_ASSERT_STRING_EQUAL(s->p[0].id, "alpha"); /* sorted by id */
	CU_ASSERT_STRING_EQUAL(s->p[0].name, "My Alpha");
	CU_ASSERT(has_range(&s->p[0], 7300, 7301) && s->p[0].nports == 1);
	CU_ASSERT_STRING_EQUAL(s->p[1].id, "beta");
	CU_ASSERT_STRING_EQUAL(s->p[2].id, "gamma");

	CU_ASSERT_EQUAL(ls_profile_find("alpha", &p, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(p.name, "My Alpha");
	CU_ASSERT_PTR_NOT_NULL(strstr(p.path, "/user/alpha.toml"));
	CU_ASSERT_EQUAL(ls_profile_find("beta", &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(ls_profile_find("nosuch", &p, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no profile 'nosuch'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, user));
	CU_ASSERT_EQUAL(ls_profile_find("../etc/passwd", &p, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not a profile name"));

	/* The default path: the user's config directory first. */
	unsetenv(LS_PROFILE_PATH_ENV);
	setenv("XDG_CONFIG_HOME", "/home/x/.cfg", 1);
	char dirs[LS_PROFILE_DIRS][LS_PROFILE_DIR_MAX];
	size_t nd = ls_profile_search_path(dirs, LS_PROFILE_DIRS);
	CU_ASSERT_EQUAL(nd, 4);
	CU_ASSERT_STRING_EQUAL(dirs[0], "/home/x/.cfg/lightspeed/profiles");
	CU_ASSERT_STRING_EQUAL(dirs[1], "/etc/lightspeed/profiles");
	CU_ASSERT_STRING_EQUAL(dirs[2], LS_PROFILE_DIR);
	/* This suite runs from build/tests/ of the source tree: the tree's profiles/ come
	 * last, after an installed set, and ls_profile_find reaches them. */
	char here[LS_PROFILE_DIR_MAX + 16];
	CU_ASSERT_FATAL(getcwd(here, LS_PROFILE_DIR_MAX) != NULL);
	strcat(here, "/profiles");
	CU_ASSERT_STRING_EQUAL(dirs[3], here);
	if (access("/etc/lightspeed/profiles/cs2.toml", F_OK) != 0 &&
	    access(LS_PROFILE_DIR "/cs2.toml", F_OK) != 0) {
		CU_ASSERT_EQUAL(ls_profile_find("cs2", &p, err, sizeof(err)), 0);
		CU_ASSERT_STRING_EQUAL(p.path, strcat(here, "/cs2.toml"));
	}
	unsetenv("XDG_CONFIG_HOME");
	free(s);
	rm_tmp();
}

/* ---- port ranges ---------------------------------------------------------------------- */

static void test_port_ranges_both_ways(void)
{
	struct ls_port_range r[3];
	char one[LS_PORT_RANGE_STRLEN], list[64];

	CU_ASSERT(ls_port_range_parse("7000-9000", &r[0]) == 0 && r[0].lo == 7000 && r[0].hi == 9000);
	CU_ASSERT(ls_port_range_parse("27015", &r[1]) == 0 && r[1].lo == 27015 && r[1].hi == 27015);
	CU_ASSERT(ls_port_range_parse("1-65535", &r[2]) == 0);
	CU_ASSERT(ls_port_range_parse("9000-7000", &r[0]) == -1);
	CU_ASSERT(ls_port_range_parse("0", &r[0]) == -1);
	CU_ASSERT(ls_port_range_parse("65536", &r[0]) == -1);
	CU_ASSERT(ls_port_range_parse("7000-", &r[0]) == -1);
	CU_ASSERT(ls_port_range_parse("", &r[0]) == -1);
	ls_port_range_parse("7000-9000", &r[0]);
	CU_ASSERT_STRING_EQUAL(ls_port_range_fmt(&r[0], one), "7000-9000");
	CU_ASSERT_STRING_EQUAL(ls_port_range_fmt(&r[1], one), "27015");
	ls_port_ranges_fmt(r, 3, ",", list, sizeof(list));
	CU_ASSERT_STRING_EQUAL(list, "7000-9000,27015,1-65535");
	ls_port_ranges_fmt(r, 0, ",", list, sizeof(list));
	CU_ASSERT_STRING_EQUAL(list, "");
	ls_port_ranges_fmt(r, 3, ",", list, 8);
	CU_ASSERT_STRING_EQUAL(list, "7000-90"); /* truncated, never overrun */
	json_t *a = ls_port_ranges_json(r, 2);
	char *text = json_dumps(a, JSON_COMPACT);
	CU_ASSERT_STRING_EQUAL(text, "[\"7000-9000\",\"27015\"]");
	free(text);
	json_decref(a);
}

/* ---- process names ------------------------------------------------------------------ */

static void test_process_names_native_wine_and_truncated(void)
{
	struct ls_profile p = { .nprocs = 2 };

	strcpy(p.procs[0], "FortniteClient-Win64-Shipping.exe");
	strcpy(p.procs[1], "cs2");
	/* The kernel keeps 15 bytes of a name in comm. */
	CU_ASSERT(ls_profile_matches(&p, "FortniteClient-", NULL, NULL));
	CU_ASSERT(!ls_profile_matches(&p, "FortniteClient", NULL, NULL));
	/* Wine and Proton: a Windows path in argv[0]; Windows names ignore case. */
	CU_ASSERT(ls_profile_matches(&p, "wine64-preload", NULL,
				     "C:\\Program Files\\Epic Games\\fortniteclient-win64-shipping.EXE"));
	CU_ASSERT(ls_profile_matches(&p, "x", "cs2", NULL));
	CU_ASSERT(ls_profile_matches(&p, "cs2", NULL, "/opt/cs2/game/bin/linuxsteamrt64/cs2"));
	CU_ASSERT(!ls_profile_matches(&p, "cs2x", "cs2x", "/usr/bin/cs2x"));
	CU_ASSERT(!ls_profile_matches(&p, "bash", "bash", "bash"));
	CU_ASSERT(!ls_profile_matches(&p, "", NULL, ""));
}

/* A real process, exec'd with argv[0] set as Wine sets it, or from a copied executable
 * of a game's name so that comm and exe carry it too. */
static pid_t spawn(const char *exe_path, const char *argv0)
{
	pid_t pid = fork();

	if (pid == 0) {
		char a0[256], secs[] = "30";
		char *argv[] = { a0, secs, NULL };
		snprintf(a0, sizeof(a0), "%s", argv0);
		execv(exe_path, argv);
		_exit(127);
	}
	return pid;
}

static void test_scan_finds_real_processes(void)
{
	struct ls_profile_set *s = calloc(1, sizeof(*s));
	struct ls_game_proc found[8];
	char copy[256], cmd[400];
	pid_t wine, native;
	size_t n;

	mk_tmp();
	s->n = 2;
	strcpy(s->p[0].id, "fortnite");
	s->p[0].nprocs = 1;
	strcpy(s->p[0].procs[0], "FortniteClient-Win64-Shipping.exe");
	strcpy(s->p[1].id, "dota2");
	s->p[1].nprocs = 1;
	strcpy(s->p[1].procs[0], "dota2");

	n = ls_profile_scan(s, NULL, found, 8);
	CU_ASSERT_EQUAL(n, 0);

	/* A native game: the executable itself carries the name. */
	snprintf(copy, sizeof(copy), "%s/dota2", tmpdir);
	snprintf(cmd, sizeof(cmd), "cp /bin/sleep '%s'", copy);
	CU_ASSERT_FATAL(system(cmd) == 0);
	native = spawn(copy, "dota2");
	wine = spawn("/bin/sleep", "C:\\Games\\Fortnite\\FortniteClient-Win64-Shipping.exe");
	CU_ASSERT_FATAL(native > 0 && wine > 0);
	for (int i = 0; i < 200; i++) {
		n = ls_profile_scan(s, NULL, found, 8);
		if (n == 2)
			break;
		usleep(10000);
	}
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(ls_profile_running(&s->p[1]), native);
	CU_ASSERT_EQUAL(ls_profile_running(&s->p[0]), wine);
	for (size_t i = 0; i < n && i < 8; i++) {
		if (found[i].pid == native) {
			CU_ASSERT_EQUAL(found[i].profile, 1);
			CU_ASSERT_STRING_EQUAL(found[i].comm, "dota2");
		} else {
			CU_ASSERT_EQUAL(found[i].pid, wine);
			CU_ASSERT_EQUAL(found[i].profile, 0);
			CU_ASSERT_STRING_EQUAL(found[i].comm, "sleep");
		}
		CU_ASSERT_EQUAL(found[i].uid, getuid());
	}
	kill(native, SIGKILL);
	kill(wine, SIGKILL);
	waitpid(native, NULL, 0);
	waitpid(wine, NULL, 0);
	CU_ASSERT_EQUAL(ls_profile_scan(s, NULL, found, 8), 0);
	CU_ASSERT_EQUAL(ls_profile_running(&s->p[0]), 0);
	free(s);
	rm_tmp();
}

UNIT_MAIN("profile",
	  { "shipped profiles all load", test_shipped_profiles_all_load },
	  { "errors say where and what", test_errors_say_where_and_what },
	  { "user directory overrides and extends", test_user_directory_overrides_and_extends },
	  { "port ranges both ways", test_port_ranges_both_ways },
	  { "process names: native, wine, truncated", test_process_names_native_wine_and_truncated },
	  { "scan finds real processes", test_scan_finds_real_processes })
