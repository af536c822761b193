/* msg.c: the IKEv2 message codec: strict decoding of RFC 7296 §3 / RFC 7383 datagrams, encoding, and a readable trace. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "msg.h"

/* ---- errors ---- */

#define IKE_ERR_NAME_(name, text) #name,
#define IKE_ERR_TEXT_(name, text) text,
static const char *const err_names[] = { IKE_ERR_LIST(IKE_ERR_NAME_) };
static const char *const err_texts[] = { IKE_ERR_LIST(IKE_ERR_TEXT_) };

static int err_index(int err)
{
	if (err < 0)
		err = -err;
	return err < IKE_E__COUNT ? err : -1;
}

const char *ike_err_name(int err)
{
	int i = err_index(err);

	return i < 0 ? "?" : err_names[i];
}

const char *ike_strerror(int err)
{
	int i = err_index(err);

	return i < 0 ? "unknown error" : err_texts[i];
}

uint16_t ike_err_notify(int err)
{
	switch (err_index(err)) {
	case IKE_E_INVALID_MAJOR_VERSION:
		return IKE_N_INVALID_MAJOR_VERSION;
	case IKE_E_UNSUPPORTED_CRITICAL_PAYLOAD:
		return IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD;
	case IKE_E_INVALID_SYNTAX:
	case IKE_E_TRUNCATED:
	case IKE_E_TRAILING_DATA:
	case IKE_E_TOO_MANY:
		return IKE_N_INVALID_SYNTAX;
	case IKE_E_CERT_INVALID:
	case IKE_E_CERT_EXPIRED:
	case IKE_E_CERT_NOT_YET_VALID:
	case IKE_E_CERT_UNKNOWN_CA:
	case IKE_E_CERT_REVOKED:
	case IKE_E_CERT_CRL:
	case IKE_E_CERT_BAD_SIGNATURE:
	case IKE_E_AUTH_FAILED:
	case IKE_E_ID_MISMATCH:
		return IKE_N_AUTHENTICATION_FAILED;
	case IKE_E_NO_PROPOSAL_CHOSEN:
		return IKE_N_NO_PROPOSAL_CHOSEN;
	case IKE_E_INVALID_KE_PAYLOAD:
		return IKE_N_INVALID_KE_PAYLOAD;
	case IKE_E_TS_UNACCEPTABLE:
		return IKE_N_TS_UNACCEPTABLE;
	default:
		return 0;
	}
}

/* ---- names ---- */

const char *ike_payload_name(uint8_t type)
{
	switch (type) {
	case IKE_PL_SA: return "SA";
	case IKE_PL_KE: return "KE";
	case IKE_PL_IDI: return "IDi";
	case IKE_PL_IDR: return "IDr";
	case IKE_PL_CERT: return "CERT";
	case IKE_PL_CERTREQ: return "CERTREQ";
	case IKE_PL_AUTH: return "AUTH";
	case IKE_PL_NONCE: return "Nonce";
	case IKE_PL_NOTIFY: return "N";
	case IKE_PL_DELETE: return "D";
	case IKE_PL_VENDOR: return "V";
	case IKE_PL_TSI: return "TSi";
	case IKE_PL_TSR: return "TSr";
	case IKE_PL_SK: return "SK";
	case IKE_PL_CP: return "CP";
	case IKE_PL_EAP: return "EAP";
	case IKE_PL_SKF: return "SKF";
	default: return NULL;
	}
}

const char *ike_exchange_name(uint8_t exchange)
{
	switch (exchange) {
	case IKE_SA_INIT: return "IKE_SA_INIT";
	case IKE_AUTH: return "IKE_AUTH";
	case IKE_CREATE_CHILD_SA: return "CREATE_CHILD_SA";
	case IKE_INFORMATIONAL: return "INFORMATIONAL";
	default: return NULL;
	}
}

const char *ike_notify_name(uint16_t type)
{
#define IKE_NOTIFY_CASE_(name, value) case value: return #name;
	switch (type) {
	IKE_NOTIFY_LIST(IKE_NOTIFY_CASE_)
	default: return NULL;
	}
#undef IKE_NOTIFY_CASE_
}

const char *ike_transform_type_name(uint8_t type)
{
	static const char *const names[] = { NULL, "ENCR", "PRF", "INTEG", "DH", "ESN" };

	return type < sizeof names / sizeof names[0] ? names[type] : NULL;
}

const char *ike_id_type_name(uint8_t type)
{
	switch (type) {
	case IKE_ID_IPV4_ADDR: return "IPV4_ADDR";
	case IKE_ID_FQDN: return "FQDN";
	case IKE_ID_RFC822_ADDR: return "RFC822_ADDR";
	case IKE_ID_IPV6_ADDR: return "IPV6_ADDR";
	case IKE_ID_DER_ASN1_DN: return "DER_ASN1_DN";
	case IKE_ID_DER_ASN1_GN: return "DER_ASN1_GN";
	case IKE_ID_KEY_ID: return "KEY_ID";
	default: return NULL;
	}
}

