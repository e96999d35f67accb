/* Readiness and watchdog notifications to the service manager (systemd's Type=notify,
 * WatchdogSec=). The protocol is one datagram per message on the Unix socket named by
 * $NOTIFY_SOCKET ("/path" or "@abstract"), holding newline-separated VAR=VALUE lines
 * (sd_notify(3)). It is written here rather than taken from libsystemd because the
 * dataplane links only libc dynamically, and the four daemons share one copy.
 * Without $NOTIFY_SOCKET (started by hand, in tests) every call does nothing. Sends
 * never block: a manager that does not read loses a heartbeat, never stalls a loop. */
#ifndef LS_SDNOTIFY_H
#define LS_SDNOTIFY_H

#include <stdint.h>

/* Send STATE (e.g. "READY=1\nSTATUS=listening") as one datagram. 1 sent, 0 no
 * manager asked for notifications, -1 the send failed (errno set). */
int ls_sdnotify(const char *state);
/* READY=1 and a STATUS= line (printf format; NULL: none). Call it once the daemon
 * serves: sockets bound, steering socket open. */
void ls_sdnotify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1: a stop has begun (systemd then waits for the exit, not for a heartbeat). */
void ls_sdnotify_stopping(void);
/* The watchdog interval the manager asked for ($WATCHDOG_USEC, for this process when
 * $WATCHDOG_PID is set), 0 when none. */
uint64_t ls_sdnotify_watchdog_us(void);
/* From the loop's periodic tick: WATCHDOG=1 once a third of the interval has passed
 * since the last one (at once on the first call), so a tick that comes a little late
 * still leaves a margin. Every daemon ticks at least once a second: WatchdogSec= must
 * be 2 s or more. */
void ls_sdnotify_watchdog(uint64_t now_us);

#endif
