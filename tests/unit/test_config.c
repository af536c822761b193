/* test_config.c: the JSON configuration: a full document, defaults, each class of error naming its field, round trip, schema coverage. */
#include <arpa/inet.h>
#include <jansson.h>
#include <unistd.h>

#include "check.h"
#include "jtext.h"
#include "config.h"
#include "wire.h"

#define GCM256_KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff01020304"
#define SHA256_KEY "0x0f0e0d0c0b0a0908:0706050403020100:1f1e1d1c1b1a1918:1716151413121110"

static const char *full_doc =
	"{'ports': {"
	"   'red': {'interface': 'a-red', 'mtu': 0, 'addresses': ['198.18.1.2/24'], 'router_mac': '02:00:00:00:00:01'},"
	"   'black': {'interface': 'a-blk', 'mtu': 1500, 'addresses': ['192.0.2.10/24', '2001:db8:a::10/64'],"
	"             'gateway4': '192.0.2.1', 'gateway6': '2001:db8:a::1'}},"
	" 'options': {'default_action': 'bypass', 'bridge_non_ip': false, 'nat_keepalive': 20,"
	"   'neigh_timeout': 60, 'neigh_queue': 4, 'acquire_queue': 16, 'frag_timeout_ms': 2000,"
	"   'frag_mem': 1048576, 'replay_window': 100, 'black_interface_mac': true},"
	" 'policies': ["
	"   {'id': 1, 'name': 'a-to-b', 'priority': 3, 'action': 'protect', 'direction': 'both',"
	"    'src': '198.18.1.0/24', 'dst': '198.18.2.0/255.255.255.0', 'src_port': 'any', 'dst_port': 'any',"
	"    'protocol': 'any', 'mode': 'tunnel', 'peer': '198.51.100.10', 'mss_clamp': false},"
	"   {'name': 'to-router', 'priority': 1, 'action': 'bypass', 'src': '198.18.1.0/24', 'dst': '198.18.1.1'},"
	"   {'name': 'no-telnet', 'priority': 2, 'action': 'discard', 'src': 'any', 'dst': 'any', 'protocol': 'tcp',"
	"    'dst_port': '23'},"
	"   {'name': 'v6', 'action': 'protect', 'direction': 'out', 'dst': '2001:db8:2::/48', 'protocol': 17,"
	"    'src_port': 5000, 'dst_port': '1000-2000', 'order': 0, 'peer': '2001:db8:b::10'}"
	" ],"
	" 'sas': ["
	"   {'spi': '0x00001001', 'direction': 'out', 'policy': 'a-to-b', 'peer': '198.51.100.10', 'local': '192.0.2.10',"
	"    'encap': 'udp', 'encap_sport': 4501, 'encap_dport': 4502, 'enc': 'aes-gcm-256',"
	"    'enc_key': '" GCM256_KEY "', 'integ': 'none', 'integ_key': '', 'replay_window': 2048, 'esn': true,"
	"    'lifetime': {'soft': {'seconds': 3000, 'bytes': 0, 'packets': 900}, 'hard': {'seconds': 3600, 'bytes': 5, 'packets': 1000}}},"
	"   {'spi': 4097, 'direction': 'in', 'policy': 'a-to-b', 'enc': 'aes-cbc-128',"
	"    'enc_key': '000102030405060708090a0b0c0d0e0f', 'integ': 'hmac-sha256-128', 'integ_key': '" SHA256_KEY "'},"
	"   {'spi': 8192, 'direction': 'out', 'policy': 'v6', 'enc': 'chacha20-poly1305', 'enc_key': '" GCM256_KEY "'}"
	" ]}";

static void addr_is(const struct bw_addr *a, const char *text, const char *what)
{
	uint8_t want[16] = { 0 };
	int fam = strchr(text, ':') ? 6 : 4;

	inet_pton(fam == 6 ? AF_INET6 : AF_INET, text, want);
	CHECK(a->family == fam && !memcmp(a->a, want, 16), "%s is %s", what, text);
}

