/* lightspeed-client: the direct route (docs/protocol.md 3.2): no tunnel and no node;
 * the game's datagrams go to the game server itself, each game socket from a UDP
 * socket of its own (so the server sees one stable port per game socket, as through a
 * proxy), and what the server sends back to that socket is delivered to the game
 * socket. A few sockets are kept open and ready while a direct route exists, so the
 * packet path opens none; the first datagram of a game socket takes one. Datagrams
 * queued in a batch go out with one sendmmsg per socket. */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int open_socket(void)
{
	struct sockaddr_in any = { .sin_family = AF_INET };
	int size = 1 << 20;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* A flow's 0 means "no socket": never hand out descriptor 0. */
	if (fd == 0) {
		int moved = fcntl(fd, F_DUPFD_CLOEXEC, 1);

		close(fd);
		if (moved < 0)
			return -1;
		fd = moved;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	/* Bound now: its port is fixed before the first datagram, and an error shows. */
	if (bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

bool client_direct_wanted(const struct client *c)
{
	for (unsigned i = 0; i < CL_MAX_ROUTES; i++)
		if (c->routes[i].used && c->routes[i].direct)
			return true;
	return false;
}

void client_direct_refill(struct client *c)
{
	struct client_directs *d = &c->direct;

	if (!client_direct_wanted(c))
		return;
	while (d->nspare < CL_DIRECT_SPARE) {
		int fd = open_socket();

		if (fd < 0) {
			ls_warn_rl(&d->rl, "direct route: cannot open a socket: %s", strerror(errno));
			return;
		}
		d->spare[d->nspare++] = fd;
	}
}

void client_direct_flow_gone(struct client *c, struct client_flow *f)
{
	if (f->dfd > 0) {
		/* Closing leaves the epoll set. */
		close(f->dfd);
		c->direct.open--;
	}
	f->dfd = 0;
}

/* The flow's socket, taken from the spares on its first direct datagram. */
static int flow_socket(struct client *c, struct client_flow *f)
{
	struct client_directs *d = &c->direct;
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u32 = CL_EV_DIRECT + (uint32_t)(f - c->flows) };

	if (f->dfd > 0)
		return f->dfd;
	if (!d->nspare)
		return -1;
	if (epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, d->spare[d->nspare - 1], &ev) < 0)
		return -1;
	f->dfd = d->spare[--d->nspare];
	d->open++;
	return f->dfd;
}

void client_direct_send(struct client *c, struct client_flow *f, uint8_t *payload, size_t len,
			const struct sockaddr_in *to)
{
	struct client_directs *d = &c->direct;
	int fd = flow_socket(c, f);
	unsigned i;

	if (fd < 0) {
		/* No socket ready (the refill could not open one): counted, never queued. */
		c->ctr.drops[LS_DROP_SEND_ERROR]++;
		return;
	}
	if (d->n == CL_BATCH)
		client_direct_flush(c);
	i = d->n++;
	d->fd[i] = fd;
	d->iov[i].iov_base = payload;
	d->iov[i].iov_len = len;
	d->to[i] = *to;
	memset(&d->msg[i], 0, sizeof(d->msg[i]));
	d->msg[i].msg_hdr.msg_iov = &d->iov[i];
	d->msg[i].msg_hdr.msg_iovlen = 1;
	d->msg[i].msg_hdr.msg_name = &d->to[i];
	d->msg[i].msg_hdr.msg_namelen = sizeof(d->to[i]);
}

void client_direct_flush(struct client *c)
{
	struct client_directs *d = &c->direct;
	unsigned i = 0;

	/* The queue keeps the game's order; a run of one socket's datagrams goes in one
	 * call (a game usually has one socket). */
	while (i < d->n) {
		unsigned run = 1;
		int r;

		while (i + run < d->n && d->fd[i + run] == d->fd[i])
			run++;
		r = sendmmsg(d->fd[i], d->msg + i, run, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			c->ctr.drops[LS_DROP_SEND_ERROR]++;
			i++;
			continue;
		}
		for (int k = 0; k < r; k++) {
			c->ctr.direct_tx_packets++;
			c->ctr.direct_tx_bytes += d->iov[i + (unsigned)k].iov_len;
		}
		i += (unsigned)r;
	}
	d->n = 0;
}

void client_direct_readable(struct client *c, unsigned idx)
{
	struct client_io *io = c->io;
	struct client_flow *f = idx < CL_MAX_FLOWS ? &c->flows[idx] : NULL;

	for (int round = 0; f && f->dfd > 0 && round < CL_BATCHES_PER_WAKE; round++) {
		int n;

		for (int i = 0; i < CL_BATCH; i++) {
			io->down_rx[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
			io->down_rx[i].msg_hdr.msg_flags = 0;
		}
		do
			n = recvmmsg(f->dfd, io->down_rx, CL_BATCH, MSG_TRUNC | MSG_DONTWAIT, NULL);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return;
		uint64_t now = ls_now_us();
		struct sockaddr_in game = { .sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(f->ip),
					    .sin_port = htons(f->port) };
		for (int i = 0; i < n; i++) {
			const struct sockaddr_in *from = &io->down_from[i];
			size_t len = io->down_rx[i].msg_len;
			unsigned slot;

			c->ctr.direct_rx_packets++;
			c->ctr.direct_rx_bytes += len;
			/* Only the server this game socket sends to may answer it. */
			if (ntohl(from->sin_addr.s_addr) != f->srv_ip ||
			    ntohs(from->sin_port) != f->srv_port) {
				c->ctr.drops[LS_DROP_UNEXPECTED_SOURCE]++;
				continue;
			}
			if (len > LS_MAX_PAYLOAD || (io->down_rx[i].msg_hdr.msg_flags & MSG_TRUNC)) {
				c->ctr.drops[LS_DROP_OVERSIZE]++;
				continue;
			}
			c->last_delivered_us = now;
			slot = client_txq_slot(c, &io->down);
			client_txq_put(&io->down, slot, io->down_buf[i], len, &game);
			io->down.from[slot] = *from;
		}
		client_txq_flush(c, &io->down);
		if (n < CL_BATCH)
			return;
	}
}

void client_direct_free(struct client *c)
{
	struct client_directs *d = &c->direct;

	for (unsigned i = 0; i < d->nspare; i++)
		close(d->spare[i]);
	d->nspare = 0;
	for (unsigned i = 0; i < CL_MAX_FLOWS; i++)
		client_direct_flow_gone(c, &c->flows[i]);
}