static const char *transform_id_name(uint8_t type, uint16_t id)
{
	switch (type * 0x10000u + id) {
	case IKE_TR_ENCR * 0x10000u + 3: return "3DES";
	case IKE_TR_ENCR * 0x10000u + 11: return "NULL";
	case IKE_TR_ENCR * 0x10000u + 12: return "AES_CBC";
	case IKE_TR_ENCR * 0x10000u + 13: return "AES_CTR";
	case IKE_TR_ENCR * 0x10000u + 18: return "AES_GCM_8";
	case IKE_TR_ENCR * 0x10000u + 19: return "AES_GCM_12";
	case IKE_TR_ENCR * 0x10000u + 20: return "AES_GCM_16";
	case IKE_TR_ENCR * 0x10000u + 28: return "CHACHA20_POLY1305";
	case IKE_TR_PRF * 0x10000u + 2: return "HMAC_SHA1";
	case IKE_TR_PRF * 0x10000u + 5: return "HMAC_SHA2_256";
	case IKE_TR_PRF * 0x10000u + 6: return "HMAC_SHA2_384";
	case IKE_TR_PRF * 0x10000u + 7: return "HMAC_SHA2_512";
	case IKE_TR_INTEG * 0x10000u + 0: return "NONE";
	case IKE_TR_INTEG * 0x10000u + 2: return "HMAC_SHA1_96";
	case IKE_TR_INTEG * 0x10000u + 12: return "HMAC_SHA2_256_128";
	case IKE_TR_INTEG * 0x10000u + 13: return "HMAC_SHA2_384_192";
	case IKE_TR_INTEG * 0x10000u + 14: return "HMAC_SHA2_512_256";
	case IKE_TR_DH * 0x10000u + 0: return "NONE";
	case IKE_TR_DH * 0x10000u + 1: return "MODP_768";
	case IKE_TR_DH * 0x10000u + 2: return "MODP_1024";
	case IKE_TR_DH * 0x10000u + 5: return "MODP_1536";
	case IKE_TR_DH * 0x10000u + 14: return "MODP_2048";
	case IKE_TR_DH * 0x10000u + 15: return "MODP_3072";
	case IKE_TR_DH * 0x10000u + 16: return "MODP_4096";
	case IKE_TR_DH * 0x10000u + 17: return "MODP_6144";
	case IKE_TR_DH * 0x10000u + 18: return "MODP_8192";
	case IKE_TR_DH * 0x10000u + 19: return "ECP_256";
	case IKE_TR_DH * 0x10000u + 20: return "ECP_384";
	case IKE_TR_DH * 0x10000u + 21: return "ECP_521";
	case IKE_TR_DH * 0x10000u + 31: return "CURVE25519";
	case IKE_TR_DH * 0x10000u + 32: return "CURVE448";
	case IKE_TR_ESN * 0x10000u + 0: return "NO_ESN";
	case IKE_TR_ESN * 0x10000u + 1: return "ESN";
	default: return NULL;
	}
}

static const char *auth_method_name(uint8_t method)
{
	switch (method) {
	case 1: return "RSA_SIG";
	case 2: return "SHARED_KEY_MIC";
	case 3: return "DSS_SIG";
	case 9: return "ECDSA_SHA256_P256";
	case 10: return "ECDSA_SHA384_P384";
	case 11: return "ECDSA_SHA512_P521";
	case 14: return "DIGITAL_SIGNATURE";
	default: return NULL;
	}
}

static const char *protocol_name(uint8_t protocol)
{
	static const char *const names[] = { "none", "IKE", "AH", "ESP" };

	return protocol < 4 ? names[protocol] : NULL;
}

/* ---- decoding ---- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct ike_span bytes(const uint8_t *p, size_t len)
{
	return (struct ike_span){ .p = p, .len = (uint32_t)len };
}

/* Attributes of one transform: only Key Length (TV form) is defined for IKEv2. */
static int decode_attributes(struct ike_transform *t, const uint8_t *p, size_t len)
{
	while (len) {
		uint16_t type, value;
		size_t alen = 4;

		if (len < 4)
			return -IKE_E_INVALID_SYNTAX;
		type = get16(p) & 0x7fff;
		value = get16(p + 2);
		if (!(p[0] & 0x80))
			alen += value; /* TLV: value is the length */
		if (alen > len)
			return -IKE_E_INVALID_SYNTAX;
		if (type == IKE_ATTR_KEY_LENGTH) {
			if (!(p[0] & 0x80) || t->key_len || !value)
				return -IKE_E_INVALID_SYNTAX;
			t->key_len = value;
		} else {
			t->unknown_attr = 1;
		}
		p += alen;
		len -= alen;
	}
	return 0;
}

