/* test_clone.c: policy cloning: the per-host SA index, the clone value of a packet, the inbound host check, the
 * acquire queue shared fairly by hosts, and the schema's rules. */
#include <arpa/inet.h>
#include <jansson.h>

#include "check.h"
#include "jtext.h"
#include "sa.h"
#include "wire.h"
#include "wire_int.h"

static struct bw_addr addr(const char *text)
{
	struct bw_addr a = { 0 };

	a.family = strchr(text, ':') ? 6 : 4;
	inet_pton(a.family == 6 ? AF_INET6 : AF_INET, text, a.a);
	return a;
}

static struct sa *out_sa(uint32_t spi, uint32_t policy_id, const char *host)
{
	struct sa *sa = calloc(1, sizeof *sa);

	sa->conf.spi = spi;
	sa->conf.dir = DIR_OUT;
	sa->conf.policy_id = policy_id;
	if (host)
		sa->conf.clone_host = addr(host);
	return sa;
}

static void test_index(void)
{
	struct sa *sas[] = {
		out_sa(0x101, 1, "198.18.1.10"), out_sa(0x102, 1, "198.18.1.11"), out_sa(0x201, 2, "198.18.1.10"),
		out_sa(0x601, 1, "2001:db8:1::10"), out_sa(0x999, 1, NULL), out_sa(0x103, 1, "198.18.1.11"),
	};
	uint32_t n = sizeof sas / sizeof sas[0];
	struct clone_index *ci = clone_index_build(sas, n, NULL, 0);
	struct bw_addr a10 = addr("198.18.1.10"), a11 = addr("198.18.1.11"), a12 = addr("198.18.1.12");
	struct bw_addr v6 = addr("2001:db8:1::10"), v4in6 = { .family = 6 };
	struct sa *got, *ah;

	CHECK(ci != NULL, "the index builds");
	got = clone_index_lookup(ci, 1, &a10, &ah);
	CHECK(got && got->conf.spi == 0x101, "host .10 of policy 1 gets its own SA");
	got = clone_index_lookup(ci, 2, &a10, &ah);
	CHECK(got && got->conf.spi == 0x201, "the same host under another policy gets that policy's SA");
	got = clone_index_lookup(ci, 1, &a11, &ah);
	CHECK(got && got->conf.spi == 0x103, "host .11: the newer of its two SAs (make-before-break)");
	CHECK(clone_index_lookup(ci, 1, &a12, &ah) == NULL, "host .12 without an SA: none (the caller raises an ACQUIRE)");
	got = clone_index_lookup(ci, 1, &v6, &ah);
	CHECK(got && got->conf.spi == 0x601, "an IPv6 host");
	memcpy(v4in6.a, a10.a, 16);
	CHECK(clone_index_lookup(ci, 1, &v4in6, &ah) == NULL, "the family is part of the key");
	CHECK(clone_index_lookup(ci, 3, &a10, &ah) == NULL, "a policy without SAs: none");
	clone_index_free(ci);

	/* Many hosts: every one finds its own SA in the open-addressing table. */
	enum { MANY = 1000 };
	struct sa **many = calloc(MANY, sizeof *many);
	bool all = true;

	for (uint32_t i = 0; i < MANY; i++) {
		char h[32];

		snprintf(h, sizeof h, "198.18.%u.%u", i / 250, i % 250 + 1);
		many[i] = out_sa(0x1000 + i, 7, h);
	}
	ci = clone_index_build(many, MANY, NULL, 0);
	for (uint32_t i = 0; i < MANY && ci; i++) {
		got = clone_index_lookup(ci, 7, &many[i]->conf.clone_host, &ah);
		all &= got == many[i];
	}
	CHECK(ci && all, "%d hosts each find their own SA", MANY);
	/* The dummy loop walks every host's SA: each exactly once. */
	uint32_t pos = 0, walked = 0;

	all = true;
	for (struct sa *sa; ci && (sa = clone_index_next(ci, &pos)) != NULL; walked++) {
		all &= sa->conf.spi >= 0x1000 && sa->conf.spi < 0x1000 + MANY && !sa->dummy_next;
		sa->dummy_next = 1;
	}
	CHECK(walked == MANY && all, "clone_index_next visits each of the %d hosts' SAs once (%u)", MANY, walked);
	clone_index_free(ci);
	for (uint32_t i = 0; i < MANY; i++)
		free(many[i]);
	free(many);
	for (uint32_t i = 0; i < n; i++)
		free(sas[i]);
}

