/* libFuzzer harness: what the controller reads from outside. The bytes are taken as a
 * route object of the client's `routes` answer (controller/dplink.c, which refuses it
 * or reads it field by field), and as the switch-history file of the state directory
 * (controller/history.c, which skips what it cannot read). Neither may crash, and a
 * route object that is taken must hold values in range. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../controller/controller.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *o = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
	char name[NODE_NAME_MAX];
	struct node_dp dp;

	if (o && dplink_parse_route(o, name, &dp) == 0) {
		if (!node_name_valid(name) || dp.rtt_us < -1 || dp.jitter_us < -1 ||
		    dp.loss_up > 1 || dp.loss_down > 1 || dp.session_id > 0xffffffffll ||
		    dp.probe_ms > NODE_PROBE_MS_MAX)
			abort();
	}
	json_decref(o);

	static char path[64];
	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/ls-fuzz-history-%d", (int)getpid());
	FILE *f = fopen(path, "w");
	if (f) {
		fwrite(data, 1, size, f);
		fclose(f);
		struct history *h = malloc(sizeof(*h));
		unsigned skipped;
		char err[128];
		history_init(h);
		history_load(h, path, &skipped, err, sizeof(err));
		for (unsigned i = 0; i < history_len(h); i++)
			if (!history_at(h, i)->to[0] || history_at(h, i)->reason >= SW__COUNT)
				abort();
		free(h);
		unlink(path);
	}
	return 0;
}
