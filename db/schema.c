/* schema.c: the versioned migrations; each runs in one transaction and sets PRAGMA user_version. */
#include "db_int.h"

/*
 * Constraints are named after the field they guard, so SQLite's "CHECK
 * constraint failed: <name>" tells the API which field was wrong. Enumerations
 * are stored as the same words the JSON uses. Tables are STRICT: a value of
 * the wrong type is an error, not a silent conversion. Secrets live in tables
 * of their own (sa_keys, peer_secrets, cert_keys) that only the *_get
 * functions for secrets read.
 */
#define NAME_CHECK(col) \
	"CONSTRAINT " col " CHECK (length(" col ") BETWEEN 1 AND 63 AND " col " NOT GLOB '*[^A-Za-z0-9_.:-]*')"
#define ADDR_CHECK(col) "CONSTRAINT " col " CHECK (" col " IS NULL OR length(" col ") BETWEEN 2 AND 63)"
#define PORTSEL_CHECK(col) \
	"CONSTRAINT " col " CHECK (" col " = 'any' OR (length(" col ") BETWEEN 1 AND 11 AND " col \
	" NOT GLOB '*[^0-9-]*'))"
#define NONNEG(col) "CONSTRAINT " col " CHECK (" col " >= 0)"
#define BOOL(col) "CONSTRAINT " col " CHECK (" col " IN (0, 1))"
#define SOFT_BELOW_HARD(x) "(soft_" x " = 0 OR hard_" x " = 0 OR soft_" x " < hard_" x ")"

