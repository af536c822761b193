/* bitwctl.c: the command-line client of bitwd: the seed's verbs (policy, sa, netstat, config...) over the REST API. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#ifndef BITW_VERSION
#define BITW_VERSION "unknown"
#endif

/* Exit codes: scripts tell "the server said no" from "no server" from "stored, but the wire did not take it yet". */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,        /* the server refused (its problem is printed), or a local file is unusable */
	EXIT_CONNECT = 2,     /* no connection, TLS failure */
	EXIT_UNAPPLIED = 3,   /* stored in bitwd's database; bitw-wire applies it when it is back */
	EXIT_USAGE = 64,
};

#define API "/api/v1"
#define DEFAULT_URL "https://127.0.0.1:8443"
#define PAGE_LIMIT 1000
#define MAX_POS 64
#define MAX_OPTS 64
#define REQUEST_TIMEOUT_S 120L

static const char usage_text[] =
	"usage: bitwctl [options] VERB ...\n"
	"\n"
	"Connection (options may come anywhere on the line):\n"
	"  --url URL              bitwd's address (env BITW_URL; default " DEFAULT_URL ")\n"
	"  --token-file F         bearer token from file F ('-' = stdin); else env BITW_TOKEN\n"
	"  --user U --password-file F   log in as U (password from F) for this call\n"
	"  --cacert F             trust bitwd's certificate F (the one it generated)\n"
	"  --insecure             do not verify the TLS certificate (for tests only)\n"
	"  --json                 print the server's JSON instead of tables\n"
	"\n"
	"Verbs:\n"
	"  policy add NAME --action protect|bypass|discard [--src S] [--dst D] [--src-port P]\n"
	"             [--dst-port P] [--proto P] [--priority N] [--peer ADDR] [--direction out|in|both]\n"
	"             [--mode tunnel|transport] [--sa-type esp|ah|ahesp] [--clone none|src|dst]\n"
	"             [--mss-clamp yes|no] [--ecn yes|no] [--df clear|set|copy] [--pad-check yes|no]\n"
	"             [--tfc-pad N] [--dummy-interval-ms N] [--icv-96 yes|no] [--ike-peer PEER]\n"
	"             [--esp-proposals P] [--ah-proposals P] [--child-lifetime S]\n"
	"  policy add --file F.json        (a policy object, docs/config.md; flags override it)\n"
	"  policy set ID|NAME [the flags of policy add] [--file F.json]   (changes only what is given)\n"
	"  policy del ID|NAME              (deletes its manual SAs too)\n"
	"  policy list | policy show ID|NAME | policy reorder ID|NAME...\n"
	"  sa add --file F.json [--protocol esp|ah] [--clone-host ADDR]\n"
	"                                  (an SA object or an array; keys only ever from files; flags override)\n"
	"  sa del ID | sa flush [--policy NAME] | sa list [--policy NAME] [--direction in|out]\n"
	"  sad [--policy NAME] [--direction in|out]   the live SAD of bitw-wire, with counters\n"
	"  netstat                         ports, policies, SAs with counters, drops\n"
	"  port show [red|black]\n"
	"  port set red|black [--interface I] [--mtu N] [--address A/P]... [--gateway4 G]\n"
	"           [--gateway6 G] [--router-mac M] [--file F.json]   ('' removes a field)\n"
	"  config export [-o FILE] | config import FILE\n"
	"  events [--count N] [--type T] [--after ID]  follow new events, one line each (\"ID TYPE DATA\");\n"
	"                                  --after replays the backlog after ID first (0 = all of it)\n"
	"  user list | user add NAME --new-password-file F [--role admin|readonly]\n"
	"  user del ID|NAME | user passwd [ID|NAME] --new-password-file F\n"
	"  token list [--all] | token create NAME [--expires S[smhd]] | token del ID\n"
	"  peer list | peer show ID|NAME | peer del ID|NAME\n"
	"  peer add NAME --address A [--psk-file F] [--auth psk|pubkey] [--cert C] [--ca C] [--local A]\n"
	"           [--local-id I] [--remote-id I] [--ike-proposals P] [--esp-proposals P]\n"
	"           [--start always|traffic|never] [--dpd-interval S] [--dpd-action clear|hold|restart]\n"
	"           [--force-encap yes|no] [--file F.json]     (an IKE peer; the PSK only ever from a file)\n"
	"  peer set ID|NAME [the same flags]\n"
	"  ike list | ike initiate PEER | ike rekey ID [--spi-in SPI] | ike terminate ID\n"
	"  cert list | cert add NAME --pem F [--key-file F] | cert del ID|NAME | cert verify ID|NAME\n"
	"  admin-state [secure|bypass|drop]   show or set the box's state: bypass passes everything\n"
	"                                  in clear text, drop passes nothing\n"
	"  health | whoami\n"
	"\n"
	"Exit status: 0 done; 1 the server refused (its message on stderr) or a file is unusable;\n"
	"2 cannot connect or TLS failed; 3 stored by bitwd but not applied (bitw-wire down); 64 usage.\n";

/* ---- small helpers ---- */

static void wipe(void *p, size_t n)
{
	if (p)
		explicit_bzero(p, n);
}

static void free_secret(char *s)
{
	if (s) {
		wipe(s, strlen(s));
		free(s);
	}
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d) {
		fputs("bitwctl: out of memory\n", stderr);
		exit(EXIT_FAIL);
	}
	return d;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, f);
	n = vasprintf(&s, f, ap);
	va_end(ap);
	if (n < 0) {
		fputs("bitwctl: out of memory\n", stderr);
		exit(EXIT_FAIL);
	}
	return s;
}

static bool all_digits(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* A whole file (or stdin for "-"), NUL-terminated; the caller wipes it when it held secrets. */
static char *read_file(const char *path, size_t *len_out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t cap = 4096, len = 0;
	char *buf;

	if (!f) {
		fprintf(stderr, "error: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(cap);
	while (buf) {
		len += fread(buf + len, 1, cap - len - 1, f);
		if (len < cap - 1)
			break;
		/* Grown by hand rather than realloc so an old copy of a key is never left behind unwiped. */
		char *bigger = malloc(cap * 2);
		if (bigger)
			memcpy(bigger, buf, len);
		wipe(buf, cap);
		free(buf);
		buf = bigger;
		cap *= 2;
	}
	if (!buf || ferror(f)) {
		fprintf(stderr, "error: cannot read %s: %s\n", path, buf ? strerror(errno) : "out of memory");
		if (buf)
			wipe(buf, cap);
		free(buf);
		buf = NULL;
	} else {
		buf[len] = '\0';
		if (len_out)
			*len_out = len;
	}
	if (f != stdin)
		fclose(f);
	return buf;
}

/* The first line of a secret file, without surrounding blanks; NULL after printing why. */
static char *read_secret(const char *path)
{
	size_t len = 0;
	char *buf = read_file(path, &len), *start, *end, *out;

	if (!buf)
		return NULL;
	start = buf + strspn(buf, " \t");
	end = start + strcspn(start, "\r\n");
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	out = strndup(start, (size_t)(end - start));
	wipe(buf, len);
	free(buf);
	if (out && !*out) {
		fprintf(stderr, "error: %s is empty\n", path);
		free(out);
		return NULL;
	}
	return out;
}

/* A number where the schema wants one; anything else goes as text, for the server to name what is wrong. */
static json_t *number_or_text(const char *s)
{
	return all_digits(s) && strlen(s) < 18 ? json_integer(strtoll(s, NULL, 10)) : json_string(s);
}

/* Overwrite the key strings of an SA object before it is freed (jansson frees without wiping). */
static void wipe_sa_keys(json_t *sa)
{
	static const char *const keys[] = { "enc_key", "integ_key" };

	for (size_t i = 0; i < 2; i++) {
		json_t *k = json_object_get(sa, keys[i]);

		if (json_is_string(k))
			wipe((char *)json_string_value(k), json_string_length(k));
	}
}

/* ---- command line ---- */

struct opt {
	const char *name, *val;
};

struct args {
	const char *pos[MAX_POS];
	int npos;
	struct opt opt[MAX_OPTS];
	int nopt;
};

static const char *const value_opts[] = {
	"url", "token-file", "user", "password-file", "cacert", "file", "output", "action", "src", "dst",
	"src-port", "dst-port", "proto", "priority", "peer", "direction", "policy", "interface", "mtu", "address",
	"gateway4", "gateway6", "router-mac", "count", "type", "after", "role", "new-password-file", "expires",
	"local", "local-id", "remote-id", "auth", "psk-file", "cert", "ca", "ike-proposals", "esp-proposals", "start",
	"dpd-interval", "dpd-action", "force-encap", "spi-in", "pem", "key-file", "mode", "sa-type", "clone",
	"mss-clamp", "ecn", "df", "pad-check", "tfc-pad", "dummy-interval-ms", "icv-96", "ike-peer", "ah-proposals",
	"child-lifetime", "protocol", "clone-host", NULL
};
static const char *const flag_opts[] = { "json", "insecure", "all", "help", "version", NULL };
static const char global_opts[] = " url token-file user password-file cacert json insecure help version ";

static bool in_list(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

static int usage_error(const char *f, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *f, ...)
{
	va_list ap;

	fputs("bitwctl: ", stderr);
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	fputs("\n(bitwctl --help for usage)\n", stderr);
	return EXIT_USAGE;
}

static int add_opt(struct args *a, const char *name, const char *val)
{
	if (a->nopt == MAX_OPTS)
		return usage_error("too many options");
	a->opt[a->nopt++] = (struct opt){ name, val };
	return 0;
}

/* "--name value", "--name=value", "-o FILE", "-h"; "--" ends the options. Options may come anywhere. */
static int parse_args(int argc, char **argv, struct args *a)
{
	bool options = true;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i], *name, *eq;

		if (options && strcmp(arg, "--") == 0) {
			options = false;
			continue;
		}
		if (!options || arg[0] != '-' || arg[1] == '\0') {
			if (a->npos == MAX_POS)
				return usage_error("too many arguments");
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "-o") == 0) {
			name = arg[1] == 'h' ? "help" : "output";
		} else if (arg[1] == '-') {
			name = arg + 2;
		} else {
			return usage_error("unknown option %s", arg);
		}
		if ((eq = strchr(name, '=')) != NULL) {
			*eq = '\0';
			if (!in_list(value_opts, name))
				return usage_error("option --%s takes no value", name);
			if (add_opt(a, name, eq + 1))
				return EXIT_USAGE;
		} else if (in_list(flag_opts, name)) {
			if (add_opt(a, name, "1"))
				return EXIT_USAGE;
		} else if (in_list(value_opts, name)) {
			if (i + 1 >= argc)
				return usage_error("option %s needs a value", arg);
			if (add_opt(a, name, argv[++i]))
				return EXIT_USAGE;
		} else {
			return usage_error("unknown option %s", arg);
		}
	}
	return 0;
}

static const char *opt_get(const struct args *a, const char *name)
{
	const char *v = NULL;

	for (int i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, name) == 0)
			v = a->opt[i].val;
	return v;
}

