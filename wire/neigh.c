/* neigh.c: the neighbour cache of a port (IP -> MAC), lock-free for lookups, with bounded queues for unresolved addresses. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "port.h"
#include "wire.h"

#define NEIGH_CAP_MAX (1u << 20)
#define NEIGH_POOL_MAX 256u          /* queued frames per table: ~2.4 MB of TXQ_BUF slots */
#define NEIGH_RETRY_MS 1000u         /* solicitations at most once a second */
#define NEIGH_RETRIES 3u             /* after the first solicitation */
#define NEIGH_REFRESH_MS 5000u       /* refresh in-use entries this long before they expire */
#define NO_SLOT UINT32_MAX

/* state: the MAC in bits 0..47 and a resolved flag, so readers see both or neither. */
#define ST_RESOLVED (1ull << 48)
#define ST_MAC_MASK ((1ull << 48) - 1)

struct neigh_entry {
	_Atomic uint32_t used;           /* set (release) once ip is written; never cleared */
	struct bw_addr ip;               /* immutable once used */
	_Atomic uint64_t state;
	_Atomic uint64_t confirmed_ms;   /* last time the MAC was learned or confirmed */
	_Atomic uint64_t used_ms;        /* last lookup that found it (to the second) */
	/* Below: only under the table lock. */
	uint64_t solicit_ms;
	uint32_t tries;                  /* solicitations since the last answer */
	uint32_t qhead, qtail, qlen;     /* FIFO of pool slots */
};

struct neigh_table {
	struct neigh_entry *e;
	uint32_t mask;                   /* slots - 1; slots >= 2 * capacity keeps probes short and ending */
	uint32_t capacity, count;
	uint32_t *slot_of;               /* [0, count): the slots in use, in order of creation (under the lock) */
	uint64_t timeout_ms;
	uint64_t refresh_ms;
	uint32_t queue_per_entry;
	pthread_mutex_t lock;
	/* the shared pool of queued frames */
	uint8_t *frames;
	uint32_t *frame_len, *frame_next;
	uint32_t pool_free;
};

static uint64_t mac_pack(const uint8_t mac[6])
{
	uint64_t v = 0;
	for (int i = 0; i < 6; i++)
		v = v << 8 | mac[i];
	return v;
}

static void mac_unpack(uint64_t v, uint8_t mac[6])
{
	for (int i = 5; i >= 0; i--, v >>= 8)
		mac[i] = (uint8_t)v;
}

/* Multicast, broadcast and all-zero MACs are never a neighbour's address. */
static bool mac_is_unicast(const uint8_t mac[6])
{
	return !(mac[0] & 1) && mac_pack(mac) != 0;
}

/* Keys are compared whole, so an IPv4 key must not carry stray bytes past a[3]. */
static bool key_make(const struct bw_addr *ip, struct bw_addr *k)
{
	memset(k, 0, sizeof *k);
	if (ip->family != 4 && ip->family != 6)
		return false;
	k->family = ip->family;
	memcpy(k->a, ip->a, ip->family == 4 ? 4 : 16);
	return true;
}

static uint32_t key_hash(const struct bw_addr *k)
{
	uint64_t lo, hi;
	memcpy(&lo, k->a, 8);
	memcpy(&hi, k->a + 8, 8);
	uint64_t h = (lo * 0x9e3779b97f4a7c15ull) ^ (hi * 0xc2b2ae3d27d4eb4full) ^ k->family;
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(h >> 32);
}

static bool key_eq(const struct bw_addr *a, const struct bw_addr *b)
{
	return a->family == b->family && memcmp(a->a, b->a, 16) == 0;
}

/*
 * Lock-free probe: a slot's key is written before `used` is released and
 * never changes afterwards, so after the acquire load it may be read plainly.
 * An unused slot ends the probe because entries are never removed.
 */
static struct neigh_entry *entry_find(struct neigh_table *t, const struct bw_addr *k)
{
	for (uint32_t i = key_hash(k), n = 0; n <= t->mask; i++, n++) {
		struct neigh_entry *e = &t->e[i & t->mask];
		if (!atomic_load_explicit(&e->used, memory_order_acquire))
			return NULL;
		if (key_eq(&e->ip, k))
			return e;
	}
	return NULL;
}