static const char migration_1[] =
	"PRAGMA application_id = 0x62697477;"

	"CREATE TABLE settings ("
	"  key TEXT PRIMARY KEY CONSTRAINT key CHECK (length(key) BETWEEN 1 AND 63),"
	"  value TEXT NOT NULL CONSTRAINT value CHECK (length(value) <= 4096)"
	") STRICT;"

	"CREATE TABLE ports ("
	"  role TEXT PRIMARY KEY CONSTRAINT role CHECK (role IN ('red', 'black')),"
	"  interface TEXT NOT NULL CONSTRAINT interface CHECK (length(interface) BETWEEN 1 AND 15),"
	"  mtu INTEGER NOT NULL DEFAULT 0 CONSTRAINT mtu CHECK (mtu BETWEEN 0 AND 65535),"
	"  router_mac TEXT NOT NULL DEFAULT '' CONSTRAINT router_mac CHECK (router_mac = '' OR"
	"    (length(router_mac) = 17 AND router_mac GLOB"
	"     '[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]:"
	"[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]'))"
	") STRICT;"

	"CREATE TABLE addresses ("
	"  id INTEGER PRIMARY KEY,"
	"  port TEXT NOT NULL REFERENCES ports(role) ON DELETE CASCADE,"
	"  address TEXT NOT NULL CONSTRAINT address CHECK (length(address) BETWEEN 4 AND 63"
	"    AND instr(address, '/') > 0),"
	"  UNIQUE (port, address)"
	") STRICT;"

	"CREATE TABLE gateways ("
	"  port TEXT NOT NULL REFERENCES ports(role) ON DELETE CASCADE,"
	"  family INTEGER NOT NULL CONSTRAINT family CHECK (family IN (4, 6)),"
	"  address TEXT NOT NULL " ADDR_CHECK("address") ","
	"  PRIMARY KEY (port, family)"
	") STRICT;"

	"CREATE TABLE policies ("
	"  id INTEGER PRIMARY KEY CONSTRAINT id CHECK (id > 0),"
	"  name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
	"  priority INTEGER NOT NULL DEFAULT 4 CONSTRAINT priority CHECK (priority BETWEEN 1 AND 7),"
	"  position INTEGER NOT NULL " NONNEG("position") ","
	"  action TEXT NOT NULL CONSTRAINT action CHECK (action IN ('protect', 'bypass', 'discard')),"
	"  direction TEXT NOT NULL DEFAULT 'both' CONSTRAINT direction CHECK (direction IN ('out', 'in', 'both')),"
	"  src TEXT NOT NULL DEFAULT 'any' CONSTRAINT src CHECK (length(src) BETWEEN 3 AND 95),"
	"  dst TEXT NOT NULL DEFAULT 'any' CONSTRAINT dst CHECK (length(dst) BETWEEN 3 AND 95),"
	"  src_port TEXT NOT NULL DEFAULT 'any' " PORTSEL_CHECK("src_port") ","
	"  dst_port TEXT NOT NULL DEFAULT 'any' " PORTSEL_CHECK("dst_port") ","
	"  protocol TEXT NOT NULL DEFAULT 'any' CONSTRAINT protocol CHECK ("
	"    protocol IN ('any', 'tcp', 'udp', 'icmp', 'icmp6', 'sctp') OR (length(protocol) BETWEEN 1 AND 3"
	"    AND protocol NOT GLOB '*[^0-9]*' AND CAST(protocol AS INTEGER) BETWEEN 0 AND 255)),"
	"  mode TEXT NOT NULL DEFAULT 'tunnel' CONSTRAINT mode CHECK (mode IN ('tunnel', 'transport')),"
	"  peer TEXT " ADDR_CHECK("peer") ","
	"  mss_clamp INTEGER NOT NULL DEFAULT 1 " BOOL("mss_clamp") ","
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  CONSTRAINT peer CHECK (action <> 'protect' OR peer IS NOT NULL)"
	") STRICT;"
	"CREATE INDEX policies_order ON policies (priority, position, id);"

	"CREATE TABLE sas ("
	"  id INTEGER PRIMARY KEY,"
	"  spi INTEGER NOT NULL CONSTRAINT spi CHECK (spi BETWEEN 256 AND 4294967295),"
	"  direction TEXT NOT NULL CONSTRAINT direction CHECK (direction IN ('in', 'out')),"
	"  policy_id INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,"
	"  peer TEXT " ADDR_CHECK("peer") ","
	"  local TEXT " ADDR_CHECK("local") ","
	"  encap TEXT NOT NULL DEFAULT 'none' CONSTRAINT encap CHECK (encap IN ('none', 'udp')),"
	"  encap_sport INTEGER NOT NULL DEFAULT 4500 CONSTRAINT encap_sport CHECK (encap_sport BETWEEN 1 AND 65535),"
	"  encap_dport INTEGER NOT NULL DEFAULT 4500 CONSTRAINT encap_dport CHECK (encap_dport BETWEEN 1 AND 65535),"
	"  enc TEXT NOT NULL CONSTRAINT enc CHECK (enc IN ('null', 'aes-gcm-128', 'aes-gcm-256',"
	"    'chacha20-poly1305', 'aes-cbc-128', 'aes-cbc-256')),"
	"  integ TEXT NOT NULL DEFAULT 'none' CONSTRAINT integ CHECK (integ IN ('none', 'hmac-sha1-96',"
	"    'hmac-sha256-128', 'hmac-sha384-192', 'hmac-sha512-256')),"
	"  replay_window INTEGER CONSTRAINT replay_window CHECK (replay_window IS NULL OR replay_window = 0"
	"    OR replay_window BETWEEN 64 AND 4096),"
	"  esn INTEGER NOT NULL DEFAULT 0 " BOOL("esn") ","
	"  soft_seconds INTEGER NOT NULL DEFAULT 0 " NONNEG("soft_seconds") ","
	"  soft_bytes INTEGER NOT NULL DEFAULT 0 " NONNEG("soft_bytes") ","
	"  soft_packets INTEGER NOT NULL DEFAULT 0 " NONNEG("soft_packets") ","
	"  hard_seconds INTEGER NOT NULL DEFAULT 0 " NONNEG("hard_seconds") ","
	"  hard_bytes INTEGER NOT NULL DEFAULT 0 " NONNEG("hard_bytes") ","
	"  hard_packets INTEGER NOT NULL DEFAULT 0 " NONNEG("hard_packets") ","
	"  created INTEGER NOT NULL,"
	"  UNIQUE (spi, direction),"
	/* AEAD carries its own integrity; the others need an integrity algorithm. */
	"  CONSTRAINT integ CHECK ((enc IN ('aes-gcm-128', 'aes-gcm-256', 'chacha20-poly1305')) = (integ = 'none')),"
	"  CONSTRAINT lifetime CHECK (" SOFT_BELOW_HARD("seconds") " AND " SOFT_BELOW_HARD("bytes")
	"    AND " SOFT_BELOW_HARD("packets") ")"
	") STRICT;"
	"CREATE INDEX sas_policy ON sas (policy_id);"
	"CREATE TABLE sa_keys ("
	"  sa_id INTEGER PRIMARY KEY REFERENCES sas(id) ON DELETE CASCADE,"
	"  enc_key BLOB NOT NULL CONSTRAINT enc_key CHECK (length(enc_key) <= 36),"
	"  integ_key BLOB NOT NULL CONSTRAINT integ_key CHECK (length(integ_key) <= 64)"
	") STRICT;"
	/* An SA serves a protect policy, and a policy with SAs stays protect. */
	"CREATE TRIGGER sas_policy_protect BEFORE INSERT ON sas"
	"  WHEN EXISTS (SELECT 1 FROM policies WHERE id = NEW.policy_id AND action <> 'protect')"
	"  BEGIN SELECT RAISE(ABORT, 'policy: not a protect policy'); END;"
	"CREATE TRIGGER sas_policy_protect_upd BEFORE UPDATE OF policy_id ON sas"
	"  WHEN EXISTS (SELECT 1 FROM policies WHERE id = NEW.policy_id AND action <> 'protect')"
	"  BEGIN SELECT RAISE(ABORT, 'policy: not a protect policy'); END;"
	"CREATE TRIGGER policies_keep_protect BEFORE UPDATE OF action ON policies"
	"  WHEN NEW.action <> 'protect' AND EXISTS (SELECT 1 FROM sas WHERE policy_id = NEW.id)"
	"  BEGIN SELECT RAISE(ABORT, 'action: the policy has SAs; delete them first'); END;"

	"CREATE TABLE peers ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
	"  address TEXT NOT NULL CONSTRAINT address CHECK (length(address) BETWEEN 1 AND 253),"
	"  local_id TEXT NOT NULL DEFAULT '' CONSTRAINT local_id CHECK (length(local_id) <= 255),"
	"  remote_id TEXT NOT NULL DEFAULT '' CONSTRAINT remote_id CHECK (length(remote_id) <= 255),"
	"  auth TEXT NOT NULL CONSTRAINT auth CHECK (auth IN ('psk', 'pubkey')),"
	"  ike_proposals TEXT NOT NULL DEFAULT 'default' CONSTRAINT ike_proposals CHECK (length(ike_proposals) BETWEEN 1 AND 255),"
	"  esp_proposals TEXT NOT NULL DEFAULT 'default' CONSTRAINT esp_proposals CHECK (length(esp_proposals) BETWEEN 1 AND 255),"
	"  ike_lifetime INTEGER NOT NULL DEFAULT 14400 " NONNEG("ike_lifetime") ","
	"  child_lifetime INTEGER NOT NULL DEFAULT 3600 " NONNEG("child_lifetime") ","
	"  rekey_margin INTEGER NOT NULL DEFAULT 540 " NONNEG("rekey_margin") ","
	"  dpd_interval INTEGER NOT NULL DEFAULT 30 " NONNEG("dpd_interval") ","
	"  dpd_action TEXT NOT NULL DEFAULT 'restart' CONSTRAINT dpd_action CHECK (dpd_action IN ('clear', 'hold', 'restart')),"
	"  nat_t INTEGER NOT NULL DEFAULT 1 " BOOL("nat_t") ","
	"  nat_force_encap INTEGER NOT NULL DEFAULT 0 " BOOL("nat_force_encap") ","
	"  nat_keepalive INTEGER NOT NULL DEFAULT 20 " NONNEG("nat_keepalive") ","
	"  start_action TEXT NOT NULL DEFAULT 'trap' CONSTRAINT start_action CHECK (start_action IN ('start', 'trap', 'none')),"
	"  created INTEGER NOT NULL,"
	"  CONSTRAINT rekey_margin CHECK (child_lifetime = 0 OR rekey_margin < child_lifetime)"
	") STRICT;"
	"CREATE TABLE peer_secrets ("
	"  peer_id INTEGER PRIMARY KEY REFERENCES peers(id) ON DELETE CASCADE,"
	"  psk BLOB NOT NULL CONSTRAINT psk CHECK (length(psk) BETWEEN 1 AND 1024)"
	") STRICT;"

	"CREATE TABLE certificates ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
	"  pem TEXT NOT NULL CONSTRAINT pem CHECK (pem GLOB '-----BEGIN *' AND length(pem) <= 65536),"
	"  is_ca INTEGER NOT NULL DEFAULT 0 " BOOL("is_ca") ","
	"  subject TEXT NOT NULL DEFAULT '' CONSTRAINT subject CHECK (length(subject) <= 255),"
	"  not_after INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL"
	") STRICT;"
	"CREATE TABLE cert_keys ("
	"  cert_id INTEGER PRIMARY KEY REFERENCES certificates(id) ON DELETE CASCADE,"
	"  key_pem BLOB NOT NULL CONSTRAINT key_pem CHECK (length(key_pem) BETWEEN 1 AND 65536)"
	") STRICT;"

	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
	"  role TEXT NOT NULL CONSTRAINT role CHECK (role IN ('admin', 'readonly')),"
	"  password_hash TEXT NOT NULL CONSTRAINT password_hash CHECK (password_hash GLOB '$*$*'),"
	"  created INTEGER NOT NULL,"
	"  disabled INTEGER NOT NULL DEFAULT 0 " BOOL("disabled")
	") STRICT;"
	/* Nobody can lock everyone out: the last enabled admin stays. */
	"CREATE TRIGGER users_keep_admin_del BEFORE DELETE ON users"
	"  WHEN OLD.role = 'admin' AND OLD.disabled = 0"
	"   AND (SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0) <= 1"
	"  BEGIN SELECT RAISE(ABORT, 'role: the last enabled admin cannot be removed'); END;"
	"CREATE TRIGGER users_keep_admin_upd BEFORE UPDATE OF role, disabled ON users"
	"  WHEN OLD.role = 'admin' AND OLD.disabled = 0 AND (NEW.role <> 'admin' OR NEW.disabled <> 0)"
	"   AND (SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0) <= 1"
	"  BEGIN SELECT RAISE(ABORT, 'role: the last enabled admin cannot be removed'); END;"
	"CREATE TABLE tokens ("
	"  id INTEGER PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL " NAME_CHECK("name") ","
	"  hash BLOB NOT NULL UNIQUE CONSTRAINT hash CHECK (length(hash) = 32),"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL DEFAULT 0 " NONNEG("expires") ","
	"  last_used INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (user_id, name)"
	") STRICT;"
	"CREATE TABLE sessions ("
	"  id BLOB PRIMARY KEY CONSTRAINT id CHECK (length(id) = 32),"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL"
	") STRICT;"
	"CREATE INDEX sessions_user ON sessions (user_id);"
	"CREATE INDEX tokens_user ON tokens (user_id);"

	/* Who did what: kept when the user is deleted, so the name is copied, not referenced. */
	"CREATE TABLE audit ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time INTEGER NOT NULL,"
	"  user TEXT NOT NULL DEFAULT '' CONSTRAINT user CHECK (length(user) <= 63),"
	"  action TEXT NOT NULL CONSTRAINT action CHECK (length(action) BETWEEN 1 AND 63),"
	"  object TEXT NOT NULL DEFAULT '' CONSTRAINT object CHECK (length(object) <= 127),"
	"  detail TEXT NOT NULL DEFAULT '{}' CONSTRAINT detail CHECK (json_valid(detail) AND length(detail) <= 65536),"
	"  remote TEXT NOT NULL DEFAULT '' CONSTRAINT remote CHECK (length(remote) <= 63)"
	") STRICT;"
	"CREATE INDEX audit_time ON audit (time);";

