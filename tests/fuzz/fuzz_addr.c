/* libFuzzer harness: CIDR, destination and host:port parsing. Whatever parses must
 * format back to text that parses to the same value. */
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char s[128], buf[128], err[256];
	struct ls_cidr c, c2;
	struct ls_dest d, d2;
	struct sockaddr_in a, a2;

	if (len >= sizeof(s))
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	if (ls_cidr_parse(s, &c) == 0) {
		ls_cidr_fmt(&c, buf, sizeof(buf));
		if (ls_cidr_parse(buf, &c2) != 0 || c.net != c2.net || c.mask != c2.mask)
			abort();
	}
	if (ls_dest_parse(s, &d) == 0) {
		ls_dest_fmt(&d, buf, sizeof(buf));
		if (ls_dest_parse(buf, &d2) != 0 || memcmp(&d, &d2, sizeof(d)) != 0)
			abort();
	}
	if (ls_hostport_parse(s, &a, false, true, err, sizeof(err)) == 0) {
		ls_addr_fmt(&a, buf);
		if (ls_hostport_parse(buf, &a2, false, true, err, sizeof(err)) != 0 ||
		    a.sin_addr.s_addr != a2.sin_addr.s_addr || a.sin_port != a2.sin_port)
			abort();
	} else if (!err[0]) {
		abort(); /* a refusal always says why */
	}
	return 0;
}