/* Under the lock. NULL when the table is full. */
static struct neigh_entry *entry_get(struct neigh_table *t, const struct bw_addr *k)
{
	struct neigh_entry *e = entry_find(t, k);
	if (e || t->count >= t->capacity)
		return e;
	for (uint32_t i = key_hash(k);; i++) {
		e = &t->e[i & t->mask];
		if (!atomic_load_explicit(&e->used, memory_order_relaxed))
			break;
	}
	e->ip = *k;
	e->qhead = e->qtail = NO_SLOT;
	atomic_store_explicit(&e->used, 1, memory_order_release);
	t->slot_of[t->count++] = (uint32_t)(e - t->e);
	return e;
}

struct neigh_table *neigh_new(uint32_t capacity, uint32_t timeout_s, uint32_t queue_per_entry)
{
	struct neigh_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->capacity = capacity < 1 ? 1 : capacity > NEIGH_CAP_MAX ? NEIGH_CAP_MAX : capacity;
	uint32_t slots = 4;
	while (slots < 2 * t->capacity)
		slots <<= 1;
	t->mask = slots - 1;
	t->timeout_ms = (uint64_t)(timeout_s ? timeout_s : 1) * 1000;
	t->refresh_ms = t->timeout_ms / 2 < NEIGH_REFRESH_MS ? t->timeout_ms / 2 : NEIGH_REFRESH_MS;
	t->queue_per_entry = queue_per_entry ? queue_per_entry : 1;
	uint64_t pool = (uint64_t)t->capacity * t->queue_per_entry;
	uint32_t npool = pool > NEIGH_POOL_MAX ? NEIGH_POOL_MAX : (uint32_t)pool;

	t->e = calloc(slots, sizeof *t->e);
	t->slot_of = calloc(t->capacity, sizeof *t->slot_of);
	t->frames = malloc((size_t)npool * TXQ_BUF);
	t->frame_len = calloc(npool, sizeof *t->frame_len);
	t->frame_next = calloc(npool, sizeof *t->frame_next);
	if (!t->e || !t->slot_of || !t->frames || !t->frame_len || !t->frame_next || pthread_mutex_init(&t->lock, NULL)) {
		free(t->e);
		free(t->slot_of);
		free(t->frames);
		free(t->frame_len);
		free(t->frame_next);
		free(t);
		return NULL;
	}
	for (uint32_t i = 0; i < npool; i++)
		t->frame_next[i] = i + 1 < npool ? i + 1 : NO_SLOT;
	t->pool_free = npool ? 0 : NO_SLOT;
	return t;
}

void neigh_free(struct neigh_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->e);
	free(t->slot_of);
	free(t->frames);
	free(t->frame_len);
	free(t->frame_next);
	free(t);
}

static bool is_fresh(const struct neigh_table *t, const struct neigh_entry *e, uint64_t now_ms)
{
	uint64_t conf = atomic_load_explicit(&e->confirmed_ms, memory_order_relaxed);
	return now_ms < conf || now_ms - conf < t->timeout_ms;
}

bool neigh_lookup(struct neigh_table *t, const struct bw_addr *ip, uint8_t mac[6], uint64_t now_ms)
{
	struct bw_addr k;
	if (!key_make(ip, &k))
		return false;
	struct neigh_entry *e = entry_find(t, &k);
	if (!e)
		return false;
	uint64_t st = atomic_load_explicit(&e->state, memory_order_acquire);
	if (!(st & ST_RESOLVED) || !is_fresh(t, e, now_ms))
		return false;
	/* Written rarely, so the two data threads do not fight over the line per packet. */
	if (now_ms - atomic_load_explicit(&e->used_ms, memory_order_relaxed) >= 1000)
		atomic_store_explicit(&e->used_ms, now_ms, memory_order_relaxed);
	mac_unpack(st, mac);
	return true;
}

