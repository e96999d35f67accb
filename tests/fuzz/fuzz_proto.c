/* libFuzzer harness: the tunnel codec. A datagram that decodes must re-encode to the
 * same header bytes, and its payload and tag must lie inside the datagram. */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct ls_pkt p;
	uint8_t out[LS_MAX_OVERHEAD];
	struct ls_keepalive ka;
	struct ls_hdr h;

	if (ls_pkt_decode(data, len, &p) != LS_PE_OK)
		return 0;
	if (p.payload < data || p.payload + p.payload_len > data + len)
		abort();
	if (p.tag && (p.tag + LS_TAG_LEN != data + len || p.signed_len != len - LS_TAG_LEN))
		abort();
	size_t n = ls_hdr_encode(&p.h, out);
	if (n != ls_hdr_len(p.h.version, p.h.flags) || data + n != p.payload ||
	    memcmp(out, data, n) != 0)
		abort();
	ls_keepalive_from_hdr(&p.h, &ka);
	h = p.h;
	ls_keepalive_to_hdr(&ka, &h);
	if (memcmp(&h, &p.h, sizeof(h)) != 0)
		abort();
	return 0;
}
