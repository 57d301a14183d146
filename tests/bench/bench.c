/* make bench: figures for the foundation's hot paths, each with a ratio against a baseline.
 *
 *   log       a formatted logfmt line, and the cost of a disabled level (must be ~free)
 *   jpos      parsing with positions against jansson alone
 *   jtok      a GUILD_MEMBER_UPDATE dispatch tokenized by jtok, against jsmn and jansson's tree;
 *             then with the reads the gateway and the cache make of it
 *   db        round-trips queued on the loop against blocking PQexec, same server
 *   httpd     requests served by /healthz to the loop's own HTTP client
 *   firehose  discord-sim streaming pre-built dispatches to one client (target >= 1,000,000/s)
 *   chunking  discord-sim sending a 100,000-member guild through op 8 chunks (target < 2 s)
 *   ingest    the bridge's gateway client parsing GUILD_MEMBER_UPDATE dispatches from the
 *             firehose and applying them to the cache; the cache's size and the resident set
 *             with 100,000 members; then discord.js and discord.py (tests/bench/peers) on the
 *             same world and firehose, with ratios
 *   bulk      10,000 role assignments through the REST client under the `fast` preset: wall
 *             time against the floor the preset's limits allow (goal <= 1.05x), and 429s
 *   sources   `cohortbridge sync` of a 5,000-learner Canvas roster (paginated, throttled as
 *             Canvas does) and a pretix event with 5,000 orders, from discord-sim's fakes into
 *             a fresh database: first sync, then a second one (nothing changed)
 *   calendars a year of 500 weekly coaching sessions (each with one moved and one cancelled
 *             instance) expanded by ical_expand, against Debian's python3-recurring-ical-events
 *             on the same feed; the 38C3 schedule (1,007 events, frab XML) read
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
/* jsmn as jtok had it before its own tokenizer: the baseline of the jtok bench */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include <zlib.h>

#include "cache.h"
#include "db.h"
#include "gateway.h"
#include "httpc.h"
#include "httpd.h"
#include "ical.h"
#include "jpos.h"
#include "log.h"
#include "rest.h"
#include "schedule.h"

static double now_s(void)
{
	return (double)uv_hrtime() / 1e9;
}

static void bench_log(void)
{
	FILE *null = fopen("/dev/null", "w");
	log_set_stream(null);
	log_threshold = LOGL_INFO;
	int n = 200000;
	double t0 = now_s();
	for (int i = 0; i < n; i++)
		log_info("bench", "member updated", "guild", "1234567890", "user", "987654321",
		         "roles", "a b c");
	double on = now_s() - t0;
	t0 = now_s();
	for (int i = 0; i < n * 50; i++)
		log_trace("bench", "member updated", "guild", "1234567890");
	double off = now_s() - t0;
	log_set_stream(NULL);
	fclose(null);
	printf("log      %10.0f lines/s formatted   %6.2f ns per disabled call   ratio %.0fx\n",
	       n / on, off / (n * 50.0) * 1e9, (on / n) / (off / (n * 50.0)));
}

static void bench_jpos(void)
{
	/* a mapping-sized document: 5,000 cohorts with nested channels */
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	fputs("{\"cohorts\": [\n", m);
	for (int i = 0; i < 5000; i++)
		fprintf(m,
		        "%s  {\"name\": \"cohort-%d\", \"role\": \"Cohort %d\", \"time_zone\": "
		        "\"Europe/Berlin\", \"channels\": [\"general\", \"voice\"], \"ends\": "
		        "\"2027-06-30\", \"match\": {\"source\": \"canvas\", \"section\": %d}}\n",
		        i ? "," : "", i, i, 1000 + i);
	fputs("]}\n", m);
	fclose(m);
	int reps = 20;
	struct err err = {0};
	double t0 = now_s();
	for (int i = 0; i < reps; i++)
		json_decref(json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL));
	double plain = now_s() - t0;
	t0 = now_s();
	for (int i = 0; i < reps; i++)
		jdoc_free(jdoc_parse("bench.json", text, len, &err));
	double pos = now_s() - t0;
	printf("jpos     %10.1f MB/s with positions  %6.1f MB/s jansson alone     ratio %.2fx\n",
	       len * reps / pos / 1e6, len * reps / plain / 1e6, pos / plain);
	free(text);
}

/* A member update as Discord sends it (546 bytes), read the way the gateway and the cache do. */
static const char member_update[] =
    "{\"op\":0,\"s\":48213,\"t\":\"GUILD_MEMBER_UPDATE\",\"d\":{\"guild_id\":"
    "\"1098765432109876543\",\"roles\":[\"1098765432109876601\",\"1098765432109876602\","
    "\"1098765432109876617\"],\"user\":{\"id\":\"1123456789012345678\",\"username\":"
    "\"learner.0042\",\"avatar\":\"a_1b2c3d4e5f60718293a4b5c6d7e8f901\",\"discriminator\":"
    "\"0\",\"global_name\":\"Learner Forty-Two\",\"public_flags\":64},\"nick\":\"Jos\\u00e9 "
    "\\u00b7 Cohort 170\",\"avatar\":null,\"joined_at\":\"2024-09-01T12:34:56.789000+00:00\","
    "\"premium_since\":null,\"deaf\":false,\"mute\":false,\"pending\":false,"
    "\"communication_disabled_until\":null,\"flags\":2}}";

static uint64_t member_reads(const struct jtok *j)
{
	char t[64], name[128], nick[128];
	uint64_t sum = (uint64_t)jtok_int(j, jtok_get(j, 0, "op"), -1);
	int d = jtok_get(j, 0, "d");
	sum += (uint64_t)jtok_int(j, jtok_get(j, 0, "s"), -1);
	sum += (uint64_t)jtok_str(j, jtok_get(j, 0, "t"), t, sizeof(t));
	sum += jtok_u64(j, jtok_get(j, d, "guild_id"));
	int user = jtok_get(j, d, "user");
	sum += jtok_u64(j, jtok_get(j, user, "id"));
	sum += (uint64_t)jtok_str(j, jtok_get(j, user, "username"), name, sizeof(name));
	sum += (uint64_t)jtok_str(j, jtok_get(j, d, "nick"), nick, sizeof(nick));
	int roles = jtok_get(j, d, "roles");
	int e = jtok_first(j, roles);
	for (int k = 0; k < jtok_size(j, roles); k++, e = jtok_skip(j, e))
		sum += jtok_u64(j, e);
	return sum;
}

