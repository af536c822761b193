/* fuzz_config.c: the configuration parser (file, control socket and REST all use it) on arbitrary JSON text. */
#include <jansson.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_config c;
	char err[512];
	json_t *j = json_loadb((const char *)data, size, 0, NULL);

	if (!j)
		return 0;
	memset(&c, 0, sizeof c);
	if (config_from_json(j, &c, err, sizeof err) == 0)
		config_validate(&c, err, sizeof err);
	config_free(&c);
	json_decref(j);
	return 0;
}
