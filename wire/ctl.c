/* ctl.c: the control socket of bitw-wire: SOCK_SEQPACKET framing, JSON requests to wire_* operations, events out. */
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "config.h"
#include "log.h"
#include "pkt.h"
#include "wire_int.h"

#define CTL_ERR_MAX 512
#define CTL_BURST 64          /* messages served per readiness, so one client cannot starve the rest */
#define CTL_IKE_MAX (65535 - 48)  /* UDP payload that fits an IPv6 packet without jumbograms */
#define CTL_SPI_BATCH_MAX 64      /* SPIs one GET_SPI may reserve */

struct ctl_client {
	int fd;                   /* -1: free slot */
	int sndbuf;               /* bytes the kernel lets us queue toward this client */
};

struct ctl_server {
	struct wire *w;
	int listen_fd;
	struct ctl_client cl[CTL_MAX_CLIENTS];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint8_t *rx;              /* one datagram; allocated once, wiped after each message (keys) */
	uint64_t events_lost;
	uint64_t replies_lost;
};

/* One request being served. */
struct ctl_req {
	struct ctl_server *s;
	struct ctl_hdr hdr;
	const uint8_t *payload;
	uint32_t len;
	json_t *reply;            /* success payload; NULL means {} */
	char err[CTL_ERR_MAX];
};

static int ctl_fail(struct ctl_req *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int ctl_fail(struct ctl_req *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof r->err, fmt, ap);
	va_end(ap);
	return code;
}

/* Length of a leading field path ("policies[2].src") followed by ": ", or 0 when msg names no field. */
static size_t err_field_len(const char *msg)
{
	size_t n = strspn(msg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.[]-");

	return n > 0 && msg[n] == ':' && msg[n + 1] == ' ' ? n : 0;
}

/* "src: bad prefix" from a sub-parser becomes "policies[2].src: bad prefix". */
static void err_prefix(char *dst, size_t len, const char *prefix, const char *msg)
{
	if (err_field_len(msg))
		snprintf(dst, len, "%s.%s", prefix, msg);
	else
		snprintf(dst, len, "%s: %s", prefix, msg[0] ? msg : "invalid");
}

/* Requests are strict: a field we do not know is a mistake the sender should hear about. */
static int check_fields(struct ctl_req *r, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const char *const *a = allowed;

		while (*a && strcmp(*a, key) != 0)
			a++;
		if (!*a)
			return ctl_fail(r, -XE_BAD_PARAM, "%.64s: unknown field", key);
	}
	return 0;
}

/* An SPI as an integer or a "0x..."/decimal string; 0 is never a valid SPI. */
static int parse_spi(struct ctl_req *r, json_t *v, uint32_t *spi)
{
	unsigned long long x;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i <= 0 || i > 0xffffffffLL)
			return ctl_fail(r, -XE_BAD_PARAM, "spi: out of range");
		*spi = (uint32_t)i;
		return 0;
	}
	if (!json_is_string(v))
		return ctl_fail(r, -XE_BAD_PARAM, "spi: must be an integer or a hex string");
	{
		const char *s = json_string_value(v);
		int base = 10;
		char *end;

		if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
			s += 2;
			base = 16;
		}
		if (!((base == 16 && ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F'))) ||
		      (base == 10 && *s >= '0' && *s <= '9')))
			return ctl_fail(r, -XE_BAD_PARAM, "spi: not a number");
		errno = 0;
		x = strtoull(s, &end, base);
		if (*end || errno || x == 0 || x > 0xffffffffULL)
			return ctl_fail(r, -XE_BAD_PARAM, "spi: not a number in 1..0xffffffff");
	}
	*spi = (uint32_t)x;
	return 0;
}

static int parse_dir(struct ctl_req *r, json_t *v, const char *field, int *dir)
{
	const char *s = json_string_value(v);

	if (s && strcmp(s, "in") == 0)
		*dir = DIR_IN;
	else if (s && strcmp(s, "out") == 0)
		*dir = DIR_OUT;
	else
		return ctl_fail(r, -XE_BAD_PARAM, "%s: must be \"in\" or \"out\"", field);
	return 0;
}

