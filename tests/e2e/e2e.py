# e2e.py: the end-to-end tests of bitw-wire in network namespaces; `e2e.py TEST` runs one (exit 0/1/77).

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitwtopo import (  # noqa: E402
	ALGS, GW_A4, HOST_A4, HOST_A6, HOST_B4, HOST_B6, LAN_A4, LAN_B4, SPI, WAN, Fail, Keys, Skip, Topo,
	cleanup_stale, counter, events_seen, frames_with, last_json, list_netns, log, main, other, pid_alive,
	policy_stats, sa_stats, sh, site_config, wait_event,
)


def new_marker():
	# 16 bytes: ping -p repeats at most 16 pattern bytes
	return 'BITW' + os.urandom(6).hex()


def need_bitw(t):
	if t.mode != 'bitw':
		raise Skip('needs bitw-wire (BITW_E2E_MODE=bridge)')
	if not t.bitw_wire or not os.access(t.bitw_wire, os.X_OK):
		raise Skip(f'bitw-wire not built ({t.bitw_wire})')


def expect(cond, what):
	if not cond:
		raise Fail(what)
	log('ok:', what)


# --- reading captures --------------------------------------------------------

def ip_layer(p):
	from scapy.layers.inet import IP
	from scapy.layers.inet6 import IPv6
	if IP in p:
		return p[IP]
	if IPv6 in p:
		return p[IPv6]
	return None


def lan_of(addr):
	"""'A' or 'B' for an address in a site's LAN, else None."""
	if addr.startswith(('198.18.1.', '2001:db8:1::')):
		return 'A'
	if addr.startswith(('198.18.2.', '2001:db8:2::')):
		return 'B'
	return None


def cleartext_between_lans(pkts, allow=lambda p: False):
	"""Frames on the WAN whose outer IP header is host-to-host (not tunnelled)."""
	out = []
	for p in pkts:
		ip = ip_layer(p)
		if ip is None or None in (lan_of(ip.src), lan_of(ip.dst)) or lan_of(ip.src) == lan_of(ip.dst):
			continue  # not site to site (a host and its own gateway is bypassed)
		if not allow(p):
			out.append(p)
	return out


def esp_frames(pkts, spi=None):
	"""ESP frames (plain or in UDP 4500) with their SPI: [(frame, spi, esp_bytes, outer)]."""
	from scapy.layers.inet import UDP
	out = []
	for p in pkts:
		ip = ip_layer(p)
		if ip is None:
			continue
		proto = ip.proto if ip.version == 4 else ip.nh
		if proto == 50:
			raw = bytes(ip.payload)
		elif UDP in p and p[UDP].dport == 4500 and p[UDP].sport == 4500:
			raw = bytes(p[UDP].payload)
			if raw[:4] == b'\0\0\0\0' or len(raw) < 8:
				continue  # non-ESP marker (IKE) or keepalive
		else:
			continue
		s = int.from_bytes(raw[:4], 'big')
		if spi is None or s == spi:
			out.append((p, s, raw, ip))
	return out


def gmac_verify(key, raw):
	"""RFC 4543 ESP (no ESN) checked with cryptography's AES-GCM: empty plaintext, SPI..trailer as AAD."""
	from cryptography.hazmat.primitives.ciphers.aead import AESGCM
	from scapy.layers.inet import IP
	from scapy.layers.inet6 import IPv6
	body, tag = raw[:-16], raw[-16:]
	AESGCM(key[:-4]).decrypt(key[-4:] + raw[8:16], tag, body)  # raises InvalidTag
	padlen, nh = body[-2], body[-1]
	inner = body[16:len(body) - 2 - padlen]
	return IP(inner) if nh == 4 else IPv6(inner)


def decrypt(keys, spi, raw, outer):
	"""Decrypt one ESP payload with scapy's independent implementation."""
	from scapy.layers.inet import IP
	from scapy.layers.inet6 import IPv6
	from scapy.layers.ipsec import ESP
	if keys.alg.startswith('aes-gmac'):
		return gmac_verify(keys.enc[spi], raw)
	sa = keys.scapy_sa(spi, outer.src, outer.dst)
	if outer.version == 4:
		pkt = IP(src=outer.src, dst=outer.dst, proto=50) / ESP(raw)
	else:
		pkt = IPv6(src=outer.src, dst=outer.dst, nh=50) / ESP(raw)
	pkt = pkt.__class__(bytes(pkt))
	return sa.decrypt(pkt)


def tcp_mss(p):
	from scapy.layers.inet import TCP
	for k, v in p[TCP].options:
		if k == 'MSS':
			return v
	return None


def syns(pkts, synack=False):
	from scapy.layers.inet import TCP
	want = 0x12 if synack else 0x02
	return [p for p in pkts if TCP in p and (int(p[TCP].flags) & 0x12) == want]


# --- the tests ---------------------------------------------------------------

def pings_both_ways(t, marker, count=3):
	for src, dst in (('hA', HOST_B4), ('hA', HOST_B6), ('hB', HOST_A4), ('hB', HOST_A6)):
		r = t.ping(src, dst, count=count, marker=marker, check=True)
		log(f'ping {src} -> {dst}: {r.received}/{count}')


def check_wan_protected(t, keys, pkts, marker, outer, encap):
	if keys.alg.startswith('aes-gmac'):
		# RFC 4543 ENCR_NULL_AUTH_AES_GMAC authenticates without encrypting: the marker is readable inside ESP.
		expect(all(marker.encode() in raw for _, _, raw, _ in esp_frames(pkts)),
		       'GMAC: the marker travels in clear, inside authenticated ESP')
	else:
		expect(not frames_with(pkts, marker.encode()), 'the plaintext marker never appears on the WAN')
	leaks = cleartext_between_lans(pkts)
	expect(not leaks, f'no host-to-host packet in clear on the WAN (saw {len(leaks)}: '
	       f'{[p.summary() for p in leaks[:3]]})')
	esp = esp_frames(pkts)
	expect(len(esp) >= 12, f'ESP frames carried the pings ({len(esp)} seen)')
	spis = {s for _, s, _, _ in esp}
	expect(set(SPI.values()) <= spis, f'all four SAs were used (SPIs seen {sorted(hex(s) for s in spis)})')
	fams = {ip.version for _, _, _, ip in esp}
	expect(fams == {outer}, f'outer headers are IPv{outer} (saw {fams})')
	protos = {ip.proto if ip.version == 4 else ip.nh for _, _, _, ip in esp}
	want = {17} if encap == 'udp' else {50}
	expect(protos == want, f'every ESP frame is {"in UDP 4500" if encap == "udp" else "plain ESP (IP protocol 50)"}'
	       f' (outer protocols {protos})')
	for p, _, _, ip in esp:
		if {ip.src, ip.dst} != {WAN['A'][outer], WAN['B'][outer]}:
			raise Fail(f'ESP between unexpected endpoints {ip.src} -> {ip.dst}')
	# an independent implementation (scapy) must read every one of them
	inner_marker = 0
	for p, spi, raw, ip in esp:
		try:
			inner = decrypt(keys, spi, raw, ip)
		except Exception as e:
			raise Fail(f'scapy cannot decrypt {p.summary()} with the SA {spi:#x} keys: {e!r}')
		inner_marker += marker.encode() in bytes(inner)
	expect(inner_marker == len(esp), f'all {len(esp)} ESP frames decrypt (scapy, {keys.alg}) to the marked pings')


def kernel_ipv4_received(t, node):
	"""IPv4 packets the kernel of a namespace took in (Ip InReceives: not those it drops at once as
	addressed to another host's MAC)."""
	lines = [l.split() for l in t.run(node, ['cat', '/proc/net/snmp']).stdout.splitlines() if l.startswith('Ip:')]
	return int(lines[1][lines[0].index('InReceives')])


def ping_test(alg='aes-gcm-256', outer='4', encap='none'):
	outer = int(outer)
	keys = Keys(alg)
	marker = new_marker()
	with Topo(f'ping{alg[:8]}{outer}{encap}') as t:
		if t.mode == 'bitw':
			need_bitw(t)
		t.start_both(keys, outer=outer, encap=encap)
		boxes_ip = {n: kernel_ipv4_received(t, n) for n in ('wA', 'wB')} if t.mode == 'bitw' and outer == 4 else {}
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		pkts = cap.stop()
		if t.mode == 'bridge':
			expect(frames_with(pkts, marker.encode()), 'bridge mode: the capture sees the marker in clear')
			return
		check_wan_protected(t, keys, pkts, marker, outer, encap)
		# bitw answers ARP/ND with a MAC of its own: the box kernels drop the ESP frames at once, unrouted
		grew = {n: kernel_ipv4_received(t, n) - v for n, v in boxes_ip.items()}
		if grew:
			expect(all(g == 0 for g in grew.values()), f'the boxes\' own kernels took none of the ESP frames as '
			       f'addressed to them (IPv4 packets received: {grew})')
		sa = sa_stats(t.stats('A'), SPI[('A', 4)], 'out')
		expect(sa is not None and sa.get('packets', 0) >= 3, f'A counts its outbound SA: {sa}')
		sb = sa_stats(t.stats('B'), SPI[('A', 4)], 'in')
		expect(sb is not None and sb.get('packets', 0) >= 3, f'B counts its inbound SA: {sb}')
		t.stop_bitw('A')
		t.stop_bitw('B')


def tcp_udp():
	keys = Keys()
	marker = new_marker()
	with Topo('tcpudp') as t:
		t.start_both(keys)
		for dst, node, n in ((HOST_B4, 'hB', 10 << 20), (HOST_B6, 'hB', 3 << 20), (HOST_A4, 'hA', 3 << 20)):
			src = 'hA' if node == 'hB' else 'hB'
			sent, got = t.tcp_transfer(src, dst, node, n, marker)
			log(f'tcp {src} -> {dst}: sent {sent} got {got}')
			expect(got and sent and got.get('bytes') == n and got.get('sha256') == sent.get('sha256'),
			       f'TCP {n} bytes {src} -> {dst} arrive intact (sha256)')
		for dst, fam in ((HOST_B4, '--v4'), (HOST_B6, '--v6')):
			count = 300
			srv = t.netio_server('hB', f'udp-recv{fam}', 'udp-recv', '--port', 5002, fam,
			                     '--count', count, '--size', 1000, '--marker', marker, '--timeout', 20)
			t.netio('hA', 'udp-send', '--to', dst, '--port', 5002, '--count', count, '--size', 1000,
			        '--marker', marker, '--interval', 0.002)
			got = t.netio_result(srv, 30)
			log(f'udp -> {dst}: {got}')
			expect(got and got['corrupt'] == 0 and got['duplicates'] == 0 and got['received'] >= count * 0.98,
			       f'UDP flow to {dst}: >= 98% of {count} datagrams, none corrupt or duplicated')
		if t.mode == 'bitw':
			t.stop_bitw('A')
			t.stop_bitw('B')


def ring_reuse():
	"""Frames leave bitw-wire from transmit rings whose frames are reused as soon as the kernel gives them
	back. What arrives must be what was written: 20 MB of TCP each way at once (sha256), and 4000 UDP
	datagrams without checksums left queued on hostB's socket while bitw B's red ring (about 260 frames)
	wraps some 15 times under them, then read and compared byte for byte."""
	from concurrent.futures import ThreadPoolExecutor
	keys = Keys()
	marker = new_marker()
	with Topo('txring') as t:
		t.start_both(keys)
		n = 20 << 20
		srv = {p: t.netio_server(node, f'tcp-recv-{p}', 'tcp-recv', '--port', p, '--v4', '--timeout', 60)
		       for p, node in ((5001, 'hB'), (5003, 'hA'))}
		with ThreadPoolExecutor(2) as ex:
			runs = [ex.submit(t.netio, src, 'tcp-send', '--to', dst, '--port', p, '--bytes', n, '--marker', marker,
			                  '--timeout', 60, timeout=70)
			        for src, dst, p in (('hA', HOST_B4, 5001), ('hB', HOST_A4, 5003))]
			sent = [last_json(r.result().stdout) for r in runs]
		got = [t.netio_result(srv[p], 70) for p in (5001, 5003)]
		log(f'tcp both ways: sent {sent} got {got}')
		for s, g, what in zip(sent, got, ('hostA -> hostB', 'hostB -> hostA')):
			expect(s and g and g.get('bytes') == n and g.get('sha256') == s.get('sha256'),
			       f'{n >> 20} MB of TCP {what}, both ways at once, arrive intact (sha256)')
		count, size = 4000, 1400
		srv = t.netio_server('hB', 'udp-held', 'udp-recv', '--port', 5002, '--v4', '--count', count, '--size', size,
		                     '--marker', marker, '--hold', 4, '--timeout', 10)
		t.netio('hA', 'udp-send', '--to', HOST_B4, '--port', 5002, '--count', count, '--size', size,
		        '--marker', marker, '--interval', 0, '--no-check')
		got = t.netio_result(srv, 60)
		log(f'udp held at hostB: {got}')
		expect(got and got['corrupt'] == 0 and got['duplicates'] == 0,
		       f'none of the datagrams that waited on hostB\'s socket changed meanwhile ({got})')
		expect(got['received'] >= count * 0.98, f'>= 98% of {count} datagrams arrived ({got["received"]})')
		if t.mode == 'bitw':
			for side in 'AB':
				st = t.stats(side)
				bad = {k: counter(st, k) for k in ('XE_ESP_DIGEST_MISMATCH', 'XE_MALFORMED_PACKET')}
				log(f'{side}: ports {st["ports"]}, drops {drops_of(st)}')
				expect(not any(bad.values()), f'bitw {side} found no ESP packet altered on its way ({bad})')
			t.stop_bitw('A')
			t.stop_bitw('B')


BYPASS_PORT, DISCARD_PORT = 7777, 7778


def wan_capture():
	"""Protected flows are only ESP on the WAN, a BYPASS flow passes in clear,
	a DISCARD flow never arrives and is counted."""
	keys = Keys()
	m_prot, m_byp, m_disc = new_marker(), new_marker(), new_marker()
	a_pol = [{'name': 'clear-udp', 'priority': 2, 'action': 'bypass', 'src': LAN_A4, 'dst': LAN_B4,
	          'protocol': 'udp', 'dst_port': BYPASS_PORT},
	         {'name': 'drop-udp', 'priority': 2, 'action': 'discard', 'src': LAN_A4, 'dst': LAN_B4,
	          'protocol': 'udp', 'dst_port': DISCARD_PORT}]
	b_pol = [{'name': 'clear-udp', 'priority': 2, 'action': 'bypass', 'src': LAN_B4, 'dst': LAN_A4,
	          'protocol': 'udp', 'src_port': BYPASS_PORT}]
	with Topo('wancap') as t:
		need_bitw(t)
		t.start_both(keys, a={'extra_policies': a_pol}, b={'extra_policies': b_pol})
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, m_prot)
		sent, got = t.tcp_transfer('hA', HOST_B4, 'hB', 1 << 20, m_prot)
		expect(got and got.get('sha256') == sent.get('sha256'), 'protected TCP transfer arrives intact')
		n = 50
		res = {}
		for port, marker in ((5002, m_prot), (BYPASS_PORT, m_byp), (DISCARD_PORT, m_disc)):
			srv = t.netio_server('hB', f'udp{port}', 'udp-recv', '--port', port, '--count', n,
			                     '--marker', marker, '--timeout', 4)
			t.netio('hA', 'udp-send', '--to', HOST_B4, '--port', port, '--count', n, '--marker', marker,
			        '--interval', 0.005)
			res[port] = t.netio_result(srv, 20)
			log(f'udp port {port}: {res[port]}')
		pkts = cap.stop()
		expect(not frames_with(pkts, m_prot.encode()), 'the protected flows\' marker never appears on the WAN')
		leaks = cleartext_between_lans(pkts, allow=lambda p: _udp_port(p) == BYPASS_PORT)
		expect(not leaks, f'nothing but the bypass flow is host-to-host in clear ({[p.summary() for p in leaks[:3]]})')
		expect(len(esp_frames(pkts)) > 100, 'the protected flows went as ESP')
		expect(res[5002] and res[5002]['received'] >= n * 0.98, 'the protected UDP flow arrives')
		seen = frames_with(pkts, m_byp.encode())
		expect(len(seen) >= n * 0.98, f'the BYPASS flow is seen in clear on the WAN ({len(seen)}/{n})')
		expect(res[BYPASS_PORT] and res[BYPASS_PORT]['received'] >= n * 0.98, 'the BYPASS flow arrives at hostB')
		expect(res[DISCARD_PORT] and res[DISCARD_PORT]['received'] == 0, 'the DISCARD flow never arrives')
		expect(not frames_with(pkts, m_disc.encode()), 'the DISCARD flow never reaches the WAN')
		sa = t.stats('A')
		pol = policy_stats(sa, 'drop-udp')
		log('A drop-udp policy:', pol, 'XE_POLICY_DISCARD:', counter(sa, 'XE_POLICY_DISCARD'))
		expect(counter(sa, 'XE_POLICY_DISCARD') >= n, f'A counts {n} XE_POLICY_DISCARD drops')
		expect(pol is not None and pol.get('drops', 0) >= n, f'the discard policy counts its drops ({pol})')
		t.stop_bitw('A')
		t.stop_bitw('B')


