/* lsctl paths, lsctl mode [--node NAME] MODE: the paths to each egress node and the
 * path mode of a node's route (GET /paths, POST /route/mode; docs/protocol.md 1.9). */
#include "lsctl.h"

#include <string.h>

static const char *const modes[] = { "single", "duplicate", "split", "auto" };

int lsctl_cmd_paths(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	if (argc > 1)
		return lsctl_usage_error(cmd, "takes no arguments (got '%s')", argv[1]);
	return lsctl_request(l, "GET", "/paths", NULL, l->out->paths);
}

int lsctl_cmd_mode(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	const char *node = NULL, *mode = NULL;
	json_t *body;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
			node = argv[++i];
		else if (strncmp(argv[i], "--node=", 7) == 0)
			node = argv[i] + 7;
		else if (argv[i][0] == '-')
			return lsctl_usage_error(cmd, "unknown option '%s'", argv[i]);
		else if (mode)
			return lsctl_usage_error(cmd, "takes one MODE (got '%s' too)", argv[i]);
		else
			mode = argv[i];
	}
	if (!mode)
		return lsctl_usage_error(cmd, "needs a MODE: single, duplicate, split or auto");
	bool known = false;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		known |= strcmp(mode, modes[i]) == 0;
	if (!known)
		return lsctl_usage_error(cmd, "'%s' is not a mode (single, duplicate, split, auto)",
					 mode);
	if (node && !lsctl_name_ok(node))
		return lsctl_usage_error(cmd, "'%s' is not a node name (1-31 of A-Z a-z 0-9 . _ -)",
					 node);
	body = json_pack("{s:s}", "mode", mode);
	if (node)
		json_object_set_new(body, "node", json_string(node));
	return lsctl_request(l, "POST", "/route/mode", body, l->out->mode);
}