/* An SA's protocol, "esp" or "ah"; absent: -1 (either). */
static int parse_proto(struct ctl_req *r, json_t *v, int *proto)
{
	const char *s = json_string_value(v);

	if (!v)
		*proto = -1;
	else if (s && strcmp(s, "esp") == 0)
		*proto = PROTO_ESP;
	else if (s && strcmp(s, "ah") == 0)
		*proto = PROTO_AH;
	else
		return ctl_fail(r, -XE_BAD_PARAM, "protocol: must be \"esp\" or \"ah\"");
	return 0;
}

static int do_hello(struct ctl_req *r, json_t *req)
{
	json_t *v = json_object_get(req, "version");

	if (v && !json_is_integer(v))
		return ctl_fail(r, -XE_BAD_PARAM, "version: must be an integer");
	if (json_object_get(req, "name") && !json_is_string(json_object_get(req, "name")))
		return ctl_fail(r, -XE_BAD_PARAM, "name: must be a string");
	r->reply = json_pack("{s:i, s:s, s:I}", "version", CTL_VERSION, "name", "bitw-wire",
	                     "pid", (json_int_t)getpid());
	return r->reply ? 0 : ctl_fail(r, -XE_NOMEM, "out of memory");
}

static int parse_default_action(struct ctl_req *r, json_t *v, int *action)
{
	const char *s = json_string_value(v);

	if (!v) {
		/* Absent: -1 keeps the running default; a policy push must not silently open or close the wire. */
		*action = -1;
		return 0;
	}
	if (s && strcmp(s, "discard") == 0)
		*action = ACT_DISCARD;
	else if (s && strcmp(s, "bypass") == 0)
		*action = ACT_BYPASS;
	else
		return ctl_fail(r, -XE_BAD_PARAM, "default_action: must be \"discard\" or \"bypass\"");
	return 0;
}

static int parse_policies(struct ctl_req *r, json_t *arr, struct policy_conf *pol)
{
	char sub[CTL_ERR_MAX], where[32];

	for (size_t i = 0; i < json_array_size(arr); i++) {
		sub[0] = '\0';
		if (policy_from_json(json_array_get(arr, i), &pol[i], sub, sizeof sub) < 0) {
			snprintf(where, sizeof where, "policies[%zu]", i);
			err_prefix(r->err, sizeof r->err, where, sub);
			return -XE_BAD_PARAM;
		}
		pol[i].order = (uint32_t)i;
	}
	return 0;
}

static int do_spd_set(struct ctl_req *r, json_t *req)
{
	json_t *arr = json_object_get(req, "policies");
	struct policy_conf *pol;
	size_t n;
	int action = -1, rc;

	if (!json_is_array(arr))
		return ctl_fail(r, -XE_BAD_PARAM, "policies: must be an array");
	rc = parse_default_action(r, json_object_get(req, "default_action"), &action);
	if (rc < 0)
		return rc;
	n = json_array_size(arr);
	if (n > UINT32_MAX / 2)
		return ctl_fail(r, -XE_BAD_PARAM, "policies: too many");
	pol = calloc(n ? n : 1, sizeof *pol);
	if (!pol)
		return ctl_fail(r, -XE_NOMEM, "out of memory");
	rc = parse_policies(r, arr, pol);
	if (rc == 0)
		rc = wire_spd_set(r->s->w, pol, (uint32_t)n, action, r->err, sizeof r->err);
	free(pol);
	return rc;
}

