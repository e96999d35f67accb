/* Netlink requests for the few kernel settings LightSpeed reads or writes (nftables
 * and policy routing for capture mode, the routes of a VPN interface for the
 * controller): a message builder over a fixed buffer, a request/answer exchange, and
 * attribute walking. Control paths only; no allocation. */
#ifndef LS_NLMSG_H
#define LS_NLMSG_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LS_NL_BUF 16384

struct ls_nlb {
	uint8_t buf[LS_NL_BUF];
	size_t len;
	bool full;      /* something did not fit: the request must not be sent */
	unsigned n_ack; /* messages that ask for an answer (NLM_F_ACK) */
};

void ls_nlb_reset(struct ls_nlb *b);
/* Room for len bytes (zeroed, aligned), or NULL when full. */
void *ls_nlb_put(struct ls_nlb *b, size_t len);
/* Start a message (NLM_F_REQUEST | flags); its offset, for ls_nlb_end. The message's
 * fixed header (nfgenmsg, rtmsg, ...) follows with ls_nlb_put. */
size_t ls_nlb_msg(struct ls_nlb *b, uint16_t type, uint16_t flags, uint32_t seq);
void ls_nlb_end(struct ls_nlb *b, size_t msg);
/* nfnetlink's fixed header. */
void ls_nlb_nfgen(struct ls_nlb *b, uint8_t family, uint16_t res_id);
void ls_nlb_attr(struct ls_nlb *b, uint16_t type, const void *data, size_t len);
void ls_nlb_be32(struct ls_nlb *b, uint16_t type, uint32_t v);
void ls_nlb_u32(struct ls_nlb *b, uint16_t type, uint32_t v);
void ls_nlb_str(struct ls_nlb *b, uint16_t type, const char *s);
/* A nested attribute: its offset, closed by ls_nlb_nest_end. */
size_t ls_nlb_nest(struct ls_nlb *b, uint16_t type);
void ls_nlb_nest_end(struct ls_nlb *b, size_t nest);

/* A netlink socket of the protocol (NETLINK_ROUTE, NETLINK_NETFILTER), bound, with a
 * 2 s receive timeout; -1 with a message. */
int ls_nl_socket(int proto, char *err, size_t errlen);

/* One message of an answer. */
typedef void (*ls_nl_cb)(const struct nlmsghdr *h, void *ctx);

/* Send b and read the answer until every NLM_F_ACK message is answered (or, for a
 * dump, until NLMSG_DONE); other messages go to cb. Returns 0, or the -errno of the
 * first message refused (its seq in *bad when bad is given). */
int ls_nl_talk(int fd, struct ls_nlb *b, bool dump, ls_nl_cb cb, void *ctx, uint32_t *bad);

/* The attributes of a message after its fixed header of hdrlen bytes, and of a nest. */
const struct nlattr *ls_nl_attrs(const struct nlmsghdr *h, size_t hdrlen, int *len);
const struct nlattr *ls_nl_nested(const struct nlattr *a, int *len);
/* The next attribute within *len bytes (NULL at the end or on a malformed one). The
 * first call passes the start: a = ls_nl_next(NULL, start, &len) walks from start. */
const struct nlattr *ls_nl_next(const struct nlattr *a, const struct nlattr *start, int *len);
const void *ls_nl_data(const struct nlattr *a);
uint16_t ls_nl_type(const struct nlattr *a);
/* The payload as a big-endian or host-order u32 (0 when shorter). */
uint32_t ls_nl_be32(const struct nlattr *a);
uint32_t ls_nl_u32(const struct nlattr *a);

#endif