static void test_full(void)
{
	json_t *j = J(full_doc);
	struct wire_config c;
	char err[256] = "";
	int rc = config_from_json(j, &c, err, sizeof(err));
	char buf[128];

	CHECK_EQ(rc, 0, "the full document parses: %s", err);
	if (rc) {
		json_decref(j);
		return;
	}
	CHECK(!strcmp(c.red.ifname, "a-red") && !strcmp(c.black.ifname, "a-blk"), "interfaces");
	CHECK(c.black.mtu == 1500 && c.red.mtu == 0, "mtu");
	CHECK(c.black.naddr == 2 && c.black.plen[0] == 24 && c.black.plen[1] == 64, "black addresses and prefix lengths");
	addr_is(&c.black.addr[1], "2001:db8:a::10", "second black address");
	addr_is(&c.black.gw4, "192.0.2.1", "gateway4");
	addr_is(&c.black.gw6, "2001:db8:a::1", "gateway6");
	CHECK(!memcmp(c.red.router_mac, "\x02\0\0\0\0\x01", 6), "router_mac");
	CHECK(c.opt.default_action == ACT_BYPASS && !c.opt.bridge_non_ip && c.opt.nat_keepalive == 20 &&
	      c.opt.neigh_timeout == 60 && c.opt.neigh_queue == 4 && c.opt.acquire_queue == 16 &&
	      c.opt.frag_timeout_ms == 2000 && c.opt.frag_mem == 1048576 && c.opt.black_interface_mac, "options");
	CHECK_EQ(c.opt.replay_window, 128, "options.replay_window 100 rounds up to 128");
	CHECK_EQ(c.npol, 4, "four policies");
	CHECK(c.pol[0].id == 1 && c.pol[1].id == 2 && c.pol[2].id == 3 && c.pol[3].id == 4, "ids 1..4");
	CHECK(c.pol[1].order == 1 && c.pol[3].order == 0, "order: position, or explicit");
	CHECK(c.pol[0].priority == 3 && c.pol[0].action == ACT_PROTECT && c.pol[0].dir == DIR_BOTH &&
	      !c.pol[0].mss_clamp, "policy 0 fields");
	CHECK(!strcmp(sel_addr_str(&c.pol[0].sel.dst, buf, sizeof(buf)), "198.18.2.0/24"), "netmask dst: %s", buf);
	addr_is(&c.pol[0].peer, "198.51.100.10", "policy 0 peer");
	CHECK(c.pol[2].sel.proto == 6 && c.pol[2].sel.dport.lo == 23 && c.pol[2].sel.dport.hi == 23, "telnet rule");
	CHECK(c.pol[3].sel.src.family == 6 && c.pol[3].sel.src.lo[0] == 0 && c.pol[3].sel.src.hi[15] == 0xff,
	      "absent src of an IPv6 policy is any6");
	CHECK(c.pol[3].sel.proto == 17 && c.pol[3].sel.sport.lo == 5000 && c.pol[3].sel.sport.hi == 5000 &&
	      c.pol[3].sel.dport.lo == 1000 && c.pol[3].sel.dport.hi == 2000, "numeric protocol and integer port");
	CHECK_EQ(c.nsa, 3, "three SAs");
	CHECK(c.sa[0].spi == 0x1001 && c.sa[0].dir == DIR_OUT && c.sa[0].policy_id == 1, "SA 0 spi/dir/policy");
	CHECK(c.sa[0].encap == ENCAP_UDP && c.sa[0].encap_sport == 4501 && c.sa[0].encap_dport == 4502, "SA 0 encap");
	CHECK(c.sa[0].enc == ENC_AES_GCM_256 && c.sa[0].enc_key_len == 36 && c.sa[0].enc_key[1] == 0x11 &&
	      c.sa[0].enc_key[35] == 0x04, "SA 0 key with salt");
	CHECK(c.sa[0].replay_window == 2048 && c.sa[0].esn, "SA 0 replay window and esn");
	CHECK(c.sa[0].soft.seconds == 3000 && c.sa[0].soft.packets == 900 && c.sa[0].hard.bytes == 5, "lifetimes");
	CHECK(c.sa[1].integ == INTEG_HMAC_SHA256_128 && c.sa[1].integ_key_len == 32 && c.sa[1].integ_key[0] == 0x0f &&
	      c.sa[1].integ_key[31] == 0x10, "integ key with 0x prefix and ':' separators");
	CHECK_EQ(c.sa[1].replay_window, 128, "SA without replay_window takes options.replay_window");
	addr_is(&c.sa[1].peer, "198.51.100.10", "SA peer defaults to the policy's peer");
	addr_is(&c.sa[1].local, "192.0.2.10", "SA local defaults to our black IPv4 address");
	addr_is(&c.sa[2].local, "2001:db8:a::10", "IPv6 SA local defaults to our black IPv6 address");
	config_free(&c);
	CHECK(c.sa == NULL && c.nsa == 0 && c.pol == NULL, "config_free clears the config");
	json_decref(j);
}

static void test_defaults(void)
{
	json_t *j = J("{'ports': {'black': {'interface': 'b', 'addresses': ['192.0.2.10/24']}},"
	              " 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1'},"
	              "              {'id': 2, 'name': 'q', 'action': 'bypass'}, {'name': 'r', 'action': 'discard'}],"
	              " 'sas': [{'spi': 300, 'direction': 'in', 'policy': 'p', 'enc': 'aes-gcm-128',"
	              "          'enc_key': '000102030405060708090a0b0c0d0e0f10111213'}]}");
	struct wire_config c;
	char err[256] = "";
	int rc = config_from_json(j, &c, err, sizeof(err));

	CHECK_EQ(rc, 0, "a minimal document parses: %s", err);
	if (!rc) {
		CHECK(c.opt.default_action == ACT_DISCARD && c.opt.bridge_non_ip == 1 && c.opt.nat_keepalive == 0 &&
		      c.opt.neigh_timeout == 300 && c.opt.neigh_queue == 8 && c.opt.acquire_queue == 8 &&
		      c.opt.frag_timeout_ms == 5000 && c.opt.frag_mem == 4194304 && c.opt.replay_window == 1024 &&
		      !c.opt.black_interface_mac, "option defaults");
		CHECK(c.pol[0].priority == 4 && c.pol[0].dir == DIR_BOTH && c.pol[0].mss_clamp == 1 &&
		      c.pol[0].mode == MODE_TUNNEL && c.pol[0].sel.proto == PROTO_ANY, "policy defaults");
		CHECK(c.pol[0].sel.src.family == 4 && c.pol[0].sel.dst.hi[3] == 0xff && c.pol[0].sel.sport.hi == 65535,
		      "src/dst/ports default to any");
		CHECK(c.pol[0].id == 1 && c.pol[1].id == 2 && c.pol[2].id == 3, "absent ids fill around explicit ones");
		CHECK(c.sa[0].encap == ENCAP_NONE && c.sa[0].encap_sport == 4500 && c.sa[0].encap_dport == 4500 &&
		      c.sa[0].replay_window == 1024 && !c.sa[0].esn && c.sa[0].integ == INTEG_NONE &&
		      c.sa[0].hard.seconds == 0, "SA defaults");
		config_free(&c);
	}
	json_decref(j);
	j = J("{'policies': [{'id': 1, 'name': 'a', 'action': 'bypass'}, {'name': 'b', 'action': 'bypass'}]}");
	rc = config_from_json(j, &c, err, sizeof(err));
	CHECK(!rc && c.pol[1].id == 2, "an absent id skips an explicit one already taken");
	config_free(&c);
	json_decref(j);
}

/* A document that must be rejected with an error containing each of want[]. */
static void reject(const char *doc, const char *want, const char *what)
{
	json_t *j = J(doc);
	struct wire_config c;
	char err[256] = "";
	int rc = j ? config_from_json(j, &c, err, sizeof(err)) : 0;

	CHECK(rc == -XE_BAD_PARAM && strstr(err, want), "%s: \"%s\"", what, err);
	CHECK(!strstr(err, "00112233") && !strstr(err, "0f0e0d0c") && !strstr(err, "deadbeef"),
	      "%s: error holds no key material", what);
	json_decref(j);
}