static int decode_transforms(struct ike_msg *m, struct ike_proposal *pr, uint8_t n, const uint8_t *p, size_t len)
{
	if (n == 0 || IKE_MAX_TRANSFORMS - m->n_transforms_used < n)
		return n ? -IKE_E_TOO_MANY : -IKE_E_INVALID_SYNTAX;
	pr->transforms = &m->transform_pool[m->n_transforms_used];
	for (uint8_t i = 0; i < n; i++) {
		struct ike_transform *t = &pr->transforms[i];
		uint16_t tlen;
		int r;

		if (len < 8)
			return -IKE_E_INVALID_SYNTAX;
		tlen = get16(p + 2);
		if (tlen < 8 || tlen > len || p[0] != (i + 1 == n ? 0 : 3))
			return -IKE_E_INVALID_SYNTAX;
		*t = (struct ike_transform){ .type = p[4], .id = get16(p + 6) };
		r = decode_attributes(t, p + 8, tlen - 8u);
		if (r < 0)
			return r;
		p += tlen;
		len -= tlen;
	}
	if (len)
		return -IKE_E_INVALID_SYNTAX; /* the proposal is longer than its transforms */
	pr->n_transforms = n;
	m->n_transforms_used = (uint16_t)(m->n_transforms_used + n);
	return 0;
}

static int decode_sa(struct ike_msg *m, struct ike_sa_payload *sa, const uint8_t *p, size_t len)
{
	sa->proposals = &m->proposal_pool[m->n_proposals_used];
	sa->n_proposals = 0;
	if (!len)
		return -IKE_E_INVALID_SYNTAX;
	while (len) {
		struct ike_proposal *pr;
		uint16_t plen;
		uint8_t spi_size;
		int r;

		if (len < 8)
			return -IKE_E_INVALID_SYNTAX;
		plen = get16(p + 2);
		spi_size = p[6];
		if (plen < 8u + spi_size || plen > len || p[0] != (plen == len ? 0 : 2))
			return -IKE_E_INVALID_SYNTAX;
		if (m->n_proposals_used >= IKE_MAX_PROPOSALS)
			return -IKE_E_TOO_MANY;
		pr = &m->proposal_pool[m->n_proposals_used];
		*pr = (struct ike_proposal){ .num = p[4], .protocol = p[5], .spi = bytes(p + 8, spi_size) };
		r = decode_transforms(m, pr, p[7], p + 8 + spi_size, plen - 8u - spi_size);
		if (r < 0)
			return r;
		m->n_proposals_used++;
		sa->n_proposals++;
		p += plen;
		len -= plen;
	}
	return 0;
}

static int decode_id(struct ike_id *id, const uint8_t *p, size_t len)
{
	if (len < 5)
		return -IKE_E_INVALID_SYNTAX;
	id->type = p[0];
	id->data = bytes(p + 4, len - 4);
	if ((id->type == IKE_ID_IPV4_ADDR && id->data.len != 4) || (id->type == IKE_ID_IPV6_ADDR && id->data.len != 16))
		return -IKE_E_INVALID_SYNTAX;
	return 0;
}

/* Fixed sizes that the RFCs give some notify data; the engine relies on them. */
static int check_notify_data(const struct ike_notify *n)
{
	switch (n->type) {
	case IKE_N_NAT_DETECTION_SOURCE_IP:
	case IKE_N_NAT_DETECTION_DESTINATION_IP:
		return n->data.len == 20 ? 0 : -IKE_E_INVALID_SYNTAX; /* SHA-1 */
	case IKE_N_COOKIE:
		return n->data.len >= 1 && n->data.len <= 64 ? 0 : -IKE_E_INVALID_SYNTAX;
	case IKE_N_INVALID_KE_PAYLOAD:
		return n->data.len == 2 ? 0 : -IKE_E_INVALID_SYNTAX;
	case IKE_N_SIGNATURE_HASH_ALGORITHMS:
		return n->data.len % 2 == 0 ? 0 : -IKE_E_INVALID_SYNTAX;
	case IKE_N_REKEY_SA:
		return n->spi.len ? 0 : -IKE_E_INVALID_SYNTAX;
	default:
		return 0;
	}
}

static int decode_notify(struct ike_notify *n, const uint8_t *p, size_t len)
{
	if (len < 4 || p[1] > len - 4)
		return -IKE_E_INVALID_SYNTAX;
	n->protocol = p[0];
	n->type = get16(p + 2);
	n->spi = bytes(p + 4, p[1]);
	n->data = bytes(p + 4 + p[1], len - 4 - p[1]);
	return check_notify_data(n);
}

static int decode_delete(struct ike_delete *d, const uint8_t *p, size_t len)
{
	if (len < 4)
		return -IKE_E_INVALID_SYNTAX;
	d->protocol = p[0];
	d->spi_size = p[1];
	d->n_spis = get16(p + 2);
	d->spis = p + 4;
	if ((size_t)d->n_spis * d->spi_size != len - 4)
		return -IKE_E_INVALID_SYNTAX;
	if (d->protocol == IKE_PROTO_IKE)
		return d->spi_size == 0 && d->n_spis == 0 ? 0 : -IKE_E_INVALID_SYNTAX;
	if (d->protocol == IKE_PROTO_AH || d->protocol == IKE_PROTO_ESP)
		return d->spi_size == 4 && d->n_spis ? 0 : -IKE_E_INVALID_SYNTAX;
	return -IKE_E_INVALID_SYNTAX;
}