/* Jansson frees without wiping: clear the hex keys in the request before it goes back to the heap. */
static void wipe_json_keys(json_t *sa)
{
	static const char *const key_fields[] = { "enc_key", "integ_key" };

	for (size_t i = 0; i < sizeof key_fields / sizeof key_fields[0]; i++) {
		json_t *v = json_object_get(sa, key_fields[i]);

		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
}

static int parse_sas(struct ctl_req *r, json_t *one, json_t *arr, struct sa_conf *sa, size_t n)
{
	char sub[CTL_ERR_MAX], where[32];

	for (size_t i = 0; i < n; i++) {
		json_t *obj = one ? one : json_array_get(arr, i);

		sub[0] = '\0';
		if (sa_from_json(obj, &sa[i], sub, sizeof sub) < 0) {
			if (one)
				snprintf(where, sizeof where, "sa");
			else
				snprintf(where, sizeof where, "sas[%zu]", i);
			err_prefix(r->err, sizeof r->err, where, sub);
			return -XE_BAD_PARAM;
		}
	}
	return 0;
}

static int do_sa_add(struct ctl_req *r, json_t *req)
{
	json_t *one = json_object_get(req, "sa"), *arr = json_object_get(req, "sas");
	struct sa_conf *sa;
	size_t n;
	int rc;

	if (one && arr)
		return ctl_fail(r, -XE_BAD_PARAM, "sas: give either \"sa\" or \"sas\", not both");
	if (!one && !arr)
		return ctl_fail(r, -XE_BAD_PARAM, "sa: missing (\"sa\": {...} or \"sas\": [...])");
	if (one && !json_is_object(one))
		return ctl_fail(r, -XE_BAD_PARAM, "sa: must be an object");
	if (arr && !json_is_array(arr))
		return ctl_fail(r, -XE_BAD_PARAM, "sas: must be an array");
	n = one ? 1 : json_array_size(arr);
	if (n == 0)
		return 0;
	if (n > UINT32_MAX / 2)
		return ctl_fail(r, -XE_BAD_PARAM, "sas: too many");
	sa = calloc(n, sizeof *sa);
	if (!sa)
		return ctl_fail(r, -XE_NOMEM, "out of memory");
	rc = parse_sas(r, one, arr, sa, n);
	if (rc == 0)
		rc = wire_sa_add(r->s->w, sa, (uint32_t)n, r->err, sizeof r->err);
	OPENSSL_cleanse(sa, n * sizeof *sa);
	free(sa);
	return rc;
}

static int do_sa_del(struct ctl_req *r, json_t *req)
{
	json_t *spi_v = json_object_get(req, "spi"), *dir_v = json_object_get(req, "direction");
	const char *dir_field = "direction";
	uint32_t spi = 0;
	int dir = 0, proto = -1, rc;

	/* wire.h once documented "dir"; accept it so an older sender is not refused. */
	if (!dir_v && json_object_get(req, "dir")) {
		dir_v = json_object_get(req, "dir");
		dir_field = "dir";
	}
	if (!spi_v)
		return ctl_fail(r, -XE_BAD_PARAM, "spi: missing");
	if (!dir_v)
		return ctl_fail(r, -XE_BAD_PARAM, "direction: missing");
	rc = parse_spi(r, spi_v, &spi);
	if (rc == 0)
		rc = parse_dir(r, dir_v, dir_field, &dir);
	if (rc == 0)
		rc = parse_proto(r, json_object_get(req, "protocol"), &proto);
	if (rc < 0)
		return rc;
	rc = wire_sa_del(r->s->w, spi, dir, proto);
	if (rc < 0)
		return ctl_fail(r, rc, "spi: 0x%08" PRIx32 " %s%s: %s", spi, dir == DIR_IN ? "in" : "out",
		                proto < 0 ? "" : proto == PROTO_AH ? " ah" : " esp", xe_text(rc));
	return 0;
}

static int do_sa_flush(struct ctl_req *r, json_t *req)
{
	json_t *v = json_object_get(req, "policy");
	int rc;

	if (v && !json_is_string(v))
		return ctl_fail(r, -XE_BAD_PARAM, "policy: must be a policy name");
	rc = wire_sa_flush(r->s->w, v ? json_string_value(v) : NULL);
	if (rc < 0)
		return ctl_fail(r, rc, v ? "policy: %s" : "%s", xe_text(rc));
	return 0;
}

/* {"count": n} reserves n SPIs at once (bitwd keeps a few at hand instead of a round trip per child SA). */
static int do_get_spi(struct ctl_req *r, json_t *req)
{
	json_t *count = json_object_get(req, "count"), *all = NULL;
	json_int_t n = count ? json_integer_value(count) : 1;
	uint32_t spi = 0;
	int rc = 0;

	if (count && (!json_is_integer(count) || n < 1 || n > CTL_SPI_BATCH_MAX))
		return ctl_fail(r, -XE_BAD_PARAM, "count: must be an integer 1..%d", CTL_SPI_BATCH_MAX);
	if (count && !(all = json_array()))
		return ctl_fail(r, -XE_NOMEM, "out of memory");
	for (json_int_t i = 0; i < n && rc == 0; i++) {
		uint32_t v = 0;

		rc = wire_get_spi(r->s->w, &v);
		if (rc == 0 && i == 0)
			spi = v;
		if (rc == 0 && all && json_array_append_new(all, json_integer(v)) < 0)
			rc = -XE_NOMEM;
	}
	if (rc < 0) {
		json_decref(all);
		return ctl_fail(r, rc, "%s", xe_text(rc));
	}
	r->reply = json_pack("{s:I}", "spi", (json_int_t)spi);
	if (r->reply && all && json_object_set_new(r->reply, "spis", all) < 0) {
		json_decref(r->reply);
		r->reply = NULL;
	} else if (!r->reply) {
		json_decref(all);
	}
	return r->reply ? 0 : ctl_fail(r, -XE_NOMEM, "out of memory");
}

static int do_initial_contact(struct ctl_req *r, json_t *req)
{
	const char *s = json_string_value(json_object_get(req, "peer"));
	struct bw_addr peer;
	int rc;

	if (!s)
		return ctl_fail(r, -XE_BAD_PARAM, "peer: missing (an IPv4 or IPv6 address)");
	if (bw_addr_parse(s, &peer) < 0)
		return ctl_fail(r, -XE_BAD_PARAM, "peer: not an IP address");
	rc = wire_initial_contact(r->s->w, &peer);
	if (rc < 0)
		return ctl_fail(r, rc, "%s", xe_text(rc));
	return 0;
}

static int reply_json(struct ctl_req *r, json_t *j)
{
	r->reply = j;
	return j ? 0 : ctl_fail(r, -XE_NOMEM, "out of memory");
}

static int do_stats(struct ctl_req *r, json_t *req)
{
	(void)req;
	return reply_json(r, wire_stats_json(r->s->w));
}

static int do_config_get(struct ctl_req *r, json_t *req)
{
	(void)req;
	return reply_json(r, wire_config_json(r->s->w));
}

static int do_sa_list(struct ctl_req *r, json_t *req)
{
	(void)req;
	return reply_json(r, wire_sa_list_json(r->s->w));
}

/* A whole configuration, as bitwd keeps it: validated completely before anything changes. */
static int do_config_set(struct ctl_req *r, json_t *req)
{
	struct wire_config cfg = { 0 };
	char err[512];
	int rc;

	rc = config_from_json(req, &cfg, err, sizeof err);
	if (rc == 0)
		rc = config_validate(&cfg, err, sizeof err);
	if (rc == 0)
		rc = wire_reload(r->s->w, &cfg, err, sizeof err);
	config_free(&cfg);
	if (rc < 0)
		return ctl_fail(r, rc, "%s", err);
	return 0;
}

/* IKE_SEND is binary: struct ctl_ike_dgram, then the UDP payload. */
static int do_ike_send(struct ctl_req *r)
{
	struct ctl_ike_dgram d;
	uint32_t dlen;
	int rc;

	if (r->len < sizeof d)
		return ctl_fail(r, -XE_BAD_MESSAGE, "IKE_SEND: payload shorter than struct ctl_ike_dgram");
	memcpy(&d, r->payload, sizeof d);
	dlen = r->len - (uint32_t)sizeof d;
	if (d.family != 4 && d.family != 6)
		return ctl_fail(r, -XE_BAD_PARAM, "family: must be 4 or 6");
	if (d.sport == 0 || d.dport == 0)
		return ctl_fail(r, -XE_BAD_PARAM, "port: must not be 0");
	if (dlen == 0 || dlen > CTL_IKE_MAX)
		return ctl_fail(r, -XE_BAD_PARAM, "data: length %" PRIu32 " not in 1..%d", dlen, CTL_IKE_MAX);
	rc = wire_ike_send(r->s->w, &d, r->payload + sizeof d, dlen);
	if (rc < 0)
		return ctl_fail(r, rc, "%s", xe_text(rc));
	return 0;
}

typedef int (*ctl_handler)(struct ctl_req *r, json_t *req);

struct ctl_op {
	ctl_handler fn;
	const char *const *fields;  /* NULL-terminated: what the request object may hold */
};

#define FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NO_FIELDS ((const char *const[]){ NULL })

static const struct ctl_op ctl_ops[] = {
	[CTL_HELLO] = { do_hello, FIELDS("version", "name") },
	[CTL_SPD_SET] = { do_spd_set, FIELDS("policies", "default_action") },
	[CTL_SA_ADD] = { do_sa_add, FIELDS("sa", "sas") },
	[CTL_SA_DEL] = { do_sa_del, FIELDS("spi", "direction", "dir", "protocol") },
	[CTL_SA_FLUSH] = { do_sa_flush, FIELDS("policy") },
	[CTL_GET_SPI] = { do_get_spi, FIELDS("count") },
	[CTL_INITIAL_CONTACT] = { do_initial_contact, FIELDS("peer") },
	[CTL_STATS] = { do_stats, NO_FIELDS },
	[CTL_CONFIG_GET] = { do_config_get, NO_FIELDS },
	[CTL_SA_LIST] = { do_sa_list, NO_FIELDS },
	[CTL_CONFIG_SET] = { do_config_set, FIELDS("ports", "options", "policies", "sas") },
};

static const struct ctl_op *ctl_op_find(uint16_t type)
{
	if (type >= sizeof ctl_ops / sizeof ctl_ops[0] || !ctl_ops[type].fn)
		return NULL;
	return &ctl_ops[type];
}

/* Keys in an SA_ADD request are wiped before jansson frees them. */
static void wipe_request_keys(uint16_t type, json_t *req)
{
	json_t *arr = json_object_get(req, "sas"), *v;
	size_t i;

	if (type != CTL_SA_ADD && type != CTL_CONFIG_SET)
		return;
	if (json_is_object(json_object_get(req, "sa")))
		wipe_json_keys(json_object_get(req, "sa"));
	json_array_foreach(arr, i, v)
		if (json_is_object(v))
			wipe_json_keys(v);
}

static int ctl_dispatch_json(struct ctl_req *r, const struct ctl_op *op)
{
	json_error_t jerr;
	json_t *req;
	int rc;

	if (r->len == 0)
		req = json_object();
	else
		req = json_loadb((const char *)r->payload, r->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req)
		return r->len == 0 ? ctl_fail(r, -XE_NOMEM, "out of memory")
		                   : ctl_fail(r, -XE_BAD_MESSAGE, "invalid JSON at line %d column %d: %s",
		                              jerr.line, jerr.column, jerr.text);
	if (!json_is_object(req))
		rc = ctl_fail(r, -XE_BAD_MESSAGE, "payload must be a JSON object");
	else
		rc = check_fields(r, req, op->fields);
	if (rc == 0)
		rc = op->fn(r, req);
	wipe_request_keys(r->hdr.type, req);
	json_decref(req);
	return rc;
}

static int ctl_dispatch(struct ctl_req *r)
{
	const struct ctl_op *op;

	if (r->hdr.type == CTL_IKE_SEND)
		return do_ike_send(r);
	op = ctl_op_find(r->hdr.type);
	if (!op)
		return ctl_fail(r, -XE_NOT_SUPPORTED, "type: unknown message type %u", r->hdr.type);
	return ctl_dispatch_json(r, op);
}

/* Room for a message of len bytes without eating into the half of the buffer kept for replies. */
static int client_has_room(const struct ctl_client *c, size_t len)
{
	int queued = 0;

	if (ioctl(c->fd, SIOCOUTQ, &queued) < 0)
		return 1;
	return (size_t)queued + len <= (size_t)c->sndbuf / 2;
}

static ssize_t send_iov(int fd, struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	ssize_t rc;

	do
		rc = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (rc < 0 && errno == EINTR);
	return rc;
}

static ssize_t send_msg(int fd, uint16_t type, uint16_t flags, uint32_t seq, int32_t status,
                        const void *a, size_t alen, const void *b, size_t blen)
{
	struct ctl_hdr h = { .type = type, .flags = flags, .seq = seq, .len = (uint32_t)(alen + blen), .status = status };
	struct iovec iov[3] = { { &h, sizeof h }, { (void *)a, alen }, { (void *)b, blen } };

	return send_iov(fd, iov, 3);
}

static json_t *error_payload(int status, const char *msg)
{
	json_t *j;
	size_t flen;

	if (!msg[0])
		msg = xe_text(status);
	j = json_pack("{s:s}", "error", msg);
	flen = err_field_len(msg);
	if (j && flen)
		json_object_set_new(j, "field", json_stringn(msg, flen));
	return j;
}

/* A reply never blocks the control thread: a client that does not read loses it (and is told nothing). */
static void ctl_reply(struct ctl_server *s, int fd, struct ctl_req *r, int status)
{
	json_t *body = status < 0 ? error_payload(status, r->err) : r->reply;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	const char *out = text ? text : "{}";
	size_t len = strlen(out);
	ssize_t rc;

	if (len + sizeof(struct ctl_hdr) > CTL_MAX_MSG) {
		status = -XE_NOMEM;
		out = "{\"error\":\"reply larger than the control message limit\"}";
		len = strlen(out);
	}
	rc = send_msg(fd, r->hdr.type, CTL_F_REPLY, r->hdr.seq, status, out, len, NULL, 0);
	if (rc < 0 && errno == EMSGSIZE) {
		out = "{\"error\":\"reply larger than the socket buffer\"}";
		rc = send_msg(fd, r->hdr.type, CTL_F_REPLY, r->hdr.seq, -XE_NOMEM, out, strlen(out), NULL, 0);
	}
	if (rc < 0 && errno != EPIPE && errno != ECONNRESET) {
		s->replies_lost++;
		wlog(WLOG_WARN, "ctl: reply to %s seq %" PRIu32 " lost: %s", ctl_type_name(r->hdr.type), r->hdr.seq,
		     strerror(errno));
	}
	free(text);
	if (body != r->reply)
		json_decref(body);
	json_decref(r->reply);
	r->reply = NULL;
}

/* Framing checks: everything about the datagram that is wrong before its payload is read. */
static int ctl_check_frame(struct ctl_req *r, size_t n, int truncated)
{
	if (n < sizeof r->hdr)
		return ctl_fail(r, -XE_BAD_MESSAGE, "truncated header: %zu bytes, need %zu", n, sizeof r->hdr);
	if (truncated)
		return ctl_fail(r, -XE_BAD_MESSAGE, "message larger than %u bytes", CTL_MAX_MSG);
	if (r->hdr.len > CTL_MAX_MSG - sizeof r->hdr)
		return ctl_fail(r, -XE_BAD_MESSAGE, "len: %" PRIu32 " exceeds the maximum %zu", r->hdr.len,
		                CTL_MAX_MSG - sizeof r->hdr);
	if (r->hdr.len != n - sizeof r->hdr)
		return ctl_fail(r, -XE_BAD_MESSAGE, "len: header says %" PRIu32 " bytes, datagram carries %zu", r->hdr.len,
		                n - sizeof r->hdr);
	if (r->hdr.flags & (CTL_F_REPLY | CTL_F_EVENT))
		return ctl_fail(r, -XE_BAD_MESSAGE, "flags: a request must not carry REPLY or EVENT");
	return 0;
}

static void ctl_serve_one(struct ctl_server *s, int fd, size_t n, int truncated)
{
	struct ctl_req r = { .s = s };
	int status;

	if (n >= sizeof r.hdr)
		memcpy(&r.hdr, s->rx, sizeof r.hdr);
	status = ctl_check_frame(&r, n, truncated);
	if (status == 0) {
		r.payload = s->rx + sizeof r.hdr;
		r.len = r.hdr.len;
		status = ctl_dispatch(&r);
	}
	/* Never the payload: SA_ADD carries keys. */
	wlog_debug("ctl: %s seq %" PRIu32 " len %zu -> %s", ctl_type_name(r.hdr.type), r.hdr.seq, n, xe_name(status));
	ctl_reply(s, fd, &r, status);
	OPENSSL_cleanse(s->rx, n < CTL_MAX_MSG ? n : CTL_MAX_MSG);
}

static void client_close(struct ctl_server *s, struct ctl_client *c)
{
	wlog(WLOG_INFO, "ctl: client %d disconnected", (int)(c - s->cl));
	close(c->fd);
	c->fd = -1;
}

/* recv returns 0 both for EOF and for an empty datagram; only a hang-up is EOF. */
static int peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

static void client_serve(struct ctl_server *s, struct ctl_client *c)
{
	for (int i = 0; i < CTL_BURST && c->fd >= 0; i++) {
		struct iovec iov = { s->rx, CTL_MAX_MSG };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 || (n == 0 && peer_gone(c->fd))) {
			client_close(s, c);
			return;
		}
		ctl_serve_one(s, c->fd, (size_t)n, (m.msg_flags & MSG_TRUNC) || (size_t)n > CTL_MAX_MSG);
	}
}

