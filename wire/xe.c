/* xe.c: names and sentences for the XE_* error and drop-reason codes of wire.h. */
#include "wire.h"

#define XE_NAME_(name, text) #name,
#define XE_TEXT_(name, text) text,
static const char *const xe_names[] = { XE_LIST(XE_NAME_) };
static const char *const xe_texts[] = { XE_LIST(XE_TEXT_) };
#undef XE_NAME_
#undef XE_TEXT_

/* Codes travel negated in return values and statuses; accept either sign. */
static int xe_index(int code)
{
	long c = code < 0 ? -(long)code : code;

	return c < XE__COUNT ? (int)c : -1;
}

const char *xe_name(int code)
{
	int i = xe_index(code);

	return i < 0 ? "XE_UNKNOWN" : xe_names[i];
}

const char *xe_text(int code)
{
	int i = xe_index(code);

	return i < 0 ? "unknown error" : xe_texts[i];
}