def _udp_port(p):
	from scapy.layers.inet import UDP
	return p[UDP].dport if UDP in p else None


def independent():
	"""ESP made by bitw decrypts with scapy to what hostA sent; ESP made by scapy
	with the same keys is accepted by bitw and delivered to hostB."""
	from scapy.layers.inet import ICMP, IP
	from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	alg = os.environ.get('BITW_E2E_ALG', 'aes-gcm-256')
	keys = Keys(alg)
	marker = new_marker()
	with Topo('indep') as t:
		need_bitw(t)
		t.start_both(keys)
		cap_wan = t.capture('r', 'to-a', 'wan', 'esp')
		cap_ha = t.capture('hA', 'eth0', 'hostA', 'icmp or icmp6')
		t.ping('hA', HOST_B4, marker=marker, check=True)
		t.ping('hA', HOST_B6, marker=marker, check=True)
		wan, sent = cap_wan.stop(), cap_ha.stop()
		# what hostA put on its wire, by (version, icmp id, seq)
		orig = {}
		for p in sent:
			if IP in p and ICMP in p and p[ICMP].type == 8:
				orig[(4, p[ICMP].id, p[ICMP].seq)] = p[IP]
			elif IPv6 in p and ICMPv6EchoRequest in p and p[IPv6].src == HOST_A6:
				orig[(6, p[ICMPv6EchoRequest].id, p[ICMPv6EchoRequest].seq)] = p[IPv6]
		matched = 0
		for fam in (4, 6):
			spi = SPI[('A', fam)]
			frames = esp_frames(wan, spi)
			expect(len(frames) >= 3, f'captured >= 3 ESP frames with SPI {spi:#x} ({len(frames)})')
			for _, _, raw, outer in frames:
				inner = decrypt(keys, spi, raw, outer)
				key = (fam, inner.payload.id, inner.payload.seq)
				want = orig.get(key)
				if want is None:
					raise Fail(f'decrypted a packet hostA did not send: {inner.summary()}')
				same_payload = bytes(inner.payload) == bytes(want.payload)
				hdr_ok = inner.src == want.src and inner.dst == want.dst
				if not (same_payload and hdr_ok):
					raise Fail(f'decrypted inner differs from what hostA sent:\n{inner.show(dump=True)}\n'
					           f'{want.show(dump=True)}')
				if bytes(inner) != bytes(want):
					log(f'note: inner header differs from hostA\'s only in TTL/checksum: '
					    f'{bytes(inner)[:40].hex()} vs {bytes(want)[:40].hex()}')
				matched += 1
		expect(matched >= 6, f'{matched} ESP packets decrypted (scapy) to exactly the packets hostA sent')
		# now the other way: scapy encrypts, bitwB must accept and deliver
		r_mac, b_mac = t.mac('r', 'to-b'), t.mac('wB', 'b-blk')
		m2 = new_marker().encode() * 4
		frames = []
		for i, fam in enumerate((4, 4, 4, 6, 6)):
			spi = SPI[('A', fam)]
			sa = keys.scapy_sa(spi, WAN['A'][4], WAN['B'][4])
			if fam == 4:
				inner = IP(src=HOST_A4, dst=HOST_B4, ttl=63) / ICMP(type=8, id=0x4242, seq=i) / Raw(m2)
			else:
				inner = IPv6(src=HOST_A6, dst=HOST_B6, hlim=63) / ICMPv6EchoRequest(id=0x4242, seq=i) / Raw(m2)
			inner = inner.__class__(bytes(inner))
			frames.append(Ether(src=r_mac, dst=b_mac) / sa.encrypt(inner, seq_num=100000 + i))
		cap_hb = t.capture('hB', 'eth0', 'hostB', 'icmp or icmp6')
		t.inject('r', 'to-b', frames)
		time.sleep(1)
		got = cap_hb.stop()
		seen = set()
		for p in got:
			if m2 in bytes(p):
				ip = ip_layer(p)
				seen.add((ip.version, ip.payload.seq))
		expect(seen == {(4, 0), (4, 1), (4, 2), (6, 3), (6, 4)},
		       f'all 5 scapy-made ESP packets were delivered to hostB (saw {sorted(seen)})')
		t.stop_bitw('A')
		t.stop_bitw('B')


