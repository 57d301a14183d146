/* The fake sources' plumbing: routing under /canvas, /moodle and /pretix, their clock, faults,
 * the request log, and the /_sim/sources control API. Canvas, Moodle and pretix themselves
 * live in sources_canvas.c, sources_moodle.c and sources_pretix.c, the campus they share in
 * sources_campus.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sources.h"

struct campus campus;
struct src_throttle src_throttle[SRC_COUNT];

#define LOG_KEEP 200 /* request lines kept for GET /_sim/sources/requests */

static const char *const src_names[SRC_COUNT] = {"canvas", "moodle", "pretix", "files"};

/* A fault applies to a share of a source's requests, at most count of them (-1: no limit). */
struct src_fault {
	bool on;
	unsigned latency_ms;
	int status;
	double share;
	long count;
	bool truncate;
	const char *ctype;
	long huge_mb;
};

/* What an answer under way holds until it is done. */
struct src_pending {
	enum src_kind kind;
	double upfront;
};

static struct {
	uint64_t clock_ms;
	uint64_t rng;
	struct src_fault fault[SRC_COUNT];
	long count[SRC_COUNT];
	long faults_applied[SRC_COUNT];
	int in_flight[SRC_COUNT], max_in_flight[SRC_COUNT];
	json_t *log;
	json_t *interned;
} st;

/* --- small tools --- */

json_t *jarr(json_t *o, const char *k)
{
	json_t *a = json_object_get(o, k);
	if (json_is_array(a) || !json_is_object(o))
		return a;
	a = json_array();
	json_object_set_new(o, k, a);
	return a;
}

json_int_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (json_is_string(v))
		return (json_int_t)src_long(json_string_value(v));
	return json_integer_value(v);
}

const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

long src_long(const char *s)
{
	if (!s || !*s)
		return -1;
	char *end;
	long n = strtol(s, &end, 10);
	return *end || n < 0 ? -1 : n;
}

const char *src_intern(const char *s)
{
	json_t *v = json_object_get(st.interned, s);
	if (!v) {
		v = json_string(s);
		json_object_set_new(st.interned, s, v);
	}
	return json_string_value(v);
}

void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *g = realloc(b->s, cap);
		if (!g)
			return;
		b->s = g;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

void sb_fmt(struct sbuf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		sb_add(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big)
		return;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb_add(b, big, (size_t)n);
	free(big);
}

char *sb_take(struct sbuf *b)
{
	char *s = b->s ? b->s : strdup("");
	memset(b, 0, sizeof(*b));
	return s;
}

/* --- query strings and form bodies --- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The text from s to end, with %XX and '+' undone when form. */
static char *decode(const char *s, const char *end, bool form)
{
	size_t n = (size_t)(end - s), o = 0;
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	for (const char *p = s; p < end; p++) {
		if (form && *p == '+')
			out[o++] = ' ';
		else if (form && *p == '%' && end - p > 2 && hexval(p[1]) >= 0 &&
		         hexval(p[2]) >= 0) {
			out[o++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
			p += 2;
		} else
			out[o++] = *p;
	}
	out[o] = '\0';
	return out;
}

void srcp_add(struct src_params *p, const char *k, const char *v)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		char **nk = realloc(p->k, cap * sizeof(*nk));
		if (!nk)
			return;
		p->k = nk;
		char **nv = realloc(p->v, cap * sizeof(*nv));
		if (!nv)
			return;
		p->v = nv;
		p->cap = cap;
	}
	p->k[p->n] = strdup(k);
	p->v[p->n] = strdup(v);
	p->n++;
}

void srcp_parse(struct src_params *p, const char *s, size_t len, bool form)
{
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && s[j] != '&')
			j++;
		if (j > i) {
			const char *eq = memchr(s + i, '=', j - i);
			char *k = decode(s + i, eq ? eq : s + j, form);
			char *v = eq ? decode(eq + 1, s + j, form) : strdup("");
			if (k && v)
				srcp_add(p, k, v);
			free(k);
			free(v);
		}
		i = j + 1;
	}
}

