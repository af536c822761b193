/* test_ike_frag: RFC 7383 split and reassembly (order, duplicates, forgeries, bounds, time-outs, re-fragmentation)
 * and the Wireshark key lines, proven by letting tshark decrypt an IKE message and an ESP packet with them. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "check.h"
#include "crypto.h"
#include "msg.h"

static const struct ike_suite gcm = { IKE_ENCR_AES_GCM_16, 256, IKE_INTEG_NONE, IKE_PRF_HMAC_SHA2_256 };
static const struct ike_suite cbc = { IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128, IKE_PRF_HMAC_SHA2_256 };

static uint8_t ekey[36], akey[32];

static void sk_pair(const struct ike_suite *s, struct ike_sk **out, struct ike_sk **in)
{
	size_t el = ike_encr_keymat_len(s->encr, s->key_bits), al = ike_integ_key_len(s->integ);
	ike_sk_new(s, ekey, el, akey, al, out);
	ike_sk_new(s, ekey, el, akey, al, in);
}

static void header(uint8_t *hdr, uint32_t msg_id)
{
	memset(hdr, 0, IKE_HDR_LEN);
	memset(hdr, 0x11, 8);
	memset(hdr + 8, 0x22, 8);
	hdr[17] = 0x20;
	hdr[18] = IKE_AUTH;
	hdr[19] = IKE_FLAG_I;
	hdr[23] = (uint8_t)msg_id;
}

#define MAXF 16
static uint8_t frags[MAXF * 1500];
static size_t flen[MAXF], foff[MAXF];

static int split(struct ike_sk *sk, uint32_t msg_id, const uint8_t *inner, size_t len, size_t max_msg)
{
	uint8_t hdr[IKE_HDR_LEN];
	header(hdr, msg_id);
	int n = ike_frag_split(sk, hdr, IKE_PL_IDI, inner, len, max_msg, frags, sizeof frags, flen, MAXF);
	for (int i = 0, o = 0; i < n; o += (int)flen[i], i++)
		foff[i] = (size_t)o;
	return n;
}

static void test_split(const char *name, const struct ike_suite *s)
{
	struct ike_sk *out, *in;
	struct ike_defrag *d;
	uint8_t inner[3000], got[4000], first = 0;
	struct ike_msg m;
	int n, rc = 0;

	for (size_t i = 0; i < sizeof inner; i++)
		inner[i] = (uint8_t)(i * 7 + 3);
	sk_pair(s, &out, &in);
	n = split(out, 1, inner, sizeof inner, 576);
	CHECK(n == (s->encr == IKE_ENCR_AES_CBC ? 7 : 6), "%s: 3000 bytes in 576-byte messages: %d fragments", name, n);
	bool sizes = true, hdrs = true;
	for (int i = 0; i < n; i++) {
		sizes = sizes && flen[i] <= 576;
		const uint8_t *f = frags + foff[i];
		hdrs = hdrs && ike_msg_decode(&m, f, flen[i]) == 0 && m.n_payloads == 1 &&
			m.payloads[0].type == IKE_PL_SKF && m.payloads[0].u.sk.frag_num == i + 1 &&
			m.payloads[0].u.sk.frag_total == n && m.payloads[0].u.sk.next_inner == (i ? 0 : IKE_PL_IDI) &&
			m.msg_id == 1 && m.exchange == IKE_AUTH;
	}
	CHECK(sizes, "%s: every fragment fits 576 bytes", name);
	CHECK(flen[0] >= 560, "%s: and fills it (%zu)", name, flen[0]);
	CHECK(hdrs, "%s: each decodes as one SKF with number/total, only the first names IDi", name);

	ike_defrag_new(IKE_FRAG_MAX, 64 * 1024, 5000, &d);
	bool quiet = true;
	for (int i = n - 1; i >= 1; i--) {   /* backwards, each twice */
		quiet = quiet && ike_defrag_add(d, in, frags + foff[i], flen[i], 100, got, sizeof got, &first) == 0;
		quiet = quiet && ike_defrag_add(d, in, frags + foff[i], flen[i], 100, got, sizeof got, &first) == 0;
	}
	CHECK(quiet, "%s: fragments out of order and duplicated are taken quietly", name);
	CHECK_EQ(ike_defrag_deadline(d), 5100, "%s: the partial message expires 5 s after its first fragment", name);
	uint8_t bad[1500];
	memcpy(bad, frags, flen[0]);
	bad[flen[0] - 20] ^= 1;
	CHECK(ike_defrag_add(d, in, bad, flen[0], 100, got, sizeof got, &first) < 0, "%s: a forged fragment is refused",
		name);
	rc = ike_defrag_add(d, in, frags, flen[0], 200, got, sizeof got, &first);
	CHECK_EQ(rc, (int)sizeof inner, "%s: the last one completes the message", name);
	CHECK(rc == (int)sizeof inner && !memcmp(got, inner, sizeof inner) && first == IKE_PL_IDI,
		"%s: reassembled inner payloads equal the original, first payload IDi", name);
	CHECK_EQ(ike_defrag_deadline(d), UINT64_MAX, "%s: nothing waiting afterwards", name);

	/* Time-out: what came before is dropped. */
	ike_defrag_add(d, in, frags + foff[1], flen[1], 1000, got, sizeof got, &first);
	for (int i = 0; i < n; i++)
		if (i != 1)
			rc = ike_defrag_add(d, in, frags + foff[i], flen[i], 7000, got, sizeof got, &first);
	CHECK_EQ(rc, 0, "%s: after the time-out the old fragment 2 no longer counts", name);
	rc = ike_defrag_add(d, in, frags + foff[1], flen[1], 7000, got, sizeof got, &first);
	CHECK_EQ(rc, (int)sizeof inner, "%s: its retransmission completes it", name);

	/* The sender re-fragments smaller: a larger total restarts, a smaller one is stale. */
	n = split(out, 2, inner, sizeof inner, 1400);
	CHECK_EQ(n, 3, "%s: 1400-byte messages: 3 fragments", name);
	uint8_t big0[1500];
	memcpy(big0, frags, flen[0]);
	size_t big0_len = flen[0];
	ike_defrag_add(d, in, frags + foff[1], flen[1], 8000, got, sizeof got, &first);
	n = split(out, 2, inner, sizeof inner, 700);
	for (int i = 0; i < n; i++)
		rc = ike_defrag_add(d, in, frags + foff[i], flen[i], 8000, got, sizeof got, &first);
	CHECK(rc == (int)sizeof inner && !memcmp(got, inner, sizeof inner), "%s: re-fragmented in %d: reassembled", name, n);
	ike_defrag_add(d, in, frags, flen[0], 9000, got, sizeof got, &first);
	CHECK_EQ(ike_defrag_add(d, in, big0, big0_len, 9000, got, sizeof got, &first), 0,
		"%s: a stale fragment of the larger split is ignored", name);
	CHECK(ike_defrag_deadline(d) != UINT64_MAX, "%s: and the new reassembly continues", name);
	ike_defrag_reset(d);
	ike_defrag_free(d);

	/* Bounds. */
	n = split(out, 3, inner, sizeof inner, 576);
	ike_defrag_new(4, 64 * 1024, 5000, &d);
	CHECK_EQ(ike_defrag_add(d, in, frags, flen[0], 0, got, sizeof got, &first), -IKE_E_TOO_MANY,
		"%s: more fragments than allowed: IKE_E_TOO_MANY", name);
	ike_defrag_free(d);
	ike_defrag_new(IKE_FRAG_MAX, 2000, 5000, &d);
	bool refused = false;
	for (int i = 0; i < n; i++)
		refused = refused || ike_defrag_add(d, in, frags + foff[i], flen[i], 0, got, sizeof got, &first) ==
			-IKE_E_TOO_MANY;
	CHECK(refused, "%s: more bytes than allowed: IKE_E_TOO_MANY", name);
	ike_defrag_free(d);
	CHECK_EQ(split(out, 4, inner, sizeof inner, 200), -IKE_E_TOO_MANY, "%s: more than 16 fragments refused", name);
	CHECK_EQ(split(out, 4, inner, sizeof inner, 60), -IKE_E_BAD_PARAM, "%s: a size nothing fits in refused", name);
	CHECK_EQ(ike_defrag_new(0, 100, 1, &d), -IKE_E_BAD_PARAM, "zero fragments refused");
	ike_sk_free(out);
	ike_sk_free(in);
}

