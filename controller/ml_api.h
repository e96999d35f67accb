/* lightspeed-controller: the ML selector's REST handlers (api/openapi.yaml): the
 * model's status, a training, the strategy, and the recorded history as CSV. api.c
 * puts them in its route table. */
#ifndef LS_CTRL_ML_API_H
#define LS_CTRL_ML_API_H

#include "httpd.h"

/* GET /model */
enum ls_rc ml_api_model(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep);
/* POST /model/train {"from": "synthetic"|"recorded"|"both"} */
enum ls_rc ml_api_train(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep);
extern const struct ls_httpd_key ml_api_train_keys[];
/* POST /route/strategy {"strategy": "ml"|"nearest"} */
enum ls_rc ml_api_strategy(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep);
extern const struct ls_httpd_key ml_api_strategy_keys[];
/* GET /samples: the recorded history, text/csv */
enum ls_rc ml_api_samples(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep);

#endif