static bool word_in(const char *words, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = strstr(words, w); p; p = strstr(p + 1, w))
		if ((p == words || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

/* The verb's own options are `allowed` (space-separated); anything else but the globals is a usage error. */
static int verb_opts(const struct args *a, const char *verb, const char *allowed)
{
	for (int i = 0; i < a->nopt; i++)
		if (!word_in(global_opts, a->opt[i].name) && !word_in(allowed, a->opt[i].name))
			return usage_error("%s does not take --%s", verb, a->opt[i].name);
	return 0;
}

/* Positionals after the verb words: exactly between min and max of them. */
static int verb_args(const struct args *a, int first, int min, int max, const char *verb)
{
	int n = a->npos - first;

	if (n < min)
		return usage_error("%s: missing argument", verb);
	if (max >= 0 && n > max)
		return usage_error("%s: unexpected argument \"%s\"", verb, a->pos[first + max]);
	return 0;
}

/* ---- HTTP ---- */

struct ctl {
	CURL *curl;
	char *base;                 /* the URL without a trailing slash */
	bool json;
	char *token;                /* bearer token (secret) */
	const char *user, *password_file;
	char *csrf;                 /* from the login reply; sent on writes of a cookie session */
	bool session;
	char errbuf[CURL_ERROR_SIZE];
};

struct buf {
	char *p;
	size_t len, cap;
};

/* Replies may carry a token (token create): grown by hand and wiped, never realloc'd with a copy left behind. */
static bool buf_add(struct buf *b, const char *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(p = malloc(cap)))
			return false;
		if (b->p) {
			memcpy(p, b->p, b->len);
			wipe(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

static void buf_free(struct buf *b)
{
	if (b->p)
		wipe(b->p, b->cap);
	free(b->p);
	*b = (struct buf){ 0 };
}

static size_t collect(char *data, size_t size, size_t n, void *user)
{
	return buf_add(user, data, size * n) ? size * n : 0;
}

struct reply {
	long status;
	struct buf body;
};

static void wipe_header_list(struct curl_slist *h)
{
	for (struct curl_slist *p = h; p; p = p->next)
		wipe(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

static struct curl_slist *request_headers(struct ctl *c, const char *method, bool has_body)
{
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");

	h = curl_slist_append(h, "Expect:");
	if (has_body)
		h = curl_slist_append(h, "Content-Type: application/json");
	if (c->token) {
		char *auth = fmt("Authorization: Bearer %s", c->token);
		h = curl_slist_append(h, auth);
		free_secret(auth);
	}
	/* The CSRF header is what makes a cookie session's write deliberate (bitwd checks it on every write). */
	if (c->session && c->csrf && strcmp(method, "GET") != 0) {
		char *csrf = fmt("X-Bitw-CSRF: %s", c->csrf);
		h = curl_slist_append(h, csrf);
		free(csrf);
	}
	return h;
}

/* One request; 0 with the status and body, or EXIT_CONNECT after saying why there is no answer. */
static int http_do(struct ctl *c, const char *method, const char *path, const char *body, size_t len,
                   curl_write_callback sink, void *sink_data, long *status)
{
	struct curl_slist *h;
	char *url = fmt("%s%s", c->base, path);
	CURLcode rc;

	if (!body && strcmp(method, "POST") == 0)
		body = "";   /* else curl would send a GET */
	h = request_headers(c, method, body != NULL);

	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	if (body) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	}
	bool custom = strcmp(method, "GET") && strcmp(method, "POST");
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, custom ? method : NULL);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, sink_data);
	c->errbuf[0] = '\0';
	rc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
	wipe_header_list(h);
	free(url);
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && *status))
		return 0;
	fprintf(stderr, "error: cannot reach %s: %s\n", c->base, c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
	return EXIT_CONNECT;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The server's problem+json as it said it: "error: <detail> (field: x, code: Y)". */
static void print_problem(const char *prefix, long status, const struct buf *body)
{
	json_t *p = body->p ? json_loadb(body->p, body->len, 0, NULL) : NULL;
	const char *detail = jstr(p, "detail"), *field = jstr(p, "field"), *code = jstr(p, "code");

	if (!detail)
		detail = jstr(p, "title");
	if (detail) {
		fprintf(stderr, "%s: %s (", prefix, detail);
		if (field && *field)
			fprintf(stderr, "field: %s, ", field);
		fprintf(stderr, "code: %s)\n", code ? code : "?");
	} else {
		int n = body->p ? (int)strcspn(body->p, "\r\n") : 0;
		fprintf(stderr, "%s: HTTP %ld%s%.*s\n", prefix, status, n ? ": " : "", n > 200 ? 200 : n,
		        body->p ? body->p : "");
	}
	json_decref(p);
}

/*
 * The meaning of an answer: 0 with *out (NULL for no content) on 2xx;
 * EXIT_UNAPPLIED with the stored result when bitwd kept the change but
 * bitw-wire was not there to take it; otherwise EXIT_FAIL after printing
 * the server's problem.
 */
static int interpret(long status, struct buf *body, json_t **out)
{
	json_t *j = NULL;

	if (body->len) {
		json_error_t e;
		j = json_loadb(body->p, body->len, 0, &e);
	}
	if (status >= 200 && status < 300) {
		if (body->len && !j) {
			fprintf(stderr, "error: the server's answer is not JSON (HTTP %ld)\n", status);
			return EXIT_FAIL;
		}
		if (out)
			*out = j;
		else
			json_decref(j);
		return EXIT_OK;
	}
	if (status == 503 && json_is_true(json_object_get(j, "stored"))) {
		print_problem("warning: stored, not applied", status, body);
		if (out && json_object_get(j, "result"))
			*out = json_incref(json_object_get(j, "result"));
		json_decref(j);
		return EXIT_UNAPPLIED;
	}
	json_decref(j);
	print_problem("error", status, body);
	return EXIT_FAIL;
}

static int call_raw(struct ctl *c, const char *method, const char *path, const char *body, size_t len,
                    json_t **out);

/* A cookie session for --user: the password is read, sent once and wiped; the CSRF token is kept for writes. */
static int login(struct ctl *c)
{
	char *password, *text;
	json_t *req, *rep = NULL;
	int rc;

	if (!c->password_file) {
		fputs("error: --user needs --password-file\n", stderr);
		return EXIT_USAGE;
	}
	if (!(password = read_secret(c->password_file)))
		return EXIT_FAIL;
	req = json_pack("{s:s, s:s}", "user", c->user, "password", password);
	text = json_dumps(req, JSON_COMPACT);
	free_secret(password);
	json_t *pw = json_object_get(req, "password");
	wipe((char *)json_string_value(pw), json_string_length(pw));
	json_decref(req);
	c->session = true;   /* from here on a cookie, whatever the answer */
	rc = call_raw(c, "POST", API "/login", text, text ? strlen(text) : 0, &rep);
	free_secret(text);
	if (rc == EXIT_OK)
		c->csrf = xstrdup(jstr(rep, "csrf"));
	json_decref(rep);
	return rc;
}

static int call_raw(struct ctl *c, const char *method, const char *path, const char *body, size_t len,
                    json_t **out)
{
	struct reply r = { 0 };
	int rc;

	if (out)
		*out = NULL;
	if (c->user && !c->session && (rc = login(c)) != EXIT_OK)
		return rc;
	rc = http_do(c, method, path, body, len, collect, &r.body, &r.status);
	if (rc == EXIT_OK)
		rc = interpret(r.status, &r.body, out);
	buf_free(&r.body);
	return rc;
}

/* A JSON request. Bodies may hold keys: the serialised text is wiped. */
static int call(struct ctl *c, const char *method, const char *path, json_t *body, json_t **out)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	if (body && !text) {
		fputs("error: cannot encode the request\n", stderr);
		return EXIT_FAIL;
	}
	rc = call_raw(c, method, path, text, text ? strlen(text) : 0, out);
	free_secret(text);
	return rc;
}

/* Every item of a paged list ({"items", "total"}), following offsets; path may carry a query already. */
static int get_all(struct ctl *c, const char *path, json_t **items_out)
{
	json_t *items = json_array();
	int64_t offset = 0, total;
	int rc;

	*items_out = NULL;
	do {
		char *p = fmt("%s%soffset=%" PRId64 "&limit=%d", path, strchr(path, '?') ? "&" : "?", offset,
		              PAGE_LIMIT);
		json_t *page = NULL;

		rc = call(c, "GET", p, NULL, &page);
		free(p);
		if (rc) {
			json_decref(items);
			return rc;
		}
		json_t *got = json_object_get(page, "items");
		total = json_integer_value(json_object_get(page, "total"));
		json_array_extend(items, got);
		offset += (int64_t)json_array_size(got);
		json_decref(page);
		if (!json_array_size(got))
			break;
	} while (offset < total);
	*items_out = items;
	return EXIT_OK;
}

/* ---- output ---- */

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (s)
		puts(s);
	free(s);
}

/* A value as a table cell: strings as they are, numbers, yes/no, "-" for nothing. */
static char *cell(json_t *v)
{
	if (!v || json_is_null(v))
		return xstrdup("-");
	if (json_is_string(v))
		return xstrdup(json_string_value(v)[0] ? json_string_value(v) : "-");
	if (json_is_integer(v))
		return fmt("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (json_is_real(v))
		return fmt("%g", json_real_value(v));
	if (json_is_boolean(v))
		return xstrdup(json_is_true(v) ? "yes" : "no");
	if (json_is_array(v)) {
		/* Lists of strings (addresses) read best comma-separated. */
		size_t i;
		json_t *x;
		char *s = xstrdup("");
		json_array_foreach(v, i, x) {
			char *one = cell(x), *both = fmt("%s%s%s", s, i ? "," : "", one);
			free(one);
			free(s);
			s = both;
		}
		return s[0] ? s : (free(s), xstrdup("-"));
	}
	char *s = json_dumps(v, JSON_COMPACT);
	return s ? s : xstrdup("?");
}

static char *field(json_t *o, const char *key)
{
	return cell(json_object_get(o, key));
}

static char *spi_cell(json_t *v)
{
	if (json_is_integer(v))
		return fmt("0x%08" PRIx64, (uint64_t)json_integer_value(v));
	return cell(v);
}

static char *time_cell(json_t *v)
{
	time_t t = (time_t)json_integer_value(v);
	char s[32];
	struct tm tm;

	if (t <= 0 || !gmtime_r(&t, &tm))
		return xstrdup("never");
	strftime(s, sizeof s, "%Y-%m-%d %H:%M", &tm);
	return xstrdup(s);
}

struct table {
	int ncol;
	char **cells;               /* row-major, the header row first */
	size_t n, cap;
};

static void table_put(struct table *t, char *owned)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **p = realloc(t->cells, cap * sizeof *p);
		if (!p) {
			fputs("bitwctl: out of memory\n", stderr);
			exit(EXIT_FAIL);
		}
		t->cells = p;
		t->cap = cap;
	}
	t->cells[t->n++] = owned;
}

