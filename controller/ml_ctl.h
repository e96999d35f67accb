/* lightspeed-controller: the ML selector's life in the controller. It feeds the probe
 * series (ml_probe.c) every round and records them (ml_record.c), keeps the model
 * (loaded from the state directory at start; a refused file leaves the selector on
 * nearest's scores, saying why), trains new ones in libuv's worker threads without
 * blocking the loop (on demand and on a schedule), and replaces the model only with
 * one whose held-out error is lower on the same rows. It also switches the strategy
 * at run time. The REST handlers (ml_api.c) call in here. */
#ifndef LS_CTRL_ML_CTL_H
#define LS_CTRL_ML_CTL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"
#include "result.h"
#include "select.h"

/* [ml] in controller.toml. */
struct ml_conf {
	uint64_t retrain_every_s; /* retrain from the recorded history this often (0: never) */
	uint64_t samples_max_mb;  /* the recorded history's file rotates at this size */
	uint64_t synthetic_rows;  /* rows of a synthetic training set */
	uint64_t min_rows;        /* fewer rows than this: no training */
};
void ml_conf_defaults(struct ml_conf *c);
extern const struct ls_conf_field ml_conf_fields[];
void ml_conf_print(const struct ml_conf *c, FILE *f);

struct ctrl;
struct ml_ctl;

/* At start, after the state directory is ready: load the model (or, when there is
 * none, train one from synthetic data), open the recorded history, and put the
 * configured strategy in place. NULL only when out of memory. */
struct ml_ctl *ml_ctl_open(struct ctrl *c);
/* At stop: a running training is cancelled; the memory goes once it has ended. */
void ml_ctl_close(struct ml_ctl *m);
/* Every round, before the selector scores: the probe series and their recording. */
void ml_ctl_round(struct ml_ctl *m, const struct select_cand *c, size_t n, uint64_t now_us);

/* "ml" or "nearest", now (the anti-flap streaks start again). */
enum ls_rc ml_ctl_set_strategy(struct ctrl *c, const char *name, char *msg, size_t msglen);
/* Start a training from "synthetic", "recorded" or "both" (LS_RC_CONFLICT while one
 * runs). */
enum ls_rc ml_ctl_train(struct ctrl *c, const char *from, char *msg, size_t msglen);

/* For the API: the model's status (GET /model), a node's prediction for /routes (or
 * JSON null), and whether the model scores now with the reason. */
json_t *ml_ctl_status_json(const struct ctrl *c);
json_t *ml_ctl_prediction_json(const struct ctrl *c, int slot);
json_t *ml_ctl_routes_json(const struct ctrl *c);
/* The state directory (for the recorded history's export). */
const char *ml_ctl_state_dir(const struct ctrl *c);

#endif
