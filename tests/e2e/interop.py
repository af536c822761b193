# interop.py: IKEv2 interoperability in network namespaces (strongSwan's charon as the peer); `interop.py TEST` runs one.
#
# swan.py builds hostA - gwA - [NAT] - router - gwB - hostB. The harness-* tests put charon on both gateways, so
# the harness is proven on its own, before and independently of bitw's IKE.

import os
import secrets
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitwtopo import Fail, Skip, log, main  # noqa: E402
from e2e import expect, new_marker  # noqa: E402
from swan import (  # noqa: E402
	HOST_A4, HOST_B4, SIDES, SUITES, Pki, SwanTopo, dn, esp_in_udp, have_strongswan, plaintext_between_lans,
	children_spis, ike_spis, swanctl_conn, udp_ports, wait_for,
)


def need_swan():
	if not have_strongswan():
		raise Skip('strongSwan is not installed (scripts/deps installs it)')


def traffic_both_ways(t, marker, nbytes=300_000):
	"""Pings both ways and a TCP transfer A->B whose checksum must match."""
	for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
		r = t.ping(src, dst, count=3, marker=marker)
		expect(r.received == 3, f'ping {src} -> {dst} through the tunnel ({r.received}/3)')
	sent, got = t.tcp_transfer('hA', HOST_B4, 'hB', nbytes, marker)
	expect(got and got.get('bytes') == nbytes and got.get('sha256') == sent.get('sha256'),
	       f'a {nbytes}-byte TCP transfer arrives whole (sent {sent}, got {got})')


def swan_pair_conf(t, side, suite, auth, psk=None, pki=None, start='none'):
	"""swanctl.conf of the charon on one side of a charon<->charon pair."""
	other = 'B' if side == 'A' else 'A'
	ike, esp = SUITES[suite]
	# Identities are the public addresses: behind the NAT, A's own address is not the one B knows it by.
	kw = {}
	if auth == 'psk':
		kw = {'psk': psk, 'local_id': t.public(side), 'remote_id': t.public(other)}
	else:
		kw = {'auth': 'pubkey', 'cert': f'{side}.pem', 'ca': 'ca.pem', 'local_id': dn(f'gw{side}'),
		      'remote_id': dn(f'gw{other}')}
	return swanctl_conn('net', t.wan(side), t.public(other), SIDES[side]['lan'], SIDES[other]['lan'], ike, esp,
	                    start=start, **kw)


def harness(suite='gcm', auth='psk', nat=''):
	"""charon <-> charon through the topology: the SA comes up, traffic flows both ways through ipsec0, the WAN
	carries it only as ESP in UDP 4500 (and, behind the NAT, from the NAT's address)."""
	need_swan()
	nat = nat == 'nat'
	marker = new_marker()
	with SwanTopo(f'sw{suite}{auth}{"n" if nat else ""}', 'swan', 'swan', nat=nat) as t:
		psk = secrets.token_urlsafe(24)
		pki = None
		if auth != 'psk':
			pki = Pki(os.path.join(t.dir, 'pki'), kind=auth)
		for side in 'AB':
			c = t.start_charon(side)
			if pki:
				cert, key = pki.issue(side, f'gw{side}', f'IP:{t.wan(side)}')
				shutil.copy(cert, os.path.join(c.swanctl_dir, 'x509', f'{side}.pem'))
				shutil.copy(key, os.path.join(c.swanctl_dir, 'private', f'{side}.key'))
				shutil.copy(pki.ca_cert, os.path.join(c.swanctl_dir, 'x509ca', 'ca.pem'))
			c.load(swan_pair_conf(t, side, suite, auth, psk, pki))
		cap = t.capture('r', 'to-b', 'wan')
		t.charon['A'].initiate('net')
		sa = t.charon['B'].wait_sa()
		log(f'B sees: {sa.get("encr-alg")}/{sa.get("encr-keysize")} {sa.get("dh-group")} '
		    f'remote {sa.get("remote-host")}:{sa.get("remote-port")} nat-remote={sa.get("nat-remote")}')
		want_dh = 'CURVE_25519' if suite == 'gcm' else 'MODP_3072'
		expect(sa.get('dh-group') == want_dh, f'the IKE SA used {want_dh} ({sa.get("dh-group")})')
		if nat:
			# kernel-libipsec fakes a NAT on every SA (nat-remote is always yes); nat-local is the real detection.
			sa_a = t.charon['A'].wait_sa()
			expect(sa_a.get('nat-local') == 'yes' and sa.get('remote-host') == t.public('A'),
			       f'A detected that it is behind the NAT and B sees it as {t.public("A")} '
			       f'(nat-local={sa_a.get("nat-local")}, remote-host={sa.get("remote-host")})')
		traffic_both_ways(t, marker)
		pkts = cap.stop()
		expect(not plaintext_between_lans(pkts), 'no packet between the LANs crossed the WAN in clear')
		esp = esp_in_udp(pkts)
		expect(len(esp) >= 12, f'the traffic crossed the WAN as ESP in UDP 4500 ({len(esp)} frames)')
		from scapy.layers.inet import IP
		srcs = {p[IP].src for p in esp}
		expect(srcs <= {t.public('A'), t.public('B')}, f'ESP on the WAN only between the public addresses ({srcs})')
		log(f'UDP ports on the WAN: {sorted(udp_ports(pkts))}')



