/* libFuzzer harness: the config loader over a schema with every field kind and an
 * array of tables. It must accept or refuse with one "name:..." line, never crash. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

struct sect {
	char s[8];
	int64_t i;
	uint64_t u;
	bool b;
	char any[64];
};
struct elem {
	char s[4];
	int64_t i;
};
struct conf {
	struct sect root, t;
	struct elem e[2];
	int ne;
};

static int custom(const struct ls_cv *v, void *dst, char *err, size_t len)
{
	if (v->type != LS_CV_ARRAY || v->u.arr.n > 2) {
		snprintf(err, len, "want an array of at most 2");
		return -1;
	}
	for (size_t i = 0; i < v->u.arr.n; i++)
		if (v->u.arr.items[i].type == LS_CV_STRING)
			snprintf(dst, 64, "%s", v->u.arr.items[i].u.s);
	return 0;
}

static void *add(void *conf, char *err, size_t len)
{
	struct conf *c = conf;

	(void)err;
	(void)len;
	return c->ne == 2 ? NULL : &c->e[c->ne++];
}

static const struct ls_conf_field sect_fields[] = {
	{ "s", LS_CF_STRING, offsetof(struct sect, s), 8, 0, 0, NULL },
	{ "i", LS_CF_INT, offsetof(struct sect, i), 0, -5, 5, NULL },
	{ "u", LS_CF_UINT, offsetof(struct sect, u), 0, 0, 0, NULL },
	{ "b", LS_CF_BOOL, offsetof(struct sect, b), 0, 0, 0, NULL },
	{ "a", LS_CF_CUSTOM, offsetof(struct sect, any), 0, 0, 0, custom },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};
static const struct ls_conf_field elem_fields[] = {
	{ "s", LS_CF_STRING, offsetof(struct elem, s), 4, 0, 0, NULL },
	{ "i", LS_CF_INT, offsetof(struct elem, i), 0, 0, 0, NULL },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};
static const struct ls_conf_section schema[] = {
	{ "", sect_fields, offsetof(struct conf, root), NULL },
	{ "t", sect_fields, offsetof(struct conf, t), NULL },
	{ "e", elem_fields, 0, add },
	{ NULL, NULL, 0, NULL },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *text = malloc(len + 1);
	struct conf c;
	char err[256];

	if (!text)
		return 0;
	memcpy(text, data, len);
	text[len] = '\0';
	memset(&c, 0, sizeof(c));
	err[0] = '\0';
	int r = ls_conf_load_string(text, "f", schema, &c, err, sizeof(err));
	if (r != 0 && (r != -1 || strncmp(err, "f:", 2) != 0 || strchr(err, '\n')))
		abort();
	free(text);
	return 0;
}
