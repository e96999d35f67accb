/* lightspeed-controller: Cloudflare WARP. The controller finds out whether WARP is
 * installed (the warp-cli binary), what it says its status is, whether its interface is
 * up and which routes go through it (and so whether the tunnel to each node does), and
 * reports that in GET /status. When the user allows it ([warp] allow_toggle, or a POST
 * /warp/compare), it measures every node with WARP connected and disconnected, one
 * after the other, and keeps whichever state measured better; it never toggles WARP
 * otherwise, nor while a game is being played. */
#ifndef LS_CTRL_WARP_H
#define LS_CTRL_WARP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "result.h"

struct ctrl;
struct warp;

/* Integers are uint64_t: the config loader's LS_CF_UINT writes that width. */
struct warp_conf {
	bool allow_toggle;        /* compare with and without WARP at start (and every...) */
	uint64_t compare_every_s; /* ... this often; 0: once, at start */
	char cli[256];            /* the warp-cli program (a name is looked up on PATH) */
	char interface[16];       /* WARP's interface */
	uint64_t check_ms;        /* how often status, interface and routes are read */
	uint64_t measure_ms;      /* each side of a comparison measures this long */
};

void warp_conf_defaults(struct warp_conf *w);
extern const struct ls_conf_field warp_conf_fields[];

struct warp *warp_open(struct ctrl *c);
void warp_close(struct warp *w);
/* SIGHUP: the configuration may have changed. */
void warp_reload(struct warp *w);
/* GET /status "warp". */
json_t *warp_json(const struct warp *w);
/* POST /warp/compare: start a comparison now (the user asked). LS_RC_OK, or a
 * refusal with a message (not installed, a game on, one running already). */
enum ls_rc warp_compare(struct warp *w, char *msg, size_t msglen);

#endif
