/* config.c: the JSON configuration schema (file, control socket, REST) to and from struct wire_config, strictly validated. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "wire.h"

#define PATH_LEN 160

/* Where an error goes; messages are "field.path: problem" and never hold a key. */
struct perr {
	char *buf;
	size_t len;
};

__attribute__((format(printf, 3, 4)))
static int bad(struct perr *e, const char *path, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e->buf && e->len)
		snprintf(e->buf, e->len, "%s%s%s", path, *path ? ": " : "", msg);
	return -XE_BAD_PARAM;
}

/* Field names can come from the input (unknown fields), so they are cut short. */
static void subpath(char *out, const char *path, const char *key)
{
	snprintf(out, PATH_LEN, "%.100s%s%.40s", path, *path ? "." : "", key);
}

static void itempath(char *out, const char *path, size_t i)
{
	snprintf(out, PATH_LEN, "%.100s[%zu]", path, i);
}

/* ---- names of things ---- */

static const struct {
	const char *name;
	uint8_t key_len;        /* bytes, salt included */
	bool aead;              /* authenticates itself: integ none */
	bool legacy;            /* only with options.legacy_algorithms */
} enc_tab[ENC__COUNT] = {
	[ENC_NULL] = { "null", 0, false, false },
	[ENC_AES_GCM_128] = { "aes-gcm-128", 16 + 4, true, false },
	[ENC_AES_GCM_256] = { "aes-gcm-256", 32 + 4, true, false },
	[ENC_CHACHA20_POLY1305] = { "chacha20-poly1305", 32 + 4, true, false },
	[ENC_AES_CBC_128] = { "aes-cbc-128", 16, false, false },
	[ENC_AES_CBC_256] = { "aes-cbc-256", 32, false, false },
	[ENC_AES_CTR_128] = { "aes-ctr-128", 16 + 4, false, false },
	[ENC_AES_CTR_256] = { "aes-ctr-256", 32 + 4, false, false },
	[ENC_AES_CCM8_128] = { "aes-ccm8-128", 16 + 3, true, false },
	[ENC_AES_CCM8_256] = { "aes-ccm8-256", 32 + 3, true, false },
	[ENC_AES_CCM12_128] = { "aes-ccm12-128", 16 + 3, true, false },
	[ENC_AES_CCM12_256] = { "aes-ccm12-256", 32 + 3, true, false },
	[ENC_AES_CCM16_128] = { "aes-ccm16-128", 16 + 3, true, false },
	[ENC_AES_CCM16_256] = { "aes-ccm16-256", 32 + 3, true, false },
	[ENC_AES_GMAC_128] = { "aes-gmac-128", 16 + 4, true, false },
	[ENC_AES_GMAC_256] = { "aes-gmac-256", 32 + 4, true, false },
	[ENC_3DES_CBC] = { "3des-cbc", 24, false, true },
};

static const struct {
	const char *name;
	uint8_t key_len;
	bool legacy;
} integ_tab[INTEG__COUNT] = {
	[INTEG_NONE] = { "none", 0, false },
	[INTEG_HMAC_SHA1_96] = { "hmac-sha1-96", 20, false },
	[INTEG_HMAC_SHA256_128] = { "hmac-sha256-128", 32, false },
	[INTEG_HMAC_SHA384_192] = { "hmac-sha384-192", 48, false },
	[INTEG_HMAC_SHA512_256] = { "hmac-sha512-256", 64, false },
	[INTEG_AES_XCBC_96] = { "aes-xcbc-96", 16, false },
	[INTEG_HMAC_MD5_96] = { "hmac-md5-96", 16, true },
	[INTEG_AES_GMAC_128] = { "aes-gmac-128", 16 + 4, false },
	[INTEG_AES_GMAC_256] = { "aes-gmac-256", 32 + 4, false },
};

bool enc_is_aead(uint8_t enc)
{
	return enc < ENC__COUNT && enc_tab[enc].aead;
}

bool enc_is_legacy(uint8_t enc)
{
	return enc < ENC__COUNT && enc_tab[enc].legacy;
}

bool integ_is_legacy(uint8_t integ)
{
	return integ < INTEG__COUNT && integ_tab[integ].legacy;
}

const char *enc_name(uint8_t enc)
{
	return enc < ENC__COUNT ? enc_tab[enc].name : "?";
}

const char *integ_name(uint8_t integ)
{
	return integ < INTEG__COUNT ? integ_tab[integ].name : "?";
}

int enc_from_name(const char *s)
{
	for (int i = 0; s && i < ENC__COUNT; i++)
		if (!strcmp(s, enc_tab[i].name))
			return i;
	return -XE_BAD_PARAM;
}

int integ_from_name(const char *s)
{
	for (int i = 0; s && i < INTEG__COUNT; i++)
		if (!strcmp(s, integ_tab[i].name))
			return i;
	return -XE_BAD_PARAM;
}

/* Enumerations as JSON strings, indexed by value (NULL: no such value). */
static const char *const action_names[] = { "discard", "bypass", "protect", NULL };
static const char *const dir_names[] = { NULL, "out", "in", "both", NULL };
static const char *const sa_dir_names[] = { NULL, "out", "in", NULL };
static const char *const mode_names[] = { "tunnel", "transport", NULL };
static const char *const encap_names[] = { "none", "udp", NULL };
static const char *const sa_proto_names[] = { "esp", "ah", NULL };
static const char *const df_names[] = { "clear", "set", "copy", NULL };
static const char *const origin_names[] = { "manual", "ike", NULL };
static const char *const clone_names[] = { "none", "src", "dst", NULL };
static const char *const sa_type_names[] = { "esp", "ah", "ahesp", NULL };
static const char *const default_action_names[] = { "discard", "bypass", NULL };
static const char *const admin_state_names[] = { "secure", "bypass", "drop", NULL };

/* The fields each object accepts: anything else is an error. */
static const char *const top_fields[] = { "ports", "options", "policies", "sas", NULL };
static const char *const ports_fields[] = { "red", "black", NULL };
static const char *const port_fields[] = { "interface", "mtu", "addresses", "gateway4", "gateway6", "router_mac", NULL };
static const char *const options_fields[] = {
	"default_action", "bridge_non_ip", "nat_keepalive", "neigh_timeout", "neigh_queue",
	"acquire_queue", "frag_timeout_ms", "frag_mem", "replay_window", "legacy_algorithms",
	"admin_state", "black_interface_mac", NULL
};
static const char *const policy_fields[] = {
	"id", "name", "priority", "order", "action", "direction", "src", "dst", "src_port",
	"dst_port", "protocol", "mode", "peer", "mss_clamp", "ecn", "df", "pad_check", "tfc_pad", "dummy_interval_ms",
	"icv_96", "clone", "sa_type", NULL
};
static const char *const sa_fields[] = {
	"spi", "direction", "policy", "peer", "local", "encap", "encap_sport", "encap_dport", "nat_keepalive",
	"enc", "enc_key", "integ", "integ_key", "replay_window", "esn", "lifetime", "origin", "protocol",
	"clone_host", NULL
};
static const char *const lifetime_fields[] = { "soft", "hard", NULL };
static const char *const limit_fields[] = { "seconds", "bytes", "packets", NULL };

static const char *const *const field_tables[] = {
	top_fields, ports_fields, port_fields, options_fields, policy_fields, sa_fields,
	lifetime_fields, limit_fields,
};

const char *config_field_at(size_t i)
{
	for (size_t t = 0; t < sizeof(field_tables) / sizeof(field_tables[0]); t++)
		for (const char *const *f = field_tables[t]; *f; f++)
			if (i-- == 0)
				return *f;
	return NULL;
}

/* ---- typed field readers: absent leaves *out alone, a wrong type or value is an error ---- */

static int check_object(struct perr *e, const char *path, const json_t *obj, const char *const *known)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return bad(e, path, "expected an object");
	json_object_foreach((json_t *)obj, key, v) {
		const char *const *k = known;
		char fp[PATH_LEN];

		while (*k && strcmp(*k, key))
			k++;
		if (!*k) {
			subpath(fp, path, key);
			return bad(e, fp, "unknown field");
		}
	}
	return 0;
}

