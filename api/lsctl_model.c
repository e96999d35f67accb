/* lsctl model [status | train [--from synthetic|recorded|both]], lsctl strategy
 * [ml|nearest], lsctl export [--out FILE]: the ML selector's commands (GET /model,
 * POST /model/train, POST /route/strategy, GET /samples). */
#include "lsctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int lsctl_cmd_model(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	const char *from = NULL;

	if (argc < 2 || strcmp(argv[1], "status") == 0) {
		if (argc > 2)
			return lsctl_usage_error(cmd, "status takes no arguments (got '%s')", argv[2]);
		return lsctl_request(l, "GET", "/model", NULL, l->out->model);
	}
	if (strcmp(argv[1], "train") != 0)
		return lsctl_usage_error(cmd, "'%s' is not status or train", argv[1]);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from = argv[++i];
		else if (strncmp(argv[i], "--from=", 7) == 0)
			from = argv[i] + 7;
		else if (strcmp(argv[i], "--from") == 0)
			return lsctl_usage_error(cmd, "--from needs synthetic, recorded or both");
		else
			return lsctl_usage_error(cmd, "unknown argument '%s'", argv[i]);
	}
	if (from && strcmp(from, "synthetic") != 0 && strcmp(from, "recorded") != 0 &&
	    strcmp(from, "both") != 0)
		return lsctl_usage_error(cmd, "--from: '%s' is not synthetic, recorded or both", from);
	json_t *body = from ? json_pack("{s:s}", "from", from) : json_object();
	return lsctl_request(l, "POST", "/model/train", body, l->out->model);
}

int lsctl_cmd_strategy(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	if (argc < 2)
		return lsctl_request(l, "GET", "/model", NULL, l->out->strategy);
	if (argc > 2)
		return lsctl_usage_error(cmd, "takes one strategy (got '%s' too)", argv[2]);
	if (strcmp(argv[1], "ml") != 0 && strcmp(argv[1], "nearest") != 0)
		return lsctl_usage_error(cmd, "'%s' is not ml or nearest", argv[1]);
	return lsctl_request(l, "POST", "/route/strategy", json_pack("{s:s}", "strategy", argv[1]),
			     l->out->strategy);
}

int lsctl_cmd_export(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	const char *path = NULL;
	struct lsctl_answer ans;
	int ret = LSCTL_EXIT_OK;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--out=", 6) == 0)
			path = argv[i] + 6;
		else
			return lsctl_usage_error(cmd, "unknown argument '%s'", argv[i]);
	}
	enum lsctl_http_rc rc = lsctl_http_call(&l->api, "GET", "/samples", NULL, &ans);
	if (rc != LSCTL_HTTP_OK || ans.status != 200) {
		ret = lsctl_report(l, rc, &ans);
		lsctl_answer_free(&ans);
		return ret;
	}
	FILE *f = path ? fopen(path, "w") : stdout;
	if (!f) {
		fprintf(stderr, "lsctl export: %s: %s\n", path, strerror(errno));
		lsctl_answer_free(&ans);
		return LSCTL_EXIT_USAGE;
	}
	/* CSV either way: --json does not apply to a table of samples. */
	if (fwrite(ans.body, 1, ans.len, f) != ans.len || (path && fclose(f) != 0)) {
		fprintf(stderr, "lsctl export: %s: write failed: %s\n", path ? path : "stdout",
			strerror(errno));
		ret = LSCTL_EXIT_USAGE;
	}
	lsctl_answer_free(&ans);
	return ret;
}