static int decode_ts(struct ike_msg *m, struct ike_ts_payload *tp, const uint8_t *p, size_t len)
{
	if (len < 4 || p[0] == 0)
		return -IKE_E_INVALID_SYNTAX;
	if (IKE_MAX_TS - m->n_ts_used < p[0])
		return -IKE_E_TOO_MANY;
	tp->n_ts = p[0];
	tp->ts = &m->ts_pool[m->n_ts_used];
	p += 4;
	len -= 4;
	for (uint8_t i = 0; i < tp->n_ts; i++) {
		struct ike_ts *ts = &tp->ts[i];
		size_t alen;

		if (len < 8)
			return -IKE_E_INVALID_SYNTAX;
		alen = p[0] == IKE_TS_IPV4_ADDR_RANGE ? 4 : p[0] == IKE_TS_IPV6_ADDR_RANGE ? 16 : 0;
		if (!alen || get16(p + 2) != 8 + 2 * alen || len < 8 + 2 * alen)
			return -IKE_E_INVALID_SYNTAX;
		*ts = (struct ike_ts){ .type = p[0], .ip_proto = p[1], .start_port = get16(p + 4), .end_port = get16(p + 6) };
		memcpy(ts->start, p + 8, alen);
		memcpy(ts->end, p + 8 + alen, alen);
		p += 8 + 2 * alen;
		len -= 8 + 2 * alen;
	}
	if (len)
		return -IKE_E_INVALID_SYNTAX;
	m->n_ts_used = (uint8_t)(m->n_ts_used + tp->n_ts);
	return 0;
}

static int decode_skf(struct ike_sk_payload *sk, const uint8_t *p, size_t len)
{
	if (len < 4)
		return -IKE_E_INVALID_SYNTAX;
	sk->frag_num = get16(p);
	sk->frag_total = get16(p + 2);
	sk->body = bytes(p + 4, len - 4);
	return sk->frag_num >= 1 && sk->frag_num <= sk->frag_total ? 0 : -IKE_E_INVALID_SYNTAX;
}

/* A body with a one-octet field and three reserved octets before its data (KE has two octets, two reserved). */
static int decode_typed(uint8_t *type, struct ike_span *data, const uint8_t *p, size_t len, size_t hdr)
{
	if (len <= hdr)
		return -IKE_E_INVALID_SYNTAX;
	*type = p[0];
	*data = bytes(p + hdr, len - hdr);
	return 0;
}

static int decode_body(struct ike_msg *m, struct ike_payload *pl, const uint8_t *p, size_t len)
{
	switch (pl->type) {
	case IKE_PL_SA:
		return decode_sa(m, &pl->u.sa, p, len);
	case IKE_PL_KE:
		if (len <= 4)
			return -IKE_E_INVALID_SYNTAX;
		pl->u.ke.group = get16(p);
		pl->u.ke.data = bytes(p + 4, len - 4);
		return 0;
	case IKE_PL_IDI:
	case IKE_PL_IDR:
		return decode_id(&pl->u.id, p, len);
	case IKE_PL_CERT:
		return decode_typed(&pl->u.cert.encoding, &pl->u.cert.data, p, len, 1);
	case IKE_PL_CERTREQ:
		if (len < 1)
			return -IKE_E_INVALID_SYNTAX;
		pl->u.cert.encoding = p[0];
		pl->u.cert.data = bytes(p + 1, len - 1);
		return 0;
	case IKE_PL_AUTH:
		return decode_typed(&pl->u.auth.method, &pl->u.auth.data, p, len, 4);
	case IKE_PL_NONCE:
		if (len < IKE_NONCE_MIN || len > IKE_NONCE_MAX)
			return -IKE_E_INVALID_SYNTAX;
		pl->u.nonce = bytes(p, len);
		return 0;
	case IKE_PL_NOTIFY:
		return decode_notify(&pl->u.notify, p, len);
	case IKE_PL_DELETE:
		return decode_delete(&pl->u.del, p, len);
	case IKE_PL_TSI:
	case IKE_PL_TSR:
		return decode_ts(m, &pl->u.ts, p, len);
	case IKE_PL_SK:
		pl->u.sk.body = bytes(p, len);
		return 0;
	case IKE_PL_SKF:
		return decode_skf(&pl->u.sk, p, len);
	default: /* V, CP, EAP: their raw body is all the engine needs for now */
		return 0;
	}
}

