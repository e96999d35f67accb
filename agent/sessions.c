/* lightspeed-agent: the session table and its state file (sessions.h). */
#include "sessions.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statefile.h"
#include "util.h"

#define STATE_HEADER "# lightspeed-agent sessions v1: id key game destinations\n"
#define STATE_MAX (16u << 20)

static size_t bucket(const struct sessions *t, uint32_t id)
{
	/* Ids are random: their low bits spread evenly already. */
	return id & (t->nbuckets - 1);
}

int sessions_init(struct sessions *t, const char *state_dir)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 4096;
	t->tab = calloc(t->nbuckets, sizeof(*t->tab));
	if (!t->tab)
		return -1;
	if (state_dir && state_dir[0])
		snprintf(t->path, sizeof(t->path), "%s/sessions", state_dir);
	return 0;
}

void sessions_free(struct sessions *t)
{
	while (t->head) {
		struct session *s = t->head;

		t->head = s->next;
		memset(s->key, 0, sizeof(s->key));
		free(s);
	}
	free(t->tab);
	t->tab = NULL;
	t->n = 0;
}

struct session *sessions_find(const struct sessions *t, uint32_t id)
{
	for (struct session *s = t->tab[bucket(t, id)]; s; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

bool sessions_taken(void *t, uint32_t id)
{
	return sessions_find(t, id) != NULL;
}

struct session *sessions_add(struct sessions *t, uint32_t id, const uint8_t key[LS_CTL_KEY_LEN],
			     uint8_t game_id, const struct ls_dest *dests, uint8_t ndests)
{
	struct session *s;
	size_t b;

	if (id == 0 || ndests > LS_CTL_MAX_DESTS || sessions_find(t, id))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = id;
	memcpy(s->key, key, LS_CTL_KEY_LEN);
	s->game_id = game_id;
	s->ndests = ndests;
	memcpy(s->dests, dests, ndests * sizeof(*dests));
	b = bucket(t, id);
	s->hnext = t->tab[b];
	t->tab[b] = s;
	s->next = t->head;
	if (t->head)
		t->head->prev = s;
	t->head = s;
	t->n++;
	t->dirty = true;
	return s;
}

void sessions_remove(struct sessions *t, struct session *s)
{
	struct session **pp = &t->tab[bucket(t, s->id)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (!*pp)
		return;
	*pp = s->hnext;
	if (s->prev)
		s->prev->next = s->next;
	else
		t->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	t->n--;
	t->dirty = true;
	s->gone = true;
	s->prev = s->next = s->hnext = NULL;
	memset(s->key, 0, sizeof(s->key));
	if (s->refs == 0)
		free(s);
}

void sessions_unref(struct session *s)
{
	if (--s->refs == 0 && s->gone)
		free(s);
}

int sessions_save(struct sessions *t, char *err, size_t errlen)
{
	struct ls_buf b;
	char hex[2 * LS_CTL_KEY_LEN + 1], d[64];
	int rc;

	if (!t->path[0] || !t->dirty)
		return 0;
	ls_buf_init(&b);
	ls_buf_append(&b, STATE_HEADER, strlen(STATE_HEADER));
	for (const struct session *s = t->head; s; s = s->next) {
		ls_hex_encode(s->key, LS_CTL_KEY_LEN, hex);
		ls_buf_printf(&b, "%u %s %u ", s->id, hex, s->game_id);
		for (uint8_t i = 0; i < s->ndests; i++) {
			ls_dest_fmt(&s->dests[i], d, sizeof(d));
			ls_buf_printf(&b, "%s%s", i ? "," : "", d);
		}
		ls_buf_append(&b, "\n", 1);
	}
	if (b.oom) {
		snprintf(err, errlen, "out of memory");
		ls_buf_free(&b);
		return -1;
	}
	rc = ls_statefile_write(t->path, b.data, b.len, err, errlen);
	memset(b.data, 0, b.len);
	ls_buf_free(&b);
	if (rc == 0)
		t->dirty = false;
	return rc;
}

static int parse_line(char *line, uint32_t *id, uint8_t key[LS_CTL_KEY_LEN], uint8_t *game,
		      struct ls_dest *dests, uint8_t *ndests)
{
	char *save = NULL, *f_id = strtok_r(line, " ", &save), *f_key = strtok_r(NULL, " ", &save),
	     *f_game = strtok_r(NULL, " ", &save), *f_dests = strtok_r(NULL, " ", &save);
	uint64_t v;

	if (!f_dests || strtok_r(NULL, " ", &save))
		return -1;
	if (ls_parse_u64(f_id, UINT32_MAX, &v) < 0 || v == 0)
		return -1;
	*id = (uint32_t)v;
	if (ls_hex_decode(f_key, key, LS_CTL_KEY_LEN) < 0)
		return -1;
	if (ls_parse_u64(f_game, 3, &v) < 0)
		return -1;
	*game = (uint8_t)v;
	*ndests = 0;
	for (char *s2 = NULL, *d = strtok_r(f_dests, ",", &s2); d; d = strtok_r(NULL, ",", &s2)) {
		if (*ndests >= LS_CTL_MAX_DESTS || ls_dest_parse(d, &dests[*ndests]) < 0)
			return -1;
		(*ndests)++;
	}
	return *ndests ? 0 : -1;
}

int sessions_load(struct sessions *t, uint64_t now_us, unsigned *skipped, char *err,
		  size_t errlen)
{
	char *text, *save = NULL;
	size_t len = 0;
	int n = 0;

	*skipped = 0;
	if (!t->path[0])
		return 0;
	text = ls_statefile_read(t->path, STATE_MAX, &len, err, errlen);
	if (!text)
		return errno == ENOENT ? 0 : -1;
	ls_statefile_private(t->path);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct ls_dest dests[LS_CTL_MAX_DESTS];
		uint8_t key[LS_CTL_KEY_LEN], game, nd;
		uint32_t id;
		struct session *s;

		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (parse_line(line, &id, key, &game, dests, &nd) < 0 ||
		    !(s = sessions_add(t, id, key, game, dests, nd))) {
			(*skipped)++;
			continue;
		}
		s->detached_us = now_us;
		memset(key, 0, sizeof(key));
		n++;
	}
	memset(text, 0, len);
	free(text);
	t->dirty = false;
	return n;
}