/*
 * IKE keying (issue 4): a peer's local address, fragmentation and the
 * certificate/CA it authenticates with; a policy keyed by a peer, with its own
 * ESP proposals and child lifetime ("" / 0 = the peer's).
 */
static const char migration_2[] =
	"ALTER TABLE peers ADD COLUMN local TEXT NOT NULL DEFAULT '' CONSTRAINT local CHECK (length(local) <= 63);"
	"ALTER TABLE peers ADD COLUMN fragmentation INTEGER NOT NULL DEFAULT 1 " BOOL("fragmentation") ";"
	"ALTER TABLE peers ADD COLUMN cert_id INTEGER REFERENCES certificates(id) ON DELETE RESTRICT;"
	"ALTER TABLE peers ADD COLUMN ca_id INTEGER REFERENCES certificates(id) ON DELETE RESTRICT;"
	"ALTER TABLE policies ADD COLUMN ike_peer_id INTEGER REFERENCES peers(id) ON DELETE RESTRICT;"
	"ALTER TABLE policies ADD COLUMN esp_proposals TEXT NOT NULL DEFAULT ''"
	"  CONSTRAINT esp_proposals CHECK (length(esp_proposals) <= 255);"
	"ALTER TABLE policies ADD COLUMN child_lifetime INTEGER NOT NULL DEFAULT 0 " NONNEG("child_lifetime") ";"
	"CREATE INDEX policies_ike_peer ON policies (ike_peer_id);";

