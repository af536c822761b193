/* test_ike_engine.c: the IKEv2 engine: proposal strings, then two engines talking in memory through every exchange. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ike/ike.h"

static void test_proposals(void)
{
	struct ike_proposal_conf p[8];
	char err[128], text[128];
	int n;

	n = ike_proposals_parse("aes256gcm16-prfsha384-curve25519, aes256-sha256-modp3072", false, false, p, 8, err,
		sizeof err);
	CHECK_EQ(n, 2, "two IKE proposals (%s)", err);
	CHECK(p[0].n_encr == 1 && p[0].encr[0].id == IKE_ENCR_AES_GCM_16 && p[0].encr[0].key_bits == 256 &&
	      p[0].n_integ == 0 && p[0].n_prf == 1 && p[0].prf[0] == IKE_PRF_HMAC_SHA2_384 &&
	      p[0].n_dh == 1 && p[0].dh[0] == IKE_DH_CURVE25519, "GCM-256, PRF SHA-384, Curve25519");
	CHECK(p[1].encr[0].id == IKE_ENCR_AES_CBC && p[1].integ[0] == IKE_INTEG_HMAC_SHA2_256_128 &&
	      p[1].n_prf == 1 && p[1].prf[0] == IKE_PRF_HMAC_SHA2_256 && p[1].dh[0] == IKE_DH_MODP3072,
	      "CBC-256, SHA-256 as integrity and PRF, MODP 3072");
	ike_proposal_format(&p[1], false, text, sizeof text);
	CHECK(strcmp(text, "aes256-sha256-prfsha256-modp3072") == 0, "formatted back: %s", text);
	n = ike_proposals_parse("aes256gcm16-curve25519", true, false, p, 8, err, sizeof err);
	CHECK(n == 1 && p[0].n_dh == 1 && p[0].n_esn == 1 && p[0].esn[0] == 0, "ESP proposal with PFS, no ESN");
	n = ike_proposals_parse("chacha20poly1305-esn", true, false, p, 8, err, sizeof err);
	CHECK(n == 1 && p[0].encr[0].id == IKE_ENCR_CHACHA20_POLY1305 && p[0].esn[0] == 1, "ChaCha20-Poly1305 with ESN");
	ike_proposal_format(&p[0], true, text, sizeof text);
	CHECK(strcmp(text, "chacha20poly1305-esn") == 0, "formatted back: %s", text);
	n = ike_proposals_parse("aes256-sha256-modp3072,aes999-sha256", true, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "'aes999'") && strstr(err, "proposal 2"), "bad token named: %s", err);
	n = ike_proposals_parse("aes256-sha256-modp1024", false, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "legacy"), "legacy group refused: %s", err);
	CHECK_EQ(ike_proposals_parse("aes256-sha256-modp1024", false, true, p, 8, err, sizeof err), 1,
		"legacy group when enabled");
	n = ike_proposals_parse("aes256gcm16-curve25519", false, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "PRF"), "AEAD IKE proposal needs a PRF: %s", err);
	n = ike_proposals_parse("aes256gcm16-sha256-prfsha256-x25519", false, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "AEAD"), "AEAD with integrity refused: %s", err);
	n = ike_proposals_parse("aes256-prfsha256-curve25519", true, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "prfsha256"), "PRF in an ESP proposal refused: %s", err);
	CHECK_EQ(ike_proposals_parse("", false, false, p, 8, err, sizeof err), -IKE_E_BAD_PARAM, "empty refused");
}

int main(void)
{
	test_proposals();
	return check_done();
}