# --- bitw as one of the gateways --------------------------------------------------------------------------------

API = '/api/v1'


class BitwGw:
	"""bitw-wire (its interfaces only) and a bitwd beside it on one side of a SwanTopo; everything else over REST."""

	def __init__(self, t, side):
		from rest import Bitwd, start_wire
		self.t, self.side = t, side
		start_wire(t, side)
		self.d = Bitwd(t, side).start()
		self.api = self.d.api
		s = SIDES[side]
		hop = {'A': '203.0.113.1' if t.nat else '192.0.2.1', 'B': '198.51.100.1'}[side]
		self.api.call('PUT', f'{API}/ports/red', {'interface': s['red']}, ok=(200, 201, 204, 503))
		self.api.call('PUT', f'{API}/ports/black', {'interface': s['blk'], 'addresses': [f'{t.wan(side)}/24'],
		                                             'gateway4': hop})
		self.api.call('PUT', f'{API}/options', {'default_action': 'discard', 'bridge_non_ip': True})
		self.api.call('POST', f'{API}/policies', {'name': 'gw', 'priority': 1, 'action': 'bypass',
		                                          'src': s['lan'], 'dst': s['gw']}, ok=(201,))

	def add_cert(self, name, cert, key=None):
		body = {'name': name, 'pem': open(cert).read()}
		if key:
			body['key'] = open(key).read()
		return self.api.call('POST', f'{API}/certificates', body, ok=(201,))

	def add_peer(self, other_side, suite, auth='psk', psk=None, start='always', local_id=None, remote_id=None,
	             cert=None, ca=None, **extra):
		ike, esp = SUITES[suite]
		t = self.t
		body = {'name': 'swan' if t.kind[other_side] == 'swan' else 'bitw', 'address': t.public(other_side),
		        'local': t.wan(self.side), 'local_id': local_id or t.public(self.side),
		        'remote_id': remote_id or t.public(other_side), 'auth': 'psk' if auth == 'psk' else 'pubkey', 'ike_proposals': ike,
		        'esp_proposals': esp, 'start': start}
		if auth == 'psk':
			body['psk'] = psk
		else:
			body['certificate'], body['ca'] = cert, ca
		body.update(extra)
		self.peer = self.api.call('POST', f'{API}/peers', body, ok=(201,))
		s, o = SIDES[self.side], SIDES[other_side]
		self.api.call('POST', f'{API}/policies', {'name': 'lan', 'priority': 3, 'action': 'protect', 'src': s['lan'],
		                                          'dst': o['lan'], 'peer': t.public(other_side),
		                                          'ike_peer': self.peer['id'], 'mss_clamp': True}, ok=(201,))
		return self.peer

	def sas(self):
		return self.api.items(f'{API}/ike-sas')

	def established(self):
		return [sa for sa in self.sas() if sa.get('state') == 'ESTABLISHED' and sa.get('child_sas')]

	def wait_up(self, timeout=20):
		sas = wait_for(self.established, timeout)
		if not sas:
			raise Fail(f'bitw {self.side}: no established IKE SA with a child in {timeout}s: {self.sas()}\n'
			           f'bitwd log:\n{self.d.proc.log()[-4000:]}')
		return sas[0]

	def initiate(self):
		return self.api.call('POST', f'{API}/ike-sas', {'peer': self.peer['id']}, ok=(200, 201, 202))

	def rekey(self, sa_id, spi_in=None):
		body = {} if spi_in is None else {'spi_in': spi_in}
		return self.api.call('POST', f'{API}/ike-sas/{sa_id}/rekey', body, ok=(200, 202, 204))


