/* Secrets in files: a key read from its own file (so that it never sits in `ps`), and
 * the warning a program gives when a file holding a secret is open to other users. */
#ifndef LS_SECRET_H
#define LS_SECRET_H

#include <stddef.h>

/* The first line of path, surrounding white space trimmed, into out. Return 0, or -1
 * with "path: why" in err (unreadable, empty, longer than outlen - 1). */
int ls_secret_read(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* When path, which holds `what` (e.g. "session keys"), can be read or written by users
 * other than its owner and group, or written by its group: a warning in the log that
 * says how to fix it. Returns 1 when it warned, 0 when the file is private enough or
 * cannot be examined (reading it reports that). */
int ls_secret_check_mode(const char *path, const char *what);

#endif
