#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "secret.h"

#define REDACTED "<redacted>"

static char **secrets;
static size_t nsecrets;

void secret_register(const char *value)
{
	if (!value || strlen(value) < 4)
		return;
	for (size_t i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], value) == 0)
			return;
	char **grown = realloc(secrets, (nsecrets + 1) * sizeof(*secrets));
	if (!grown)
		return;
	secrets = grown;
	secrets[nsecrets] = strdup(value);
	if (secrets[nsecrets])
		nsecrets++;
}

void secret_clear(void)
{
	for (size_t i = 0; i < nsecrets; i++)
		free(secrets[i]);
	free(secrets);
	secrets = NULL;
	nsecrets = 0;
}

char *secret_scrub(const char *s)
{
	char *out = NULL;

	if (!s)
		return NULL;
	for (size_t i = 0; i < nsecrets; i++) {
		const char *src = out ? out : s;
		const char *hit = strstr(src, secrets[i]);
		if (!hit)
			continue;
		size_t slen = strlen(secrets[i]), rlen = strlen(REDACTED);
		size_t cap = strlen(src) / slen * rlen + strlen(src) + 1;
		char *buf = malloc(cap), *w = buf;
		if (!buf)
			return out; /* out of memory: better unscrubbed-free than a crash */
		while (hit) {
			memcpy(w, src, (size_t)(hit - src));
			w += hit - src;
			memcpy(w, REDACTED, rlen);
			w += rlen;
			src = hit + slen;
			hit = strstr(src, secrets[i]);
		}
		memcpy(w, src, strlen(src) + 1);
		free(out);
		out = buf;
	}
	return out;
}

int secret_get(const char *name, char **out, struct err *err)
{
	char fname[256];
	const char *v = getenv(name);

	*out = NULL;
	if (v && *v) {
		*out = strdup(v);
		if (!*out)
			return err_set(err, "out of memory");
		secret_register(*out);
		return 0;
	}
	snprintf(fname, sizeof(fname), "%s_FILE", name);
	const char *path = getenv(fname);
	if (!path || !*path)
		return 1;

	FILE *f = fopen(path, "r");
	if (!f)
		return err_set(err, "%s: cannot open %s: %s", fname, path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return err_set(err, "%s: %s is not a regular file", fname, path);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		fclose(f);
		return err_set(
		    err, "%s: %s is readable by group or others (mode %03o); run chmod 600 on it",
		    fname, path, (unsigned)(st.st_mode & 0777));
	}
	if (st.st_size > 64 * 1024) {
		fclose(f);
		return err_set(err, "%s: %s is larger than 64 KiB", fname, path);
	}
	char *buf = calloc(1, (size_t)st.st_size + 1);
	size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	if (!buf)
		return err_set(err, "out of memory");
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0) {
		free(buf);
		return 1;
	}
	secret_register(buf);
	*out = buf;
	return 0;
}
