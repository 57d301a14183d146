/* nftw needs X/Open. */
#define _XOPEN_SOURCE 700
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#include <ftw.h>

/* Every file and directory a test makes lives under one root, removed when the run ends. */
static char tmproot[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_tmproot(void)
{
	if (tmproot[0])
		nftw(tmproot, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *th_tmproot(void)
{
	if (!tmproot[0]) {
		snprintf(tmproot, sizeof(tmproot), "/tmp/cbtest.XXXXXX");
		if (!mkdtemp(tmproot))
			fail_msg("mkdtemp: %s", strerror(errno));
		atexit(rm_tmproot);
	}
	return tmproot;
}

static void th_mkdtemp(char *dir, size_t size)
{
	snprintf(dir, size, "%s/XXXXXX", th_tmproot());
	assert_non_null(mkdtemp(dir));
}

const char *th_db_url(void)
{
	const char *u = getenv("DATABASE_URL");
	if (!u || !*u)
		fail_msg("DATABASE_URL is not set: run the suite with `make test` (deploy/pg-dev "
		         "run ...)");
	return u;
}

const char *th_sql(const char *conninfo, const char *sql, int allow_error)
{
	static char buf[4096];
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fail_msg("cannot connect: %s", PQerrorMessage(c));
	}
	PGresult *r = PQexec(c, sql);
	const char *out = NULL;
	ExecStatusType s = PQresultStatus(r);
	if (s == PGRES_TUPLES_OK && PQntuples(r) > 0) {
		snprintf(buf, sizeof(buf), "%s", PQgetvalue(r, 0, 0));
		out = buf;
	} else if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK && !allow_error) {
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	}
	PQclear(r);
	PQfinish(c);
	return out;
}

void th_fresh_db(char *out, size_t size)
{
	static int n;
	char name[64], sql[128];
	snprintf(name, sizeof(name), "cbt_%d_%d", (int)getpid(), n++);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	th_sql(th_db_url(), sql, 0);
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(th_db_url(), &err);
	assert_non_null(o);
	size_t len = 0;
	out[0] = '\0';
	for (PQconninfoOption *p = o; p->keyword; p++) {
		const char *v = strcmp(p->keyword, "dbname") == 0 ? name : p->val;
		if (!v)
			continue;
		len += (size_t)snprintf(out + len, size - len, "%s%s='%s'", len ? " " : "",
		                        p->keyword, v);
	}
	PQconninfoFree(o);
}

const char *th_bin(void)
{
	const char *b = getenv("COHORTBRIDGE_BIN");
	return b && *b ? b : "build/cohortbridge";
}

static void apply_env(const char *const *env)
{
	for (const char *const *e = env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq) {
			unsetenv(*e);
			continue;
		}
		char key[128];
		snprintf(key, sizeof(key), "%.*s", (int)(eq - *e), *e);
		setenv(key, eq + 1, 1);
	}
}

const char *th_tmpdir(void)
{
	static char dir[96];
	th_mkdtemp(dir, sizeof(dir));
	return dir;
}

pid_t th_spawn(const char *const *argv, const char *const *env, char *dir, size_t dirsize)
{
	return th_spawn_bin(th_bin(), argv, env, dir, dirsize);
}

pid_t th_spawn_bin(const char *bin, const char *const *argv, const char *const *env, char *dir,
                   size_t dirsize)
{
	th_mkdtemp(dir, dirsize);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char path[512];
		snprintf(path, sizeof(path), "%s/stdout", dir);
		int o = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		snprintf(path, sizeof(path), "%s/stderr", dir);
		int e = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int in = open("/dev/null", O_RDONLY);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		/* the child must not hold the test's own sockets (database, HTTP, gateway) */
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		apply_env(env);
		const char *args[32];
		int n = 0;
		args[n++] = bin;
		for (int i = 1; argv[i] && n < 31; i++)
			args[n++] = argv[i];
		args[n] = NULL;
		execv(bin, (char *const *)args);
		_exit(127);
	}
	return pid;
}