def wrong_key():
	keys = Keys()
	marker = new_marker()
	bad_spi = SPI[('A', 4)]

	def corrupt(cfg):
		for sa in cfg['sas']:
			if int(sa['spi'], 16) == bad_spi and sa['direction'] == 'in':
				sa['enc_key'] = os.urandom(len(sa['enc_key']) // 2).hex()

	with Topo('wrongkey') as t:
		need_bitw(t)
		t.start_both(keys, b={'override': corrupt})
		cap = t.capture('hB', 'eth0', 'hostB', 'icmp')
		r = t.ping('hA', HOST_B4, count=4, marker=marker)
		got = cap.stop()
		expect(r.received == 0, f'no reply over the SA whose keys differ ({r.received}/4)')
		expect(not frames_with(got, marker.encode()), 'nothing from hostA reaches hostB')
		t.ping('hA', HOST_B6, marker=marker, check=True)  # the other SA still works
		st = t.stats('B')
		dm = counter(st, 'XE_ESP_DIGEST_MISMATCH')
		sa = sa_stats(st, bad_spi, 'in')
		log('B drops:', {k: v for k, v in st.get('drops', {}).items() if v}, 'SA:', sa)
		expect(dm >= 4, f'B counts XE_ESP_DIGEST_MISMATCH for each packet ({dm})')
		expect(sa is not None and sa.get('auth_drops', 0) >= 4, f'the SA counts auth_drops ({sa})')
		expect(not any(k in t.bitw_log('B') for k in (keys.enc[bad_spi].hex(),)), 'no key in the log')
		t.stop_bitw('A')
		t.stop_bitw('B')


def replay():
	keys = Keys()
	marker = new_marker()
	with Topo('replay') as t:
		need_bitw(t)
		t.start_both(keys)
		cap_wan = t.capture('r', 'to-b', 'wanb', 'esp')
		cap_hb = t.capture('hB', 'eth0', 'hostB', 'icmp')
		t.ping('hA', HOST_B4, count=3, marker=marker, check=True)
		esp = esp_frames(cap_wan.stop(), SPI[('A', 4)])
		expect(len(esp) >= 3, f'captured the ESP frames toward bitwB ({len(esp)})')
		before = t.stats('B')
		replayed = [esp[0][0], esp[-1][0], esp[0][0], esp[-1][0]]
		t.inject('r', 'to-b', replayed)
		time.sleep(1)
		after = t.stats('B')
		got = cap_hb.stop()
		d = counter(after, 'XE_BAD_SEQUENCE_NUMBER') - counter(before, 'XE_BAD_SEQUENCE_NUMBER')
		log('B drops after replay:', {k: v for k, v in after.get('drops', {}).items() if v})
		expect(d >= len(replayed), f'B counts XE_BAD_SEQUENCE_NUMBER for each replayed frame (+{d})')
		sa = sa_stats(after, SPI[('A', 4)], 'in')
		expect(sa is not None and sa.get('replay_drops', 0) >= len(replayed), f'the SA counts replay_drops ({sa})')
		from scapy.layers.inet import ICMP
		seen = {}
		for p in got:
			if ICMP in p and p[ICMP].type == 8:
				k = (p[ICMP].id, p[ICMP].seq)
				seen[k] = seen.get(k, 0) + 1
		expect(len(seen) == 3 and set(seen.values()) == {1},
		       f'hostB got each echo request exactly once ({seen})')
		t.stop_bitw('A')
		t.stop_bitw('B')


def pmtu_mss():
	keys = Keys()
	marker = new_marker()
	with Topo('pmtu') as t:
		need_bitw(t)
		t.start_both(keys)
		cap_a = t.capture('hA', 'eth0', 'synA', 'tcp[tcpflags] & tcp-syn != 0')
		cap_b = t.capture('hB', 'eth0', 'synB', 'tcp[tcpflags] & tcp-syn != 0')
		sent, got = t.tcp_transfer('hA', HOST_B4, 'hB', 5 << 20, marker)
		expect(got and got.get('sha256') == sent.get('sha256'), 'a 5 MB TCP transfer completes intact')
		pa, pb = cap_a.stop(), cap_b.stop()
		syn_a, syn_b = syns(pa), syns(pb)
		expect(syn_a and syn_b, 'the SYN is seen on both sides')
		mss_a, mss_b = tcp_mss(syn_a[0]), tcp_mss(syn_b[0])
		log(f'SYN MSS sent by hostA {mss_a}, seen by hostB {mss_b}')
		expect(mss_a == 1460 and mss_b is not None and 1000 <= mss_b < 1460,
		       f'bitw clamped the SYN\'s MSS (hostA {mss_a} -> hostB {mss_b})')
		sa_ack = syns(pa, synack=True)
		if sa_ack:
			expect(tcp_mss(sa_ack[0]) < 1460, f'and the SYN-ACK\'s toward hostA ({tcp_mss(sa_ack[0])})')
		# a full-size DF ping gets fragmentation-needed with a smaller MTU
		for dst, hdr, full in ((HOST_B4, 28, 1472), (HOST_B6, 48, 1452)):
			r = t.ping('hA', dst, count=2, size=full, df=True, marker=marker)
			out = r.stdout + r.stderr
			log(out.strip())
			m = re.search(r'mtu\s*=\s*(\d+)', out)
			expect(r.received == 0 and m and int(m.group(1)) < 1500,
			       f'a 1500-byte DF ping to {dst} fails with an MTU below 1500')
			mtu = int(m.group(1))
			rg = t.run('hA', ['ip', 'route', 'get', dst]).stdout
			expect(f'mtu {mtu}' in rg, f'hostA\'s route cache has the lowered PMTU {mtu}: {rg.strip()}')
			r = t.ping('hA', dst, count=2, size=mtu - hdr, df=True, marker=marker)
			expect(r.received == 2, f'a DF ping of exactly the advertised MTU {mtu} gets through')
		st = t.stats('A')
		expect(counter(st, 'XE_MTU_EXCEEDED') >= 2, f'A counts XE_MTU_EXCEEDED ({counter(st, "XE_MTU_EXCEEDED")})')
		t.stop_bitw('A')
		t.stop_bitw('B')


def config_errors():
	keys = Keys()
	marker = new_marker()
	with Topo('config') as t:
		need_bitw(t)

		def start_bad(cfg, name):
			path = t.write_config('A', cfg, f'{name}.json')
			return t.run('wA', [t.bitw_wire, '--config', path, '--ctl', t.sock('A') + name],
			             check=False, timeout=30)

		cfg = site_config('A', keys)
		cfg['policies'][0]['srcport'] = '80'
		r = start_bad(cfg, 'unknown-field')
		expect(r.returncode == 1 and 'srcport' in r.stderr,
		       f'an unknown field: exit 1 naming it (exit {r.returncode}: {r.stderr.strip()[:300]})')
		cfg = site_config('A', keys)
		del cfg['ports']['black']['interface']
		r = start_bad(cfg, 'no-black')
		expect(r.returncode == 1 and 'black' in r.stderr and 'interface' in r.stderr,
		       f'missing ports.black.interface: exit 1 naming it ({r.returncode}: {r.stderr.strip()[:300]})')
		cfg = site_config('A', keys)
		key = cfg['sas'][0]['enc_key']
		cfg['sas'][0]['enc_key'] = key + 'ab'
		r = start_bad(cfg, 'short-key')
		expect(r.returncode == 1 and 'enc_key' in r.stderr,
		       f'a key of the wrong length: exit 1 naming enc_key ({r.returncode}: {r.stderr.strip()[:300]})')
		expect(key not in r.stdout + r.stderr, 'the key is not printed in the error')

		t.start_both(keys)
		t.ping('hA', HOST_B4, marker=marker, check=True)
		good = site_config('A', keys)
		bad = json.loads(json.dumps(good))
		bad['policies'][2]['srcport'] = 'any'
		t.write_config('A', bad)
		t.bitw['A'].p.send_signal(signal.SIGHUP)
		time.sleep(1.5)
		expect(t.bitw['A'].p.poll() is None, 'a bad file on SIGHUP does not stop bitw-wire')
		t.ping('hA', HOST_B4, count=5, marker=marker, check=True)
		log('ok: traffic still flows after a refused reload')
		expect('srcport' in t.bitw_log('A'), 'the refused reload is logged naming the field')

		def to_discard(c):
			c['sas'] = [s for s in c['sas'] if s['policy'] != 'lan4']
			for p in c['policies']:
				if p['name'] == 'lan4':
					p['action'] = 'discard'
					for k in ('mode', 'peer', 'mss_clamp'):
						p.pop(k, None)
		t.write_config('A', site_config('A', keys, override=to_discard))
		before = counter(t.stats('A'), 'XE_POLICY_DISCARD')
		t.bitw['A'].p.send_signal(signal.SIGHUP)
		time.sleep(1.5)
		expect(t.bitw['A'].p.poll() is None, 'bitw-wire keeps running after a good reload')
		r = t.ping('hA', HOST_B4, count=3, marker=marker)
		expect(r.received == 0, f'the policy turned to discard takes effect ({r.received}/3 replies)')
		st = t.stats('A')
		pol = policy_stats(st, 'lan4')
		expect(pol and pol.get('action') == 'discard', f'stats show lan4 as discard ({pol})')
		expect(counter(st, 'XE_POLICY_DISCARD') - before >= 3, 'the discarded pings are counted')
		r6 = t.ping('hA', HOST_B6, count=3, marker=marker)
		log(f'note: IPv6 over the unchanged SA after the reload: {r6.received}/3 replies')
		t.stop_bitw('A')
		t.stop_bitw('B')


def acquire():
	keys = Keys()
	marker = new_marker()

	def no_lan4_sas(c):
		c['sas'] = [s for s in c['sas'] if s['policy'] != 'lan4']

	with Topo('acquire') as t:
		need_bitw(t)
		t.start_both(keys, a={'override': no_lan4_sas})
		# Every event for a few seconds, not just the first: a port coming up is an event too.
		ev = t.spawn([t.wirectl_bin, '--socket', t.sock('A'), 'events', '--timeout', '8'], 'events')
		if not ev.wait_for('listening', 10):
			raise Fail(f'bitw-wirectl events did not subscribe: {ev.log()}')
		cap = t.capture('r', 'to-a', 'wan')
		r = t.ping('hA', HOST_B4, count=3, marker=marker)
		try:
			ev.p.wait(20)
		except subprocess.TimeoutExpired:
			pass
		evlog = ev.log()
		pkts = cap.stop()
		expect(r.received == 0, f'no SA: nothing gets through ({r.received}/3)')
		expect(not frames_with(pkts, marker.encode()), 'no SA: the marker is never seen on the WAN')
		leaks = cleartext_between_lans(pkts)
		expect(not leaks, f'no SA: nothing host-to-host in clear on the WAN ({[p.summary() for p in leaks[:3]]})')
		events = [json.loads(x) for x in evlog.splitlines() if x.strip().startswith('{')]
		expect(any(e.get('event') == 'ACQUIRE' and e.get('policy') == 'lan4' for e in events),
		       f'an ACQUIRE event for lan4 on the control socket ({evlog.strip()[:300]})')
		full = site_config('A', keys)
		sas = [s for s in full['sas'] if s['policy'] == 'lan4']
		t.wirectl('A', 'sa-add', '-', input=json.dumps({'sas': sas}))
		t.ping('hA', HOST_B4, count=3, marker=marker, check=True)
		log('ok: after sa-add the traffic flows')
		t.stop_bitw('A')
		t.stop_bitw('B')


def ike_origin():
	"""SAs that bitwd's IKE driver installs (origin "ike") survive a whole-configuration push
	(CONFIG_SET replaces manual SAs only) and go when their policy goes."""
	keys = Keys()
	marker = new_marker()

	def no_lan4_sas(c):
		c['sas'] = [s for s in c['sas'] if s['policy'] != 'lan4']

	def no_lan4(c):
		no_lan4_sas(c)
		c['policies'] = [p for p in c['policies'] if p['name'] != 'lan4']

	def lan4_sas(side):
		return [s for s in json.loads(t.wirectl(side, 'sa-list').stdout)['sas'] if s['policy'] == 'lan4']

	with Topo('ike-origin') as t:
		need_bitw(t)
		t.start_both(keys, a={'override': no_lan4_sas})
		sas = [dict(s, origin='ike') for s in site_config('A', keys)['sas'] if s['policy'] == 'lan4']
		t.wirectl('A', 'sa-add', '-', input=json.dumps({'sas': sas}))
		t.ping('hA', HOST_B4, count=3, marker=marker, check=True)
		listed = lan4_sas('A')
		expect(len(listed) == 2 and all(s.get('origin') == 'ike' for s in listed),
		       f'sa-list shows both lan4 SAs with origin ike ({listed})')

		push = site_config('A', keys, override=no_lan4_sas)
		t.wirectl('A', 'raw', 'CONFIG_SET', json.dumps(push))
		expect(len(lan4_sas('A')) == 2, 'a configuration push without them keeps the IKE SAs')
		t.ping('hA', HOST_B4, count=3, marker=marker, check=True)
		log('ok: traffic still flows over the IKE SAs after CONFIG_SET')

		clash = site_config('A', keys)
		r = t.wirectl('A', 'raw', 'CONFIG_SET', json.dumps(clash), check=False)
		expect(r.returncode != 0 and 'IKE SA' in r.stdout + r.stderr,
		       f'a pushed manual SA with the SPI of an IKE SA is refused ({r.returncode}: {(r.stdout + r.stderr)[:300]})')
		expect(len(lan4_sas('A')) == 2, 'and the IKE SAs are untouched')

		t.wirectl('A', 'raw', 'CONFIG_SET', json.dumps(site_config('A', keys, override=no_lan4)))
		expect(lan4_sas('A') == [], 'a push without their policy drops the IKE SAs')
		t.stop_bitw('A')
		t.stop_bitw('B')


def demo():
	src = os.environ.get('BITW_SOURCE_ROOT', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
	build = os.environ.get('BITW_BUILD_ROOT')
	cmd = [os.path.join(src, 'scripts', 'demo'), '--once'] + (['--build', build] if build else [])
	r = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
	print(r.stdout[-4000:])
	print(r.stderr[-2000:])
	expect(r.returncode == 0, f'scripts/demo --once exits 0 (got {r.returncode})')
	expect(re.search(r'the web UI of site A: open http://127\.0\.0\.1:\d+/ in a browser', r.stdout) and
	       'log in as user admin, password ' in r.stdout, 'the demo serves site A\'s web UI on loopback and says how to log in')
	# the demo has exited: any demo namespace of a dead process is a leak (live ones are parallel runs)
	left = [n for n in list_netns() if re.match(r'^bw\d+-demo-', n) and not pid_alive(int(n[2:].split('-')[0]))]
	expect(not left, f'the demo leaves no namespaces behind ({sorted(left)})')


def harness_bridge():
	"""The harness itself, with Linux bridges in place of bitw: traffic,
	captures and cleanup work, so a failure elsewhere is bitw's."""
	stale = 'bw999999999-harnessbridge-x'
	sh(['ip', 'netns', 'add', stale])
	cleanup_stale('harnessbridge')
	expect(stale not in list_netns(), 'a stale namespace of a dead run is removed')
	marker = new_marker()
	with Topo('harnessbridge', mode='bridge') as t:
		prefix = t.prefix
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		sent, got = t.tcp_transfer('hA', HOST_B4, 'hB', 5 << 20, marker)
		expect(got and got.get('sha256') == sent.get('sha256'), 'TCP 5 MB intact through the bridges')
		srv = t.netio_server('hB', 'udp', 'udp-recv', '--port', 5002, '--v6', '--count', 100, '--marker', marker)
		t.netio('hA', 'udp-send', '--to', HOST_B6, '--port', 5002, '--count', 100, '--marker', marker)
		res = t.netio_result(srv, 30)
		expect(res and res['received'] == 100, f'UDP over IPv6 through the bridges ({res})')
		pkts = cap.stop()
		expect(len(frames_with(pkts, marker.encode())) > 100,
		       'the WAN capture sees the cleartext marker (so it would catch a leak)')
		expect(cleartext_between_lans(pkts), 'and classifies host-to-host cleartext as a leak')
		r = t.run('hA', ['ip', 'route', 'get', GW_A4])
		expect('eth0' in r.stdout, 'hostA reaches its gateway')
	left = [n for n in list_netns() if n.startswith(prefix)]
	expect(not left, f'no namespace left after the run ({left})')


# --- options, IKE demultiplexing, fragments, super-frames, lifetimes, red resolution ---------

NONIP_TYPE = 0x88b5  # IEEE 802 local experimental ethertype


def nonip_frames(src_mac, marker, n=5):
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	return [Ether(src=src_mac, dst='ff:ff:ff:ff:ff:ff', type=NONIP_TYPE) / Raw(marker.encode() * 4 + bytes([i]))
	        for i in range(n)]


def nonip_crossing(t, marker):
	"""Send private-ethertype frames from hostA and from the router; how many reached the other side."""
	cap_r = t.capture('r', 'to-a', f'nonip-r-{marker}', f'ether proto {NONIP_TYPE:#x}')
	cap_a = t.capture('hA', 'eth0', f'nonip-a-{marker}', f'ether proto {NONIP_TYPE:#x}')
	t.inject('hA', 'eth0', nonip_frames(t.mac('hA', 'eth0'), marker + 'a'))
	t.inject('r', 'to-a', nonip_frames(t.mac('r', 'to-a'), marker + 'r'))
	time.sleep(0.5)
	at_r = frames_with(cap_r.stop(), (marker + 'a').encode())
	at_a = frames_with(cap_a.stop(), (marker + 'r').encode())
	return len(at_r), len(at_a)


def gateway_arp(t):
	"""Flush hostA's neighbours and ping its gateway: (replies, ARP requests from hostA seen on the router's
	link, hostA's neighbour entry for the gateway)."""
	from scapy.layers.l2 import ARP
	t.run('hA', ['ip', 'neigh', 'flush', 'dev', 'eth0'])
	cap = t.capture('r', 'to-a', f'arp-{time.time_ns()}', 'arp')
	r = t.ping('hA', GW_A4, count=2, wait=1)
	pkts = cap.stop()
	asks = [p for p in pkts if ARP in p and p[ARP].op == 1 and p[ARP].psrc == HOST_A4 and p[ARP].pdst == GW_A4]
	neigh = t.run('hA', ['ip', 'neigh', 'show', GW_A4, 'dev', 'eth0']).stdout.strip()
	return r.received, asks, neigh


def nonip_bridge():
	"""options.bridge_non_ip: ARP and other non-IP frames cross bitw when true, and are blocked and counted
	(XE_NON_IP_BLOCKED) after a SIGHUP reload with false."""
	keys = Keys()
	with Topo('nonip') as t:
		need_bitw(t)
		t.start_both(keys)
		got, asks, neigh = gateway_arp(t)
		r_mac = t.mac('r', 'to-a')
		expect(got == 2, f'bridge_non_ip true: hostA pings its gateway ({got}/2)')
		expect(asks, 'hostA\'s ARP request for its gateway is seen on the router\'s side of bitwA')
		expect(r_mac in neigh, f'hostA resolved its gateway to the router\'s own MAC {r_mac} ({neigh})')
		to_r, to_a = nonip_crossing(t, new_marker())
		expect(to_r == 5, f'bridge_non_ip true: 5 ethertype {NONIP_TYPE:#x} frames hostA -> router arrive ({to_r})')
		expect(to_a == 5, f'bridge_non_ip true: 5 such frames router -> hostA arrive ({to_a})')

		def no_bridge(c):
			c['options']['bridge_non_ip'] = False
		t.reload_bitw('A', site_config('A', keys, override=no_bridge))
		before = counter(t.stats('A'), 'XE_NON_IP_BLOCKED')
		to_r, to_a = nonip_crossing(t, new_marker())
		expect(to_r == 0 and to_a == 0, f'bridge_non_ip false: no non-IP frame crosses ({to_r} out, {to_a} in)')
		blocked = counter(t.stats('A'), 'XE_NON_IP_BLOCKED') - before
		expect(blocked >= 10, f'A counts the 10 blocked frames as XE_NON_IP_BLOCKED (+{blocked})')
		got, asks, neigh = gateway_arp(t)
		expect(got == 0 and not asks, f'bridge_non_ip false: ARP no longer crosses, the gateway is unreachable '
		       f'({got}/2 replies, {len(asks)} ARP requests on the router side)')
		t.stop_bitw('A')
		t.stop_bitw('B')


def policy_options():
	"""The protect policies' options on the wire: DF copied to the outer header, TFC padding that hostB never
	sees, dummy packets on the WAN that never reach red, ECN copied out and combined in (RFC 6040)."""
	from scapy.layers.inet import ICMP, IP
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	keys = Keys()
	marker = new_marker()

	def opts(cfg):
		for p in cfg['policies']:
			if p['action'] == 'protect':
				p.update({'df': 'copy', 'tfc_pad': 300, 'dummy_interval_ms': 40, 'ecn': True, 'pad_check': True})

	with Topo('polopt') as t:
		need_bitw(t)
		t.start_both(keys, override=opts)
		cap_wan = t.capture('r', 'to-a', 'wan', 'esp')
		cap_hb = t.capture('hB', 'eth0', 'hostB', 'ip')
		t.ping('hA', HOST_B4, count=4, marker=marker, df=True, check=True)
		r = t.run('hA', ['ping', '-n', '-c', '4', '-i', '0.2', '-W', '3', '-M', 'dont', '-p',
		                 marker.encode().hex()[:32], HOST_B4], check=False)
		expect(' 0% packet loss' in r.stdout, 'pings without DF get through')
		r = t.run('hA', ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '3', '-Q', '2', '-p',
		                 marker.encode().hex()[:32], HOST_B4], check=False)
		expect(' 0% packet loss' in r.stdout, f'pings marked ECT(0) get through ({r.stdout.strip()[-80:]})')
		time.sleep(1)
		wan, hb = cap_wan.stop(), cap_hb.stop()
		spi = SPI[('A', 4)]
		frames = esp_frames(wan, spi)
		df_pairs, tfc, lens, dummies, ect = set(), 0, set(), 0, 0
		for _, _, raw, outer in frames:
			try:
				inner = decrypt(keys, spi, raw, outer)
			except Exception:  # noqa: BLE001 - scapy cannot turn next header 59 into a packet
				dummies += 1
				continue
			if not isinstance(inner, IP) or marker.encode() not in bytes(inner):
				dummies += 1
				continue
			df_pairs.add((bool(outer.flags.DF), bool(inner.flags.DF)))
			lens.add(len(raw))
			tfc += len(bytes(inner)) > inner.len  # bytes after the inner packet: TFC padding
			ect += (outer.tos & 3) == 2 and (inner.tos & 3) == 2
		log(f'{len(frames)} ESP frames from A: DF (outer, inner) {sorted(df_pairs)}, {len(lens)} sizes, '
		    f'{tfc} with TFC padding, {dummies} dummies, {ect} ECT(0) outside and in')
		expect(df_pairs == {(True, True), (False, False)}, f'df copy: the outer DF is the inner one ({df_pairs})')
		expect(tfc >= 3 and len(lens) >= 3, f'TFC padding: same-size pings leave in {len(lens)} sizes, {tfc} padded')
		expect(dummies >= 5, f'dummy packets are seen on the WAN ({dummies})')
		expect(ect >= 3, f'ECN: ECT(0) of the inner packet is copied to the outer header ({ect})')
		echo = [p for p in hb if IP in p and p[IP].src == HOST_A4]
		expect(all(ICMP in p and p[ICMP].type == 8 and marker.encode() in bytes(p) for p in echo) and len(echo) == 11,
		       f'hostB got exactly the 11 echo requests from hostA, nothing else ({len(echo)})')
		expect(all(len(bytes(p)) == 14 + p[IP].len for p in echo),
		       'each arrives at its own length (no TFC bytes after the IP packet)')
		st_a, st_b = t.stats('A'), t.stats('B')
		out_a, in_b = sa_stats(st_a, spi, 'out'), sa_stats(st_b, spi, 'in')
		expect(out_a and out_a.get('dummy_packets', 0) >= 5 and in_b and in_b.get('dummy_packets', 0) >= 5,
		       f'dummy packets counted per SA: sent by A {out_a and out_a.get("dummy_packets")}, '
		       f'discarded by B {in_b and in_b.get("dummy_packets")}')
		expect(counter(st_b, 'XE_DUMMY_PACKET') >= 5, 'B counts them as XE_DUMMY_PACKET drops')

		# RFC 6040 4.2 at B: outer CE marks an ECT inner packet CE and drops a not-ECT one
		r_mac, b_mac = t.mac('r', 'to-b'), t.mac('wB', 'b-blk')
		sa = keys.scapy_sa(spi, WAN['A'][4], WAN['B'][4])
		m2 = new_marker().encode() * 3
		sent = []
		for i, tos in enumerate((2, 0)):
			inner = IP(src=HOST_A4, dst=HOST_B4, ttl=63, tos=tos) / ICMP(type=8, id=0x6040, seq=i) / Raw(m2)
			pkt = sa.encrypt(inner.__class__(bytes(inner)), seq_num=200000 + i)
			pkt[IP].tos = 3
			del pkt[IP].chksum
			sent.append(Ether(src=r_mac, dst=b_mac) / pkt)
		before = counter(t.stats('B'), 'XE_ECN_CE_NOT_ECT')
		cap_hb = t.capture('hB', 'eth0', 'hostB2', 'icmp')
		t.inject('r', 'to-b', sent)
		time.sleep(1)
		got = [p for p in cap_hb.stop() if IP in p and m2 in bytes(p)]
		seqs = {p[ICMP].seq: p[IP].tos & 3 for p in got}
		expect(seqs == {0: 3}, f'outer CE: the ECT(0) packet arrives marked CE, the not-ECT one is dropped ({seqs})')
		expect(counter(t.stats('B'), 'XE_ECN_CE_NOT_ECT') - before == 1, 'and that drop is XE_ECN_CE_NOT_ECT')
		t.stop_bitw('A')
		t.stop_bitw('B')


def keepalives_in(pkts):
	"""NAT-T keepalives (RFC 3948 §2.3: one byte 0xff) in a capture: [(time, src, sport, dst, dport)]."""
	from scapy.layers.inet import IP, UDP
	out = []
	for p in pkts:
		if IP in p and UDP in p and bytes(p[UDP].payload) == b'\xff':
			out.append((float(p.time), p[IP].src, p[UDP].sport, p[IP].dst, p[UDP].dport))
	return out


def bursts(times, gap=0.3):
	"""Start times of groups of events closer than gap (one keepalive round may send one per SA)."""
	out = []
	for x in sorted(times):
		if not out or x - out[-1][-1] > gap:
			out.append([x])
		else:
			out[-1].append(x)
	return out


def nat_keepalive():
	"""options.nat_keepalive: 1 sends a 0xff keepalive per second from our address:4500 to the peer's,
	one per address and port pair however many SAs share it; 0 sends none; an SA's own nat_keepalive (what bitwd
	sets from an IKE peer's) overrides the option."""
	keys = Keys()

	def every_second(c):
		c['options']['nat_keepalive'] = 1
	with Topo('natka') as t:
		need_bitw(t)
		t.start_both(keys, encap='udp', a={'override': every_second})
		cap = t.capture('r', 'to-a', 'wan-ka', 'udp port 4500')
		time.sleep(4.5)
		ka = keepalives_in(cap.stop())
		log('keepalives:', [(round(x[0] % 100, 2),) + x[1:] for x in ka])
		ends = {x[1:] for x in ka}
		expect(ends == {(WAN['A'][4], 4500, WAN['B'][4], 4500)},
		       f'keepalives go from bitwA {WAN["A"][4]}:4500 to the peer {WAN["B"][4]}:4500 only ({ends})')
		rounds = bursts([x[0] for x in ka])
		gaps = [round(b[0] - a[0], 2) for a, b in zip(rounds, rounds[1:])]
		log(f'{len(ka)} keepalives in {len(rounds)} rounds, {[len(r) for r in rounds]} per round, gaps {gaps}')
		expect(len(rounds) >= 4 and all(0.8 <= g <= 1.3 for g in gaps),
		       f'about one round a second for 4.5 s ({len(rounds)} rounds, gaps {gaps})')
		# lan4 and lan6 have an outbound UDP SA each, on the same endpoints: the NAT binding needs one
		expect(max(len(r) for r in rounds) == 1, 'one keepalive per round for the two SAs that share the endpoints')

		def never(c):
			c['options']['nat_keepalive'] = 0
		t.reload_bitw('A', site_config('A', keys, encap='udp', override=never))
		cap = t.capture('r', 'to-a', 'wan-noka', 'udp port 4500')
		time.sleep(3)
		ka = keepalives_in(cap.stop())
		expect(not ka, f'nat_keepalive 0 (and bitwB\'s default): no keepalive in 3 s ({len(ka)})')

		def per_sa(c):
			c['options']['nat_keepalive'] = 0
			for sa in c['sas']:
				if sa['direction'] == 'out':
					sa['nat_keepalive'] = 1
		t.reload_bitw('A', site_config('A', keys, encap='udp', override=per_sa))
		cap = t.capture('r', 'to-a', 'wan-saka', 'udp port 4500')
		time.sleep(3.5)
		rounds = bursts([x[0] for x in keepalives_in(cap.stop())])
		expect(len(rounds) >= 3 and max(len(r) for r in rounds) == 1,
		       f'the SAs\' own nat_keepalive 1 with the option off: one keepalive a second ({len(rounds)} rounds)')
		t.ping('hA', HOST_B4, count=2, check=True)
		log('ok: the UDP-encapsulated SAs still carry traffic')
		t.stop_bitw('A')
		t.stop_bitw('B')


def ike_event(ev, src, sport, dst, dport, data):
	return (ev.get('event') == 'IKE_RECV' and ev.get('src') == src and ev.get('sport') == sport and
	        ev.get('dst') == dst and ev.get('dport') == dport and ev.get('data') == data.hex())


def drops_of(st):
	return {k: v for k, v in st.get('drops', {}).items() if v}


def ike_demux():
	"""UDP 500 and 4500-with-marker to bitw's black address reach the control socket as IKE_RECV; 4500
	without the marker is ESP; a keepalive is swallowed silently; IKE_SEND puts datagrams on the WAN."""
	from scapy.layers.inet import IP, UDP
	from scapy.layers.inet6 import IPv6
	keys = Keys()
	b4, b6, r4, r6 = WAN['B'][4], WAN['B'][6], WAN['B']['gw4'], WAN['B']['gw6']
	with Topo('ikedemux') as t:
		need_bitw(t)
		t.start_both(keys, encap='udp')
		ev = t.events('B')
		ike500, ike4500, ike6 = os.urandom(40), os.urandom(60), os.urandom(36)
		t.udp_send('r', r4, 500, b4, 500, [ike500])
		t.udp_send('r', r4, 4500, b4, 4500, [b'\0\0\0\0' + ike4500])
		t.udp_send('r', r6, 500, b6, 500, [ike6])
		for src, sp, dst, dp, data in ((r4, 500, b4, 500, ike500), (r4, 4500, b4, 4500, ike4500),
		                               (r6, 500, b6, 500, ike6)):
			e = wait_event(ev, lambda e: ike_event(e, src, sp, dst, dp, data))
			expect(e, f'UDP {src}:{sp} -> {dst}:{dp} arrives as IKE_RECV with its payload'
			       f'{" (non-ESP marker stripped)" if dp == 4500 else ""}')
		n_ev = len(events_seen(ev))

		before = t.stats('B')
		t.udp_send('r', r4, 4500, b4, 4500, [b'\xff'] * 3)
		time.sleep(0.5)
		after = t.stats('B')
		rx = after['ports']['black']['rx_packets'] - before['ports']['black']['rx_packets']
		expect(rx >= 3, f'bitwB received the three 0xff keepalives (black rx +{rx})')
		expect(drops_of(after) == drops_of(before), f'the keepalives move no drop counter '
		       f'({drops_of(before)} -> {drops_of(after)})')
		fake_esp = bytes.fromhex('deadbeef00000001') + os.urandom(40)
		t.udp_send('r', r4, 4500, b4, 4500, [fake_esp])
		time.sleep(0.5)
		spi_drops = counter(t.stats('B'), 'XE_BAD_ESP_SPI') - counter(after, 'XE_BAD_ESP_SPI')
		expect(spi_drops == 1, f'UDP 4500 without the marker is ESP: unknown SPI counted as XE_BAD_ESP_SPI (+{spi_drops})')
		extra = events_seen(ev)[n_ev:]
		expect(not extra, f'neither the keepalives nor the ESP reached the control socket ({extra})')

		# IKE_SEND: bitwA puts the datagrams on the WAN from its own address, bitwB hands them up
		cap = t.capture('r', 'to-a', 'wan-ike', 'udp')
		out4500, out500, out6 = os.urandom(48), os.urandom(32), os.urandom(28)
		a4, a6 = WAN['A'][4], WAN['A'][6]
		t.wirectl('A', 'ike-send', a4, '4500', b4, '4500', out4500.hex())
		t.wirectl('A', 'ike-send', a4, '500', b4, '500', out500.hex())
		t.wirectl('A', 'ike-send', a6, '500', b6, '500', out6.hex())
		for src, sp, dst, dp, data in ((a4, 4500, b4, 4500, out4500), (a4, 500, b4, 500, out500),
		                               (a6, 500, b6, 500, out6)):
			expect(wait_event(ev, lambda e: ike_event(e, src, sp, dst, dp, data)),
			       f'bitwB reports bitwA\'s IKE_SEND {src}:{sp} -> {dst}:{dp} as IKE_RECV')
		pkts = cap.stop()
		seen = {}
		for p in pkts:
			ip = IP in p and p[IP] or IPv6 in p and p[IPv6]
			if ip and UDP in p:
				seen[(ip.src, p[UDP].sport, ip.dst, p[UDP].dport)] = bytes(p[UDP].payload)
		expect(seen.get((a4, 4500, b4, 4500)) == b'\0\0\0\0' + out4500,
		       'on the WAN: the 4500 datagram from bitwA\'s address carries the non-ESP marker then the message')
		expect(seen.get((a4, 500, b4, 500)) == out500, 'on the WAN: the 500 datagram carries the message, no marker')
		expect(seen.get((a6, 500, b6, 500)) == out6, 'on the WAN: the IPv6 500 datagram carries the message')
		r = t.wirectl('A', 'ike-send', '192.0.2.99', '500', b4, '500', '00', check=False)
		expect(r.returncode == 1 and 'XE_' in r.stderr,
		       f'IKE_SEND from an address bitwA does not own is refused ({r.returncode}: {r.stderr.strip()})')
		t.stop_bitw('A')
		t.stop_bitw('B')


def outer_frag():
	"""A 1500-byte IPv4 packet without DF travels as outer IPv4 fragments of ESP and is reassembled."""
	from scapy.layers.inet import IP, defragment
	keys = Keys()
	marker = new_marker()
	with Topo('outerfrag') as t:
		need_bitw(t)
		t.start_both(keys)
		cap = t.capture('r', 'to-a', 'wan')
		r = t.run('hA', ['ping', '-n', '-c', '3', '-i', '0.3', '-W', '3', '-M', 'dont', '-s', '1472',
		                 '-p', marker.encode().hex(), HOST_B4], check=False, timeout=30)
		log(r.stdout.strip().splitlines()[-2:])
		expect(' 3 received' in r.stdout, f'ping -M dont -s 1472 hostA -> hostB: 3/3 replies\n{r.stdout}{r.stderr}')
		pkts = cap.stop()
		frags = [p for p in pkts if IP in p and p[IP].proto == 50 and (p[IP].flags.MF or p[IP].frag)]
		by_src = {}
		for p in frags:
			by_src.setdefault(p[IP].src, []).append(p)
		for src in (WAN['A'][4], WAN['B'][4]):
			n = len(by_src.get(src, []))
			expect(n >= 6, f'{src} sent the ESP packets as outer IPv4 fragments ({n} fragments of protocol 50)')
		expect(all(len(p[IP]) <= 1500 and not p[IP].flags.DF for p in frags),
		       'every fragment fits the 1500-byte MTU and has no DF')
		whole = esp_frames(defragment(frags))
		inner_ok = sum(marker.encode() in bytes(decrypt(keys, spi, raw, ip)) for _, spi, raw, ip in whole)
		expect(len(whole) == 6 and inner_ok == 6,
		       f'the fragments reassemble (scapy) to 6 ESP packets that decrypt to the pings ({inner_ok}/{len(whole)})')
		expect(not frames_with(pkts, marker.encode()), 'the marker never appears in clear')
		for side in ('A', 'B'):
			st = t.stats(side)
			expect(not counter(st, 'XE_FRAG_FAILED') and not counter(st, 'XE_MTU_EXCEEDED'),
			       f'{side}: no reassembly failure, no MTU drop ({drops_of(st)})')
		t.stop_bitw('A')
		t.stop_bitw('B')


def black_mac():
	"""options.black_interface_mac on A: A's ESP frames leave from its black interface's own MAC and the router
	learns that MAC for A's address; B (default) sends from a locally administered MAC one bit away from its
	interface's. Pings cross either way."""
	from scapy.layers.l2 import Ether
	keys = Keys()
	marker = new_marker()

	def own_mac(cfg):
		cfg['options']['black_interface_mac'] = True

	with Topo('blackmac') as t:
		need_bitw(t)
		t.start_both(keys, a={'override': own_mac})
		cap_a, cap_b = t.capture('r', 'to-a', 'wan-a'), t.capture('r', 'to-b', 'wan-b')
		pings_both_ways(t, marker)
		esp_a = {p[Ether].src for p, _, _, ip in esp_frames(cap_a.stop()) if ip.src == WAN['A'][4]}
		esp_b = {p[Ether].src for p, _, _, ip in esp_frames(cap_b.stop()) if ip.src == WAN['B'][4]}
		nic_a, nic_b = t.mac('wA', 'a-blk'), t.mac('wB', 'b-blk')
		expect(esp_a == {nic_a}, f'A sends its ESP frames from its interface\'s MAC {nic_a} ({esp_a})')
		first = int(nic_b[:2], 16)
		derived = f'{first ^ 4 if first & 2 else first | 2:02x}' + nic_b[2:]
		expect(esp_b == {derived}, f'B sends from the derived MAC {derived}, not its interface\'s {nic_b} ({esp_b})')
		neigh = json.loads(t.run('r', ['ip', '-j', 'neigh', 'show', WAN['A'][4]]).stdout)
		expect([n.get('lladdr') for n in neigh] == [nic_a], f'the router knows A by its interface\'s MAC ({neigh})')
		for side in 'AB':
			t.stop_bitw(side)


def frame_ip(data):
	"""(IP version, protocol) of an Ethernet frame's bytes, or (0, 0)."""
	if len(data) < 34:
		return 0, 0
	et = int.from_bytes(data[12:14], 'big')
	if et == 0x0800:
		return 4, data[23]
	if et == 0x86dd and len(data) >= 54:
		return 6, data[20]
	return 0, 0


def tso_superframe(family='4'):
	"""hostA hands bitw 64 KB TCP super-frames (TSO/GSO on at its veth) over IPv`family`: the transfer still
	arrives intact, bitw reads them whole and cuts them to what fits the tunnel (so no segment bounces as
	ICMP too-big), the WAN carries only MTU-sized ESP, and nothing is dropped as too big or malformed."""
	fam = int(family)
	keys = Keys()
	marker = new_marker()
	with Topo('tso' + family) as t:
		need_bitw(t)
		t.run('hA', ['ethtool', '-K', 'eth0', 'tso', 'on', 'gso', 'on', 'tx', 'on', 'sg', 'on'])
		log(t.run('hA', ['ethtool', '-k', 'eth0']).stdout.count('segmentation-offload: on'),
		    'segmentation offloads on at hostA')
		t.start_both(keys)
		cap_red = t.capture('wA', 'a-red', 'red', 'tcp', snaplen=96)
		cap_wan = t.capture('r', 'to-a', 'wan', None, snaplen=96)
		# normally about a second; a stall shows within 40 s
		sent, got = t.tcp_transfer('hA', HOST_B4 if fam == 4 else HOST_B6, 'hB', 10 << 20, marker, timeout=40)
		log(f'tcp: sent {sent} got {got}')
		red, wan = cap_red.stop_raw(), cap_wan.stop_raw()
		big = [n for d, n in red if n > 1514 and frame_ip(d) == (fam, 6)]
		log(f'hostA -> bitwA frames longer than 1514: {len(big)}, largest {max([n for _, n in red] or [0])}')
		st = t.stats('A')
		bad = {k: counter(st, k) for k in ('XE_TOO_BIG', 'XE_MALFORMED_PACKET', 'XE_MTU_EXCEEDED')}
		whole = st['ports']['red'].get('rx_superframes', 0)
		log('A drops:', drops_of(st), 'red port:', st['ports']['red'])
		expect(big, f'hostA really handed bitwA IPv{fam} super-frames (its red port sees TCP frames > 1514 bytes)')
		expect(whole >= len(big) > 0, f'bitwA read every super-frame whole ({whole} of {len(big)})')
		expect(not bad['XE_TOO_BIG'] and not bad['XE_MALFORMED_PACKET'],
		       f'nothing dropped as XE_TOO_BIG or XE_MALFORMED_PACKET ({bad})')
		expect(not bad['XE_MTU_EXCEEDED'],
		       f'no segment exceeded the tunnel MTU (none bounced as ICMP too-big): {bad["XE_MTU_EXCEEDED"]}')
		expect(got and sent and got.get('bytes') == 10 << 20 and got.get('sha256') == sent.get('sha256'),
		       f'a 10 MB TCP transfer hostA -> hostB over IPv{fam} arrives intact (sha256)')
		esp = [n for d, n in wan if frame_ip(d) == (4, 50)]
		other = [(frame_ip(d), n) for d, n in wan if frame_ip(d)[0] and frame_ip(d) != (4, 50)]
		expect(len(esp) >= (10 << 20) // 1500, f'the data crossed the WAN as ESP ({len(esp)} frames)')
		expect(max(esp) <= 1514, f'no ESP frame on the WAN is larger than the MTU (largest {max(esp)})')
		expect(not [o for o in other if o[0][1] == 6], f'no TCP in clear on the WAN ({other[:5]})')
		t.stop_bitw('A')
		t.stop_bitw('B')


def vlan_tagged():
	"""IP inside 802.1Q / 802.1ad tags is never bridged past the SPD (it would cross in clear):
	tagged IPv4 and IPv6 from hostA to hostB and tagged IPv4 from the WAN are dropped and counted as
	XE_TAGGED_IP_BLOCKED, while a tagged non-IP frame is still bridged and untagged traffic still flows."""
	from scapy.layers.inet import IP, UDP
	from scapy.layers.inet6 import IPv6
	from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
	from scapy.packet import Raw
	keys = Keys()
	marker = new_marker()
	with Topo('vlan') as t:
		need_bitw(t)
		t.start_both(keys)
		pings_both_ways(t, marker)
		ma, mr, mb = t.mac('hA', 'eth0'), t.mac('r', 'to-a'), t.mac('hB', 'eth0')
		payload = Raw(marker.encode() * 4)
		from_red = [
			Ether(src=ma, dst=mb) / Dot1Q(vlan=10) / IP(src=HOST_A4, dst=HOST_B4) / UDP(dport=5000) / payload,
			Ether(src=ma, dst=mb) / Dot1Q(vlan=10) / IPv6(src=HOST_A6, dst=HOST_B6) / UDP(dport=5000) / payload,
			Ether(src=ma, dst=mb) / Dot1AD(vlan=20) / Dot1Q(vlan=10) / IP(src=HOST_A4, dst=HOST_B4) / UDP() / payload,
		]
		from_wan = [Ether(src=mr, dst=mb) / Dot1Q(vlan=10) / IP(src=HOST_B4, dst=HOST_A4) / UDP() / payload]
		tagged_nonip = [Ether(src=ma, dst='ff:ff:ff:ff:ff:ff') / Dot1Q(vlan=10, type=NONIP_TYPE) /
		                Raw((marker + 'n').encode() * 4)]
		before = {s: counter(t.stats(s), 'XE_TAGGED_IP_BLOCKED') for s in ('A', 'B')}
		cap_wan = t.capture('r', 'to-a', 'wan')
		cap_a = t.capture('hA', 'eth0', 'red-a')
		t.inject('hA', 'eth0', from_red * 3 + tagged_nonip)
		t.inject('r', 'to-a', from_wan * 3)
		time.sleep(0.5)
		wan, at_a = cap_wan.stop(), cap_a.stop()
		got = {s: counter(t.stats(s), 'XE_TAGGED_IP_BLOCKED') - before[s] for s in ('A', 'B')}
		# the router's own injected frames show in its capture too: look at what came from hostA
		leaked = [p for p in frames_with(wan, marker.encode())
		          if p[Ether].src == ma and not frames_with([p], (marker + 'n').encode())]
		expect(not leaked, f'no tagged IP from hostA reached the WAN ({[p.summary() for p in leaked[:3]]})')
		expect(got['A'] >= 12, f'bitwA counts the 9 tagged IP frames from red and 3 from black as '
		       f'XE_TAGGED_IP_BLOCKED (+{got["A"]})')
		back = [p for p in frames_with(at_a, marker.encode()) if p[Ether].src != ma]
		expect(not back, f'no tagged IP from the WAN reached hostA ({[p.summary() for p in back[:3]]})')
		expect(frames_with(wan, (marker + 'n').encode()), 'a tagged non-IP frame is still bridged to the WAN')
		pings_both_ways(t, new_marker())
		t.stop_bitw('A')
		t.stop_bitw('B')


def lifetime():
	"""Packet lifetimes of an outbound SA: soft 3 raises SA_SOFT_EXPIRE, hard 6 SA_HARD_EXPIRE and removes
	the SA; afterwards the policy has no SA (ACQUIRE) and nothing leaks."""
	keys = Keys()
	marker = new_marker()
	spi = SPI[('A', 4)]

	def limited(c):
		for sa in c['sas']:
			if int(sa['spi'], 16) == spi and sa['direction'] == 'out':
				sa['lifetime'] = {'soft': {'packets': 3}, 'hard': {'packets': 6}}

	def expired(ev, kind):
		return wait_event(ev, lambda e: e.get('event') == kind and e.get('spi') == spi and
		                  e.get('direction') == 'out', timeout=1.5)
	with Topo('lifetime') as t:
		need_bitw(t)
		t.start_both(keys, a={'override': limited})
		ev = t.events('A')
		t.ping('hA', HOST_B4, count=2, marker=marker, check=True)
		expect(not expired(ev, 'SA_SOFT_EXPIRE'), 'after 2 pings: no SA_SOFT_EXPIRE yet')
		t.ping('hA', HOST_B4, count=1, marker=marker, check=True)
		e = expired(ev, 'SA_SOFT_EXPIRE')
		expect(e and e.get('policy') == 'lan4', f'after 3 pings: SA_SOFT_EXPIRE for {spi:#x} out, policy lan4 ({e})')
		sa = sa_stats(t.stats('A'), spi, 'out')
		expect(sa and sa.get('packets') == 3, f'the soft-expired SA still carries traffic ({sa})')
		t.ping('hA', HOST_B4, count=2, marker=marker, check=True)
		expect(not expired(ev, 'SA_HARD_EXPIRE'), 'after 5 pings: no SA_HARD_EXPIRE yet')
		t.ping('hA', HOST_B4, count=1, marker=marker, check=True)
		e = expired(ev, 'SA_HARD_EXPIRE')
		expect(e, f'after 6 pings (the hard limit lets exactly 6 through): SA_HARD_EXPIRE ({e})')
		st = t.stats('A')
		expect(sa_stats(st, spi, 'out') is None, f'the SA is gone from stats ({[s.get("spi") for s in st["sas"]]})')
		expect(sa_stats(st, SPI[('B', 4)], 'in') is not None, 'the inbound SA of the pair stays')
		cap = t.capture('r', 'to-a', 'wan')
		r = t.ping('hA', HOST_B4, count=3, marker=marker, wait=1)
		pkts = cap.stop()
		expect(r.received == 0, f'with the SA gone, pings get no reply ({r.received}/3)')
		e = wait_event(ev, lambda e: e.get('event') == 'ACQUIRE' and e.get('policy') == 'lan4')
		expect(e and e.get('dst') == HOST_B4, f'an ACQUIRE for lan4 asks for a new SA ({e})')
		expect(not frames_with(pkts, marker.encode()) and not cleartext_between_lans(pkts),
		       'nothing of those pings leaks in clear on the WAN')
		expect(not esp_frames(pkts, spi), f'and the dead SA {spi:#x} sends nothing')
		t.ping('hA', HOST_B6, count=2, check=True)
		log('ok: the IPv6 SAs, without lifetimes, still work')
		t.stop_bitw('A')
		t.stop_bitw('B')



def clone():
	"""Policy cloning: lan4 is clone src on A (clone dst on B), each of two hosts behind A has its own manual SA
	pair; each host's traffic crosses the WAN under its own SPIs, each host's SA sends its own dummy packets
	(dummy_interval_ms on A), a third host without SAs raises an ACQUIRE carrying its address while nothing of
	it leaks, and at B an SA of one host carrying the other host's
	packet (scapy-made) is dropped and counted."""
	from scapy.layers.inet import ICMP, IP
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	keys = Keys()
	nenc, ninteg, _, _ = ALGS[keys.alg]
	enc, integ = keys.bitw_algs()
	hosts = {'198.18.1.10': (0x3010, 0x4010), '198.18.1.11': (0x3011, 0x4011)}
	third = '198.18.1.12'
	for out_spi, in_spi in hosts.values():
		for spi in (out_spi, in_spi):
			keys.enc[spi], keys.integ[spi] = os.urandom(nenc), os.urandom(ninteg)

	def cloned(side):
		def override(c):
			for p in c['policies']:
				if p['name'] == 'lan4':
					p['clone'] = 'src' if side == 'A' else 'dst'
					if side == 'A':
						p['dummy_interval_ms'] = 100
			c['sas'] = [s for s in c['sas'] if s['policy'] != 'lan4']
			peer = WAN['B' if side == 'A' else 'A'][4]
			for host, (a_out, b_out) in hosts.items():
				for direction, spi in (('out', a_out if side == 'A' else b_out),
				                       ('in', b_out if side == 'A' else a_out)):
					c['sas'].append({'spi': f'0x{spi:08x}', 'direction': direction, 'policy': 'lan4',
					                 'peer': peer, 'clone_host': host, 'enc': enc,
					                 'enc_key': keys.enc[spi].hex(), 'integ': integ,
					                 'integ_key': keys.integ[spi].hex()})
		return override

	with Topo('clone') as t:
		need_bitw(t)
		t.addr('hA', 'eth0', ['198.18.1.11/24', third + '/24'])
		t.start_both(keys, a={'override': cloned('A')}, b={'override': cloned('B')})
		ev = t.events('A')
		cap = t.capture('r', 'to-a', 'wan')
		marker = new_marker()
		for host in hosts:
			r = t.run('hA', ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '3', '-I', host, HOST_B4], check=False)
			expect(' 0% packet loss' in r.stdout, f'{host} reaches hostB through its own SA pair ({r.stdout[-120:]})')
		r = t.run('hA', ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', '-I', third, '-p',
		                 marker.encode().hex()[:32], HOST_B4], check=False)
		e = wait_event(ev, lambda e: e.get('event') == 'ACQUIRE' and e.get('policy') == 'lan4')
		pkts = cap.stop()
		expect(' 0 received' in r.stdout, f'{third} without SAs gets nothing through ({r.stdout[-120:]})')
		expect(e and e.get('clone_host') == third and e.get('src') == third,
		       f'an ACQUIRE for lan4 carries clone_host {third} ({e})')
		acq = [x for x in events_seen(ev) if x.get('event') == 'ACQUIRE']
		expect(all(x.get('clone_host') == third for x in acq), f'no ACQUIRE for the hosts with SAs ({acq})')
		for host, (a_out, b_out) in hosts.items():
			fwd = esp_frames(pkts, a_out)
			back = esp_frames(pkts, b_out)
			inner, dummies = [], 0
			for _, _, raw, outer in fwd:
				try:
					i = ip_layer(decrypt(keys, a_out, raw, outer))
				except Exception:  # noqa: BLE001 - scapy cannot turn next header 59 into a packet
					i = None
				if i is None:
					dummies += 1
				else:
					inner.append(i)
			expect(len(inner) >= 3 and len(back) >= 3,
			       f'{host}: its echo requests under SPI {a_out:#x}, replies under {b_out:#x} ({len(inner)}/{len(back)})')
			expect(all(i.src == host for i in inner),
			       f'{host}: SPI {a_out:#x} decrypts (scapy) to packets of {host} only')
			expect(dummies >= 3, f'{host}: its own SA {a_out:#x} sends dummy packets on the WAN ({dummies})')
		spis = {spi for _, spi, _, _ in esp_frames(pkts)}
		expect(spis <= {x for pair in hosts.values() for x in pair},
		       f'only the per-host SPIs on the WAN ({sorted(hex(x) for x in spis)})')
		expect(not frames_with(pkts, marker.encode()) and not cleartext_between_lans(pkts),
		       f'nothing of {third} leaks in clear on the WAN')
		st_a, st_b = t.stats('A'), t.stats('B')
		for host, (a_out, _) in hosts.items():
			sent, got = sa_stats(st_a, a_out, 'out') or {}, sa_stats(st_b, a_out, 'in') or {}
			expect(sent.get('dummy_packets', 0) >= 3 and got.get('dummy_packets', 0) >= 3,
			       f'{host}: dummies counted on its SA {a_out:#x}: sent by A {sent.get("dummy_packets")}, '
			       f'discarded by B {got.get("dummy_packets")}')

		# At B each inbound SA delivers only its own host's packets: scapy seals host .11's echo request
		# under host .10's SA and the other way round (dropped), and each host's under its own (delivered).
		r_mac, b_mac = t.mac('r', 'to-b'), t.mac('wB', 'b-blk')
		m2 = new_marker().encode() * 3
		(h10, (spi10, _)), (h11, (spi11, _)) = hosts.items()
		frames = []
		for seq, (spi, src) in enumerate(((spi10, h11), (spi11, h10), (spi10, h10), (spi11, h11))):
			sa = keys.scapy_sa(spi, WAN['A'][4], WAN['B'][4])
			inner = IP(src=src, dst=HOST_B4, ttl=63) / ICMP(type=8, id=0x7c10, seq=seq) / Raw(m2)
			frames.append(Ether(src=r_mac, dst=b_mac) / sa.encrypt(IP(bytes(inner)), seq_num=500000 + seq))
		before = counter(st_b, 'XE_INBOUND_POLICY_FAILURE')
		cap_hb = t.capture('hB', 'eth0', 'hostB', 'icmp')
		t.inject('r', 'to-b', frames)
		time.sleep(1)
		got = {(p[IP].src, p[ICMP].seq) for p in cap_hb.stop() if ICMP in p and p[ICMP].type == 8 and m2 in bytes(p)}
		expect(got == {(h10, 2), (h11, 3)},
		       f'hostB gets each host\'s packet under its own SA only, none under the other host\'s ({got})')
		d = counter(t.stats('B'), 'XE_INBOUND_POLICY_FAILURE') - before
		expect(d == 2, f'B counts the two wrong-host packets as XE_INBOUND_POLICY_FAILURE (+{d})')
		t.stop_bitw('A')
		t.stop_bitw('B')

