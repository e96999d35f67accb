/* libFuzzer harness: the control-frame codec (docs/protocol.md section 2), both
 * directions. A frame that decodes must encode back to exactly its own bytes (one
 * spelling per message), and a message's names and destinations must be what the
 * protocol allows. */
#include <stdlib.h>
#include <string.h>

#include "ctlmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void check(const uint8_t *data, size_t len, enum ls_ctl_dir dir)
{
	static uint8_t out[LS_CTL_MAX_FRAME];
	struct ls_ctl_msg m, again;
	size_t need;
	long n;
	int rc = ls_ctl_decode(data, len, dir, &m);

	if (rc != LS_CTL_OK) {
		if (rc != LS_CTL_ERR_SHORT && rc != LS_CTL_ERR_MALFORMED && rc != LS_CTL_ERR_TYPE)
			abort();
		return;
	}
	if (ls_ctl_frame_len(data, len, &need) != LS_CTL_OK || need != len)
		abort();
	if (m.type == LS_CTL_REGISTER_ACK &&
	    (!ls_ctl_name_ok(m.u.ack.node_id) || m.u.ack.token != (uint8_t)m.u.ack.session_id))
		abort();
	n = ls_ctl_encode(&m, out, sizeof(out));
	if (n < 0 || (size_t)n != len || memcmp(out, data, len) != 0)
		abort();
	if (ls_ctl_decode(out, (size_t)n, dir, &again) != LS_CTL_OK ||
	    memcmp(&again, &m, sizeof(m)) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	check(data, len, LS_CTL_TO_AGENT);
	check(data, len, LS_CTL_TO_CONTROLLER);
	return 0;
}
