/* test_bundle.c: AH+ESP bundles: the SAD keyed by (SPI, protocol), a bundle packet through both SAs, the SA registry. */
#include <jansson.h>

#include "check.h"
#include "spd.h"
#include "wire_int.h"


/* The SAs of one bundle direction: ESP (AES-GCM-128) inside AH (HMAC-SHA256-128). */
static struct sa *make_sa(int proto, uint32_t spi, int dir, uint32_t policy_id)
{
	struct sa_conf c;
	struct sa *sa = NULL;
	char err[128];

	memset(&c, 0, sizeof c);
	c.spi = spi;
	c.dir = (uint8_t)dir;
	c.proto = (uint8_t)proto;
	c.policy_id = policy_id;
	c.replay_window = 64;
	if (proto == PROTO_AH) {
		c.integ = INTEG_HMAC_SHA256_128;
		c.integ_key_len = 32;
		memset(c.integ_key, 0x5a, 32);
	} else {
		c.enc = ENC_AES_GCM_128;
		c.enc_key_len = 20;
		memset(c.enc_key, 0xa5, 20);
	}
	if (sa_create(&c, &sa, err, sizeof err) < 0)
		printf("# sa_create: %s\n", err);
	return sa;
}

static uint32_t inner_packet(uint8_t *p, uint32_t len, uint8_t seq)
{
	memset(p, 0, len);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 63;
	p[9] = 1;
	memcpy(p + 12, (const uint8_t[]){ 198, 18, 0, 1, 198, 19, 0, 1 }, 8);
	for (uint32_t i = 20; i < len; i++)
		p[i] = (uint8_t)(i + seq);
	return len;
}

/* What the wire sends for a bundle: outer IPv4 | AH | ESP | inner, ESP built first, AH's ICV last. */
static uint32_t bundle_packet(struct sa *ah, struct sa *esp, uint8_t *ip, const uint8_t *inner, uint32_t inner_len)
{
	uint32_t ah_len = ah_hdr_len(ah, 4), total;
	int n = esp_encap(esp, ip + 20 + ah_len, 2048 - 20 - ah_len, inner, inner_len, NH_IPV4);

	if (n < 0)
		return 0;
	total = 20 + ah_len + (uint32_t)n;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(total >> 8);
	ip[3] = (uint8_t)total;
	ip[8] = 64;
	ip[9] = 51;
	memcpy(ip + 12, (const uint8_t[]){ 192, 0, 2, 1, 198, 51, 100, 2 }, 8);
	return ah_encap(ah, ip, total, 20, IPPROTO_ESP_) == 0 ? total : 0;
}

/* What the wire does with it: AH verified, then the ESP SA of the same policy found and decrypted. */
static int bundle_open(const struct sad *sad, uint8_t *ip, uint32_t len, uint8_t **inner, uint32_t *inner_len)
{
	struct sa *ah = sad_lookup(sad, rd32(ip + 24), PROTO_AH), *esp;
	uint8_t *p, nh;
	uint32_t plen;
	int rc, why;

	if (!ah)
		return -XE_BAD_AH_SPI;
	if ((rc = ah_decap(ah, ip, len, 20, &p, &plen, &nh)) < 0)
		return rc;
	if (nh != IPPROTO_ESP_)
		return -XE_MALFORMED_PACKET;
	if (!(esp = sad_bundle_esp(sad, ah, rd32(p), &why)))
		return -why;
	if ((rc = esp_decap(esp, p, plen, inner, inner_len, &nh)) < 0)
		return rc;
	return nh == NH_IPV4 ? 0 : -XE_MALFORMED_PACKET;
}