/* Headers separated by spaces: "ID NAME ACTION". */
static void table_init(struct table *t, const char *headers)
{
	char *copy = xstrdup(headers), *save = NULL;

	*t = (struct table){ 0 };
	for (char *h = strtok_r(copy, " ", &save); h; h = strtok_r(NULL, " ", &save), t->ncol++)
		table_put(t, xstrdup(h));
	free(copy);
}

static void table_print(struct table *t)
{
	size_t w[32] = { 0 };

	for (size_t i = 0; i < t->n; i++) {
		size_t len = strlen(t->cells[i]);
		if (len > w[i % (size_t)t->ncol])
			w[i % (size_t)t->ncol] = len;
	}
	for (size_t i = 0; i < t->n; i++) {
		size_t col = i % (size_t)t->ncol;
		bool last = col + 1 == (size_t)t->ncol;
		printf("%-*s%s", last ? 0 : (int)w[col], t->cells[i], last ? "\n" : "  ");
	}
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->cells[i]);
	free(t->cells);
	*t = (struct table){ 0 };
}

/* One object as "key: value" lines, keys aligned. */
static void print_object(json_t *o)
{
	const char *k;
	json_t *v;
	int w = 0;

	json_object_foreach(o, k, v)
		if ((int)strlen(k) > w)
			w = (int)strlen(k);
	json_object_foreach(o, k, v) {
		char *s = strcmp(k, "spi") == 0 ? spi_cell(v) : cell(v);
		printf("%s:%*s %s\n", k, w - (int)strlen(k), "", s);
		free(s);
	}
}

/* A write's answer: the server's JSON with --json, else `human`; the exit code stays the call's. */
static int show_result(struct ctl *c, int rc, json_t *j, void (*human)(json_t *))
{
	if ((rc == EXIT_OK || rc == EXIT_UNAPPLIED) && j) {
		if (c->json)
			print_json(j);
		else
			human(j);
	}
	json_decref(j);
	return rc;
}

/* ---- policies ---- */

static void policy_rows(json_t *items)
{
	struct table t;
	size_t i;
	json_t *p;

	table_init(&t, "ID PRI NAME ACTION DIR SRC DST PROTO SPORT DPORT PEER");
	json_array_foreach(items, i, p) {
		table_put(&t, field(p, "id"));
		table_put(&t, field(p, "priority"));
		table_put(&t, field(p, "name"));
		table_put(&t, field(p, "action"));
		table_put(&t, field(p, "direction"));
		table_put(&t, field(p, "src"));
		table_put(&t, field(p, "dst"));
		table_put(&t, field(p, "protocol"));
		table_put(&t, field(p, "src_port"));
		table_put(&t, field(p, "dst_port"));
		table_put(&t, field(p, "peer"));
	}
	table_print(&t);
	table_free(&t);
}

static void policy_page_human(json_t *page)
{
	policy_rows(json_object_get(page, "items"));
}

/* ID or NAME to an id: a name is looked up in the collection at path ("policy", API "/policies"). */
static int ref_to_id(struct ctl *c, const char *what, const char *path, const char *ref, int64_t *id)
{
	json_t *items, *o;
	size_t i;
	int rc;

	if (all_digits(ref)) {
		*id = strtoll(ref, NULL, 10);
		return EXIT_OK;
	}
	if ((rc = get_all(c, path, &items)))
		return rc;
	*id = 0;
	json_array_foreach(items, i, o)
		if (jstr(o, "name") && strcmp(jstr(o, "name"), ref) == 0)
			*id = json_integer_value(json_object_get(o, "id"));
	json_decref(items);
	if (*id)
		return EXIT_OK;
	fprintf(stderr, "error: no %s named \"%s\"\n", what, ref);
	return EXIT_FAIL;
}

static int policy_id(struct ctl *c, const char *ref, int64_t *id)
{
	return ref_to_id(c, "policy", API "/policies", ref, id);
}

static json_t *load_json_file(const char *path)
{
	size_t len = 0;
	char *text = read_file(path, &len);
	json_error_t e;
	json_t *j;

	if (!text)
		return NULL;
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	wipe(text, len);
	free(text);
	if (!j)
		fprintf(stderr, "error: %s:%d:%d: %s\n", path, e.line, e.column, e.text);
	return j;
}

#define POLICY_OPTS \
	"file action src dst src-port dst-port proto priority peer direction mode sa-type clone mss-clamp ecn df " \
	"pad-check tfc-pad dummy-interval-ms icv-96 ike-peer esp-proposals ah-proposals child-lifetime"

/* yes|no (or true|false) as a JSON boolean; anything else goes as text, for the server to name the field. */
static json_t *bool_or_text(const char *s)
{
	if (!strcmp(s, "yes") || !strcmp(s, "true"))
		return json_true();
	if (!strcmp(s, "no") || !strcmp(s, "false"))
		return json_false();
	return json_string(s);
}

/* Flags given on the line, as the schema's fields; the server checks the values and names what is wrong. */
static void policy_flags(const struct args *a, json_t *p)
{
	static const char *const text[][2] = {
		{ "action", "action" }, { "src", "src" }, { "dst", "dst" }, { "src-port", "src_port" },
		{ "dst-port", "dst_port" }, { "proto", "protocol" }, { "peer", "peer" }, { "direction", "direction" },
		{ "mode", "mode" }, { "sa-type", "sa_type" }, { "clone", "clone" }, { "df", "df" },
		{ "ike-peer", "ike_peer" }, { "esp-proposals", "esp_proposals" }, { "ah-proposals", "ah_proposals" },
	};
	static const char *const num[][2] = {
		{ "priority", "priority" }, { "tfc-pad", "tfc_pad" }, { "dummy-interval-ms", "dummy_interval_ms" },
		{ "child-lifetime", "child_lifetime" },
	};
	static const char *const flag[][2] = {
		{ "mss-clamp", "mss_clamp" }, { "ecn", "ecn" }, { "pad-check", "pad_check" }, { "icv-96", "icv_96" },
	};

	for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
		if (opt_get(a, text[i][0]))
			json_object_set_new(p, text[i][1], json_string(opt_get(a, text[i][0])));
	for (size_t i = 0; i < sizeof num / sizeof num[0]; i++)
		if (opt_get(a, num[i][0]))
			json_object_set_new(p, num[i][1], number_or_text(opt_get(a, num[i][0])));
	for (size_t i = 0; i < sizeof flag / sizeof flag[0]; i++)
		if (opt_get(a, flag[i][0]))
			json_object_set_new(p, flag[i][1], bool_or_text(opt_get(a, flag[i][0])));
}

static int policy_add(struct ctl *c, const struct args *a)
{
	const char *file = opt_get(a, "file");
	json_t *p, *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "policy add", POLICY_OPTS)) || (rc = verb_args(a, 2, file ? 0 : 1, 1, "policy add")))
		return rc;
	p = file ? load_json_file(file) : json_object();
	if (!p)
		return EXIT_FAIL;
	if (!json_is_object(p)) {
		fprintf(stderr, "error: %s: a policy object is expected\n", file);
		json_decref(p);
		return EXIT_FAIL;
	}
	if (a->npos > 2)
		json_object_set_new(p, "name", json_string(a->pos[2]));
	policy_flags(a, p);
	rc = call(c, "POST", API "/policies", p, &out);
	json_decref(p);
	return show_result(c, rc, out, print_object);
}

/*
 * PUT replaces every field, so set starts from the stored policy (with the
 * file's fields over it) and changes only what the flags name.
 */
static int policy_set(struct ctl *c, const struct args *a)
{
	const char *file = opt_get(a, "file");
	json_t *p = NULL, *given, *out = NULL;
	int64_t id;
	int rc;

	if ((rc = verb_opts(a, "policy set", POLICY_OPTS)) || (rc = verb_args(a, 2, 1, 1, "policy set")) ||
	    (rc = policy_id(c, a->pos[2], &id)))
		return rc;
	char *path = fmt(API "/policies/%" PRId64, id);
	if ((rc = call(c, "GET", path, NULL, &p)) == EXIT_OK && file) {
		if (!(given = load_json_file(file)) || !json_is_object(given)) {
			if (given)
				fprintf(stderr, "error: %s: a policy object is expected\n", file);
			rc = EXIT_FAIL;
		} else {
			json_object_update(p, given);
		}
		json_decref(given);
	}
	if (rc == EXIT_OK) {
		policy_flags(a, p);
		rc = call(c, "PUT", path, p, &out);
		rc = show_result(c, rc, out, print_object);
	} else {
		rc = show_result(c, rc, p, print_object);
		p = NULL;
	}
	json_decref(p);
	free(path);
	return rc;
}

static void policy_deleted_human(json_t *j)
{
	printf("deleted policy %" JSON_INTEGER_FORMAT " and %" JSON_INTEGER_FORMAT " SA(s)\n",
	       json_integer_value(json_object_get(j, "id")), json_integer_value(json_object_get(j, "deleted_sas")));
}