/*
 * Migration 3: the algorithms of RFC 3686, 4309, 4543 and 3566, and the legacy
 * 3DES-CBC and HMAC-MD5-96. SQLite cannot change a CHECK in place, so sas
 * (and sa_keys, which references it) are rebuilt and copied; the trigger on
 * policies that names sas is dropped for the while and made again.
 */
#define SA_ENC_NAMES \
	"'null', 'aes-gcm-128', 'aes-gcm-256', 'chacha20-poly1305', 'aes-cbc-128', 'aes-cbc-256', 'aes-ctr-128'," \
	" 'aes-ctr-256', 'aes-ccm8-128', 'aes-ccm8-256', 'aes-ccm12-128', 'aes-ccm12-256', 'aes-ccm16-128'," \
	" 'aes-ccm16-256', 'aes-gmac-128', 'aes-gmac-256', '3des-cbc'"
#define SA_SELF_AUTH_NAMES \
	"'aes-gcm-128', 'aes-gcm-256', 'chacha20-poly1305', 'aes-ccm8-128', 'aes-ccm8-256', 'aes-ccm12-128'," \
	" 'aes-ccm12-256', 'aes-ccm16-128', 'aes-ccm16-256', 'aes-gmac-128', 'aes-gmac-256'"
#define SA_INTEG_NAMES \
	"'none', 'hmac-sha1-96', 'hmac-sha256-128', 'hmac-sha384-192', 'hmac-sha512-256', 'aes-xcbc-96', 'hmac-md5-96'"