static volatile uint64_t jtok_sink;

static void bench_jtok(void)
{
	size_t len = sizeof(member_update) - 1;
	const char *name[] = {"jansson json_loadb", "jsmn (strict, parent links)", "jtok_parse",
	                      "jtok_parse + the reads of a member update"};
	double best[4] = {1e9, 1e9, 1e9, 1e9};
	int n = 100000;
	struct jtok j = {0};
	static jsmntok_t tok[256];
	/* the best of several rounds: the machine may be busy with something else */
	for (int round = 0; round < 7; round++) {
		for (int b = 0; b < 4; b++) {
			uint64_t sum = 0;
			double t0 = now_s();
			for (int i = 0; i < n; i++) {
				if (b == 0) {
					json_t *v = json_loadb(member_update, len, 0, NULL);
					sum += v != NULL;
					json_decref(v);
				} else if (b == 1) {
					jsmn_parser p;
					jsmn_init(&p);
					sum +=
					    (uint64_t)jsmn_parse(&p, member_update, len, tok, 256);
				} else {
					sum += (uint64_t)jtok_parse(&j, member_update, len) +
					       (uint64_t)j.n;
					if (b == 3)
						sum += member_reads(&j);
				}
			}
			double t = (now_s() - t0) / n;
			jtok_sink += sum;
			if (t < best[b])
				best[b] = t;
		}
	}
	jtok_free(&j);
	for (int b = 0; b < 4; b++)
		printf("jtok     %8.1f ns/message %8.1f MB/s   %s (%zu bytes)\n", best[b] * 1e9,
		       len / best[b] / 1e6, name[b], len);
	printf("jtok     ratio %.2fx jsmn/jtok_parse   %.2fx jansson/jtok_parse\n",
	       best[1] / best[2], best[0] / best[2]);
}

struct dbb {
	int left, done;
	struct db *db;
};

static void on_q(PGresult *res, const struct err *err, void *ud)
{
	struct dbb *b = ud;
	if (err) {
		fprintf(stderr, "bench: %s\n", err->msg);
		exit(1);
	}
	b->done++;
}

static void on_closed(void *ud, size_t abandoned)
{
}

static void bench_db(const char *url)
{
	int n = 20000;
	struct dbb b = {n, 0, NULL};
	struct err err = {0};
	b.db = db_open(uv_default_loop(), url, &(struct db_opts){.fail_fast = true}, &err);
	const char *p[] = {"42"};
	double t0 = now_s();
	for (int i = 0; i < n; i++)
		db_query(b.db, "SELECT $1::int + 1", 1, p, on_q, &b, &err);
	while (b.done < n)
		uv_run(uv_default_loop(), UV_RUN_ONCE);
	double loop = now_s() - t0;
	db_close(b.db, 1000, on_closed, NULL);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);

	PGconn *c = PQconnectdb(url);
	t0 = now_s();
	for (int i = 0; i < n; i++)
		PQclear(PQexecParams(c, "SELECT $1::int + 1", 1, NULL, p, NULL, NULL, 0));
	double sync = now_s() - t0;
	PQfinish(c);
	printf("db       %10.0f round-trips/s on the loop   %8.0f/s blocking PQexecParams   ratio "
	       "%.2fx\n",
	       n / loop, n / sync, sync / loop);
}

struct hb {
	struct httpc *c;
	char url[64];
	int sent, done, n, inflight;
};

static void on_resp(const struct httpc_response *r, void *ud);

static void send_one(struct hb *h)
{
	struct httpc_request rq = {.url = h->url};
	h->sent++;
	httpc_send(h->c, &rq, on_resp, h, NULL);
}

static void on_resp(const struct httpc_response *r, void *ud)
{
	struct hb *h = ud;
	if (r->status != 200) {
		fprintf(stderr, "bench: http %ld %s\n", r->status, r->err.msg);
		exit(1);
	}
	h->done++;
	if (h->sent < h->n)
		send_one(h);
}

static int health(void *ud, char **body)
{
	*body = strdup("{\"status\":\"ok\"}\n");
	return 200;
}

static void bench_httpd(void)
{
	struct err err = {0};
	struct hb h = {0};
	h.n = 5000;
	struct httpd *d = httpd_start(uv_default_loop(), "127.0.0.1", 0, health, NULL, &err);
	h.c = httpc_new(uv_default_loop(), &err);
	snprintf(h.url, sizeof(h.url), "http://127.0.0.1:%d/healthz", httpd_port(d));
	double t0 = now_s();
	for (int i = 0; i < 8; i++)
		send_one(&h);
	while (h.done < h.n)
		uv_run(uv_default_loop(), UV_RUN_ONCE);
	double t = now_s() - t0;
	httpd_stop(d);
	httpc_close(h.c);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	httpd_free(d);
	printf(
	    "httpd    %10.0f requests/s, server and client on one loop and one core, 8 in flight\n",
	    h.n / t);
}

static void bench_firehose(const char *sim_bin);
static void bench_chunking(const char *sim_bin);
static void bench_ingest(const char *sim_bin);
static void bench_bulk(const char *sim_bin);
static void bench_sources(const char *sim_bin);

/* --- calendars ------------------------------------------------------------------------------ */

/* 500 weekly sessions through 2026, in Berlin time, each with one instance moved by two hours
 * and one cancelled */
