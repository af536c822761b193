/* ike/cert.c: identities, X.509 credentials and CA store, chain validation, RFC 7427 signature AUTH (OpenSSL). */
#include "crypto.h"
#include "msg.h"

/* Stubs until the implementation lands: every call reports "not supported". */
int ike_id_parse(const char *text, struct ike_ident *out) { (void)text; (void)out; return -IKE_E_NOT_SUPPORTED; }
int ike_id_from_payload(uint8_t type, const uint8_t *data, size_t len, struct ike_ident *out)
{ (void)type; (void)data; (void)len; (void)out; return -IKE_E_NOT_SUPPORTED; }
int ike_id_format(const struct ike_ident *id, char *buf, size_t len) { (void)id; if (len) buf[0] = 0; return 0; }
bool ike_id_match(const struct ike_ident *conf, const struct ike_ident *received) { (void)conf; (void)received; return false; }
int ike_id_matches_cert(const struct ike_ident *id, const uint8_t *cert_der, size_t cert_len)
{ (void)id; (void)cert_der; (void)cert_len; return -IKE_E_NOT_SUPPORTED; }
int ike_cred_new(const char *cert_pem, const char *key_pem, struct ike_cred **out, char *err, size_t err_len)
{ (void)cert_pem; (void)key_pem; (void)err; (void)err_len; *out = NULL; return -IKE_E_NOT_SUPPORTED; }
void ike_cred_free(struct ike_cred *c) { (void)c; }
size_t ike_cred_chain_len(const struct ike_cred *c) { (void)c; return 0; }
int ike_cred_cert(const struct ike_cred *c, size_t i, const uint8_t **der, size_t *len)
{ (void)c; (void)i; (void)der; (void)len; return -IKE_E_NOT_SUPPORTED; }
int ike_cred_subject(const struct ike_cred *c, struct ike_ident *out) { (void)c; (void)out; return -IKE_E_NOT_SUPPORTED; }
bool ike_cred_certreq_match(const struct ike_cred *c, const struct ike_castore *store, const uint8_t *certreq, size_t len)
{ (void)c; (void)store; (void)certreq; (void)len; return false; }
int ike_castore_new(const char *ca_pem, const char *crl_pem, struct ike_castore **out, char *err, size_t err_len)
{ (void)ca_pem; (void)crl_pem; (void)err; (void)err_len; *out = NULL; return -IKE_E_NOT_SUPPORTED; }
void ike_castore_free(struct ike_castore *s) { (void)s; }
int ike_castore_certreq(const struct ike_castore *s, uint8_t *out, size_t cap) { (void)s; (void)out; (void)cap; return 0; }
int ike_cert_verify(const struct ike_castore *s, const uint8_t *ee_der, size_t ee_len,
	const uint8_t *const *chain_der, const size_t *chain_len, size_t n_chain, int64_t now)
{ (void)s; (void)ee_der; (void)ee_len; (void)chain_der; (void)chain_len; (void)n_chain; (void)now; return -IKE_E_NOT_SUPPORTED; }
int ike_sighash_notify(uint8_t *out, size_t cap) { (void)out; (void)cap; return 0; }
uint32_t ike_sighash_parse(const uint8_t *data, size_t len) { (void)data; (void)len; return 0; }
int ike_auth_sign(const struct ike_cred *c, uint32_t peer_hashes, bool pss, const uint8_t *octets,
	size_t octets_len, uint8_t *method, uint8_t *out, size_t cap)
{ (void)c; (void)peer_hashes; (void)pss; (void)octets; (void)octets_len; (void)method; (void)out; (void)cap; return -IKE_E_NOT_SUPPORTED; }
int ike_auth_verify(const uint8_t *cert_der, size_t cert_len, uint8_t method, const uint8_t *auth, size_t auth_len,
	const uint8_t *octets, size_t octets_len)
{ (void)cert_der; (void)cert_len; (void)method; (void)auth; (void)auth_len; (void)octets; (void)octets_len; return -IKE_E_NOT_SUPPORTED; }