static void packets(void)
{
	struct sa *ah_out = make_sa(PROTO_AH, 0x4000, DIR_OUT, 1), *esp_out = make_sa(PROTO_ESP, 0x4000, DIR_OUT, 1);
	struct sa *ah_in = make_sa(PROTO_AH, 0x4000, DIR_IN, 1), *esp_in = make_sa(PROTO_ESP, 0x4000, DIR_IN, 1);
	struct sa *other_esp = make_sa(PROTO_ESP, 0x4001, DIR_IN, 2);
	struct sa *list[] = { esp_in, ah_in, other_esp };
	struct sad *sad = sad_build(list, 3);
	uint8_t pkt[2048], copy[2048], in[200], *inner;
	uint32_t len, inner_len;

	if (!ah_out || !esp_out || !ah_in || !esp_in || !other_esp || !sad) {
		CHECK(0, "bundle SAs and SAD built");
		return;
	}
	CHECK(sad_lookup(sad, 0x4000, PROTO_AH) == ah_in && sad_lookup(sad, 0x4000, PROTO_ESP) == esp_in,
	      "one inbound SPI, two SAs: AH and ESP each find their own");
	inner_packet(in, 100, 0);
	len = bundle_packet(ah_out, esp_out, pkt, in, 100);
	CHECK(len == 20 + ah_hdr_len(ah_out, 4) + esp_overhead(esp_out, 100) + 100 && pkt[9] == 51 &&
	      pkt[20] == IPPROTO_ESP_ && rd32(pkt + 20 + ah_hdr_len(ah_out, 4)) == 0x4000,
	      "outer IP | AH (next header 50) | ESP (SPI 0x4000): %u bytes", len);
	memcpy(copy, pkt, len);
	CHECK(bundle_open(sad, pkt, len, &inner, &inner_len) == 0 && inner_len == 100 && memcmp(inner, in, 100) == 0,
	      "AH verifies, ESP decrypts: the inner packet comes back");
	CHECK_EQ(bundle_open(sad, copy, len, &inner, &inner_len), -XE_BAD_SEQUENCE_NUMBER,
	         "the same bundle packet again: AH's replay window stops it");
	CHECK(atomic_load(&ah_in->st.replay_drops) == 1 && atomic_load(&esp_in->st.replay_drops) == 0,
	      "counted on the AH SA");

	/* A changed ESP byte is AH's to catch: ESP never sees it. */
	len = bundle_packet(ah_out, esp_out, pkt, in, 100);
	pkt[len - 1] ^= 1;
	CHECK_EQ(bundle_open(sad, pkt, len, &inner, &inner_len), -XE_AH_DIGEST_MISMATCH,
	         "a changed ESP byte fails AH's ICV");
	CHECK(atomic_load(&ah_in->st.auth_drops) == 1 && atomic_load(&esp_in->st.auth_drops) == 0,
	      "the auth drop is the AH SA's");

	/* The ESP SA's own window: its sequence number replayed under a fresh AH one. */
	len = bundle_packet(ah_out, esp_out, pkt, in, 100);
	CHECK_EQ(bundle_open(sad, pkt, len, &inner, &inner_len), 0, "the next bundle packet passes");
	esp_out->seq--;
	len = bundle_packet(ah_out, esp_out, pkt, in, 100);
	CHECK_EQ(bundle_open(sad, pkt, len, &inner, &inner_len), -XE_BAD_SEQUENCE_NUMBER,
	         "an ESP sequence number seen before, inside a new AH packet: ESP's replay window stops it");
	CHECK_EQ(atomic_load(&esp_in->st.replay_drops), 1, "counted on the ESP SA");

	/* Another policy's ESP SA inside this bundle's AH. */
	{
		struct sa *wrong = make_sa(PROTO_ESP, 0x4001, DIR_OUT, 2);

		len = wrong ? bundle_packet(ah_out, wrong, pkt, in, 100) : 0;
		CHECK_EQ(bundle_open(sad, pkt, len, &inner, &inner_len), -XE_INBOUND_POLICY_FAILURE,
		         "ESP of another policy's SA inside the bundle's AH: inbound policy failure");
		sa_destroy(wrong);
	}
	/* The bundle's ESP SA not (yet) there. */
	{
		struct sa *missing = make_sa(PROTO_ESP, 0x4002, DIR_OUT, 1);

		len = missing ? bundle_packet(ah_out, missing, pkt, in, 100) : 0;
		CHECK_EQ(bundle_open(sad, pkt, len, &inner, &inner_len), -XE_BAD_ESP_SPI,
		         "ESP under an SPI without an inbound ESP SA: bad ESP SPI");
		sa_destroy(missing);
	}
	sad_free(sad);
	sa_destroy(ah_out);
	sa_destroy(esp_out);
	sa_destroy(ah_in);
	sa_destroy(esp_in);
	sa_destroy(other_esp);
}

