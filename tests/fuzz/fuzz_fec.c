/* libFuzzer harness: the FEC decoder fed a stream of forged version-2 packets. Each
 * record of the input is: u8 block-low, u8 index, u8 k, u8 length, then that many payload
 * bytes. Nothing may crash, and nothing is delivered longer than a payload can be. */
#include <stdlib.h>
#include <string.h>

#include "fec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void deliver(void *ctx, const uint8_t *payload, size_t len)
{
	(void)payload;
	if (len > LS_MAX_PAYLOAD)
		abort();
	(*(size_t *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct ls_fec_dec d;
	size_t delivered = 0, off = 0;
	uint64_t now = 1000000;

	if (ls_fec_dec_init(&d, 100000) != 0)
		return 0;
	while (off + 4 <= len) {
		struct ls_hdr h;
		size_t plen = data[off + 3];

		memset(&h, 0, sizeof(h));
		h.version = LS_VER_FEC;
		h.fec_block = data[off];
		h.fec_index = data[off + 1];
		h.fec_k = data[off + 2];
		off += 4;
		if (plen > len - off)
			plen = len - off;
		ls_fec_dec_add(&d, &h, data + off, plen, now, deliver, &delivered);
		off += plen;
		now += 3000;
		if (h.fec_block % 7 == 0)
			ls_fec_dec_expire(&d, now);
	}
	ls_fec_dec_free(&d);
	return 0;
}
