/* log.c: leveled logging to stderr with the systemd priority prefix, one write per line. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int wlog_level_max = WLOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
/* sd-daemon(3) prefixes: <3> err, <4> warning, <6> info, <7> debug. */
static const char *const level_prefix[] = { "<3>", "<4>", "<6>", "<7>" };

int wlog_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

void wlog(int level, const char *fmt, ...)
{
	char line[1024];
	int n;
	va_list ap;

	if (level > wlog_level_max)
		return;
	if (level < 0 || level > WLOG_DEBUG)
		level = WLOG_ERR;
	n = snprintf(line, sizeof line, "%s%s: ", level_prefix[level], level_names[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* One write so lines from different threads do not interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