#define BLACK "'ports': {'black': {'interface': 'b', 'addresses': ['192.0.2.10/24', '2001:db8:a::10/64']}}"
#define P_PROT "{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1'}"
#define P_PROT_N(n) "{'name': '" n "', 'action': 'protect', 'peer': '198.51.100.1', 'dst': '198.18.9.0/24'}"
#define P_AH "{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'sa_type': 'ah'}"
#define P_AHESP "{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'sa_type': 'ahesp'}"
#define P_BYP "{'name': 'by', 'action': 'bypass'}"
#define SA(extra) "{'spi': 300, 'direction': 'out', 'policy': 'p', 'enc': 'aes-gcm-256', 'enc_key': '" GCM256_KEY "'" extra "}"

static void test_errors(void)
{
	reject("{'policies': [" P_PROT ", " P_BYP ", {'name': 'x', 'action': 'bypass', 'srcport': 'any'}]}",
	       "policies[2].srcport: unknown field", "unknown field");
	reject("{'portz': {}}", "portz: unknown field", "unknown top-level field");
	reject("{'ports': {'black': {'interface': 'b', 'gateway': '192.0.2.1'}}}", "ports.black.gateway: unknown field",
	       "unknown port field");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'enckey': 'x'") "]}", "sas[0].enckey: unknown field",
	       "unknown SA field");
	reject("{'options': {'replay': 64}}", "options.replay: unknown field", "unknown option");
	reject("{'policies': [{'name': 'p', 'action': 'bypass', 'priority': 'high'}]}",
	       "policies[0].priority: expected an integer", "bad type");
	reject("{'policies': [{'name': 'p', 'action': 'bypass', 'priority': 9}]}",
	       "policies[0].priority: 9 out of range 1..7", "out of range");
	reject("{'policies': {'name': 'p'}}", "policies: expected an array", "policies not an array");
	reject("{'policies': [" P_BYP ", {'action': 'bypass'}]}", "policies[1].name: missing required field",
	       "missing name");
	reject("{'policies': [{'name': 'p'}]}", "policies[0].action: missing required field", "missing action");
	reject("{'policies': [{'name': 'p', 'action': 'allow'}]}", "policies[0].action: must be one of discard, bypass, protect",
	       "bad enum");
	reject("{'policies': [{'name': 'bad name', 'action': 'bypass'}]}", "policies[0].name: must be", "bad name");
	reject("{'policies': [" P_BYP ", " P_BYP "]}", "policies[1].name: duplicate name (also policies[0])",
	       "duplicate name");
	reject("{'policies': [{'id': 5, 'name': 'a', 'action': 'bypass'}, {'id': 5, 'name': 'b', 'action': 'bypass'}]}",
	       "policies[1].id: duplicate id", "duplicate id");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'src': '198.18.1.1/24'}]}",
	       "policies[0].src: host bits set in prefix", "host bits");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'dst': '198.18.1.0/33'}]}",
	       "policies[0].dst: bad prefix length", "prefix /33");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'dst': '10.0.0.300'}]}", "policies[0].dst: not an address",
	       "bad address");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'src': '198.18.1.9-198.18.1.1'}]}",
	       "policies[0].src: range start is after its end", "reversed range");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'src': '198.18.1.9-2001:db8::1'}]}",
	       "policies[0].src: range mixes IPv4 and IPv6", "mixed range");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'src': 'any', 'dst': '2001:db8::/32'}]}",
	       "policies[0].dst: address family differs from src", "family mismatch");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'protocol': 'tcp', 'dst_port': '70000'}]}",
	       "policies[0].dst_port: must be any", "port 70000");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'protocol': 'tcp', 'dst_port': 70000}]}",
	       "policies[0].dst_port: must be any", "port 70000 as integer");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'dst_port': 80}]}",
	       "policies[0].dst_port: needs a protocol with ports", "port without protocol");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'protocol': 'icmp', 'src_port': 300}]}",
	       "policies[0].src_port: ICMP type", "ICMP type over 255");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'protocol': 300}]}", "policies[0].protocol: must be",
	       "protocol 300");
	reject("{'policies': [{'name': 'a', 'action': 'protect'}]}", "policies[0].peer: missing required field",
	       "protect without peer");
	reject("{'policies': [{'name': 'a', 'action': 'bypass', 'peer': '198.51.100.1'}]}",
	       "policies[0].peer: only allowed with action protect", "peer on bypass");
	reject("{'policies': [{'name': 'a', 'action': 'protect', 'peer': '198.51.100.1', 'mode': 'transport'}]}",
	       "policies[0].src: transport mode needs one host address", "transport mode for a whole range");
	reject("{'policies': [{'name': 'a', 'action': 'protect', 'peer': '198.51.100.1', 'mode': 'transport',"
	       " 'src': '198.18.1.10', 'dst': '198.18.2.0/24'}]}",
	       "policies[0].peer: transport mode: the peer must be inside dst", "transport peer outside dst");
	reject("{" BLACK ", 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'mode': 'transport',"
	       " 'src': '198.18.1.10', 'dst': '198.51.100.1'}], 'sas': [" SA(", 'local': '192.0.2.10'") "]}",
	       "sas[0].local: a transport SA's local address is its policy's src host", "transport SA on bitw's address");
	reject("{" BLACK ", 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'mode': 'transport',"
	       " 'src': '198.18.1.10', 'dst': '198.51.100.1'}], 'sas': [" SA(", 'encap': 'udp'") "]}",
	       "sas[0].encap: udp encapsulation is not supported in transport mode", "transport SA in UDP");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA("") ", " SA("") "]}",
	       "sas[1].spi: duplicate SPI 0x0000012c for direction out, protocol esp (also sas[0])", "duplicate SPI");
	reject("{" BLACK ", 'policies': [" P_PROT ", " P_BYP "], 'sas': [" SA(", 'policy': 'by'") "]}",
	       "sas[0].policy: \"by\" is a bypass policy", "SA on a bypass policy");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'policy': 'nope'") "]}",
	       "sas[0].policy: no policy named \"nope\"", "SA on a missing policy");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': 'aes-gcm-256', 'enc_key': '00112233445566778899aabbccddeeff'}]}",
	       "sas[0].enc_key: aes-gcm-256 needs 36 bytes (72 hex digits), got 16", "short key");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': 'aes-gcm-256'}]}", "sas[0].enc_key: aes-gcm-256 needs 36 bytes", "missing key");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': 'aes-cbc-256', 'enc_key': 'deadbeefzz'}]}", "sas[0].enc_key: not a hex string", "bad hex");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'integ': 'hmac-sha1-96'") "]}",
	       "sas[0].integ: must be none with aes-gcm-256", "AEAD with integ");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': 'null'}]}", "sas[0].integ: null needs an integrity algorithm", "null without integ");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': 'aes-cbc-128', 'enc_key': '00112233445566778899aabbccddeeff', 'integ': 'hmac-sha512-256',"
	       " 'integ_key': '0f0e0d0c'}]}", "sas[0].integ_key: hmac-sha512-256 needs 64 bytes", "short integ key");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'enc': 'aes-gcm-512'") "]}",
	       "sas[0].enc: unknown algorithm", "unknown cipher");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'spi': 255") "]}",
	       "sas[0].spi: out of range 256..0xffffffff", "reserved SPI");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'spi': '0x100000000'") "]}",
	       "sas[0].spi: out of range", "SPI over 32 bits");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'replay_window': 32") "]}",
	       "sas[0].replay_window: 32 out of range: 0 (off) or 64..4096", "replay window 32");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'lifetime': {'soft': {'bytes': 10}, 'hard': {'bytes': 10}}") "]}",
	       "sas[0].lifetime.soft.bytes: soft limit must be below the hard limit", "soft not below hard");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'lifetime': {'hard': {'seconds': -1}}") "]}",
	       "sas[0].lifetime.hard.seconds: -1 out of range", "negative lifetime");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'local': '192.0.2.99'") "]}",
	       "sas[0].local: not one of ports.black.addresses", "local not ours");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'peer': '2001:db8::1', 'local': '192.0.2.10'") "]}",
	       "sas[0].peer: address family differs from local", "peer/local family mismatch");
	reject("{'ports': {'black': {'interface': 'b'}}, 'policies': [" P_PROT "], 'sas': [" SA("") "]}",
	       "sas[0].local: no IPv4 address in ports.black.addresses", "no local address to default to");
	reject("{'ports': {'black': {'interface': 'b', 'addresses': ['192.0.2.10/33']}}}",
	       "ports.black.addresses[0]: bad prefix length", "bad port address");
	reject("{'ports': {'black': {'interface': 'b', 'gateway6': '192.0.2.1'}}}",
	       "ports.black.gateway6: must be an IPv6 address", "gateway family");
	reject("{'ports': {'red': {'interface': 'waytoolonginterfacename'}}}", "ports.red.interface: must be 1 to 15",
	       "interface name too long");
	reject("{'ports': {'red': {'interface': 'r', 'router_mac': '02:00:00:00:00'}}}", "ports.red.router_mac: not a MAC",
	       "bad MAC");
	reject("{'options': {'default_action': 'protect'}}", "options.default_action: must be one of discard, bypass",
	       "default action protect");
	reject("{'options': {'bridge_non_ip': 1}}", "options.bridge_non_ip: expected true or false", "bool type");
	reject("{'options': {'black_interface_mac': 'yes'}}", "options.black_interface_mac: expected true or false",
	       "black_interface_mac is a bool");
}