static int need(struct perr *e, const char *path, const json_t *obj, const char *key)
{
	char fp[PATH_LEN];

	if (json_object_get(obj, key))
		return 0;
	subpath(fp, path, key);
	return bad(e, fp, "missing required field");
}

static int get_uint(struct perr *e, const char *path, const json_t *obj, const char *key,
                    uint64_t min, uint64_t max, uint64_t *out)
{
	const json_t *v = json_object_get(obj, key);
	char fp[PATH_LEN];
	json_int_t n;

	if (!v)
		return 0;
	subpath(fp, path, key);
	if (!json_is_integer(v))
		return bad(e, fp, "expected an integer");
	n = json_integer_value(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return bad(e, fp, "%lld out of range %llu..%llu", (long long)n, (unsigned long long)min,
		           (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}

static int get_u32(struct perr *e, const char *path, const json_t *obj, const char *key,
                   uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = *out;
	int rc = get_uint(e, path, obj, key, min, max, &v);

	*out = (uint32_t)v;
	return rc;
}

static int get_u16(struct perr *e, const char *path, const json_t *obj, const char *key,
                   uint16_t min, uint16_t max, uint16_t *out)
{
	uint64_t v = *out;
	int rc = get_uint(e, path, obj, key, min, max, &v);

	*out = (uint16_t)v;
	return rc;
}

static int get_bool(struct perr *e, const char *path, const json_t *obj, const char *key, uint8_t *out)
{
	const json_t *v = json_object_get(obj, key);
	char fp[PATH_LEN];

	if (!v)
		return 0;
	subpath(fp, path, key);
	if (!json_is_boolean(v))
		return bad(e, fp, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

static int get_str(struct perr *e, const char *path, const json_t *obj, const char *key, const char **out)
{
	const json_t *v = json_object_get(obj, key);
	char fp[PATH_LEN];

	if (!v)
		return 0;
	subpath(fp, path, key);
	if (!json_is_string(v))
		return bad(e, fp, "expected a string");
	*out = json_string_value(v);
	return 0;
}

static int get_enum(struct perr *e, const char *path, const json_t *obj, const char *key,
                    const char *const *names, size_t count, uint8_t *out)
{
	const char *s = NULL;
	char fp[PATH_LEN], list[128] = "";

	int rc = get_str(e, path, obj, key, &s);

	if (rc || !s)
		return rc;
	for (size_t i = 0; i < count; i++) {
		if (names[i] && !strcmp(names[i], s)) {
			*out = (uint8_t)i;
			return 0;
		}
	}
	for (size_t i = 0; i < count; i++)
		if (names[i])
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", *list ? ", " : "", names[i]);
	subpath(fp, path, key);
	return bad(e, fp, "must be one of %s", list);
}

#define ENUM_COUNT(names) (sizeof(names) / sizeof(names[0]) - 1)

static int addr_parse(const char *s, struct bw_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (strchr(s, ':')) {
		out->family = 6;
		return inet_pton(AF_INET6, s, out->a) == 1 ? 0 : -XE_BAD_PARAM;
	}
	out->family = 4;
	return inet_pton(AF_INET, s, out->a) == 1 ? 0 : -XE_BAD_PARAM;
}

static const char *addr_str(const struct bw_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

static int get_addr(struct perr *e, const char *path, const json_t *obj, const char *key, struct bw_addr *out)
{
	const char *s = NULL;
	char fp[PATH_LEN];
	int rc = get_str(e, path, obj, key, &s);

	if (rc || !s)
		return rc;
	subpath(fp, path, key);
	if (addr_parse(s, out))
		return bad(e, fp, "not an IPv4 or IPv6 address");
	return 0;
}

/* ---- ports and options ---- */

static int mac_parse(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	int n = 0;

	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &n) != 6 ||
	    n != 17)
		return -XE_BAD_PARAM;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* "addr/plen" (or a bare address: a host route) of an address we own. */
static int owned_addr_parse(struct perr *e, const char *path, const json_t *v, struct bw_addr *a, uint8_t *plen)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	unsigned long n;
	char *end;

	if (!json_is_string(v))
		return bad(e, path, "expected a string \"address/prefix-length\"");
	if (strlen(json_string_value(v)) >= sizeof(buf))
		return bad(e, path, "not an address/prefix-length");
	strcpy(buf, json_string_value(v));
	if ((slash = strchr(buf, '/')))
		*slash = 0;
	if (addr_parse(buf, a))
		return bad(e, path, "not an IPv4 or IPv6 address");
	*plen = a->family == 4 ? 32 : 128;
	if (!slash)
		return 0;
	n = strtoul(slash + 1, &end, 10);
	if (slash[1] < '0' || slash[1] > '9' || *end || n > *plen)
		return bad(e, path, "bad prefix length (IPv4 0-32, IPv6 0-128)");
	*plen = (uint8_t)n;
	return 0;
}

static int port_addrs_parse(struct perr *e, const char *path, const json_t *arr, struct port_conf *p)
{
	char ip[PATH_LEN];
	size_t i;
	json_t *v;
	int rc;

	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return bad(e, path, "expected an array");
	if (json_array_size(arr) > PORT_MAX_ADDRS)
		return bad(e, path, "at most %d addresses", PORT_MAX_ADDRS);
	json_array_foreach(arr, i, v) {
		itempath(ip, path, i);
		if ((rc = owned_addr_parse(e, ip, v, &p->addr[i], &p->plen[i])))
			return rc;
	}
	p->naddr = (uint8_t)json_array_size(arr);
	return 0;
}

static int gateway_parse(struct perr *e, const char *path, const json_t *obj, const char *key, uint8_t family,
                         struct bw_addr *gw)
{
	char fp[PATH_LEN];
	int rc = get_addr(e, path, obj, key, gw);

	if (rc || !gw->family || gw->family == family)
		return rc;
	subpath(fp, path, key);
	return bad(e, fp, "must be an IPv%u address", family);
}

static int port_parse(struct perr *e, const char *path, const json_t *obj, struct port_conf *p)
{
	const char *ifname = NULL, *mac = NULL;
	char fp[PATH_LEN];
	int rc;

	if ((rc = check_object(e, path, obj, port_fields)) || (rc = get_str(e, path, obj, "interface", &ifname)) ||
	    (rc = get_u32(e, path, obj, "mtu", 0, PKT_MAX - ETH_HLEN_, &p->mtu)) ||
	    (rc = get_str(e, path, obj, "router_mac", &mac)))
		return rc;
	subpath(fp, path, "interface");
	if (ifname && (!*ifname || strlen(ifname) >= IF_NAMESIZE))
		return bad(e, fp, "must be 1 to %d characters", IF_NAMESIZE - 1);
	if (ifname)
		strcpy(p->ifname, ifname);
	subpath(fp, path, "mtu");
	if (p->mtu && p->mtu < 576)
		return bad(e, fp, "%u too small: 0 (the interface's) or 576..%d", p->mtu, PKT_MAX - ETH_HLEN_);
	subpath(fp, path, "router_mac");
	if (mac && mac_parse(mac, p->router_mac))
		return bad(e, fp, "not a MAC address xx:xx:xx:xx:xx:xx");
	subpath(fp, path, "addresses");
	if ((rc = port_addrs_parse(e, fp, json_object_get(obj, "addresses"), p)))
		return rc;
	if ((rc = gateway_parse(e, path, obj, "gateway4", 4, &p->gw4)))
		return rc;
	return gateway_parse(e, path, obj, "gateway6", 6, &p->gw6);
}

static int ports_parse(struct perr *e, const json_t *obj, struct wire_config *c)
{
	const json_t *red, *black;
	int rc;

	if (!obj)
		return 0;
	if ((rc = check_object(e, "ports", obj, ports_fields)))
		return rc;
	red = json_object_get(obj, "red");
	black = json_object_get(obj, "black");
	if (red && (rc = port_parse(e, "ports.red", red, &c->red)))
		return rc;
	return black ? port_parse(e, "ports.black", black, &c->black) : 0;
}

static int replay_window_get(struct perr *e, const char *path, const json_t *obj, uint16_t *out)
{
	uint16_t w = *out;
	char fp[PATH_LEN];
	int rc;

	if (!json_object_get(obj, "replay_window"))
		return 0;
	if ((rc = get_u16(e, path, obj, "replay_window", 0, 4096, &w)))
		return rc;
	subpath(fp, path, "replay_window");
	if (w && w < 64)
		return bad(e, fp, "%u out of range: 0 (off) or 64..4096", w);
	*out = (uint16_t)((w + 63) / 64 * 64);
	return 0;
}

static void options_default(struct wire_options *o)
{
	*o = (struct wire_options){
		.default_action = ACT_DISCARD, .bridge_non_ip = 1, .nat_keepalive = 0,
		.neigh_timeout = 300, .neigh_queue = 8, .acquire_queue = 8,
		.frag_timeout_ms = 5000, .frag_mem = 4u << 20, .replay_window = 1024,
	};
}

static int options_parse(struct perr *e, const json_t *obj, struct wire_options *o)
{
	const char *p = "options";
	int rc;

	if (!obj)
		return 0;
	if ((rc = check_object(e, p, obj, options_fields)) ||
	    (rc = get_enum(e, p, obj, "default_action", default_action_names, ENUM_COUNT(default_action_names),
	                   &o->default_action)) ||
	    (rc = get_enum(e, p, obj, "admin_state", admin_state_names, ENUM_COUNT(admin_state_names),
	                   &o->admin_state)) ||
	    (rc = get_bool(e, p, obj, "bridge_non_ip", &o->bridge_non_ip)) ||
	    (rc = get_u16(e, p, obj, "nat_keepalive", 0, 3600, &o->nat_keepalive)) ||
	    (rc = get_u32(e, p, obj, "neigh_timeout", 1, 86400, &o->neigh_timeout)) ||
	    (rc = get_u32(e, p, obj, "neigh_queue", 0, 1024, &o->neigh_queue)) ||
	    (rc = get_u32(e, p, obj, "acquire_queue", 0, 1024, &o->acquire_queue)) ||
	    (rc = get_u32(e, p, obj, "frag_timeout_ms", 100, 60000, &o->frag_timeout_ms)) ||
	    (rc = get_u32(e, p, obj, "frag_mem", 65536, 1u << 30, &o->frag_mem)) ||
	    (rc = get_bool(e, p, obj, "legacy_algorithms", &o->legacy_algorithms)) ||
	    (rc = get_bool(e, p, obj, "black_interface_mac", &o->black_interface_mac)))
		return rc;
	return replay_window_get(e, p, obj, &o->replay_window);
}

/* ---- policies ---- */

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n >= NAME_MAX_)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr("_.:-", *s)))
			return false;
	return true;
}

