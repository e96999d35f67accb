/* Game profiles: what LightSpeed knows about a game, as data. One TOML file per game
 * (profiles/<id>.toml, installed under LS_PROFILE_DIR), found along a search path on
 * which a user's directory comes first, so a user extends the set or overrides a
 * shipped profile by dropping a file of the same name in it. Also the /proc scan that
 * tells which profile's game is running, shared by the client (--game auto) and the
 * controller's game detection.
 *
 * A profile file:
 *
 *   [game]
 *   name = "Fortnite"                         # required
 *   processes = ["FortniteClient-Win64-Shipping.exe"]   # required: native names and
 *                                             # Wine/Proton .exe names, matched
 *                                             # case-insensitively
 *   ports = ["7000-9000"]                     # required: UDP destination ports of the
 *                                             # game servers, "N" or "LO-HI"
 *   anti_cheat = "Easy Anti-Cheat"            # optional, shown to the user
 *   relay = "..."                             # optional: the publisher's own relay
 *                                             # network the game normally rides
 *   notes = "..."                             # optional
 *   control_id = 1                            # optional: REGISTER's game id (0..255)
 *   [traffic]                                 # optional: what a match looks like
 *   pps = 30                                  # packets per second each way
 *   size_min = 60
 *   size_max = 700                            # payload bytes
 *   [tunnel]                                  # optional: what to run it with
 *   fec = "auto"                              # a client FEC setting
 *   keepalive_ms = 30
 */
#ifndef LS_PROFILE_H
#define LS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef LS_PROFILE_DIR
#define LS_PROFILE_DIR "/usr/local/share/lightspeed/profiles"
#endif
/* A colon-separated search path replacing the default one (tests, packagers). */
#define LS_PROFILE_PATH_ENV "LIGHTSPEED_PROFILE_PATH"

#define LS_PROFILE_ID_MAX 32     /* file name without ".toml": [a-z0-9_-], 1..31 */
#define LS_PROFILE_MAX_PROCS 12
#define LS_PROFILE_PROC_MAX 64   /* a process name, with its .exe */
#define LS_PROFILE_MAX_PORTS 16
#define LS_PROFILE_MAX 64        /* profiles in a set */
#define LS_PROFILE_DIRS 8        /* directories on a search path */
#define LS_PROFILE_DIR_MAX 512   /* a directory's path */

struct ls_port_range {
	uint16_t lo, hi; /* inclusive */
};

struct ls_profile {
	char id[LS_PROFILE_ID_MAX];
	char name[64];
	char anti_cheat[64];
	char relay[512];
	char notes[256];
	int64_t control_id; /* -1: none */
	char procs[LS_PROFILE_MAX_PROCS][LS_PROFILE_PROC_MAX];
	size_t nprocs;
	struct ls_port_range ports[LS_PROFILE_MAX_PORTS];
	size_t nports;
	int64_t pps, size_min, size_max; /* 0: not known */
	char fec[32];                    /* "": not given */
	int64_t keepalive_ms;            /* 0: not given */
	char path[256];                  /* the file it was read from */
};

struct ls_profile_set {
	struct ls_profile p[LS_PROFILE_MAX];
	size_t n;
};

/* The directories searched, first one winning: $LIGHTSPEED_PROFILE_PATH when set,
 * else $XDG_CONFIG_HOME/lightspeed/profiles (or ~/.config/...), /etc/lightspeed/profiles,
 * LS_PROFILE_DIR and, for a program run from the source tree (build/bin/, build/tests/),
 * the tree's profiles/. Returns how many were written to dirs (a longer path is left
 * out). */
size_t ls_profile_search_path(char dirs[][LS_PROFILE_DIR_MAX], size_t max);

/* Parse one profile file; its id is the file's base name. 0, or -1 with
 * "file:line:col: message" (or "file: message") in err. */
int ls_profile_load(const char *path, struct ls_profile *p, char *err, size_t errlen);

/* Every profile along the search path; a file in an earlier directory hides one of the
 * same id later. A broken file is reported through warn() (when given) and skipped, so
 * one bad user file does not hide the rest. Returns the number loaded. */
size_t ls_profile_load_all(struct ls_profile_set *s,
			   void (*warn)(void *ctx, const char *msg), void *ctx);

/* The profile called id along the search path (the first file id.toml found).
 * 0, -1 with a message (not found: which directories were searched; or the parse
 * error). */
int ls_profile_find(const char *id, struct ls_profile *p, char *err, size_t errlen);

/* "7000-9000" or "27015" into r. 0 or -1. */
int ls_port_range_parse(const char *s, struct ls_port_range *r);
/* And back: r as "LO-HI", or "N" when lo == hi; returns buf. */
#define LS_PORT_RANGE_STRLEN 12
const char *ls_port_range_fmt(const struct ls_port_range *r, char buf[LS_PORT_RANGE_STRLEN]);
/* n ranges joined by sep ("" when n is 0), truncated to len. */
void ls_port_ranges_fmt(const struct ls_port_range *r, size_t n, const char *sep, char *buf,
			size_t len);
/* n ranges as a JSON array of such strings (jansson's json_t, new reference). */
struct json_t;
struct json_t *ls_port_ranges_json(const struct ls_port_range *r, size_t n);

/* Does a process with these names belong to the profile? comm is /proc/PID/comm
 * (the kernel keeps its first 15 bytes), exe the base name of /proc/PID/exe (or NULL),
 * argv0 the first word of its command line: for Wine and Proton games a Windows path
 * ("C:\\Games\\X.exe"), of which the last component counts. Case-insensitive. */
bool ls_profile_matches(const struct ls_profile *p, const char *comm, const char *exe,
			const char *argv0);

/* A running process of a profile. */
struct ls_game_proc {
	size_t profile;  /* index in the set */
	pid_t pid;
	uid_t uid;
	char comm[16];
};

/* Scan /proc (or another procfs root, for tests: NULL is "/proc") for processes of the
 * set's profiles; up to max found are written to out, lowest pid first. Returns how
 * many were found (which may exceed max). Control path only: it reads three files per
 * process. */
size_t ls_profile_scan(const struct ls_profile_set *s, const char *proc_root,
		       struct ls_game_proc *out, size_t max);

/* The lowest pid of a running process of profile p (0: none). */
pid_t ls_profile_running(const struct ls_profile *p);

#endif
