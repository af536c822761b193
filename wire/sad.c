/* sad.c: the inbound SAD, (SPI, protocol) -> SA, as an open-addressing table built once and only read afterwards. */
#include <stdlib.h>

#include "sa.h"
#include "wire.h"

struct sad {
	uint32_t mask;  /* slots - 1; slots is a power of two at least twice the SAs */
	struct sad_slot {
		uint32_t spi;
		uint32_t proto; /* enum sa_proto: an AH+ESP bundle's two inbound SAs share one SPI (RFC 4301 4.4.2) */
		struct sa *sa;  /* NULL: empty */
	} slot[];
};

/* SPIs are often sequential or random; a multiplicative hash spreads both. */
static uint32_t spi_hash(uint32_t spi)
{
	return (uint32_t)((spi * 0x9e3779b97f4a7c15ull) >> 32);
}

struct sad *sad_build(struct sa *const *in_sas, uint32_t n)
{
	uint32_t slots = 4;
	struct sad *sad;

	while (slots < 2ull * n)
		slots <<= 1;
	sad = calloc(1, sizeof(*sad) + (size_t)slots * sizeof(sad->slot[0]));
	if (sad == NULL)
		return NULL;
	sad->mask = slots - 1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t spi = in_sas[i]->conf.spi, proto = in_sas[i]->conf.proto, h = spi_hash(spi) & sad->mask;

		/* A repeated key (the caller should prevent it): the later SA wins. */
		while (sad->slot[h].sa != NULL && (sad->slot[h].spi != spi || sad->slot[h].proto != proto))
			h = (h + 1) & sad->mask;
		sad->slot[h].spi = spi;
		sad->slot[h].proto = proto;
		sad->slot[h].sa = in_sas[i];
	}
	return sad;
}

void sad_free(struct sad *sad)
{
	free(sad);
}

struct sa *sad_bundle_esp(const struct sad *sad, const struct sa *ah, uint32_t spi, int *why)
{
	struct sa *esp = sad_lookup(sad, spi, PROTO_ESP);

	/* A clone policy's pair serves one host: another host's ESP inside this host's AH is not the bundle. */
	*why = !esp ? XE_BAD_ESP_SPI :
	       esp->conf.policy_id != ah->conf.policy_id || !bw_addr_eq(&esp->conf.clone_host, &ah->conf.clone_host) ?
	       XE_INBOUND_POLICY_FAILURE : 0;
	return *why ? NULL : esp;
}

struct sa *sad_lookup(const struct sad *sad, uint32_t spi, uint32_t proto)
{
	uint32_t h = spi_hash(spi) & sad->mask;

	for (;;) {
		const struct sad_slot *s = &sad->slot[h];

		if (s->sa == NULL || (s->spi == spi && s->proto == proto))
			return s->sa;
		h = (h + 1) & sad->mask;
	}
}