def red_probe():
	"""bitwB finds a silent hostB on its red side by itself: an ARP probe (sender 0.0.0.0) for IPv4, a
	neighbour solicitation for IPv6, and the first packets A -> B are delivered."""
	from scapy.layers.inet import IP
	from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
	from scapy.layers.l2 import ARP, Ether
	keys = Keys()
	with Topo('redprobe') as t:
		need_bitw(t)
		# Silence: hostB has IPv6 DAD off (Topo), no router solicitations; its link came up before bitwB
		# started, so bitwB saw none of its start-up chatter. The capture below proves it said nothing
		# with its own addresses before bitwB asked.
		t.sysctl('hB', 'net.ipv6.conf.eth0.router_solicitations', 0)
		t.sysctl('hB', 'net.ipv6.conf.eth0.autoconf', 0)
		time.sleep(1.5)
		t.start_both(keys)
		cap = t.capture('hB', 'eth0', 'hostB', 'arp or icmp or icmp6')
		known = [n for n in t.stats('B')['neighbours']['red'] if n['address'] in (HOST_B4, HOST_B6)]
		expect(not known, f'before the first ping bitwB knows nothing about hostB ({known})')
		t.ping('hA', HOST_B4, count=2, check=True)
		t.ping('hA', HOST_B6, count=2, check=True)
		log('ok: the first pings A -> B (v4 and v6) got replies')
		pkts = cap.stop()
		hb, wb = t.mac('hB', 'eth0'), t.mac('wB', 'b-red')
		for fam, is_probe, what in (
				(4, lambda p: ARP in p and p[ARP].op == 1 and p[ARP].psrc == '0.0.0.0' and p[ARP].pdst == HOST_B4,
				 'an ARP probe (sender 0.0.0.0) for hostB'),
				(6, lambda p: ICMPv6ND_NS in p and p[ICMPv6ND_NS].tgt == HOST_B6,
				 'a neighbour solicitation for hostB\'s IPv6 address')):
			idx = [i for i, p in enumerate(pkts) if is_probe(p)]
			expect(idx and pkts[idx[0]][Ether].src == wb, f'bitwB sent {what} on hostB\'s link')
			spoke = [p for p in pkts[:idx[0]] if p[Ether].src == hb and
			         (fam == 4 and (ARP in p and p[ARP].psrc == HOST_B4 or IP in p and p[IP].src == HOST_B4) or
			          fam == 6 and IPv6 in p and p[IPv6].src == HOST_B6)]
			expect(not spoke, f'hostB had said nothing with its IPv{fam} address before ({[p.summary() for p in spoke]})')
			if fam == 6:
				log('NS source:', pkts[idx[0]][IPv6].src)
		t.stop_bitw('A')
		t.stop_bitw('B')