/* An ahesp clone policy: each host's AH SA sits beside its ESP SA; a host with only one of them has no bundle. */
static void test_index_bundle(void)
{
	struct sa *esp[] = { out_sa(0x301, 4, "198.18.1.10"), out_sa(0x302, 4, "198.18.1.11"),
	                     out_sa(0x304, 4, "198.18.1.10") };
	struct sa *ahs[] = { out_sa(0x401, 4, "198.18.1.10"), out_sa(0x403, 4, "198.18.1.12") };
	struct clone_index *ci = clone_index_build(esp, 3, ahs, 2);
	struct bw_addr a10 = addr("198.18.1.10"), a11 = addr("198.18.1.11"), a12 = addr("198.18.1.12");
	struct sa *got, *ah = esp[0];
	uint32_t pos = 0, walked = 0;

	CHECK(ci != NULL, "the index builds with AH SAs");
	got = clone_index_lookup(ci, 4, &a10, &ah);
	CHECK(got == esp[2] && ah == ahs[0], "host .10: its newest ESP SA and its AH SA");
	got = clone_index_lookup(ci, 4, &a11, &ah);
	CHECK(got == esp[1] && ah == NULL, "host .11: ESP but no AH yet (the caller fails closed)");
	got = clone_index_lookup(ci, 4, &a12, &ah);
	CHECK(got == NULL && ah == ahs[1], "host .12: AH but no ESP yet");
	while (ci && (got = clone_index_next(ci, &pos)) != NULL)
		walked++;
	CHECK(walked == 2, "clone_index_next walks the hosts' ESP SAs only (%u)", walked);
	clone_index_free(ci);

	/* Inbound: one host's AH SA and another's ESP SA share the policy but are no bundle. */
	struct sa *in[] = { out_sa(0x501, 4, "198.18.1.10"), out_sa(0x501, 4, "198.18.1.10"),
	                    out_sa(0x502, 4, "198.18.1.11") };
	struct sad *sad;
	int why = 0;

	in[0]->conf.proto = PROTO_AH;
	for (uint32_t i = 0; i < 3; i++)
		in[i]->conf.dir = DIR_IN;
	sad = sad_build(in, 3);
	CHECK(sad && sad_bundle_esp(sad, in[0], 0x501, &why) == in[1] && why == 0,
	      "host .10's AH SA takes host .10's ESP SA on the shared SPI");
	CHECK(sad && sad_bundle_esp(sad, in[0], 0x502, &why) == NULL && why == XE_INBOUND_POLICY_FAILURE,
	      "but not host .11's ESP SA (%d)", why);
	sad_free(sad);
	for (uint32_t i = 0; i < 3; i++)
		free(in[i]);
	for (uint32_t i = 0; i < 3; i++)
		free(esp[i]);
	for (uint32_t i = 0; i < 2; i++)
		free(ahs[i]);
}

static void test_value(void)
{
	struct pkt_info pi = { 0 };

	pi.src = addr("198.18.1.10");
	pi.dst = addr("198.18.2.20");
	CHECK(clone_value(CLONE_NONE, DIR_OUT, &pi) == NULL, "clone none: no value");
	CHECK(clone_value(CLONE_SRC, DIR_OUT, &pi) == &pi.src, "clone src, outbound: the source host");
	CHECK(clone_value(CLONE_DST, DIR_OUT, &pi) == &pi.dst, "clone dst, outbound: the destination host");
	CHECK(clone_value(CLONE_SRC, DIR_IN, &pi) == &pi.dst, "clone src, inbound: the destination (mirror image)");
	CHECK(clone_value(CLONE_DST, DIR_IN, &pi) == &pi.src, "clone dst, inbound: the source");
	CHECK(clone_key_hash(1, &pi.src) != clone_key_hash(1, &pi.dst) &&
	      clone_key_hash(1, &pi.src) != clone_key_hash(2, &pi.src), "the rate-limit key tells hosts and policies apart");
}