static void client_tune(struct ctl_client *c)
{
	int want = (int)CTL_MAX_MSG * 2;
	socklen_t sl = sizeof c->sndbuf;

	/* Large replies (CONFIG_GET of a big SPD) need a large send buffer; FORCE works with CAP_NET_ADMIN. */
	if (setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) < 0)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
	if (getsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &c->sndbuf, &sl) < 0)
		c->sndbuf = 0;
}

static void accept_clients(struct ctl_server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int i;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				wlog(WLOG_WARN, "ctl: accept: %s", strerror(errno));
			return;
		}
		for (i = 0; i < CTL_MAX_CLIENTS && s->cl[i].fd >= 0; i++)
			;
		if (i == CTL_MAX_CLIENTS) {
			wlog(WLOG_WARN, "ctl: %d clients already connected, refusing another", CTL_MAX_CLIENTS);
			close(fd);
			continue;
		}
		s->cl[i].fd = fd;
		client_tune(&s->cl[i]);
		wlog(WLOG_INFO, "ctl: client %d connected", i);
	}
}

void ctl_server_handle(struct ctl_server *s, int fd)
{
	if (!s || fd < 0)
		return;
	if (fd == s->listen_fd) {
		accept_clients(s);
		return;
	}
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (s->cl[i].fd == fd) {
			client_serve(s, &s->cl[i]);
			return;
		}
}