void srcp_free(struct src_params *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->k[i]);
		free(p->v[i]);
	}
	free(p->k);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

const char *srcp_get(const struct src_params *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->k[i], key) == 0)
			return p->v[i];
	return NULL;
}

bool srcp_has(const struct src_params *p, const char *key, const char *value)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->k[i], key) == 0 && strcmp(p->v[i], value) == 0)
			return true;
	return false;
}

static void encode_into(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.' || *c == '~') {
			sb_add(b, (const char *)c, 1);
		} else {
			char e[3] = {'%', hex[*c >> 4], hex[*c & 15]};
			sb_add(b, e, 3);
		}
	}
}

void srcp_encode(const struct src_params *p, const char *const *skip, char *buf, size_t size)
{
	struct sbuf b = {0};
	for (size_t i = 0; i < p->n; i++) {
		bool skipped = false;
		for (const char *const *s = skip; s && *s; s++)
			skipped = skipped || strcmp(*s, p->k[i]) == 0;
		if (skipped)
			continue;
		if (b.len)
			sb_add(&b, "&", 1);
		encode_into(&b, p->k[i]);
		sb_add(&b, "=", 1);
		encode_into(&b, p->v[i]);
	}
	char *s = sb_take(&b);
	snprintf(buf, size, "%s", s);
	free(s);
}

/* --- time --- */

uint64_t src_utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return (uint64_t)timegm(&tm) * 1000;
}

/* The generated campus describes the programme as of this moment. */
static uint64_t campus_epoch(void)
{
	return src_utc(2026, 6, 1, 12, 0, 0);
}

uint64_t src_now_ms(void)
{
	uint64_t t = 0;
	if (sim.opts.seed < 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		t = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	}
	if (t <= st.clock_ms)
		t = st.clock_ms + 1;
	st.clock_ms = t;
	return t;
}

uint64_t src_mono_ms(void)
{
	return uv_hrtime() / 1000000;
}

double src_rand(void)
{
	uint64_t x = st.rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	st.rng = x;
	return (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

void src_iso(uint64_t ms, char *buf, size_t size, int frac)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac)
		snprintf(buf + n, size - n, ".%03u000Z", (unsigned)(ms % 1000));
	else
		snprintf(buf + n, size - n, "Z");
}

json_t *src_iso_json(uint64_t ms, int frac)
{
	char b[40];
	src_iso(ms, b, sizeof(b), frac);
	return json_string(b);
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int src_parse_iso(const char *s, uint64_t *ms)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	if (!s || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		return -1;
	if (*p == 'T' || *p == 't' || (*p == ' ' && p[1] && p[2] && p[3] != ':')) {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec))
				return -1;
			if (*p == '.' || *p == ',') {
				p++;
				int scale = 100;
				while (*p >= '0' && *p <= '9') {
					frac += (*p - '0') * scale;
					scale /= 10;
					p++;
				}
			}
		}
	}
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-' || *p == ' ') {
		/* a '+' arrives as a space when the client did not percent-encode it */
		int sign = *p == '-' ? -1 : 1, oh, om = 0;
		p++;
		if (digits(&p, 2, &oh))
			return -1;
		if (*p == ':')
			p++;
		if (*p && digits(&p, 2, &om))
			return -1;
		off = sign * (oh * 3600L + om * 60L);
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	int64_t t = (int64_t)src_utc(y, mo, d, h, mi, sec) - off * 1000 + frac;
	if (t < 0)
		return -1;
	*ms = (uint64_t)t;
	return 0;
}

/* --- answers --- */

void src_text(struct src_req *r, int status, const char *ctype, char *text)
{
	r->rs->status = status;
	json_decref(r->rs->body);
	r->rs->body = NULL;
	free(r->rs->text);
	r->rs->text = text;
	r->rs->ctype = ctype;
}

void src_json(struct src_req *r, int status, json_t *body, size_t flags)
{
	char *text = json_dumps(body, JSON_COMPACT | flags);
	json_decref(body);
	src_text(r, status,
	         r->kind == SRC_PRETIX ? "application/json" : "application/json; charset=utf-8",
	         text ? text : strdup("null"));
}

