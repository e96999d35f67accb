/* An impairment SPEC for one direction: parsing "loss=5%,delay=20ms,..." into a
 * struct, and writing the struct back in canonical form (README.md has the syntax). */
#ifndef NS_SPEC_H
#define NS_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_SPEC_MAX 1024 /* longest SPEC text accepted */

struct ns_spec {
	double loss; /* independent loss probability */

	/* Gilbert-Elliott: p = P(good->bad), r = P(bad->good) per packet, h = loss
	 * probability in the bad state (the good state never loses). */
	bool ge;
	double ge_p, ge_r, ge_h;
	/* Set when the model came from burst=AVG:LEN, kept to print it back that way. */
	bool ge_burst_form;
	double burst_avg, burst_len;

	uint64_t delay_ns;
	uint64_t jitter_ns;
	bool jitter_normal; /* normal with this standard deviation, else uniform +-J */
	bool order;         /* keep each client's packets FIFO even with jitter */

	double reorder;
	uint64_t reorder_hold_ns; /* longest a held packet waits for a successor */

	double dup;

	uint64_t rate_bps;     /* 0: no rate limit */
	uint64_t queue_ns;     /* queue limit as time at the rate (used when queue_bytes is 0) */
	uint64_t queue_bytes;  /* queue limit in bytes */
	uint64_t bucket_bytes; /* token bucket depth: bytes that may pass at once */
};

#define NS_REORDER_HOLD_DEFAULT_NS (50u * 1000000u)
#define NS_QUEUE_DEFAULT_NS (50u * 1000000u)
#define NS_QUEUE_MIN_BYTES 15000u

/* Parse text into *out (cleared first). Return 0, or -1 with a message in err. */
int ns_spec_parse(const char *text, struct ns_spec *out, char *err, size_t errlen);
/* The canonical text ("none" when nothing is impaired) into buf. Returns buf. */
char *ns_spec_format(const struct ns_spec *s, char *buf, size_t len);
/* The queue limit in bytes the rate limiter enforces (explicit or derived). */
uint64_t ns_spec_queue_limit(const struct ns_spec *s);

#endif