static int policy_del(struct ctl *c, const struct args *a)
{
	json_t *out = NULL;
	int64_t id;
	int rc;

	if ((rc = verb_opts(a, "policy del", "")) || (rc = verb_args(a, 2, 1, 1, "policy del")) ||
	    (rc = policy_id(c, a->pos[2], &id)))
		return rc;
	char *path = fmt(API "/policies/%" PRId64, id);
	rc = call(c, "DELETE", path, NULL, &out);
	free(path);
	return show_result(c, rc, out, policy_deleted_human);
}

static int policy_list(struct ctl *c, const struct args *a)
{
	json_t *items;
	int rc;

	if ((rc = verb_opts(a, "policy list", "")) || (rc = verb_args(a, 2, 0, 0, "policy list")) ||
	    (rc = get_all(c, API "/policies", &items)))
		return rc;
	if (c->json)
		print_json(items);
	else
		policy_rows(items);
	json_decref(items);
	return EXIT_OK;
}

static int policy_show(struct ctl *c, const struct args *a)
{
	json_t *out = NULL;
	int64_t id;
	int rc;

	if ((rc = verb_opts(a, "policy show", "")) || (rc = verb_args(a, 2, 1, 1, "policy show")) ||
	    (rc = policy_id(c, a->pos[2], &id)))
		return rc;
	char *path = fmt(API "/policies/%" PRId64, id);
	rc = call(c, "GET", path, NULL, &out);
	free(path);
	return show_result(c, rc, out, print_object);
}

static int policy_reorder(struct ctl *c, const struct args *a)
{
	json_t *ids, *body, *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "policy reorder", "")) || (rc = verb_args(a, 2, 1, -1, "policy reorder")))
		return rc;
	ids = json_array();
	for (int i = 2; i < a->npos; i++) {
		int64_t id;
		if ((rc = policy_id(c, a->pos[i], &id))) {
			json_decref(ids);
			return rc;
		}
		json_array_append_new(ids, json_integer(id));
	}
	body = json_pack("{s:o}", "ids", ids);
	rc = call(c, "POST", API "/policies/reorder", body, &out);
	json_decref(body);
	return show_result(c, rc, out, policy_page_human);
}

/* ---- manual SAs and the live SAD ---- */

static void sa_rows(json_t *items)
{
	struct table t;
	size_t i;
	json_t *s;

	table_init(&t, "ID SPI DIR PROTO POLICY PEER LOCAL ENC INTEG ENCAP REPLAY ESN");
	json_array_foreach(items, i, s) {
		table_put(&t, field(s, "id"));
		table_put(&t, spi_cell(json_object_get(s, "spi")));
		table_put(&t, field(s, "direction"));
		table_put(&t, field(s, "protocol"));
		table_put(&t, field(s, "policy"));
		table_put(&t, field(s, "peer"));
		table_put(&t, field(s, "local"));
		table_put(&t, field(s, "enc"));
		table_put(&t, field(s, "integ"));
		table_put(&t, field(s, "encap"));
		table_put(&t, field(s, "replay_window"));
		table_put(&t, field(s, "esn"));
	}
	table_print(&t);
	table_free(&t);
}

static void sa_added_human(json_t *sa)
{
	char *spi = spi_cell(json_object_get(sa, "spi"));

	printf("added SA %" JSON_INTEGER_FORMAT ": spi %s %s, policy %s\n",
	       json_integer_value(json_object_get(sa, "id")),
	       spi, jstr(sa, "direction") ? jstr(sa, "direction") : "?", jstr(sa, "policy") ? jstr(sa, "policy") : "?");
	free(spi);
}

/* Keys are read from the file only: never on the command line, where shell history and ps would keep them. */
static int sa_add(struct ctl *c, const struct args *a)
{
	const char *file = opt_get(a, "file");
	json_t *doc, *sa, *list;
	size_t i;
	int rc, worst = EXIT_OK;

	if ((rc = verb_opts(a, "sa add", "file protocol clone-host")) || (rc = verb_args(a, 2, 0, 0, "sa add")))
		return rc;
	if (!file)
		return usage_error("sa add: --file F.json is required (keys are only read from files)");
	if (!(doc = load_json_file(file)))
		return EXIT_FAIL;
	list = json_is_array(doc) ? json_incref(doc) : json_pack("[O]", doc);
	json_array_foreach(list, i, sa) {
		json_t *out = NULL;
		if (!json_is_object(sa)) {
			fprintf(stderr, "error: %s: SA %zu is not an object\n", file, i);
			worst = EXIT_FAIL;
			break;
		}
		if (opt_get(a, "protocol"))
			json_object_set_new(sa, "protocol", json_string(opt_get(a, "protocol")));
		if (opt_get(a, "clone-host"))
			json_object_set_new(sa, "clone_host", json_string(opt_get(a, "clone-host")));
		rc = call(c, "POST", API "/sas", sa, &out);
		rc = show_result(c, rc, out, sa_added_human);
		if (rc != EXIT_OK && worst != EXIT_FAIL)
			worst = rc;
		if (rc != EXIT_OK && rc != EXIT_UNAPPLIED)
			break;
	}
	json_array_foreach(list, i, sa)
		wipe_sa_keys(sa);
	json_decref(list);
	json_decref(doc);
	return worst;
}

static void sa_deleted_human(json_t *j)
{
	printf("deleted %" JSON_INTEGER_FORMAT " SA(s)\n", json_integer_value(json_object_get(j, "deleted")));
}

static int sa_del(struct ctl *c, const struct args *a)
{
	json_t *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "sa del", "")) || (rc = verb_args(a, 2, 1, 1, "sa del")))
		return rc;
	if (!all_digits(a->pos[2]))
		return usage_error("sa del: an SA id (see sa list), not \"%s\"", a->pos[2]);
	char *path = fmt(API "/sas/%s", a->pos[2]);
	rc = call(c, "DELETE", path, NULL, &out);
	free(path);
	return show_result(c, rc, out, sa_deleted_human);
}

/* "?policy=X&direction=Y" from the flags, escaped; "" when neither. */
static char *sa_query(struct ctl *c, const struct args *a)
{
	const char *policy = opt_get(a, "policy"), *dir = opt_get(a, "direction");
	char *p = policy ? curl_easy_escape(c->curl, policy, 0) : NULL;
	char *d = dir ? curl_easy_escape(c->curl, dir, 0) : NULL;
	char *q = fmt("%s%s%s%s%s%s", p || d ? "?" : "", p ? "policy=" : "", p ? p : "", p && d ? "&" : "",
	              d ? "direction=" : "", d ? d : "");

	curl_free(p);
	curl_free(d);
	return q;
}

static int sa_flush(struct ctl *c, const struct args *a)
{
	json_t *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "sa flush", "policy")) || (rc = verb_args(a, 2, 0, 0, "sa flush")))
		return rc;
	char *q = sa_query(c, a), *path = fmt(API "/sas%s", q);
	rc = call(c, "DELETE", path, NULL, &out);
	free(path);
	free(q);
	return show_result(c, rc, out, sa_deleted_human);
}

static int sa_list(struct ctl *c, const struct args *a)
{
	json_t *items;
	int rc;

	if ((rc = verb_opts(a, "sa list", "policy direction")) || (rc = verb_args(a, 2, 0, 0, "sa list")))
		return rc;
	char *q = sa_query(c, a), *path = fmt(API "/sas%s", q);
	rc = get_all(c, path, &items);
	free(path);
	free(q);
	if (rc)
		return rc;
	if (c->json)
		print_json(items);
	else
		sa_rows(items);
	json_decref(items);
	return EXIT_OK;
}

static void sad_rows(json_t *items)
{
	struct table t;
	size_t i;
	json_t *s;

	table_init(&t, "SPI DIR POLICY PEER LOCAL ENC INTEG STATE AGE PACKETS BYTES ERRORS REPLAY-DROPS AUTH-DROPS");
	json_array_foreach(items, i, s) {
		table_put(&t, spi_cell(json_object_get(s, "spi")));
		table_put(&t, field(s, "direction"));
		table_put(&t, field(s, "policy"));
		table_put(&t, field(s, "peer"));
		table_put(&t, field(s, "local"));
		table_put(&t, field(s, "enc"));
		table_put(&t, field(s, "integ"));
		table_put(&t, field(s, "state"));
		table_put(&t, field(s, "age"));
		table_put(&t, field(s, "packets"));
		table_put(&t, field(s, "bytes"));
		table_put(&t, field(s, "errors"));
		table_put(&t, field(s, "replay_drops"));
		table_put(&t, field(s, "auth_drops"));
	}
	table_print(&t);
	table_free(&t);
}

static int sad(struct ctl *c, const struct args *a)
{
	json_t *items;
	int rc;

	if ((rc = verb_opts(a, "sad", "policy direction")) || (rc = verb_args(a, 1, 0, 0, "sad")))
		return rc;
	char *q = sa_query(c, a), *path = fmt(API "/sad%s", q);
	rc = get_all(c, path, &items);
	free(path);
	free(q);
	if (rc)
		return rc;
	if (c->json)
		print_json(items);
	else
		sad_rows(items);
	json_decref(items);
	return EXIT_OK;
}

/* ---- netstat: the configuration joined with the wire's counters, like the seed's `ipsec netstat` ---- */

static json_t *find_by(json_t *arr, const char *key, json_t *want, const char *key2, json_t *want2)
{
	size_t i;
	json_t *x;

	json_array_foreach(arr, i, x)
		if (json_equal(json_object_get(x, key), want) && (!key2 || json_equal(json_object_get(x, key2), want2)))
			return x;
	return NULL;
}

static void netstat_ports(json_t *conf, json_t *live)
{
	static const char *const roles[] = { "red", "black" };
	struct table t;

	puts("Ports");
	table_init(&t, "PORT INTERFACE LINK MTU ADDRESSES RX-PKTS RX-BYTES TX-PKTS TX-BYTES TX-ERR");
	for (size_t i = 0; i < 2; i++) {
		json_t *pc = json_object_get(conf, roles[i]), *pl = json_object_get(live, roles[i]);
		table_put(&t, xstrdup(roles[i]));
		table_put(&t, field(pl && jstr(pl, "interface") ? pl : pc, "interface"));
		table_put(&t, pl ? xstrdup(json_is_true(json_object_get(pl, "link")) ? "up" : "down") : xstrdup("-"));
		table_put(&t, field(pl ? pl : pc, "mtu"));
		table_put(&t, field(pc, "addresses"));
		table_put(&t, field(pl, "rx_packets"));
		table_put(&t, field(pl, "rx_bytes"));
		table_put(&t, field(pl, "tx_packets"));
		table_put(&t, field(pl, "tx_bytes"));
		table_put(&t, field(pl, "tx_errors"));
	}
	table_print(&t);
	table_free(&t);
}