int ctl_server_fds(struct ctl_server *s, int *fds, int max)
{
	int n = 0;

	if (n < max)
		fds[n++] = s->listen_fd;
	for (int i = 0; i < CTL_MAX_CLIENTS && n < max; i++)
		if (s->cl[i].fd >= 0)
			fds[n++] = s->cl[i].fd;
	return n;
}

/* Events go to every client that has room; a slow client loses events, never the control thread's time. */
static void broadcast(struct ctl_server *s, uint16_t type, const void *a, size_t alen, const void *b, size_t blen)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &s->cl[i];

		if (c->fd < 0)
			continue;
		if (!client_has_room(c, sizeof(struct ctl_hdr) + alen + blen) ||
		    send_msg(c->fd, type, CTL_F_EVENT, 0, 0, a, alen, b, blen) < 0) {
			s->events_lost++;
			wlog_debug("ctl: %s event to client %d lost (%" PRIu64 " lost so far)", ctl_type_name(type), i,
			           s->events_lost);
		}
	}
}

void ctl_server_event(struct ctl_server *s, uint16_t type, struct json_t *payload)
{
	char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;

	json_decref(payload);
	if (!s)
		goto out;
	if (payload && !text) {
		s->events_lost++;
		goto out;
	}
	wlog_debug("ctl: event %s", ctl_type_name(type));
	broadcast(s, type, text ? text : "{}", strlen(text ? text : "{}"), NULL, 0);
out:
	free(text);
}

