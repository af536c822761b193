/* fuzz_ike_responder.c: arbitrary datagrams into a responder engine: raw, as mutated IKE_SA_INITs, and (after a
 * real handshake) as the encrypted inside of requests and responses, so the exchange handlers see attacker bytes. */
#include <stdlib.h>
#include <string.h>

#include "ike/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct box {
	struct ike_engine *e;
	uint8_t last[4096];                 /* the last datagram it sent */
	size_t last_len;
	uint32_t spi;
	uint64_t rnd;
};

static struct box I, R;                 /* initiator (a real engine), responder (the target) */
static uint64_t now;

static void cb_send(void *ctx, const struct ike_addr *src, const struct ike_addr *dst, const uint8_t *msg, size_t len)
{
	struct box *b = ctx;

	(void)src;
	(void)dst;
	if (len <= sizeof b->last) {
		memcpy(b->last, msg, len);
		b->last_len = len;
	}
}

static int cb_spi(void *ctx, uint32_t *spi)
{
	*spi = ++((struct box *)ctx)->spi + 0x1000;
	return 0;
}

static void cb_random(void *ctx, uint8_t *buf, size_t len)
{
	struct box *b = ctx;

	for (size_t i = 0; i < len; i++) {
		b->rnd ^= b->rnd << 13;
		b->rnd ^= b->rnd >> 7;
		b->rnd ^= b->rnd << 17;
		buf[i] = (uint8_t)b->rnd;
	}
}

static const struct ike_addr addr_i = { .family = 4, .port = 500, .addr = { 198, 51, 100, 1 } };
static const struct ike_addr addr_r = { .family = 4, .port = 500, .addr = { 198, 51, 100, 2 } };

static int box_new(struct box *b, bool initiator, bool verbose)
{
	struct ike_callbacks cb = { .ctx = b, .send = cb_send, .spi_alloc = cb_spi, .random = cb_random };
	struct ike_peer_conf p = { .id = 1, .auth = IKE_AUTH_PSK, .psk = (const uint8_t *)"fuzz", .psk_len = 4,
		.fragmentation = true, .dpd_interval_s = 10 };
	struct ike_child_conf c = { .id = 2, .peer_id = 1, .n_local_ts = 1, .n_remote_ts = 1 };
	char err[64];

	(void)verbose;
	memset(b, 0, sizeof *b);
	b->rnd = initiator ? 0x1234567 : 0x7654321;
	if (ike_engine_new(NULL, &cb, &b->e) < 0)
		return -1;
	p.local = initiator ? addr_i : addr_r;
	p.remote = initiator ? addr_r : (struct ike_addr){ 0 };
	p.n_ike = (size_t)ike_proposals_parse("aes256gcm16-prfsha256-curve25519,aes128-sha256-ecp256", false, false,
		p.ike, 8, err, sizeof err);
	c.local_ts[0] = (struct ike_ts_conf){ .family = 4, .port_hi = 65535, .hi = { 255, 255, 255, 255 } };
	c.remote_ts[0] = c.local_ts[0];
	c.n_esp = (size_t)ike_proposals_parse("aes256gcm16-ecp256,aes256-sha256", true, false, c.esp, 8, err,
		sizeof err);
	if (ike_peer_set(b->e, now, &p) < 0 || ike_child_set(b->e, now, &c) < 0)
		return -1;
	return 0;
}

/* Bounces datagrams between the two until quiet (bounded). */
static void converse(void)
{
	for (int i = 0; i < 8 && (I.last_len || R.last_len); i++) {
		if (I.last_len) {
			size_t n = I.last_len;

			I.last_len = 0;
			ike_input(R.e, now, &addr_i, &addr_r, I.last, n);
		}
		if (R.last_len) {
			size_t n = R.last_len;

			R.last_len = 0;
			ike_input(I.e, now, &addr_r, &addr_i, R.last, n);
		}
	}
}

/* Feeds data as length-prefixed datagrams. */
static void raw(const uint8_t *data, size_t size)
{
	while (size >= 2) {
		size_t n = (size_t)(data[0] << 8 | data[1]) % 2048;

		data += 2, size -= 2;
		if (n > size)
			n = size;
		ike_input(R.e, now, &addr_i, &addr_r, data, n);
		data += n, size -= n;
	}
}

/* A real IKE_SA_INIT with the input XORed over it. */
static void mutated_init(const uint8_t *data, size_t size)
{
	ike_initiate(I.e, now, 1);
	for (size_t i = 0; i < size && i < I.last_len; i++)
		I.last[i] ^= data[i];
	ike_input(R.e, now, &addr_i, &addr_r, I.last, I.last_len);
}

/* After a handshake: the input is the plaintext of an encrypted request to R, or of a response to R's request. */
static void inner(const uint8_t *data, size_t size)
{
	static uint8_t msg[8192];
	struct ike_sa *sa;
	struct ike_msg *m = &I.e->out;
	bool response = size && (data[0] & 0x80);
	int len;

	ike_initiate(I.e, now, 1);
	converse();
	sa = I.e->sas;
	if (!sa || !sa->sk_out || size < 2 || size > 4096)
		return;
	if (response && R.e->sas) {
		struct ike_sa *rsa = R.e->sas;

		/* R starts something: a child rekey, an IKE rekey or a DPD, and the input answers it. */
		if (rsa->n_children && (data[0] & 3) == 0)
			ike_rekey(R.e, now, rsa->id, rsa->children[0].spi_in);
		else if ((data[0] & 3) == 1)
			ike_rekey(R.e, now, rsa->id, 0);
		now += 11000;
		ike_tick(R.e, now);
		R.last_len = 0;
	}
	memset(m, 0, sizeof *m);
	memcpy(m->spi_i, sa->spi_i, 8);
	memcpy(m->spi_r, sa->spi_r, 8);
	m->version = 0x20;
	m->exchange = (uint8_t)(IKE_AUTH + (data[1] & 3));
	m->flags = (uint8_t)(IKE_FLAG_I | (response ? IKE_FLAG_R : 0));
	m->msg_id = response ? (R.e->sas ? R.e->sas->req.msg_id : 0) : sa->next_msg_id;
	ike_msg_add(m, IKE_PL_SK)->u.sk.next_inner = data[1] >> 2 & 1 ? IKE_PL_NOTIFY : (uint8_t)(data[0] >> 2 & 0x3f);
	len = ike_msg_encode(m, msg, sizeof msg);
	if (len < 0)
		return;
	len = ike_sk_encrypt(sa->sk_out, msg, sizeof msg, (size_t)len - 4, data + 2, size - 2);
	if (len > 0)
		ike_input(R.e, now, &addr_i, &addr_r, msg, (size_t)len);
	now += 60000;
	ike_tick(R.e, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	now = 1000;
	if (!size || box_new(&I, true, false) < 0 || box_new(&R, false, false) < 0)
		goto out;
	switch (data[0] % 3) {
	case 0:
		raw(data + 1, size - 1);
		break;
	case 1:
		mutated_init(data + 1, size - 1);
		converse();
		break;
	default:
		inner(data + 1, size - 1);
		break;
	}
	ike_tick(R.e, now + 3600000);
out:
	ike_engine_free(I.e);
	ike_engine_free(R.e);
	I.e = R.e = NULL;
	return 0;
}