void src_header(struct src_req *r, const char *fmt, ...)
{
	size_t n = strlen(r->rs->headers);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->rs->headers + n, sizeof(r->rs->headers) - n, fmt, ap);
	va_end(ap);
}

/* --- faults --- */

static const char *reason(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Temporarily Unavailable";
	case 504:
		return "Gateway Time-out";
	default:
		return "Error";
	}
}

/* What a proxy in front of the source says when the source is down. */
static void fault_status(struct src_req *r, int status)
{
	struct sbuf b = {0};
	sb_fmt(&b,
	       "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d "
	       "%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
	       status, reason(status), status, reason(status));
	src_text(r, status, "text/html", sb_take(&b));
	if (status == 429 || status == 503)
		src_header(r, "Retry-After: 1\r\n");
}

/* A body of about mb MiB that parses: padding records in the source's own envelope. */
static char *huge_body(struct src_req *r, long mb)
{
	size_t target = (size_t)mb * 1024 * 1024;
	bool xml = r->rs->ctype && strstr(r->rs->ctype, "xml");
	struct sbuf b = {0};
	char pad[1001];
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	long i = 0;
	if (xml)
		sb_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<RESPONSE>\n<MULTIPLE>\n");
	else
		sb_str(&b, r->kind == SRC_PRETIX ? "{\"results\":[" : "[");
	for (; b.len < target; i++) {
		if (xml)
			sb_fmt(&b,
			       "<SINGLE>\n<KEY name=\"id\"><VALUE>%ld</VALUE>\n</KEY>\n<KEY "
			       "name=\"padding\"><VALUE>%s</VALUE>\n</KEY>\n</SINGLE>\n",
			       i + 1, pad);
		else
			sb_fmt(&b, "%s{\"id\":%ld,\"padding\":\"%s\"}", i ? "," : "", i + 1, pad);
	}
	if (xml)
		sb_str(&b, "</MULTIPLE>\n</RESPONSE>\n");
	else if (r->kind == SRC_PRETIX)
		sb_fmt(&b, "],\"count\":%ld,\"next\":null,\"previous\":null}", i);
	else
		sb_str(&b, "]");
	return sb_take(&b);
}

/* An HTML page where data was expected: what a single sign-on proxy answers. */
static const char login_page[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Sign in</title>"
    "</head>\n<body>\n<h1>Sign in to continue</h1>\n<form method=\"post\" action=\"/login\">"
    "<input name=\"username\"><input name=\"password\" type=\"password\">"
    "<button>Sign in</button></form>\n</body>\n</html>\n";

static struct src_fault *pick_fault(enum src_kind k)
{
	struct src_fault *f = &st.fault[k];
	if (!f->on || f->count == 0)
		return NULL;
	if (f->share < 1 && src_rand() >= f->share)
		return NULL;
	if (f->count > 0)
		f->count--;
	st.faults_applied[k]++;
	return f;
}

static json_t *fault_json(enum src_kind k)
{
	struct src_fault *f = &st.fault[k];
	struct src_throttle *t = &src_throttle[k];
	json_t *o = json_object();
	if (f->on) {
		json_object_set_new(o, "latency_ms", json_integer(f->latency_ms));
		json_object_set_new(o, "status", json_integer(f->status));
		json_object_set_new(o, "share", json_real(f->share));
		json_object_set_new(o, "count",
		                    f->count < 0 ? json_null() : json_integer(f->count));
		json_object_set_new(o, "truncate", json_boolean(f->truncate));
		json_object_set_new(o, "content_type",
		                    f->ctype ? json_string(f->ctype) : json_null());
		json_object_set_new(o, "huge_mb", json_integer(f->huge_mb));
	}
	json_object_set_new(o, "applied", json_integer(st.faults_applied[k]));
	if (k == SRC_CANVAS)
		json_object_set_new(o, "throttle",
		                    json_pack("{s:f, s:f, s:f, s:o, s:f}", "bucket", t->bucket,
		                              "refill", t->refill, "upfront", t->upfront, "cost",
		                              t->cost < 0 ? json_null() : json_real(t->cost),
		                              "remaining", t->bucket - t->used - t->held));
	else if (k == SRC_PRETIX)
		json_object_set_new(o, "throttle",
		                    json_pack("{s:I, s:I}", "limit", (json_int_t)t->limit,
		                              "window_s", (json_int_t)t->window_s));
	return o;
}

static void throttle_defaults(enum src_kind k)
{
	struct src_throttle *t = &src_throttle[k];
	memset(t, 0, sizeof(*t));
	/* Canvas: a bucket of 700 that leaks 10 a second; 50 held while a request is under way */
	t->bucket = 700;
	t->refill = 10;
	t->upfront = 50;
	t->cost = -1;
	/* pretix: off; the window when a limit is set */
	t->window_s = 60;
}

/* --- requests --- */

int src_route(const char *path)
{
	static const char *const prefixes[] = {"/canvas", "/moodle", "/pretix", "/files"};
	for (size_t i = 0; i < 4; i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(path, prefixes[i], n) == 0 && (path[n] == '/' || !path[n]))
			return 1;
	}
	return 0;
}