HOSTS = {'A': {4: HOST_A4, 6: HOST_A6}, 'B': {4: HOST_B4, 6: HOST_B6}}


def transport_sites(side):
	"""site_config's override: host-to-host transport policies (t4, t6) and their SAs instead of lan4/lan6."""
	peer = 'B' if side == 'A' else 'A'

	def override(cfg):
		cfg['policies'] = [p for p in cfg['policies'] if not p['name'].startswith('lan')]
		for fam in (4, 6):
			cfg['policies'].append({'name': f't{fam}', 'priority': 3, 'action': 'protect', 'mode': 'transport',
			                        'src': HOSTS[side][fam], 'dst': HOSTS[peer][fam], 'peer': HOSTS[peer][fam]})
		for sa in cfg['sas']:
			fam = 4 if sa['policy'] == 'lan4' else 6
			sa['policy'] = f't{fam}'
			sa['peer'] = HOSTS[peer][fam]
			del sa['local']  # a transport SA's local end is its policy's host
	return override


def transport_mode():
	"""ESP transport mode on the hosts' behalf: the WAN carries ESP between the hosts' own addresses (no bitw
	address), scapy's transport-mode SA decrypts it to the marked pings, and both hosts get their replies."""
	from scapy.layers.inet import IP
	from scapy.layers.inet6 import IPv6
	from scapy.layers.ipsec import ESP, SecurityAssociation
	keys = Keys('aes-cbc-256+hmac-sha256-128')
	marker = new_marker()
	with Topo('transport') as t:
		need_bitw(t)
		t.start_both(keys, a={'override': transport_sites('A')}, b={'override': transport_sites('B')})
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		pkts = cap.stop()
		expect(not frames_with(pkts, marker.encode()), 'the plaintext marker never appears on the WAN')
		esp = esp_frames(pkts)
		expect(len(esp) >= 24 and {s for _, s, _, _ in esp} == set(SPI.values()),
		       f'ESP carried all the pings on the four SAs ({len(esp)} frames)')
		hosts = {HOST_A4, HOST_B4, HOST_A6, HOST_B6}
		ends = {(ip.src, ip.dst) for _, _, _, ip in esp}
		expect(all({a, b} <= hosts for a, b in ends), f'the outer addresses are the hosts\' own ({ends})')
		_, _, crypt, auth = ALGS[keys.alg]
		good = 0
		for _, spi, raw, ip in esp:
			sa = SecurityAssociation(ESP, spi=spi, crypt_algo=crypt, crypt_key=keys.enc[spi], auth_algo=auth,
			                         auth_key=keys.integ[spi])
			outer = IP(bytes(ip)) if ip.version == 4 else IPv6(bytes(ip))
			inner = sa.decrypt(outer)
			good += (marker.encode() in bytes(inner) and inner.src == ip.src and inner.dst == ip.dst and
			         (inner.proto if ip.version == 4 else inner.nh) in (1, 58))
		expect(good == len(esp), f'scapy (transport mode) decrypts all {len(esp)} to the hosts\' own pings ({good})')
		st = policy_stats(t.stats('A'), 't4')
		expect(st and st['out_packets'] >= 6 and st['in_packets'] >= 6, f'bitw A counts them on the transport policy ({st})')
		for side in 'AB':
			t.stop_bitw(side)


