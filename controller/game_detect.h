/* lightspeed-controller: which game is on. Every few seconds the controller looks in
 * /proc for a process of one of the game profiles (shared/profile.h); when a game
 * starts or ends it logs it, tells the client dataplane (`set_game`, which applies the
 * profile: ports to capture, the game's process, FEC and keepalive), publishes a
 * `game` event and shows it in GET /status. */
#ifndef LS_CTRL_GAME_DETECT_H
#define LS_CTRL_GAME_DETECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

struct ctrl;
struct game_detect;

struct game_conf {
	bool detect;       /* watch /proc at all */
	uint64_t scan_ms;  /* how often (uint64_t: LS_CF_UINT's width) */
};

#define GAME_SCAN_MS_DEFAULT 2000
void game_conf_defaults(struct game_conf *g);
/* The [games] section's fields (offsets within struct game_conf). */
extern const struct ls_conf_field game_conf_fields[];

struct game_detect *game_detect_open(struct ctrl *c);
void game_detect_close(struct game_detect *g);
/* SIGHUP: read the profiles again and take the new configuration. */
void game_detect_reload(struct game_detect *g);
/* The dataplane (re)connected: tell it the game again. */
void game_detect_dataplane_up(struct game_detect *g);
/* GET /status "game": null, or {id, name, pid, uid, anti_cheat, relay, ports, since,
 * profile: {file, fec, keepalive_ms, pps, size_min, size_max, notes}}. */
json_t *game_detect_json(const struct game_detect *g);
/* Is a game being played (no WARP toggling then)? */
bool game_detect_playing(const struct game_detect *g);

#endif