static void pending_done(void *arg)
{
	struct src_pending *p = arg;
	st.in_flight[p->kind]--;
	if (p->upfront > 0) {
		canvas_leak();
		src_throttle[p->kind].held -= p->upfront;
		if (src_throttle[p->kind].held < 0)
			src_throttle[p->kind].held = 0;
	}
	free(p);
}

/* Parameters from..to as "k=v&k=v", without Moodle's token. */
static json_t *params_text(struct src_req *r, size_t from, size_t to)
{
	struct sbuf q = {0};
	for (size_t i = from; i < to; i++) {
		if (q.len)
			sb_add(&q, "&", 1);
		sb_fmt(&q, "%s=%s", r->q.k[i],
		       strcmp(r->q.k[i], "wstoken") == 0 ? "<redacted>" : r->q.v[i]);
	}
	char *text = sb_take(&q);
	json_t *j = json_string(text);
	free(text);
	return j ? j : json_string("");
}

/* The request line for the log: the query as lws decoded it, and a form body's fields. */
static json_t *log_entry(struct src_req *r, size_t query_params)
{
	char at[40];
	src_iso(r->now, at, sizeof(at), 1);
	json_t *e = json_pack("{s:s, s:s, s:s, s:n, s:s, s:i}", "source", src_names[r->kind],
	                      "method", r->rq->method, "path", r->rq->path, "query", "at", at,
	                      "in_flight", st.in_flight[r->kind]);
	if (r->rq->query)
		json_object_set_new(e, "query", params_text(r, 0, query_params));
	if (query_params < r->q.n)
		json_object_set_new(e, "form", params_text(r, query_params, r->q.n));
	return e;
}

