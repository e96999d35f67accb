/* lsctl: the subcommand table and what every subcommand shares (the API link, the
 * output table, the exit codes). One file per subcommand where it is more than a few
 * lines (lsctl_add.c, lsctl_watch.c, lsctl_model.c); the rest live in lsctl.c. */
#ifndef LSCTL_H
#define LSCTL_H

#include <jansson.h>
#include <stdbool.h>

#include "lsctl_http.h"
#include "output.h"

enum lsctl_exit {
	LSCTL_EXIT_OK = 0,
	LSCTL_EXIT_REFUSED = 1,     /* the API answered with an error (its message shown) */
	LSCTL_EXIT_USAGE = 2,
	LSCTL_EXIT_UNREACHABLE = 3, /* no answer from the API */
};

struct lsctl {
	struct lsctl_api api;
	const struct lsctl_output *out;
	struct lsctl_style style;
	bool json;
	bool tty;                   /* stdout is a terminal */
};

struct lsctl_cmd {
	const char *name;
	int (*fn)(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);
	const char *args;           /* usage after the name */
	const char *help;           /* one line, for `lsctl --help` */
	const char *more;           /* what `lsctl NAME --help` adds */
};

/* Call the API and render a success with render; returns the exit code. body stolen. */
int lsctl_request(struct lsctl *l, const char *method, const char *path, json_t *body,
		  lsctl_out_fn render);
/* Report a failed call (unreachable, refused, not JSON) on stderr; the exit code. */
int lsctl_report(struct lsctl *l, enum lsctl_http_rc rc, const struct lsctl_answer *ans);
/* "lsctl NAME: MESSAGE" and the command's usage on stderr; returns LSCTL_EXIT_USAGE. */
int lsctl_usage_error(const struct lsctl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A node name as the API takes it: 1-31 of [A-Za-z0-9._-]. */
bool lsctl_name_ok(const char *name);

int lsctl_cmd_add(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);
int lsctl_cmd_watch(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);
int lsctl_cmd_model(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);
int lsctl_cmd_strategy(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);
int lsctl_cmd_paths(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);
int lsctl_cmd_mode(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);
int lsctl_cmd_export(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);

#endif
