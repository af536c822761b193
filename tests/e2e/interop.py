# interop.py: IKEv2 interoperability in network namespaces (strongSwan's charon as the peer); `interop.py TEST` runs one.
#
# swan.py builds hostA - gwA - [NAT] - router - gwB - hostB. The harness-* tests put charon on both gateways, so
# the harness is proven on its own, before and independently of bitw's IKE.

import os
import secrets
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitwtopo import Skip, log, main  # noqa: E402
from e2e import expect, new_marker  # noqa: E402
from swan import (  # noqa: E402
	HOST_A4, HOST_B4, SIDES, SUITES, Pki, SwanTopo, dn, esp_in_udp, have_strongswan, plaintext_between_lans,
	swanctl_conn, udp_ports,
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


TESTS = {
	'harness-swan-psk': lambda: harness('gcm', 'psk'),
	'harness-swan-cbc': lambda: harness('cbc', 'psk'),
	'harness-swan-rsa': lambda: harness('gcm', 'rsa'),
	'harness-swan-ecdsa': lambda: harness('gcm', 'ecdsa'),
	'harness-swan-nat': lambda: harness('gcm', 'psk', 'nat'),
}

if __name__ == '__main__':
	sys.exit(main(TESTS))