#define KEY24 "00112233445566778899aabbccddeeff0011223344556677"
#define KEY16 "0f0e0d0c0b0a09080706050403020100"

/* The new algorithms parse with their key sizes; legacy ones only when options.legacy_algorithms says so. */
static void test_algorithms(void)
{
	static const char *const ok[][4] = {
		{ "aes-ctr-128", KEY16 "01020304", "hmac-sha1-96", KEY16 "01020304" },
		{ "aes-ctr-256", GCM256_KEY, "aes-xcbc-96", KEY16 },
		{ "aes-ccm8-128", KEY16 "010203", "none", "" },
		{ "aes-ccm12-256", GCM256_KEY, "none", "" },
		{ "aes-ccm16-128", KEY16 "010203", "none", "" },
		{ "aes-gmac-128", KEY16 "01020304", "none", "" },
		{ "aes-gmac-256", GCM256_KEY, "none", "" },
	};
	char doc[1024];

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		const char *key = ok[i][1];
		int ccm256 = !strcmp(ok[i][0], "aes-ccm12-256");
		struct wire_config c;
		char err[256] = "";
		json_t *j;
		int rc;

		snprintf(doc, sizeof doc, "{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out',"
		         " 'policy': 'p', 'enc': '%s', 'enc_key': '%.*s', 'integ': '%s', 'integ_key': '%s'}]}", ok[i][0],
		         ccm256 ? 70 : (int)strlen(key), key, ok[i][2], ok[i][3]);
		j = J(doc);
		rc = config_from_json(j, &c, err, sizeof(err));
		CHECK(rc == 0 && c.sa[0].enc == enc_from_name(ok[i][0]), "%s/%s parses: %s", ok[i][0], ok[i][2], err);
		if (rc == 0)
			config_free(&c);
		json_decref(j);
	}
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': 'aes-ccm16-128', 'enc_key': '" KEY16 "01020304'}]}",
	       "sas[0].enc_key: aes-ccm16-128 needs 19 bytes", "CCM key with a 4-byte salt");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': 'aes-gmac-128', 'enc_key': '" KEY16 "01020304', 'integ': 'aes-xcbc-96', 'integ_key': '" KEY16 "'}]}",
	       "sas[0].integ: must be none with aes-gmac-128", "GMAC with an integrity algorithm");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': 'aes-ctr-128', 'enc_key': '" KEY16 "01020304'}]}",
	       "sas[0].integ: aes-ctr-128 needs an integrity algorithm", "CTR without integrity");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': '3des-cbc', 'enc_key': '" KEY24 "', 'integ': 'hmac-sha1-96', 'integ_key': '" KEY16 "01020304'}]}",
	       "sas[0].enc: 3des-cbc is a legacy algorithm; set options.legacy_algorithms", "3DES refused by default");
	reject("{" BLACK ", 'options': {'legacy_algorithms': false}, 'policies': [" P_PROT "], 'sas': [{'spi': 300,"
	       " 'direction': 'out', 'policy': 'p', 'enc': 'aes-cbc-128', 'enc_key': '" KEY16 "', 'integ': 'hmac-md5-96',"
	       " 'integ_key': '" KEY16 "'}]}",
	       "sas[0].integ: hmac-md5-96 is a legacy algorithm", "HMAC-MD5 refused by default");
	{
		json_t *j = J("{" BLACK ", 'options': {'legacy_algorithms': true}, 'policies': [" P_PROT "], 'sas': [{'spi': 300,"
		              " 'direction': 'out', 'policy': 'p', 'enc': '3des-cbc', 'enc_key': '" KEY24 "',"
		              " 'integ': 'hmac-md5-96', 'integ_key': '" KEY16 "'}]}");
		struct wire_config c;
		char err[256] = "";
		json_t *back;

		CHECK(!config_from_json(j, &c, err, sizeof(err)) && c.opt.legacy_algorithms && c.sa[0].enc == ENC_3DES_CBC &&
		      c.sa[0].integ == INTEG_HMAC_MD5_96, "3des-cbc/hmac-md5-96 accepted with legacy_algorithms: %s", err);
		back = config_to_json(&c);
		CHECK(json_is_true(json_object_get(json_object_get(back, "options"), "legacy_algorithms")),
		      "legacy_algorithms comes back in the output");
		json_decref(back);
		config_free(&c);
		json_decref(j);
	}
}

