/* jtext.h: JSON documents for unit tests, written in C strings with single quotes. */
#ifndef BITW_TEST_JTEXT_H
#define BITW_TEST_JTEXT_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON in C strings is easier to read with single quotes; they become double quotes here. */
static inline json_t *J(const char *text)
{
	char *s = strdup(text);
	json_error_t e;
	json_t *j;

	if (!s)
		return NULL;
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(s, 0, &e);
	if (!j)
		printf("# test JSON broken at %d:%d: %s\n", e.line, e.column, e.text);
	free(s);
	return j;
}

#endif