def child_spis(sa):
	return sorted((c.get('spi_in'), c.get('spi_out')) for c in sa.get('child_sas', []))


def swan_peer_of_bitw(t, side, suite, auth, psk=None, start='none', **kw):
	"""swanctl.conf of the charon facing a bitw."""
	other = 'B' if side == 'A' else 'A'
	ike, esp = SUITES[suite]
	if auth == 'psk':
		kw.update(psk=psk, local_id=t.public(side), remote_id=t.public(other))
	else:
		kw.update(auth='pubkey', cert=f'{side}.pem', ca='ca.pem', local_id=dn(f'gw{side}'),
		          remote_id=dn(f'gw{other}'))
	return swanctl_conn('bitw', t.wan(side), t.public(other), SIDES[side]['lan'], SIDES[other]['lan'], ike, esp,
	                    start=start, **kw)


def check_wan(t, cap):
	pkts = cap.stop()
	expect(not plaintext_between_lans(pkts), 'no packet between the LANs crossed the WAN in clear')
	esp = esp_in_udp(pkts)
	expect(len(esp) >= 12, f'the traffic crossed the WAN as ESP in UDP 4500 ({len(esp)} frames)')
	return pkts


def install_pki(t, pki, side, charon=None, bitw=None):
	"""A certificate for side's gateway (subject gw<side>, SAN its public address) where that gateway reads it."""
	cert, key = pki.issue(side, f'gw{side}', f'IP:{t.public(side)}')
	if charon:
		shutil.copy(cert, os.path.join(charon.swanctl_dir, 'x509', f'{side}.pem'))
		shutil.copy(key, os.path.join(charon.swanctl_dir, 'private', f'{side}.key'))
		shutil.copy(pki.ca_cert, os.path.join(charon.swanctl_dir, 'x509ca', 'ca.pem'))
	if bitw:
		bitw.add_cert(f'gw{side}', cert, key)
		bitw.add_cert('ca', pki.ca_cert)