/* Walks a payload chain from `off` to `end` of buf; SK/SKF end it (and must be last). */
static int decode_chain(struct ike_msg *m, const uint8_t *buf, size_t off, size_t end, uint8_t next, int inner)
{
	while (next != IKE_PL_NONE) {
		const uint8_t *p = buf + off;
		struct ike_payload *pl;
		uint8_t type = next;
		uint16_t plen;
		int r;

		if (end - off < IKE_GENERIC_HDR_LEN)
			return -IKE_E_INVALID_SYNTAX;
		next = p[0];
		plen = get16(p + 2);
		if (plen < IKE_GENERIC_HDR_LEN || plen > end - off)
			return -IKE_E_INVALID_SYNTAX;
		if (!ike_payload_name(type)) {
			if (p[1] & 0x80) {
				m->bad_critical = type;
				return -IKE_E_UNSUPPORTED_CRITICAL_PAYLOAD;
			}
			if (m->n_skipped < UINT8_MAX)
				m->n_skipped++;
			off += plen;
			continue;
		}
		if (m->n_payloads >= IKE_MAX_PAYLOADS)
			return -IKE_E_TOO_MANY;
		pl = &m->payloads[m->n_payloads];
		memset(pl, 0, sizeof *pl);
		pl->type = type;
		pl->critical = p[1] >> 7;
		pl->off = (uint32_t)off;
		pl->raw = bytes(p + IKE_GENERIC_HDR_LEN, plen - IKE_GENERIC_HDR_LEN);
		r = decode_body(m, pl, pl->raw.p, pl->raw.len);
		if (r < 0)
			return r;
		m->n_payloads++;
		off += plen;
		if (type == IKE_PL_SK || type == IKE_PL_SKF) {
			if (inner)
				return -IKE_E_INVALID_SYNTAX;
			pl->u.sk.next_inner = next;
			if (type == IKE_PL_SKF && pl->u.sk.frag_num > 1 && next != IKE_PL_NONE)
				return -IKE_E_INVALID_SYNTAX; /* RFC 7383 §2.5: only fragment 1 names the inner payload */
			return off == end ? 0 : -IKE_E_TRAILING_DATA;
		}
	}
	return off == end ? 0 : -IKE_E_TRAILING_DATA;
}

int ike_msg_decode(struct ike_msg *m, const uint8_t *buf, size_t len)
{
	if (!m || !buf)
		return -IKE_E_BAD_PARAM;
	m->n_payloads = m->n_skipped = m->bad_critical = 0;
	m->n_proposals_used = m->n_ts_used = 0;
	m->n_transforms_used = 0;
	if (len < IKE_HDR_LEN)
		return -IKE_E_TRUNCATED;
	memcpy(m->spi_i, buf, 8);
	memcpy(m->spi_r, buf + 8, 8);
	m->version = buf[17];
	m->exchange = buf[18];
	m->flags = buf[19];
	m->msg_id = get32(buf + 20);
	m->length = get32(buf + 24);
	/* The version is checked first: a v3 message may lay out the rest differently. */
	if (m->version >> 4 != 2)
		return -IKE_E_INVALID_MAJOR_VERSION;
	if (m->length < IKE_HDR_LEN)
		return -IKE_E_INVALID_SYNTAX;
	if (m->length > len)
		return -IKE_E_TRUNCATED;
	if (m->length < len)
		return -IKE_E_TRAILING_DATA;
	return decode_chain(m, buf, IKE_HDR_LEN, len, buf[16], 0);
}

int ike_msg_decode_inner(struct ike_msg *m, uint8_t first, const uint8_t *buf, size_t len)
{
	if (!m || (!buf && len))
		return -IKE_E_BAD_PARAM;
	return decode_chain(m, buf, 0, len, first, 1);
}

int ike_sk_payload_split(struct ike_sk_payload *sk, size_t iv_len, size_t icv_len)
{
	if (!sk || sk->body.len < iv_len + icv_len)
		return -IKE_E_INVALID_SYNTAX;
	sk->iv = bytes(sk->body.p, iv_len);
	sk->ct = bytes(sk->body.p + iv_len, sk->body.len - iv_len - icv_len);
	sk->icv = bytes(sk->body.p + sk->body.len - icv_len, icv_len);
	return 0;
}

struct ike_payload *ike_msg_add(struct ike_msg *m, uint8_t type)
{
	struct ike_payload *pl;

	if (m->n_payloads >= IKE_MAX_PAYLOADS)
		return NULL;
	pl = &m->payloads[m->n_payloads++];
	memset(pl, 0, sizeof *pl);
	pl->type = type;
	return pl;
}

const struct ike_payload *ike_msg_find(const struct ike_msg *m, uint8_t type, uint16_t notify, size_t from)
{
	for (size_t i = from; i < m->n_payloads; i++) {
		const struct ike_payload *pl = &m->payloads[i];

		if (pl->type == type && (type != IKE_PL_NOTIFY || !notify || pl->u.notify.type == notify))
			return pl;
	}
	return NULL;
}

/* ---- encoding ---- */

/* An output buffer that remembers overflowing, so encoders write straight through and check once. */
struct wbuf {
	uint8_t *p;
	size_t cap, len;
	int full;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
	if (w->full || w->cap - w->len < n) {
		w->full = 1;
		return;
	}
	if (n)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put8(struct wbuf *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 2);
}

static void put32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 4);
}

static void put_bytes(struct wbuf *w, struct ike_span b)
{
	put(w, b.p, b.len);
}

static void put_zero(struct wbuf *w, size_t n)
{
	static const uint8_t zero[4];

	put(w, zero, n);
}

/* Fills in a 16-bit length at `at` once what it covers is written; 0 or -IKE_E_BAD_PARAM when it does not fit. */
static int patch16(struct wbuf *w, size_t at, size_t len)
{
	if (len > UINT16_MAX)
		return -IKE_E_BAD_PARAM;
	if (!w->full) {
		w->p[at] = (uint8_t)(len >> 8);
		w->p[at + 1] = (uint8_t)len;
	}
	return 0;
}