static int name_get(struct perr *e, const char *path, const json_t *obj, const char *key, char out[NAME_MAX_])
{
	const char *s = NULL;
	char fp[PATH_LEN];
	int rc;

	if ((rc = get_str(e, path, obj, key, &s)) || !s)
		return rc;
	subpath(fp, path, key);
	if (!name_ok(s))
		return bad(e, fp, "must be 1-%d characters of A-Z a-z 0-9 _ . : -", NAME_MAX_ - 1);
	strcpy(out, s);
	return 0;
}

static int sel_addr_get(struct perr *e, const char *path, const json_t *obj, const char *key, struct sel_addr *out)
{
	const char *s = NULL, *why = "";
	char fp[PATH_LEN];
	int rc;

	if ((rc = get_str(e, path, obj, key, &s)) || !s)
		return rc;
	subpath(fp, path, key);
	if (sel_addr_parse_why(s, out, &why))
		return bad(e, fp, "%s", why);
	return 0;
}

/* A port selector: "any", "80", "1024-65535" or an integer. */
static int sel_port_get(struct perr *e, const char *path, const json_t *obj, const char *key, struct sel_port *out)
{
	const json_t *v = json_object_get(obj, key);
	char fp[PATH_LEN];

	if (!v)
		return 0;
	subpath(fp, path, key);
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 65535) {
		out->lo = out->hi = (uint16_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && !sel_port_parse(json_string_value(v), out))
		return 0;
	return bad(e, fp, "must be any, a port 0-65535 or a range lo-hi");
}

static int sel_proto_get(struct perr *e, const char *path, const json_t *obj, int16_t *out)
{
	const json_t *v = json_object_get(obj, "protocol");
	char fp[PATH_LEN];

	if (!v)
		return 0;
	subpath(fp, path, "protocol");
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 255) {
		*out = (int16_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && !sel_proto_parse(json_string_value(v), out))
		return 0;
	return bad(e, fp, "must be any, tcp, udp, icmp, icmp6, sctp or a number 0-255");
}

static bool port_is_any(const struct sel_port *p)
{
	return p->lo == 0 && p->hi == 65535;
}

static int selector_parse(struct perr *e, const char *path, const json_t *obj, struct selector *s)
{
	const char *pk[2] = { "src_port", "dst_port" };
	const struct sel_port *pv[2] = { &s->sport, &s->dport };
	char fp[PATH_LEN];
	int rc;

	s->src.family = s->dst.family = 0;
	if ((rc = sel_addr_get(e, path, obj, "src", &s->src)) || (rc = sel_addr_get(e, path, obj, "dst", &s->dst)) ||
	    (rc = sel_port_get(e, path, obj, "src_port", &s->sport)) ||
	    (rc = sel_port_get(e, path, obj, "dst_port", &s->dport)) || (rc = sel_proto_get(e, path, obj, &s->proto)))
		return rc;
	/* An absent side is the "any" of the other side's family. */
	if (!s->src.family)
		sel_addr_parse(s->dst.family == 6 ? "any6" : "any", &s->src);
	if (!s->dst.family)
		sel_addr_parse(s->src.family == 6 ? "any6" : "any", &s->dst);
	subpath(fp, path, "dst");
	if (s->src.family != s->dst.family)
		return bad(e, fp, "address family differs from src (use any6 for IPv6)");
	for (int i = 0; i < 2; i++) {
		subpath(fp, path, pk[i]);
		if (!port_is_any(pv[i]) && s->proto == PROTO_ANY)
			return bad(e, fp, "needs a protocol with ports (tcp, udp, sctp, icmp, icmp6 or a number)");
		if ((s->proto == IPPROTO_ICMP_ || s->proto == IPPROTO_ICMPV6_) && pv[i]->hi > 255 && !port_is_any(pv[i]))
			return bad(e, fp, "ICMP type (src_port) and code (dst_port) are 0-255");
	}
	return 0;
}

static void policy_default(struct policy_conf *p)
{
	memset(p, 0, sizeof(*p));
	p->priority = 4;
	p->dir = DIR_BOTH;
	p->mode = MODE_TUNNEL;
	p->mss_clamp = 1;
	p->sel.sport = p->sel.dport = (struct sel_port){ 0, 65535 };
	p->sel.proto = PROTO_ANY;
}

/* The options a protect policy gives its SAs; JSON says what is on, sa_opts keeps zero as the default. */
static int sa_opts_parse(struct perr *e, const char *path, const json_t *obj, struct sa_opts *o)
{
	uint8_t ecn = 1, pad_check = 1;
	uint32_t dummy = 0;
	char fp[PATH_LEN];
	int rc;

	if ((rc = get_bool(e, path, obj, "ecn", &ecn)) ||
	    (rc = get_enum(e, path, obj, "df", df_names, ENUM_COUNT(df_names), &o->df)) ||
	    (rc = get_bool(e, path, obj, "pad_check", &pad_check)) ||
	    (rc = get_u16(e, path, obj, "tfc_pad", 0, TFC_PAD_MAX, &o->tfc_pad)) ||
	    (rc = get_u32(e, path, obj, "dummy_interval_ms", 0, 3600000, &dummy)) ||
	    (rc = get_bool(e, path, obj, "icv_96", &o->icv96)))
		return rc;
	subpath(fp, path, "dummy_interval_ms");
	if (dummy && dummy < 10)
		return bad(e, fp, "0 (off) or 10..3600000");
	o->ecn_off = !ecn;
	o->pad_nocheck = !pad_check;
	o->dummy_ms = dummy;
	return 0;
}

/*
 * Transport mode protects one host behind bitw talking to one peer host: the
 * SA's outer addresses are the packets' own, so src is that host alone and the
 * peer is a destination the policy covers.
 */
