/* ike/keyexport.c: key material as Wireshark's esp_sa and ikev2_decryption_table UAT lines, for reading captures. */
#include <arpa/inet.h>
#include <stdio.h>

#include "crypto.h"

/* The names are Wireshark's value strings (packet-ipsec.c, packet-isakmp.c): the UAT files match them exactly.
 * Wireshark 4.0 (Debian 12) has no ESP name for AES-CCM, AES-GMAC or AES-XCBC: those children export nothing. */

static const char *esp_encr_name(uint16_t encr)
{
	switch (encr) {
	case IKE_ENCR_3DES: return "TripleDES-CBC [RFC2451]";
	case IKE_ENCR_AES_CBC: return "AES-CBC [RFC3602]";
	case IKE_ENCR_AES_CTR: return "AES-CTR [RFC3686]";   /* the key with its 4-byte nonce, as we hold it */
	case IKE_ENCR_AES_GCM_16: return "AES-GCM with 16 octet ICV [RFC4106]";
	case IKE_ENCR_CHACHA20_POLY1305: return "ChaCha20 with Poly1305 [RFC7634]";
	default: return NULL;
	}
}

static const char *esp_integ_name(uint16_t integ)
{
	switch (integ) {
	case IKE_INTEG_NONE: return "NULL";
	case IKE_INTEG_HMAC_SHA1_96: return "HMAC-SHA-1-96 [RFC2404]";
	case IKE_INTEG_HMAC_SHA2_256_128: return "HMAC-SHA-256-128 [RFC4868]";
	case IKE_INTEG_HMAC_SHA2_384_192: return "HMAC-SHA-384-192 [RFC4868]";
	case IKE_INTEG_HMAC_SHA2_512_256: return "HMAC-SHA-512-256 [RFC4868]";
	case IKE_INTEG_HMAC_MD5_96: return "HMAC-MD5-96 [RFC2403]";
	default: return NULL;
	}
}

/* Wireshark's IKEv2 table has no ChaCha20-Poly1305. */
static const char *ike_encr_name(uint16_t encr, uint16_t bits)
{
	bool b256 = bits == 256, b128 = bits == 128 || bits == 0;

	if (encr == IKE_ENCR_AES_CBC && (b128 || b256))
		return b256 ? "AES-CBC-256 [RFC3602]" : "AES-CBC-128 [RFC3602]";
	if (encr == IKE_ENCR_AES_GCM_16 && (b128 || b256))
		return b256 ? "AES-GCM-256 with 16 octet ICV [RFC5282]" : "AES-GCM-128 with 16 octet ICV [RFC5282]";
	return NULL;
}

static const char *ike_integ_name(uint16_t integ)
{
	switch (integ) {
	case IKE_INTEG_NONE: return "NONE [RFC4306]";
	case IKE_INTEG_HMAC_SHA1_96: return "HMAC_SHA1_96 [RFC2404]";
	case IKE_INTEG_HMAC_SHA2_256_128: return "HMAC_SHA2_256_128 [RFC4868]";
	case IKE_INTEG_HMAC_SHA2_384_192: return "HMAC_SHA2_384_192 [RFC4868]";
	case IKE_INTEG_HMAC_SHA2_512_256: return "HMAC_SHA2_512_256 [RFC4868]";
	default: return NULL;
	}
}

/* Appends ",<q><prefix><hex><q>" (no comma when first), q = '"' for UAT string fields, nothing for UAT byte fields;
 * keeps snprintf's "would be" length. */
static int put_hex(char *buf, size_t len, int n, bool comma, bool quoted, const char *prefix, const uint8_t *p,
	size_t plen)
{
	const char *q = quoted ? "\"" : "";

	n += snprintf((size_t)n < len ? buf + n : NULL, (size_t)n < len ? len - (size_t)n : 0, "%s%s%s",
		comma ? "," : "", q, plen ? prefix : "");
	for (size_t i = 0; i < plen; i++)
		n += snprintf((size_t)n < len ? buf + n : NULL, (size_t)n < len ? len - (size_t)n : 0, "%02x", p[i]);
	return n + snprintf((size_t)n < len ? buf + n : NULL, (size_t)n < len ? len - (size_t)n : 0, "%s", q);
}

static int put_str(char *buf, size_t len, int n, const char *s)
{
	return n + snprintf((size_t)n < len ? buf + n : NULL, (size_t)n < len ? len - (size_t)n : 0, ",\"%s\"", s);
}

int ike_keyexport_esp_sa(char *buf, size_t len, uint8_t family, const uint8_t *src, const uint8_t *dst,
	uint32_t spi, uint16_t encr, uint16_t key_bits, const uint8_t *ekey, size_t ekey_len, uint16_t integ,
	const uint8_t *akey, size_t akey_len)
{
	const char *en = esp_encr_name(encr), *an = esp_integ_name(integ);
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int af = family == 6 ? AF_INET6 : AF_INET;

	(void)key_bits;   /* Wireshark takes the key length from the key */
	if (!en || !an || (family != 4 && family != 6))
		return -IKE_E_NOT_SUPPORTED;
	inet_ntop(af, src, s, sizeof s);
	inet_ntop(af, dst, d, sizeof d);
	int n = snprintf(buf, len, "\"IPv%u\",\"%s\",\"%s\",\"0x%08x\",\"%s\"", family, s, d, spi, en);
	n = put_hex(buf, len, n, true, true, "0x", ekey, ekey_len);
	n = put_str(buf, len, n, an);
	return put_hex(buf, len, n, true, true, "0x", integ == IKE_INTEG_NONE ? NULL : akey,
		integ == IKE_INTEG_NONE ? 0 : akey_len);
}

int ike_keyexport_ikev2(char *buf, size_t len, const uint8_t *spi_i, const uint8_t *spi_r, uint16_t encr,
	uint16_t key_bits, uint16_t integ, const struct ike_sa_keys *k)
{
	const char *en = ike_encr_name(encr, key_bits), *an = ike_integ_name(integ);

	if (!en || !an)
		return -IKE_E_NOT_SUPPORTED;
	if (len)
		buf[0] = '\0';
	int n = put_hex(buf, len, 0, false, false, "", spi_i, 8);
	n = put_hex(buf, len, n, true, false, "", spi_r, 8);
	n = put_hex(buf, len, n, true, false, "", k->sk_ei, k->encr_len);
	n = put_hex(buf, len, n, true, false, "", k->sk_er, k->encr_len);
	n = put_str(buf, len, n, en);
	n = put_hex(buf, len, n, true, false, "", k->sk_ai, integ == IKE_INTEG_NONE ? 0 : k->integ_len);
	n = put_hex(buf, len, n, true, false, "", k->sk_ar, integ == IKE_INTEG_NONE ? 0 : k->integ_len);
	return put_str(buf, len, n, an);
}