static int encode_proposal(struct wbuf *w, const struct ike_proposal *pr, int last)
{
	size_t start = w->len;

	if (pr->spi.len > UINT8_MAX || !pr->n_transforms || !pr->transforms)
		return -IKE_E_BAD_PARAM;
	put8(w, last ? 0 : 2);
	put8(w, 0);
	put16(w, 0);
	put8(w, pr->num);
	put8(w, pr->protocol);
	put8(w, (uint8_t)pr->spi.len);
	put8(w, pr->n_transforms);
	put_bytes(w, pr->spi);
	for (uint8_t i = 0; i < pr->n_transforms; i++) {
		const struct ike_transform *t = &pr->transforms[i];

		put8(w, i + 1 == pr->n_transforms ? 0 : 3);
		put8(w, 0);
		put16(w, t->key_len ? 12 : 8);
		put8(w, t->type);
		put8(w, 0);
		put16(w, t->id);
		if (t->key_len) {
			put16(w, 0x8000 | IKE_ATTR_KEY_LENGTH);
			put16(w, t->key_len);
		}
	}
	return patch16(w, start + 2, w->len - start);
}

static int encode_sa(struct wbuf *w, const struct ike_sa_payload *sa)
{
	if (!sa->n_proposals || !sa->proposals)
		return -IKE_E_BAD_PARAM;
	for (uint8_t i = 0; i < sa->n_proposals; i++) {
		int r = encode_proposal(w, &sa->proposals[i], i + 1 == sa->n_proposals);

		if (r < 0)
			return r;
	}
	return 0;
}

static int encode_ts(struct wbuf *w, const struct ike_ts_payload *tp)
{
	if (!tp->n_ts || !tp->ts)
		return -IKE_E_BAD_PARAM;
	put8(w, tp->n_ts);
	put_zero(w, 3);
	for (uint8_t i = 0; i < tp->n_ts; i++) {
		const struct ike_ts *ts = &tp->ts[i];
		size_t alen = ts->type == IKE_TS_IPV4_ADDR_RANGE ? 4 : ts->type == IKE_TS_IPV6_ADDR_RANGE ? 16 : 0;

		if (!alen)
			return -IKE_E_BAD_PARAM;
		put8(w, ts->type);
		put8(w, ts->ip_proto);
		put16(w, (uint16_t)(8 + 2 * alen));
		put16(w, ts->start_port);
		put16(w, ts->end_port);
		put(w, ts->start, alen);
		put(w, ts->end, alen);
	}
	return 0;
}

static int encode_body(struct wbuf *w, const struct ike_payload *pl)
{
	switch (pl->type) {
	case IKE_PL_SA:
		return encode_sa(w, &pl->u.sa);
	case IKE_PL_KE:
		put16(w, pl->u.ke.group);
		put_zero(w, 2);
		put_bytes(w, pl->u.ke.data);
		return 0;
	case IKE_PL_IDI:
	case IKE_PL_IDR:
		put8(w, pl->u.id.type);
		put_zero(w, 3);
		put_bytes(w, pl->u.id.data);
		return 0;
	case IKE_PL_CERT:
	case IKE_PL_CERTREQ:
		put8(w, pl->u.cert.encoding);
		put_bytes(w, pl->u.cert.data);
		return 0;
	case IKE_PL_AUTH:
		put8(w, pl->u.auth.method);
		put_zero(w, 3);
		put_bytes(w, pl->u.auth.data);
		return 0;
	case IKE_PL_NONCE:
		put_bytes(w, pl->u.nonce);
		return 0;
	case IKE_PL_NOTIFY:
		if (pl->u.notify.spi.len > UINT8_MAX)
			return -IKE_E_BAD_PARAM;
		put8(w, pl->u.notify.protocol);
		put8(w, (uint8_t)pl->u.notify.spi.len);
		put16(w, pl->u.notify.type);
		put_bytes(w, pl->u.notify.spi);
		put_bytes(w, pl->u.notify.data);
		return 0;
	case IKE_PL_DELETE:
		put8(w, pl->u.del.protocol);
		put8(w, pl->u.del.spi_size);
		put16(w, pl->u.del.n_spis);
		put(w, pl->u.del.spis, (size_t)pl->u.del.n_spis * pl->u.del.spi_size);
		return 0;
	case IKE_PL_TSI:
	case IKE_PL_TSR:
		return encode_ts(w, &pl->u.ts);
	case IKE_PL_SKF:
		put16(w, pl->u.sk.frag_num);
		put16(w, pl->u.sk.frag_total);
		put_bytes(w, pl->u.sk.body);
		return 0;
	case IKE_PL_SK:
		put_bytes(w, pl->u.sk.body);
		return 0;
	default:
		put_bytes(w, pl->raw);
		return 0;
	}
}

static int encode_chain(struct wbuf *w, const struct ike_payload *pl, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int is_sk = pl[i].type == IKE_PL_SK || pl[i].type == IKE_PL_SKF;
		size_t start = w->len;
		int r;

		if (is_sk && i + 1 != n)
			return -IKE_E_BAD_PARAM; /* everything after SK is inside it */
		put8(w, is_sk ? pl[i].u.sk.next_inner : i + 1 < n ? pl[i + 1].type : IKE_PL_NONE);
		put8(w, pl[i].critical ? 0x80 : 0);
		put16(w, 0);
		r = encode_body(w, &pl[i]);
		if (r == 0)
			r = patch16(w, start + 2, w->len - start);
		if (r < 0)
			return r;
	}
	return w->full ? -IKE_E_NOSPACE : 0;
}