/* ---- the SA registry behind SA_ADD, SA_DEL and GET_SPI, on a wire without ports ---- */

static const char *const conf_doc =
	"{\"ports\": {\"black\": {\"interface\": \"b\", \"addresses\": [\"192.0.2.10/24\"]}},"
	" \"policies\": [{\"name\": \"b\", \"action\": \"protect\", \"peer\": \"198.51.100.1\", \"sa_type\": \"ahesp\","
	" \"src\": \"198.18.0.0/24\", \"dst\": \"198.19.0.0/24\"}]}";

static struct sa_conf sa_json(const char *json)
{
	struct sa_conf c;
	char err[256];
	json_t *j = json_loads(json, 0, NULL);

	memset(&c, 0, sizeof c);
	if (!j || sa_from_json(j, &c, err, sizeof err) < 0)
		printf("# sa_from_json: %s\n", j ? err : "bad JSON");
	json_decref(j);
	return c;
}

#define KEY32 "0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY20 "0x000102030405060708090a0b0c0d0e0f10111213"

static int add(struct wire *w, int proto, uint32_t spi, const char *dir)
{
	char json[512], err[256] = "";
	struct sa_conf c;
	int rc;

	snprintf(json, sizeof json,
	         proto == PROTO_AH ? "{\"spi\": %u, \"direction\": \"%s\", \"policy\": \"b\", \"protocol\": \"ah\","
	                             " \"integ\": \"hmac-sha256-128\", \"integ_key\": \"" KEY32 "\"}"
	                           : "{\"spi\": %u, \"direction\": \"%s\", \"policy\": \"b\", \"enc\": \"aes-gcm-128\","
	                             " \"enc_key\": \"" KEY20 "\"}",
	         spi, dir);
	c = sa_json(json);
	rc = wire_sa_add(w, &c, 1, err, sizeof err);
	if (rc < 0)
		printf("# SA_ADD %s 0x%x %s: %s\n", proto == PROTO_AH ? "ah" : "esp", spi, dir, err);
	return rc;
}

/* Is the policy's outbound bundle complete in the published snapshot? */
static bool out_bundle(struct wire *w, bool *esp, bool *ah)
{
	const struct snapshot *s = atomic_load(&w->snap);
	const struct spd_policy *p = spd_by_id(s->spd, 1);

	*esp = p && s->out_sa[p->index] && s->out_sa[p->index]->conf.proto == PROTO_ESP;
	*ah = p && s->out_ah[p->index] && s->out_ah[p->index]->conf.proto == PROTO_AH;
	return *esp && *ah;
}

static bool in_pair(struct wire *w, uint32_t spi)
{
	const struct snapshot *s = atomic_load(&w->snap);
	struct sa *ah = sad_lookup(s->sad, spi, PROTO_AH), *esp = sad_lookup(s->sad, spi, PROTO_ESP);

	return ah && esp && ah->conf.proto == PROTO_AH && esp->conf.proto == PROTO_ESP;
}