def with_swan(initiator='bitw', suite='gcm', auth='psk', nat=False):
	"""bitw A <-> charon B: the SA comes up (either side starting it), traffic flows both ways and crosses the WAN
	only as ESP in UDP 4500."""
	need_swan()
	marker = new_marker()
	name = f'bs{initiator[0]}{suite}{auth}{"n" if nat else ""}'
	with SwanTopo(name, 'bitw', 'swan', nat=nat) as t:
		psk = secrets.token_urlsafe(24)
		pki = Pki(os.path.join(t.dir, 'pki'), kind=auth) if auth != 'psk' else None
		c = t.start_charon('B')
		b = BitwGw(t, 'A')
		if pki:
			install_pki(t, pki, 'B', charon=c)
			install_pki(t, pki, 'A', bitw=b)
		c.load(swan_peer_of_bitw(t, 'B', suite, auth, psk))
		cap = t.capture('r', 'to-b', 'wan')
		kw = {'psk': psk} if auth == 'psk' else {'cert': 'gwA', 'ca': 'ca', 'local_id': dn('gwA'),
		                                         'remote_id': dn('gwB')}
		b.add_peer('B', suite, auth, start='always' if initiator == 'bitw' else 'never', **kw)
		if initiator == 'swan':
			c.initiate('bitw')
		sa = c.wait_sa()
		bsa = b.wait_up()
		log(f'charon: {sa.get("encr-alg")}/{sa.get("encr-keysize")} {sa.get("dh-group")} initiator='
		    f'{sa.get("initiator")}; bitw: {bsa}')
		want_dh = 'MODP_3072' if suite == 'cbc' else 'CURVE_25519'
		expect(sa.get('dh-group') == want_dh, f'the IKE SA used {want_dh} ({sa.get("dh-group")})')
		if suite in ('ccm', 'ctr'):
			kids = c.children()
			want = {'ccm': ('AES_CCM_16', None), 'ctr': ('AES_CTR', 'HMAC_SHA2_256_128')}[suite]
			got = [(k.get("encr-alg"), k.get("integ-alg")) for _, k in kids]
			expect(got == [want], f'charon keyed the child SA with {want} ({got})')
			bkid = (bsa.get('child_sas') or [{}])[0].get('algorithms', '')
			expect(bkid.startswith({'ccm': 'aes256ccm16', 'ctr': 'aes128ctr-sha256'}[suite]),
			       f'and bitw with the same ({bkid})')
		expect((sa.get('initiator') == 'yes') == (initiator == 'swan'),
		       f'{initiator} started the IKE SA (charon initiator={sa.get("initiator")})')
		if nat:
			expect(bsa.get('nat_local') is True and sa.get('remote-host') == t.public('A'),
			       f'bitw detected that it is behind the NAT and charon sees it as {t.public("A")} '
			       f'(nat_local={bsa.get("nat_local")}, remote-host={sa.get("remote-host")})')
		traffic_both_ways(t, marker)
		check_wan(t, cap)
		b.d.stop()


class SpiWatch:
	"""Samples a function returning a hashable state (e.g. SPIs) in the background; the distinct values seen."""

	def __init__(self, fn, step=0.3):
		import threading
		self.fn, self.step, self.seen, self.errors = fn, step, [], []
		self.stop_ev = threading.Event()
		self.th = threading.Thread(target=self._run, daemon=True)
		self.th.start()

	def _run(self):
		while not self.stop_ev.is_set():
			try:
				v = self.fn()
				if v and (not self.seen or self.seen[-1] != v):
					self.seen.append(v)
			except Exception as e:  # a sample may race with a rekey; note it, keep sampling
				self.errors.append(str(e))
			self.stop_ev.wait(self.step)

	def stop(self):
		self.stop_ev.set()
		self.th.join(10)
		return self.seen


def distinct(samples):
	"""Every SA (SPI pair or id) that appeared in a SpiWatch's samples."""
	return {x for sample in samples for x in sample}


def rekey_with_swan():
	"""Under a continuous ping hostA <-> hostB, the child SA and the IKE SA are rekeyed by bitw (REST, at once) and
	by charon (its 20 s / 25 s rekey times): the SPIs change every time and not one ping is lost."""
	need_swan()
	from rest import Flow
	with SwanTopo('bsrekey', 'bitw', 'swan') as t:
		psk = secrets.token_urlsafe(24)
		c = t.start_charon('B')
		b = BitwGw(t, 'A')
		c.load(swan_peer_of_bitw(t, 'B', 'gcm', 'psk', psk, child_rekey=20, ike_rekey=25))
		b.add_peer('B', 'gcm', psk=psk, start='always')
		c.wait_sa()
		b.wait_up()
		child0, ike0 = children_spis(c), ike_spis(c)
		kids = SpiWatch(lambda: tuple(children_spis(c)))
		ikes = SpiWatch(lambda: tuple(ike_spis(c)))
		flow = Flow(t, 'hA', HOST_B4, count=600, interval=0.05, name='flow')
		time.sleep(3)
		sa = b.wait_up()
		b.rekey(sa['id'], spi_in=sa['child_sas'][0]['spi_in'])
		time.sleep(3)
		b.rekey(b.wait_up()['id'])
		flow.expect_lossless('across child and IKE SA rekeys by both sides')
		kids, ikes = kids.stop(), ikes.stop()
		log(f'child SPI sets seen by charon: {kids}; IKE SPI sets: {ikes}')
		expect(len(distinct(kids)) >= 3 and children_spis(c) != child0,
		       f'the child SA was rekeyed by bitw and by charon ({len(distinct(kids))} SPI pairs seen)')
		expect(len(distinct(ikes)) >= 3 and ike_spis(c) != ike0,
		       f'the IKE SA was rekeyed by bitw and by charon ({len(distinct(ikes))} SPI pairs seen)')
		expect(len(c.sas()) == 1 and len(c.children()) == 1,
		       f'after the rekeys one IKE SA with one child is left on charon ({len(c.sas())}, {len(c.children())})')
		r = t.ping('hB', HOST_A4, count=3)
		expect(r.received == 3, f'traffic still flows after the rekeys ({r.received}/3)')
		b.d.stop()