int ike_payloads_encode(const struct ike_payload *pl, size_t n, uint8_t *out, size_t cap)
{
	struct wbuf w = { .p = out, .cap = cap };
	int r;

	if ((!pl && n) || (!out && cap) || cap > INT32_MAX)
		return -IKE_E_BAD_PARAM;
	r = encode_chain(&w, pl, n);
	return r < 0 ? r : (int)w.len;
}

int ike_msg_encode(const struct ike_msg *m, uint8_t *out, size_t cap)
{
	struct wbuf w = { .p = out, .cap = cap };
	int r;

	if (!m || !out || cap > INT32_MAX)
		return -IKE_E_BAD_PARAM;
	put(&w, m->spi_i, 8);
	put(&w, m->spi_r, 8);
	put8(&w, m->n_payloads ? m->payloads[0].type : IKE_PL_NONE);
	put8(&w, m->version ? m->version : 0x20);
	put8(&w, m->exchange);
	put8(&w, m->flags);
	put32(&w, m->msg_id);
	put32(&w, 0);
	r = encode_chain(&w, m->payloads, m->n_payloads);
	if (r < 0)
		return r;
	out[24] = (uint8_t)(w.len >> 24);
	out[25] = (uint8_t)(w.len >> 16);
	out[26] = (uint8_t)(w.len >> 8);
	out[27] = (uint8_t)w.len;
	return (int)w.len;
}

/* ---- the readable trace ---- */

/* snprintf that keeps counting past the end, so the caller learns the size it needs. */
struct dbuf {
	char *p;
	size_t cap, len;
};