static int transport_check(struct perr *e, const char *path, const struct policy_conf *p)
{
	const struct sel_addr *src = &p->sel.src, *dst = &p->sel.dst;
	size_t n = p->peer.family == 4 ? 4 : 16;
	char fp[PATH_LEN];

	subpath(fp, path, "src");
	if (src->family != p->peer.family || memcmp(src->lo, src->hi, 16) != 0)
		return bad(e, fp, "transport mode needs one host address of the peer's family");
	subpath(fp, path, "peer");
	if (dst->family != p->peer.family || memcmp(p->peer.a, dst->lo, n) < 0 || memcmp(p->peer.a, dst->hi, n) > 0)
		return bad(e, fp, "transport mode: the peer must be inside dst (the peer host is the other end)");
	return 0;
}

/* Fields that only make sense with action protect. */
static int protect_fields(struct perr *e, const char *path, const json_t *obj, struct policy_conf *p)
{
	static const char *const only[] = { "peer", "mode", "mss_clamp", "ecn", "df", "pad_check", "tfc_pad",
		                            "dummy_interval_ms", "icv_96", "clone", "sa_type" };
	char fp[PATH_LEN];
	int rc;

	if (p->action != ACT_PROTECT) {
		for (size_t i = 0; i < sizeof only / sizeof only[0]; i++) {
			subpath(fp, path, only[i]);
			if (json_object_get(obj, only[i]))
				return bad(e, fp, "only allowed with action protect");
		}
		return 0;
	}
	if ((rc = need(e, path, obj, "peer")) || (rc = get_addr(e, path, obj, "peer", &p->peer)) ||
	    (rc = get_enum(e, path, obj, "mode", mode_names, ENUM_COUNT(mode_names), &p->mode)) ||
	    (rc = get_bool(e, path, obj, "mss_clamp", &p->mss_clamp)) || (rc = sa_opts_parse(e, path, obj, &p->opts)) ||
	    (rc = get_enum(e, path, obj, "clone", clone_names, ENUM_COUNT(clone_names), &p->clone)) ||
	    (rc = get_enum(e, path, obj, "sa_type", sa_type_names, ENUM_COUNT(sa_type_names), &p->sa_type)))
		return rc;
	subpath(fp, path, "clone");
	if (p->clone != CLONE_NONE && p->mode == MODE_TRANSPORT)
		return bad(e, fp, "transport mode already serves one host: clone needs tunnel mode");
	/* the AH SAs such a policy takes carry neither (ah_check) */
	subpath(fp, path, p->opts.tfc_pad ? "tfc_pad" : "dummy_interval_ms");
	if (p->sa_type != SATYPE_ESP && (p->opts.tfc_pad || p->opts.dummy_ms))
		return bad(e, fp, "TFC padding and dummy packets are ESP's: not with sa_type %s",
		           sa_type_names[p->sa_type]);
	return p->mode == MODE_TRANSPORT ? transport_check(e, path, p) : 0;
}

static int policy_parse(struct perr *e, const char *path, const json_t *obj, struct policy_conf *p,
                        bool *has_id, bool *has_order)
{
	uint8_t prio = 4;
	uint32_t prio32 = 4;
	int rc;

	policy_default(p);
	if ((rc = check_object(e, path, obj, policy_fields)) || (rc = need(e, path, obj, "name")) ||
	    (rc = need(e, path, obj, "action")) || (rc = get_u32(e, path, obj, "id", 1, UINT32_MAX, &p->id)) ||
	    (rc = name_get(e, path, obj, "name", p->name)) ||
	    (rc = get_u32(e, path, obj, "priority", 1, 7, &prio32)) ||
	    (rc = get_u32(e, path, obj, "order", 0, UINT32_MAX, &p->order)) ||
	    (rc = get_enum(e, path, obj, "action", action_names, ENUM_COUNT(action_names), &p->action)) ||
	    (rc = get_enum(e, path, obj, "direction", dir_names, ENUM_COUNT(dir_names), &p->dir)) ||
	    (rc = selector_parse(e, path, obj, &p->sel)) || (rc = protect_fields(e, path, obj, p)))
		return rc;
	prio = (uint8_t)prio32;
	p->priority = prio;
	*has_id = json_object_get(obj, "id") != NULL;
	*has_order = json_object_get(obj, "order") != NULL;
	return 0;
}

int policy_from_json(const struct json_t *obj, struct policy_conf *out, char *err, size_t errlen)
{
	struct perr e = { err, errlen };
	bool has_id, has_order;

	return policy_parse(&e, "", obj, out, &has_id, &has_order);
}

static int pol_name_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct policy_conf *const *)a)->name, (*(const struct policy_conf *const *)b)->name);
}

static int pol_id_cmp(const void *a, const void *b)
{
	uint32_t x = (*(const struct policy_conf *const *)a)->id, y = (*(const struct policy_conf *const *)b)->id;

	return x < y ? -1 : x > y;
}

/* Sorted by cmp, equal neighbours are duplicates; name the later one in the list. */
static int pol_unique(struct perr *e, const char *path, struct policy_conf *pol, uint32_t n,
                      int (*cmp)(const void *, const void *), const char *what)
{
	const struct policy_conf **v = malloc(((size_t)n + 1) * sizeof(*v));
	char fp[PATH_LEN], ip[PATH_LEN];
	int rc = 0;

	if (!v)
		return bad(e, path, "out of memory");
	for (uint32_t i = 0; i < n; i++)
		v[i] = &pol[i];
	qsort(v, n, sizeof(*v), cmp);
	for (uint32_t i = 1; i < n && !rc; i++) {
		if (cmp(&v[i], &v[i - 1]))
			continue;
		size_t a = (size_t)(v[i - 1] - pol), b = (size_t)(v[i] - pol);

		itempath(ip, path, a > b ? a : b);
		subpath(fp, ip, what);
		rc = bad(e, fp, "duplicate %s (also %s[%zu])", what, path, a < b ? a : b);
	}
	free(v);
	return rc;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Policies without an id get 1, 2, ... in file order, skipping ids given explicitly. */
static int ids_assign(struct policy_conf *pol, const bool *has_id, uint32_t n)
{
	uint32_t *taken = malloc(((size_t)n + 1) * sizeof(*taken)), nt = 0, next = 1;

	if (!taken)
		return -XE_NOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (has_id[i])
			taken[nt++] = pol[i].id;
	qsort(taken, nt, sizeof(*taken), u32_cmp);
	for (uint32_t i = 0; i < n; i++) {
		if (has_id[i])
			continue;
		while (bsearch(&next, taken, nt, sizeof(*taken), u32_cmp))
			next++;
		pol[i].id = next++;
	}
	free(taken);
	return 0;
}

static int policies_parse(struct perr *e, const char *path, const json_t *arr, struct policy_conf **out,
                          uint32_t *nout)
{
	size_t n = json_array_size(arr);
	struct policy_conf *pol = calloc(n + 1, sizeof(*pol));
	bool *flags = calloc(2 * n + 1, sizeof(*flags));
	char ip[PATH_LEN];
	int rc = 0;

	if (!pol || !flags)
		rc = bad(e, path, "out of memory");
	for (size_t i = 0; i < n && !rc; i++) {
		itempath(ip, path, i);
		rc = policy_parse(e, ip, json_array_get(arr, i), &pol[i], &flags[i], &flags[n + i]);
		if (!flags[n + i])
			pol[i].order = (uint32_t)i;
	}
	if (!rc && ids_assign(pol, flags, (uint32_t)n))
		rc = bad(e, path, "out of memory");
	if (!rc && !(rc = pol_unique(e, path, pol, (uint32_t)n, pol_name_cmp, "name")))
		rc = pol_unique(e, path, pol, (uint32_t)n, pol_id_cmp, "id");
	free(flags);
	if (rc) {
		free(pol);
		return rc;
	}
	*out = pol;
	*nout = (uint32_t)n;
	return 0;
}

int policies_from_json(const struct json_t *arr, struct policy_conf **out, uint32_t *n, char *err, size_t errlen)
{
	struct perr e = { err, errlen };

	if (!json_is_array(arr))
		return bad(&e, "policies", "expected an array");
	return policies_parse(&e, "policies", arr, out, n);
}

/* ---- SAs ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex with an optional 0x and ':' separators. Errors never echo the digits. */
static int key_get(struct perr *e, const char *path, const json_t *obj, const char *key, uint8_t *out,
                   size_t max, uint8_t *len)
{
	const char *s = NULL;
	char fp[PATH_LEN];
	size_t digits = 0, n = 0;
	int rc;

	if ((rc = get_str(e, path, obj, key, &s)) || !s)
		return rc;
	subpath(fp, path, key);
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (const char *p = s; *p; p++) {
		if (*p != ':' && hexval(*p) < 0)
			return bad(e, fp, "not a hex string");
		digits += *p != ':';
	}
	if (digits % 2)
		return bad(e, fp, "odd number of hex digits");
	if (digits / 2 > max)
		return bad(e, fp, "%zu bytes is longer than any algorithm's key (%zu)", digits / 2, max);
	for (const char *p = s; *p; p++) {
		if (*p == ':')
			continue;
		out[n++] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
		p++;
	}
	*len = (uint8_t)n;
	return 0;
}

static int spi_get(struct perr *e, const char *path, const json_t *obj, uint32_t *spi)
{
	const json_t *v = json_object_get(obj, "spi");
	char fp[PATH_LEN];
	long long n = -1;

	subpath(fp, path, "spi");
	if (json_is_integer(v))
		n = json_integer_value(v);
	else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		errno = 0;
		if (*s >= '0' && *s <= '9' && strlen(s) <= 12)
			n = strtoll(s, &end, 0);
		if (*s < '0' || *s > '9' || *end || errno)
			return bad(e, fp, "not a number (decimal or 0x hex)");
	} else
		return bad(e, fp, "expected an integer or a hex string");
	if (n < 256 || n > 0xffffffffLL)
		return bad(e, fp, "out of range 256..0xffffffff (0-255 are reserved)");
	*spi = (uint32_t)n;
	return 0;
}