static void netstat_policies(json_t *conf, json_t *live)
{
	struct table t;
	size_t i;
	json_t *p;

	puts("\nPolicies");
	table_init(&t, "ID PRI NAME ACTION DIR SRC DST PROTO PEER SA OUT-PKTS OUT-BYTES IN-PKTS IN-BYTES DROPS");
	json_array_foreach(conf, i, p) {
		json_t *l = find_by(live, "id", json_object_get(p, "id"), NULL, NULL);
		table_put(&t, field(p, "id"));
		table_put(&t, field(p, "priority"));
		table_put(&t, field(p, "name"));
		table_put(&t, field(p, "action"));
		table_put(&t, field(p, "direction"));
		table_put(&t, field(p, "src"));
		table_put(&t, field(p, "dst"));
		table_put(&t, field(p, "protocol"));
		table_put(&t, field(p, "peer"));
		table_put(&t, field(l, "has_sa"));
		table_put(&t, field(l, "out_packets"));
		table_put(&t, field(l, "out_bytes"));
		table_put(&t, field(l, "in_packets"));
		table_put(&t, field(l, "in_bytes"));
		table_put(&t, field(l, "drops"));
	}
	table_print(&t);
	table_free(&t);
}

static void netstat_sa_row(struct table *t, json_t *conf, json_t *live)
{
	json_t *s = conf ? conf : live;

	table_put(t, field(conf, "id"));
	table_put(t, spi_cell(json_object_get(s, "spi")));
	table_put(t, field(s, "direction"));
	table_put(t, field(s, "policy"));
	table_put(t, field(s, "peer"));
	table_put(t, field(s, "enc"));
	table_put(t, field(live, "state"));
	table_put(t, field(live, "packets"));
	table_put(t, field(live, "bytes"));
	table_put(t, field(live, "errors"));
	table_put(t, field(live, "replay_drops"));
	table_put(t, field(live, "auth_drops"));
}

/* The stored SAs with the wire's counters, then any the wire holds that are not stored (IKE, later). */
static void netstat_sas(json_t *conf, json_t *live)
{
	struct table t;
	size_t i;
	json_t *s;

	puts("\nSecurity associations");
	table_init(&t, "ID SPI DIR POLICY PEER ENC STATE PACKETS BYTES ERRORS REPLAY-DROPS AUTH-DROPS");
	json_array_foreach(conf, i, s)
		netstat_sa_row(&t, s, find_by(live, "spi", json_object_get(s, "spi"), "direction",
		                              json_object_get(s, "direction")));
	json_array_foreach(live, i, s)
		if (!find_by(conf, "spi", json_object_get(s, "spi"), "direction", json_object_get(s, "direction")))
			netstat_sa_row(&t, NULL, s);
	table_print(&t);
	table_free(&t);
}

static void netstat_drops(json_t *drops)
{
	struct table t;
	const char *reason;
	json_t *v;

	puts("\nDrops");
	table_init(&t, "REASON PACKETS");
	json_object_foreach(drops, reason, v)
		if (json_integer_value(v)) {
			table_put(&t, xstrdup(reason));
			table_put(&t, cell(v));
		}
	if (t.n == (size_t)t.ncol)
		puts(drops ? "(none)" : "-");
	else
		table_print(&t);
	table_free(&t);
}

static void netstat_print(json_t *st, json_t *ports, json_t *pols, json_t *sas)
{
	json_t *b = json_object_get(st, "bitwd");

	printf("bitw-wire: %s   bitwd: up %" JSON_INTEGER_FORMAT " s, %" JSON_INTEGER_FORMAT " requests, %s\n\n",
	       jstr(st, "wire") ? jstr(st, "wire") : "?", json_integer_value(json_object_get(b, "uptime_s")),
	       json_integer_value(json_object_get(b, "requests")),
	       json_is_true(json_object_get(b, "dirty")) ? "configuration NOT applied yet" : "configuration applied");
	netstat_ports(ports, json_object_get(st, "ports"));
	netstat_policies(pols, json_object_get(st, "policies"));
	netstat_sas(sas, json_object_get(st, "sas"));
	netstat_drops(json_object_get(st, "drops"));
}

static int netstat(struct ctl *c, const struct args *a)
{
	json_t *st = NULL, *ports = NULL, *pols = NULL, *sas = NULL;
	int rc;

	if ((rc = verb_opts(a, "netstat", "")) || (rc = verb_args(a, 1, 0, 0, "netstat")) ||
	    (rc = call(c, "GET", API "/stats", NULL, &st)))
		return rc;
	if (c->json) {
		print_json(st);
		json_decref(st);
		return EXIT_OK;
	}
	if (!(rc = call(c, "GET", API "/ports", NULL, &ports)) && !(rc = get_all(c, API "/policies", &pols)) &&
	    !(rc = get_all(c, API "/sas", &sas)))
		netstat_print(st, ports, pols, sas);
	json_decref(st);
	json_decref(ports);
	json_decref(pols);
	json_decref(sas);
	return rc;
}

/* ---- ports ---- */

static bool is_role(const char *s)
{
	return strcmp(s, "red") == 0 || strcmp(s, "black") == 0;
}

static void ports_human(json_t *ports)
{
	const char *role;
	json_t *p;

	json_object_foreach(ports, role, p) {
		printf("%s:\n", role);
		const char *k;
		json_t *v;
		json_object_foreach(p, k, v) {
			char *s = cell(v);
			printf("  %-11s %s\n", k, s);
			free(s);
		}
	}
}

static void port_human(json_t *port)
{
	print_object(port);
}

static int port_show(struct ctl *c, const struct args *a)
{
	json_t *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "port show", "")) || (rc = verb_args(a, 2, 0, 1, "port show")))
		return rc;
	if (a->npos > 2 && !is_role(a->pos[2]))
		return usage_error("port show: red or black, not \"%s\"", a->pos[2]);
	char *path = a->npos > 2 ? fmt(API "/ports/%s", a->pos[2]) : xstrdup(API "/ports");
	rc = call(c, "GET", path, NULL, &out);
	free(path);
	return show_result(c, rc, out, a->npos > 2 ? port_human : ports_human);
}

/* Flags change the port as it is stored now (PUT replaces it whole); an empty value removes the field. */
static void port_flags(const struct args *a, json_t *port)
{
	static const char *const map[][2] = {
		{ "interface", "interface" }, { "gateway4", "gateway4" }, { "gateway6", "gateway6" },
		{ "router-mac", "router_mac" },
	};
	const char *mtu = opt_get(a, "mtu");
	json_t *addrs = NULL;

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		const char *v = opt_get(a, map[i][0]);
		if (v && *v)
			json_object_set_new(port, map[i][1], json_string(v));
		else if (v)
			json_object_del(port, map[i][1]);
	}
	if (mtu)
		json_object_set_new(port, "mtu", number_or_text(mtu));
	for (int i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, "address") == 0) {
			if (!addrs)
				addrs = json_array();
			if (*a->opt[i].val)
				json_array_append_new(addrs, json_string(a->opt[i].val));
		}
	if (addrs)
		json_object_set_new(port, "addresses", addrs);
}

static int port_set(struct ctl *c, const struct args *a)
{
	const char *file = opt_get(a, "file");
	json_t *port = NULL, *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "port set", "file interface mtu address gateway4 gateway6 router-mac")) ||
	    (rc = verb_args(a, 2, 1, 1, "port set")))
		return rc;
	if (!is_role(a->pos[2]))
		return usage_error("port set: red or black, not \"%s\"", a->pos[2]);
	char *path = fmt(API "/ports/%s", a->pos[2]);
	if (file)
		rc = (port = load_json_file(file)) && json_is_object(port) ? EXIT_OK : EXIT_FAIL;
	else
		rc = call(c, "GET", path, NULL, &port);
	if (rc == EXIT_OK) {
		port_flags(a, port);
		rc = call(c, "PUT", path, port, &out);
	} else if (file && port) {
		fprintf(stderr, "error: %s: a port object is expected\n", file);
	}
	free(path);
	json_decref(port);
	return show_result(c, rc, out, port_human);
}

/* ---- the whole configuration ---- */

static int config_export(struct ctl *c, const struct args *a)
{
	const char *path = opt_get(a, "output");
	json_t *doc = NULL;
	FILE *f = stdout;
	int rc;

	if ((rc = verb_opts(a, "config export", "output")) || (rc = verb_args(a, 2, 0, 0, "config export")) ||
	    (rc = call(c, "GET", API "/config", NULL, &doc)))
		return rc;
	if (path && strcmp(path, "-") && !(f = fopen(path, "w"))) {
		fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
		json_decref(doc);
		return EXIT_FAIL;
	}
	if (json_dumpf(doc, f, JSON_INDENT(2)) < 0 || fputc('\n', f) == EOF || (f != stdout && fclose(f) != 0)) {
		fprintf(stderr, "error: cannot write %s: %s\n", path ? path : "the configuration", strerror(errno));
		rc = EXIT_FAIL;
	}
	json_decref(doc);
	return rc;
}

static void imported_human(json_t *doc)
{
	printf("imported: %zu policies, %zu SAs\n", json_array_size(json_object_get(doc, "policies")),
	       json_array_size(json_object_get(doc, "sas")));
}

/* The file goes as it is, so bitwd's parser names the line of a syntax error; its keys are wiped after. */
static int config_import(struct ctl *c, const struct args *a)
{
	json_t *out = NULL;
	size_t len = 0;
	char *text;
	int rc;

	if ((rc = verb_opts(a, "config import", "")) || (rc = verb_args(a, 2, 1, 1, "config import")))
		return rc;
	if (!(text = read_file(a->pos[2], &len)))
		return EXIT_FAIL;
	rc = call_raw(c, "PUT", API "/config", text, len, &out);
	wipe(text, len);
	free(text);
	return show_result(c, rc, out, imported_human);
}

/* ---- events: Server-Sent Events, one line each ---- */

