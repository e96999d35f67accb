/* Small files under a state directory (/var/lib/lightspeed): the agent's certificate
 * and secrets, its sessions, the controller's pinned fingerprints. Written whole and
 * atomically (a temporary file renamed over the old one), so a crash leaves the old
 * version or the new, never half of one; private to the owner (0600 files in a 0700
 * directory) because several of them hold keys. */
#ifndef LS_STATEFILE_H
#define LS_STATEFILE_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p dir with mode 0700 for what it creates. 0 or -1 with a message in err. */
int ls_statefile_dir(const char *dir, char *err, size_t errlen);
/* Write len bytes as path (mode 0600), atomically. 0 or -1 with a message in err. */
int ls_statefile_write(const char *path, const void *data, size_t len, char *err,
		       size_t errlen);
/* Read a whole file of at most max bytes (NUL-terminated, malloc'ed, *len without the
 * NUL). NULL with errno ENOENT when it does not exist, or NULL with a message in err. */
char *ls_statefile_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);
/* A file readable or writable by group or others is tightened to 0600; returns 1 when
 * it had to be (the caller warns), 0 when it was private, -1 on error. */
int ls_statefile_private(const char *path);

#endif