int th_wait(pid_t pid, int ms)
{
	int st;
	for (int waited = 0; waited <= ms; waited += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

int th_run(const char *const *argv, const char *const *env, char *dir, size_t dirsize)
{
	return th_wait(th_spawn(argv, env, dir, dirsize), 30000);
}

char *th_read(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	return buf;
}

int th_wait_for(const char *dir, const char *name, const char *needle, int ms)
{
	for (int waited = 0; waited <= ms; waited += 20) {
		char *s = th_read(dir, name);
		int found = strstr(s, needle) != NULL;
		free(s);
		if (found)
			return 1;
		usleep(20000);
	}
	return 0;
}

int th_listen_port(const char *dir, int ms)
{
	if (!th_wait_for(dir, "stderr", "msg=listening", ms))
		return -1;
	char *s = th_read(dir, "stderr");
	const char *p = strstr(strstr(s, "msg=listening"), " port=");
	int port = p ? (int)strtol(p + 6, NULL, 10) : -1;
	free(s);
	return port;
}

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
	FILE *m = ud;
	return fwrite(data, size, n, m);
}

long th_http_get(int port, const char *path, char **body)
{
	char url[256];
	char *buf = NULL;
	size_t len = 0;
	long status = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	FILE *m = open_memstream(&buf, &len);
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, m);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	fclose(m);
	if (body)
		*body = buf;
	else
		free(buf);
	return status;
}

const char *th_write_file(int slot, const char *name, const char *text)
{
	static char paths[4][512];
	char dir[96];
	th_mkdtemp(dir, sizeof(dir));
	snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", dir, name);
	FILE *f = fopen(paths[slot], "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return paths[slot];
}

pid_t th_sim_start(const char *const *args, int *port, char *dir, size_t dirsize)
{
	const char *bin = getenv("DISCORD_SIM_BIN");
	const char *argv[20] = {"", "--listen", "127.0.0.1:0"};
	int n = 3;
	for (const char *const *a = args; a && *a && n < 19; a++)
		argv[n++] = *a;
	argv[n] = NULL;
	pid_t pid = th_spawn_bin(bin && *bin ? bin : "build/discord-sim", argv, NULL, dir, dirsize);
	assert_true(th_wait_for(dir, "stdout", "listening on 127.0.0.1:", 10000));
	char *out = th_read(dir, "stdout");
	/* the first line is always "listening on 127.0.0.1:PORT" */
	int ok = strncmp(out, "listening on 127.0.0.1:", 23) == 0;
	*port = ok ? (int)strtol(out + 23, NULL, 10) : -1;
	free(out);
	assert_true(ok && *port > 0);
	return pid;
}

void th_sim_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	assert_int_equal(th_wait(pid, 10000), 0);
}

long th_sim_call(int port, const char *method, const char *path, const char *body, json_t **out)
{
	char url[512];
	char *buf = NULL;
	size_t len = 0;
	long status = 0;
	struct curl_slist *h = NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	FILE *m = open_memstream(&buf, &len);
	CURL *c = curl_easy_init();
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Authorization: Bot sim-token");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, m);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	fclose(m);
	if (out)
		*out = len ? json_loadb(buf, len, 0, NULL) : NULL;
	free(buf);
	return status;
}

int th_ix_type(json_t *rec)
{
	return (int)json_integer_value(
	    json_object_get(json_array_get(json_object_get(rec, "callbacks"), 0), "type"));
}

json_t *th_ix_answer(json_t *rec)
{
	int t = th_ix_type(rec);
	if (t == 5 || t == 6)
		return json_object_get(rec, "original");
	return json_object_get(json_array_get(json_object_get(rec, "callbacks"), 0), "data");
}

const char *th_ix_content(json_t *rec)
{
	const char *c = json_string_value(json_object_get(th_ix_answer(rec), "content"));
	return c ? c : "";
}

const char *th_ix_first_cid(json_t *rec)
{
	json_t *row = json_array_get(json_object_get(th_ix_answer(rec), "components"), 0);
	return json_string_value(
	    json_object_get(json_array_get(json_object_get(row, "components"), 0), "custom_id"));
}

pid_t th_bridge_run(const char *cfg, const char *db, int sim_port, char *dir, size_t dirsize)
{
	char envdb[1100], envapi[128];
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", sim_port);
	const char *a[] = {"", "--config", cfg, "run", NULL};
	const char *env[] = {envdb, "DISCORD_TOKEN=sim-token", envapi, "SRC_TOKEN=source-token",
	                     NULL};
	pid_t pid = th_spawn(a, env, dir, dirsize);
	if (!th_wait_for(dir, "stderr", "mod=gateway msg=re", 15000))
		fail_msg("the bridge did not get ready:\n%s", th_read(dir, "stderr"));
	return pid;
}