struct sse {
	struct ctl *c;
	CURL *curl;
	struct buf line, data, problem;
	char type[128];
	char id[32];
	long count, seen;
	bool failed;                /* the answer is a problem, not a stream */
};

static void sse_emit(struct sse *s)
{
	const char *data = s->data.p ? s->data.p : "";

	if (s->c->json) {
		json_t *d = json_loads(data, JSON_DECODE_ANY, NULL);
		json_t *ev = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)strtoll(s->id, NULL, 10), "type",
		                       s->type[0] ? s->type : "message", "data", d ? d : json_string(data));
		char *text = json_dumps(ev, JSON_COMPACT);
		if (text)
			puts(text);
		free(text);
		json_decref(ev);
	} else {
		printf("%s %s %s\n", s->id[0] ? s->id : "-", s->type[0] ? s->type : "message", data);
	}
	fflush(stdout);
	s->seen++;
}

/* One line of the stream (RFC: event/data/id fields, ':' comments, a blank line ends an event). */
static void sse_line(struct sse *s, char *line)
{
	char *val = strchr(line, ':');

	if (!*line) {
		if (s->data.len || s->type[0])
			sse_emit(s);
		s->type[0] = '\0';
		s->data.len = 0;
		if (s->data.p)
			s->data.p[0] = '\0';
		return;
	}
	if (val == line)
		return;
	if (val) {
		*val++ = '\0';
		if (*val == ' ')
			val++;
	} else {
		val = line + strlen(line);
	}
	if (strcmp(line, "event") == 0)
		snprintf(s->type, sizeof s->type, "%s", val);
	else if (strcmp(line, "id") == 0)
		snprintf(s->id, sizeof s->id, "%s", val);
	else if (strcmp(line, "data") == 0 && ((s->data.len && !buf_add(&s->data, "\n", 1)) ||
	                                       !buf_add(&s->data, val, strlen(val))))
		s->failed = true;
}

static size_t sse_write(char *data, size_t size, size_t n, void *user)
{
	struct sse *s = user;
	long status = 0;

	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return buf_add(&s->problem, data, size * n) ? size * n : 0;
	for (size_t i = 0; i < size * n; i++) {
		if (data[i] != '\n') {
			if (!buf_add(&s->line, &data[i], 1))
				return 0;
			continue;
		}
		if (s->line.len && s->line.p[s->line.len - 1] == '\r')
			s->line.p[--s->line.len] = '\0';
		sse_line(s, s->line.p ? s->line.p : (char[1]){ 0 });
		s->line.len = 0;
		if (s->line.p)
			s->line.p[0] = '\0';
		/* Returning short makes curl stop: that is how --count ends the stream. */
		if (s->failed || (s->count && s->seen >= s->count))
			return 0;
	}
	return size * n;
}

static int events(struct ctl *c, const struct args *a)
{
	const char *count = opt_get(a, "count"), *type = opt_get(a, "type"), *after = opt_get(a, "after");
	struct sse s = { .c = c, .curl = c->curl };
	long status = 0;
	int rc;

	if ((rc = verb_opts(a, "events", "count type after")) || (rc = verb_args(a, 1, 0, 0, "events")))
		return rc;
	if ((count && !all_digits(count)) || (after && !all_digits(after)))
		return usage_error("events: --count and --after take a number");
	s.count = count ? strtol(count, NULL, 10) : 0;
	char *t = type ? curl_easy_escape(c->curl, type, 0) : NULL;
	char *path = fmt(API "/events%s%s%s%s%s", type || after ? "?" : "", t ? "type=" : "", t ? t : "",
	                 t && after ? "&" : "", after ? "after=" : "");
	char *full = fmt("%s%s", path, after ? after : "");
	curl_free(t);
	if (c->user && !c->session && (rc = login(c)))
		goto out;
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 0L);  /* a stream has no end of its own */
	if ((rc = http_do(c, "GET", full, NULL, 0, sse_write, &s, &status)) == EXIT_OK && status != 200)
		rc = interpret(status, &s.problem, NULL);
	else if (rc == EXIT_OK && s.failed)
		rc = EXIT_FAIL;
out:
	free(full);
	free(path);
	buf_free(&s.line);
	buf_free(&s.data);
	buf_free(&s.problem);
	return rc;
}

/* ---- users and tokens ---- */

static void user_rows(json_t *items)
{
	struct table t;
	size_t i;
	json_t *u;

	table_init(&t, "ID NAME ROLE DISABLED CREATED");
	json_array_foreach(items, i, u) {
		table_put(&t, field(u, "id"));
		table_put(&t, field(u, "name"));
		table_put(&t, field(u, "role"));
		table_put(&t, field(u, "disabled"));
		table_put(&t, time_cell(json_object_get(u, "created")));
	}
	table_print(&t);
	table_free(&t);
}

static int user_id(struct ctl *c, const char *ref, int64_t *id)
{
	return ref_to_id(c, "user", API "/users", ref, id);
}

static void user_human(json_t *u)
{
	printf("user %" JSON_INTEGER_FORMAT ": %s (%s)\n", json_integer_value(json_object_get(u, "id")),
	       jstr(u, "name") ? jstr(u, "name") : "?", jstr(u, "role") ? jstr(u, "role") : "?");
}

static void passwd_human(json_t *u)
{
	printf("password changed for %s\n", jstr(u, "name") ? jstr(u, "name") : "?");
}

/* A request carrying a password read from --new-password-file, wiped after. */
static int password_call(struct ctl *c, const char *method, const char *path, json_t *body, const char *file,
                         json_t **out)
{
	char *pw = body ? read_secret(file) : NULL;
	int rc;

	if (!body)
		fputs("error: the name is not valid UTF-8\n", stderr);
	if (!pw) {
		json_decref(body);
		return EXIT_FAIL;
	}
	json_object_set_new(body, "password", json_string(pw));
	free_secret(pw);
	rc = call(c, method, path, body, out);
	json_t *p = json_object_get(body, "password");
	wipe((char *)json_string_value(p), json_string_length(p));
	json_decref(body);
	return rc;
}

static int user_verb(struct ctl *c, const struct args *a, const char *sub)
{
	const char *pwfile = opt_get(a, "new-password-file");
	json_t *out = NULL, *items;
	int64_t id = 0;
	int rc;

	if (strcmp(sub, "list") == 0) {
		if ((rc = verb_opts(a, "user list", "")) || (rc = verb_args(a, 2, 0, 0, "user list")) ||
		    (rc = get_all(c, API "/users", &items)))
			return rc;
		c->json ? print_json(items) : user_rows(items);
		json_decref(items);
		return EXIT_OK;
	}
	if (strcmp(sub, "add") == 0) {
		if ((rc = verb_opts(a, "user add", "role new-password-file")) ||
		    (rc = verb_args(a, 2, 1, 1, "user add")))
			return rc;
		if (!pwfile)
			return usage_error("user add: --new-password-file F is required");
		json_t *body = json_pack("{s:s}", "name", a->pos[2]);
		if (opt_get(a, "role"))
			json_object_set_new(body, "role", json_string(opt_get(a, "role")));
		rc = password_call(c, "POST", API "/users", body, pwfile, &out);
		return show_result(c, rc, out, user_human);
	}
	if (strcmp(sub, "del") == 0) {
		if ((rc = verb_opts(a, "user del", "")) || (rc = verb_args(a, 2, 1, 1, "user del")) ||
		    (rc = user_id(c, a->pos[2], &id)))
			return rc;
		char *path = fmt(API "/users/%" PRId64, id);
		rc = call(c, "DELETE", path, NULL, NULL);
		free(path);
		if (rc == EXIT_OK && !c->json)
			printf("deleted user %" PRId64 "\n", id);
		return rc;
	}
	if (strcmp(sub, "passwd") == 0) {
		if ((rc = verb_opts(a, "user passwd", "new-password-file")) ||
		    (rc = verb_args(a, 2, 0, 1, "user passwd")))
			return rc;
		if (!pwfile)
			return usage_error("user passwd: --new-password-file F is required");
		if (a->npos > 2) {
			if ((rc = user_id(c, a->pos[2], &id)))
				return rc;
		} else {
			/* Without a name: one's own password, which read-only users may change too. */
			json_t *me = NULL;
			if ((rc = call(c, "GET", API "/whoami", NULL, &me)))
				return rc;
			id = json_integer_value(json_object_get(me, "id"));
			json_decref(me);
		}
		char *path = fmt(API "/users/%" PRId64, id);
		rc = password_call(c, "PATCH", path, json_object(), pwfile, &out);
		free(path);
		return show_result(c, rc, out, passwd_human);
	}
	return usage_error("user: list, add, del or passwd, not \"%s\"", sub);
}

static void token_rows(json_t *items)
{
	struct table t;
	size_t i;
	json_t *k;

	table_init(&t, "ID NAME USER CREATED EXPIRES LAST-USED");
	json_array_foreach(items, i, k) {
		table_put(&t, field(k, "id"));
		table_put(&t, field(k, "name"));
		table_put(&t, field(k, "user"));
		table_put(&t, time_cell(json_object_get(k, "created")));
		table_put(&t, time_cell(json_object_get(k, "expires")));
		table_put(&t, time_cell(json_object_get(k, "last_used")));
	}
	table_print(&t);
	table_free(&t);
}

/* "3600", "90m", "12h", "30d" as seconds; -1 when it is none of those. */
static long long duration(const char *s)
{
	static const struct {
		char unit;
		long long mult;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
	char *end;
	long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || v > 100LL * 365 * 86400)
		return -1;
	if (!*end)
		return v;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (end[0] == units[i].unit && !end[1])
			return v * units[i].mult;
	return -1;
}

/* The token text goes alone to stdout (so `> file` keeps just it); it is shown this once. */
static void token_created_human(json_t *k)
{
	const char *tok = jstr(k, "token");

	puts(tok ? tok : "");
	fprintf(stderr, "token %" JSON_INTEGER_FORMAT " \"%s\" created; it is shown only this once\n",
	        json_integer_value(json_object_get(k, "id")), jstr(k, "name") ? jstr(k, "name") : "");
}