def dpd_with_swan():
	"""charon vanishes (SIGKILL, no DELETE): bitw's liveness check (every 2 s, dead after 10 s unanswered) notices
	within 20 s and restarts the SA, which comes back by itself once charon runs again."""
	need_swan()
	with SwanTopo('bsdpd', 'bitw', 'swan') as t:
		psk = secrets.token_urlsafe(24)
		c = t.start_charon('B')
		b = BitwGw(t, 'A')
		c.load(swan_peer_of_bitw(t, 'B', 'gcm', 'psk', psk))
		b.add_peer('B', 'gcm', psk=psk, start='always', dpd_interval=2, dpd_action='restart')
		c.wait_sa()
		old = b.wait_up()
		c.stop(signal.SIGKILL)
		t0 = time.time()
		gone = wait_for(lambda: all(sa.get('id') != old['id'] for sa in b.sas()), 20, step=0.5)
		took = time.time() - t0
		expect(gone, f'bitw dropped the dead IKE SA ({took:.1f} s; {b.sas()})')
		log(f'bitw noticed the dead peer after {took:.1f} s')
		c = t.start_charon('B')
		c.load(swan_peer_of_bitw(t, 'B', 'gcm', 'psk', psk))
		c.wait_sa(timeout=60)
		b.wait_up(timeout=10)
		traffic_both_ways(t, new_marker(), nbytes=100_000)
		b.d.stop()


def idi_with_swan():
	"""Two bitw peers share charon's address, each for another identity and PSK (the decoy made first, so an
	address-only choice takes it): charon's IDi picks the right one, the SA comes up with its PSK and carries
	traffic; then an identity neither peer takes is refused with AUTHENTICATION_FAILED."""
	need_swan()
	with SwanTopo('bsidi', 'bitw', 'swan') as t:
		psk, decoy_psk = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
		c = t.start_charon('B')
		b = BitwGw(t, 'A')
		ike, esp = SUITES['gcm']
		b.api.call('POST', f'{API}/peers', {'name': 'decoy', 'address': t.public('B'), 'local': t.wan('A'),
		                                     'local_id': t.public('A'), 'remote_id': 'someone-else.example.org',
		                                     'auth': 'psk', 'psk': decoy_psk, 'ike_proposals': ike,
		                                     'esp_proposals': esp, 'start': 'never'}, ok=(201,))
		b.add_peer('B', 'gcm', psk=psk, start='never', remote_id='gw-b.example.org')

		def conf(local_id):
			return swanctl_conn('bitw', t.wan('B'), t.public('A'), SIDES['B']['lan'], SIDES['A']['lan'], ike, esp,
			                    local_id=local_id, remote_id=t.public('A'), psk=psk)
		c.load(conf('gw-b.example.org'))
		c.initiate('bitw')
		c.wait_sa()
		bsa = b.wait_up()
		expect(bsa.get('peer') == 'swan' and bsa.get('remote_id') == 'gw-b.example.org',
		       f'bitw took the peer whose identity charon sent ({bsa.get("peer")}, {bsa.get("remote_id")})')
		traffic_both_ways(t, new_marker(), nbytes=100_000)
		c.terminate_ike('bitw')
		wait_for(lambda: not b.established(), 10)
		c.load(conf('mallory.example.org'))
		try:
			c.initiate('bitw', timeout=10)
		except Exception as e:  # swanctl fails the initiate: that is the point
			log(f'charon: {str(e)[:200]}')
		log_text = c.log()
		expect('AUTHENTICATION_FAILED' in log_text and not b.established(),
		       'an identity neither peer takes: AUTHENTICATION_FAILED, no SA')
		b.d.stop()


