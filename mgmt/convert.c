/* convert.c: policies and manual SAs between the REST/config JSON (checked by the wire's own parser) and db rows. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "bitwd.h"

/*
 * Rows hold the canonical text of the wire's own output (policy_to_json), so
 * what a client reads back, what export writes and what the wire reports
 * about a policy are the same strings.
 */
static void copy_str(char *dst, size_t len, json_t *o, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(o, key));

	snprintf(dst, len, "%s", s ? s : def);
}

/* A port or protocol comes back from policy_to_json as a string or, for a bare number, an integer. */
static void copy_str_or_int(char *dst, size_t len, json_t *o, const char *key, const char *def)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		snprintf(dst, len, "%lld", (long long)json_integer_value(v));
	else
		copy_str(dst, len, o, key, def);
}

int policy_json_to_row(json_t *j, struct db_policy *out, char *err, size_t errlen)
{
	struct policy_conf pc;
	json_t *canon;
	int rc = policy_from_json(j, &pc, err, errlen);

	if (rc)
		return rc;
	canon = policy_to_json(&pc);
	if (!canon) {
		snprintf(err, errlen, "out of memory");
		return -XE_NOMEM;
	}
	db_policy_init(out);
	out->id = json_object_get(j, "id") ? (int64_t)pc.id : 0;
	out->position = json_object_get(j, "order") ? (int64_t)pc.order : -1;
	out->priority = pc.priority;
	snprintf(out->name, sizeof out->name, "%s", pc.name);
	copy_str(out->action, sizeof out->action, canon, "action", "");
	copy_str(out->direction, sizeof out->direction, canon, "direction", "both");
	copy_str(out->src, sizeof out->src, canon, "src", "any");
	copy_str(out->dst, sizeof out->dst, canon, "dst", "any");
	copy_str(out->src_port, sizeof out->src_port, canon, "src_port", "any");
	copy_str(out->dst_port, sizeof out->dst_port, canon, "dst_port", "any");
	copy_str_or_int(out->protocol, sizeof out->protocol, canon, "protocol", "any");
	if (pc.action == ACT_PROTECT) {
		copy_str(out->mode, sizeof out->mode, canon, "mode", "tunnel");
		copy_str(out->peer, sizeof out->peer, canon, "peer", "");
		out->mss_clamp = pc.mss_clamp;
		out->ecn = !pc.opts.ecn_off;
		copy_str(out->df, sizeof out->df, canon, "df", "clear");
		out->pad_check = !pc.opts.pad_nocheck;
		out->tfc_pad = pc.opts.tfc_pad;
		out->dummy_interval_ms = pc.opts.dummy_ms;
		out->icv_96 = pc.opts.icv96;
		copy_str(out->clone, sizeof out->clone, canon, "clone", "none");
		copy_str(out->sa_type, sizeof out->sa_type, canon, "sa_type", "esp");
	}
	json_decref(canon);
	return 0;
}

/* A numeric protocol goes out as an integer, as the wire writes it (policy_to_json); ports stay strings. */
static json_t *proto_json(const char *s)
{
	if (*s >= '0' && *s <= '9')
		return json_integer(atoi(s));
	return json_string(s);
}