static void test_inbound(void)
{
	struct bw_addr h10 = addr("198.18.1.10"), none = { 0 };
	struct pkt_info from10 = { 0 }, from11 = { 0 };

	/* B's side of a clone dst policy (A's clone src): inbound, the host is the inner source. */
	from10.src = h10;
	from10.dst = from11.dst = addr("198.18.2.20");
	from11.src = addr("198.18.1.11");
	CHECK(clone_inbound_ok(CLONE_DST, &h10, &from10), "host .10's SA delivers host .10's packet");
	CHECK(!clone_inbound_ok(CLONE_DST, &h10, &from11), "host .10's SA refuses host .11's packet");
	CHECK(!clone_inbound_ok(CLONE_DST, &none, &from10), "an SA without a host under a clone policy delivers nothing");
	CHECK(!clone_inbound_ok(CLONE_SRC, &h10, &from10), "clone src inbound looks at the destination, not the source");
	CHECK(clone_inbound_ok(CLONE_NONE, &none, &from11), "a plain policy's SA delivers any host's packet");
	CHECK(!clone_inbound_ok(CLONE_NONE, &h10, &from10), "an SA with a host under a plain policy delivers nothing");
}

/* Offers one frame of waiter key to the queue as fwd.c does; returns whether it was queued. */
static bool offer(struct acq_slot *q, uint64_t key, uint32_t per, uint64_t now, uint32_t *evicted)
{
	int i = acq_admit(q, key, per);

	if (i < 0)
		return false;
	*evicted += q[i].key != 0;
	q[i].key = key;
	q[i].since_ms = now;
	return true;
}

static uint32_t held(const struct acq_slot *q, uint64_t key)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < ACQ_SLOTS; i++)
		n += q[i].key == key;
	return n;
}

static void test_acquire_queue(void)
{
	struct acq_slot *q = calloc(ACQ_SLOTS, sizeof *q);
	struct bw_addr h10 = addr("198.18.1.10"), h11 = addr("198.18.1.11");
	uint64_t noisy = clone_key_hash(5, &h10) | 1ull << 63, quiet = clone_key_hash(5, &h11) | 1ull << 63;
	uint32_t evicted = 0, got = 0;

	/* acquire_queue 8: each host of the clone policy has its own 8, not the policy's 8 shared. */
	for (uint32_t i = 0; i < 20; i++)
		got += offer(q, noisy, 8, i, &evicted);
	CHECK(got == 8 && held(q, noisy) == 8, "the noisy host keeps its 8 frames, no more (%u)", got);
	got = 0;
	for (uint32_t i = 0; i < 3; i++)
		got += offer(q, quiet, 8, 100 + i, &evicted);
	CHECK(got == 3 && held(q, noisy) == 8 && !evicted, "another host of the policy still queues its 3 frames");
	CHECK(!offer(q, quiet, 0, 200, &evicted), "acquire_queue 0 queues nothing");

	/* acquire_queue 1024 (more than the thread's ACQ_SLOTS): the noisy host fills them all ... */
	memset(q, 0, ACQ_SLOTS * sizeof *q);
	got = 0;
	for (uint32_t i = 0; i < 3 * ACQ_SLOTS; i++)
		got += offer(q, noisy, 1024, i, &evicted);
	CHECK(got == ACQ_SLOTS && held(q, noisy) == ACQ_SLOTS, "a lone noisy host may use all %d slots", ACQ_SLOTS);
	/* ... and a newcomer takes its oldest frames until they hold half each; then neither gains by trading. */
	got = evicted = 0;
	for (uint32_t i = 0; i < ACQ_SLOTS; i++)
		got += offer(q, quiet, 1024, 1000 + i, &evicted);
	CHECK(got == ACQ_SLOTS / 2 && evicted == got && held(q, quiet) == ACQ_SLOTS / 2 &&
	      held(q, noisy) == ACQ_SLOTS / 2, "the quiet host gets %d slots from the noisy one (%u)", ACQ_SLOTS / 2, got);
	bool oldest_gone = true;

	for (uint32_t i = 0; i < ACQ_SLOTS; i++)
		if (q[i].key == noisy)
			oldest_gone &= q[i].since_ms >= ACQ_SLOTS / 2;
	CHECK(oldest_gone, "the noisy host gave up its oldest frames");
	got = 0;
	for (uint32_t i = 0; i < 10; i++)
		got += offer(q, noisy, 1024, 2000 + i, &evicted);
	CHECK(!got && held(q, quiet) == ACQ_SLOTS / 2, "the noisy host cannot win them back");
	/* Many waiters: each newcomer gets a frame from the largest holder. */
	for (uint64_t k = 1; k <= 16; k++)
		got += offer(q, k, 1024, 3000 + k, &evicted);
	CHECK(got == 16 && held(q, noisy) == 24 && held(q, quiet) == 24, "16 policies get one slot each, taken "
	      "from both hosts alike (%u, %u left)", held(q, noisy), held(q, quiet));
	free(q);
}

