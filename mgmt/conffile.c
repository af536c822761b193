/* conffile.c: read bitwd's "key = value" service configuration into flags that the command line overrides. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"

#define CONF_MAX_ARGS 128

static const char *config_path(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--config"))
			return i + 1 < argc ? argv[i + 1] : NULL;
		if (!strncmp(argv[i], "--config=", 9))
			return argv[i] + 9;
	}
	return NULL;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static const struct option *known_key(const struct option *known, const char *key)
{
	if (!strcmp(key, "config") || !strcmp(key, "help"))
		return NULL;
	for (; known->name; known++)
		if (!strcmp(known->name, key))
			return known;
	return NULL;
}

static char *flag_of(const char *key)
{
	size_t n = strlen(key) + 3;
	char *f = malloc(n);
	if (f)
		snprintf(f, n, "--%s", key);
	return f;
}

/* One line into 0, 1 or 2 arguments appended to out; -1 if the line is wrong (err says why). */
static int line_to_args(char *line, const struct option *known, char **out, int *n, char *err, size_t errlen)
{
	char *s = trim(line), *eq = strchr(s, '=');

	if (!*s || *s == '#')
		return 0;
	if (!eq) {
		snprintf(err, errlen, "expected key = value");
		return -1;
	}
	*eq = '\0';
	char *key = trim(s), *val = trim(eq + 1);
	const struct option *o = known_key(known, key);
	if (!o) {
		snprintf(err, errlen, "unknown key \"%s\"", key);
		return -1;
	}
	if (*n + 2 > CONF_MAX_ARGS) {
		snprintf(err, errlen, "too many settings");
		return -1;
	}
	if (o->has_arg == no_argument) {
		bool yes = !strcmp(val, "yes") || !strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "on");
		bool no = !strcmp(val, "no") || !strcmp(val, "false") || !strcmp(val, "0") || !strcmp(val, "off");
		if (!yes && !no) {
			snprintf(err, errlen, "%s: expected yes or no", key);
			return -1;
		}
		if (yes && !(out[(*n)++] = flag_of(key)))
			goto nomem;
		return 0;
	}
	if (!*val) {
		snprintf(err, errlen, "%s: empty value", key);
		return -1;
	}
	if (!(out[(*n)++] = flag_of(key)) || !(out[(*n)++] = strdup(val)))
		goto nomem;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int read_file(const char *path, const struct option *known, char **out, int *n, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[1024], why[256];
	int lineno = 0, rc = 0;

	if (!f) {
		snprintf(err, errlen, "--config %s: %s", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof line, f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			rc = -1;
		} else if (line_to_args(line, known, out, n, why, sizeof why) < 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			rc = -1;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "--config %s: read error", path);
		rc = -1;
	}
	fclose(f);
	return rc;
}

char **conffile_argv(int argc, char **argv, const struct option *known, int *new_argc, char *err, size_t errlen)
{
	const char *path = config_path(argc, argv);
	static char *file_args[CONF_MAX_ARGS];
	int n = 0;

	*new_argc = argc;
	if (!path)
		return argv;
	if (read_file(path, known, file_args, &n, err, errlen) < 0)
		return NULL;
	static char **v;  /* static: the strings in it stay reachable, so no leak is reported at exit */
	v = calloc((size_t)(argc + n + 1), sizeof *v);
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v[0] = argv[0];
	memcpy(v + 1, file_args, (size_t)n * sizeof *v);
	memcpy(v + 1 + n, argv + 1, (size_t)(argc - 1) * sizeof *v);
	*new_argc = argc + n;
	return v;
}
