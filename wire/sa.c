/* sa.c: SA lifetimes (soft and hard, by packets, bytes and seconds) and SA teardown. */
#include <stdlib.h>
#include <time.h>

#include <openssl/crypto.h>

#include "counter.h"
#include "sa.h"
#include "wire.h"

uint64_t sa_clock_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

static bool over(uint64_t used, uint64_t limit)
{
	return limit != 0 && used >= limit;
}

static bool lifetime_reached(const struct sa_lifetime *lt, uint64_t packets, uint64_t bytes)
{
	return over(packets, lt->packets) || over(bytes, lt->bytes);
}

/* Both threads may expire an SA; only the first transition raises the event. */
static void go_dying(struct sa *sa)
{
	uint8_t mature = SA_MATURE;

	if (atomic_compare_exchange_strong(&sa->state, &mature, SA_DYING))
		atomic_store(&sa->soft_pending, 1);
}

static void go_dead(struct sa *sa)
{
	if (atomic_exchange(&sa->state, SA_DEAD) != SA_DEAD)
		atomic_store(&sa->hard_pending, 1);
}

/*
 * A hard limit of N packets lets exactly N through; the SA dies with the
 * N-th so the control thread can replace it before the next one arrives.
 */
int sa_account(struct sa *sa, uint32_t bytes)
{
	uint64_t packets, total;

	if (atomic_load_explicit(&sa->state, memory_order_relaxed) == SA_DEAD)
		return -XE_SA_EXPIRED;
	if (lifetime_reached(&sa->conf.hard, atomic_load_explicit(&sa->st.packets, memory_order_relaxed),
	                     atomic_load_explicit(&sa->st.bytes, memory_order_relaxed))) {
		go_dead(sa);
		return -XE_SA_EXPIRED;
	}
	packets = stat_add(&sa->st.packets, 1);
	total = stat_add(&sa->st.bytes, bytes);
	if (lifetime_reached(&sa->conf.hard, packets, total))
		go_dead(sa);
	else if (lifetime_reached(&sa->conf.soft, packets, total))
		go_dying(sa);
	return 0;
}

void sa_tick(struct sa *sa, uint64_t now_s)
{
	uint64_t age = now_s > sa->created ? now_s - sa->created : 0;

	if (over(age, sa->conf.hard.seconds))
		go_dead(sa);
	else if (over(age, sa->conf.soft.seconds))
		go_dying(sa);
}

void sa_destroy(struct sa *sa)
{
	if (sa == NULL)
		return;
	esp_crypto_free(sa);
	OPENSSL_cleanse(sa->conf.enc_key, sizeof(sa->conf.enc_key));
	OPENSSL_cleanse(sa->conf.integ_key, sizeof(sa->conf.integ_key));
	free(sa);
}