def as_ah(cfg):
	"""site_config override: every SA of the site is an AH SA (RFC 4302) with the same integrity key."""
	for p in cfg['policies']:
		if p['action'] == 'protect':
			p['sa_type'] = 'ah'
	for sa in cfg['sas']:
		sa['protocol'] = 'ah'
		sa['enc'] = 'null'
		sa.pop('enc_key', None)


def bundle_outer6(alg='aes-gcm-256'):
	"""AH+ESP bundles over IPv6 outer headers: pings cross both ways as IPv6 | AH | ESP, and both SAs of each
	inbound pair count them (an IPv6 walk goes past AH to ESP; the bundle must still be verified AH first)."""
	keys = Keys(alg)
	ah_keys = {spi: os.urandom(32) for spi in SPI.values()}
	marker = new_marker()
	with Topo('bundle6') as t:
		need_bitw(t)
		t.start_both(keys, outer=6, override=bundle_override(ah_keys))
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		pkts = cap.stop()
		expect(not cleartext_between_lans(pkts), 'no host-to-host packet outside the tunnel on the WAN')
		expect(not esp_frames(pkts), 'no bare ESP on the WAN: ESP travels inside AH')
		ah = [(p, spi, ip) for p, spi, ip in ah_frames(pkts) if ip.version == 6]
		expect(len(ah) >= 12 and all(bytes(ip.payload)[0] == 50 for _, _, ip in ah),
		       f'IPv6 AH frames carrying ESP carried the pings ({len(ah)} seen)')
		for spi in SPI.values():
			side = 'A' if spi in (SPI[('A', 4)], SPI[('A', 6)]) else 'B'
			st = {pr: bundle_sa_stats(t.stats(other(side)), spi, 'in', pr) or {} for pr in ('esp', 'ah')}
			expect(st['esp'].get('packets', 0) >= 3 and st['esp'].get('packets') == st['ah'].get('packets'),
			       f'bitw {other(side)} in {spi:#x}: ESP and AH SA count the same packets ({st})')


def ah_frames(pkts):
	"""AH frames on the WAN: [(frame, spi, outer IP layer)]."""
	out = []
	for p in pkts:
		ip = ip_layer(p)
		if ip is not None and (ip.proto if ip.version == 4 else ip.nh) == 51:
			out.append((p, int.from_bytes(bytes(ip.payload)[4:8], 'big'), ip))
	return out


def ah_test(alg='null+hmac-sha256-128', outer='4'):
	"""Two bitws with AH SAs: pings cross, every AH frame on the WAN verifies with scapy's AH,
	a scapy-made AH packet whose mutable outer fields a router changed reaches hostB, a tampered one does not."""
	from scapy.layers.inet import ICMP, IP
	from scapy.layers.inet6 import IPv6
	from scapy.layers.ipsec import AH, SecurityAssociation
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	outer = int(outer)
	keys = Keys(alg)
	_, _, _, auth = ALGS[alg]
	marker = new_marker()

	def scapy_sa(spi, src, dst):
		th = IPv6(src=src, dst=dst) if outer == 6 else IP(src=src, dst=dst)
		return SecurityAssociation(AH, spi=spi, auth_algo=auth, auth_key=keys.integ[spi], tunnel_header=th)

	with Topo(f'ah{outer}{alg[-3:]}') as t:
		need_bitw(t)
		t.start_both(keys, outer=outer, override=as_ah)
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		pkts = cap.stop()
		leaks = cleartext_between_lans(pkts)
		expect(not leaks, f'no host-to-host packet outside AH on the WAN (saw {[p.summary() for p in leaks[:3]]})')
		expect(not esp_frames(pkts), 'no ESP on the WAN: the SAs are AH')
		ah = ah_frames(pkts)
		expect(len(ah) >= 12, f'AH frames (IP protocol 51) carried the pings ({len(ah)} seen)')
		spis = {s for _, s, _ in ah}
		expect(set(SPI.values()) <= spis, f'all four AH SAs were used (SPIs seen {sorted(hex(s) for s in spis)})')
		expect({ip.version for _, _, ip in ah} == {outer}, f'outer headers are IPv{outer}')
		good = 0
		for p, spi, ip in ah:
			pkt = ip.__class__(bytes(ip))
			try:
				inner = bytes(scapy_sa(spi, pkt.src, pkt.dst).decrypt(pkt))
			except Exception as e:  # noqa: BLE001 - scapy raises IPSecIntegrityError and friends
				raise Fail(f'scapy cannot verify {p.summary()} with the AH SA {spi:#x}: {e!r}')
			inner = IP(inner) if pkt[AH].nh == 4 else IPv6(inner)  # scapy leaves a tunnel's inner packet raw
			good += marker.encode() in bytes(inner) and lan_of(inner.src) is not None
		expect(good == len(ah), f'all {len(ah)} AH frames verify (scapy AH, {auth}) to the marked pings')
		# a frame with one bit changed must fail scapy's check: the check above means something
		pkt = ah[0][2].__class__(bytes(ah[0][2]))
		bad = bytearray(bytes(pkt))
		bad[-1] ^= 1
		try:
			scapy_sa(ah[0][1], pkt.src, pkt.dst).decrypt(pkt.__class__(bytes(bad)))
			raise Fail('scapy accepted a tampered AH frame')
		except Fail:
			raise
		except Exception:  # noqa: BLE001
			log('ok: scapy refuses a tampered AH frame')
		# the other way: scapy signs, a router changes TTL/TOS (or hop limit/traffic class), bitw B delivers
		r_mac, b_mac = t.mac('r', 'to-b'), t.mac('wB', 'b-blk')
		m2 = new_marker().encode() * 4
		spi = SPI[('A', 4)]
		sa = scapy_sa(spi, WAN['A'][outer], WAN['B'][outer])
		frames = []
		for i in range(4):
			inner = IP(src=HOST_A4, dst=HOST_B4, ttl=63) / ICMP(type=8, id=0x4343, seq=i) / Raw(m2)
			o = sa.encrypt(IP(bytes(inner)), seq_num=200000 + i)
			if outer == 4:
				o.ttl, o.tos = 17, 0x20
				del o.chksum
			else:
				o.hlim, o.tc = 17, 0x20
			o = o.__class__(bytes(o))
			if i == 3:  # tampered: an inner byte changed
				raw = bytearray(bytes(o))
				raw[-1] ^= 0xff
				o = o.__class__(bytes(raw))
			frames.append(Ether(src=r_mac, dst=b_mac) / o)
		before = sa_stats(t.stats('B'), spi, 'in') or {}
		cap_hb = t.capture('hB', 'eth0', 'hostB', 'icmp')
		t.inject('r', 'to-b', frames)
		time.sleep(1)
		got = cap_hb.stop()
		seen = {ip_layer(p).payload.seq for p in got if m2 in bytes(p) and ip_layer(p).version == 4
		        and ip_layer(p).payload.type == 8}
		expect(seen == {0, 1, 2}, f'the 3 scapy-made AH packets reached hostB, the tampered one did not (saw {seen})')
		after = sa_stats(t.stats('B'), spi, 'in') or {}
		expect(after.get('auth_drops', 0) - before.get('auth_drops', 0) == 1,
		       f'bitw B counts the tampered one as an auth drop ({before} -> {after})')
		for side in 'AB':
			t.stop_bitw(side)


def ah_gmac_ok(key, ip):
	"""RFC 4543 5 by hand (scapy 2.5 has no AH GMAC): AES-GCM's tag over the packet with scapy's mutable
	fields zeroed and the IV (the 8 bytes after the sequence number) left in."""
	from cryptography.hazmat.primitives.ciphers.aead import AESGCM
	from scapy.layers.ipsec import AH, zero_mutable_fields
	raw = bytes(ip)
	at = len(raw) - len(bytes(ip[AH]))
	zeroed = bytearray(bytes(zero_mutable_fields(ip.__class__(raw))))
	iv = raw[at + 12:at + 20]
	zeroed[at + 12:at + 20] = iv
	return AESGCM(key[:-4]).encrypt(key[-4:] + iv, b'', bytes(zeroed)) == raw[at + 20:at + 36]


def ah_transport(alg='null+hmac-sha256-128'):
	"""AH transport mode on the hosts' behalf: pings cross both ways in both families; every AH frame on the WAN
	carries the hosts' own addresses and verifies (scapy's transport-mode AH; AES-GMAC by hand) to the hosts'
	pings; an IPv6 echo from hostA with hop-by-hop and destination options crosses with AH between the two
	headers, reaches hostB with both, and hostB's reply comes back."""
	from scapy.layers.inet6 import (HBHOptUnknown, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt,
	                                IPv6ExtHdrHopByHop)
	from scapy.layers.ipsec import AH, SecurityAssociation
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	keys = Keys(alg)
	_, _, _, auth = ALGS[alg]
	marker = new_marker()

	def sites(side):
		transport = transport_sites(side)

		def override(cfg):
			transport(cfg)
			as_ah(cfg)
		return override

	with Topo('ahtr' + alg[-3:]) as t:
		need_bitw(t)
		t.start_both(keys, a={'override': sites('A')}, b={'override': sites('B')})
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		m6 = new_marker().encode() * 2
		cap_b = t.capture('hB', 'eth0', 'hostB', 'ip6')  # 'icmp6' would miss it: BPF does not chase headers
		cap_a = t.capture('hA', 'eth0', 'hostA', 'icmp6')
		req = (Ether(src=t.mac('hA', 'eth0'), dst=t.mac('r', 'to-a')) / IPv6(src=HOST_A6, dst=HOST_B6) /
		       IPv6ExtHdrHopByHop(options=[HBHOptUnknown(otype=0x3E, optdata=b'hbh!')]) /
		       IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x1E, optdata=b'dst!')]) /
		       ICMPv6EchoRequest(id=0x4242, seq=7) / Raw(m6))
		t.inject('hA', 'eth0', [req])
		time.sleep(1.5)
		at_b, at_a, pkts = cap_b.stop(), cap_a.stop(), cap.stop()
		got = [p for p in at_b if m6 in bytes(p) and ICMPv6EchoRequest in p]
		expect(got and IPv6ExtHdrHopByHop in got[0] and IPv6ExtHdrDestOpt in got[0] and AH not in got[0],
		       f'hostB got the echo with its hop-by-hop and destination options, AH gone ({[p.summary() for p in got]})')
		back = [p for p in at_a if m6 in bytes(p) and ICMPv6EchoReply in p]
		expect(back, 'hostB\'s reply reached hostA')
		expect(not frames_with(pkts, m6[:16]) or all(AH in p for p in frames_with(pkts, m6[:16])),
		       'the extension-header echo crossed the WAN only inside AH')
		ah = [(p, p[AH].spi, ip_layer(p)) for p in pkts if AH in p]  # AH after a hop-by-hop header too
		expect(len(ah) >= 26 and {s for _, s, _ in ah} == set(SPI.values()),
		       f'AH carried the pings on the four SAs ({len(ah)} frames)')
		hosts = {HOST_A4, HOST_B4, HOST_A6, HOST_B6}
		ends = {(ip.src, ip.dst) for _, _, ip in ah}
		expect(all({a, b} <= hosts for a, b in ends), f'the WAN addresses are the hosts\' own ({ends})')
		good = ext = 0
		for p, spi, ip in ah:
			pkt = ip.__class__(bytes(ip))
			if m6 in bytes(pkt) and pkt.version == 6:  # before scapy's decrypt takes AH out of pkt
				ext += IPv6ExtHdrHopByHop in pkt and pkt[IPv6ExtHdrHopByHop].nh == 51 and pkt[AH].nh == 60
			if auth is None:
				ok = ah_gmac_ok(keys.integ[spi], pkt)
				inner = pkt
			else:
				try:
					inner = SecurityAssociation(AH, spi=spi, auth_algo=auth, auth_key=keys.integ[spi]).decrypt(pkt)
					ok = True
				except Exception as e:  # noqa: BLE001 - scapy raises IPSecIntegrityError and friends
					raise Fail(f'scapy cannot verify {p.summary()} with the transport AH SA {spi:#x}: {e!r}')
			mine = marker.encode() in bytes(inner) or m6 in bytes(inner)
			good += ok and mine
		expect(good == len(ah), f'all {len(ah)} AH frames verify ({auth or "AES-GMAC by hand"}) to the hosts\' packets '
		       f'({good})')
		expect(ext >= 1, f'on the WAN the echo carries hop-by-hop, AH, destination options in that order ({ext})')
		st = policy_stats(t.stats('B'), 't6')
		expect(st and st['in_packets'] >= 7, f'bitw B counts them on the transport policy ({st})')
		if auth is not None:
			ah_fragments_in(t, keys, auth)
		for side in 'AB':
			t.stop_bitw(side)