__attribute__((format(printf, 2, 3)))
static void out(struct dbuf *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(d->len < d->cap ? d->p + d->len : NULL, d->len < d->cap ? d->cap - d->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		d->len += (size_t)n;
}

/* Long blobs (keys, certificates) are shortened: the trace shows their size and first bytes. */
static void out_hex(struct dbuf *d, struct ike_span b)
{
	uint32_t shown = b.len > 32 ? 32 : b.len;

	if (!b.len) {
		out(d, "-");
		return;
	}
	for (uint32_t i = 0; i < shown; i++)
		out(d, "%02x", b.p[i]);
	if (shown < b.len)
		out(d, "...");
}

static void out_name(struct dbuf *d, const char *name, unsigned value)
{
	if (name)
		out(d, "%s (%u)", name, value);
	else
		out(d, "%u", value);
}

/* Names from the peer are printed with anything unprintable escaped, so a trace line cannot be forged. */
static void out_text(struct dbuf *d, struct ike_span b)
{
	out(d, "\"");
	for (uint32_t i = 0; i < b.len; i++) {
		uint8_t c = b.p[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out(d, "%c", c);
		else
			out(d, "\\x%02x", c);
	}
	out(d, "\"");
}

static void out_addr(struct dbuf *d, int family, const uint8_t *a)
{
	char s[INET6_ADDRSTRLEN];

	out(d, "%s", inet_ntop(family, a, s, sizeof s) ? s : "?");
}

static void dump_sa(struct dbuf *d, const struct ike_sa_payload *sa)
{
	for (uint8_t i = 0; i < sa->n_proposals; i++) {
		const struct ike_proposal *pr = &sa->proposals[i];

		out(d, "\n    proposal %u protocol ", pr->num);
		out_name(d, protocol_name(pr->protocol), pr->protocol);
		out(d, " spi ");
		out_hex(d, pr->spi);
		for (uint8_t j = 0; j < pr->n_transforms; j++) {
			const struct ike_transform *t = &pr->transforms[j];

			out(d, "\n      ");
			out_name(d, ike_transform_type_name(t->type), t->type);
			out(d, " ");
			out_name(d, transform_id_name(t->type, t->id), t->id);
			if (t->key_len)
				out(d, " key_len %u", t->key_len);
			if (t->unknown_attr)
				out(d, " (unknown attribute)");
		}
	}
}

static void dump_id(struct dbuf *d, const struct ike_id *id)
{
	out(d, " ");
	out_name(d, ike_id_type_name(id->type), id->type);
	out(d, " ");
	if (id->type == IKE_ID_IPV4_ADDR && id->data.len == 4)
		out_addr(d, AF_INET, id->data.p);
	else if (id->type == IKE_ID_IPV6_ADDR && id->data.len == 16)
		out_addr(d, AF_INET6, id->data.p);
	else if (id->type == IKE_ID_FQDN || id->type == IKE_ID_RFC822_ADDR)
		out_text(d, id->data);
	else
		out_hex(d, id->data);
}

static void dump_notify(struct dbuf *d, const struct ike_notify *n)
{
	out(d, " ");
	out_name(d, ike_notify_name(n->type), n->type);
	out(d, " protocol ");
	out_name(d, protocol_name(n->protocol), n->protocol);
	out(d, " spi ");
	out_hex(d, n->spi);
	out(d, " data ");
	if (n->type == IKE_N_INVALID_KE_PAYLOAD && n->data.len == 2) {
		uint16_t g = get16(n->data.p);

		out(d, "group ");
		out_name(d, transform_id_name(IKE_TR_DH, g), g);
	} else {
		out_hex(d, n->data);
	}
}

static void dump_delete(struct dbuf *d, const struct ike_delete *del)
{
	out(d, " protocol ");
	out_name(d, protocol_name(del->protocol), del->protocol);
	out(d, " %u SPIs", del->n_spis);
	for (uint16_t i = 0; i < del->n_spis && i < 16; i++) {
		out(d, " ");
		out_hex(d, bytes(del->spis + (size_t)i * del->spi_size, del->spi_size));
	}
	if (del->n_spis > 16)
		out(d, " ...");
}

static void dump_ts(struct dbuf *d, const struct ike_ts_payload *tp)
{
	for (uint8_t i = 0; i < tp->n_ts; i++) {
		const struct ike_ts *ts = &tp->ts[i];
		int family = ts->type == IKE_TS_IPV4_ADDR_RANGE ? AF_INET : AF_INET6;

		out(d, "\n    %s protocol %u ports %u-%u ", family == AF_INET ? "IPv4" : "IPv6", ts->ip_proto,
		    ts->start_port, ts->end_port);
		out_addr(d, family, ts->start);
		out(d, " - ");
		out_addr(d, family, ts->end);
	}
}

static void dump_payload(struct dbuf *d, const struct ike_payload *pl)
{
	const char *name = ike_payload_name(pl->type);

	out(d, "\n  %s", name ? name : "?");
	if (pl->critical)
		out(d, " (critical)");
	switch (pl->type) {
	case IKE_PL_SA:
		dump_sa(d, &pl->u.sa);
		break;
	case IKE_PL_KE:
		out(d, " group ");
		out_name(d, transform_id_name(IKE_TR_DH, pl->u.ke.group), pl->u.ke.group);
		out(d, " %u bytes ", pl->u.ke.data.len);
		out_hex(d, pl->u.ke.data);
		break;
	case IKE_PL_IDI:
	case IKE_PL_IDR:
		dump_id(d, &pl->u.id);
		break;
	case IKE_PL_CERT:
	case IKE_PL_CERTREQ:
		out(d, " encoding %u %u bytes ", pl->u.cert.encoding, pl->u.cert.data.len);
		out_hex(d, pl->u.cert.data);
		break;
	case IKE_PL_AUTH:
		out(d, " method ");
		out_name(d, auth_method_name(pl->u.auth.method), pl->u.auth.method);
		out(d, " %u bytes", pl->u.auth.data.len); /* the MAC or signature itself tells a reader nothing */
		break;
	case IKE_PL_NONCE:
		out(d, " %u bytes ", pl->u.nonce.len);
		out_hex(d, pl->u.nonce);
		break;
	case IKE_PL_NOTIFY:
		dump_notify(d, &pl->u.notify);
		break;
	case IKE_PL_DELETE:
		dump_delete(d, &pl->u.del);
		break;
	case IKE_PL_TSI:
	case IKE_PL_TSR:
		out(d, " %u selectors", pl->u.ts.n_ts);
		dump_ts(d, &pl->u.ts);
		break;
	case IKE_PL_SKF:
		out(d, " fragment %u/%u", pl->u.sk.frag_num, pl->u.sk.frag_total);
		/* fall through */
	case IKE_PL_SK:
		out(d, " first inner %s, %u bytes encrypted", ike_payload_name(pl->u.sk.next_inner) ?
		    ike_payload_name(pl->u.sk.next_inner) : "none", pl->u.sk.body.len);
		break;
	default:
		out(d, " %u bytes ", pl->raw.len);
		out_hex(d, pl->raw);
		break;
	}
}

int ike_msg_dump(const struct ike_msg *m, char *buf, size_t len)
{
	struct dbuf d = { .p = buf, .cap = buf ? len : 0 };
	const char *ex = ike_exchange_name(m->exchange);

	if (d.cap)
		buf[0] = '\0';
	if (ex)
		out(&d, "%s", ex);
	else
		out(&d, "exchange %u", m->exchange);
	out(&d, " %s msg_id %u flags %s%s%s version %u.%u\n  SPIi ", m->flags & IKE_FLAG_R ? "response" : "request",
	    m->msg_id, m->flags & IKE_FLAG_I ? "I" : "-", m->flags & IKE_FLAG_R ? "R" : "-",
	    m->flags & IKE_FLAG_V ? "V" : "-", m->version >> 4, m->version & 15);
	out_hex(&d, bytes(m->spi_i, 8));
	out(&d, " SPIr ");
	out_hex(&d, bytes(m->spi_r, 8));
	for (uint8_t i = 0; i < m->n_payloads; i++)
		dump_payload(&d, &m->payloads[i]);
	if (m->n_skipped)
		out(&d, "\n  (%u unknown non-critical payloads skipped)", m->n_skipped);
	out(&d, "\n");
	return d.len > INT32_MAX ? INT32_MAX : (int)d.len;
}