void src_handle(struct http_req *rq, struct http_resp *rs)
{
	struct src_req r;
	memset(&r, 0, sizeof(r));
	r.rq = rq;
	r.rs = rs;
	r.kind = strncmp(rq->path, "/canvas", 7) == 0   ? SRC_CANVAS
	         : strncmp(rq->path, "/moodle", 7) == 0 ? SRC_MOODLE
	         : strncmp(rq->path, "/pretix", 7) == 0 ? SRC_PRETIX
	                                                : SRC_FILES;
	r.sub = rq->path + (r.kind == SRC_FILES ? 6 : 7);
	r.now = src_now_ms();
	if (rq->query)
		srcp_parse(&r.q, rq->query, strlen(rq->query), false);
	size_t query_params = r.q.n;
	bool json_body = (rq->content_type && strstr(rq->content_type, "json")) ||
	                 (!rq->content_type && rq->raw_len && rq->raw_body[0] == '{');
	if (rq->raw_len && !json_body)
		srcp_parse(&r.q, rq->raw_body, rq->raw_len, true);
	if (rq->host && strlen(rq->host) < 128)
		snprintf(r.base, sizeof(r.base), "http://%s", rq->host);
	else
		snprintf(r.base, sizeof(r.base), "http://%s:%d", sim.opts.listen_host, sim.port);
	st.count[r.kind]++;
	st.in_flight[r.kind]++;
	if (st.in_flight[r.kind] > st.max_in_flight[r.kind])
		st.max_in_flight[r.kind] = st.in_flight[r.kind];

	json_t *entry = log_entry(&r, query_params);
	struct src_fault *f = pick_fault(r.kind);
	if (f && f->latency_ms)
		rs->delay_ms = f->latency_ms;
	if (f && f->status) {
		fault_status(&r, f->status);
	} else {
		if (r.kind == SRC_CANVAS)
			canvas_handle(&r);
		else if (r.kind == SRC_MOODLE)
			moodle_handle(&r);
		else if (r.kind == SRC_PRETIX)
			pretix_handle(&r);
		else
			files_handle(&r);
		if (!rs->text)
			src_text(&r, rs->status ? rs->status : 500, "text/plain", strdup(""));
	}
	if (f && !f->status) {
		if (f->huge_mb > 0)
			src_text(&r, rs->status, rs->ctype, huge_body(&r, f->huge_mb));
		if (f->ctype)
			src_text(&r, rs->status, f->ctype, strdup(login_page));
		if (f->truncate && rs->text)
			rs->text[strlen(rs->text) / 2] = '\0';
	}
	json_object_set_new(entry, "status", json_integer(rs->status));
	if (r.function)
		json_object_set_new(entry, "function", json_string(r.function));
	json_array_append_new(st.log, entry);
	if (json_array_size(st.log) > LOG_KEEP)
		json_array_remove(st.log, 0);

	struct src_pending *p = malloc(sizeof(*p));
	if (p) {
		p->kind = r.kind;
		p->upfront = r.upfront;
		rs->on_done = pending_done;
		rs->done_arg = p;
	} else {
		st.in_flight[r.kind]--;
	}
	srcp_free(&r.q);
}

/* --- life cycle --- */

static long campus_seed(void)
{
	return sim.opts.seed >= 0 ? sim.opts.seed : 0;
}

static int load_campus(int learners, char *err, size_t errsize)
{
	json_t *root;
	if (sim.opts.sources_file && learners < 0) {
		json_error_t je;
		root = json_load_file(sim.opts.sources_file, 0, &je);
		if (!root) {
			snprintf(err, errsize, "cannot load sources file %s: %s (line %d)",
			         sim.opts.sources_file, je.text, je.line);
			return -1;
		}
	} else {
		root = campus_generate(campus_seed(), learners < 0 ? sim.opts.learners : learners);
	}
	return campus_adopt(root, err, errsize);
}

static void clear_state(void)
{
	for (int k = 0; k < SRC_COUNT; k++) {
		memset(&st.fault[k], 0, sizeof(st.fault[k]));
		throttle_defaults((enum src_kind)k);
		st.count[k] = 0;
		st.faults_applied[k] = 0;
		st.max_in_flight[k] = st.in_flight[k];
	}
	json_array_clear(st.log);
	st.clock_ms = campus_epoch();
	st.rng = (uint64_t)campus_seed() * 0x9E3779B97F4A7C15ull + 0x5bd1e995ull;
}

int src_init(char *err, size_t errsize)
{
	st.log = json_array();
	st.interned = json_object();
	clear_state();
	if (sim.opts.canvas_mocks && canvas_mocks_load(sim.opts.canvas_mocks, err, errsize) != 0)
		return -1;
	for (int i = 0; i < sim.opts.nfiles_dirs; i++)
		if (files_load(sim.opts.files_dirs[i], err, errsize) != 0)
			return -1;
	return load_campus(-1, err, errsize);
}

void src_free(void)
{
	campus_free();
	canvas_mocks_free();
	files_free();
	json_decref(st.log);
	json_decref(st.interned);
	st.log = st.interned = NULL;
}

void src_reset(void)
{
	char err[512];
	campus_free();
	clear_state();
	if (load_campus(-1, err, sizeof(err)) != 0) {
		fprintf(stderr, "discord-sim: %s\n", err);
		campus_adopt(json_object(), err, sizeof(err));
	}
}