/* Policy options: parsed, defaulted, handed to the policy's SAs, written back, refused on non-protect policies. */
static void test_policy_options(void)
{
	json_t *j = J("{" BLACK ", 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'ecn': false,"
	              " 'df': 'copy', 'pad_check': false, 'tfc_pad': 512, 'dummy_interval_ms': 250, 'icv_96': true},"
	              " {'name': 'q', 'action': 'protect', 'peer': '198.51.100.2'}], 'sas': [" SA("") "]}");
	struct wire_config c;
	char err[256] = "";
	json_t *back;

	CHECK(!config_from_json(j, &c, err, sizeof(err)), "policy options parse: %s", err);
	CHECK(c.pol[0].opts.ecn_off && c.pol[0].opts.df == DF_COPY && c.pol[0].opts.pad_nocheck &&
	      c.pol[0].opts.tfc_pad == 512 && c.pol[0].opts.dummy_ms == 250 && c.pol[0].opts.icv96, "all six are set");
	CHECK(!memcmp(&c.sa[0].opts, &c.pol[0].opts, sizeof c.sa[0].opts), "the policy's SA carries them");
	CHECK(!c.pol[1].opts.ecn_off && c.pol[1].opts.df == DF_CLEAR && !c.pol[1].opts.pad_nocheck &&
	      !c.pol[1].opts.tfc_pad && !c.pol[1].opts.dummy_ms && !c.pol[1].opts.icv96,
	      "defaults: ecn on, df clear, pad check on, no TFC, no dummies, full ICV");
	back = policy_to_json(&c.pol[0]);
	CHECK(json_is_false(json_object_get(back, "ecn")) && !strcmp(json_string_value(json_object_get(back, "df")), "copy") &&
	      json_integer_value(json_object_get(back, "tfc_pad")) == 512 &&
	      json_integer_value(json_object_get(back, "dummy_interval_ms")) == 250 &&
	      json_is_true(json_object_get(back, "icv_96")) && json_is_false(json_object_get(back, "pad_check")),
	      "they come back in the policy's JSON");
	json_decref(back);
	config_free(&c);
	json_decref(j);
	reject("{'policies': [{'name': 'b', 'action': 'bypass', 'tfc_pad': 10}]}",
	       "policies[0].tfc_pad: only allowed with action protect", "TFC on a bypass policy");
	reject("{'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'df': 'maybe'}]}",
	       "policies[0].df: must be one of clear, set, copy", "bad df");
	reject("{'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'tfc_pad': 1025}]}",
	       "policies[0].tfc_pad: 1025 out of range", "TFC above 1024");
	reject("{'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'dummy_interval_ms': 5}]}",
	       "policies[0].dummy_interval_ms: 0 (off) or 10..3600000", "dummy interval 5 ms");
}

static void test_replay_rounding(void)
{
	json_t *j = J("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'replay_window': 65") ", "
	              "{'spi': 301, 'direction': 'in', 'policy': 'p', 'enc': 'aes-gcm-256', 'enc_key': '" GCM256_KEY "',"
	              " 'replay_window': 0}]}");
	struct wire_config c;
	char err[256] = "";

	CHECK(!config_from_json(j, &c, err, sizeof(err)) && c.sa[0].replay_window == 128 && c.sa[1].replay_window == 0,
	      "replay window 65 rounds to 128, 0 turns it off: %s", err);
	config_free(&c);
	json_decref(j);
}

/* config -> JSON -> config gives the same config; keys are never in the JSON and must be supplied again. */
static void test_round_trip(void)
{
	json_t *j = J(full_doc), *out, *again;
	struct wire_config a, b;
	char err[256] = "";
	char *text;
	size_t i;
	json_t *sa;
	int rc;

	if (config_from_json(j, &a, err, sizeof(err))) {
		CHECK(0, "full document parses for the round trip: %s", err);
		return;
	}
	out = config_to_json(&a);
	text = json_dumps(out, JSON_COMPACT);
	CHECK(text && !strstr(text, "enc_key") && !strstr(text, "integ_key") && !strstr(text, "00112233") &&
	      !strstr(text, "0f0e0d0c"), "exported JSON holds no keys");
	free(text);
	json_array_foreach(json_object_get(out, "sas"), i, sa) {
		json_t *orig = json_array_get(json_object_get(j, "sas"), i);

		json_object_set(sa, "enc_key", json_object_get(orig, "enc_key"));
		if (json_object_get(orig, "integ_key"))
			json_object_set(sa, "integ_key", json_object_get(orig, "integ_key"));
	}
	rc = config_from_json(out, &b, err, sizeof(err));
	CHECK_EQ(rc, 0, "exported JSON (keys added back) parses: %s", err);
	if (!rc) {
		CHECK(!memcmp(&a.red, &b.red, sizeof(a.red)) && !memcmp(&a.black, &b.black, sizeof(a.black)), "ports equal");
		CHECK(!memcmp(&a.opt, &b.opt, sizeof(a.opt)), "options equal");
		CHECK(a.npol == b.npol && !memcmp(a.pol, b.pol, a.npol * sizeof(*a.pol)), "policies equal");
		CHECK(a.nsa == b.nsa && !memcmp(a.sa, b.sa, a.nsa * sizeof(*a.sa)), "SAs equal");
		again = config_to_json(&b);
		json_array_foreach(json_object_get(out, "sas"), i, sa) {
			json_object_del(sa, "enc_key");
			json_object_del(sa, "integ_key");
		}
		CHECK(json_equal(again, out), "export of the re-imported config equals the first export");
		json_decref(again);
		config_free(&b);
	}
	json_decref(out);
	config_free(&a);
	json_decref(j);
}