static char *coaching_year(size_t *len)
{
	char *buf = NULL;
	FILE *m = open_memstream(&buf, len);
	if (!m)
		return NULL;
	fputs("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n"
	      "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
	      "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"
	      "DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
	      "END:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
	      "TZNAME:CET\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
	      "END:STANDARD\r\nEND:VTIMEZONE\r\n",
	      m);
	for (int i = 0; i < 500; i++) {
		int day = 5 + i % 5, hour = 8 + i % 10, moved = 10 + i % 20, gone = 30 + i % 15;
		/* the nth week's date: 2026-01-(day) + 7n, as y-m-d */
		struct tm a = {.tm_year = 126, .tm_mon = 0, .tm_mday = day + 7 * moved};
		struct tm b = {.tm_year = 126, .tm_mon = 0, .tm_mday = day + 7 * gone};
		timegm(&a);
		timegm(&b);
		fprintf(m,
		        "BEGIN:VEVENT\r\nUID:session-%d@bench\r\nDTSTAMP:20260101T000000Z\r\n"
		        "DTSTART;TZID=Europe/Berlin:202601%02dT%02d0000\r\nDURATION:PT1H\r\n"
		        "RRULE:FREQ=WEEKLY;COUNT=52\r\nSUMMARY:Coaching %d\r\n"
		        "ORGANIZER:mailto:coach%d@example.org\r\n"
		        "ATTENDEE:mailto:learner%d@example.org\r\nEND:VEVENT\r\n"
		        "BEGIN:VEVENT\r\nUID:session-%d@bench\r\nDTSTAMP:20260101T000000Z\r\n"
		        "RECURRENCE-ID;TZID=Europe/Berlin:%04d%02d%02dT%02d0000\r\n"
		        "DTSTART;TZID=Europe/Berlin:%04d%02d%02dT%02d0000\r\nDURATION:PT1H\r\n"
		        "SUMMARY:Coaching %d (moved)\r\nEND:VEVENT\r\n"
		        "BEGIN:VEVENT\r\nUID:session-%d@bench\r\nDTSTAMP:20260101T000000Z\r\n"
		        "RECURRENCE-ID;TZID=Europe/Berlin:%04d%02d%02dT%02d0000\r\n"
		        "DTSTART;TZID=Europe/Berlin:%04d%02d%02dT%02d0000\r\nDURATION:PT1H\r\n"
		        "STATUS:CANCELLED\r\nSUMMARY:Coaching %d\r\nEND:VEVENT\r\n",
		        i, day, hour, i, i % 40, i, i, a.tm_year + 1900, a.tm_mon + 1, a.tm_mday,
		        hour, a.tm_year + 1900, a.tm_mon + 1, a.tm_mday, hour + 2, i, i,
		        b.tm_year + 1900, b.tm_mon + 1, b.tm_mday, hour, b.tm_year + 1900,
		        b.tm_mon + 1, b.tm_mday, hour, i);
	}
	fputs("END:VCALENDAR\r\n", m);
	fclose(m);
	return buf;
}

static const char py_peer[] =
    "import sys, time, datetime, icalendar, recurring_ical_events\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "best = None\n"
    "for _ in range(3):\n"
    "    t = time.perf_counter()\n"
    "    cal = icalendar.Calendar.from_ical(data)\n"
    "    n = len(recurring_ical_events.of(cal).between(datetime.date(2026, 1, 1), "
    "datetime.date(2027, 1, 1)))\n"
    "    t = time.perf_counter() - t\n"
    "    best = t if best is None or t < best else best\n"
    "print(n, best)\n";

static void bench_calendars(void)
{
	size_t len = 0;
	char *feed = coaching_year(&len);
	if (!feed)
		return;
	struct tm f = {.tm_year = 126, .tm_mday = 1}, t = {.tm_year = 127, .tm_mday = 1};
	struct ical_opts o = {.feed = "bench", .from = timegm(&f), .to = timegm(&t)};
	struct err err = {0};
	double best = 1e9;
	size_t n = 0, cancelled = 0;
	for (int r = 0; r < 5; r++) {
		double t0 = now_s();
		json_t *all = ical_expand(feed, len, &o, &err);
		double dt = now_s() - t0;
		if (!all) {
			printf("calendars  ical_expand failed: %s\n", err.msg);
			free(feed);
			return;
		}
		n = json_array_size(all);
		cancelled = 0;
		size_t i;
		json_t *x;
		json_array_foreach(all, i, x)
			cancelled += strcmp(json_string_value(json_object_get(x, "status")),
			                    "CANCELLED") == 0;
		json_decref(all);
		if (dt < best)
			best = dt;
	}
	printf("calendars  500 weekly sessions for a year (%zu KB): %zu instances (%zu cancelled) "
	       "in %.1f ms (best of 5)\n",
	       len / 1024, n, cancelled, best * 1000);
	/* the same feed through python3-recurring-ical-events */
	char dir[] = "/tmp/cbbench.XXXXXX", path[64], script[64], cmd[256];
	if (mkdtemp(dir)) {
		snprintf(path, sizeof(path), "%s/feed.ics", dir);
		snprintf(script, sizeof(script), "%s/peer.py", dir);
		FILE *a = fopen(path, "wb"), *b = fopen(script, "w");
		if (a && b) {
			fwrite(feed, 1, len, a);
			fputs(py_peer, b);
		}
		if (a)
			fclose(a);
		if (b)
			fclose(b);
		snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s 2>/dev/null", script, path);
		FILE *p = popen(cmd, "r");
		char line[128] = "", *end = NULL;
		long pn = -1;
		double pt = 0;
		if (p && fgets(line, sizeof(line), p)) {
			pn = strtol(line, &end, 10);
			pt = strtod(end, NULL);
		}
		if (pn >= 0 && pt > 0)
			printf(
			    "calendars  python3-recurring-ical-events, same feed: %ld instances in "
			    "%.1f ms (best of 3): %.0fx the time\n",
			    pn, pt * 1000, pt / best);
		else
			printf("calendars  python3-recurring-ical-events not available (apt-get "
			       "install "
			       "python3-recurring-ical-events)\n");
		if (p)
			pclose(p);
		unlink(path);
		unlink(script);
		rmdir(dir);
	}
	free(feed);

	/* the 38C3 schedule */
	gzFile gz =
	    gzopen("tests/fixtures/pretalx/eventfahrplan__schedule-38c3-20251206.xml.gz", "rb");
	if (!gz) {
		printf(
		    "calendars  38C3 schedule: fixture missing (run from the repository root)\n");
		return;
	}
	size_t cap = 1 << 20, got = 0;
	char *xml = malloc(cap);
	int r;
	while (xml && (r = gzread(gz, xml + got, (unsigned)(cap - got))) > 0) {
		got += (size_t)r;
		if (got == cap) {
			char *bigger = realloc(xml, cap * 2);
			if (!bigger)
				break;
			xml = bigger;
			cap *= 2;
		}
	}
	gzclose(gz);
	best = 1e9;
	for (int i = 0; i < 5 && xml; i++) {
		double t0 = now_s();
		json_t *slots = schedule_parse(xml, got, "38c3", &err);
		double dt = now_s() - t0;
		n = json_array_size(slots);
		json_decref(slots);
		if (dt < best)
			best = dt;
	}
	printf("calendars  38C3 schedule.xml (%zu KB): %zu slots in %.1f ms (best of 5)\n",
	       got / 1024, n, best * 1000);
	free(xml);
}

