/* lightspeed-controller: certificate pinning of the nodes' agents. A node's fingerprint
 * comes from the configuration (`fingerprint=sha256:HEX`), or is trusted on first use
 * and kept in the state directory (`known_nodes`, one "NAME sha256:HEX" per line, as
 * ssh keeps known_hosts). A different fingerprint later is refused, and remembered as
 * the one offered, until an operator accepts it (`lsctl trust NAME`). Pure but for
 * that file. */
#ifndef LS_CTRL_PIN_H
#define LS_CTRL_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctlmsg.h"

struct pin_store;

enum pin_result {
	PIN_OK,        /* the pinned fingerprint */
	PIN_NEW,       /* first use: now pinned (and saved) */
	PIN_MISMATCH,  /* not the pinned one: refuse */
};

/* The store of state_dir (NULL or "": in memory only). NULL with err. */
struct pin_store *pin_open(const char *state_dir, char *err, size_t errlen);
void pin_close(struct pin_store *p);

/* Check the fingerprint a node's agent presented. conf_fp (or NULL) is the one the
 * configuration pins; it wins over the store. */
enum pin_result pin_check(struct pin_store *p, const char *name, const uint8_t *conf_fp,
			  const uint8_t fp[LS_CTL_FP_LEN]);
/* The fingerprint pinned for name in the store, or NULL. */
const uint8_t *pin_get(const struct pin_store *p, const char *name);
/* The last fingerprint refused for name, or NULL. */
const uint8_t *pin_offered(const struct pin_store *p, const char *name);
/* Accept what name offered last (or fp when given): it replaces the stored pin and
 * is saved. 0, or -1 with err (nothing offered, or the file cannot be written). */
int pin_trust(struct pin_store *p, const char *name, const uint8_t *fp, char *err, size_t errlen);

#endif
