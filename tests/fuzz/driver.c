/* driver.c: runs a libFuzzer target without libFuzzer: random and mutated inputs for a few seconds, or given files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int run_file(const char *path)
{
	static uint8_t buf[1 << 16];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return 1;
	}
	n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[4096], keep[4096];
	const char *env = getenv("FUZZ_SECONDS");
	double seconds = env ? atof(env) : 3.0;
	size_t keep_len = 0;
	unsigned long runs = 0;
	clock_t end;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (run_file(argv[i]))
				return 1;
		return 0;
	}
	end = clock() + (clock_t)(seconds * CLOCKS_PER_SEC);
	while (clock() < end) {
		/* Half the inputs are mutations of an earlier one, so structure survives a little. */
		size_t len = keep_len && (next() & 1) ? keep_len : next() % sizeof buf;

		if (len == keep_len && keep_len) {
			memcpy(buf, keep, len);
			for (int m = 0; m < 4; m++)
				buf[next() % len] ^= (uint8_t)(1u << (next() & 7));
		} else {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)next();
		}
		LLVMFuzzerTestOneInput(buf, len);
		if ((next() & 15) == 0) {
			memcpy(keep, buf, len);
			keep_len = len;
		}
		runs++;
	}
	printf("1..1\nok 1 - %lu inputs without a crash\n", runs);
	return 0;
}