static int limits_parse(struct perr *e, const char *path, const json_t *obj, struct sa_lifetime *l)
{
	int rc;

	if (!obj)
		return 0;
	if ((rc = check_object(e, path, obj, limit_fields)) ||
	    (rc = get_uint(e, path, obj, "seconds", 0, INT64_MAX, &l->seconds)) ||
	    (rc = get_uint(e, path, obj, "bytes", 0, INT64_MAX, &l->bytes)))
		return rc;
	return get_uint(e, path, obj, "packets", 0, INT64_MAX, &l->packets);
}

static int lifetime_parse(struct perr *e, const char *path, const json_t *obj, struct sa_conf *s)
{
	const char *what[3] = { "seconds", "bytes", "packets" };
	uint64_t soft[3], hard[3];
	char fp[PATH_LEN], sp[PATH_LEN];
	int rc;

	if (!obj)
		return 0;
	subpath(fp, path, "soft");
	subpath(sp, path, "hard");
	if ((rc = check_object(e, path, obj, lifetime_fields)) ||
	    (rc = limits_parse(e, fp, json_object_get(obj, "soft"), &s->soft)) ||
	    (rc = limits_parse(e, sp, json_object_get(obj, "hard"), &s->hard)))
		return rc;
	memcpy(soft, (uint64_t[3]){ s->soft.seconds, s->soft.bytes, s->soft.packets }, sizeof(soft));
	memcpy(hard, (uint64_t[3]){ s->hard.seconds, s->hard.bytes, s->hard.packets }, sizeof(hard));
	for (int i = 0; i < 3; i++) {
		subpath(fp, path, "soft");
		subpath(sp, fp, what[i]);
		if (soft[i] && hard[i] && soft[i] >= hard[i])
			return bad(e, sp, "soft limit must be below the hard limit");
	}
	return 0;
}

/* Keys and algorithms fit together (also for SAs built by hand). */
static int sa_check_algs(struct perr *e, const char *path, const struct sa_conf *s)
{
	char fp[PATH_LEN];

	subpath(fp, path, "enc");
	if (s->enc >= ENC__COUNT)
		return bad(e, fp, "unknown algorithm");
	if (s->proto == PROTO_AH && s->enc != ENC_NULL)
		return bad(e, fp, "must be null for an AH SA (AH does not encrypt)");
	subpath(fp, path, "integ");
	if (s->integ >= INTEG__COUNT)
		return bad(e, fp, "unknown algorithm");
	if (enc_tab[s->enc].aead && s->integ != INTEG_NONE)
		return bad(e, fp, "must be none with %s (it authenticates itself)", enc_tab[s->enc].name);
	if (!enc_tab[s->enc].aead && s->integ == INTEG_NONE)
		return bad(e, fp, "%s needs an integrity algorithm", enc_tab[s->enc].name);
	if ((s->integ == INTEG_AES_GMAC_128 || s->integ == INTEG_AES_GMAC_256) && s->proto != PROTO_AH)
		return bad(e, fp, "%s is AH's integrity (RFC 4543); ESP names it as enc with integ none",
		           integ_tab[s->integ].name);
	subpath(fp, path, "enc_key");
	if (s->enc_key_len != enc_tab[s->enc].key_len)
		return bad(e, fp, "%s needs %u bytes (%u hex digits), got %u", enc_tab[s->enc].name,
		           enc_tab[s->enc].key_len, 2u * enc_tab[s->enc].key_len, s->enc_key_len);
	subpath(fp, path, "integ_key");
	if (s->integ_key_len != integ_tab[s->integ].key_len)
		return bad(e, fp, "%s needs %u bytes (%u hex digits), got %u", integ_tab[s->integ].name,
		           integ_tab[s->integ].key_len, 2u * integ_tab[s->integ].key_len, s->integ_key_len);
	return 0;
}

static int alg_get(struct perr *e, const char *path, const json_t *obj, const char *key,
                   int (*from_name)(const char *), uint8_t *out)
{
	const char *s = NULL;
	char fp[PATH_LEN];
	int rc;

	if ((rc = get_str(e, path, obj, key, &s)) || !s)
		return rc;
	subpath(fp, path, key);
	if ((rc = from_name(s)) < 0)
		return bad(e, fp, "unknown algorithm (see docs/config.md)");
	*out = (uint8_t)rc;
	return 0;
}

static void sa_default(struct sa_conf *s)
{
	memset(s, 0, sizeof(*s));
	s->mode = MODE_TUNNEL;
	s->encap = ENCAP_NONE;
	s->encap_sport = s->encap_dport = 4500;
	s->integ = INTEG_NONE;
	s->replay_window = SA_REPLAY_DEFAULT;
}

static int sa_parse(struct perr *e, const char *path, const json_t *obj, struct sa_conf *s)
{
	int rc;

	sa_default(s);
	if ((rc = check_object(e, path, obj, sa_fields)) || (rc = need(e, path, obj, "spi")) ||
	    (rc = need(e, path, obj, "direction")) || (rc = need(e, path, obj, "policy")) ||
	    (rc = get_enum(e, path, obj, "protocol", sa_proto_names, ENUM_COUNT(sa_proto_names), &s->proto)) ||
	    (s->proto == PROTO_ESP && (rc = need(e, path, obj, "enc"))) || (rc = spi_get(e, path, obj, &s->spi)) ||
	    (rc = get_enum(e, path, obj, "direction", sa_dir_names, ENUM_COUNT(sa_dir_names), &s->dir)) ||
	    (rc = name_get(e, path, obj, "policy", s->policy)) || (rc = get_addr(e, path, obj, "peer", &s->peer)) ||
	    (rc = get_addr(e, path, obj, "local", &s->local)) ||
	    (rc = get_enum(e, path, obj, "encap", encap_names, ENUM_COUNT(encap_names), &s->encap)) ||
	    (rc = get_u16(e, path, obj, "encap_sport", 1, 65535, &s->encap_sport)) ||
	    (rc = get_u16(e, path, obj, "encap_dport", 1, 65535, &s->encap_dport)) ||
	    (rc = get_u16(e, path, obj, "nat_keepalive", 0, 3600, &s->nat_keepalive)) ||
	    (rc = alg_get(e, path, obj, "enc", enc_from_name, &s->enc)) ||
	    (rc = alg_get(e, path, obj, "integ", integ_from_name, &s->integ)) ||
	    (rc = key_get(e, path, obj, "enc_key", s->enc_key, sizeof(s->enc_key), &s->enc_key_len)) ||
	    (rc = key_get(e, path, obj, "integ_key", s->integ_key, sizeof(s->integ_key), &s->integ_key_len)) ||
	    (rc = replay_window_get(e, path, obj, &s->replay_window)) || (rc = get_bool(e, path, obj, "esn", &s->esn)) ||
	    (rc = get_enum(e, path, obj, "origin", origin_names, ENUM_COUNT(origin_names), &s->origin)) ||
	    (rc = get_addr(e, path, obj, "clone_host", &s->clone_host)))
		return rc;
	{
		char fp[PATH_LEN];

		subpath(fp, path, "lifetime");
		if ((rc = lifetime_parse(e, fp, json_object_get(obj, "lifetime"), s)))
			return rc;
	}
	return sa_check_algs(e, path, s);
}