json_t *policy_row_to_json(const struct db_policy *p)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_integer(p->id));
	json_object_set_new(o, "name", json_string(p->name));
	json_object_set_new(o, "priority", json_integer(p->priority));
	json_object_set_new(o, "order", json_integer(p->position));
	json_object_set_new(o, "action", json_string(p->action));
	json_object_set_new(o, "direction", json_string(p->direction));
	json_object_set_new(o, "src", json_string(p->src));
	json_object_set_new(o, "dst", json_string(p->dst));
	json_object_set_new(o, "src_port", json_string(p->src_port));
	json_object_set_new(o, "dst_port", json_string(p->dst_port));
	json_object_set_new(o, "protocol", proto_json(p->protocol));
	if (!strcmp(p->action, "protect")) {
		json_object_set_new(o, "mode", json_string(p->mode));
		json_object_set_new(o, "peer", json_string(p->peer));
		json_object_set_new(o, "mss_clamp", json_boolean(p->mss_clamp));
		json_object_set_new(o, "ecn", json_boolean(p->ecn));
		json_object_set_new(o, "df", json_string(p->df[0] ? p->df : "clear"));
		json_object_set_new(o, "pad_check", json_boolean(p->pad_check));
		json_object_set_new(o, "tfc_pad", json_integer(p->tfc_pad));
		json_object_set_new(o, "dummy_interval_ms", json_integer(p->dummy_interval_ms));
		json_object_set_new(o, "icv_96", json_boolean(p->icv_96));
		json_object_set_new(o, "clone", json_string(p->clone[0] ? p->clone : "none"));
		json_object_set_new(o, "sa_type", json_string(p->sa_type[0] ? p->sa_type : "esp"));
	}
	return o;
}

static void addr_text(const struct bw_addr *a, char *buf, size_t len)
{
	char tmp[INET6_ADDRSTRLEN];

	if (!a->family || !inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->a, tmp, sizeof tmp)) {
		if (len)
			buf[0] = '\0';
		return;
	}
	snprintf(buf, len, "%s", tmp);
}

static void lifetime_to_row(const struct sa_lifetime *l, struct db_lifetime *out)
{
	out->seconds = (int64_t)l->seconds;
	out->bytes = (int64_t)l->bytes;
	out->packets = (int64_t)l->packets;
}

int sa_json_to_row(json_t *j, struct db_sa *out, struct db_sa_keys *keys, char *err, size_t errlen)
{
	struct sa_conf sc;
	int rc = sa_from_json(j, &sc, err, errlen);

	if (rc)
		return rc;
	db_sa_init(out);
	out->spi = sc.spi;
	snprintf(out->direction, sizeof out->direction, "%s", sc.dir == DIR_IN ? "in" : "out");
	snprintf(out->policy, sizeof out->policy, "%s", sc.policy);
	addr_text(&sc.peer, out->peer, sizeof out->peer);
	addr_text(&sc.local, out->local, sizeof out->local);
	snprintf(out->encap, sizeof out->encap, "%s", sc.encap == ENCAP_UDP ? "udp" : "none");
	out->encap_sport = sc.encap_sport;
	out->encap_dport = sc.encap_dport;
	snprintf(out->enc, sizeof out->enc, "%s", enc_name(sc.enc));
	snprintf(out->integ, sizeof out->integ, "%s", integ_name(sc.integ));
	snprintf(out->protocol, sizeof out->protocol, "%s", sc.proto == PROTO_AH ? "ah" : "esp");
	addr_text(&sc.clone_host, out->clone_host, sizeof out->clone_host);
	out->replay_window = sc.replay_window == SA_REPLAY_DEFAULT ? -1 : sc.replay_window;
	out->esn = sc.esn;
	lifetime_to_row(&sc.soft, &out->soft);
	lifetime_to_row(&sc.hard, &out->hard);
	if (keys) {
		memset(keys, 0, sizeof *keys);
		memcpy(keys->enc_key, sc.enc_key, sc.enc_key_len);
		keys->enc_key_len = sc.enc_key_len;
		memcpy(keys->integ_key, sc.integ_key, sc.integ_key_len);
		keys->integ_key_len = sc.integ_key_len;
	}
	OPENSSL_cleanse(&sc, sizeof sc);
	return 0;
}

