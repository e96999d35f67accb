/* Secrets in files: reading a key file, and the permission check on files with keys. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int ls_secret_read(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	char buf[512];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *s, *e;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	for (s = buf; *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'; s++)
		;
	e = strpbrk(s, "\r\n");
	if (e)
		*e = '\0';
	for (e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
		e[-1] = '\0';
	if (!*s || strlen(s) >= outlen) {
		snprintf(err, errlen, "%s: %s", path, !*s ? "empty" : "too long");
		memset(buf, 0, sizeof(buf));
		return -1;
	}
	snprintf(out, outlen, "%s", s);
	memset(buf, 0, sizeof(buf));
	return 0;
}

int ls_secret_check_mode(const char *path, const char *what)
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	/* 0600, or 0640 to the service's group, is what make install gives. */
	if (!(st.st_mode & (S_IRWXO | S_IWGRP)))
		return 0;
	ls_warn("%s holds %s and is %s by other users (mode %04o): chmod 600 %s (or 640 "
		"with the service's group)", path, what,
		st.st_mode & S_IROTH ? "readable" : "writable", (unsigned)(st.st_mode & 07777), path);
	return 1;
}