#define SA_COLUMNS \
	"id, spi, direction, policy_id, peer, local, encap, encap_sport, encap_dport, enc, integ, replay_window, esn," \
	" soft_seconds, soft_bytes, soft_packets, hard_seconds, hard_bytes, hard_packets, created"

static const char migration_3[] =
	"DROP TRIGGER policies_keep_protect;"
	"CREATE TABLE sas_new ("
	"  id INTEGER PRIMARY KEY,"
	"  spi INTEGER NOT NULL CONSTRAINT spi CHECK (spi BETWEEN 256 AND 4294967295),"
	"  direction TEXT NOT NULL CONSTRAINT direction CHECK (direction IN ('in', 'out')),"
	"  policy_id INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,"
	"  peer TEXT " ADDR_CHECK("peer") ","
	"  local TEXT " ADDR_CHECK("local") ","
	"  encap TEXT NOT NULL DEFAULT 'none' CONSTRAINT encap CHECK (encap IN ('none', 'udp')),"
	"  encap_sport INTEGER NOT NULL DEFAULT 4500 CONSTRAINT encap_sport CHECK (encap_sport BETWEEN 1 AND 65535),"
	"  encap_dport INTEGER NOT NULL DEFAULT 4500 CONSTRAINT encap_dport CHECK (encap_dport BETWEEN 1 AND 65535),"
	"  enc TEXT NOT NULL CONSTRAINT enc CHECK (enc IN (" SA_ENC_NAMES ")),"
	"  integ TEXT NOT NULL DEFAULT 'none' CONSTRAINT integ CHECK (integ IN (" SA_INTEG_NAMES ")),"
	"  replay_window INTEGER CONSTRAINT replay_window CHECK (replay_window IS NULL OR replay_window = 0"
	"    OR replay_window BETWEEN 64 AND 4096),"
	"  esn INTEGER NOT NULL DEFAULT 0 " BOOL("esn") ","
	"  soft_seconds INTEGER NOT NULL DEFAULT 0 " NONNEG("soft_seconds") ","
	"  soft_bytes INTEGER NOT NULL DEFAULT 0 " NONNEG("soft_bytes") ","
	"  soft_packets INTEGER NOT NULL DEFAULT 0 " NONNEG("soft_packets") ","
	"  hard_seconds INTEGER NOT NULL DEFAULT 0 " NONNEG("hard_seconds") ","
	"  hard_bytes INTEGER NOT NULL DEFAULT 0 " NONNEG("hard_bytes") ","
	"  hard_packets INTEGER NOT NULL DEFAULT 0 " NONNEG("hard_packets") ","
	"  created INTEGER NOT NULL,"
	"  UNIQUE (spi, direction),"
	/* AEAD and GMAC carry their own integrity; the others need an integrity algorithm. */
	"  CONSTRAINT integ CHECK ((enc IN (" SA_SELF_AUTH_NAMES ")) = (integ = 'none')),"
	"  CONSTRAINT lifetime CHECK (" SOFT_BELOW_HARD("seconds") " AND " SOFT_BELOW_HARD("bytes")
	"    AND " SOFT_BELOW_HARD("packets") ")"
	") STRICT;"
	"INSERT INTO sas_new (" SA_COLUMNS ") SELECT " SA_COLUMNS " FROM sas;"
	"CREATE TABLE sa_keys_new ("
	"  sa_id INTEGER PRIMARY KEY REFERENCES sas_new(id) ON DELETE CASCADE,"
	"  enc_key BLOB NOT NULL CONSTRAINT enc_key CHECK (length(enc_key) <= 36),"
	"  integ_key BLOB NOT NULL CONSTRAINT integ_key CHECK (length(integ_key) <= 64)"
	") STRICT;"
	"INSERT INTO sa_keys_new (sa_id, enc_key, integ_key) SELECT sa_id, enc_key, integ_key FROM sa_keys;"
	"DROP TABLE sa_keys;"
	"DROP TABLE sas;"
	"ALTER TABLE sas_new RENAME TO sas;"
	"ALTER TABLE sa_keys_new RENAME TO sa_keys;"
	"CREATE INDEX sas_policy ON sas (policy_id);"
	"CREATE TRIGGER sas_policy_protect BEFORE INSERT ON sas"
	"  WHEN EXISTS (SELECT 1 FROM policies WHERE id = NEW.policy_id AND action <> 'protect')"
	"  BEGIN SELECT RAISE(ABORT, 'policy: not a protect policy'); END;"
	"CREATE TRIGGER sas_policy_protect_upd BEFORE UPDATE OF policy_id ON sas"
	"  WHEN EXISTS (SELECT 1 FROM policies WHERE id = NEW.policy_id AND action <> 'protect')"
	"  BEGIN SELECT RAISE(ABORT, 'policy: not a protect policy'); END;"
	"CREATE TRIGGER policies_keep_protect BEFORE UPDATE OF action ON policies"
	"  WHEN NEW.action <> 'protect' AND EXISTS (SELECT 1 FROM sas WHERE policy_id = NEW.id)"
	"  BEGIN SELECT RAISE(ABORT, 'action: the policy has SAs; delete them first'); END;";