/* --- the control API --- */

static void ctl_ok(struct http_resp *rs, int status, json_t *body)
{
	rs->status = status;
	json_decref(rs->body);
	rs->body = body;
}

static void ctl_bad(struct http_resp *rs, int status, const char *msg)
{
	ctl_ok(rs, status, json_pack("{s:s}", "error", msg));
}

void src_ctl_dump(struct http_resp *rs)
{
	ctl_ok(rs, 200, json_incref(campus.root));
}

static const char *const fault_keys[] = {"latency_ms", "status",       "share",   "count",
                                         "truncate",   "content_type", "huge_mb", NULL};

static int set_fault(struct src_fault *f, json_t *b, char *err, size_t errsize)
{
	struct src_fault n = {0};
	n.on = true;
	n.share = 1;
	n.count = -1;
	json_t *v;
	if ((v = json_object_get(b, "latency_ms")))
		n.latency_ms = (unsigned)json_integer_value(v);
	if ((v = json_object_get(b, "status"))) {
		n.status = (int)json_integer_value(v);
		if (n.status < 100 || n.status > 599) {
			snprintf(err, errsize, "status is an HTTP status (100 to 599)");
			return -1;
		}
	}
	if ((v = json_object_get(b, "share"))) {
		n.share = json_number_value(v);
		if (n.share < 0 || n.share > 1) {
			snprintf(err, errsize, "share is 0 to 1");
			return -1;
		}
	}
	if ((v = json_object_get(b, "count")) && !json_is_null(v))
		n.count = (long)json_integer_value(v);
	n.truncate = json_is_true(json_object_get(b, "truncate"));
	if ((v = json_object_get(b, "content_type")) && json_is_string(v))
		n.ctype = src_intern(json_string_value(v));
	if ((v = json_object_get(b, "huge_mb"))) {
		n.huge_mb = (long)json_integer_value(v);
		if (n.huge_mb < 0 || n.huge_mb > 512) {
			snprintf(err, errsize, "huge_mb is 0 to 512");
			return -1;
		}
	}
	*f = n;
	return 0;
}

static int set_throttle(enum src_kind k, json_t *t, char *err, size_t errsize)
{
	struct src_throttle *th = &src_throttle[k];
	json_t *v;
	if (k == SRC_CANVAS) {
		canvas_leak();
		if ((v = json_object_get(t, "bucket")))
			th->bucket = json_number_value(v);
		if ((v = json_object_get(t, "refill")))
			th->refill = json_number_value(v);
		if ((v = json_object_get(t, "upfront")))
			th->upfront = json_number_value(v);
		if ((v = json_object_get(t, "cost")))
			th->cost = json_is_null(v) ? -1 : json_number_value(v);
		if ((v = json_object_get(t, "used")))
			th->used = json_number_value(v);
		if (th->bucket < 0 || th->refill < 0 || th->upfront < 0) {
			snprintf(err, errsize, "bucket, refill and upfront are not negative");
			return -1;
		}
	} else if (k == SRC_PRETIX) {
		if ((v = json_object_get(t, "limit")))
			th->limit = (long)json_integer_value(v);
		if ((v = json_object_get(t, "window_s")))
			th->window_s = (long)json_integer_value(v);
		if (th->window_s < 1)
			th->window_s = 1;
		th->window_count = 0;
		th->window_start = 0;
	}
	return 0;
}

