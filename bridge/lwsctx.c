#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "lwsctx.h"

/* Descriptor numbers lws may see. The bridge holds a few dozen (database, REST connections,
 * the gateway, health clients); lws refuses a socket whose number is past this. */
#define LWS_MAX_FDS 4096u

static void log_line(int level, const char *line)
{
	char buf[512];
	/* lws prefixes its own timestamp "[date time:ms] W: "; keep only the text. */
	const char *t = strstr(line, "]");
	if (t && t[1] == ' ' && t[2] && t[3] == ':')
		line = t + 4;
	while (*line == ' ')
		line++;
	size_t n = strlen(line);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, line, n);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (level & LLL_ERR)
		log_error("lws", buf);
	else
		log_warn("lws", buf);
}

struct lws_context *lwsctx_new(uv_loop_t *loop, struct lws_context_creation_info *info)
{
	void *loops[1] = {loop};
	struct rlimit rl;
	unsigned fds = LWS_MAX_FDS;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < fds)
		fds = (unsigned)rl.rlim_cur;
	info->options |= LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
	info->foreign_loops = loops;
	info->fd_limit_per_thread = fds;
	lws_set_log_level(LLL_ERR | LLL_WARN, log_line);
	return lws_create_context(info);
}