/* Migration 4: the per-policy options the wire applies to each SA of a protect policy (docs/config.md). */
static const char migration_4[] =
	"ALTER TABLE policies ADD COLUMN ecn INTEGER NOT NULL DEFAULT 1 " BOOL("ecn") ";"
	"ALTER TABLE policies ADD COLUMN df TEXT NOT NULL DEFAULT 'clear'"
	"  CONSTRAINT df CHECK (df IN ('clear', 'set', 'copy'));"
	"ALTER TABLE policies ADD COLUMN pad_check INTEGER NOT NULL DEFAULT 1 " BOOL("pad_check") ";"
	"ALTER TABLE policies ADD COLUMN tfc_pad INTEGER NOT NULL DEFAULT 0"
	"  CONSTRAINT tfc_pad CHECK (tfc_pad BETWEEN 0 AND 1024);"
	"ALTER TABLE policies ADD COLUMN dummy_interval_ms INTEGER NOT NULL DEFAULT 0"
	"  CONSTRAINT dummy_interval_ms CHECK (dummy_interval_ms = 0 OR dummy_interval_ms BETWEEN 10 AND 3600000);"
	"ALTER TABLE policies ADD COLUMN icv_96 INTEGER NOT NULL DEFAULT 0 " BOOL("icv_96") ";";

/* Migration 5: a peer's own dead peer detection timeout (was one for the whole engine: 10 s). */
static const char migration_5[] =
	"ALTER TABLE peers ADD COLUMN dpd_timeout INTEGER NOT NULL DEFAULT 10"
	"  CONSTRAINT dpd_timeout CHECK (dpd_timeout BETWEEN 1 AND 3600);";

