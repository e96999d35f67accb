/* lightspeed-controller: the ML selector's REST handlers (see ml_api.h). */
#include "ml_api.h"

#include "controller.h"
#include "ml_ctl.h"
#include "ml_record.h"

const struct ls_httpd_key ml_api_train_keys[] = {
	{ "from", LS_HTTPD_STRING, false },
	{ NULL, 0, false },
};

const struct ls_httpd_key ml_api_strategy_keys[] = {
	{ "strategy", LS_HTTPD_STRING, true },
	{ NULL, 0, false },
};

enum ls_rc ml_api_model(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	(void)req;
	rep->json = ml_ctl_status_json(ctx);
	return LS_RC_OK;
}

enum ls_rc ml_api_train(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	const char *from = json_string_value(json_object_get(req->body, "from"));
	enum ls_rc rc = ml_ctl_train(c, from, rep->msg, sizeof(rep->msg));

	if (rc != LS_RC_OK)
		return rc;
	/* Accepted: it runs in the background; GET /model and /events follow it. */
	rep->status = 202;
	rep->json = ml_ctl_status_json(c);
	return LS_RC_OK;
}

enum ls_rc ml_api_strategy(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	const char *name = json_string_value(json_object_get(req->body, "strategy"));
	enum ls_rc rc = ml_ctl_set_strategy(c, name, rep->msg, sizeof(rep->msg));

	if (rc != LS_RC_OK)
		return rc;
	rep->json = ml_ctl_routes_json(c);
	return LS_RC_OK;
}

enum ls_rc ml_api_samples(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	char *text;
	size_t len;

	(void)req;
	if (ml_record_export(ml_ctl_state_dir(ctx), &text, &len, rep->msg, sizeof(rep->msg)) < 0)
		return LS_RC_INTERNAL;
	rep->text = text;
	rep->text_len = len;
	rep->content_type = "text/csv";
	return LS_RC_OK;
}
