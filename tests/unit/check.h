/* check.h: a minimal TAP test harness for the unit tests. */
#ifndef BITW_CHECK_H
#define BITW_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_n_, check_failed_;

/* CHECK(cond, "what is being checked") : one TAP line per check. */
#define CHECK(cond, ...)                                                          \
	do {                                                                          \
		int check_ok_ = !!(cond);                                                 \
		++check_n_;                                                               \
		if (check_ok_) {                                                          \
			printf("ok %d - ", check_n_);                                         \
		} else {                                                                  \
			++check_failed_;                                                      \
			printf("not ok %d - ", check_n_);                                     \
		}                                                                         \
		printf(__VA_ARGS__);                                                      \
		printf("\n");                                                             \
		if (!check_ok_)                                                           \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
	} while (0)

#define CHECK_EQ(a, b, ...) \
	do { long long a_ = (long long)(a), b_ = (long long)(b); \
	     CHECK(a_ == b_, __VA_ARGS__); \
	     if (a_ != b_) printf("#   got %lld, expected %lld\n", a_, b_); } while (0)

#define CHECK_MEM(a, b, n, ...) CHECK(memcmp((a), (b), (n)) == 0, __VA_ARGS__)

/* Call at the end of main: prints the plan and returns the exit status. */
static inline int check_done(void)
{
	printf("1..%d\n", check_n_);
	return check_failed_ ? 1 : 0;
}

#endif
