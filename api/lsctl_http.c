/* lsctl's HTTP client (see lsctl_http.h). libcurl's easy interface: lsctl makes one
 * request per run (or one stream), so nothing here needs to be concurrent. */
#include "lsctl_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct ls_buf *b = userdata;
	size_t n = size * nmemb;

	/* An answer beyond 64 MiB is not one this API gives: stop reading it. */
	if (b->len + n > (64u << 20))
		return 0;
	ls_buf_append(b, ptr, n);
	return b->oom ? 0 : n;
}

static CURL *easy_new(const struct lsctl_api *api, const char *method, const char *path,
		      struct curl_slist **hdrs, char *errbuf)
{
	CURL *c = curl_easy_init();
	char *url;

	if (!c)
		return NULL;
	size_t blen = strlen(api->base);
	while (blen && api->base[blen - 1] == '/')
		blen--;
	url = malloc(blen + strlen(path) + 1);
	if (!url) {
		curl_easy_cleanup(c);
		return NULL;
	}
	memcpy(url, api->base, blen);
	strcpy(url + blen, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "lsctl");
	/* The API is local: never send it through a proxy from the environment. */
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	*hdrs = curl_slist_append(*hdrs, "Accept: application/json");
	if (api->token && api->token[0]) {
		char h[512];
		snprintf(h, sizeof(h), "Authorization: Bearer %s", api->token);
		*hdrs = curl_slist_append(*hdrs, h);
	}
	return c;
}

static void answer_parse(struct lsctl_answer *ans)
{
	ans->json = ans->len ? json_loadb(ans->body, ans->len, JSON_DECODE_ANY, NULL) : NULL;
}

static enum lsctl_http_rc finish(CURL *c, CURLcode rc, const char *errbuf,
				 struct lsctl_answer *ans, struct ls_buf *b)
{
	ans->body = b->data ? b->data : strdup("");
	ans->len = b->len;
	if (rc != CURLE_OK) {
		snprintf(ans->err, sizeof(ans->err), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return LSCTL_HTTP_UNREACHABLE;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ans->status);
	answer_parse(ans);
	return LSCTL_HTTP_OK;
}

enum lsctl_http_rc lsctl_http_call(const struct lsctl_api *api, const char *method,
				   const char *path, const json_t *body, struct lsctl_answer *ans)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct ls_buf b;
	char *text = NULL;
	CURL *c;

	memset(ans, 0, sizeof(*ans));
	ls_buf_init(&b);
	c = easy_new(api, method, path, &hdrs, errbuf);
	if (!c) {
		snprintf(ans->err, sizeof(ans->err), "cannot start libcurl");
		return LSCTL_HTTP_UNREACHABLE;
	}
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, api->timeout_ms > 0 ? api->timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(c);
	enum lsctl_http_rc r = finish(c, rc, errbuf, ans, &b);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(text);
	return r;
}

void lsctl_answer_free(struct lsctl_answer *ans)
{
	free(ans->body);
	json_decref(ans->json);
	memset(ans, 0, sizeof(*ans));
}

char *lsctl_http_escape(const char *segment)
{
	char *e = curl_easy_escape(NULL, segment, 0);
	char *copy = e ? strdup(e) : NULL;

	curl_free(e);
	return copy;
}

struct stream_ctx {
	CURL *c;
	struct lsctl_sse sse;
	struct ls_buf err_body; /* the body of a refusal */
	long status;
};

static size_t on_stream(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct stream_ctx *s = userdata;
	size_t n = size * nmemb;

	if (!s->status)
		curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 200)
		return on_body(ptr, size, nmemb, &s->err_body);
	return lsctl_sse_feed(&s->sse, ptr, n) ? n : 0;
}

enum lsctl_http_rc lsctl_http_stream(const struct lsctl_api *api, const char *path,
				     lsctl_sse_fn fn, void *ctx, struct lsctl_answer *ans)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct stream_ctx s;
	enum lsctl_http_rc r;

	memset(ans, 0, sizeof(*ans));
	memset(&s, 0, sizeof(s));
	ls_buf_init(&s.err_body);
	lsctl_sse_init(&s.sse, fn, ctx);
	s.c = easy_new(api, "GET", path, &hdrs, errbuf);
	if (!s.c) {
		snprintf(ans->err, sizeof(ans->err), "cannot start libcurl");
		return LSCTL_HTTP_UNREACHABLE;
	}
	hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
	curl_easy_setopt(s.c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(s.c, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(s.c, CURLOPT_WRITEDATA, &s);
	/* The server sends a keepalive comment every 15 s: a minute of silence is a
	 * server gone away. */
	curl_easy_setopt(s.c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(s.c, CURLOPT_LOW_SPEED_TIME, 60L);
	CURLcode rc = curl_easy_perform(s.c);
	if (s.sse.stopped && rc == CURLE_WRITE_ERROR)
		rc = CURLE_OK; /* we asked to stop */
	if (rc == CURLE_OK && s.status == 200) {
		ans->status = 200;
		ans->body = strdup("");
		ls_buf_free(&s.err_body);
		r = LSCTL_HTTP_OK;
	} else {
		r = finish(s.c, rc, errbuf, ans, &s.err_body);
	}
	curl_easy_cleanup(s.c);
	curl_slist_free_all(hdrs);
	lsctl_sse_free(&s.sse);
	return r;
}
