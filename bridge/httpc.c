#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpc.h"
#include "log.h"
#include "metrics.h"

struct httpc {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct req *reqs; /* in flight, doubly linked */
	size_t npending;
	int closing;
};

struct req {
	struct httpc *c;
	struct req *prev, *next;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body_out;
	char *buf;
	size_t len, cap, max;
	char *hbuf;
	size_t hlen, hcap;
	int too_big;
	httpc_cb cb;
	void *ud;
	char errbuf[CURL_ERROR_SIZE];
};

struct sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct httpc *c;
};

static int grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 1024;
	while (n < need)
		n *= 2;
	char *g = realloc(*p, n);
	if (!g)
		return -1;
	*p = g;
	*cap = n;
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	size_t n = size * nmemb;
	if (r->len + n > r->max) {
		r->too_big = 1;
		return 0;
	}
	if (grow(&r->buf, &r->cap, r->len + n + 1) != 0)
		return 0;
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	size_t n = size * nmemb;
	/* A new status line starts a new header block (after 100 Continue or a redirect). */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		r->hlen = 0;
	if (r->hlen + n > 256 * 1024 || grow(&r->hbuf, &r->hcap, r->hlen + n + 1) != 0)
		return 0;
	memcpy(r->hbuf + r->hlen, data, n);
	r->hlen += n;
	r->hbuf[r->hlen] = '\0';
	return n;
}

static void req_free(struct req *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->body_out);
	free(r->buf);
	free(r->hbuf);
	free(r);
}

static void unlink_req(struct req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		r->c->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->c->npending--;
}

static void finish(struct req *r, CURLcode code, const char *cancel_reason)
{
	struct httpc_response resp = {0};
	curl_multi_remove_handle(r->c->multi, r->easy);
	unlink_req(r);
	if (!cancel_reason && code == CURLE_OK)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
	curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &resp.seconds);
	resp.body = r->buf ? r->buf : "";
	resp.body_len = r->len;
	resp.headers = r->hbuf ? r->hbuf : "";
	if (cancel_reason) {
		err_set(&resp.err, "%s", cancel_reason);
	} else if (code != CURLE_OK) {
		resp.status = 0;
		if (r->too_big)
			err_set(&resp.err, "response larger than %zu bytes", r->max);
		else
			err_set(&resp.err, "%s",
			        r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
		resp.err.retryable = !r->too_big;
	}
	if (resp.status == 0)
		metrics.http_client_net_err++;
	else if (resp.status >= 400)
		metrics.http_client_http_err++;
	else
		metrics.http_client_ok++;
	r->cb(&resp, r->ud);
	req_free(r);
}

static void check_done(struct httpc *c)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct req *r = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		CURLcode code = m->data.result;
		if (r)
			finish(r, code, NULL);
	}
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct sock *s = p->data;
	int flags = 0, running;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	CURLMcode rc = curl_multi_socket_action(s->c->multi, s->fd, flags, &running);
	if (rc != CURLM_OK)
		log_error("httpc", "curl_multi_socket_action failed", "error",
		          curl_multi_strerror(rc));
	check_done(s->c);
}

static void on_sock_closed(uv_handle_t *h)
{
	free(h->data);
}

static int on_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
	struct httpc *c = userp;
	struct sock *s = socketp;
	if (action == CURL_POLL_REMOVE) {
		if (s) {
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, on_sock_closed);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->fd = fd;
		s->c = c;
		int rc = uv_poll_init_socket(c->loop, &s->poll, fd);
		if (rc != 0) {
			char n[16];
			log_error("httpc", "cannot watch socket", "error", uv_strerror(rc), "fd",
			          LOG_NUM(n, "%d", (int)fd));
			free(s);
			return -1;
		}
		s->poll.data = s;
		curl_multi_assign(c->multi, fd, s);
	}
	int ev = 0;
	if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
		ev |= UV_READABLE;
	if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&s->poll, ev, on_poll);
	return 0;
}

