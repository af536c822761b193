/* test_xe.c: the names and sentences of the XE_* codes that logs, stats and control replies show. */
#include <string.h>

#include "check.h"
#include "wire.h"

int main(void)
{
	CHECK(strcmp(xe_name(XE_OK), "XE_OK") == 0, "0 is XE_OK");
	CHECK(strcmp(xe_name(XE_BAD_ESP_SPI), "XE_BAD_ESP_SPI") == 0, "positive code names itself");
	CHECK(strcmp(xe_name(-XE_BAD_ESP_SPI), "XE_BAD_ESP_SPI") == 0, "negative code names the same");
	CHECK(strcmp(xe_name(-XE_SA_NOT_FOUND), "XE_SA_NOT_FOUND") == 0, "XE_SA_NOT_FOUND by its negative");
	CHECK(strcmp(xe_name(XE_ECN_CE_NOT_ECT), "XE_ECN_CE_NOT_ECT") == 0, "last real code");
	CHECK(strcmp(xe_text(-XE_SA_NOT_FOUND), "SA not found") == 0, "text of a negative code");
	CHECK(strcmp(xe_text(XE_ESP_DIGEST_MISMATCH), "ESP integrity check failed") == 0, "text of a positive code");
	CHECK(strcmp(xe_name(XE__COUNT), "XE_UNKNOWN") == 0, "the count sentinel is not a code");
	CHECK(strcmp(xe_name(-XE__COUNT), "XE_UNKNOWN") == 0, "nor its negative");
	CHECK(strcmp(xe_name(1000), "XE_UNKNOWN") == 0, "out of range -> XE_UNKNOWN");
	CHECK(strcmp(xe_name(-1000), "XE_UNKNOWN") == 0, "negative out of range -> XE_UNKNOWN");
	CHECK(strcmp(xe_name(-2147483647 - 1), "XE_UNKNOWN") == 0, "INT_MIN does not overflow");
	CHECK(xe_text(12345) != NULL && xe_text(12345)[0], "out of range still has a sentence");
	/* Every code has a distinct name starting with XE_ and a sentence (except the sentinel). */
	for (int i = 0; i < XE__COUNT; i++) {
		int ok = strncmp(xe_name(i), "XE_", 3) == 0 && xe_text(i)[0] != '\0';

		for (int j = 0; j < i; j++)
			ok = ok && strcmp(xe_name(i), xe_name(j)) != 0;
		CHECK(ok, "code %d (%s) has a unique name and a sentence", i, xe_name(i));
	}
	return check_done();
}