/*
 * Migration 6 (issue 7): AH, bundles and cloning. A policy's SA type (esp, ah,
 * or ahesp: an AH+ESP bundle), its AH proposals for IKE and its clone mode; an
 * SA's protocol and the host a clone policy's SA serves. The SAD is keyed by
 * (SPI, protocol), so a bundle's AH and ESP SAs may share an SPI: the UNIQUE
 * changes, and SQLite can only do that by rebuilding sas (as migration 3).
 */
/* AH's AES-GMAC (RFC 4543 section 5) is an integrity algorithm of AH SAs; ESP names GMAC as enc. */
#define SA_INTEG_NAMES_6 SA_INTEG_NAMES ", 'aes-gmac-128', 'aes-gmac-256'"

static const char migration_6[] =
	"ALTER TABLE policies ADD COLUMN sa_type TEXT NOT NULL DEFAULT 'esp'"
	"  CONSTRAINT sa_type CHECK (sa_type IN ('esp', 'ah', 'ahesp'));"
	"ALTER TABLE policies ADD COLUMN ah_proposals TEXT NOT NULL DEFAULT ''"
	"  CONSTRAINT ah_proposals CHECK (length(ah_proposals) <= 255);"
	"ALTER TABLE policies ADD COLUMN clone TEXT NOT NULL DEFAULT 'none'"
	"  CONSTRAINT clone CHECK (clone IN ('none', 'src', 'dst'));"
	"DROP TRIGGER policies_keep_protect;"
	"CREATE TABLE sas_new ("
	"  id INTEGER PRIMARY KEY,"
	"  spi INTEGER NOT NULL CONSTRAINT spi CHECK (spi BETWEEN 256 AND 4294967295),"
	"  direction TEXT NOT NULL CONSTRAINT direction CHECK (direction IN ('in', 'out')),"
	"  policy_id INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,"
	"  peer TEXT " ADDR_CHECK("peer") ","
	"  local TEXT " ADDR_CHECK("local") ","
	"  encap TEXT NOT NULL DEFAULT 'none' CONSTRAINT encap CHECK (encap IN ('none', 'udp')),"
	"  encap_sport INTEGER NOT NULL DEFAULT 4500 CONSTRAINT encap_sport CHECK (encap_sport BETWEEN 1 AND 65535),"
	"  encap_dport INTEGER NOT NULL DEFAULT 4500 CONSTRAINT encap_dport CHECK (encap_dport BETWEEN 1 AND 65535),"
	"  enc TEXT NOT NULL CONSTRAINT enc CHECK (enc IN (" SA_ENC_NAMES ")),"
	"  integ TEXT NOT NULL DEFAULT 'none' CONSTRAINT integ CHECK (integ IN (" SA_INTEG_NAMES_6 ")),"
	"  replay_window INTEGER CONSTRAINT replay_window CHECK (replay_window IS NULL OR replay_window = 0"
	"    OR replay_window BETWEEN 64 AND 4096),"
	"  esn INTEGER NOT NULL DEFAULT 0 " BOOL("esn") ","
	"  soft_seconds INTEGER NOT NULL DEFAULT 0 " NONNEG("soft_seconds") ","
	"  soft_bytes INTEGER NOT NULL DEFAULT 0 " NONNEG("soft_bytes") ","
	"  soft_packets INTEGER NOT NULL DEFAULT 0 " NONNEG("soft_packets") ","
	"  hard_seconds INTEGER NOT NULL DEFAULT 0 " NONNEG("hard_seconds") ","
	"  hard_bytes INTEGER NOT NULL DEFAULT 0 " NONNEG("hard_bytes") ","
	"  hard_packets INTEGER NOT NULL DEFAULT 0 " NONNEG("hard_packets") ","
	"  created INTEGER NOT NULL,"
	"  protocol TEXT NOT NULL DEFAULT 'esp' CONSTRAINT protocol CHECK (protocol IN ('esp', 'ah')),"
	"  clone_host TEXT " ADDR_CHECK("clone_host") ","
	"  UNIQUE (spi, direction, protocol),"
	"  CONSTRAINT integ CHECK ((enc IN (" SA_SELF_AUTH_NAMES ")) = (integ = 'none')),"
	/* AH authenticates only, and travels as IP protocol 51 (no UDP encapsulation). */
	"  CONSTRAINT enc CHECK (protocol = 'esp' OR enc = 'null'),"
	"  CONSTRAINT encap CHECK (protocol = 'esp' OR encap = 'none'),"
	"  CONSTRAINT integ CHECK (protocol = 'ah' OR integ NOT IN ('aes-gmac-128', 'aes-gmac-256')),"
	"  CONSTRAINT lifetime CHECK (" SOFT_BELOW_HARD("seconds") " AND " SOFT_BELOW_HARD("bytes")
	"    AND " SOFT_BELOW_HARD("packets") ")"
	") STRICT;"
	"INSERT INTO sas_new (" SA_COLUMNS ") SELECT " SA_COLUMNS " FROM sas;"
	"CREATE TABLE sa_keys_new ("
	"  sa_id INTEGER PRIMARY KEY REFERENCES sas_new(id) ON DELETE CASCADE,"
	"  enc_key BLOB NOT NULL CONSTRAINT enc_key CHECK (length(enc_key) <= 36),"
	"  integ_key BLOB NOT NULL CONSTRAINT integ_key CHECK (length(integ_key) <= 64)"
	") STRICT;"
	"INSERT INTO sa_keys_new (sa_id, enc_key, integ_key) SELECT sa_id, enc_key, integ_key FROM sa_keys;"
	"DROP TABLE sa_keys;"
	"DROP TABLE sas;"
	"ALTER TABLE sas_new RENAME TO sas;"
	"ALTER TABLE sa_keys_new RENAME TO sa_keys;"
	"CREATE INDEX sas_policy ON sas (policy_id);"
	"CREATE TRIGGER sas_policy_protect BEFORE INSERT ON sas"
	"  WHEN EXISTS (SELECT 1 FROM policies WHERE id = NEW.policy_id AND action <> 'protect')"
	"  BEGIN SELECT RAISE(ABORT, 'policy: not a protect policy'); END;"
	"CREATE TRIGGER sas_policy_protect_upd BEFORE UPDATE OF policy_id ON sas"
	"  WHEN EXISTS (SELECT 1 FROM policies WHERE id = NEW.policy_id AND action <> 'protect')"
	"  BEGIN SELECT RAISE(ABORT, 'policy: not a protect policy'); END;"
	"CREATE TRIGGER policies_keep_protect BEFORE UPDATE OF action ON policies"
	"  WHEN NEW.action <> 'protect' AND EXISTS (SELECT 1 FROM sas WHERE policy_id = NEW.id)"
	"  BEGIN SELECT RAISE(ABORT, 'action: the policy has SAs; delete them first'); END;"
	/* An SA's protocol is one its policy's SA type uses (ahesp: both), whichever side changes. */
	"CREATE TRIGGER sas_protocol_fits BEFORE INSERT ON sas"
	"  WHEN EXISTS (SELECT 1 FROM policies WHERE id = NEW.policy_id AND sa_type <> 'ahesp' AND sa_type <> NEW.protocol)"
	"  BEGIN SELECT RAISE(ABORT, 'protocol: the policy''s sa_type does not use this protocol'); END;"
	"CREATE TRIGGER sas_protocol_fits_upd BEFORE UPDATE OF policy_id, protocol ON sas"
	"  WHEN EXISTS (SELECT 1 FROM policies WHERE id = NEW.policy_id AND sa_type <> 'ahesp' AND sa_type <> NEW.protocol)"
	"  BEGIN SELECT RAISE(ABORT, 'protocol: the policy''s sa_type does not use this protocol'); END;"
	"CREATE TRIGGER policies_sa_type_fits BEFORE UPDATE OF sa_type ON policies"
	"  WHEN NEW.sa_type <> 'ahesp' AND EXISTS (SELECT 1 FROM sas WHERE policy_id = NEW.id AND protocol <> NEW.sa_type)"
	"  BEGIN SELECT RAISE(ABORT, 'sa_type: the policy has SAs of another protocol; delete them first'); END;";

const char *const db_migrations[] = {
	migration_1,
	migration_2,
	migration_3,
	migration_4,
	migration_5,
	migration_6,
};
const int db_migration_count = (int)(sizeof db_migrations / sizeof db_migrations[0]);

_Static_assert(sizeof db_migrations / sizeof db_migrations[0] == DB_SCHEMA_VERSION,
               "DB_SCHEMA_VERSION must equal the number of migrations");