static void test_single_objects(void)
{
	struct policy_conf p, *pols = NULL;
	struct sa_conf s;
	struct port_conf black = { .naddr = 1 };
	char err[256] = "";
	uint32_t n = 0;
	json_t *j;
	int rc;

	j = J("{'name': 'x', 'action': 'discard', 'src': '198.18.0.0/15', 'protocol': 'udp', 'dst_port': 53}");
	rc = policy_from_json(j, &p, err, sizeof(err));
	CHECK(!rc && p.action == ACT_DISCARD && p.sel.dport.lo == 53 && p.sel.src.hi[1] == 19, "policy_from_json: %s", err);
	json_decref(j);
	j = J("{'name': 'x', 'action': 'discard', 'colour': 'red'}");
	rc = policy_from_json(j, &p, err, sizeof(err));
	CHECK(rc == -XE_BAD_PARAM && !strcmp(err, "colour: unknown field"), "policy_from_json names the field: %s", err);
	json_decref(j);

	j = J("[" P_PROT ", {'name': 'q', 'action': 'bypass'}]");
	rc = policies_from_json(j, &pols, &n, err, sizeof(err));
	CHECK(!rc && n == 2 && pols[1].id == 2 && pols[1].order == 1, "policies_from_json assigns ids and order: %s", err);
	json_decref(j);

	j = J(SA(", 'spi': '4096'"));
	rc = sa_from_json(j, &s, err, sizeof(err));
	CHECK(!rc && s.spi == 4096 && s.replay_window == SA_REPLAY_DEFAULT, "sa_from_json: decimal string SPI: %s", err);
	json_decref(j);
	inet_pton(AF_INET, "192.0.2.10", black.addr[0].a);
	black.addr[0].family = 4;
	rc = sa_resolve(&s, pols, n, &black, 512, err, sizeof(err));
	CHECK(!rc && s.policy_id == 1 && s.replay_window == 512 && s.local.family == 4 && s.peer.a[3] == 1,
	      "sa_resolve fills policy id, window, local and peer: %s", err);
	strcpy(s.policy, "q");
	rc = sa_resolve(&s, pols, n, &black, 512, err, sizeof(err));
	CHECK(rc == -XE_BAD_PARAM && strstr(err, "policy: \"q\" is a bypass policy"), "sa_resolve rejects bypass: %s", err);
	free(pols);

	j = sa_to_json(&s);
	CHECK(!json_object_get(j, "enc_key") && !json_object_get(j, "integ_key"), "sa_to_json has no keys");
	json_decref(j);
}