void ctl_server_ike_recv(struct ctl_server *s, const struct ctl_ike_dgram *d, const uint8_t *data, uint32_t len)
{
	if (!s)
		return;
	wlog_debug("ctl: event IKE_RECV len %" PRIu32, len);
	broadcast(s, CTL_EV_IKE_RECV, d, sizeof *d, data, len);
}

uint64_t ctl_server_events_lost(const struct ctl_server *s)
{
	return s->events_lost;
}

/* A socket file nobody listens on is left over from a crash: replace it. A live one is not ours to take. */
static int clear_stale_socket(const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", sa->sun_path, strerror(errno)), -XE_IO);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s: exists and is not a socket", sa->sun_path);
		return -XE_IO;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -XE_IO;
	}
	rc = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
	close(fd);
	if (rc == 0) {
		snprintf(err, errlen, "%s: another bitw-wire is listening there", sa->sun_path);
		return -XE_IO;
	}
	if (unlink(sa->sun_path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: cannot remove stale socket: %s", sa->sun_path, strerror(errno));
		return -XE_IO;
	}
	return 0;
}

static int ctl_listen(struct ctl_server *s, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int rc;

	memcpy(sa.sun_path, s->path, sizeof sa.sun_path);
	if (clear_stale_socket(&sa, err, errlen) < 0)
		return -XE_IO;
	s->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -XE_IO;
	}
	/* The umask closes the window between bind and chmod in which others could connect. */
	old = umask(0117);
	rc = bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc < 0 || chmod(s->path, 0660) < 0 || listen(s->listen_fd, CTL_MAX_CLIENTS) < 0) {
		snprintf(err, errlen, "%s: %s", s->path, strerror(errno));
		return -XE_IO;
	}
	return 0;
}

struct ctl_server *ctl_server_new(const char *path, struct wire *w, char *err, size_t errlen)
{
	struct ctl_server *s;

	if (!path || !path[0] || strlen(path) >= sizeof s->path) {
		snprintf(err, errlen, "control socket path empty or longer than %zu bytes", sizeof s->path - 1);
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s || !(s->rx = malloc(CTL_MAX_MSG))) {
		snprintf(err, errlen, "out of memory");
		free(s);
		return NULL;
	}
	s->w = w;
	s->listen_fd = -1;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		s->cl[i].fd = -1;
	snprintf(s->path, sizeof s->path, "%s", path);
	if (ctl_listen(s, err, errlen) < 0) {
		if (s->listen_fd >= 0)
			close(s->listen_fd);
		free(s->rx);
		free(s);
		return NULL;
	}
	wlog(WLOG_INFO, "ctl: listening on %s", s->path);
	return s;
}

void ctl_server_free(struct ctl_server *s)
{
	if (!s)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (s->cl[i].fd >= 0)
			close(s->cl[i].fd);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	OPENSSL_cleanse(s->rx, CTL_MAX_MSG);
	free(s->rx);
	free(s);
}