void src_ctl_faults(struct http_req *rq, struct http_resp *rs)
{
	json_t *b = rq->body;
	char err[128];
	if (strcmp(rq->method, "DELETE") == 0) {
		for (int k = 0; k < SRC_COUNT; k++) {
			memset(&st.fault[k], 0, sizeof(st.fault[k]));
			double held = src_throttle[k].held;
			throttle_defaults((enum src_kind)k);
			src_throttle[k].held = held;
		}
		ctl_ok(rs, 204, NULL);
		return;
	}
	if (!json_is_object(b)) {
		ctl_bad(rs, 400, "needs a JSON object; see tests/sim/README.md");
		return;
	}
	const char *source = jstr(b, "source");
	int from = 0, to = SRC_COUNT;
	if (source && strcmp(source, "all") != 0) {
		from = -1;
		for (int k = 0; k < SRC_COUNT; k++)
			if (strcmp(source, src_names[k]) == 0)
				from = k;
		if (from < 0) {
			ctl_bad(rs, 400, "source is canvas, moodle, pretix, files or all");
			return;
		}
		to = from + 1;
	}
	bool has_fault = false;
	for (const char *const *k = fault_keys; *k; k++)
		has_fault = has_fault || json_object_get(b, *k);
	json_t *throttle = json_object_get(b, "throttle");
	for (int k = from; k < to; k++) {
		if (has_fault && set_fault(&st.fault[k], b, err, sizeof(err)) != 0) {
			ctl_bad(rs, 400, err);
			return;
		}
		if (json_is_object(throttle) &&
		    set_throttle((enum src_kind)k, throttle, err, sizeof(err)) != 0) {
			ctl_bad(rs, 400, err);
			return;
		}
	}
	json_t *out = json_object();
	for (int k = 0; k < SRC_COUNT; k++)
		json_object_set_new(out, src_names[k], fault_json((enum src_kind)k));
	ctl_ok(rs, 200, out);
}

void src_ctl_learners(struct http_req *rq, struct http_resp *rs)
{
	json_t *n = json_object_get(rq->body, "learners");
	char err[256];
	if (!json_is_integer(n) || json_integer_value(n) < 0 || json_integer_value(n) > 100000) {
		ctl_bad(rs, 400, "needs {\"learners\": N}, 0 to 100000");
		return;
	}
	campus_free();
	if (load_campus((int)json_integer_value(n), err, sizeof(err)) != 0) {
		ctl_bad(rs, 500, err);
		return;
	}
	ctl_ok(rs, 200,
	       json_pack("{s:I, s:I}", "learners",
	                 (json_int_t)json_array_size(json_object_get(campus.root, "learners")),
	                 "seed", (json_int_t)campus_seed()));
}

void src_ctl_mutate(struct http_req *rq, struct http_resp *rs)
{
	json_t *report = NULL;
	char err[256];
	int status = campus_mutate(rq->body, &report, err, sizeof(err));
	if (status)
		ctl_bad(rs, status, err);
	else
		ctl_ok(rs, 200, report);
}

void src_ctl_requests(struct http_req *rq, struct http_resp *rs)
{
	if (strcmp(rq->method, "DELETE") == 0) {
		for (int k = 0; k < SRC_COUNT; k++) {
			st.count[k] = 0;
			st.max_in_flight[k] = st.in_flight[k];
		}
		json_array_clear(st.log);
		ctl_ok(rs, 204, NULL);
		return;
	}
	struct src_params q = {0};
	if (rq->query)
		srcp_parse(&q, rq->query, strlen(rq->query), false);
	const char *only = srcp_get(&q, "source");
	long last = src_long(srcp_get(&q, "last"));
	json_t *counts = json_object(), *flight = json_object(), *maxf = json_object();
	for (int k = 0; k < SRC_COUNT; k++) {
		json_object_set_new(counts, src_names[k], json_integer(st.count[k]));
		json_object_set_new(flight, src_names[k], json_integer(st.in_flight[k]));
		json_object_set_new(maxf, src_names[k], json_integer(st.max_in_flight[k]));
	}
	json_t *lines = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(st.log, i, e)
		if (!only || strcmp(only, jstr(e, "source")) == 0)
			json_array_append(lines, e);
	while (last >= 0 && json_array_size(lines) > (size_t)last)
		json_array_remove(lines, 0);
	srcp_free(&q);
	ctl_ok(rs, 200,
	       json_pack("{s:o, s:o, s:o, s:o}", "counts", counts, "in_flight", flight,
	                 "max_in_flight", maxf, "requests", lines));
}

void src_ctl_messages(const char *source, struct http_resp *rs)
{
	json_t *m = json_object_get(json_object_get(campus.root, source), "messages");
	ctl_ok(rs, 200, m ? json_incref(m) : json_array());
}