static void test_names(void)
{
	for (int i = 0; i < ENC__COUNT; i++)
		CHECK_EQ(enc_from_name(enc_name((uint8_t)i)), i, "cipher %s round-trips", enc_name((uint8_t)i));
	for (int i = 0; i < INTEG__COUNT; i++)
		CHECK_EQ(integ_from_name(integ_name((uint8_t)i)), i, "integrity %s round-trips", integ_name((uint8_t)i));
	CHECK_EQ(enc_from_name("aes-ccm-128"), -XE_BAD_PARAM, "unknown cipher name");
	CHECK_EQ(integ_from_name("hmac-md5-128"), -XE_BAD_PARAM, "unknown integrity name");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_load_file(void)
{
	char path[] = "/tmp/bitw-test-config-XXXXXX";
	int fd = mkstemp(path);
	struct wire_config c;
	char err[256] = "";
	int rc;

	if (fd < 0)
		return;
	close(fd);
	write_file(path, "{\n  \"ports\": {\n    \"red\": {\"interface\": \"r\"},\n    \"black\": {\"interface\": \"b\",}\n  }\n}\n");
	rc = config_load_file(path, &c, err, sizeof(err));
	CHECK(rc == -XE_BAD_PARAM && strstr(err, path) && strstr(err, ":4:"), "malformed JSON: line named: %s", err);
	write_file(path, "{\"ports\": {\"red\": {\"interface\": \"r\"}}}");
	rc = config_load_file(path, &c, err, sizeof(err));
	CHECK(rc == -XE_BAD_PARAM && strstr(err, "ports.black.interface: missing required field"),
	      "the file needs both interfaces: %s", err);
	write_file(path, "{\"ports\": {\"red\": {\"interface\": \"r\"}, \"black\": {\"interface\": \"b\"}},"
	                 " \"options\": {\"nat_keepalive\": 15}}");
	rc = config_load_file(path, &c, err, sizeof(err));
	CHECK(!rc && c.opt.nat_keepalive == 15 && !strcmp(c.black.ifname, "b"), "a good file loads: %s", err);
	config_free(&c);
	write_file(path, "{\"options\": {\"nat_keepalive\": 1, \"nat_keepalive\": 2}}");
	rc = config_load_file(path, &c, err, sizeof(err));
	CHECK(rc == -XE_BAD_PARAM && strstr(err, "duplicate"), "duplicate keys in a file are rejected: %s", err);
	unlink(path);
	rc = config_load_file(path, &c, err, sizeof(err));
	CHECK(rc == -XE_BAD_PARAM && strstr(err, path), "a missing file is named: %s", err);
}

/* Every field name the parser accepts appears in docs/config.schema.json. */
/* protocol ah: integrity only (GMAC as AH's own), tunnel or transport mode, no UDP, no padding; sa_to_json. */
static void test_ah(void)
{
	struct wire_config c;
	char err[256] = "";
	json_t *j = J("{" BLACK ", 'policies': [" P_AH "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	              " 'protocol': 'ah', 'integ': 'hmac-sha256-128', 'integ_key': '" SHA256_KEY "'}]}"), *o;
	int rc = config_from_json(j, &c, err, sizeof(err));

	CHECK(rc == 0 && c.sa[0].proto == PROTO_AH && c.sa[0].enc == ENC_NULL && c.sa[0].integ == INTEG_HMAC_SHA256_128,
	      "an AH SA without enc parses: %s", err);
	if (rc == 0) {
		o = sa_to_json(&c.sa[0]);
		CHECK(!strcmp(json_string_value(json_object_get(o, "protocol")), "ah"), "sa_to_json says protocol ah");
		json_decref(o);
		c.sa[0].proto = PROTO_ESP;
		o = sa_to_json(&c.sa[0]);
		CHECK(json_object_get(o, "protocol") == NULL, "an ESP SA's JSON leaves protocol out (the default)");
		json_decref(o);
		config_free(&c);
	}
	json_decref(j);
	reject("{" BLACK ", 'policies': [" P_AH "], 'sas': [" SA(", 'protocol': 'ah'") "]}",
	       "sas[0].enc: must be null for an AH SA", "AH with a cipher");
	reject("{" BLACK ", 'policies': [" P_AH "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'protocol': 'ah'}]}", "sas[0].integ: null needs an integrity algorithm", "AH without integrity");
	reject("{" BLACK ", 'policies': [" P_AH "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'protocol': 'ah', 'encap': 'udp', 'integ': 'hmac-sha256-128', 'integ_key': '" SHA256_KEY "'}]}",
	       "sas[0].encap: ah cannot be udp-encapsulated", "AH in UDP");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA(", 'protocol': 'gre'") "]}", "sas[0].protocol",
	       "an unknown protocol");
	j = J("{" BLACK ", 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'mode': 'transport',"
	      " 'src': '198.18.1.10', 'dst': '198.51.100.1', 'sa_type': 'ah'}], 'sas': [{'spi': 300, 'direction': 'in',"
	      " 'policy': 'p', 'protocol': 'ah', 'integ': 'aes-gmac-256', 'integ_key': '" GCM256_KEY "'}]}");
	rc = config_from_json(j, &c, err, sizeof(err));
	CHECK(rc == 0 && c.sa[0].proto == PROTO_AH && c.sa[0].mode == MODE_TRANSPORT &&
	      c.sa[0].integ == INTEG_AES_GMAC_256 && c.sa[0].integ_key_len == 36,
	      "an AH transport SA with AES-GMAC-256 (32-byte key + 4-byte salt) parses: %s", err);
	if (rc == 0)
		config_free(&c);
	json_decref(j);
	reject("{" BLACK ", 'policies': [" P_AH "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'protocol': 'ah', 'integ': 'aes-gmac-128', 'integ_key': '00112233'}]}",
	       "sas[0].integ_key: aes-gmac-128 needs 20 bytes", "AH GMAC without its salt");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p',"
	       " 'enc': 'null', 'integ': 'aes-gmac-256', 'integ_key': '" GCM256_KEY "'}]}",
	       "sas[0].integ: aes-gmac-256 is AH's integrity", "integ aes-gmac on ESP");
	reject("{" BLACK ", 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'tfc_pad': 100}],"
	       " 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p', 'protocol': 'ah', 'integ': 'hmac-sha256-128',"
	       " 'integ_key': '" SHA256_KEY "'}]}",
	       "sas[0].protocol: ah cannot carry policy \"p\"'s tfc_pad", "tfc_pad on an AH SA's policy");
	reject("{" BLACK ", 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1',"
	       " 'dummy_interval_ms': 100}], 'sas': [{'spi': 300, 'direction': 'in', 'policy': 'p', 'protocol': 'ah',"
	       " 'integ': 'hmac-sha256-128', 'integ_key': '" SHA256_KEY "'}]}",
	       "sas[0].protocol: ah cannot carry policy \"p\"'s dummy_interval_ms", "dummy packets on an AH SA's policy");
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p'}]}",
	       "sas[0].enc", "an ESP SA still needs enc");

	/* policy sa_type: esp by default, ah or ahesp in tunnel mode, read back by policy_to_json */
	j = J("{'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'sa_type': 'ahesp'}, " P_PROT_N("q") "]}");
	rc = config_from_json(j, &c, err, sizeof(err));
	CHECK(rc == 0 && c.pol[0].sa_type == SATYPE_AHESP && c.pol[1].sa_type == SATYPE_ESP,
	      "sa_type ahesp parses, esp is the default: %s", err);
	if (rc == 0) {
		o = policy_to_json(&c.pol[0]);
		CHECK(!strcmp(json_string_value(json_object_get(o, "sa_type")), "ahesp"), "policy_to_json says sa_type ahesp");
		json_decref(o);
		config_free(&c);
	}
	json_decref(j);
	reject("{'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'sa_type': 'gre'}]}",
	       "policies[0].sa_type", "an unknown sa_type");
	reject("{'policies': [{'name': 'p', 'action': 'bypass', 'sa_type': 'ah'}]}",
	       "policies[0].sa_type: only allowed with action protect", "sa_type on a bypass policy");
	reject("{'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'sa_type': 'ahesp',"
	       " 'dummy_interval_ms': 100}]}", "policies[0].dummy_interval_ms: TFC padding and dummy packets are ESP's",
	       "dummy packets with sa_type ahesp");
}

#define AH_SA(spi, dir) "{'spi': " #spi ", 'direction': '" dir "', 'policy': 'p', 'protocol': 'ah', " \
	"'integ': 'hmac-sha256-128', 'integ_key': '" SHA256_KEY "'}"
#define ESP_SA(spi, dir) "{'spi': " #spi ", 'direction': '" dir "', 'policy': 'p', 'enc': 'aes-gcm-256', " \
	"'enc_key': '" GCM256_KEY "'}"