def ah_fragments_in(t, keys, auth):
	"""scapy signs transport AH pings hostA -> hostB (as a host doing its own IPsec would), cuts each into two
	IP fragments (IPv4, and IPv6 with a fragment header before AH) and sends them at bitw B from the WAN:
	bitw B reassembles them for its host, verifies them, and hostB gets both pings."""
	from scapy.layers.inet import ICMP, IP
	from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment
	from scapy.layers.ipsec import AH, SecurityAssociation
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	mark = new_marker().encode() * 8
	frames = []
	for fam, src, dst in ((4, HOST_A4, HOST_B4), (6, HOST_A6, HOST_B6)):
		spi = SPI[('A', fam)]
		sa = SecurityAssociation(AH, spi=spi, auth_algo=auth, auth_key=keys.integ[spi])
		ping = (IP(src=src, dst=dst, id=0x5151) / ICMP(type=8, id=0x5151, seq=fam) if fam == 4 else
		        IPv6(src=src, dst=dst) / ICMPv6EchoRequest(id=0x5151, seq=fam)) / Raw(mark)
		signed = sa.encrypt(ping.__class__(bytes(ping)), seq_num=500000 + fam)
		body = bytes(signed.payload)
		cut = len(body) // 2 // 8 * 8
		for off, part, more in ((0, body[:cut], 1), (cut, body[cut:], 0)):
			if fam == 4:
				frag = IP(src=src, dst=dst, id=0x5151, proto=51, flags='MF' if more else 0, frag=off // 8) / Raw(part)
			else:
				frag = IPv6(src=src, dst=dst, nh=44) / IPv6ExtHdrFragment(nh=51, offset=off // 8, m=more,
				                                                          id=0x5151) / Raw(part)
			frames.append(Ether(src=t.mac('r', 'to-b'), dst=t.mac('hB', 'eth0')) / frag)
	cap = t.capture('hB', 'eth0', 'hostB-frag', 'ip or ip6')
	t.inject('r', 'to-b', frames)
	time.sleep(1.5)
	got = cap.stop()
	seen = {p.seq if ICMP in p else p[ICMPv6EchoRequest].seq for p in got if mark in bytes(p) and
	        (ICMP in p and p[ICMP].type == 8 or ICMPv6EchoRequest in p)}
	expect(seen == {4, 6}, f'hostB got both scapy-signed pings that arrived as IPv4/IPv6 fragments of AH ({seen})')
	unknown_spi_drops_after_reassembly(t)


def unknown_spi_drops_after_reassembly(t):
	"""Fragments for hostB that no SA of bitw B takes once reassembled: an AH+ESP bundle's IPv6 fragments with an
	unknown AH SPI count as XE_BAD_AH_SPI (the IPv6 walk goes past AH to ESP: not XE_BAD_ESP_SPI), and IPv4
	fragments of an AH header too short to hold its SPI count as XE_MALFORMED_PACKET."""
	from scapy.layers.inet import IP
	from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	eth = Ether(src=t.mac('r', 'to-b'), dst=t.mac('hB', 'eth0'))
	ah = bytes([50, 4, 0, 0]) + (0xdead0001).to_bytes(4, 'big') + (1).to_bytes(4, 'big') + bytes(12)
	bundle = ah + (0xdead0002).to_bytes(4, 'big') + (1).to_bytes(4, 'big') + bytes(64)
	frames = [eth / IPv6(src=HOST_A6, dst=HOST_B6, nh=44) /
	          IPv6ExtHdrFragment(nh=51, offset=off // 8, m=more, id=0x5252) / Raw(part)
	          for off, part, more in ((0, bundle[:32], 1), (32, bundle[32:], 0))]
	frames += [eth / IP(src=HOST_A4, dst=HOST_B4, id=0x5253, proto=51, flags='MF' if more else 0, frag=off // 8) /
	           Raw(part) for off, part, more in ((0, ah[:8], 1), (8, ah[8:10], 0))]
	before = t.stats('B')
	t.inject('r', 'to-b', frames)
	time.sleep(1)
	after = t.stats('B')
	delta = {k: counter(after, k) - counter(before, k) for k in ('XE_BAD_AH_SPI', 'XE_BAD_ESP_SPI',
	                                                              'XE_MALFORMED_PACKET')}
	expect(delta == {'XE_BAD_AH_SPI': 1, 'XE_BAD_ESP_SPI': 0, 'XE_MALFORMED_PACKET': 1},
	       f'after reassembly the bundle counts as an unknown AH SPI, the short AH as malformed ({delta})')


def transport_frag(proto='esp'):
	"""Transport mode between two bitws with 1500-byte IPv4 pings without DF: after ESP/AH they exceed the WAN
	MTU, the sending bitw fragments them, and the receiving bitw reassembles the fragments addressed to its
	host (not to itself) before verifying: every ping gets its reply, the WAN carries only fragments of
	protocol 50/51 between the hosts' addresses, which scapy reassembles and verifies to the pings."""
	from scapy.layers.inet import IP, defragment
	from scapy.layers.ipsec import AH, ESP, SecurityAssociation
	alg = 'aes-cbc-256+hmac-sha256-128' if proto == 'esp' else 'null+hmac-sha256-128'
	keys = Keys(alg)
	_, _, crypt, auth = ALGS[alg]
	marker = new_marker()
	number = 50 if proto == 'esp' else 51

	def sites(side):
		transport = transport_sites(side)

		def override(cfg):
			transport(cfg)
			if proto == 'ah':
				as_ah(cfg)
		return override

	with Topo('trfrag' + proto) as t:
		need_bitw(t)
		t.start_both(keys, a={'override': sites('A')}, b={'override': sites('B')})
		cap = t.capture('r', 'to-a', 'wan')
		for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
			r = t.run(src, ['ping', '-n', '-c', '3', '-i', '0.3', '-W', '3', '-M', 'dont', '-s', '1472',
			                '-p', marker.encode().hex(), dst], check=False, timeout=30)
			expect(' 3 received' in r.stdout, f'ping -M dont -s 1472 {src} -> {dst}: 3/3 replies\n{r.stdout}{r.stderr}')
		pkts = cap.stop()
		frags = [p for p in pkts if IP in p and p[IP].proto == number and (p[IP].flags.MF or p[IP].frag)]
		ends = {(p[IP].src, p[IP].dst) for p in frags}
		expect(len(frags) >= 24 and ends == {(HOST_A4, HOST_B4), (HOST_B4, HOST_A4)},
		       f'the {proto.upper()} packets crossed as IPv4 fragments between the hosts\' addresses '
		       f'({len(frags)} fragments, {ends})')
		expect(all(len(p[IP]) <= 1500 for p in frags), 'every fragment fits the 1500-byte WAN MTU')
		good = 0
		whole = [p[IP] for p in defragment(frags) if IP in p and p[IP].proto == number]
		for ip in whole:
			ip = IP(bytes(ip))
			spi = ip[ESP].spi if proto == 'esp' else ip[AH].spi
			if proto == 'esp':
				sa = SecurityAssociation(ESP, spi=spi, crypt_algo=crypt, crypt_key=keys.enc[spi], auth_algo=auth,
				                         auth_key=keys.integ[spi])
			else:
				sa = SecurityAssociation(AH, spi=spi, auth_algo=auth, auth_key=keys.integ[spi])
			good += marker.encode() in bytes(sa.decrypt(ip))
		expect(len(whole) == 12 and good == 12,
		       f'scapy reassembles them to 12 {proto.upper()} packets that verify to the pings ({good}/{len(whole)})')
		if proto == 'esp':
			expect(not frames_with(pkts, marker.encode()), 'the marker never appears in clear')
		for side in 'AB':
			st = t.stats(side)
			expect(not counter(st, 'XE_FRAG_FAILED') and not counter(st, 'XE_INBOUND_EXPECTED_SECURE_PACKET'),
			       f'{side}: nothing failed reassembly or arrived unprotected ({drops_of(st)})')
			t.stop_bitw(side)


def bundle_override(ah_keys):
	"""site_config override: protect policies become ahesp; each ESP SA gets an AH partner under the same SPI."""
	def override(cfg):
		for p in cfg['policies']:
			if p['action'] == 'protect':
				p['sa_type'] = 'ahesp'
		for sa in list(cfg['sas']):
			ah = {k: sa[k] for k in ('spi', 'direction', 'policy', 'peer', 'local') if k in sa}
			ah.update(protocol='ah', enc='null', integ='hmac-sha256-128',
			          integ_key=ah_keys[int(sa['spi'], 16)].hex())
			cfg['sas'].append(ah)
	return override


def bundle_sa_stats(stats, spi, direction, protocol):
	for sa in stats.get('sas', []):
		if int(sa.get('spi', -1)) == spi and sa.get('direction') == direction and sa.get('protocol', 'esp') == protocol:
			return sa
	return None


def seal_bundle(esp_sa, ah_spi, ah_key, inner, seq):
	"""An IPv4 tunnel-mode AH+ESP bundle made with scapy: scapy's ESP (esp_sa, tunnel header), then scapy's
	transport AH (HMAC-SHA-256-128, ah_key) for the layout IP | AH | ESP. scapy's transport AH over IPv4 keeps
	the old total length and appends 16 stray bytes, so the packet is cut to IP + AH + ESP and the length,
	checksum and ICV are redone by hand: the HMAC over the packet with TOS, flags/offset, TTL, checksum and the
	ICV zeroed (RFC 4302 3.3.3.1)."""
	from scapy.layers.inet import IP
	from scapy.layers.ipsec import AH, SecurityAssociation
	ah_sa = SecurityAssociation(AH, spi=ah_spi, auth_algo='SHA2-256-128', auth_key=ah_key)
	esp = bytes(IP(bytes(esp_sa.encrypt(inner, seq_num=seq))))
	b = bytearray(bytes(ah_sa.encrypt(IP(esp), seq_num=seq))[:len(esp) + 28])
	b[2:4] = len(b).to_bytes(2, 'big')
	b[10:12] = bytes(2)
	c = sum(int.from_bytes(b[j:j + 2], 'big') for j in range(0, 20, 2))
	while c >> 16:
		c = (c & 0xffff) + (c >> 16)
	b[10:12] = (~c & 0xffff).to_bytes(2, 'big')
	m = bytearray(b)
	m[1], m[6], m[7], m[8], m[10], m[11] = 0, 0, 0, 0, 0, 0
	m[32:48] = bytes(16)
	b[32:48] = hmac.new(ah_key, bytes(m), hashlib.sha256).digest()[:16]
	return IP(bytes(b))


def bundle(alg='aes-gcm-256'):
	"""Two bitws with AH+ESP bundles (sa_type ahesp): pings cross; every WAN frame is outer IP | AH | ESP, AH
	verifies with scapy's AH and the ESP inside decrypts with scapy's ESP to the marked pings; inbound, a
	scapy-made bundle reaches hostB, ESP alone and a bundle with an unknown ESP SPI do not (counted)."""
	from scapy.layers.inet import ICMP, IP
	from scapy.layers.ipsec import AH, SecurityAssociation
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	keys = Keys(alg)
	ah_keys = {spi: os.urandom(32) for spi in SPI.values()}
	marker = new_marker()

	def ah_sa(spi):
		return SecurityAssociation(AH, spi=spi, auth_algo='SHA2-256-128', auth_key=ah_keys[spi])

	with Topo('bundle') as t:
		need_bitw(t)
		t.start_both(keys, outer=4, override=bundle_override(ah_keys))
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		pkts = cap.stop()
		expect(not cleartext_between_lans(pkts), 'no host-to-host packet outside the tunnel on the WAN')
		expect(not esp_frames(pkts), 'no bare ESP on the WAN: ESP travels inside AH')
		ah = ah_frames(pkts)
		expect(len(ah) >= 12, f'AH frames carried the pings ({len(ah)} seen)')
		good = 0
		for p, spi, ip in ah:
			pkt = IP(bytes(ip))
			expect(pkt[AH].nh == 50, f'AH of SPI {spi:#x} carries ESP (next header {pkt[AH].nh})')
			try:
				esp = ah_sa(spi).decrypt(pkt)  # transport-style removal: IP | ESP
			except Exception as e:  # noqa: BLE001 - scapy raises IPSecIntegrityError and friends
				raise Fail(f'scapy cannot verify {p.summary()} with the AH SA {spi:#x}: {e!r}')
			esp = IP(bytes(esp))
			espi = int.from_bytes(bytes(esp.payload)[:4], 'big')
			expect(espi == spi, f'the ESP inside shares the AH SA\'s SPI {spi:#x} (saw {espi:#x})')
			inner = keys.scapy_sa(spi, pkt.src, pkt.dst).decrypt(esp)
			good += marker.encode() in bytes(inner) and lan_of(inner.src) is not None
		expect(good == len(ah), f'all {len(ah)} bundle frames verify (AH) and decrypt (ESP) to the marked pings')
		for spi in SPI.values():
			side = 'A' if spi in (SPI[('A', 4)], SPI[('A', 6)]) else 'B'
			for direction, where in (('out', side), ('in', other(side))):
				st = {pr: bundle_sa_stats(t.stats(where), spi, direction, pr) or {} for pr in ('esp', 'ah')}
				expect(st['esp'].get('packets', 0) >= 3 and st['esp'].get('packets') == st['ah'].get('packets'),
				       f'bitw {where} {direction} {spi:#x}: ESP and AH SA count the same packets ({st})')

		# inbound at B: scapy builds the bundle (ESP, then AH over it), and two broken ones
		r_mac, b_mac = t.mac('r', 'to-b'), t.mac('wB', 'b-blk')
		spi = SPI[('A', 4)]
		esp_sa = keys.scapy_sa(spi, WAN['A'][4], WAN['B'][4])
		m2 = new_marker().encode() * 4

		def inner(i):
			return IP(bytes(IP(src=HOST_A4, dst=HOST_B4, ttl=63) / ICMP(type=8, id=0x4444, seq=i) / Raw(m2)))

		def bundled(i, esp_spi_sa=esp_sa):
			return seal_bundle(esp_spi_sa, spi, ah_keys[spi], inner(i), 300000 + i)

		other_sa = keys.scapy_sa(spi, WAN['A'][4], WAN['B'][4])
		other_sa.spi = 0x7777  # the right key under an SPI B has no ESP SA for
		frames = [bundled(0), bundled(1),
		          IP(bytes(esp_sa.encrypt(inner(2), seq_num=300002))),  # ESP alone
		          bundled(3, other_sa)]                                   # AH fine, ESP SPI unknown
		before = t.stats('B')['drops']
		cap_hb = t.capture('hB', 'eth0', 'hostB', 'icmp')
		t.inject('r', 'to-b', [Ether(src=r_mac, dst=b_mac) / f for f in frames])
		time.sleep(1)
		got = cap_hb.stop()
		seen = {ip_layer(p).payload.seq for p in got if m2 in bytes(p) and ip_layer(p).payload.type == 8}
		after = t.stats('B')['drops']
		delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
		expect(seen == {0, 1}, f'the 2 scapy-made bundles reached hostB, ESP alone and the bad ESP SPI did not '
		       f'({seen}; drops at B {delta})')
		for reason in ('XE_INBOUND_POLICY_FAILURE', 'XE_BAD_ESP_SPI'):
			expect(after.get(reason, 0) - before.get(reason, 0) == 1,
			       f'bitw B counts one {reason} ({before.get(reason, 0)} -> {after.get(reason, 0)})')
		for side in 'AB':
			t.stop_bitw(side)


def bundle_transport():
	"""AH+ESP bundles in transport mode on the hosts' behalf (sa_type ahesp, mode transport): pings cross both
	ways in both families; every WAN frame is the host's IP | AH | ESP between the hosts' own addresses, scapy's
	transport AH verifies it and scapy's transport ESP decrypts the ESP inside to the hosts' pings; both SAs of
	each pair count the same packets; ESP alone for the bundle is dropped at B (XE_INBOUND_POLICY_FAILURE)."""
	from scapy.layers.inet import ICMP, IP
	from scapy.layers.inet6 import IPv6
	from scapy.layers.ipsec import AH, ESP, SecurityAssociation
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	keys = Keys('aes-cbc-256+hmac-sha256-128')
	_, _, crypt, auth = ALGS[keys.alg]
	ah_keys = {spi: os.urandom(32) for spi in SPI.values()}
	marker = new_marker()

	def esp_sa(spi):
		return SecurityAssociation(ESP, spi=spi, crypt_algo=crypt, crypt_key=keys.enc[spi], auth_algo=auth,
		                           auth_key=keys.integ[spi])

	def sites(side):
		transport, bundled = transport_sites(side), bundle_override(ah_keys)

		def override(cfg):
			transport(cfg)
			bundled(cfg)
		return override

	with Topo('bundletr') as t:
		need_bitw(t)
		t.start_both(keys, a={'override': sites('A')}, b={'override': sites('B')})
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		pkts = cap.stop()
		expect(not frames_with(pkts, marker.encode()), 'the plaintext marker never appears on the WAN')
		expect(not esp_frames(pkts), 'no bare ESP on the WAN: ESP travels inside AH')
		ah = ah_frames(pkts)
		expect(len(ah) >= 24 and {s for _, s, _ in ah} == set(SPI.values()),
		       f'AH carried all the pings on the four SA pairs ({len(ah)} frames)')
		hosts = {HOST_A4, HOST_B4, HOST_A6, HOST_B6}
		ends = {(ip.src, ip.dst) for _, _, ip in ah}
		expect(all({a, b} <= hosts for a, b in ends), f'the WAN addresses are the hosts\' own ({ends})')
		nhs = {(IP if ip.version == 4 else IPv6)(bytes(ip))[AH].nh for _, _, ip in ah}
		expect(nhs == {50}, f'every AH header names ESP next ({nhs})')
		good = 0
		for p, spi, ip in ah:
			cls = IP if ip.version == 4 else IPv6
			pkt = cls(bytes(ip))
			try:
				mid = cls(bytes(SecurityAssociation(AH, spi=spi, auth_algo='SHA2-256-128',
				                                    auth_key=ah_keys[spi]).decrypt(pkt)))
				inner = esp_sa(spi).decrypt(mid)
			except Exception as e:  # noqa: BLE001 - scapy raises IPSecIntegrityError and friends
				raise Fail(f'scapy cannot verify and decrypt {p.summary()} with the transport SA pair {spi:#x}: {e!r}')
			good += (marker.encode() in bytes(inner) and inner.src == ip.src and inner.dst == ip.dst and
			         (inner.proto if ip.version == 4 else inner.nh) in (1, 58))
		expect(good == len(ah), f'all {len(ah)} frames verify (AH) and decrypt (ESP) to the hosts\' own pings ({good})')
		for spi in SPI.values():
			side = 'A' if spi in (SPI[('A', 4)], SPI[('A', 6)]) else 'B'
			for direction, where in (('out', side), ('in', other(side))):
				st = {pr: bundle_sa_stats(t.stats(where), spi, direction, pr) or {} for pr in ('esp', 'ah')}
				expect(st['esp'].get('packets', 0) >= 3 and st['esp'].get('packets') == st['ah'].get('packets'),
				       f'bitw {where} {direction} {spi:#x}: ESP and AH SA count the same packets ({st})')
		st = policy_stats(t.stats('B'), 't4')
		expect(st and st['in_packets'] >= 6 and st['out_packets'] >= 6, f'bitw B counts them on the policy ({st})')

		# ESP alone (scapy's transport ESP, right key and SPI) for the bundle's host: not delivered, counted
		spi, m2 = SPI[('A', 4)], new_marker().encode() * 4
		ping = IP(bytes(IP(src=HOST_A4, dst=HOST_B4) / ICMP(type=8, id=0x4545, seq=1) / Raw(m2)))
		lone = esp_sa(spi).encrypt(ping, seq_num=400000)
		before = t.stats('B')['drops']
		cap_hb = t.capture('hB', 'eth0', 'hostB', 'icmp or esp')
		t.inject('r', 'to-b', [Ether(src=t.mac('r', 'to-b'), dst=t.mac('hB', 'eth0')) / IP(bytes(lone))])
		time.sleep(1)
		got = cap_hb.stop()
		after = t.stats('B')['drops']
		expect(not [q for q in got if m2 in bytes(q)], 'ESP alone for the bundle never reached hostB')
		expect(after.get('XE_INBOUND_POLICY_FAILURE', 0) - before.get('XE_INBOUND_POLICY_FAILURE', 0) == 1,
		       f'bitw B counts it XE_INBOUND_POLICY_FAILURE ({before} -> {after})')
		for side in 'AB':
			t.stop_bitw(side)


def clone_bundle():
	"""A cloned AH+ESP bundle (sa_type ahesp, clone src on A, dst on B), manual keys: each of two hosts behind A
	has its own AH and ESP SA per direction (the inbound pair sharing one SPI); each host's pings cross the WAN
	as IP | AH | ESP under its own SPIs (scapy verifies the AH and decrypts the ESP to that host's packets); a
	third host with an ESP SA but no AH SA gets nothing through and nothing of it leaks; at B a scapy-made
	bundle is delivered only when both its SAs are its inner host's: another host's packet under a host's pair,
	or one host's AH around another's ESP, is dropped and counted."""
	from scapy.layers.inet import ICMP, IP
	from scapy.layers.ipsec import AH, SecurityAssociation
	from scapy.layers.l2 import Ether
	from scapy.packet import Raw
	keys = Keys()
	nenc, ninteg, _, _ = ALGS[keys.alg]
	enc, integ = keys.bitw_algs()
	hosts = {'198.18.1.10': (0x3110, 0x4110), '198.18.1.11': (0x3111, 0x4111)}
	half = ('198.18.1.12', 0x3112)  # an outbound ESP SA without its AH SA
	ah_keys = {}
	for spi in [x for pair in hosts.values() for x in pair] + [half[1]]:
		keys.enc[spi], keys.integ[spi], ah_keys[spi] = os.urandom(nenc), os.urandom(ninteg), os.urandom(32)

	def cloned(side):
		def sa(spi, direction, peer, host, protocol):
			if protocol == 'ah':
				return {'spi': f'0x{spi:08x}', 'direction': direction, 'policy': 'lan4', 'peer': peer,
				        'clone_host': host, 'protocol': 'ah', 'enc': 'null', 'integ': 'hmac-sha256-128',
				        'integ_key': ah_keys[spi].hex()}
			return {'spi': f'0x{spi:08x}', 'direction': direction, 'policy': 'lan4', 'peer': peer,
			        'clone_host': host, 'enc': enc, 'enc_key': keys.enc[spi].hex(), 'integ': integ,
			        'integ_key': keys.integ[spi].hex()}

		def override(c):
			for p in c['policies']:
				if p['name'] == 'lan4':
					p['clone'] = 'src' if side == 'A' else 'dst'
					p['sa_type'] = 'ahesp'
			c['sas'] = [s for s in c['sas'] if s['policy'] != 'lan4']
			peer = WAN['B' if side == 'A' else 'A'][4]
			for host, (a_out, b_out) in hosts.items():
				for direction, spi in (('out', a_out if side == 'A' else b_out),
				                       ('in', b_out if side == 'A' else a_out)):
					c['sas'] += [sa(spi, direction, peer, host, 'esp'), sa(spi, direction, peer, host, 'ah')]
			c['sas'].append(sa(half[1], 'out' if side == 'A' else 'in', peer, half[0], 'esp'))
		return override

	with Topo('clonebundle') as t:
		need_bitw(t)
		t.addr('hA', 'eth0', ['198.18.1.11/24', half[0] + '/24'])
		t.start_both(keys, a={'override': cloned('A')}, b={'override': cloned('B')})
		cap = t.capture('r', 'to-a', 'wan')
		marker = new_marker()
		for host in hosts:
			r = t.run('hA', ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '3', '-I', host, HOST_B4], check=False)
			expect(' 0% packet loss' in r.stdout, f'{host} reaches hostB through its own bundle ({r.stdout[-120:]})')
		r = t.run('hA', ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', '-I', half[0], '-p',
		                 marker.encode().hex()[:32], HOST_B4], check=False)
		pkts = cap.stop()
		expect(' 0 received' in r.stdout, f'{half[0]}, ESP SA but no AH SA, gets nothing through ({r.stdout[-120:]})')
		expect(not esp_frames(pkts), 'no bare ESP on the WAN: every host\'s ESP travels inside its AH')
		expect(not frames_with(pkts, marker.encode()) and not cleartext_between_lans(pkts),
		       f'nothing of {half[0]} leaks in clear on the WAN')
		ah = ah_frames(pkts)
		by_spi = {}
		for _, spi, ip in ah:
			by_spi.setdefault(spi, []).append(IP(bytes(ip)))
		expect(set(by_spi) == {x for pair in hosts.values() for x in pair},
		       f'AH on the WAN under the hosts\' own SPIs only ({sorted(hex(x) for x in by_spi)})')
		for host, (a_out, b_out) in hosts.items():
			inner, espis = [], set()
			for pkt in by_spi.get(a_out, []):
				ah_sa = SecurityAssociation(AH, spi=a_out, auth_algo='SHA2-256-128', auth_key=ah_keys[a_out])
				try:
					esp = IP(bytes(ah_sa.decrypt(pkt)))
				except Exception as e:  # noqa: BLE001 - scapy raises IPSecIntegrityError and friends
					raise Fail(f'scapy cannot verify AH {a_out:#x} of {host}: {e!r}')
				espis.add(int.from_bytes(bytes(esp.payload)[:4], 'big'))
				inner.append(keys.scapy_sa(a_out, pkt.src, pkt.dst).decrypt(esp))
			expect(espis == {a_out}, f'{host}: the ESP inside AH {a_out:#x} is its own ESP SA ({espis})')
			expect(len(inner) >= 3 and len(by_spi.get(b_out, [])) >= 3 and all(i.src == host for i in inner),
			       f'{host}: its echo requests verify and decrypt under {a_out:#x} to its own packets, replies '
			       f'come back under {b_out:#x} ({len(inner)}/{len(by_spi.get(b_out, []))})')

		# At B: scapy seals bundles under host pairs; only a pair whose both SAs are the inner host's delivers.
		r_mac, b_mac = t.mac('r', 'to-b'), t.mac('wB', 'b-blk')
		m2 = new_marker().encode() * 3
		(h10, (s10, _)), (h11, (s11, _)) = hosts.items()
		frames = []
		for seq, (ah_spi, esp_spi, src) in enumerate(((s10, s10, h10), (s10, s10, h11), (s10, s11, h11),
		                                              (s11, s11, h11), (s11, s10, h10))):
			inner = IP(bytes(IP(src=src, dst=HOST_B4, ttl=63) / ICMP(type=8, id=0x7c11, seq=seq) / Raw(m2)))
			esp_sa = keys.scapy_sa(esp_spi, WAN['A'][4], WAN['B'][4])
			frames.append(Ether(src=r_mac, dst=b_mac) / seal_bundle(esp_sa, ah_spi, ah_keys[ah_spi], inner,
			                                                        600000 + seq))
		before = counter(t.stats('B'), 'XE_INBOUND_POLICY_FAILURE')
		cap_hb = t.capture('hB', 'eth0', 'hostB', 'icmp')
		t.inject('r', 'to-b', frames)
		time.sleep(1)
		got = {(p[IP].src, p[ICMP].seq) for p in cap_hb.stop() if ICMP in p and p[ICMP].type == 8 and m2 in bytes(p)}
		expect(got == {(h10, 0), (h11, 3)}, f'hostB gets each host\'s packet under its own AH and ESP SA only: not '
		       f'another host\'s under them, not one host\'s AH around the other\'s ESP ({got})')
		d = counter(t.stats('B'), 'XE_INBOUND_POLICY_FAILURE') - before
		expect(d == 3, f'B counts the three wrong-host bundles as XE_INBOUND_POLICY_FAILURE (+{d})')
		t.stop_bitw('A')
		t.stop_bitw('B')


TESTS = {
	'ping': ping_test,
	'policy-options': policy_options,
	'tcp-udp': tcp_udp,
	'ring-reuse': ring_reuse,
	'wan-capture': wan_capture,
	'independent': independent,
	'wrong-key': wrong_key,
	'replay': replay,
	'pmtu-mss': pmtu_mss,
	'config': config_errors,
	'acquire': acquire,
	'clone': clone,
	'ike-origin': ike_origin,
	'demo': demo,
	'harness-bridge': harness_bridge,
	'nonip-bridge': nonip_bridge,
	'nat-keepalive': nat_keepalive,
	'ike-demux': ike_demux,
	'outer-frag': outer_frag,
	'tso-superframe': tso_superframe,
	'vlan-tagged': vlan_tagged,
	'lifetime': lifetime,
	'red-probe': red_probe,
	'transport': transport_mode,
	'ah': ah_test,
	'bundle': bundle,
	'bundle-outer6': bundle_outer6,
	'bundle-transport': bundle_transport,
	'clone-bundle': clone_bundle,
	'ah-transport': ah_transport,
	'transport-frag': transport_frag,
	'black-mac': black_mac,
}

if __name__ == '__main__':
	sys.exit(main(TESTS))
