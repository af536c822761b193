/* test_replay.c: the anti-replay window against the cases of RFC 4303 appendix A, with and without ESN. */
#include "check.h"
#include "sa.h"
#include "wire.h"

/* What a receiver does per packet: check, (ICV verifies), update. */
static int receive(struct replay *r, uint32_t seq, bool esn, uint64_t *full)
{
	uint64_t f = 0;
	int rc = replay_check(r, seq, esn, &f);

	if (rc == 0)
		replay_update(r, f);
	if (full)
		*full = f;
	return rc;
}

static const int BAD = -XE_BAD_SEQUENCE_NUMBER;

static void in_order_and_duplicates(void)
{
	struct replay r;
	uint64_t full;
	int ok = 1;

	replay_init(&r, 64);
	CHECK_EQ(receive(&r, 0, false, NULL), BAD, "sequence number 0 is never valid");
	for (uint32_t s = 1; s <= 200; s++)
		ok &= receive(&r, s, false, NULL) == 0;
	CHECK(ok, "200 packets in order are accepted");
	CHECK_EQ(r.top, 200, "top follows the highest accepted");
	CHECK_EQ(receive(&r, 200, false, NULL), BAD, "duplicate of the top is rejected");
	CHECK_EQ(receive(&r, 150, false, NULL), BAD, "duplicate inside the window is rejected");
	CHECK_EQ(replay_check(&r, 201, false, &full), 0, "next sequence number is acceptable");
	CHECK_EQ(replay_check(&r, 201, false, &full), 0, "check alone does not mark it seen");
	CHECK_EQ(full, 201, "full sequence number without ESN is the wire value");
}

static void out_of_order(void)
{
	struct replay r;

	replay_init(&r, 64);
	CHECK_EQ(receive(&r, 100, false, NULL), 0, "jump ahead to 100");
	CHECK_EQ(receive(&r, 90, false, NULL), 0, "late 90 within the window accepted");
	CHECK_EQ(receive(&r, 90, false, NULL), BAD, "second 90 rejected");
	CHECK_EQ(receive(&r, 37, false, NULL), 0, "37 = top - 63: oldest slot of a 64 window accepted");
	CHECK_EQ(receive(&r, 36, false, NULL), BAD, "36 = top - 64: left of the window rejected");
	CHECK_EQ(receive(&r, 1, false, NULL), BAD, "far too old rejected");
	CHECK_EQ(receive(&r, 101, false, NULL), 0, "101 accepted");
	CHECK_EQ(receive(&r, 37, false, NULL), BAD, "37 now left of the window");
	CHECK_EQ(receive(&r, 99, false, NULL), 0, "99 never seen: accepted after the window moved");
}

/* Fill the whole window, then check its first and last slots and one past. */
static void window_edges(uint32_t size)
{
	struct replay r;
	uint32_t top = 10000, oldest = top - size + 1;
	int ok = 1;

	replay_init(&r, size);
	CHECK_EQ(receive(&r, top, false, NULL), 0, "w=%u: top %u", size, top);
	CHECK_EQ(receive(&r, oldest - 1, false, NULL), BAD, "w=%u: top-size rejected", size);
	CHECK_EQ(receive(&r, oldest, false, NULL), 0, "w=%u: top-size+1 accepted", size);
	for (uint32_t s = oldest + 1; s < top; s++)
		ok &= receive(&r, s, false, NULL) == 0;
	CHECK(ok, "w=%u: every slot of the window accepted once", size);
	ok = 1;
	for (uint32_t s = oldest; s <= top; s++)
		ok &= receive(&r, s, false, NULL) == BAD;
	CHECK(ok, "w=%u: every slot of the window rejected the second time", size);
	/* Sliding by one must free exactly one slot: the new top. */
	CHECK_EQ(receive(&r, top + 1, false, NULL), 0, "w=%u: top+1 accepted", size);
	CHECK_EQ(receive(&r, oldest, false, NULL), BAD, "w=%u: old bottom fell out", size);
	CHECK_EQ(receive(&r, oldest + 1, false, NULL), BAD, "w=%u: new bottom still seen", size);
}

static void large_jump(void)
{
	struct replay r;
	int ok = 1;

	replay_init(&r, 4096);
	for (uint32_t s = 1; s <= 4096; s++)
		ok &= receive(&r, s, false, NULL) == 0;
	CHECK(ok, "4096 packets fill a 4096 window");
	CHECK_EQ(receive(&r, 4096 + 5000, false, NULL), 0, "jump by more than the window");
	ok = 1;
	for (uint32_t s = 4096 + 5000 - 4095; s < 4096 + 5000; s++)
		ok &= receive(&r, s, false, NULL) == 0;
	CHECK(ok, "after a big jump the whole window reads as unseen");
	CHECK_EQ(receive(&r, 4096, false, NULL), BAD, "old packets before the jump rejected");

	replay_init(&r, 128);
	CHECK_EQ(receive(&r, 1000, false, NULL), 0, "top 1000");
	CHECK_EQ(receive(&r, 1000 + 100, false, NULL), 0, "jump by 100 in a 128 window");
	CHECK_EQ(receive(&r, 1000, false, NULL), BAD, "1000 still remembered after a partial slide");
	CHECK_EQ(receive(&r, 1050, false, NULL), 0, "1050, cleared by the slide, accepted");
}