static int token_verb(struct ctl *c, const struct args *a, const char *sub)
{
	json_t *out = NULL, *items;
	int rc;

	if (strcmp(sub, "list") == 0) {
		if ((rc = verb_opts(a, "token list", "all")) || (rc = verb_args(a, 2, 0, 0, "token list")) ||
		    (rc = get_all(c, opt_get(a, "all") ? API "/tokens?all=1" : API "/tokens", &items)))
			return rc;
		c->json ? print_json(items) : token_rows(items);
		json_decref(items);
		return EXIT_OK;
	}
	if (strcmp(sub, "create") == 0) {
		const char *exp = opt_get(a, "expires");
		long long secs = duration(exp);
		if ((rc = verb_opts(a, "token create", "expires")) || (rc = verb_args(a, 2, 1, 1, "token create")))
			return rc;
		if (exp && secs < 0)
			return usage_error("token create: --expires takes seconds, or a number with s, m, h or d");
		json_t *body = json_pack("{s:s}", "name", a->pos[2]);
		if (exp)
			json_object_set_new(body, "expires_in", json_integer(secs));
		rc = call(c, "POST", API "/tokens", body, &out);
		json_decref(body);
		json_incref(out);
		rc = show_result(c, rc, out, token_created_human);
		json_t *tok = json_object_get(out, "token");
		wipe((char *)json_string_value(tok), json_string_length(tok));
		json_decref(out);
		return rc;
	}
	if (strcmp(sub, "del") == 0) {
		if ((rc = verb_opts(a, "token del", "")) || (rc = verb_args(a, 2, 1, 1, "token del")))
			return rc;
		if (!all_digits(a->pos[2]))
			return usage_error("token del: a token id (see token list), not \"%s\"", a->pos[2]);
		char *path = fmt(API "/tokens/%s", a->pos[2]);
		rc = call(c, "DELETE", path, NULL, NULL);
		free(path);
		if (rc == EXIT_OK && !c->json)
			printf("deleted token %s\n", a->pos[2]);
		return rc;
	}
	return usage_error("token: list, create or del, not \"%s\"", sub);
}

/* ---- health, whoami ---- */

static int health(struct ctl *c, const struct args *a)
{
	struct reply r = { 0 };
	json_t *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "health", "")) || (rc = verb_args(a, 1, 0, 0, "health")))
		return rc;
	/* Public: no login, so it answers even when the credentials are wrong. */
	if ((rc = http_do(c, "GET", API "/health", NULL, 0, collect, &r.body, &r.status)) == EXIT_OK)
		rc = interpret(r.status, &r.body, &out);
	buf_free(&r.body);
	return show_result(c, rc, out, print_object);
}

static void whoami_human(json_t *me)
{
	printf("%s (%s) via %s\n", jstr(me, "user") ? jstr(me, "user") : "?", jstr(me, "role") ? jstr(me, "role") : "?",
	       jstr(me, "via") ? jstr(me, "via") : "?");
}

static int whoami(struct ctl *c, const struct args *a)
{
	json_t *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "whoami", "")) || (rc = verb_args(a, 1, 0, 0, "whoami")))
		return rc;
	rc = call(c, "GET", API "/whoami", NULL, &out);
	if (out)
		json_object_del(out, "csrf");
	return show_result(c, rc, out, whoami_human);
}

/* ---- IKE: peers, IKE SAs, certificates ---- */

static int peer_id(struct ctl *c, const char *ref, int64_t *id)
{
	return ref_to_id(c, "peer", API "/peers", ref, id);
}

static int cert_id(struct ctl *c, const char *ref, int64_t *id)
{
	return ref_to_id(c, "certificate", API "/certificates", ref, id);
}

#define PEER_OPTS "file address local local-id remote-id auth psk-file cert ca ike-proposals esp-proposals start " \
	"dpd-interval dpd-action force-encap"

/* Flags as the peer's fields; the PSK is read from its file and wiped by the caller. */
static int peer_flags(const struct args *a, json_t *p)
{
	static const char *const map[][2] = {
		{ "address", "address" }, { "local", "local" }, { "local-id", "local_id" }, { "remote-id", "remote_id" },
		{ "auth", "auth" }, { "cert", "certificate" }, { "ca", "ca" }, { "ike-proposals", "ike_proposals" },
		{ "esp-proposals", "esp_proposals" }, { "start", "start" }, { "dpd-action", "dpd_action" },
	};
	const char *dpd = opt_get(a, "dpd-interval"), *encap = opt_get(a, "force-encap"), *pskf = opt_get(a, "psk-file");

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (opt_get(a, map[i][0]))
			json_object_set_new(p, map[i][1], json_string(opt_get(a, map[i][0])));
	if (dpd)
		json_object_set_new(p, "dpd_interval", number_or_text(dpd));
	if (encap)
		json_object_set_new(p, "force_encap", json_boolean(!strcmp(encap, "yes") || !strcmp(encap, "true")));
	if (pskf) {
		char *psk = read_secret(pskf);

		if (!psk)
			return EXIT_FAIL;
		json_object_set_new(p, "psk", json_string(psk));
		free_secret(psk);
	}
	return EXIT_OK;
}

static void psk_wipe(json_t *p)
{
	json_t *v = json_object_get(p, "psk");

	if (json_is_string(v))
		wipe((char *)json_string_value(v), json_string_length(v));
}

static int peer_write(struct ctl *c, const struct args *a, bool add)
{
	const char *file = opt_get(a, "file"), *verb = add ? "peer add" : "peer set";
	json_t *p, *out = NULL;
	int64_t id = 0;
	int rc;

	if ((rc = verb_opts(a, verb, PEER_OPTS)) || (rc = verb_args(a, 2, add && file ? 0 : 1, 1, verb)))
		return rc;
	if (!add && (rc = peer_id(c, a->pos[2], &id)))
		return rc;
	p = file ? load_json_file(file) : json_object();
	if (!p || !json_is_object(p)) {
		if (p)
			fprintf(stderr, "error: %s: a peer object is expected\n", file);
		json_decref(p);
		return EXIT_FAIL;
	}
	if (add && a->npos > 2)
		json_object_set_new(p, "name", json_string(a->pos[2]));
	if ((rc = peer_flags(a, p)) == EXIT_OK) {
		char *path = add ? xstrdup(API "/peers") : fmt(API "/peers/%" PRId64, id);

		rc = call(c, add ? "POST" : "PUT", path, p, &out);
		free(path);
		rc = show_result(c, rc, out, print_object);
	}
	psk_wipe(p);
	json_decref(p);
	return rc;
}

static int peer_add(struct ctl *c, const struct args *a)
{
	return peer_write(c, a, true);
}

static int peer_set(struct ctl *c, const struct args *a)
{
	return peer_write(c, a, false);
}

static int peer_list(struct ctl *c, const struct args *a)
{
	struct table t;
	json_t *items, *p;
	size_t i;
	int rc;

	if ((rc = verb_opts(a, "peer list", "")) || (rc = verb_args(a, 2, 0, 0, "peer list")) ||
	    (rc = get_all(c, API "/peers", &items)))
		return rc;
	if (c->json) {
		print_json(items);
		json_decref(items);
		return EXIT_OK;
	}
	table_init(&t, "ID NAME ADDRESS AUTH START IKE ESP DPD");
	json_array_foreach(items, i, p) {
		table_put(&t, field(p, "id"));
		table_put(&t, field(p, "name"));
		table_put(&t, field(p, "address"));
		table_put(&t, field(p, "auth"));
		table_put(&t, field(p, "start"));
		table_put(&t, field(p, "ike_proposals"));
		table_put(&t, field(p, "esp_proposals"));
		table_put(&t, field(p, "dpd_action"));
	}
	table_print(&t);
	table_free(&t);
	json_decref(items);
	return EXIT_OK;
}

/* show and del of one object found by id or name: the same shape for peers and certificates. */
static int one_object(struct ctl *c, const struct args *a, const char *verb, const char *method, const char *base,
                      int (*resolve)(struct ctl *, const char *, int64_t *))
{
	json_t *out = NULL;
	int64_t id;
	int rc;

	if ((rc = verb_opts(a, verb, "")) || (rc = verb_args(a, 2, 1, 1, verb)) || (rc = resolve(c, a->pos[2], &id)))
		return rc;
	char *path = fmt("%s/%" PRId64, base, id);
	rc = call(c, method, path, NULL, &out);
	free(path);
	return show_result(c, rc, out, print_object);
}

static int peer_show(struct ctl *c, const struct args *a)
{
	return one_object(c, a, "peer show", "GET", API "/peers", peer_id);
}

static int peer_del(struct ctl *c, const struct args *a)
{
	return one_object(c, a, "peer del", "DELETE", API "/peers", peer_id);
}

static int ike_list(struct ctl *c, const struct args *a)
{
	struct table t;
	json_t *items, *s, *k;
	size_t i, j;
	int rc;

	if ((rc = verb_opts(a, "ike list", "")) || (rc = verb_args(a, 2, 0, 0, "ike list")) ||
	    (rc = get_all(c, API "/ike-sas", &items)))
		return rc;
	if (c->json) {
		print_json(items);
		json_decref(items);
		return EXIT_OK;
	}
	table_init(&t, "ID PEER STATE LOCAL REMOTE ALGORITHMS REKEY_IN CHILDREN");
	json_array_foreach(items, i, s) {
		char *kids = xstrdup("");

		json_array_foreach(json_object_get(s, "child_sas"), j, k) {
			char *n = fmt("%s%s%08" JSON_INTEGER_FORMAT "x/%08" JSON_INTEGER_FORMAT "x", kids, j ? "," : "",
			              json_integer_value(json_object_get(k, "spi_in")),
			              json_integer_value(json_object_get(k, "spi_out")));
			free(kids);
			kids = n;
		}
		table_put(&t, field(s, "id"));
		table_put(&t, field(s, "peer"));
		table_put(&t, field(s, "state"));
		table_put(&t, field(s, "local"));
		table_put(&t, field(s, "remote"));
		table_put(&t, field(s, "algorithms"));
		table_put(&t, field(s, "rekey_in"));
		table_put(&t, kids);
	}
	table_print(&t);
	table_free(&t);
	json_decref(items);
	return EXIT_OK;
}

static int ike_initiate_verb(struct ctl *c, const struct args *a)
{
	json_t *body, *out = NULL;
	int64_t id;
	int rc;

	if ((rc = verb_opts(a, "ike initiate", "")) || (rc = verb_args(a, 2, 1, 1, "ike initiate")) ||
	    (rc = peer_id(c, a->pos[2], &id)))
		return rc;
	body = json_pack("{s:I}", "peer", (json_int_t)id);
	rc = call(c, "POST", API "/ike-sas", body, &out);
	json_decref(body);
	return show_result(c, rc, out, print_object);
}