static void on_timer(uv_timer_t *t)
{
	struct httpc *c = t->data;
	int running;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *c = userp;
	if (timeout_ms < 0)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

struct httpc *httpc_new(uv_loop_t *loop, struct err *err)
{
	static int global_done;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			err_set(err, "curl_global_init failed");
			return NULL;
		}
		global_done = 1;
	}
	struct httpc *c = calloc(1, sizeof(*c));
	if (!c || !(c->multi = curl_multi_init())) {
		free(c);
		err_set(err, "out of memory");
		return NULL;
	}
	c->loop = loop;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

int httpc_is_loopback_url(const char *url)
{
	const char *h = strstr(url, "://");
	if (!h)
		return 0;
	h += 3;
	const char *at = strchr(h, '@'), *slash = strchr(h, '/');
	if (at && (!slash || at < slash))
		h = at + 1;
	if (strncmp(h, "127.", 4) == 0 || strncmp(h, "[::1]", 5) == 0)
		return 1;
	return strncmp(h, "localhost", 9) == 0 && (h[9] == '\0' || h[9] == ':' || h[9] == '/');
}

int httpc_send(struct httpc *c, const struct httpc_request *q, httpc_cb cb, void *ud,
               struct err *err)
{
	if (c->closing)
		return err_set(err, "HTTP client is shutting down");
	if (strncmp(q->url, "https://", 8) != 0 &&
	    !(strncmp(q->url, "http://", 7) == 0 && httpc_is_loopback_url(q->url)))
		return err_set(err, "refusing %.*s: only https, or plain http to loopback",
		               (int)strcspn(q->url, "?"), q->url);
	struct req *r = calloc(1, sizeof(*r));
	if (!r || !(r->easy = curl_easy_init())) {
		free(r);
		return err_set(err, "out of memory");
	}
	r->c = c;
	r->cb = cb;
	r->ud = ud;
	r->max = q->max_body ? q->max_body : 16u * 1024 * 1024;
	CURL *e = r->easy;
	curl_easy_setopt(e, CURLOPT_URL, q->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, q->timeout_ms > 0 ? q->timeout_ms : 30000L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "cohortbridge");
	if (q->method && strcmp(q->method, "GET") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
	if (q->body) {
		r->body_out = malloc(q->body_len + 1);
		if (!r->body_out) {
			req_free(r);
			return err_set(err, "out of memory");
		}
		memcpy(r->body_out, q->body, q->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body_out);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
	}
	for (const char *const *h = q->headers; h && *h; h++) {
		struct curl_slist *n = curl_slist_append(r->hdrs, *h);
		if (!n) {
			req_free(r);
			return err_set(err, "out of memory");
		}
		r->hdrs = n;
	}
	if (r->hdrs)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	r->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	c->npending++;
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		unlink_req(r);
		req_free(r);
		return err_set(err, "curl_multi_add_handle failed");
	}
	return 0;
}

size_t httpc_pending(const struct httpc *c)
{
	return c->npending;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct httpc *c = h->data;
	curl_multi_cleanup(c->multi);
	free(c);
}

void httpc_close(struct httpc *c)
{
	if (!c || c->closing)
		return;
	c->closing = 1;
	while (c->reqs)
		finish(c->reqs, CURLE_OK, "cancelled: shutting down");
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

const char *httpc_header(const struct httpc_response *resp, const char *name, char *buf,
                         size_t size)
{
	size_t nl = strlen(name);
	for (const char *l = resp->headers; l && *l;) {
		const char *eol = strchr(l, '\n');
		size_t ll = eol ? (size_t)(eol - l) : strlen(l);
		if (ll > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			const char *v = l + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = (size_t)(l + ll - v);
			while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
				vl--;
			if (vl >= size)
				vl = size - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return buf;
		}
		l = eol ? eol + 1 : l + ll;
	}
	return NULL;
}