/* ---- Wireshark ---- */

static char tmpdir[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }

/* A pcap of one raw IPv4 packet (LINKTYPE_RAW). */
static void write_pcap(const char *file, uint8_t proto, const uint8_t *payload, size_t len)
{
	uint8_t ip[2048] = { 0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2 };
	size_t hl = 20;
	if (proto == 17) {
		put16(ip + 20, 500);
		put16(ip + 22, 500);
		put16(ip + 24, (unsigned)(8 + len));
		hl += 8;
	}
	memcpy(ip + hl, payload, len);
	put16(ip + 2, (unsigned)(hl + len));
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(ip + 10, ~sum & 0xffff);
	uint32_t gh[6] = { 0xa1b2c3d4, 0x00040002, 0, 0, 65535, 101 }, rh[4] = { 1700000000, 0, (uint32_t)(hl + len),
		(uint32_t)(hl + len) };
	FILE *f = fopen(file, "wb");
	fwrite(gh, 4, 6, f);   /* host byte order: pcap's magic says which */
	fwrite(rh, 4, 4, f);
	fwrite(ip, 1, hl + len, f);
	fclose(f);
}

static void test_ikev2_line(const char *name, const struct ike_suite *s, const char *want_encr)
{
	struct ike_sa_keys k = { 0 };
	char line[1024];

	for (int i = 0; i < 36; i++)
		k.sk_ei[i] = (uint8_t)(0xa0 + i), k.sk_er[i] = (uint8_t)(0x50 + i);
	for (int i = 0; i < 32; i++)
		k.sk_ai[i] = (uint8_t)(0x10 + i), k.sk_ar[i] = (uint8_t)(0x30 + i);
	k.encr_len = (uint8_t)ike_encr_keymat_len(s->encr, s->key_bits);
	k.integ_len = (uint8_t)ike_integ_key_len(s->integ);
	uint8_t spi_i[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, spi_r[8] = { 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8 };
	int n = ike_keyexport_ikev2(line, sizeof line, spi_i, spi_r, s->encr, s->key_bits, s->integ, &k);
	CHECK(n > 0 && (size_t)n == strlen(line), "%s: ikev2_decryption_table line (%d chars)", name, n);
	CHECK(!strncmp(line, "0102030405060708,f1f2f3f4f5f6f7f8,a0a1a2", 39), "%s: SPIs then SK_ei in bare hex: %.60s",
		name, line);
	CHECK(strstr(line, want_encr) != NULL, "%s: names %s", name, want_encr);
	char small[40];
	CHECK_EQ(ike_keyexport_ikev2(small, sizeof small, spi_i, spi_r, s->encr, s->key_bits, s->integ, &k), n,
		"%s: a short buffer gets the full length back", name);
	CHECK(strlen(small) == sizeof small - 1, "%s: and a terminated prefix", name);

	/* An IKE_AUTH request with an IDi inside SK, encrypted with SK_ei/SK_ai: tshark must read the IDi. */
	struct ike_sk *sk;
	ike_sk_new(s, k.sk_ei, k.encr_len, k.sk_ai, k.integ_len, &sk);
	struct ike_payload id = { .type = IKE_PL_IDI };
	id.u.id.type = IKE_ID_FQDN;
	id.u.id.data.p = (const uint8_t *)"tshark-reads-this.example.org";
	id.u.id.data.len = 29;
	uint8_t plain[256], msg[512];
	int pl = ike_payloads_encode(&id, 1, plain, sizeof plain);
	static struct ike_msg m;
	memset(&m, 0, sizeof m);
	memcpy(m.spi_i, spi_i, 8);
	memcpy(m.spi_r, spi_r, 8);
	m.version = 0x20;
	m.exchange = IKE_AUTH;
	m.flags = IKE_FLAG_I;
	m.msg_id = 1;
	struct ike_payload *skp = ike_msg_add(&m, IKE_PL_SK);
	skp->u.sk.next_inner = IKE_PL_IDI;
	int hl = ike_msg_encode(&m, msg, sizeof msg);
	int len = ike_sk_encrypt(sk, msg, sizeof msg, (size_t)hl - 4, plain, (size_t)pl);
	ike_sk_free(sk);
	CHECK(pl > 0 && hl > 0 && len > 0, "%s: IKE_AUTH encrypted (%d bytes)", name, len);
	char pcap[128];
	snprintf(pcap, sizeof pcap, "%s/ike.pcap", tmpdir);
	write_pcap(pcap, 17, msg, (size_t)len);
	/* The UAT record goes on the command line in single quotes; the line has none. */
	CHECK(sh("tshark -n -r %s -o 'uat:ikev2_decryption_table:%s' -V 2>/dev/null | grep -q tshark-reads-this.example.org",
		pcap, line) == 0, "%s: tshark decrypts the IKE_AUTH with the exported line and shows the IDi", name);
	CHECK(sh("tshark -n -r %s -V 2>/dev/null | grep -q tshark-reads-this.example.org", pcap) != 0,
		"%s: (without the line it cannot)", name);
}

static void test_esp_line(void)
{
	uint8_t key[36], src[4] = { 192, 0, 2, 1 }, dst[4] = { 192, 0, 2, 2 };
	char line[512];

	for (int i = 0; i < 36; i++)
		key[i] = (uint8_t)(0x40 + i);
	int n = ike_keyexport_esp_sa(line, sizeof line, 4, src, dst, 0xc0ffee01, IKE_ENCR_AES_GCM_16, 256, key, 36,
		IKE_INTEG_NONE, NULL, 0);
	CHECK(n > 0 && !strncmp(line, "\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0xc0ffee01\","
		"\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x404142", 91), "esp_sa line: %s", line);
	CHECK(strstr(line, "\",\"NULL\",\"\"") != NULL, "AEAD: authentication NULL with an empty key");
	uint8_t v6a[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }, v6b[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 };
	char l6[512];
	ike_keyexport_esp_sa(l6, sizeof l6, 6, v6a, v6b, 7, IKE_ENCR_AES_CBC, 128, key, 16,
		IKE_INTEG_HMAC_SHA2_256_128, key, 32);
	CHECK(!strncmp(l6, "\"IPv6\",\"2001:db8::1\",\"2001:db8::2\",\"0x00000007\",\"AES-CBC [RFC3602]\"", 66) &&
		strstr(l6, "\"HMAC-SHA-256-128 [RFC4868]\",\"0x4041") != NULL, "IPv6 CBC line: %s", l6);
	CHECK_EQ(ike_keyexport_esp_sa(l6, sizeof l6, 4, src, dst, 7, 99, 128, key, 16, IKE_INTEG_NONE, NULL, 0),
		-IKE_E_NOT_SUPPORTED, "unknown cipher refused");
	CHECK(ike_keyexport_esp_sa(l6, sizeof l6, 4, src, dst, 7, IKE_ENCR_3DES, 192, key, 24, IKE_INTEG_HMAC_MD5_96,
		key, 16) > 0 && strstr(l6, "\"TripleDES-CBC [RFC2451]\",\"0x4041") &&
		strstr(l6, "\"HMAC-MD5-96 [RFC2403]\",\"0x4041"), "legacy 3DES + HMAC-MD5-96 line: %s", l6);
	CHECK_EQ(ike_keyexport_esp_sa(l6, sizeof l6, 4, src, dst, 7, IKE_ENCR_AES_CCM_16, 128, key, 19, IKE_INTEG_NONE,
		NULL, 0), -IKE_E_NOT_SUPPORTED, "AES-CCM: Wireshark 4.0 has no ESP name for it");
	CHECK_EQ(ike_keyexport_esp_sa(l6, sizeof l6, 4, src, dst, 7, IKE_ENCR_AES_CTR, 128, key, 20,
		IKE_INTEG_AES_XCBC_96, key, 16), -IKE_E_NOT_SUPPORTED, "nor for AES-XCBC-96");

	/* An ESP packet (AES-GCM-256, RFC 4106) carrying an IPv4 packet to 198.18.2.77: tshark must see inside. */
	uint8_t esp[256], inner[28] = { 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 1, 5, 198, 18, 2, 77,
		0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0 };
	put32(esp, 0xc0ffee01);
	put32(esp + 4, 1);
	memset(esp + 8, 0x5a, 8);   /* IV */
	uint8_t pt[32], nonce[12];
	memcpy(pt, inner, 28);
	pt[28] = 1, pt[29] = 2, pt[30] = 2, pt[31] = 4;   /* padding 1 2, pad length 2, next header IPv4 */
	memcpy(nonce, key + 32, 4);
	memcpy(nonce + 4, esp + 8, 8);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ol;
	EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce);
	EVP_EncryptUpdate(c, NULL, &ol, esp, 8);
	EVP_EncryptUpdate(c, esp + 16, &ol, pt, 32);
	EVP_EncryptFinal_ex(c, esp + 48, &ol);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, esp + 48);
	EVP_CIPHER_CTX_free(c);
	char pcap[128];
	snprintf(pcap, sizeof pcap, "%s/esp.pcap", tmpdir);
	write_pcap(pcap, 50, esp, 64);
	CHECK(sh("tshark -n -r %s -o esp.enable_encryption_decode:TRUE -o 'uat:esp_sa:%s' -T fields -e ip.dst 2>/dev/null "
		"| grep -q 198.18.2.77", pcap, line) == 0, "tshark decrypts the ESP packet with the exported line");
	CHECK(sh("tshark -n -r %s -o esp.enable_encryption_decode:TRUE -T fields -e ip.dst 2>/dev/null "
		"| grep -q 198.18.2.77", pcap) != 0, "(without the line it cannot)");

	/* The same inner packet under AES-CTR-128 (RFC 3686: counter block = nonce | IV | 1), no integrity. */
	uint8_t ctr[16];
	memcpy(ctr, key + 16, 4);
	memcpy(ctr + 4, esp + 8, 8);
	ctr[12] = 0, ctr[13] = 0, ctr[14] = 0, ctr[15] = 1;
	put32(esp, 0xc0ffee02);
	c = EVP_CIPHER_CTX_new();
	EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, key, ctr);
	EVP_EncryptUpdate(c, esp + 16, &ol, pt, 32);
	EVP_CIPHER_CTX_free(c);
	n = ike_keyexport_esp_sa(line, sizeof line, 4, src, dst, 0xc0ffee02, IKE_ENCR_AES_CTR, 128, key, 20,
		IKE_INTEG_NONE, NULL, 0);
	CHECK(n > 0 && strstr(line, "\"AES-CTR [RFC3686]\",\"0x4041") != NULL, "AES-CTR line: %s", line);
	write_pcap(pcap, 50, esp, 48);
	CHECK(sh("tshark -n -r %s -o esp.enable_encryption_decode:TRUE -o 'uat:esp_sa:%s' -T fields -e ip.dst 2>/dev/null "
		"| grep -q 198.18.2.77", pcap, line) == 0, "tshark decrypts the AES-CTR packet with the exported line");
}

int main(void)
{
	for (size_t i = 0; i < sizeof ekey; i++)
		ekey[i] = (uint8_t)(i + 1);
	for (size_t i = 0; i < sizeof akey; i++)
		akey[i] = (uint8_t)(0x80 + i);
	test_split("AES-GCM-256", &gcm);
	test_split("AES-CBC-256/SHA-256", &cbc);

	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_ike_frag.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	if (system("command -v tshark >/dev/null 2>&1") == 0) {
		test_ikev2_line("AES-CBC-256/SHA-256", &cbc, "\"AES-CBC-256 [RFC3602]\"");
		test_ikev2_line("AES-GCM-256", &gcm, "\"AES-GCM-256 with 16 octet ICV [RFC5282]\"");
		test_esp_line();
	} else {
		printf("# tshark not installed: Wireshark lines not checked against it\n");
	}
	if (!getenv("KEEP"))
		sh("rm -rf %s", tmpdir);
	return check_done();
}
