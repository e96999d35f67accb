/* lightspeed-controller: pinned agent certificates (pin.h). */
#include "pin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "statefile.h"
#include "util.h"

#define PIN_MAX 1024
#define PIN_FILE_MAX (1u << 20)

struct pin {
	char name[LS_CTL_NAME_MAX + 1];
	uint8_t fp[LS_CTL_FP_LEN];
	bool has_fp;
	uint8_t offered[LS_CTL_FP_LEN];
	bool has_offered;
};

struct pin_store {
	char path[1100];
	struct pin *v;
	size_t n;
};

static struct pin *find(const struct pin_store *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0)
			return &p->v[i];
	return NULL;
}

static struct pin *get(struct pin_store *p, const char *name)
{
	struct pin *e = find(p, name);

	if (e || p->n >= PIN_MAX || !ls_ctl_name_ok(name))
		return e;
	e = &p->v[p->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	return e;
}

static int save(struct pin_store *p, char *err, size_t errlen)
{
	struct ls_buf b;
	char fp[LS_CTL_FP_STRLEN];
	int rc;

	if (!p->path[0])
		return 0;
	ls_buf_init(&b);
	ls_buf_printf(&b, "# lightspeed-controller: pinned agent certificates (NAME sha256:HEX)\n");
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].has_fp) {
			ls_ctl_fp_fmt(p->v[i].fp, fp);
			ls_buf_printf(&b, "%s %s\n", p->v[i].name, fp);
		}
	if (b.oom) {
		snprintf(err, errlen, "out of memory");
		ls_buf_free(&b);
		return -1;
	}
	rc = ls_statefile_write(p->path, b.data, b.len, err, errlen);
	ls_buf_free(&b);
	return rc;
}

struct pin_store *pin_open(const char *state_dir, char *err, size_t errlen)
{
	struct pin_store *p = calloc(1, sizeof(*p));
	char *text, *save_ptr = NULL;
	unsigned lineno = 0;

	if (!p || !(p->v = calloc(PIN_MAX, sizeof(*p->v)))) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!state_dir || !state_dir[0])
		return p;
	if (ls_statefile_dir(state_dir, err, errlen) != 0) {
		pin_close(p);
		return NULL;
	}
	snprintf(p->path, sizeof(p->path), "%s/known_nodes", state_dir);
	text = ls_statefile_read(p->path, PIN_FILE_MAX, NULL, err, errlen);
	if (!text) {
		if (errno == ENOENT)
			return p;
		pin_close(p);
		return NULL;
	}
	for (char *line = strtok_r(text, "\n", &save_ptr); line; line = strtok_r(NULL, "\n", &save_ptr)) {
		char name[64], fps[200];
		struct pin *e;

		lineno++;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (sscanf(line, "%63s %199s", name, fps) != 2 || !ls_ctl_name_ok(name) ||
		    !(e = get(p, name)) || ls_ctl_fp_parse(fps, e->fp) != 0) {
			ls_warn("%s:%u: not \"NAME sha256:HEX\": skipped", p->path, lineno);
			continue;
		}
		e->has_fp = true;
	}
	free(text);
	return p;
}

void pin_close(struct pin_store *p)
{
	if (!p)
		return;
	free(p->v);
	free(p);
}

enum pin_result pin_check(struct pin_store *p, const char *name, const uint8_t *conf_fp,
			  const uint8_t fp[LS_CTL_FP_LEN])
{
	struct pin *e = get(p, name);
	char err[300];

	if (conf_fp) {
		if (memcmp(conf_fp, fp, LS_CTL_FP_LEN) == 0)
			return PIN_OK;
	} else if (e && e->has_fp) {
		if (memcmp(e->fp, fp, LS_CTL_FP_LEN) == 0)
			return PIN_OK;
	} else if (e) {
		memcpy(e->fp, fp, LS_CTL_FP_LEN);
		e->has_fp = true;
		if (save(p, err, sizeof(err)) != 0)
			ls_warn("pinning %s: %s (pinned for this run only)", name, err);
		return PIN_NEW;
	}
	if (e) {
		memcpy(e->offered, fp, LS_CTL_FP_LEN);
		e->has_offered = true;
	}
	return PIN_MISMATCH;
}

const uint8_t *pin_get(const struct pin_store *p, const char *name)
{
	const struct pin *e = find(p, name);

	return e && e->has_fp ? e->fp : NULL;
}

const uint8_t *pin_offered(const struct pin_store *p, const char *name)
{
	const struct pin *e = find(p, name);

	return e && e->has_offered ? e->offered : NULL;
}

int pin_trust(struct pin_store *p, const char *name, const uint8_t *fp, char *err, size_t errlen)
{
	struct pin *e = get(p, name);

	if (!e) {
		snprintf(err, errlen, "no room to pin '%s'", name);
		return -1;
	}
	if (!fp && !e->has_offered) {
		snprintf(err, errlen, "node '%s' has offered no other certificate", name);
		return -1;
	}
	memcpy(e->fp, fp ? fp : e->offered, LS_CTL_FP_LEN);
	e->has_fp = true;
	e->has_offered = false;
	return save(p, err, errlen);
}