int sa_from_json(const struct json_t *obj, struct sa_conf *out, char *err, size_t errlen)
{
	struct perr e = { err, errlen };
	int rc = sa_parse(&e, "", obj, out);

	if (rc)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

static int local_pick(struct perr *e, const char *path, struct sa_conf *s, const struct port_conf *black)
{
	char fp[PATH_LEN];

	subpath(fp, path, "local");
	if (s->local.family) {
		for (uint8_t i = 0; i < black->naddr; i++)
			if (black->addr[i].family == s->local.family && !memcmp(black->addr[i].a, s->local.a, 16))
				return 0;
		return bad(e, fp, "not one of ports.black.addresses");
	}
	for (uint8_t i = 0; i < black->naddr; i++) {
		if (black->addr[i].family == s->peer.family) {
			s->local = black->addr[i];
			return 0;
		}
	}
	return bad(e, fp, "no IPv%u address in ports.black.addresses to use", s->peer.family);
}

/* A transport SA's local end is the protected host itself: bitw speaks ESP with its address. */
static int transport_local(struct perr *e, const char *path, struct sa_conf *s, const struct policy_conf *p)
{
	struct bw_addr host = { .family = p->sel.src.family };
	char fp[PATH_LEN];

	memcpy(host.a, p->sel.src.lo, 16);
	subpath(fp, path, "local");
	if (s->local.family && !bw_addr_eq(&s->local, &host))
		return bad(e, fp, "a transport SA's local address is its policy's src host");
	s->local = host;
	subpath(fp, path, "encap");
	if (s->encap != ENCAP_NONE)
		return bad(e, fp, "udp encapsulation is not supported in transport mode");
	return 0;
}

/* AH (RFC 4302) here: IP protocol 51 only (NAT traversal is ESP's, RFC 3948); padding and dummies are ESP's too. */
static int ah_check(struct perr *e, const char *path, const struct sa_conf *s, const struct policy_conf *p)
{
	char fp[PATH_LEN];

	if (s->proto != PROTO_AH)
		return 0;
	subpath(fp, path, "encap");
	if (s->encap != ENCAP_NONE)
		return bad(e, fp, "ah cannot be udp-encapsulated");
	subpath(fp, path, "protocol");
	if (p->opts.tfc_pad || p->opts.dummy_ms)
		return bad(e, fp, "ah cannot carry policy \"%s\"'s %s (TFC padding and dummy packets are ESP's)",
		           p->name, p->opts.tfc_pad ? "tfc_pad" : "dummy_interval_ms");
	return 0;
}

/*
 * An SA's protocol must be one its policy's sa_type uses. The ESP SA of a
 * bundle stays IP protocol 50 inside AH: AH covers the outer header, which
 * NAT would change, so no UDP encapsulation.
 */
static int sa_type_check(struct perr *e, const char *path, const struct sa_conf *s, const struct policy_conf *p)
{
	char fp[PATH_LEN];

	subpath(fp, path, "protocol");
	if (p->sa_type != SATYPE_AHESP && s->proto != p->sa_type)
		return bad(e, fp, "policy \"%s\" has sa_type %s: an %s SA needs sa_type %s or ahesp", p->name,
		           sa_type_names[p->sa_type], sa_proto_names[s->proto], sa_proto_names[s->proto]);
	subpath(fp, path, "encap");
	if (p->sa_type == SATYPE_AHESP && s->encap != ENCAP_NONE)
		return bad(e, fp, "the ESP SA of an ahesp bundle cannot be udp-encapsulated (AH covers the outer header)");
	return 0;
}

/* A clone policy's SA serves one host inside the selector its clone names; other SAs serve no host. */
static int clone_host_check(struct perr *e, const char *path, const struct sa_conf *s, const struct policy_conf *p)
{
	const struct sel_addr *range = p->clone == CLONE_DST ? &p->sel.dst : &p->sel.src;
	const struct bw_addr *h = &s->clone_host;
	char fp[PATH_LEN];

	subpath(fp, path, "clone_host");
	if (p->clone == CLONE_NONE)
		return h->family ? bad(e, fp, "only for SAs of a policy with clone src or dst") : 0;
	if (!h->family)
		return bad(e, fp, "policy \"%s\" clones per %s host: the SA must name its host", p->name,
		           clone_names[p->clone]);
	if (h->family != range->family || memcmp(h->a, range->lo, 16) < 0 || memcmp(h->a, range->hi, 16) > 0)
		return bad(e, fp, "not inside the policy's %s selector", clone_names[p->clone]);
	return 0;
}

/* What an SA must be for its policy, whatever else is configured. */
static int sa_policy_checks(struct perr *e, const char *path, const struct sa_conf *s, const struct policy_conf *p)
{
	int rc = clone_host_check(e, path, s, p);

	if (rc == 0)
		rc = ah_check(e, path, s, p);
	if (rc == 0)
		rc = sa_type_check(e, path, s, p);
	return rc;
}

int sa_fits_policy_conf(const struct sa_conf *sa, const struct policy_conf *p, char *err, size_t errlen)
{
	struct perr e = { err, errlen };

	return sa_policy_checks(&e, "", sa, p);
}

static int sa_resolve_at(struct perr *e, const char *path, struct sa_conf *s, const struct policy_conf *pol,
                         uint32_t npol, const struct port_conf *black, uint16_t default_replay)
{
	const struct policy_conf *p = NULL;
	char fp[PATH_LEN];
	int rc;

	subpath(fp, path, "policy");
	for (uint32_t i = 0; i < npol && !p; i++)
		if (!strncmp(pol[i].name, s->policy, NAME_MAX_))
			p = &pol[i];
	if (!p)
		return bad(e, fp, "no policy named \"%.63s\"", s->policy);
	if (p->action != ACT_PROTECT)
		return bad(e, fp, "\"%s\" is a %s policy; an SA needs a protect policy", p->name,
		           action_names[p->action < ACT_PROTECT ? p->action : ACT_DISCARD]);
	s->policy_id = p->id;
	s->mode = p->mode;
	s->opts = p->opts;
	if (!s->peer.family)
		s->peer = p->peer;
	subpath(fp, path, "direction");
	if (s->dir != DIR_OUT && s->dir != DIR_IN)
		return bad(e, fp, "must be in or out");
	if ((rc = p->mode == MODE_TRANSPORT ? transport_local(e, path, s, p) : local_pick(e, path, s, black)) ||
	    (rc = sa_policy_checks(e, path, s, p)))
		return rc;
	subpath(fp, path, "peer");
	if (s->peer.family != s->local.family)
		return bad(e, fp, "address family differs from local");
	if (s->replay_window == SA_REPLAY_DEFAULT)
		s->replay_window = default_replay;
	return sa_check_algs(e, path, s);
}

int sa_resolve(struct sa_conf *sa, const struct policy_conf *pol, uint32_t npol, const struct port_conf *black,
               uint16_t default_replay, char *err, size_t errlen)
{
	struct perr e = { err, errlen };

	return sa_resolve_at(&e, "", sa, pol, npol, black, default_replay);
}

static int sa_spi_cmp(const void *a, const void *b)
{
	const struct sa_conf *x = *(const struct sa_conf *const *)a, *y = *(const struct sa_conf *const *)b;

	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return x->spi < y->spi ? -1 : x->spi > y->spi;
}

static int spis_unique(struct perr *e, struct sa_conf *sa, uint32_t n)
{
	const struct sa_conf **v = malloc(((size_t)n + 1) * sizeof(*v));
	char fp[PATH_LEN];
	int rc = 0;

	if (!v)
		return bad(e, "sas", "out of memory");
	for (uint32_t i = 0; i < n; i++)
		v[i] = &sa[i];
	qsort(v, n, sizeof(*v), sa_spi_cmp);
	for (uint32_t i = 1; i < n && !rc; i++) {
		if (sa_spi_cmp(&v[i], &v[i - 1]))
			continue;
		size_t a = (size_t)(v[i - 1] - sa), b = (size_t)(v[i] - sa);

		snprintf(fp, sizeof(fp), "sas[%zu].spi", a > b ? a : b);
		rc = bad(e, fp, "duplicate SPI 0x%08x for direction %s, protocol %s (also sas[%zu])", v[i]->spi,
		         v[i]->dir == DIR_IN ? "in" : "out", sa_proto_names[v[i]->proto], a < b ? a : b);
	}
	free(v);
	return rc;
}

static int sas_parse(struct perr *e, const json_t *arr, struct wire_config *c)
{
	size_t n = json_array_size(arr);
	char ip[PATH_LEN];
	int rc;

	if (!json_is_array(arr))
		return bad(e, "sas", "expected an array");
	if (!(c->sa = calloc(n + 1, sizeof(*c->sa))))
		return bad(e, "sas", "out of memory");
	c->nsa = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		itempath(ip, "sas", i);
		if ((rc = sa_parse(e, ip, json_array_get(arr, i), &c->sa[i])))
			return rc;
	}
	return 0;
}

