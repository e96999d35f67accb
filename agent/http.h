/* lightspeed-agent: HTTP on the node (shared/httpd on the agent's loop): GET /health,
 * JSON (status, version, node id, region, uptime, sessions, counters, the certificate
 * fingerprint), and GET /metrics, Prometheus text under the prefix lightspeed_: what
 * the proxy relayed and dropped (its counters, read every second over steering), FEC
 * recoveries, sessions, the node's leg to the game servers as a histogram, and the
 * QUIC endpoint's connections. */
#ifndef LS_AGENT_HTTP_H
#define LS_AGENT_HTTP_H

#include <stddef.h>

#include "agent.h"

struct agent_http;

struct agent_http *http_open(struct agent *a, char *err, size_t errlen);
void http_close(struct agent_http *h);
/* The bound port (with :0). */
unsigned http_port(const struct agent_http *h);

/* The bodies, for the handlers and the fuzz harness. */
struct json_t;
struct json_t *http_health_json(struct agent *a, int *status);
char *http_metrics_text(struct agent *a);

#endif
