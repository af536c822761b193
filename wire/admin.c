/* admin.c: the box's administrative state (secure, bypass all, drop all): the loud notice when it changes. */
#include "wire_int.h"

#include "log.h"

/*
 * Bypass all is the one state in which the box stops protecting anything, so
 * it is logged as a warning every time it takes effect, never as news.
 */
void admin_state_log(uint8_t from, uint8_t to)
{
	if (from == to)
		return;
	switch (to) {
	case ADMIN_BYPASS:
		wlog(WLOG_WARN, "ADMINISTRATIVE STATE BYPASS: every packet now passes between red and black IN CLEAR TEXT; "
		                "no policy is enforced until the state is secure again");
		break;
	case ADMIN_DROP:
		wlog(WLOG_WARN, "administrative state drop: no packet passes between red and black until the state is "
		                "secure again");
		break;
	default:
		wlog(WLOG_INFO, "administrative state secure: policies are enforced again (was %s)", admin_state_name(from));
	}
}