#define KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff01020304"
#define DOC(pol, sa)                                                                                    \
	"{'ports': {'black': {'interface': 'b', 'addresses': ['192.0.2.10/24']}},"                     \
	" 'policies': [{'name': 'p', 'action': 'protect', 'peer': '198.51.100.1', 'src': '198.18.1.0/24'," \
	"   'dst': '198.18.2.0/24'" pol "}],"                                                            \
	" 'sas': [{'spi': 300, 'direction': 'out', 'policy': 'p', 'enc': 'aes-gcm-256', 'enc_key': '" KEY "'" sa "}]}"

static int parse(const char *doc, struct wire_config *c, char *err, size_t errlen)
{
	json_t *j = J(doc);
	int rc = config_from_json(j, c, err, errlen);

	json_decref(j);
	return rc;
}

static void reject(const char *doc, const char *want, const char *what)
{
	struct wire_config c;
	char err[256] = "";
	int rc = parse(doc, &c, err, sizeof err);

	CHECK(rc == -XE_BAD_PARAM && strstr(err, want), "%s: \"%s\"", what, err);
	if (!rc)
		config_free(&c);
}

static void test_schema(void)
{
	struct wire_config c;
	char err[256] = "";
	int rc = parse(DOC(", 'clone': 'src'", ", 'clone_host': '198.18.1.10'"), &c, err, sizeof err);
	json_t *pj, *sj;

	CHECK_EQ(rc, 0, "a clone policy with a per-host SA parses: %s", err);
	if (rc)
		return;
	CHECK(c.pol[0].clone == CLONE_SRC, "clone src");
	CHECK(c.sa[0].clone_host.family == 4 && c.sa[0].clone_host.a[3] == 10, "the SA's clone_host");
	pj = policy_to_json(&c.pol[0]);
	sj = sa_to_json(&c.sa[0]);
	CHECK(!strcmp(json_string_value(json_object_get(pj, "clone")), "src"), "the policy says clone src back");
	CHECK(!strcmp(json_string_value(json_object_get(sj, "clone_host")), "198.18.1.10"), "the SA says its host back");
	json_decref(pj);
	json_decref(sj);
	config_free(&c);
	rc = parse(DOC("", ""), &c, err, sizeof err);
	CHECK(!rc && c.pol[0].clone == CLONE_NONE, "clone defaults to none");
	if (!rc) {
		pj = policy_to_json(&c.pol[0]);
		CHECK(!strcmp(json_string_value(json_object_get(pj, "clone")), "none"), "and says none");
		json_decref(pj);
		config_free(&c);
	}
	rc = parse(DOC(", 'clone': 'dst'", ", 'clone_host': '198.18.2.7'"), &c, err, sizeof err);
	CHECK(!rc && c.pol[0].clone == CLONE_DST, "clone dst with a host inside dst: %s", err);
	if (!rc)
		config_free(&c);
	reject(DOC(", 'clone': 'src'", ""), "sas[0].clone_host", "an SA of a clone policy must name its host");
	reject(DOC(", 'clone': 'src'", ", 'clone_host': '198.18.2.7'"), "sas[0].clone_host",
	       "a host outside the cloned selector");
	reject(DOC(", 'clone': 'dst'", ", 'clone_host': '198.18.1.10'"), "sas[0].clone_host",
	       "clone dst: the host must be inside dst");
	reject(DOC("", ", 'clone_host': '198.18.1.10'"), "sas[0].clone_host", "clone_host without a clone policy");
	reject(DOC(", 'clone': 'both'", ""), "policies[0].clone", "an unknown clone value");
	reject("{'policies': [{'name': 'b', 'action': 'bypass', 'clone': 'src'}]}", "policies[0].clone",
	       "clone on a bypass policy");
}

int main(void)
{
	test_index();
	test_index_bundle();
	test_value();
	test_inbound();
	test_acquire_queue();
	test_schema();
	return check_done();
}