/* ---- the whole document ---- */

/* Weak algorithms are refused unless the administrator asked for them (RFC 8221 lists them as MUST NOT / deprecated). */
static int sa_check_legacy(struct perr *e, const char *path, const struct sa_conf *s, const struct wire_options *o)
{
	char fp[PATH_LEN];

	if (o->legacy_algorithms)
		return 0;
	subpath(fp, path, enc_is_legacy(s->enc) ? "enc" : "integ");
	if (enc_is_legacy(s->enc) || integ_is_legacy(s->integ))
		return bad(e, fp, "%s is a legacy algorithm; set options.legacy_algorithms to true to allow it",
		           enc_is_legacy(s->enc) ? enc_tab[s->enc].name : integ_tab[s->integ].name);
	return 0;
}

int config_validate(struct wire_config *c, char *err, size_t errlen)
{
	struct perr e = { err, errlen };
	char ip[PATH_LEN];
	int rc;

	for (uint32_t i = 0; i < c->npol; i++) {
		itempath(ip, "policies", i);
		if (!memchr(c->pol[i].name, 0, NAME_MAX_) || !name_ok(c->pol[i].name))
			return bad(&e, ip, "bad or missing name");
	}
	if ((rc = pol_unique(&e, "policies", c->pol, c->npol, pol_name_cmp, "name")) ||
	    (rc = pol_unique(&e, "policies", c->pol, c->npol, pol_id_cmp, "id")))
		return rc;
	for (uint32_t i = 0; i < c->nsa; i++) {
		itempath(ip, "sas", i);
		if ((rc = sa_resolve_at(&e, ip, &c->sa[i], c->pol, c->npol, &c->black, c->opt.replay_window)) ||
		    (rc = sa_check_legacy(&e, ip, &c->sa[i], &c->opt)))
			return rc;
	}
	return spis_unique(&e, c->sa, c->nsa);
}

static int config_parse(struct perr *e, const json_t *root, struct wire_config *c)
{
	const json_t *v;
	int rc;

	if ((rc = check_object(e, "", root, top_fields)) || (rc = ports_parse(e, json_object_get(root, "ports"), c)) ||
	    (rc = options_parse(e, json_object_get(root, "options"), &c->opt)))
		return rc;
	if ((v = json_object_get(root, "policies"))) {
		if (!json_is_array(v))
			return bad(e, "policies", "expected an array");
		if ((rc = policies_parse(e, "policies", v, &c->pol, &c->npol)))
			return rc;
	}
	if ((v = json_object_get(root, "sas")) && (rc = sas_parse(e, v, c)))
		return rc;
	return config_validate(c, e->buf, e->len);
}

int config_from_json(const struct json_t *root, struct wire_config *out, char *err, size_t errlen)
{
	struct perr e = { err, errlen };
	int rc;

	memset(out, 0, sizeof(*out));
	options_default(&out->opt);
	if ((rc = config_parse(&e, root, out)))
		config_free(out);
	return rc;
}

void config_free(struct wire_config *c)
{
	if (!c)
		return;
	if (c->sa)
		OPENSSL_cleanse(c->sa, (size_t)c->nsa * sizeof(*c->sa));
	free(c->sa);
	free(c->pol);
	memset(c, 0, sizeof(*c));
}

/* jansson frees strings without wiping them: wipe the keys ourselves. */
static void json_wipe_keys(json_t *root)
{
	json_t *sas = json_object_get(root, "sas"), *sa;
	size_t i;

	json_array_foreach(sas, i, sa) {
		const char *k[2] = { "enc_key", "integ_key" };

		for (int j = 0; j < 2; j++) {
			json_t *v = json_object_get(sa, k[j]);

			if (json_is_string(v))
				OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
		}
	}
}

/* The whole file; the buffer may hold keys, so it is wiped (cap bytes) when freed. */
static int file_read(struct perr *e, const char *path, char **buf, size_t *len, size_t *capp)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 0;
	char *b = NULL;

	*len = 0;
	if (!f)
		return bad(e, path, "%s", strerror(errno));
	for (;;) {
		if (*len + 4096 > cap) {
			char *nb = malloc(cap * 2 + 8192);

			if (!nb) {
				OPENSSL_clear_free(b, cap);
				fclose(f);
				return bad(e, path, "out of memory");
			}
			memcpy(nb, b ? b : "", *len);
			OPENSSL_clear_free(b, cap);
			b = nb;
			cap = cap * 2 + 8192;
		}
		size_t got = fread(b + *len, 1, cap - *len, f);

		*len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		OPENSSL_clear_free(b, cap);
		fclose(f);
		return bad(e, path, "read error");
	}
	fclose(f);
	*buf = b;
	*capp = cap;
	return 0;
}

int config_load_file(const char *path, struct wire_config *out, char *err, size_t errlen)
{
	struct perr e = { err, errlen };
	json_error_t jerr;
	json_t *root;
	char *buf = NULL;
	size_t len, cap;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = file_read(&e, path, &buf, &len, &cap)))
		return rc;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	OPENSSL_clear_free(buf, cap);
	if (!root)
		return bad(&e, "", "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
	rc = config_from_json(root, out, err, errlen);
	if (!rc && !out->red.ifname[0])
		rc = bad(&e, "ports.red.interface", "missing required field");
	else if (!rc && !out->black.ifname[0])
		rc = bad(&e, "ports.black.interface", "missing required field");
	if (rc)
		config_free(out);
	json_wipe_keys(root);
	json_decref(root);
	return rc;
}

/* ---- back to JSON ---- */

static json_t *sel_port_json(const struct sel_port *p)
{
	char buf[16];

	if (port_is_any(p))
		return json_string("any");
	if (p->lo == p->hi)
		snprintf(buf, sizeof(buf), "%u", p->lo);
	else
		snprintf(buf, sizeof(buf), "%u-%u", p->lo, p->hi);
	return json_string(buf);
}

static json_t *proto_json(int16_t proto)
{
	switch (proto) {
	case PROTO_ANY: return json_string("any");
	case 1: return json_string("icmp");
	case 6: return json_string("tcp");
	case 17: return json_string("udp");
	case 58: return json_string("icmp6");
	case 132: return json_string("sctp");
	default: return json_integer(proto);
	}
}

static json_t *addr_json(const struct bw_addr *a)
{
	char buf[INET6_ADDRSTRLEN];

	return json_string(addr_str(a, buf, sizeof(buf)));
}

static const char *enum_str(const char *const *names, size_t count, uint8_t v)
{
	return v < count && names[v] ? names[v] : "?";
}