static void registry(void)
{
	/* struct wire holds cache-line-aligned members (port counters, the workers): calloc promises only 16. */
	struct wire *w = aligned_alloc(_Alignof(struct wire), sizeof *w);
	struct wire_config cfg;
	struct policy_conf *pol;
	uint32_t npol, spi = 0, spi2 = 0;
	char err[256] = "";
	json_t *j = json_loads(conf_doc, 0, NULL);
	bool esp, ah;

	memset(w, 0, sizeof *w);
	w->ev_fd = -1;
	w->wk[0].wake_fd = w->wk[1].wake_fd = -1;
	atomic_store(&w->wk[0].idle, 1);
	atomic_store(&w->wk[1].idle, 1);
	if (!j || config_from_json(j, &cfg, err, sizeof err) < 0) {
		CHECK(0, "configuration parses: %s", err);
		return;
	}
	json_decref(j);
	pol = cfg.pol, npol = cfg.npol;
	cfg.pol = NULL, cfg.npol = 0;
	w->cfg = cfg;
	CHECK_EQ(wire_spd_set(w, pol, npol, -1, err, sizeof err), 0, "an ahesp policy is set: %s", err);

	/* ikechild's order: the SPI first, then the SAs one by one, inbound ESP before AH. */
	CHECK_EQ(wire_get_spi(w, &spi), 0, "GET_SPI reserves an SPI");
	CHECK_EQ(add(w, PROTO_ESP, spi, "in"), 0, "the bundle's inbound ESP SA goes in alone");
	CHECK(!in_pair(w, spi), "the inbound pair is not complete yet");
	CHECK_EQ(add(w, PROTO_ESP, 0x7001, "out"), 0, "then the outbound ESP SA");
	CHECK(!out_bundle(w, &esp, &ah) && esp && !ah, "outbound: ESP without AH is no bundle (fails closed)");
	CHECK_EQ(add(w, PROTO_AH, spi, "in"), 0, "the inbound AH SA takes the same SPI");
	CHECK(in_pair(w, spi), "both inbound SAs are in the SAD under one SPI");
	CHECK_EQ(add(w, PROTO_AH, spi, "in"), -XE_SA_EXISTS, "a second inbound AH SA on that SPI is refused");
	CHECK_EQ(add(w, PROTO_AH, 0x7002, "out"), 0, "the outbound AH SA last");
	CHECK(out_bundle(w, &esp, &ah), "outbound: the bundle is complete");
	for (int i = 0; i < 200 && spi2 != spi; i++)
		if (wire_get_spi(w, &spi2) < 0)
			spi2 = spi;
	CHECK(spi2 != spi, "GET_SPI never hands out the bundle's SPI again");

	/* Policy and SAs must agree: the policy cannot become esp while AH SAs serve it. */
	pol[0].sa_type = SATYPE_ESP;
	CHECK_EQ(wire_spd_set(w, pol, npol, -1, err, sizeof err), -XE_BAD_PARAM, "sa_type esp with AH SAs: refused: %s",
	         err);
	pol[0].sa_type = SATYPE_AHESP;

	/* SA_DEL names the protocol: the other SA under the same SPI stays. */
	CHECK_EQ(wire_sa_del(w, spi, DIR_IN, PROTO_AH), 0, "SA_DEL in ah");
	CHECK(!in_pair(w, spi) && sad_lookup(atomic_load(&w->snap)->sad, spi, PROTO_ESP), "the ESP SA stays");
	CHECK_EQ(wire_sa_del(w, spi, DIR_IN, PROTO_AH), -XE_SA_NOT_FOUND, "SA_DEL in ah again: not found");
	CHECK_EQ(wire_sa_del(w, 0x7002, DIR_OUT, PROTO_ESP), -XE_SA_NOT_FOUND, "SA_DEL names the wrong protocol: not found");
	CHECK_EQ(wire_sa_del(w, 0x7002, DIR_OUT, PROTO_AH), 0, "SA_DEL out ah");
	CHECK(!out_bundle(w, &esp, &ah) && esp && !ah, "outbound: the bundle is incomplete again");

	/* The other order: AH first. */
	CHECK_EQ(add(w, PROTO_AH, spi, "in"), 0, "the inbound AH SA before the ESP one");
	CHECK(in_pair(w, spi), "the pair is complete again");
	CHECK_EQ(add(w, PROTO_AH, 0x7003, "out"), 0, "an outbound AH SA");
	CHECK(out_bundle(w, &esp, &ah), "outbound: complete");
	CHECK_EQ(wire_sa_del(w, spi, DIR_IN, -1), 0, "SA_DEL without a protocol");
	CHECK(!sad_lookup(atomic_load(&w->snap)->sad, spi, PROTO_ESP) && !sad_lookup(atomic_load(&w->snap)->sad, spi, PROTO_AH),
	      "takes both SAs of the SPI");
	free(pol);
	wire_fini(w);
	free(w);
}

int main(void)
{
	packets();
	registry();
	return check_done();
}
