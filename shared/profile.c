/* Game profiles (see profile.h): the schema on the shared config loader, the search
 * path with its overrides, and the /proc scan. Control path only. */
#include "profile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "conf.h"
#include "fec.h"
#include "util.h"

/* ---- values ------------------------------------------------------------------- */

int ls_port_range_parse(const char *s, struct ls_port_range *r)
{
	char buf[16];
	const char *dash;
	int64_t lo, hi;

	if (!s || strlen(s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, strlen(s) + 1);
	dash = strchr(buf, '-');
	if (dash) {
		buf[dash - buf] = '\0';
		if (ls_parse_i64(buf, 1, 65535, &lo) < 0 || ls_parse_i64(dash + 1, 1, 65535, &hi) < 0)
			return -1;
	} else {
		if (ls_parse_i64(buf, 1, 65535, &lo) < 0)
			return -1;
		hi = lo;
	}
	if (lo > hi)
		return -1;
	r->lo = (uint16_t)lo;
	r->hi = (uint16_t)hi;
	return 0;
}

const char *ls_port_range_fmt(const struct ls_port_range *r, char buf[LS_PORT_RANGE_STRLEN])
{
	if (r->lo == r->hi)
		snprintf(buf, LS_PORT_RANGE_STRLEN, "%u", r->lo);
	else
		snprintf(buf, LS_PORT_RANGE_STRLEN, "%u-%u", r->lo, r->hi);
	return buf;
}

void ls_port_ranges_fmt(const struct ls_port_range *r, size_t n, const char *sep, char *buf,
			size_t len)
{
	char one[LS_PORT_RANGE_STRLEN];
	size_t o = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++) {
		int w = snprintf(buf + o, len - o, "%s%s", i ? sep : "", ls_port_range_fmt(&r[i], one));
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

json_t *ls_port_ranges_json(const struct ls_port_range *r, size_t n)
{
	json_t *a = json_array();
	char one[LS_PORT_RANGE_STRLEN];

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(ls_port_range_fmt(&r[i], one)));
	return a;
}

static int want_array(const struct ls_cv *v, const char *what, size_t max, char *err,
		      size_t errlen)
{
	if (v->type != LS_CV_ARRAY) {
		snprintf(err, errlen, "'%s' must be an array of strings, not %s", what,
			 ls_cv_type_name(v->type));
		return -1;
	}
	if (v->u.arr.n == 0 || v->u.arr.n > max) {
		snprintf(err, errlen, "'%s' must hold 1 to %zu entries", what, max);
		return -1;
	}
	for (size_t i = 0; i < v->u.arr.n; i++) {
		if (v->u.arr.items[i].type != LS_CV_STRING) {
			snprintf(err, errlen, "'%s' item %zu is not a string", what, i + 1);
			return -1;
		}
	}
	return 0;
}

static int parse_procs(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct ls_profile *p = (struct ls_profile *)((char *)dst - offsetof(struct ls_profile, procs));

	if (want_array(v, "processes", LS_PROFILE_MAX_PROCS, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < v->u.arr.n; i++) {
		const char *s = v->u.arr.items[i].u.s;
		size_t n = strlen(s);
		/* A process name is one file name: a path or a separator would never match. */
		if (n == 0 || n >= LS_PROFILE_PROC_MAX || strchr(s, '/') || strchr(s, '\\')) {
			snprintf(err, errlen,
				 "'processes' item %zu must be a file name of 1 to %d characters "
				 "without '/' or '\\'", i + 1, LS_PROFILE_PROC_MAX - 1);
			return -1;
		}
		memcpy(p->procs[i], s, n + 1);
	}
	p->nprocs = v->u.arr.n;
	return 0;
}

static int parse_ports(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct ls_profile *p = (struct ls_profile *)((char *)dst - offsetof(struct ls_profile, ports));

	if (want_array(v, "ports", LS_PROFILE_MAX_PORTS, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < v->u.arr.n; i++) {
		if (ls_port_range_parse(v->u.arr.items[i].u.s, &p->ports[i]) < 0) {
			snprintf(err, errlen,
				 "'ports' item %zu is not a UDP port \"N\" or range \"LO-HI\" (1..65535)",
				 i + 1);
			return -1;
		}
	}
	p->nports = v->u.arr.n;
	return 0;
}

static int parse_fec(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct ls_fec_params fp;
	char msg[160];

	if (v->type != LS_CV_STRING) {
		snprintf(err, errlen, "'fec' must be a string, not %s", ls_cv_type_name(v->type));
		return -1;
	}
	if (strcmp(v->u.s, "auto") != 0 && ls_fec_params_parse(v->u.s, &fp, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "'fec': %s; or \"auto\"", msg);
		return -1;
	}
	if (strlen(v->u.s) >= sizeof(((struct ls_profile *)0)->fec)) {
		snprintf(err, errlen, "'fec' is too long");
		return -1;
	}
	memcpy(dst, v->u.s, strlen(v->u.s) + 1);
	return 0;
}

#define S(key, member) \
	{ key, LS_CF_STRING, offsetof(struct ls_profile, member), \
	  sizeof(((struct ls_profile *)0)->member), 0, 0, NULL }
#define I(key, member, lo, hi) \
	{ key, LS_CF_INT, offsetof(struct ls_profile, member), 0, lo, hi, NULL }
#define C(key, member, fn) \
	{ key, LS_CF_CUSTOM, offsetof(struct ls_profile, member), 0, 0, 0, fn }

static const struct ls_conf_field game_fields[] = {
	S("name", name),
	C("processes", procs, parse_procs),
	C("ports", ports, parse_ports),
	S("anti_cheat", anti_cheat),
	S("relay", relay),
	S("notes", notes),
	I("control_id", control_id, 0, 255),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_field traffic_fields[] = {
	I("pps", pps, 1, 100000),
	I("size_min", size_min, 1, 65507),
	I("size_max", size_max, 1, 65507),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_field tunnel_fields[] = {
	C("fec", fec, parse_fec),
	/* The client's own bounds on keepalive_ms. */
	I("keepalive_ms", keepalive_ms, 20, 60000),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_section profile_schema[] = {
	{ "game", game_fields, 0, NULL },
	{ "traffic", traffic_fields, 0, NULL },
	{ "tunnel", tunnel_fields, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

/* ---- files ---------------------------------------------------------------------- */

/* The id a file name gives ("cs2.toml" -> "cs2"), or -1 for names that are not
 * profiles (another extension, or characters an id may not hold). */
static int id_of(const char *file, char id[LS_PROFILE_ID_MAX])
{
	const char *base = strrchr(file, '/');
	size_t n;

	base = base ? base + 1 : file;
	n = strlen(base);
	if (n <= 5 || strcmp(base + n - 5, ".toml") != 0 || n - 5 >= LS_PROFILE_ID_MAX)
		return -1;
	n -= 5;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)base[i];
		if (!(islower(ch) || isdigit(ch) || ch == '-' || ch == '_'))
			return -1;
	}
	memcpy(id, base, n);
	id[n] = '\0';
	return 0;
}

int ls_profile_load(const char *path, struct ls_profile *p, char *err, size_t errlen)
{
	struct ls_profile tmp;
	const char *missing;

	memset(&tmp, 0, sizeof(tmp));
	tmp.control_id = -1;
	if (id_of(path, tmp.id) < 0) {
		snprintf(err, errlen,
			 "%s: a profile's file name is its id: 1 to %d characters of a-z, 0-9, '-' "
			 "and '_', then \".toml\"", path, LS_PROFILE_ID_MAX - 1);
		return -1;
	}
	if (strlen(path) >= sizeof(tmp.path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	if (ls_conf_load_file(path, profile_schema, &tmp, err, errlen) < 0)
		return -1;
	missing = !tmp.name[0] ? "name" : !tmp.nprocs ? "processes" : !tmp.nports ? "ports" : NULL;
	if (missing) {
		snprintf(err, errlen, "%s: [game] needs '%s'", path, missing);
		return -1;
	}
	if (tmp.size_min && tmp.size_max && tmp.size_min > tmp.size_max) {
		snprintf(err, errlen, "%s: [traffic] size_min %lld is above size_max %lld", path,
			 (long long)tmp.size_min, (long long)tmp.size_max);
		return -1;
	}
	memcpy(tmp.path, path, strlen(path) + 1);
	*p = tmp;
	return 0;
}

static size_t add_dir(char dirs[][LS_PROFILE_DIR_MAX], size_t n, size_t max, const char *a,
		      const char *b)
{
	int len;

	if (n >= max || !a || !a[0])
		return n;
	len = snprintf(dirs[n], LS_PROFILE_DIR_MAX, "%s%s", a, b);
	if (len < 0 || len >= LS_PROFILE_DIR_MAX)
		return n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(dirs[i], dirs[n]) == 0)
			return n;
	return n + 1;
}

/* The source tree's profiles/ when this program runs from it (ROOT/build/bin/NAME, or
 * build/tests/), so that a checkout works before `make install`; the tree is told by
 * its shared/profile.h beside profiles/, never guessed from the directory names alone. */
static size_t add_source_tree(char dirs[][LS_PROFILE_DIR_MAX], size_t n, size_t max)
{
	char root[LS_PROFILE_DIR_MAX], mark[LS_PROFILE_DIR_MAX + 32];
	ssize_t len = readlink("/proc/self/exe", root, sizeof(root) - 1);
	struct stat st;

	if (len <= 0)
		return n;
	root[len] = '\0';
	/* NAME, then bin/ (or tests/), then build/. */
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(root, '/');
		if (!slash || slash == root)
			return n;
		*slash = '\0';
	}
	snprintf(mark, sizeof(mark), "%s/shared/profile.h", root);
	if (stat(mark, &st) < 0 || !S_ISREG(st.st_mode))
		return n;
	return add_dir(dirs, n, max, root, "/profiles");
}

size_t ls_profile_search_path(char dirs[][LS_PROFILE_DIR_MAX], size_t max)
{
	const char *env = getenv(LS_PROFILE_PATH_ENV);
	size_t n = 0;

	if (env && env[0]) {
		char buf[LS_PROFILE_DIR_MAX];
		const char *s = env;
		while (*s) {
			const char *e = strchr(s, ':');
			size_t len = e ? (size_t)(e - s) : strlen(s);
			if (len > 0 && len < sizeof(buf)) {
				memcpy(buf, s, len);
				buf[len] = '\0';
				n = add_dir(dirs, n, max, buf, "");
			}
			s += len + (e != NULL);
		}
		return n;
	}
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	if (xdg && xdg[0] == '/')
		n = add_dir(dirs, n, max, xdg, "/lightspeed/profiles");
	else if (home && home[0] == '/')
		n = add_dir(dirs, n, max, home, "/.config/lightspeed/profiles");
	n = add_dir(dirs, n, max, "/etc/lightspeed/profiles", "");
	n = add_dir(dirs, n, max, LS_PROFILE_DIR, "");
	return add_source_tree(dirs, n, max);
}

static int by_id(const void *a, const void *b)
{
	return strcmp(((const struct ls_profile *)a)->id, ((const struct ls_profile *)b)->id);
}

size_t ls_profile_load_all(struct ls_profile_set *s, void (*warn)(void *ctx, const char *msg),
			   void *ctx)
{
	char dirs[LS_PROFILE_DIRS][LS_PROFILE_DIR_MAX];
	size_t nd = ls_profile_search_path(dirs, LS_PROFILE_DIRS);

	s->n = 0;
	for (size_t d = 0; d < nd; d++) {
		DIR *dir = opendir(dirs[d]);
		struct dirent *de;

		if (!dir)
			continue;
		while ((de = readdir(dir)) != NULL) {
			char id[LS_PROFILE_ID_MAX], path[LS_PROFILE_DIR_MAX + 64], err[512];
			bool seen = false;

			if (id_of(de->d_name, id) < 0)
				continue;
			/* An earlier directory's file of the same id overrides this one. */
			for (size_t i = 0; i < s->n && !seen; i++)
				seen = strcmp(s->p[i].id, id) == 0;
			if (seen)
				continue;
			if (s->n == LS_PROFILE_MAX) {
				if (warn) {
					snprintf(err, sizeof(err),
						 "%s/%s: more than %d profiles; the rest are ignored",
						 dirs[d], de->d_name, LS_PROFILE_MAX);
					warn(ctx, err);
				}
				break;
			}
			snprintf(path, sizeof(path), "%s/%s", dirs[d], de->d_name);
			if (ls_profile_load(path, &s->p[s->n], err, sizeof(err)) < 0) {
				if (warn)
					warn(ctx, err);
				continue;
			}
			s->n++;
		}
		closedir(dir);
	}
	qsort(s->p, s->n, sizeof(s->p[0]), by_id);
	return s->n;
}

int ls_profile_find(const char *id, struct ls_profile *p, char *err, size_t errlen)
{
	char dirs[LS_PROFILE_DIRS][LS_PROFILE_DIR_MAX], chk[LS_PROFILE_ID_MAX];
	char path[LS_PROFILE_DIR_MAX + 64], tried[1024] = "";
	size_t nd = ls_profile_search_path(dirs, LS_PROFILE_DIRS), used = 0;

	snprintf(path, sizeof(path), "%.40s.toml", id ? id : "");
	if (!id || id_of(path, chk) < 0 || strcmp(chk, id) != 0) {
		snprintf(err, errlen, "'%.40s' is not a profile name (a-z, 0-9, '-', '_')",
			 id ? id : "");
		return -1;
	}
	for (size_t d = 0; d < nd; d++) {
		snprintf(path, sizeof(path), "%s/%s.toml", dirs[d], id);
		if (access(path, F_OK) == 0)
			return ls_profile_load(path, p, err, errlen);
		int w = snprintf(tried + used, sizeof(tried) - used, "%s%s", used ? ", " : "",
				 dirs[d]);
		if (w > 0 && (size_t)w < sizeof(tried) - used)
			used += (size_t)w;
	}
	snprintf(err, errlen, "no profile '%s' (looked in %s; %s sets the path)", id,
		 used ? tried : "no directory", LS_PROFILE_PATH_ENV);
	return -1;
}

/* ---- matching processes ------------------------------------------------------- */

/* The last component of a Unix or Windows path. */
static const char *last_component(const char *s)
{
	const char *b = s;

	for (const char *q = s; *q; q++)
		if (*q == '/' || *q == '\\')
			b = q + 1;
	return b;
}

bool ls_profile_matches(const struct ls_profile *p, const char *comm, const char *exe,
			const char *argv0)
{
	const char *a0 = argv0 && argv0[0] ? last_component(argv0) : NULL;

	for (size_t i = 0; i < p->nprocs; i++) {
		const char *name = p->procs[i];
		size_t n = strlen(name);

		if (exe && strcasecmp(exe, name) == 0)
			return true;
		if (a0 && strcasecmp(a0, name) == 0)
			return true;
		/* comm holds at most 15 bytes of the name. */
		if (comm && comm[0] &&
		    (n < 16 ? strcasecmp(comm, name) == 0
			    : (strlen(comm) == 15 && strncasecmp(comm, name, 15) == 0)))
			return true;
	}
	return false;
}

/* Read a small /proc file into buf (NUL-terminated); the length read, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

static int by_pid(const void *a, const void *b)
{
	pid_t x = ((const struct ls_game_proc *)a)->pid, y = ((const struct ls_game_proc *)b)->pid;

	return (x > y) - (x < y);
}

size_t ls_profile_scan(const struct ls_profile_set *s, const char *proc_root,
		       struct ls_game_proc *out, size_t max)
{
	const char *root = proc_root ? proc_root : "/proc";
	DIR *dir = opendir(root);
	struct dirent *de;
	size_t found = 0;

	if (!dir)
		return 0;
	while ((de = readdir(dir)) != NULL) {
		char path[LS_PROFILE_DIR_MAX + 64], comm[32], cmd[1024], exe[1024];
		const char *exe_base = NULL;
		int64_t pid;
		struct stat st;
		ssize_t n;

		if (ls_parse_i64(de->d_name, 1, INT32_MAX, &pid) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/comm", root, de->d_name);
		n = read_small(path, comm, sizeof(comm));
		if (n <= 0)
			continue;
		if (comm[n - 1] == '\n')
			comm[n - 1] = '\0';
		snprintf(path, sizeof(path), "%s/%s/cmdline", root, de->d_name);
		if (read_small(path, cmd, sizeof(cmd)) < 0)
			cmd[0] = '\0';
		/* The executable's name is readable for one's own processes (or with
		 * privileges); without it comm and argv[0] decide. */
		snprintf(path, sizeof(path), "%s/%s/exe", root, de->d_name);
		n = readlink(path, exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			exe_base = last_component(exe);
		}
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		if (stat(path, &st) < 0)
			continue;
		for (size_t i = 0; i < s->n; i++) {
			if (!ls_profile_matches(&s->p[i], comm, exe_base, cmd))
				continue;
			if (found < max) {
				struct ls_game_proc *g = &out[found];
				g->profile = i;
				g->pid = (pid_t)pid;
				g->uid = st.st_uid;
				snprintf(g->comm, sizeof(g->comm), "%.15s", comm);
			}
			found++;
			break;
		}
	}
	closedir(dir);
	qsort(out, found < max ? found : max, sizeof(*out), by_pid);
	return found;
}

pid_t ls_profile_running(const struct ls_profile *p)
{
	struct ls_profile_set *one = calloc(1, sizeof(*one));
	struct ls_game_proc g;
	pid_t pid = 0;

	if (!one)
		return 0;
	one->p[0] = *p;
	one->n = 1;
	if (ls_profile_scan(one, NULL, &g, 1) > 0)
		pid = g.pid;
	free(one);
	return pid;
}