static void window_off(void)
{
	struct replay r;

	replay_init(&r, 0);
	CHECK_EQ(receive(&r, 5, false, NULL), 0, "no window: 5");
	CHECK_EQ(receive(&r, 5, false, NULL), 0, "no window: duplicate accepted");
	CHECK_EQ(receive(&r, 1, false, NULL), 0, "no window: old accepted");
}

static void esn_wrap(void)
{
	struct replay r;
	uint64_t full = 0;

	replay_init(&r, 64);
	/* Walk up in steps a receiver can place (A2.2 needs a top to infer from). */
	CHECK_EQ(receive(&r, 1, true, &full), 0, "ESN: 1");
	CHECK_EQ(receive(&r, 0x7fffffffu, true, &full), 0, "ESN: half way");
	CHECK_EQ(receive(&r, 0xfffffff0u, true, &full), 0, "ESN: near the end of the low half");
	CHECK_EQ(full, 0xfffffff0u, "ESN: still in epoch 0");
	CHECK_EQ(receive(&r, 0xffffffffu, true, &full), 0, "ESN: 0xffffffff");
	CHECK_EQ(receive(&r, 0x00000000u, true, &full), 0, "ESN: low half wraps to 0");
	CHECK_EQ(full, 1ull << 32, "ESN: 0 after the wrap is 2^32");
	CHECK_EQ(receive(&r, 0x00000001u, true, &full), 0, "ESN: then 1");
	CHECK_EQ(full, (1ull << 32) + 1, "ESN: is 2^32+1");
	/* A late packet from before the wrap: case B of A2.2, Seqh = Th - 1. */
	CHECK_EQ(receive(&r, 0xfffffff8u, true, &full), 0, "ESN: late packet from before the wrap accepted");
	CHECK_EQ(full, 0xfffffff8u, "ESN: late packet gets the old high half");
	CHECK_EQ(receive(&r, 0xfffffff8u, true, &full), BAD, "ESN: its duplicate rejected");
	CHECK_EQ(receive(&r, 0xffffffffu, true, &full), BAD, "ESN: 0xffffffff again rejected");
	/*
	 * Below the window across the wrap, A2.2 can only read it as far ahead
	 * (Seqh = Th): the replay check passes and the ICV, computed with the
	 * wrong high half, is what rejects a truly old packet.
	 */
	CHECK_EQ(replay_check(&r, 0xffffffc0u, true, &full), 0, "ESN: below the window across the wrap");
	CHECK_EQ(full, (1ull << 32) + 0xffffffc0u, "ESN: ... is taken for the current epoch, ahead");
	CHECK_EQ(r.top, (1ull << 32) + 1, "ESN: late packets leave the top alone");

	replay_init(&r, 64);
	CHECK_EQ(receive(&r, 0xffffffffu, false, NULL), 0, "no ESN: 0xffffffff accepted");
	CHECK_EQ(receive(&r, 0x00000000u, false, NULL), BAD, "no ESN: wrap to 0 rejected");
	CHECK_EQ(receive(&r, 0x00000001u, false, NULL), BAD, "no ESN: wrap to 1 rejected as too old");
}

static void esn_inference(void)
{
	struct replay r;
	uint64_t full = 0;

	replay_init(&r, 1024);
	CHECK_EQ(receive(&r, 0xffffffffu, true, &full), BAD, "ESN: a fresh SA cannot go below 0");
	r.top = (5ull << 32) + 100;  /* deep into epoch 5, Tl < W-1 */
	CHECK_EQ(replay_check(&r, 0xfffffe00u, true, &full), 0, "ESN case B: inside the window");
	CHECK_EQ(full, (4ull << 32) + 0xfffffe00u, "ESN case B: Seqh = Th - 1");
	CHECK_EQ(replay_check(&r, 5000, true, &full), 0, "ESN case B: ahead");
	CHECK_EQ(full, (5ull << 32) + 5000, "ESN case B: Seqh = Th");
	r.top = (5ull << 32) + 0x80000000u;  /* Tl >= W-1 */
	CHECK_EQ(replay_check(&r, 0x90000000u, true, &full), 0, "ESN case A: ahead");
	CHECK_EQ(full, (5ull << 32) + 0x90000000u, "ESN case A: Seqh = Th");
	CHECK_EQ(replay_check(&r, 10, true, &full), 0, "ESN case A: below the window means the next epoch");
	CHECK_EQ(full, (6ull << 32) + 10, "ESN case A: Seqh = Th + 1");
	r.top = (5ull << 32) + 1023;  /* Tl == W-1: the boundary between A and B */
	CHECK_EQ(replay_check(&r, 0, true, &full), 0, "ESN Tl == W-1: 0 is the window's bottom");
	CHECK_EQ(full, 5ull << 32, "ESN Tl == W-1: same epoch");
}

int main(void)
{
	in_order_and_duplicates();
	out_of_order();
	window_edges(64);
	window_edges(65);
	window_edges(1000);
	window_edges(4096);
	large_jump();
	window_off();
	esn_wrap();
	esn_inference();
	return check_done();
}