bool neigh_confirmed_since(struct neigh_table *t, const struct bw_addr *ip, const uint8_t mac[6], uint64_t since_ms)
{
	struct bw_addr k;
	if (!key_make(ip, &k))
		return false;
	struct neigh_entry *e = entry_find(t, &k);
	if (!e)
		return false;
	uint64_t st = atomic_load_explicit(&e->state, memory_order_acquire);
	uint8_t known[6];
	mac_unpack(st, known);
	return (st & ST_RESOLVED) && memcmp(known, mac, 6) == 0 &&
	       atomic_load_explicit(&e->confirmed_ms, memory_order_relaxed) >= since_ms;
}

static void queue_drop(struct neigh_table *t, struct neigh_entry *e)
{
	while (e->qhead != NO_SLOT) {
		uint32_t s = e->qhead;
		e->qhead = t->frame_next[s];
		t->frame_next[s] = t->pool_free;
		t->pool_free = s;
	}
	e->qtail = NO_SLOT;
	e->qlen = 0;
}

/* Send the queue with the destination MAC filled in, in arrival order. */
static void queue_send(struct neigh_table *t, struct neigh_entry *e, const uint8_t mac[6], struct txq *tx)
{
	for (uint32_t s = e->qhead; s != NO_SLOT; s = t->frame_next[s]) {
		uint8_t *f = t->frames + (size_t)s * TXQ_BUF;
		memcpy(f, mac, 6);
		txq_push(tx, f, t->frame_len[s]);
	}
	queue_drop(t, e);
}

/* Under the lock: the entry now maps to mac. */
static void learn(struct neigh_table *t, struct neigh_entry *e, const uint8_t mac[6], uint64_t now_ms,
                  struct txq *tx)
{
	atomic_store_explicit(&e->confirmed_ms, now_ms, memory_order_relaxed);
	atomic_store_explicit(&e->state, mac_pack(mac) | ST_RESOLVED, memory_order_release);
	e->tries = 0;
	if (tx && e->qlen)
		queue_send(t, e, mac, tx);
}

void neigh_update(struct neigh_table *t, const struct bw_addr *ip, const uint8_t mac[6], uint64_t now_ms,
                  struct txq *tx)
{
	struct bw_addr k;
	if (!key_make(ip, &k) || !mac_is_unicast(mac))
		return;
	pthread_mutex_lock(&t->lock);
	struct neigh_entry *e = entry_get(t, &k);
	if (e)
		learn(t, e, mac, now_ms, tx);
	pthread_mutex_unlock(&t->lock);
}