/* The wire's own checks (sa_fits_policy_conf) on the SA as given and the policy as stored. */
int sa_fits_policy(json_t *sa, const struct db_policy *p, char *err, size_t errlen)
{
	json_t *j = policy_row_to_json(p);
	struct policy_conf pc;
	struct sa_conf sc;
	int rc = j ? policy_from_json(j, &pc, err, errlen) : -XE_NOMEM;

	json_decref(j);
	if (rc == -XE_BAD_PARAM) {
		/* the row passed this parser when it was stored: not the SA's fault */
		char why[256];

		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "stored policy \"%s\" no longer parses: %s", p->name, why);
		return -XE_IO;
	}
	if (rc == 0 && (rc = sa_from_json(sa, &sc, err, errlen)) == 0) {
		rc = sa_fits_policy_conf(&sc, &pc, err, errlen);
		OPENSSL_cleanse(&sc, sizeof sc);
	}
	if (rc == -XE_NOMEM)
		snprintf(err, errlen, "out of memory");
	return rc;
}

static json_t *limits_json(const struct db_lifetime *l)
{
	json_t *o = json_object();

	json_object_set_new(o, "seconds", json_integer(l->seconds));
	json_object_set_new(o, "bytes", json_integer(l->bytes));
	json_object_set_new(o, "packets", json_integer(l->packets));
	return o;
}

/*
 * The SA as the config schema writes it, without keys and without the db id
 * (the schema has no "id" for SAs; the REST handlers add it). Defaults that
 * depend on other objects (peer, local, replay window) stay absent, as
 * stored, so an export imported again means the same thing.
 */
json_t *sa_row_to_json(struct bitwd *d, const struct db_sa *s)
{
	json_t *o = json_object(), *lt = json_object();

	(void)d;
	if (!o || !lt) {
		json_decref(o);
		json_decref(lt);
		return NULL;
	}
	json_object_set_new(o, "spi", json_integer(s->spi));
	json_object_set_new(o, "direction", json_string(s->direction));
	json_object_set_new(o, "policy", json_string(s->policy));
	if (s->peer[0])
		json_object_set_new(o, "peer", json_string(s->peer));
	if (s->local[0])
		json_object_set_new(o, "local", json_string(s->local));
	json_object_set_new(o, "protocol", json_string(s->protocol[0] ? s->protocol : "esp"));
	if (s->clone_host[0])
		json_object_set_new(o, "clone_host", json_string(s->clone_host));
	json_object_set_new(o, "encap", json_string(s->encap));
	json_object_set_new(o, "encap_sport", json_integer(s->encap_sport));
	json_object_set_new(o, "encap_dport", json_integer(s->encap_dport));
	json_object_set_new(o, "enc", json_string(s->enc));
	json_object_set_new(o, "integ", json_string(s->integ));
	if (s->replay_window >= 0)
		json_object_set_new(o, "replay_window", json_integer(s->replay_window));
	json_object_set_new(o, "esn", json_boolean(s->esn));
	json_object_set_new(lt, "soft", limits_json(&s->soft));
	json_object_set_new(lt, "hard", limits_json(&s->hard));
	json_object_set_new(o, "lifetime", lt);
	return o;
}

/*
 * The parser's messages are "field.path: problem" (or just "problem" for the
 * object itself); the REST problem names the field and a stable code.
 */
void reply_field_problem(struct req *r, const char *field, const char *msg)
{
	const char *code = "BAD_FIELD";

	if (!strcmp(msg, "unknown field"))
		code = "UNKNOWN_FIELD";
	else if (!strcmp(msg, "missing required field"))
		code = "MISSING_FIELD";
	reply_problem(r, 422, code, field && field[0] ? field : NULL, "%s", msg);
}

void reply_parse_error(struct req *r, const char *err)
{
	const char *sep = strstr(err, ": ");
	char field[128] = "";
	const char *msg = err;

	if (sep && (size_t)(sep - err) < sizeof field && !memchr(err, ' ', (size_t)(sep - err))) {
		memcpy(field, err, (size_t)(sep - err));
		field[sep - err] = '\0';
		msg = sep + 2;
	}
	reply_field_problem(r, field, msg);
}

/* Key strings in a request body are secrets too: overwrite them before the body is freed. */
void json_wipe_sa_keys(json_t *sa)
{
	static const char *const k[] = { "enc_key", "integ_key" };

	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_object_get(sa, k[i]);

		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
}