/* Policy sa_type: which protocols its SAs may be; an ahesp bundle takes one of each, sharing an inbound SPI. */
static void test_sa_type(void)
{
	struct wire_config c;
	char err[256] = "";
	json_t *j = J("{" BLACK ", 'policies': [" P_AHESP "], 'sas': [" AH_SA(300, "in") ", " ESP_SA(300, "in") ", "
	              AH_SA(301, "out") ", " ESP_SA(302, "out") "]}"), *o;
	int rc = config_from_json(j, &c, err, sizeof(err));

	CHECK(rc == 0 && c.pol[0].sa_type == SATYPE_AHESP && c.nsa == 4,
	      "an ahesp policy takes an AH and an ESP SA per direction, the inbound pair sharing SPI 300: %s", err);
	if (rc == 0) {
		o = policy_to_json(&c.pol[0]);
		CHECK(!strcmp(json_string_value(json_object_get(o, "sa_type")), "ahesp"), "policy_to_json says sa_type ahesp");
		json_decref(o);
		config_free(&c);
	}
	json_decref(j);
	j = J("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" SA("") "]}");
	rc = config_from_json(j, &c, err, sizeof(err));
	CHECK(rc == 0 && c.pol[0].sa_type == SATYPE_ESP, "sa_type defaults to esp: %s", err);
	if (rc == 0) {
		o = policy_to_json(&c.pol[0]);
		CHECK(!strcmp(json_string_value(json_object_get(o, "sa_type")), "esp"), "policy_to_json says sa_type esp");
		json_decref(o);
		config_free(&c);
	}
	json_decref(j);
	reject("{" BLACK ", 'policies': [" P_PROT "], 'sas': [" AH_SA(300, "out") "]}",
	       "sas[0].protocol: policy \"p\" has sa_type esp: an ah SA needs sa_type ah or ahesp", "an AH SA on an esp policy");
	reject("{" BLACK ", 'policies': [" P_AH "], 'sas': [" ESP_SA(300, "out") "]}",
	       "sas[0].protocol: policy \"p\" has sa_type ah: an esp SA needs sa_type esp or ahesp", "an ESP SA on an ah policy");
	reject("{" BLACK ", 'policies': [" P_AHESP "], 'sas': [" AH_SA(300, "in") ", " AH_SA(300, "in") "]}",
	       "sas[1].spi: duplicate SPI 0x0000012c for direction in, protocol ah", "two AH SAs on one SPI");
	reject("{" BLACK ", 'policies': [" P_AHESP "], 'sas': [" SA(", 'encap': 'udp'") "]}",
	       "sas[0].encap: the ESP SA of an ahesp bundle cannot be udp-encapsulated", "a bundle's ESP in UDP");
	j = J("{" BLACK ", 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'sa_type': 'ahesp',"
	      " 'clone': 'src', 'src': '198.18.0.0/24'}], 'sas': [{'spi': 300, 'direction': 'in', 'policy': 'p',"
	      " 'protocol': 'ah', 'integ': 'hmac-sha256-128', 'integ_key': '" SHA256_KEY "', 'clone_host': '198.18.0.7'},"
	      " {'spi': 300, 'direction': 'in', 'policy': 'p', 'enc': 'aes-gcm-256', 'enc_key': '" GCM256_KEY "',"
	      " 'clone_host': '198.18.0.7'}]}");
	rc = config_from_json(j, &c, err, sizeof(err));
	CHECK(rc == 0 && c.pol[0].clone == CLONE_SRC && c.nsa == 2 && c.sa[0].clone_host.family == 4 &&
	      c.sa[1].clone_host.family == 4, "a cloned bundle: each host's AH and ESP SA share its inbound SPI: %s", err);
	if (rc == 0)
		config_free(&c);
	json_decref(j);
	j = J("{" BLACK ", 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'sa_type': 'ahesp',"
	      " 'mode': 'transport', 'src': '198.18.1.10', 'dst': '198.51.100.1'}], 'sas': [" AH_SA(300, "in") ", "
	      ESP_SA(300, "in") ", " AH_SA(301, "out") ", " ESP_SA(302, "out") "]}");
	rc = config_from_json(j, &c, err, sizeof(err));
	CHECK(rc == 0 && c.pol[0].mode == MODE_TRANSPORT && c.nsa == 4 && c.sa[0].mode == MODE_TRANSPORT &&
	      c.sa[0].local.family == 4 && c.sa[1].local.family == 4,
	      "an ahesp policy in transport mode takes both SAs per direction, the host as their local end: %s", err);
	if (rc == 0)
		config_free(&c);
	json_decref(j);
}

static void test_schema_covers_fields(void)
{
	const char *root = getenv("MESON_SOURCE_ROOT");
	char path[4096];
	json_error_t e;
	json_t *schema;
	char *text;
	size_t i, missing = 0;
	const char *f;

	/* meson test sets MESON_SOURCE_ROOT; by hand, try from the build tree. */
	static const char *const guesses[] = { ".", "..", "../..", "../../.." };

	for (size_t g = 0; !root && g < sizeof(guesses) / sizeof(guesses[0]); g++) {
		snprintf(path, sizeof(path), "%s/docs/config.schema.json", guesses[g]);
		if (access(path, R_OK) == 0)
			root = guesses[g];
	}
	snprintf(path, sizeof(path), "%s/docs/config.schema.json", root ? root : ".");
	schema = json_load_file(path, 0, &e);
	CHECK(schema != NULL, "schema %s loads: %s", path, schema ? "ok" : e.text);
	if (!schema)
		return;
	text = json_dumps(schema, 0);
	for (i = 0; (f = config_field_at(i)); i++) {
		char quoted[80];

		snprintf(quoted, sizeof(quoted), "\"%s\":", f);
		if (!strstr(text, quoted)) {
			printf("# field %s is not in the schema\n", f);
			missing++;
		}
	}
	CHECK(i > 40 && missing == 0, "all %zu parser fields are in the schema (%zu missing)", i, missing);
	free(text);
	json_decref(schema);
}

int main(void)
{
	test_full();
	test_defaults();
	test_errors();
	test_algorithms();
	test_policy_options();
	test_replay_rounding();
	test_round_trip();
	test_single_objects();
	test_names();
	test_load_file();
	test_ah();
	test_sa_type();
	test_schema_covers_fields();
	return check_done();
}