int neigh_confirm(struct neigh_table *t, const struct bw_addr *ip, const uint8_t mac[6], uint64_t now_ms,
                  struct txq *tx)
{
	struct bw_addr k;
	if (!key_make(ip, &k) || !mac_is_unicast(mac))
		return NEIGH_UNKNOWN;
	pthread_mutex_lock(&t->lock);
	int rc = NEIGH_UNKNOWN;
	struct neigh_entry *e = entry_find(t, &k);
	if (e) {
		bool waiting = !(atomic_load_explicit(&e->state, memory_order_relaxed) & ST_RESOLVED) &&
		               (e->qlen || e->tries);
		rc = waiting ? NEIGH_RESOLVED : NEIGH_REFRESHED;
		learn(t, e, mac, now_ms, tx);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Under the lock: a resolved entry past its timeout becomes unresolved (the MAC stays for display). */
static bool expire(struct neigh_table *t, struct neigh_entry *e, uint64_t now_ms)
{
	uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
	if (!(st & ST_RESOLVED) || is_fresh(t, e, now_ms))
		return false;
	atomic_store_explicit(&e->state, st & ST_MAC_MASK, memory_order_release);
	e->tries = 0;
	return true;
}

static bool solicit_due(const struct neigh_entry *e, uint64_t now_ms)
{
	return e->tries == 0 || (e->tries <= NEIGH_RETRIES && now_ms - e->solicit_ms >= NEIGH_RETRY_MS);
}

int neigh_enqueue(struct neigh_table *t, const struct bw_addr *ip, const uint8_t *frame, uint32_t len,
                  uint64_t now_ms)
{
	struct bw_addr k;
	if (!key_make(ip, &k) || len < 6 || len > TXQ_BUF)
		return -XE_NEIGH_UNRESOLVED;
	pthread_mutex_lock(&t->lock);
	int rc = -XE_NEIGH_UNRESOLVED;
	struct neigh_entry *e = entry_get(t, &k);
	if (!e || e->qlen >= t->queue_per_entry || t->pool_free == NO_SLOT)
		goto out;
	expire(t, e, now_ms);

	uint32_t s = t->pool_free;
	t->pool_free = t->frame_next[s];
	memcpy(t->frames + (size_t)s * TXQ_BUF, frame, len);
	t->frame_len[s] = len;
	t->frame_next[s] = NO_SLOT;
	if (e->qtail == NO_SLOT)
		e->qhead = s;
	else
		t->frame_next[e->qtail] = s;
	e->qtail = s;
	e->qlen++;

	/*
	 * Still resolved means the answer arrived between the caller's lookup
	 * and now: only a new answer flushes this queue, so ask again.
	 */
	bool resolved = atomic_load_explicit(&e->state, memory_order_relaxed) & ST_RESOLVED;
	rc = 0;
	if (resolved || solicit_due(e, now_ms)) {
		e->solicit_ms = now_ms;
		e->tries++;
		rc = 1;
	}
out:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Under the lock: what one entry needs this second. Returns true when a solicitation is due. */
static bool tick_entry(struct neigh_table *t, struct neigh_entry *e, uint64_t now_ms, uint64_t *dropped)
{
	expire(t, e, now_ms);
	uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
	bool retry_time = now_ms - e->solicit_ms >= NEIGH_RETRY_MS;
	if (st & ST_RESOLVED) {
		uint64_t age = now_ms - atomic_load_explicit(&e->confirmed_ms, memory_order_relaxed);
		uint64_t idle = now_ms - atomic_load_explicit(&e->used_ms, memory_order_relaxed);
		bool refresh = age + t->refresh_ms >= t->timeout_ms && idle <= t->refresh_ms + NEIGH_RETRY_MS;
		return (refresh || e->qlen) && e->tries <= NEIGH_RETRIES && retry_time;
	}
	if (!e->qlen && !e->tries)
		return false;
	if (e->tries && !retry_time)
		return false;
	if (e->tries <= NEIGH_RETRIES)
		return true;
	/* Never answered: give up on what waited; the next frame starts over. */
	*dropped += e->qlen;
	queue_drop(t, e);
	e->tries = 0;
	return false;
}

/* Entries are never removed, so the first n of slot_of stay valid once n is read under the lock. */
static uint32_t entries_in_use(struct neigh_table *t)
{
	pthread_mutex_lock(&t->lock);
	uint32_t n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void neigh_tick(struct neigh_table *t, uint64_t now_ms, void (*solicit)(void *ctx, const struct bw_addr *ip),
                void *ctx, uint64_t *dropped)
{
	uint64_t n = 0;
	uint32_t inuse = entries_in_use(t);
	/* Only the entries in use: a table sized for thousands costs nothing when a few are used. */
	for (uint32_t i = 0; i < inuse; i++) {
		struct neigh_entry *e = &t->e[t->slot_of[i]];
		/* Locked per entry, and solicit called unlocked, so data threads never wait long. */
		pthread_mutex_lock(&t->lock);
		bool due = tick_entry(t, e, now_ms, &n);
		if (due) {
			e->solicit_ms = now_ms;
			e->tries++;
		}
		pthread_mutex_unlock(&t->lock);
		if (due && solicit)
			solicit(ctx, &e->ip);
	}
	if (dropped)
		*dropped = n;
}

void neigh_walk(struct neigh_table *t, void (*fn)(void *ctx, const struct bw_addr *ip, const uint8_t mac[6],
                                                  bool resolved), void *ctx)
{
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < t->count; i++) {
		struct neigh_entry *e = &t->e[t->slot_of[i]];
		uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
		uint8_t mac[6];
		mac_unpack(st, mac);
		fn(ctx, &e->ip, mac, (st & ST_RESOLVED) != 0);
	}
	pthread_mutex_unlock(&t->lock);
}
