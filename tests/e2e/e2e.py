# e2e.py: the end-to-end tests of bitw-wire in network namespaces; `e2e.py TEST` runs one (exit 0/1/77).

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitwtopo import (  # noqa: E402
	GW_A4, HOST_A4, HOST_A6, HOST_B4, HOST_B6, LAN_A4, LAN_B4, SPI, WAN, Fail, Keys, Skip, Topo,
	cleanup_stale, counter, frames_with, list_netns, log, main, pid_alive, policy_stats, sa_stats, sh,
	site_config,
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


def decrypt(keys, spi, raw, outer):
	"""Decrypt one ESP payload with scapy's independent implementation."""
	from scapy.layers.inet import IP
	from scapy.layers.inet6 import IPv6
	from scapy.layers.ipsec import ESP
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


def ping_test(alg='aes-gcm-256', outer='4', encap='none'):
	outer = int(outer)
	keys = Keys(alg)
	marker = new_marker()
	with Topo(f'ping{alg[:8]}{outer}{encap}') as t:
		if t.mode == 'bitw':
			need_bitw(t)
		t.start_both(keys, outer=outer, encap=encap)
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		pkts = cap.stop()
		if t.mode == 'bridge':
			expect(frames_with(pkts, marker.encode()), 'bridge mode: the capture sees the marker in clear')
			return
		check_wan_protected(t, keys, pkts, marker, outer, encap)
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
		ev = t.spawn([t.wirectl_bin, '--socket', t.sock('A'), 'events', '--count', '1', '--timeout', '20'], 'events')
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


def demo():
	src = os.environ.get('BITW_SOURCE_ROOT', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
	build = os.environ.get('BITW_BUILD_ROOT')
	cmd = [os.path.join(src, 'scripts', 'demo'), '--once'] + (['--build', build] if build else [])
	r = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
	print(r.stdout[-4000:])
	print(r.stderr[-2000:])
	expect(r.returncode == 0, f'scripts/demo --once exits 0 (got {r.returncode})')
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


TESTS = {
	'ping': ping_test,
	'tcp-udp': tcp_udp,
	'wan-capture': wan_capture,
	'independent': independent,
	'wrong-key': wrong_key,
	'replay': replay,
	'pmtu-mss': pmtu_mss,
	'config': config_errors,
	'acquire': acquire,
	'demo': demo,
	'harness-bridge': harness_bridge,
}

if __name__ == '__main__':
	sys.exit(main(TESTS))