/* Arguments name the benchmarks to run; none runs them all. */
static int want(int argc, char **argv, const char *name)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *url = getenv("DATABASE_URL");
	const char *sim = getenv("DISCORD_SIM_BIN");
	log_threshold = LOGL_WARN;
	signal(SIGPIPE, SIG_IGN);
	printf("cohortbridge benchmarks (%s)\n", uv_version_string());
	if (want(argc, argv, "log"))
		bench_log();
	if (want(argc, argv, "jpos"))
		bench_jpos();
	if (want(argc, argv, "jtok"))
		bench_jtok();
	if (want(argc, argv, "db")) {
		if (url && *url)
			bench_db(url);
		else
			printf("db       skipped: DATABASE_URL is not set\n");
	}
	if (want(argc, argv, "httpd"))
		bench_httpd();
	if (want(argc, argv, "calendars"))
		bench_calendars();
	if (!sim || !*sim) {
		printf("discord  skipped: DISCORD_SIM_BIN is not set\n");
		return 0;
	}
	if (want(argc, argv, "firehose"))
		bench_firehose(sim);
	if (want(argc, argv, "chunking"))
		bench_chunking(sim);
	if (want(argc, argv, "ingest"))
		bench_ingest(sim);
	if (want(argc, argv, "bulk"))
		bench_bulk(sim);
	if (want(argc, argv, "sources"))
		bench_sources(sim);
	return 0;
}

/* --- discord-sim: firehose and member chunking ---------------------------------------------- */

struct wsr {
	int fd;
	unsigned char *buf;
	size_t len, off, cap;
};

static int fill(struct wsr *r, size_t need)
{
	if (r->off + need <= r->len)
		return 0;
	memmove(r->buf, r->buf + r->off, r->len - r->off);
	r->len -= r->off;
	r->off = 0;
	while (r->len < need) {
		if (need > r->cap) {
			r->cap = need * 2;
			r->buf = realloc(r->buf, r->cap);
		}
		ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (n <= 0)
			return -1;
		r->len += (size_t)n;
	}
	return 0;
}

/* Reads one frame; returns its opcode, with the payload at *p (valid until the next read). */
static int ws_frame(struct wsr *r, const unsigned char **p, size_t *plen)
{
	if (fill(r, 2))
		return -1;
	unsigned char *h = r->buf + r->off;
	int op = h[0] & 0x0f;
	size_t len = h[1] & 0x7f, hl = 2;
	if (len == 126) {
		if (fill(r, 4))
			return -1;
		h = r->buf + r->off;
		len = (size_t)h[2] << 8 | h[3];
		hl = 4;
	} else if (len == 127) {
		if (fill(r, 10))
			return -1;
		h = r->buf + r->off;
		len = 0;
		for (int i = 2; i < 10; i++)
			len = len << 8 | h[i];
		hl = 10;
	}
	if (fill(r, hl + len))
		return -1;
	*p = r->buf + r->off + hl;
	*plen = len;
	r->off += hl + len;
	return op;
}

static void ws_send(int fd, const char *text)
{
	size_t n = strlen(text), hl = n < 126 ? 6 : 8;
	unsigned char *f = malloc(hl + n);
	f[0] = 0x81;
	if (n < 126) {
		f[1] = (unsigned char)(0x80 | n);
	} else {
		f[1] = 0x80 | 126;
		f[2] = (unsigned char)(n >> 8);
		f[3] = (unsigned char)n;
	}
	memset(f + hl - 4, 0, 4); /* a zero mask: legal, and the payload goes as it is */
	/* a frame, not a string: no terminator */
	memcpy(f + hl, text, n); // NOLINT(bugprone-not-null-terminated-result)
	ssize_t w = write(fd, f, hl + n);
	(void)w;
	free(f);
}

static int tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Connects and identifies; leaves the reader after GUILD_CREATE. */
static int ws_session(int port, struct wsr *r, unsigned intents)
{
	char req[256], resp[1024] = "";
	int fd = tcp_connect(port);
	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req),
	         "GET /?v=10&encoding=json HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	         "Sec-WebSocket-Version: 13\r\n\r\n");
	if (write(fd, req, strlen(req)) < 0)
		return -1;
	size_t got = 0;
	while (!strstr(resp, "\r\n\r\n") && got < sizeof(resp) - 1) {
		ssize_t n = read(fd, resp + got, 1);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		resp[got] = '\0';
	}
	*r = (struct wsr){fd, malloc(1 << 20), 0, 0, 1 << 20};
	const unsigned char *p;
	size_t len;
	ws_frame(r, &p, &len); /* HELLO */
	char ident[256];
	snprintf(ident, sizeof(ident),
	         "{\"op\":2,\"d\":{\"token\":\"sim-token\",\"intents\":%u,\"properties\":{}}}",
	         intents);
	ws_send(fd, ident);
	for (;;) {
		int op = ws_frame(r, &p, &len);
		if (op < 0 || op == 8)
			return -1;
		if (memmem(p, len, "\"GUILD_CREATE\"", 14))
			return fd;
	}
}