static int ike_rekey_verb(struct ctl *c, const struct args *a)
{
	const char *spi = opt_get(a, "spi-in");
	json_t *body, *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "ike rekey", "spi-in")) || (rc = verb_args(a, 2, 1, 1, "ike rekey")))
		return rc;
	if (!all_digits(a->pos[2]))
		return usage_error("ike rekey: ID is the IKE SA's number (ike list)");
	body = json_object();
	if (spi)
		json_object_set_new(body, "spi_in", json_integer(strtoll(spi, NULL, 0)));
	char *path = fmt(API "/ike-sas/%s/rekey", a->pos[2]);
	rc = call(c, "POST", path, body, &out);
	free(path);
	json_decref(body);
	return show_result(c, rc, out, print_object);
}

static int ike_terminate_verb(struct ctl *c, const struct args *a)
{
	json_t *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "ike terminate", "")) || (rc = verb_args(a, 2, 1, 1, "ike terminate")))
		return rc;
	if (!all_digits(a->pos[2]))
		return usage_error("ike terminate: ID is the IKE SA's number (ike list)");
	char *path = fmt(API "/ike-sas/%s", a->pos[2]);
	rc = call(c, "DELETE", path, NULL, &out);
	free(path);
	return show_result(c, rc, out, print_object);
}

static int cert_list(struct ctl *c, const struct args *a)
{
	struct table t;
	json_t *items, *o;
	size_t i;
	int rc;

	if ((rc = verb_opts(a, "cert list", "")) || (rc = verb_args(a, 2, 0, 0, "cert list")) ||
	    (rc = get_all(c, API "/certificates", &items)))
		return rc;
	if (c->json) {
		print_json(items);
		json_decref(items);
		return EXIT_OK;
	}
	table_init(&t, "ID NAME SUBJECT CA KEY NOT_AFTER");
	json_array_foreach(items, i, o) {
		table_put(&t, field(o, "id"));
		table_put(&t, field(o, "name"));
		table_put(&t, field(o, "subject"));
		table_put(&t, field(o, "is_ca"));
		table_put(&t, field(o, "has_key"));
		table_put(&t, field(o, "not_after"));
	}
	table_print(&t);
	table_free(&t);
	json_decref(items);
	return EXIT_OK;
}

static int cert_add(struct ctl *c, const struct args *a)
{
	const char *pemf = opt_get(a, "pem"), *keyf = opt_get(a, "key-file");
	size_t plen = 0, klen = 0;
	char *pem = NULL, *key = NULL;
	json_t *body, *out = NULL;
	int rc;

	if ((rc = verb_opts(a, "cert add", "pem key-file")) || (rc = verb_args(a, 2, 1, 1, "cert add")))
		return rc;
	if (!pemf)
		return usage_error("cert add: --pem FILE is required");
	if (!(pem = read_file(pemf, &plen)) || (keyf && !(key = read_file(keyf, &klen)))) {
		free(pem);
		return EXIT_FAIL;
	}
	body = json_pack("{s:s, s:s%}", "name", a->pos[2], "pem", pem, plen);
	if (body && key)
		json_object_set_new(body, "key", json_stringn(key, klen));
	if (key) {
		wipe(key, klen);
		free(key);
	}
	free(pem);
	rc = body ? call(c, "POST", API "/certificates", body, &out) : EXIT_FAIL;
	if (body) {
		json_t *k = json_object_get(body, "key");

		if (json_is_string(k))
			wipe((char *)json_string_value(k), json_string_length(k));
	}
	json_decref(body);
	return show_result(c, rc, out, print_object);
}

static int cert_del(struct ctl *c, const struct args *a)
{
	return one_object(c, a, "cert del", "DELETE", API "/certificates", cert_id);
}

static int cert_verify(struct ctl *c, const struct args *a)
{
	json_t *out = NULL;
	int64_t id;
	int rc;

	if ((rc = verb_opts(a, "cert verify", "")) || (rc = verb_args(a, 2, 1, 1, "cert verify")) ||
	    (rc = cert_id(c, a->pos[2], &id)))
		return rc;
	char *path = fmt(API "/certificates/%" PRId64 "/verify", id);
	rc = call(c, "POST", path, NULL, &out);
	free(path);
	/* An invalid chain is a refusal for scripts: exit 1, with the reason printed. */
	bool invalid = rc == EXIT_OK && !json_is_true(json_object_get(out, "valid"));
	rc = show_result(c, rc, out, print_object);
	return invalid && rc == EXIT_OK ? EXIT_FAIL : rc;
}

/* ---- the administrative state ---- */

static void admin_state_human(json_t *o)
{
	const char *st = jstr(o, "state") ? jstr(o, "state") : "?";

	printf("%s%s\n", st, strcmp(st, "bypass") == 0 ? "  (WARNING: all traffic passes in clear text)" : "");
}

static int admin_state(struct ctl *c, const struct args *a)
{
	json_t *out = NULL, *body;
	int rc;

	if ((rc = verb_opts(a, "admin-state", "")) || (rc = verb_args(a, 1, 0, 1, "admin-state")))
		return rc;
	if (a->npos < 2) {
		rc = call(c, "GET", API "/admin-state", NULL, &out);
	} else {
		body = json_pack("{s:s}", "state", a->pos[1]);
		rc = call(c, "PUT", API "/admin-state", body, &out);
		json_decref(body);
	}
	return show_result(c, rc, out, admin_state_human);
}

/* ---- the verbs ---- */

static int dispatch(struct ctl *c, const struct args *a)
{
	const char *verb = a->pos[0], *sub = a->npos > 1 ? a->pos[1] : "";
	static const struct {
		const char *verb, *sub;
		int (*fn)(struct ctl *, const struct args *);
	} verbs[] = {
		{ "policy", "add", policy_add }, { "policy", "set", policy_set }, { "policy", "del", policy_del }, { "policy", "list", policy_list },
		{ "policy", "show", policy_show }, { "policy", "reorder", policy_reorder }, { "sa", "add", sa_add },
		{ "sa", "del", sa_del }, { "sa", "flush", sa_flush }, { "sa", "list", sa_list },
		{ "port", "show", port_show }, { "port", "set", port_set }, { "config", "export", config_export },
		{ "config", "import", config_import }, { "sad", NULL, sad }, { "netstat", NULL, netstat },
		{ "events", NULL, events }, { "health", NULL, health }, { "whoami", NULL, whoami },
		{ "peer", "add", peer_add }, { "peer", "set", peer_set }, { "peer", "list", peer_list },
		{ "peer", "show", peer_show }, { "peer", "del", peer_del }, { "ike", "list", ike_list },
		{ "ike", "initiate", ike_initiate_verb }, { "ike", "rekey", ike_rekey_verb },
		{ "ike", "terminate", ike_terminate_verb }, { "cert", "list", cert_list }, { "cert", "add", cert_add },
		{ "cert", "del", cert_del }, { "cert", "verify", cert_verify },
		{ "admin-state", NULL, admin_state },
	};

	if (strcmp(verb, "user") == 0)
		return user_verb(c, a, sub);
	if (strcmp(verb, "token") == 0)
		return token_verb(c, a, sub);
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strcmp(verbs[i].verb, verb) == 0 && (!verbs[i].sub || strcmp(verbs[i].sub, sub) == 0))
			return verbs[i].fn(c, a);
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strcmp(verbs[i].verb, verb) == 0)
			return usage_error("%s: unknown subcommand \"%s\"", verb, sub);
	return usage_error("unknown verb \"%s\"", verb);
}

/* Credentials: --token-file, else --user with --password-file, else $BITW_TOKEN; none is the server's to refuse. */
static int credentials(struct ctl *c, const struct args *a)
{
	const char *tf = opt_get(a, "token-file"), *env = getenv("BITW_TOKEN");

	c->user = opt_get(a, "user");
	c->password_file = opt_get(a, "password-file");
	if (tf && c->user)
		return usage_error("--token-file and --user exclude each other");
	if (c->password_file && !c->user)
		return usage_error("--password-file needs --user");
	if (c->user && !c->password_file)
		return usage_error("--user needs --password-file");
	if (tf) {
		if (!(c->token = read_secret(tf)))
			return EXIT_FAIL;
	} else if (!c->user && env && *env) {
		c->token = xstrdup(env);
	}
	return EXIT_OK;
}

static int setup(struct ctl *c, const struct args *a)
{
	const char *url = opt_get(a, "url"), *cacert = opt_get(a, "cacert");
	size_t n;

	if (!url)
		url = getenv("BITW_URL") && *getenv("BITW_URL") ? getenv("BITW_URL") : DEFAULT_URL;
	c->base = xstrdup(url);
	n = strlen(c->base);
	while (n && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	c->json = opt_get(a, "json") != NULL;
	if (!(c->curl = curl_easy_init())) {
		fputs("error: cannot initialise libcurl\n", stderr);
		return EXIT_FAIL;
	}
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
	curl_easy_setopt(c->curl, CURLOPT_COOKIEFILE, "");  /* cookies in memory only, for this call's session */
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "bitwctl/" BITW_VERSION);
	if (cacert)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, cacert);
	if (opt_get(a, "insecure")) {
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return credentials(c, a);
}

/* Ends a cookie session so it does not linger in the server until it expires; quietly, the work is done. */
static void logout(struct ctl *c)
{
	struct buf ignored = { 0 };
	long status = 0;

	if (c->session && c->csrf) {
		curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 10L);
		http_do(c, "POST", API "/logout", NULL, 0, collect, &ignored, &status);
	}
	buf_free(&ignored);
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct ctl c = { 0 };
	int rc;

	if ((rc = parse_args(argc, argv, &a)))
		return rc;
	if (opt_get(&a, "help") || (a.npos && strcmp(a.pos[0], "help") == 0)) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (opt_get(&a, "version")) {
		puts("bitwctl " BITW_VERSION);
		return EXIT_OK;
	}
	if (!a.npos) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((rc = setup(&c, &a)) == EXIT_OK) {
		rc = dispatch(&c, &a);
		logout(&c);
	}
	if (c.curl)
		curl_easy_cleanup(c.curl);
	curl_global_cleanup();
	free_secret(c.token);
	free_secret(c.csrf);
	free(c.base);
	return rc;
}
