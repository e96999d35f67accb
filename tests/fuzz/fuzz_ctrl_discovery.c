/* libFuzzer harness: what node discovery reads from the network (controller/discovery_*.c).
 * The input is a DNS answer (the TTL walk over its records, discovery_answer_ttl), then
 * read again as the character-strings of a TXT record (u8 length + bytes, each) and as a
 * SRV target host name, and as a PEERS frame of an agent whose nodes are taken. The TTL
 * must be a record's or -1, a name what the protocol allows; sanitizers catch the rest. */
#include <stdlib.h>
#include <string.h>

#include "../../controller/discovery.h"
#include "ctlmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void found(void *ctx, const struct discovered *d)
{
	(void)ctx;
	if (!ls_ctl_name_ok(d->name) || (d->region[0] && !ls_ctl_name_ok(d->region)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *strs[32];
	size_t lens[32], n = 0, off = 0;
	struct discovered d;
	char host[256], name[LS_CTL_NAME_MAX + 1], err[200];
	struct ls_ctl_msg m;
	int64_t ttl = discovery_answer_ttl(data, len);

	if (ttl < -1 || ttl > 0xffffffffll)
		abort();
	while (off < len && n < 32) {
		size_t l = data[off++];

		if (l > len - off)
			l = len - off;
		strs[n] = (const char *)data + off;
		lens[n++] = l;
		off += l;
	}
	memset(&d, 0, sizeof(d));
	if (discovery_txt_parse(strs, lens, n, &d, err, sizeof(err)) == 0 && d.region[0] &&
	    !ls_ctl_name_ok(d.region))
		abort();
	memcpy(host, data, len < sizeof(host) - 1 ? len : sizeof(host) - 1);
	host[len < sizeof(host) - 1 ? len : sizeof(host) - 1] = '\0';
	if (discovery_name_from_host(host, name) == 0 && !ls_ctl_name_ok(name))
		abort();
	if (ls_ctl_decode(data, len, LS_CTL_TO_CONTROLLER, &m) == LS_CTL_OK && m.type == LS_CTL_PEERS)
		discovery_peers_take(&m, found, NULL);
	return 0;
}