# --- bitw <-> bitw ---------------------------------------------------------------------------------------------

def bitw_pair(t, suite='gcm', auth='psk', **peer_a):
	"""Both gateways bitw; A starts the SA, B only responds."""
	psk = secrets.token_urlsafe(24)
	a, b = BitwGw(t, 'A'), BitwGw(t, 'B')
	kw = {}
	if auth != 'psk':
		pki = Pki(os.path.join(t.dir, 'pki'), kind=auth)
		install_pki(t, pki, 'A', bitw=a)
		install_pki(t, pki, 'B', bitw=b)
	for g, other, start, extra in ((b, 'A', 'never', {}), (a, 'B', 'always', peer_a)):
		side = g.side
		if auth == 'psk':
			kw = {'psk': psk}
		else:
			kw = {'cert': f'gw{side}', 'ca': 'ca', 'local_id': dn(f'gw{side}'), 'remote_id': dn(f'gw{other}')}
		g.add_peer(other, suite, auth, start=start, **kw, **extra)
	a.wait_up()
	b.wait_up()
	return a, b


def bitw_bitw(suite='gcm', auth='psk', nat=False):
	"""bitw <-> bitw over IKEv2: the SA comes up, traffic flows both ways, the WAN carries only ESP (in UDP 4500
	behind the NAT)."""
	marker = new_marker()
	with SwanTopo(f'bb{suite}{auth}{"n" if nat else ""}', 'bitw', 'bitw', nat=nat) as t:
		cap = t.capture('r', 'to-b', 'wan')
		a, b = bitw_pair(t, suite, auth)
		id_a, id_b = (t.public('A'), t.public('B')) if auth == 'psk' else (dn('gwA'), dn('gwB'))
		asa, bsa = a.wait_up(), b.wait_up()
		expect((asa.get('local_id'), asa.get('remote_id'), bsa.get('local_id'), bsa.get('remote_id')) ==
		       (id_a, id_b, id_b, id_a), f'/ike-sas names the identities each side authenticated '
		       f'(A {asa.get("local_id")!r}/{asa.get("remote_id")!r}, B {bsa.get("local_id")!r}/{bsa.get("remote_id")!r})')
		for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
			r = t.ping(src, dst, count=3, marker=marker)
			expect(r.received == 3, f'ping {src} -> {dst} through the tunnel ({r.received}/3)')
		sent, got = t.tcp_transfer('hA', HOST_B4, 'hB', 300_000, marker)
		expect(got and got.get('sha256') == sent.get('sha256'), f'a TCP transfer arrives whole ({sent}, {got})')
		pkts = cap.stop()
		expect(not plaintext_between_lans(pkts), 'no packet between the LANs crossed the WAN in clear')
		from scapy.layers.inet import IP
		esp = [p for p in pkts if IP in p and p[IP].proto == 50] + esp_in_udp(pkts)
		expect(len(esp) >= 12, f'the traffic crossed the WAN as ESP ({len(esp)} frames)')
		if nat:
			bsa = b.wait_up()
			expect(bsa.get('nat_remote') is True and esp_in_udp(pkts),
			       f'B saw A behind the NAT and ESP went in UDP 4500 ({bsa.get("nat_remote")})')
		a.d.stop()
		b.d.stop()