static pid_t spawn_sim(const char *bin, const char *const *extra, int *port)
{
	int pipefd[2];
	*port = -1;
	if (pipe(pipefd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		const char *argv[16] = {bin, "--listen", "127.0.0.1:0", "--ratelimits", "off"};
		int n = 5;
		for (const char *const *e = extra; e && *e; e++)
			argv[n++] = *e;
		argv[n] = NULL;
		dup2(pipefd[1], 1);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	char line[128] = "";
	size_t got = 0;
	while (got < sizeof(line) - 1 && !strchr(line, '\n')) {
		ssize_t n = read(pipefd[0], line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		line[got] = '\0';
	}
	close(pipefd[0]);
	const char *colon = strrchr(line, ':');
	*port = colon ? (int)strtol(colon + 1, NULL, 10) : -1;
	return pid;
}

static void http_post(int port, const char *path, const char *body)
{
	char req[512];
	int fd = tcp_connect(port);
	snprintf(req, sizeof(req),
	         "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
	         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	         path, strlen(body), body);
	if (write(fd, req, strlen(req)) < 0)
		return;
	char b[1024];
	while (read(fd, b, sizeof(b)) > 0)
		;
	close(fd);
}

static void bench_firehose(const char *sim_bin)
{
	int port;
	struct wsr r;
	long n = 5000000;
	pid_t pid = spawn_sim(sim_bin, NULL, &port);
	int fd = ws_session(port, &r, 1);
	if (fd < 0) {
		printf("firehose skipped: no gateway session\n");
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return;
	}
	char body[64];
	snprintf(body, sizeof(body), "{\"events\":%ld}", n);
	double t0 = now_s();
	http_post(port, "/_sim/gateway/firehose", body);
	long seen = 0;
	const unsigned char *p;
	size_t len;
	while (seen < n && ws_frame(&r, &p, &len) == 1)
		seen++;
	double t = now_s() - t0;
	printf("firehose %10.0f events/s to one client (%ld events, %.2f s; target 1,000,000/s: "
	       "%.2fx)\n",
	       (double)seen / t, seen, t, (double)seen / t / 1e6);
	close(fd);
	free(r.buf);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static void bench_chunking(const char *sim_bin)
{
	int port;
	struct wsr r;
	const char *world[] = {"--world", "tests/sim/worlds/100k.json", NULL};
	pid_t pid = spawn_sim(sim_bin, world, &port);
	int fd = ws_session(port, &r, 3);
	if (fd < 0) {
		printf("chunking skipped: no gateway session\n");
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return;
	}
	char req[160];
	const unsigned char *p;
	size_t len;
	double t0 = now_s();
	/* the guild id is not needed: the sim's world has one guild; ask for it by reading state */
	snprintf(req, sizeof(req),
	         "{\"op\":8,\"d\":{\"guild_id\":\"%s\",\"query\":\"\",\"limit\":0}}",
	         getenv("BENCH_GUILD") ? getenv("BENCH_GUILD") : "100000");
	ws_send(fd, req);
	long chunks = 0, count = -1, members = 0;
	while (count < 0 || chunks < count) {
		int op = ws_frame(&r, &p, &len);
		if (op != 1)
			break;
		if (!memmem(p, len, "GUILD_MEMBERS_CHUNK", 19))
			continue;
		chunks++;
		const unsigned char *cc = memmem(p, len, "\"chunk_count\":", 14);
		if (cc)
			count = strtol((const char *)cc + 14, NULL, 10);
		for (const unsigned char *q = p;
		     (q = memmem(q, len - (size_t)(q - p), "\"joined_at\"", 11)); q += 11)
			members++;
	}
	double t = now_s() - t0;
	printf("chunking %10ld members in %ld chunks in %.2f s (target under 2 s: %.2fx)\n",
	       members, chunks, t, 2.0 / t);
	close(fd);
	free(r.buf);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

struct ingest {
	struct cache *cache;
	struct gw *gw;
	long updates, chunks, chunk_count;
	int ready, guild;
	char guild_id[32];
};

static void on_ingest(void *ud, const char *t, const struct jtok *j, int d, long seq)
{
	struct ingest *in = ud;
	cache_apply(in->cache, t, j, d);
	if (strcmp(t, "GUILD_MEMBER_UPDATE") == 0) {
		in->updates++;
	} else if (strcmp(t, "GUILD_CREATE") == 0) {
		jtok_str(j, jtok_get(j, d, "id"), in->guild_id, sizeof(in->guild_id));
		in->guild = 1;
	} else if (strcmp(t, "GUILD_MEMBERS_CHUNK") == 0) {
		in->chunks++;
		in->chunk_count = (long)jtok_int(j, jtok_get(j, d, "chunk_count"), 0);
	}
}

static void on_ingest_state(void *ud, enum gw_state st, const char *why)
{
	if (st == GW_READY)
		((struct ingest *)ud)->ready = 1;
}

static void run_until_flag(long *v, long want, double max_s)
{
	double t0 = now_s();
	while (*v < want && now_s() - t0 < max_s)
		uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

/* The process's resident set, from /proc/self/status. */
static long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return kb * 1024;
}

/* A small GET to 127.0.0.1:port; the whole answer (headers and body) into buf. */
static void http_get(int port, const char *path, char *buf, size_t cap)
{
	char req[256];
	size_t got = 0;
	buf[0] = '\0';
	int fd = tcp_connect(port);
	if (fd < 0)
		return;
	snprintf(req, sizeof(req),
	         "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (write(fd, req, strlen(req)) > 0) {
		ssize_t n;
		while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0)
			got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
}

/* The resident set of the real daemon (COHORTBRIDGE_BIN) once it has every member of the
 * 100,000-member guild cached: the figure to hold against a peer's whole process. -1 when it
 * cannot be measured here. */
static long daemon_rss(const char *sim_bin)
{
	const char *bin = getenv("COHORTBRIDGE_BIN"), *db = getenv("DATABASE_URL");
	if (!bin || !*bin || !db || !*db)
		return -1;
	int port;
	const char *world[] = {"--world", "tests/sim/worlds/100k.json", NULL};
	pid_t sim = spawn_sim(sim_bin, world, &port);
	char dir[] = "/tmp/cbbench.XXXXXX", cfg[64], log[64], api[96], line[256];
	long rss = -1;
	if (!mkdtemp(dir))
		goto out;
	snprintf(cfg, sizeof(cfg), "%s/config.json", dir);
	snprintf(log, sizeof(log), "%s/stderr", dir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		goto out;
	fputs("{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"log_level\": \"warn\"}", f);
	fclose(f);
	snprintf(api, sizeof(api), "http://127.0.0.1:%d/api/v10", port);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		setenv("DISCORD_TOKEN", "sim-token", 1);
		setenv("DISCORD_API_URL", api, 1);
		execl(bin, bin, "--config", cfg, "--log-level", "info", "run", (char *)NULL);
		_exit(127);
	}
	/* its health port from the "listening" line, then its cache through /metrics */
	int hport = 0;
	char *buf = malloc(65536);
	for (int i = 0; i < 600 && buf && rss < 0; i++) {
		usleep(50000);
		if (!hport) {
			FILE *l = fopen(log, "r");
			while (l && fgets(line, sizeof(line), l)) {
				const char *p = strstr(line, " port=");
				if (strstr(line, "msg=listening") && p)
					hport = (int)strtol(p + 6, NULL, 10);
			}
			if (l)
				fclose(l);
			continue;
		}
		http_get(hport, "/metrics", buf, 65536);
		if (!strstr(buf, "cohortbridge_cache_members 100002\n"))
			continue;
		char status[64];
		snprintf(status, sizeof(status), "/proc/%d/status", (int)pid);
		FILE *st = fopen(status, "r");
		while (st && fgets(line, sizeof(line), st))
			if (strncmp(line, "VmRSS:", 6) == 0)
				rss = strtol(line + 6, NULL, 10) * 1024;
		if (st)
			fclose(st);
	}
	free(buf);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(cfg);
	unlink(log);
	rmdir(dir);
out:
	kill(sim, SIGTERM);
	waitpid(sim, NULL, 0);
	return rss;
}

/* A peer client (tests/bench/peers) on a fresh simulator with the same world and firehose;
 * fills events/s and resident set. Returns 0, or -1 when the peer cannot run here. */
static int run_peer(const char *sim_bin, const char *peer, long events, double *rate, double *rss,
                    char *version, size_t vcap)
{
	int port;
	const char *world[] = {"--world", "tests/sim/worlds/100k.json", NULL};
	pid_t pid = spawn_sim(sim_bin, world, &port);
	char cmd[256], out[1024] = "";
	snprintf(cmd, sizeof(cmd), "tests/bench/peers/run %s %d %ld", peer, port, events);
	FILE *p = popen(cmd, "r");
	if (p) {
		if (!fgets(out, sizeof(out), p))
			out[0] = '\0';
		pclose(p);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	json_t *j = json_loads(out, 0, NULL);
	long got = (long)json_integer_value(json_object_get(j, "events"));
	*rate = json_number_value(json_object_get(j, "events_per_s"));
	*rss = json_number_value(json_object_get(j, "rss_bytes"));
	snprintf(version, vcap, "%s", json_string_value(json_object_get(j, "version")) ?: "?");
	json_decref(j);
	return j && got == events ? 0 : -1;
}

static void bench_ingest(const char *sim_bin)
{
	int port;
	const char *world[] = {"--world", "tests/sim/worlds/100k.json", NULL};
	pid_t pid = spawn_sim(sim_bin, world, &port);
	char url[64];
	struct err err = {0};
	struct ingest in = {0};
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d", port);
	struct gw_opts o = {.url = url, .token = "sim-token", .intents = 3, .compress = 0};
	struct gw_handler h = {on_ingest, on_ingest_state};
	in.cache = cache_new();
	in.gw = gw_new(uv_default_loop(), &o, &h, &in, &err);
	gw_start(in.gw, &err);
	double t0 = now_s();
	while (!in.guild && now_s() - t0 < 10)
		uv_run(uv_default_loop(), UV_RUN_NOWAIT);
	/* the whole guild through chunks, into the cache */
	json_t *req =
	    json_pack("{s:s, s:s, s:i}", "guild_id", in.guild_id, "query", "", "limit", 0);
	gw_send(in.gw, 8, req);
	json_decref(req);
	t0 = now_s();
	while ((in.chunk_count == 0 || in.chunks < in.chunk_count) && now_s() - t0 < 20)
		uv_run(uv_default_loop(), UV_RUN_NOWAIT);
	uint64_t gid = strtoull(in.guild_id, NULL, 10);
	size_t members = cache_member_count(in.cache, gid), bytes = cache_bytes(in.cache);
	long rss = rss_bytes();
	printf("cache    %10zu members in %zu bytes: %.1f bytes per member (chunks applied in %.2f "
	       "s)\n",
	       members, bytes, (double)bytes / (double)(members ? members : 1), now_s() - t0);

	long n = 300000;
	char body[96];
	snprintf(body, sizeof(body), "{\"events\":%ld,\"type\":\"GUILD_MEMBER_UPDATE\"}", n);
	t0 = now_s();
	http_post(port, "/_sim/gateway/firehose", body);
	run_until_flag(&in.updates, n, 60);
	double t = now_s() - t0, ours = (double)in.updates / t;
	printf("ingest   %10.0f GUILD_MEMBER_UPDATE/s parsed (jtok) and applied to the cache "
	       "(%ld events, %.2f s)\n",
	       ours, in.updates, t);
	gw_close(in.gw);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	gw_free(in.gw);
	cache_free(in.cache);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);

	/* the daemon itself, as a peer's process is measured: everything resident */
	long drss = daemon_rss(sim_bin);
	if (drss > 0) {
		printf("daemon   %10.1f MB resident: the cohortbridge process with 100,000 members "
		       "cached\n",
		       (double)drss / 1e6);
		rss = drss;
	} else {
		printf("memory   %10.1f MB resident in this benchmark's process (the daemon needs "
		       "COHORTBRIDGE_BIN and DATABASE_URL)\n",
		       (double)rss / 1e6);
	}

	/* the same world and firehose through discord.js and discord.py */
	static const char *const peers[][2] = {{"djs", "discord.js"}, {"dpy", "discord.py"}};
	for (size_t i = 0; i < 2; i++) {
		double rate, prss;
		char ver[32];
		if (run_peer(sim_bin, peers[i][0], n, &rate, &prss, ver, sizeof(ver)) != 0) {
			printf("peer     %s skipped: it could not run here (see above)\n",
			       peers[i][1]);
			continue;
		}
		printf("peer     %-10s %-7s %10.0f events/s (ours %.1fx; goal 10x discord.js), "
		       "%.1f MB resident with 100,000 members (ours %.3f of it; goal 0.1)\n",
		       peers[i][1], ver, rate, ours / rate, prss / 1e6, (double)rss / prss);
	}
}

/* --- the REST client: bulk role assignments ------------------------------------------------- */

struct bulk {
	int done, ok;
	json_t *body; /* the last answer, for the setup requests */
};

static void on_bulk(const struct rest_result *res, void *ud)
{
	struct bulk *b = ud;
	b->done++;
	if (res->status >= 200 && res->status < 300)
		b->ok++;
	json_decref(b->body);
	b->body = json_incref(res->body);
}

static void on_sim_json(const struct httpc_response *resp, void *ud)
{
	json_t **out = ud;
	*out = resp->status == 200 ? json_loadb(resp->body, resp->body_len, 0, NULL) : json_null();
}

/* A control API answer from the simulator, fetched on the loop. */
static json_t *sim_json(struct httpc *http, int port, const char *path)
{
	char url[128];
	json_t *out = NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	struct httpc_request rq = {.url = url};
	if (httpc_send(http, &rq, on_sim_json, &out, NULL) != 0)
		return NULL;
	while (!out)
		uv_run(uv_default_loop(), UV_RUN_ONCE);
	if (json_is_null(out)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* One setup request through the REST client; returns its answer (owned) or NULL. */
static json_t *bulk_call(struct rest *rest, const char *method, const char *route,
                         const char *const *args, json_t *body)
{
	struct bulk b = {0};
	struct err err = {0};
	if (rest_send(rest, method, route, args, body, NULL, 0, on_bulk, &b, &err) != 0)
		return NULL;
	while (!b.done)
		uv_run(uv_default_loop(), UV_RUN_ONCE);
	if (!b.ok) {
		json_decref(b.body);
		return NULL;
	}
	return b.body;
}

static long sim_count(json_t *stats, const char *group, const char *key)
{
	return (long)json_integer_value(json_object_get(json_object_get(stats, group), key));
}

/* The least time n requests can take under a limit of `limit` per fixed window: the last of
 * ceil(n / limit) windows opens (windows - 1) windows after the first. */
static double window_floor(long n, json_int_t limit, double window_s)
{
	if (limit <= 0)
		return 0;
	long windows = (long)((n + limit - 1) / limit);
	return (double)(windows - 1) * window_s;
}

static void bench_bulk(const char *sim_bin)
{
	static const char *const role_route =
	    "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}";
	enum { N = 10000 };
	int port;
	const char *extra[] = {"--ratelimits", "fast", "--world", "tests/sim/worlds/100k.json",
	                       NULL};
	pid_t pid = spawn_sim(sim_bin, extra, &port);
	char base[64];
	struct err err = {0};
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/api/v10", port);
	struct httpc *http = httpc_new(uv_default_loop(), &err);
	json_t *limits = sim_json(http, port, "/_sim/ratelimits");
	json_t *global = json_object_get(limits, "global");
	struct rest_opts o = {
	    .base_url = base,
	    .token = "sim-token",
	    .global_limit = (unsigned)json_integer_value(json_object_get(global, "limit")),
	    .global_window_ms =
	        (unsigned)(json_number_value(json_object_get(global, "window_s")) * 1000.0 + 0.5)};
	struct rest *rest = limits ? rest_new(uv_default_loop(), http, &o, &err) : NULL;

	/* the guild, a role below the bot's, and N members */
	static char users[N][24];
	int nusers = 0;
	char guild[32] = "", role[32] = "", after[24] = "0";
	json_t *guilds = rest ? bulk_call(rest, "GET", "/users/@me/guilds", NULL, NULL) : NULL;
	snprintf(guild, sizeof(guild), "%s",
	         json_string_value(json_object_get(json_array_get(guilds, 0), "id")) ?: "");
	json_decref(guilds);
	json_t *rb = json_pack("{s:s}", "name", "Bulk");
	json_t *r = *guild ? bulk_call(rest, "POST", "/guilds/{guild_id}/roles",
	                               (const char *[]){guild, NULL}, rb)
	                   : NULL;
	json_decref(rb);
	snprintf(role, sizeof(role), "%s", json_string_value(json_object_get(r, "id")) ?: "");
	json_decref(r);
	while (*role && nusers < N) {
		json_t *page =
		    bulk_call(rest, "GET", "/guilds/{guild_id}/members?limit=1000&after={a}",
		              (const char *[]){guild, after, NULL}, NULL);
		size_t i;
		json_t *m;
		json_array_foreach(page, i, m) {
			json_t *u = json_object_get(m, "user");
			const char *id = json_string_value(json_object_get(u, "id"));
			snprintf(after, sizeof(after), "%s", id);
			if (!json_is_true(json_object_get(u, "bot")) && nusers < N)
				snprintf(users[nusers++], sizeof(users[0]), "%s", id);
		}
		size_t got = json_array_size(page);
		json_decref(page);
		if (!got)
			break;
	}
	if (nusers < N) {
		printf("bulk     skipped: no guild with %d members and a role to give (%d found)\n",
		       N, nusers);
		goto out;
	}

	json_t *before = sim_json(http, port, "/_sim/stats");
	struct rest_stats st0, st;
	rest_get_stats(rest, &st0);
	struct bulk b = {0};
	double t0 = now_s();
	for (int i = 0; i < N; i++)
		if (rest_send(rest, "PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
		              (const char *[]){guild, users[i], role, NULL}, NULL, NULL, 0, on_bulk,
		              &b, &err) != 0) {
			fprintf(stderr, "bench: %s\n", err.msg);
			exit(1);
		}
	while (b.done < N)
		uv_run(uv_default_loop(), UV_RUN_ONCE);
	double t = now_s() - t0;
	json_decref(b.body);
	rest_get_stats(rest, &st);
	json_t *after_st = sim_json(http, port, "/_sim/stats");

	/* the floor: the role bucket (per guild) and the global limit, from the preset's table */
	json_int_t rl = 0;
	double rw = 0;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(limits, "routes"), i, d) {
		const char *route = json_string_value(json_object_get(d, "route"));
		if (route && strcmp(route, role_route) == 0) {
			rl = json_integer_value(json_object_get(d, "limit"));
			rw = json_number_value(json_object_get(d, "window_s"));
		}
	}
	double floor_s = window_floor(N, rl, rw),
	       gf = window_floor(N, o.global_limit, o.global_window_ms / 1000.0);
	if (gf > floor_s)
		floor_s = gf;
	long sent =
	    sim_count(after_st, "requests", role_route) - sim_count(before, "requests", role_route);
	printf("bulk     %d role assignments in %.2f s, floor %.2f s (%lld per %.3f s per guild): "
	       "ratio %.3fx (goal 1.05x); %d ok, %ld sent; 429s user %lu global %lu shared %lu "
	       "(simulator: user %ld global %ld shared %ld)\n",
	       N, t, floor_s, (long long)rl, rw, t / floor_s, b.ok, sent,
	       st.limited_user - st0.limited_user, st.limited_global - st0.limited_global,
	       st.limited_shared - st0.limited_shared,
	       sim_count(after_st, "ratelimits", "429_user") -
	           sim_count(before, "ratelimits", "429_user"),
	       sim_count(after_st, "ratelimits", "429_global") -
	           sim_count(before, "ratelimits", "429_global"),
	       sim_count(after_st, "ratelimits", "429_shared") -
	           sim_count(before, "ratelimits", "429_shared"));
	json_decref(before);
	json_decref(after_st);
out:
	json_decref(limits);
	rest_free(rest);
	httpc_close(http);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* --- sources: sync from the fakes ------------------------------------------------------------ */

/* Runs `cohortbridge --config cfg sync --source name` with DATABASE_URL=db; returns seconds, or
 * -1. The last line of its output goes to line. */
static double run_sync(const char *bin, const char *cfg, const char *db, const char *name,
                       char *line, size_t cap)
{
	int pipefd[2];
	if (pipe(pipefd) != 0)
		return -1;
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		setenv("DATABASE_URL", db, 1);
		setenv("SRC_TOKEN", "source-token", 1);
		execl(bin, bin, "--config", cfg, "--log-level", "error", "sync", "--source", name,
		      (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	char buf[8192];
	size_t got = 0;
	ssize_t n;
	while (got + 1 < sizeof(buf) && (n = read(pipefd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(pipefd[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	double t = now_s() - t0;
	/* the summary line: the last one that starts with the source's name */
	line[0] = '\0';
	char *save = NULL;
	for (char *p = strtok_r(buf, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
		if (strncmp(p, name, strlen(name)) == 0 && strstr(p, ": synced"))
			snprintf(line, cap, "%s", p);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? t : -1;
}

static long source_requests(int port, const char *source)
{
	char *buf = malloc(1 << 20);
	if (!buf)
		return -1;
	http_get(port, "/_sim/sources/requests", buf, 1 << 20);
	char *body = strstr(buf, "\r\n\r\n");
	json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
	long n = (long)json_integer_value(json_object_get(json_object_get(j, "counts"), source));
	json_decref(j);
	free(buf);
	return n;
}

static void bench_sources(const char *sim_bin)
{
	const char *bin = getenv("COHORTBRIDGE_BIN"), *url = getenv("DATABASE_URL");
	if (!bin || !*bin || !url || !*url) {
		printf("sources  skipped: needs COHORTBRIDGE_BIN and DATABASE_URL\n");
		return;
	}
	/* a database of its own */
	char dbname[64], conn[1200];
	snprintf(dbname, sizeof(dbname), "cbbench_sources_%d", (int)getpid());
	PGconn *pg = PQconnectdb(url);
	char sql[160];
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
	PQclear(PQexec(pg, sql));
	const char *q = strchr(url, '?');
	if (strncmp(url, "postgres", 8) == 0 && q) {
		/* postgresql://user@/postgres?host=... -> the same with our database */
		const char *slash = q;
		while (slash > url && *slash != '/')
			slash--;
		snprintf(conn, sizeof(conn), "%.*s/%s%s", (int)(slash - url), url, dbname, q);
	} else {
		snprintf(conn, sizeof(conn), "%s dbname=%s", url, dbname);
	}
	int port;
	const char *extra[] = {"--learners", "5000", "--seed", "11", NULL};
	pid_t sim = spawn_sim(sim_bin, extra, &port);
	char dir[] = "/tmp/cbbench.XXXXXX", cfg[64];
	if (!mkdtemp(dir))
		goto out;
	snprintf(cfg, sizeof(cfg), "%s/config.json", dir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		goto out;
	fprintf(f,
	        "{\"sources\": [{\"name\": \"canvas\", \"type\": \"canvas\", \"url\": "
	        "\"http://127.0.0.1:%d/canvas\", \"token_env\": \"SRC_TOKEN\"}, {\"name\": "
	        "\"pretix\", \"type\": \"pretix\", \"url\": \"http://127.0.0.1:%d/pretix\", "
	        "\"organizer\": \"campus\", \"event\": \"conf2026\", \"token_env\": "
	        "\"SRC_TOKEN\"}]}",
	        port, port);
	fclose(f);
	static const char *const names[] = {"canvas", "pretix"};
	for (size_t i = 0; i < 2; i++) {
		char line1[1024], line2[1024];
		long r0 = source_requests(port, names[i]);
		double t1 = run_sync(bin, cfg, conn, names[i], line1, sizeof(line1));
		long r1 = source_requests(port, names[i]);
		double t2 = run_sync(bin, cfg, conn, names[i], line2, sizeof(line2));
		long r2 = source_requests(port, names[i]);
		if (t1 < 0 || t2 < 0) {
			printf("sources  %s: a sync failed\n", names[i]);
			continue;
		}
		printf("sources  %-6s 5000 learners: first sync %.2f s (%ld requests, %.0f "
		       "learners/s), again %.2f s (%ld requests)\n         %s\n",
		       names[i], t1, r1 - r0, 5000.0 / t1, t2, r2 - r1, line1);
	}
	unlink(cfg);
	rmdir(dir);
out:
	kill(sim, SIGTERM);
	waitpid(sim, NULL, 0);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", dbname);
	PQclear(PQexec(pg, sql));
	PQfinish(pg);
}