const char *admin_state_name(uint8_t state)
{
	return enum_str(admin_state_names, ENUM_COUNT(admin_state_names), state);
}

json_t *policy_to_json(const struct policy_conf *p)
{
	json_t *o = json_object();
	char buf[2 * INET6_ADDRSTRLEN + 2];

	json_object_set_new(o, "id", json_integer(p->id));
	json_object_set_new(o, "name", json_stringn(p->name, strnlen(p->name, NAME_MAX_ - 1)));
	json_object_set_new(o, "priority", json_integer(p->priority));
	json_object_set_new(o, "order", json_integer(p->order));
	json_object_set_new(o, "action", json_string(enum_str(action_names, ENUM_COUNT(action_names), p->action)));
	json_object_set_new(o, "direction", json_string(enum_str(dir_names, ENUM_COUNT(dir_names), p->dir)));
	json_object_set_new(o, "src", json_string(sel_addr_str(&p->sel.src, buf, sizeof(buf))));
	json_object_set_new(o, "dst", json_string(sel_addr_str(&p->sel.dst, buf, sizeof(buf))));
	json_object_set_new(o, "src_port", sel_port_json(&p->sel.sport));
	json_object_set_new(o, "dst_port", sel_port_json(&p->sel.dport));
	json_object_set_new(o, "protocol", proto_json(p->sel.proto));
	if (p->action == ACT_PROTECT) {
		json_object_set_new(o, "mode", json_string(enum_str(mode_names, ENUM_COUNT(mode_names), p->mode)));
		json_object_set_new(o, "peer", addr_json(&p->peer));
		json_object_set_new(o, "mss_clamp", json_boolean(p->mss_clamp));
		json_object_set_new(o, "ecn", json_boolean(!p->opts.ecn_off));
		json_object_set_new(o, "df", json_string(enum_str(df_names, ENUM_COUNT(df_names), p->opts.df)));
		json_object_set_new(o, "pad_check", json_boolean(!p->opts.pad_nocheck));
		json_object_set_new(o, "tfc_pad", json_integer(p->opts.tfc_pad));
		json_object_set_new(o, "dummy_interval_ms", json_integer(p->opts.dummy_ms));
		json_object_set_new(o, "icv_96", json_boolean(p->opts.icv96));
		json_object_set_new(o, "clone", json_string(enum_str(clone_names, ENUM_COUNT(clone_names), p->clone)));
		json_object_set_new(o, "sa_type", json_string(enum_str(sa_type_names, ENUM_COUNT(sa_type_names), p->sa_type)));
	}
	return o;
}

static json_t *limits_json(const struct sa_lifetime *l)
{
	json_t *o = json_object();

	json_object_set_new(o, "seconds", json_integer((json_int_t)l->seconds));
	json_object_set_new(o, "bytes", json_integer((json_int_t)l->bytes));
	json_object_set_new(o, "packets", json_integer((json_int_t)l->packets));
	return o;
}

json_t *sa_to_json(const struct sa_conf *s)
{
	json_t *o = json_object(), *lt = json_object();

	json_object_set_new(o, "spi", json_integer(s->spi));
	json_object_set_new(o, "direction", json_string(enum_str(sa_dir_names, ENUM_COUNT(sa_dir_names), s->dir)));
	json_object_set_new(o, "policy", json_stringn(s->policy, strnlen(s->policy, NAME_MAX_ - 1)));
	if (s->peer.family)
		json_object_set_new(o, "peer", addr_json(&s->peer));
	if (s->local.family)
		json_object_set_new(o, "local", addr_json(&s->local));
	if (s->proto != PROTO_ESP)
		json_object_set_new(o, "protocol", json_string(enum_str(sa_proto_names, ENUM_COUNT(sa_proto_names), s->proto)));
	json_object_set_new(o, "encap", json_string(enum_str(encap_names, ENUM_COUNT(encap_names), s->encap)));
	json_object_set_new(o, "encap_sport", json_integer(s->encap_sport));
	json_object_set_new(o, "encap_dport", json_integer(s->encap_dport));
	if (s->nat_keepalive)
		json_object_set_new(o, "nat_keepalive", json_integer(s->nat_keepalive));
	json_object_set_new(o, "enc", json_string(enc_name(s->enc)));
	json_object_set_new(o, "integ", json_string(integ_name(s->integ)));
	if (s->replay_window != SA_REPLAY_DEFAULT)
		json_object_set_new(o, "replay_window", json_integer(s->replay_window));
	json_object_set_new(o, "esn", json_boolean(s->esn));
	json_object_set_new(lt, "soft", limits_json(&s->soft));
	json_object_set_new(lt, "hard", limits_json(&s->hard));
	json_object_set_new(o, "lifetime", lt);
	if (s->origin == ORIGIN_IKE)
		json_object_set_new(o, "origin", json_string("ike"));
	if (s->clone_host.family)
		json_object_set_new(o, "clone_host", addr_json(&s->clone_host));
	return o;
}

static json_t *port_json(const struct port_conf *p)
{
	json_t *o = json_object(), *addrs = json_array();
	char buf[INET6_ADDRSTRLEN + 8], a[INET6_ADDRSTRLEN];

	if (p->ifname[0])
		json_object_set_new(o, "interface", json_stringn(p->ifname, strnlen(p->ifname, IF_NAMESIZE - 1)));
	json_object_set_new(o, "mtu", json_integer(p->mtu));
	for (uint8_t i = 0; i < p->naddr && i < PORT_MAX_ADDRS; i++) {
		snprintf(buf, sizeof(buf), "%s/%u", addr_str(&p->addr[i], a, sizeof(a)), p->plen[i]);
		json_array_append_new(addrs, json_string(buf));
	}
	json_object_set_new(o, "addresses", addrs);
	if (p->gw4.family)
		json_object_set_new(o, "gateway4", addr_json(&p->gw4));
	if (p->gw6.family)
		json_object_set_new(o, "gateway6", addr_json(&p->gw6));
	if (memcmp(p->router_mac, "\0\0\0\0\0\0", 6)) {
		const uint8_t *m = p->router_mac;

		snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
		json_object_set_new(o, "router_mac", json_string(buf));
	}
	return o;
}

static json_t *options_json(const struct wire_options *o)
{
	json_t *j = json_object();

	json_object_set_new(j, "default_action", json_string(enum_str(default_action_names,
	                    ENUM_COUNT(default_action_names), o->default_action)));
	json_object_set_new(j, "bridge_non_ip", json_boolean(o->bridge_non_ip));
	json_object_set_new(j, "nat_keepalive", json_integer(o->nat_keepalive));
	json_object_set_new(j, "neigh_timeout", json_integer(o->neigh_timeout));
	json_object_set_new(j, "neigh_queue", json_integer(o->neigh_queue));
	json_object_set_new(j, "acquire_queue", json_integer(o->acquire_queue));
	json_object_set_new(j, "frag_timeout_ms", json_integer(o->frag_timeout_ms));
	json_object_set_new(j, "frag_mem", json_integer(o->frag_mem));
	json_object_set_new(j, "replay_window", json_integer(o->replay_window));
	json_object_set_new(j, "legacy_algorithms", json_boolean(o->legacy_algorithms));
	json_object_set_new(j, "admin_state", json_string(admin_state_name(o->admin_state)));
	json_object_set_new(j, "black_interface_mac", json_boolean(o->black_interface_mac));
	return j;
}

json_t *config_to_json(const struct wire_config *c)
{
	json_t *o = json_object(), *ports = json_object(), *pols = json_array(), *sas = json_array();

	json_object_set_new(ports, "red", port_json(&c->red));
	json_object_set_new(ports, "black", port_json(&c->black));
	json_object_set_new(o, "ports", ports);
	json_object_set_new(o, "options", options_json(&c->opt));
	for (uint32_t i = 0; i < c->npol; i++)
		json_array_append_new(pols, policy_to_json(&c->pol[i]));
	json_object_set_new(o, "policies", pols);
	for (uint32_t i = 0; i < c->nsa; i++)
		json_array_append_new(sas, sa_to_json(&c->sa[i]));
	json_object_set_new(o, "sas", sas);
	return o;
}