def bitw_bitw_rekey():
	"""bitw <-> bitw: A rekeys child and IKE SA from its lifetimes (60 s, margins 42/35 s) and B on REST demand,
	all under a continuous ping that loses nothing."""
	from rest import Flow
	with SwanTopo('bbrekey', 'bitw', 'bitw') as t:
		a, b = bitw_pair(t, child_lifetime=60, ike_lifetime=60, rekey_margin=40)
		first = b.wait_up()
		kids = SpiWatch(lambda: tuple(child_spis(b.wait_up(timeout=2))))
		ikes = SpiWatch(lambda: tuple(sa['id'] for sa in b.established()))
		flow = Flow(t, 'hA', HOST_B4, count=560, interval=0.05, name='flow')
		time.sleep(3)
		sa = b.wait_up()
		b.rekey(sa['id'], spi_in=sa['child_sas'][0]['spi_in'])
		time.sleep(3)
		b.rekey(b.wait_up()['id'])
		flow.expect_lossless('across child and IKE SA rekeys by both bitws')
		kids, ikes = kids.stop(), ikes.stop()
		log(f'child SPI sets seen on B: {kids}; IKE SAs: {ikes}')
		expect(len(distinct(kids)) >= 3 and child_spis(b.wait_up()) != child_spis(first),
		       f'the child SA was rekeyed on demand and by lifetime ({len(distinct(kids))} SPI pairs seen)')
		expect(len(distinct(ikes)) >= 3, f'the IKE SA was rekeyed on demand and by lifetime '
		       f'({len(distinct(ikes))} IKE SAs seen)')
		a.d.stop()
		b.d.stop()


def bitw_bitw_dpd():
	"""bitw <-> bitw: B's bitw-wire and bitwd vanish (SIGKILL); A's liveness check (2 s, dead after 10 s unanswered)
	notices within 20 s and clears the SA."""
	with SwanTopo('bbdpd', 'bitw', 'bitw') as t:
		a, b = bitw_pair(t, dpd_interval=2, dpd_action='clear')
		old = a.wait_up()
		b.d.kill()
		t.bitw.pop('B').stop(signal.SIGKILL)
		t0 = time.time()
		gone = wait_for(lambda: all(sa.get('id') != old['id'] for sa in a.sas()), 20, step=0.5)
		expect(gone, f'A cleared the IKE SA of the dead peer ({time.time() - t0:.1f} s; {a.sas()})')
		log(f'A noticed the dead peer after {time.time() - t0:.1f} s')
		r = t.ping('hA', HOST_B4, count=2, wait=1)
		expect(r.received == 0, f'nothing reaches hostB any more, and nothing leaks ({r.received}/2)')
		a.d.stop()


TESTS = {
	'harness-swan-psk': lambda: harness('gcm', 'psk'),
	'harness-swan-cbc': lambda: harness('cbc', 'psk'),
	'harness-swan-rsa': lambda: harness('gcm', 'rsa'),
	'harness-swan-ecdsa': lambda: harness('gcm', 'ecdsa'),
	'harness-swan-nat': lambda: harness('gcm', 'psk', 'nat'),
	'swan-psk-gcm-init': lambda: with_swan('bitw', 'gcm', 'psk'),
	'swan-psk-cbc-resp': lambda: with_swan('swan', 'cbc', 'psk'),
	'swan-rsa-init': lambda: with_swan('bitw', 'gcm', 'rsa'),
	'swan-ecdsa-resp': lambda: with_swan('swan', 'cbc', 'ecdsa'),
	'swan-nat': lambda: with_swan('bitw', 'gcm', 'psk', nat=True),
	'swan-ccm-init': lambda: with_swan('bitw', 'ccm', 'psk'),
	'swan-ctr-resp': lambda: with_swan('swan', 'ctr', 'psk'),
	'swan-idi-resp': idi_with_swan,
	'swan-rekey': rekey_with_swan,
	'swan-dpd': dpd_with_swan,
	'bitw-psk': lambda: bitw_bitw('gcm', 'psk'),
	'bitw-rsa-cbc': lambda: bitw_bitw('cbc', 'rsa'),
	'bitw-ecdsa': lambda: bitw_bitw('gcm', 'ecdsa'),
	'bitw-nat': lambda: bitw_bitw('gcm', 'psk', nat=True),
	'bitw-rekey': bitw_bitw_rekey,
	'bitw-dpd': bitw_bitw_dpd,
}

if __name__ == '__main__':
	sys.exit(main(TESTS))
