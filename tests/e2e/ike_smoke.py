# ike_smoke.py: bitwd's IKE plumbing between two bitw sites configured only over REST; `ike_smoke.py TEST` runs one.
#
# acquire: A keys its policy on traffic (start "traffic"), B only responds: the first ping's ACQUIRE brings up
#   the IKE SA and the child SA, pings flow, both list the IKE SA as ESTABLISHED, the wire holds the child SAs
#   as origin "ike", the SSE backlog has the acquire and the ike.* events, and --ike-keylog wrote the keys.
# wire-restart: A's bitw-wire is killed and started again: bitwd restarts the IKE SA whose child SAs the wire
#   lost, and traffic flows again without anyone touching the configuration.
# algs: both peers offer only AES-CCM-16-256: the child negotiated on traffic is installed on both wires as
#   aes-ccm16-256 and carries pings both ways; then both switch to AES-CTR-128 with AES-XCBC-96, A terminates
#   the IKE SA, and the next ACQUIRE's child is aes-ctr-128/aes-xcbc-96 and carries pings too.
# transport: host-to-host transport policies keyed by IKE on both sides, the peers being the remote hosts (no
#   local given): A's ping's ACQUIRE makes bitw A speak IKE as hostA to hostB's address, bitw B answers as hostB;
#   the child is installed as a transport SA whose local end is the host, and pings pass both ways.
# clone: the LAN policy is clone src on A (clone dst on B); two hosts behind A each ping hostB: each host's
#   first packet raises an ACQUIRE with its clone_host, and each gets its own child SA pair (both sides list the
#   children with that clone_host, both wires hold the SAs with it), its echoes crossing the WAN under its own SPI.
# ah: the LAN policy is sa_type ah with ah_proposals sha256 on both: the child negotiated on traffic is an AH one,
#   installed on both wires as protocol ah, hmac-sha256-128; pings pass both ways, the WAN carries them in AH
#   (IP protocol 51, the inner packet readable by scapy) under the negotiated SPIs and no ESP at all.
# ahesp: the LAN policy is sa_type ahesp: ESP and AH children over the same selectors, each side's inbound SPI
#   the same for both; pings pass both ways and every protected frame on the WAN is outer IP | AH | ESP;
#   rekeying the ESP half rekeys the AH half with it (a new shared SPI, the old four SAs gone from both wires).
# ahesp-transport: the transport policies of "transport" with sa_type ahesp: a transport-mode ESP and AH child on
#   each side sharing the inbound SPI, local end the host on both wires; pings pass both ways and on the WAN
#   everything between the hosts is IKE or the hosts' IP | AH | ESP under the negotiated SPIs, the marker never
#   in clear.
# clone-ahesp: the LAN policy, set over REST, is sa_type ahesp and clone src on A (clone dst on B): two hosts
#   behind A each get their own ESP and AH child (sharing the host's inbound SPI), listed with the host's
#   clone_host in /ike-sas on both sides and on both wires; each host's pings cross the WAN as IP | AH | ESP
#   under its own SPIs.

import os
import secrets
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitwtopo import Fail, Skip, log, main  # noqa: E402
from e2e import expect, new_marker  # noqa: E402
from interop import API, BitwGw  # noqa: E402
from swan import HOST_A4, HOST_B4, SwanTopo, wait_for  # noqa: E402


def need_bitwd():
	if not os.environ.get('BITWD'):
		raise Skip('bitwd is not built (meson option mgmt)')


def pair(t, start_a, **extra):
	psk = secrets.token_urlsafe(24)
	a, b = BitwGw(t, 'A'), BitwGw(t, 'B')
	b.add_peer('A', 'gcm', psk=psk, start='never', **extra)
	a.add_peer('B', 'gcm', psk=psk, start=start_a, **extra)
	return a, b


def wire_ike_sas(gw):
	return [s for s in gw.api.items(f'{API}/sad') if s.get('origin') == 'ike']


def acquire():
	need_bitwd()
	marker = new_marker()
	with SwanTopo('ikeacq', 'bitw', 'bitw') as t:
		a, b = pair(t, 'traffic')
		# The key log is an option of bitwd's: A runs with it from here on.
		a.d.stop()
		a.d.extra_args = ['--ike-keylog']
		a.d.start()
		a.api = a.d.api
		time.sleep(1)
		expect(a.sas() == [] and b.sas() == [], f'start "traffic": no IKE SA before any traffic ({a.sas()})')
		r = t.ping('hA', HOST_B4, count=8, marker=marker, wait=1)
		log(f'first pings while the SA comes up: {r.received}/8')
		sa_a, sa_b = a.wait_up(), b.wait_up()
		expect(sa_a['initiator'] is True and sa_b['initiator'] is False,
		       f'A initiated on traffic, B responded ({sa_a["initiator"]}, {sa_b["initiator"]})')
		for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
			r = t.ping(src, dst, count=3, marker=marker)
			expect(r.received == 3, f'ping {src} -> {dst} over the negotiated SAs ({r.received}/3)')
		kids = sa_a['child_sas']
		on_wire = wire_ike_sas(a)
		expect(len(on_wire) == 2 and {s['spi'] for s in on_wire} == {kids[0]['spi_in'], kids[0]['spi_out']},
		       f'A\'s wire holds the child SA both ways, origin ike ({on_wire}, {kids})')
		keylog = os.path.join(os.path.dirname(a.d.db), 'ike-keys.log')
		text = open(keylog).read() if os.path.exists(keylog) else ''
		expect(os.path.exists(keylog) and os.stat(keylog).st_mode & 0o777 == 0o600,
		       f'--ike-keylog writes {keylog} with mode 0600')
		expect(f'0x{kids[0]["spi_out"]:08x}' in text.lower() and sa_a['spi_i'] in text.lower().replace(',', ''),
		       f'it has Wireshark lines for the child SA and the IKE SA ({text[:300]!r})')
		events = [e.get('type') or e.get('event') for e in a.api.get(f'{API}/events/backlog').get('items', [])]
		expect({'acquire', 'ike.sa.up', 'ike.child.up'} <= set(events), f'the SSE backlog has them ({events})')
		a.d.stop()
		b.d.stop()


def wire_restart():
	need_bitwd()
	from rest import start_wire
	marker = new_marker()
	with SwanTopo('ikewr', 'bitw', 'bitw') as t:
		a, b = pair(t, 'always')
		first = a.wait_up()
		b.wait_up()
		r = t.ping('hA', HOST_B4, count=3, marker=marker)
		expect(r.received == 3, f'pings before the restart ({r.received}/3)')
		# The child then belongs to the rekeyed IKE SA, not to the one that installed it: that one is restarted.
		a.api.call('POST', f'{API}/ike-sas/{first["id"]}/rekey', {}, ok=(202,))
		old = wait_for(lambda: [s for s in a.established() if s['id'] != first['id'] and s.get('child_sas')], 10)
		expect(old, f'the IKE SA was rekeyed before the restart ({a.sas()})')
		old = old[0]
		t.bitw.pop('A').stop(signal.SIGKILL)
		start_wire(t, 'A', 2)

		def fresh():
			return [s for s in a.established() if s['id'] != old['id']]
		new = wait_for(fresh, 30)
		expect(new, f'bitwd brought up a new IKE SA after the wire restart ({a.sas()})')
		ok = wait_for(lambda: t.ping('hA', HOST_B4, count=2, marker=marker, wait=1).received == 2, 20)
		expect(ok, 'and traffic flows again')
		r = t.ping('hB', HOST_A4, count=3, marker=marker)
		expect(r.received == 3, f'both ways ({r.received}/3)')
		a.d.stop()
		b.d.stop()


def child_carries(t, a, b, marker, enc, integ):
	t.ping('hA', HOST_B4, count=4, marker=marker, wait=1)
	sa_a = a.wait_up()
	b.wait_up()
	for gw in (a, b):
		on_wire = wire_ike_sas(gw)
		expect(len(on_wire) == 2 and all(s.get('enc') == enc and s.get('integ') == integ for s in on_wire),
		       f'{gw.side}\'s wire holds the negotiated child as {enc}/{integ} ({on_wire})')
	for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
		r = t.ping(src, dst, count=3, marker=marker)
		expect(r.received == 3, f'{enc}: ping {src} -> {dst} over the negotiated SAs ({r.received}/3)')
	return sa_a


def algs():
	need_bitwd()
	marker = new_marker()
	with SwanTopo('ikealg', 'bitw', 'bitw') as t:
		a, b = pair(t, 'traffic', esp_proposals='aes256ccm16')
		sa = child_carries(t, a, b, marker, 'aes-ccm16-256', 'none')
		for gw in (a, b):
			gw.api.call('PUT', f'{API}/peers/{gw.peer["id"]}', {'esp_proposals': 'aes128ctr-aesxcbc'}, ok=(200,))
		a.api.call('DELETE', f'{API}/ike-sas/{sa["id"]}', None, ok=(200, 202, 204))
		gone = wait_for(lambda: not a.sas() and not b.sas() and not wire_ike_sas(a) and not wire_ike_sas(b), 15)
		expect(gone, f'the terminated IKE SA and its child are gone on both sides ({a.sas()}, {b.sas()})')
		child_carries(t, a, b, marker, 'aes-ctr-128', 'aes-xcbc-96')
		a.d.stop()
		b.d.stop()


def host_policies(t, sa_type='esp'):
	"""Host-to-host transport policies keyed by IKE on both sides (the peers being the remote hosts, no local
	given), sa_type as asked; A keys on traffic, B only responds."""
	psk = secrets.token_urlsafe(24)
	a, b = BitwGw(t, 'A'), BitwGw(t, 'B')
	hosts = {'A': HOST_A4, 'B': HOST_B4}
	for gw, other, start in ((a, 'B', 'traffic'), (b, 'A', 'never')):
		me = gw.side
		gw.peer = gw.api.call('POST', f'{API}/peers', {
			'name': 'host', 'address': hosts[other], 'local_id': hosts[me], 'remote_id': hosts[other],
			'auth': 'psk', 'psk': psk, 'ike_proposals': 'aes256gcm16-prfsha256-curve25519',
			'esp_proposals': 'aes256gcm16', 'start': start}, ok=(201,))
		gw.api.call('POST', f'{API}/policies', {
			'name': 'host', 'priority': 3, 'action': 'protect', 'mode': 'transport', 'src': hosts[me],
			'dst': hosts[other], 'peer': hosts[other], 'ike_peer': gw.peer['id'], 'sa_type': sa_type}, ok=(201,))
	return a, b


def transport():
	need_bitwd()
	marker = new_marker()
	with SwanTopo('iketr', 'bitw', 'bitw') as t:
		a, b = host_policies(t)
		t.ping('hA', HOST_B4, count=4, marker=marker, wait=1)
		sa_a, sa_b = a.wait_up(), b.wait_up()
		expect(sa_a['local'].startswith(HOST_A4) and sa_b['local'].startswith(HOST_B4),
		       f'the IKE SA runs between the hosts\' own addresses ({sa_a["local"]} / {sa_b["local"]})')
		kids = sa_a['child_sas']
		expect(kids and kids[0].get('transport') is True, f'the child is a transport-mode one ({kids})')
		for gw, me in ((a, HOST_A4), (b, HOST_B4)):
			on_wire = wire_ike_sas(gw)
			expect(len(on_wire) == 2 and all(s.get('local') == me and s.get('policy') == 'host' for s in on_wire),
			       f'{gw.side}\'s wire holds the child for the transport policy, local end the host ({on_wire})')
		for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
			r = t.ping(src, dst, count=3, marker=marker)
			expect(r.received == 3, f'transport: ping {src} -> {dst} over the negotiated SAs ({r.received}/3)')
		a.d.stop()
		b.d.stop()


def ahesp_transport():
	need_bitwd()
	from scapy.all import IP, UDP
	marker = new_marker()
	with SwanTopo('iketrb', 'bitw', 'bitw') as t:
		a, b = host_policies(t, 'ahesp')
		cap = t.capture('r', 'to-a', 'wan')
		t.ping('hA', HOST_B4, count=4, marker=marker, wait=1)
		ok = wait_for(lambda: len(children(a)) == 2 and len(children(b)) == 2, 20)
		kids_a, kids_b = children(a), children(b)
		expect(ok and {c['protocol'] for c in kids_a} == {'esp', 'ah'} and
		       all(c.get('transport') is True for c in kids_a + kids_b) and
		       len({c['spi_in'] for c in kids_a}) == 1 and len({c['spi_in'] for c in kids_b}) == 1,
		       f'a transport-mode ESP and AH child on each side, one inbound SPI for both ({kids_a} / {kids_b})')
		for gw, me in ((a, HOST_A4), (b, HOST_B4)):
			on_wire = wire_ike_sas(gw)
			expect(len(on_wire) == 4 and {s.get('protocol', 'esp') for s in on_wire} == {'esp', 'ah'} and
			       all(s.get('local') == me and s.get('policy') == 'host' for s in on_wire),
			       f'{gw.side}\'s wire holds both halves both ways, local end the host ({on_wire})')
		for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
			r = t.ping(src, dst, count=3, marker=marker)
			expect(r.received == 3, f'transport AH+ESP: ping {src} -> {dst} over the bundle ({r.received}/3)')
		pkts = cap.stop()
		ips = [p.getlayer(IP) for p in pkts if p.getlayer(IP) is not None]
		between = [ip for ip in ips if {ip.src, ip.dst} == {HOST_A4, HOST_B4}]
		ike = [ip for ip in between if UDP in ip and {ip[UDP].sport, ip[UDP].dport} & {500, 4500}]
		ah = [ip for ip in between if ip.proto == 51]
		other = [ip.summary() for ip in between if ip.proto != 51 and not (UDP in ip and
		                                                                   {ip[UDP].sport, ip[UDP].dport} & {500, 4500})]
		expect(ike, f'IKE runs between the hosts\' own addresses on the WAN ({len(ike)} frames)')
		expect(len(ah) >= 12 and all(bytes(ip.payload)[0] == 50 for ip in ah),
		       f'the pings cross as the hosts\' IP | AH | ESP ({len(ah)} AH frames, all carrying ESP)')
		expect({int.from_bytes(bytes(ip.payload)[4:8], 'big') for ip in ah} ==
		       {kids_a[0]['spi_in'], kids_b[0]['spi_in']}, 'under the negotiated SPIs, one per direction')
		expect(not other, f'nothing else between the hosts: no bare ESP, no clear ICMP ({other[:3]})')
		expect(not any(marker.encode() in bytes(ip) for ip in ips), 'the marker never appears in clear')
		a.d.stop()
		b.d.stop()


def lan_policy(gw):
	return next(p for p in gw.api.items(f'{API}/policies') if p['name'] == 'lan')


def set_lan(gw, **fields):
	pol = lan_policy(gw)
	body = {k: v for k, v in pol.items() if k != 'id'}
	body.update(fields)
	gw.api.call('PUT', f'{API}/policies/{pol["id"]}', body, ok=(200,))


def children(gw):
	return [c for sa in gw.established() for c in sa['child_sas']]


def wan_frames(pkts, proto):
	"""(spi, IP layer) of the WAN frames of IP protocol proto (50 ESP, 51 AH) right after the outer header."""
	from scapy.all import IP
	out = []
	for p in pkts:
		ip = p.getlayer(IP)
		if ip is not None and ip.proto == proto:
			out.append((int.from_bytes(bytes(ip.payload)[4:8] if proto == 51 else bytes(ip.payload)[0:4], 'big'),
			            ip))
	return out


def clone():
	need_bitwd()
	marker = new_marker()
	second = '198.18.1.11'
	hosts = (HOST_A4, second)
	with SwanTopo('ikecln', 'bitw', 'bitw') as t:
		a, b = pair(t, 'traffic')
		set_lan(a, clone='src')
		set_lan(b, clone='dst')
		t.addr('hA', 'eth0', [second + '/24'])
		cap = t.capture('r', 'to-a', 'wan')
		for host in hosts:
			ok = wait_for(lambda: t.run('hA', ['ping', '-n', '-c', '1', '-W', '1', '-I', host, '-p',
			                                   marker.encode().hex()[:32], HOST_B4], check=False).returncode == 0, 20)
			expect(ok, f'{host} reaches hostB once its child SA is up')
		for host in hosts:
			r = t.run('hA', ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '3', '-I', host, HOST_B4], check=False)
			expect(' 0% packet loss' in r.stdout, f'{host} pings hostB over its own child SA ({r.stdout[-120:]})')
		pkts = cap.stop()
		kids_a = wait_for(lambda: len(children(a)) == 2 and children(a), 10) or children(a)
		kids_b = children(b)
		by_host_a = {c.get('clone_host'): c for c in kids_a}
		by_host_b = {c.get('clone_host'): c for c in kids_b}
		expect(set(by_host_a) == set(hosts) and set(by_host_b) == set(hosts),
		       f'one child per host on both sides, named by clone_host ({kids_a} / {kids_b})')
		for host in hosts:
			ca, cb = by_host_a[host], by_host_b[host]
			expect(ca['spi_in'] == cb['spi_out'] and ca['spi_out'] == cb['spi_in'],
			       f'{host}: the two sides\' children are one pair ({ca}, {cb})')
		expect(len({c['spi_in'] for c in kids_a}) == 2, f'each host has its own SPIs ({kids_a})')
		for gw in (a, b):
			on_wire = wire_ike_sas(gw)
			expect(len(on_wire) == 4 and {s.get('clone_host') for s in on_wire} == set(hosts),
			       f'{gw.side}\'s wire holds two SA pairs, each with its clone_host ({on_wire})')
		spis = {spi for spi, _ in wan_frames(pkts, 50)}
		expect({by_host_a[h]['spi_out'] for h in hosts} <= spis,
		       f'each host\'s traffic crosses the WAN under its own SPI ({sorted(hex(x) for x in spis)})')
		a.d.stop()
		b.d.stop()


def ah():
	need_bitwd()
	marker = new_marker()
	with SwanTopo('ikeah', 'bitw', 'bitw') as t:
		a, b = pair(t, 'traffic')
		for gw in (a, b):
			set_lan(gw, sa_type='ah', ah_proposals='sha256')
		cap = t.capture('r', 'to-a', 'wan')
		t.ping('hA', HOST_B4, count=4, marker=marker, wait=1)
		a.wait_up()
		b.wait_up()
		for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
			r = t.ping(src, dst, count=3, marker=marker)
			expect(r.received == 3, f'AH: ping {src} -> {dst} over the negotiated SAs ({r.received}/3)')
		pkts = cap.stop()
		kids = children(a)
		expect(len(kids) == 1 and kids[0].get('protocol') == 'ah', f'A\'s child is an AH one ({kids})')
		for gw in (a, b):
			on_wire = wire_ike_sas(gw)
			expect(len(on_wire) == 2 and all(s.get('protocol') == 'ah' and s.get('integ') == 'hmac-sha256-128'
			                                 for s in on_wire),
			       f'{gw.side}\'s wire holds the child as AH, hmac-sha256-128 ({on_wire})')
		frames = wan_frames(pkts, 51)
		spis = {spi for spi, _ in frames}
		expect({kids[0]['spi_out'], kids[0]['spi_in']} <= spis, f'AH frames under the negotiated SPIs on the WAN '
		       f'({sorted(hex(x) for x in spis)}, child {kids[0]})')
		expect(any(marker.encode() in bytes(ip) for _, ip in frames), 'the pings travel inside AH (in clear)')
		expect(not wan_frames(pkts, 50), 'and no ESP at all')
		a.d.stop()
		b.d.stop()


def ahesp():
	need_bitwd()
	marker = new_marker()
	with SwanTopo('ikeahesp', 'bitw', 'bitw') as t:
		a, b = pair(t, 'traffic')
		for gw in (a, b):
			set_lan(gw, sa_type='ahesp')
		cap = t.capture('r', 'to-a', 'wan')
		t.ping('hA', HOST_B4, count=4, marker=marker, wait=1)
		ok = wait_for(lambda: len(children(a)) == 2 and len(children(b)) == 2, 20)
		kids_a, kids_b = children(a), children(b)
		expect(ok and {c['protocol'] for c in kids_a} == {'esp', 'ah'} and len({c['spi_in'] for c in kids_a}) == 1
		       and len({c['spi_in'] for c in kids_b}) == 1,
		       f'an ESP and an AH child on each side, one inbound SPI for both ({kids_a} / {kids_b})')
		for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
			r = t.ping(src, dst, count=3, marker=marker)
			expect(r.received == 3, f'AH+ESP: ping {src} -> {dst} over the bundle ({r.received}/3)')
		pkts = cap.stop()
		for gw in (a, b):
			on_wire = wire_ike_sas(gw)
			expect(len(on_wire) == 4 and {s.get('protocol', 'esp') for s in on_wire} == {'esp', 'ah'},
			       f'{gw.side}\'s wire holds both halves of the bundle both ways ({on_wire})')
		frames = wan_frames(pkts, 51)
		expect(frames and all(bytes(ip.payload)[0] == 50 for _, ip in frames),
		       f'protected frames on the WAN are IP | AH | ESP ({len(frames)} AH frames)')
		expect(not wan_frames(pkts, 50), 'no ESP frame without its AH')
		expect(not any(marker.encode() in bytes(ip) for _, ip in frames), 'the pings are encrypted inside')
		old = kids_a[0]['spi_in']
		a.rekey(a.established()[0]['id'], old)

		def rekeyed():
			ka, kb = children(a), children(b)
			return (len(ka) == 2 and len(kb) == 2 and len({c['spi_in'] for c in ka}) == 1 and
			        ka[0]['spi_in'] != old and len(wire_ike_sas(a)) == 4 and len(wire_ike_sas(b)) == 4)
		expect(wait_for(rekeyed, 15), f'rekeying one half rekeys the bundle: a new shared SPI, the old pair gone '
		       f'from both wires ({children(a)}, {len(wire_ike_sas(a))} SAs on A\'s wire)')
		for src, dst in (('hA', HOST_B4), ('hB', HOST_A4)):
			r = t.ping(src, dst, count=3, marker=marker)
			expect(r.received == 3, f'after the rekey: ping {src} -> {dst} ({r.received}/3)')
		a.d.stop()
		b.d.stop()


def clone_ahesp():
	need_bitwd()
	marker = new_marker()
	second = '198.18.1.11'
	hosts = (HOST_A4, second)
	with SwanTopo('ikeclb', 'bitw', 'bitw') as t:
		a, b = pair(t, 'traffic')
		set_lan(a, clone='src', sa_type='ahesp')
		set_lan(b, clone='dst', sa_type='ahesp')
		for gw in (a, b):
			pol = lan_policy(gw)
			expect(pol.get('sa_type') == 'ahesp' and pol.get('clone') in ('src', 'dst'),
			       f'{gw.side}: REST stores the cloned bundle policy ({pol})')
		t.addr('hA', 'eth0', [second + '/24'])
		cap = t.capture('r', 'to-a', 'wan')
		for host in hosts:
			ok = wait_for(lambda: t.run('hA', ['ping', '-n', '-c', '1', '-W', '1', '-I', host, '-p',
			                                   marker.encode().hex()[:32], HOST_B4], check=False).returncode == 0, 20)
			expect(ok, f'{host} reaches hostB once its bundle is up')
		for host in hosts:
			r = t.run('hA', ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '3', '-I', host, '-p',
			                 marker.encode().hex()[:32], HOST_B4], check=False)
			expect(' 0% packet loss' in r.stdout, f'{host} pings hostB over its own bundle ({r.stdout[-120:]})')
		pkts = cap.stop()
		kids_a = wait_for(lambda: len(children(a)) == 4 and children(a), 10) or children(a)
		kids_b = children(b)
		for gw, kids in ((a, kids_a), (b, kids_b)):
			by_host = {}
			for c in kids:
				by_host.setdefault(c.get('clone_host'), []).append(c)
			expect(set(by_host) == set(hosts) and
			       all(sorted(c['protocol'] for c in cs) == ['ah', 'esp'] and len({c['spi_in'] for c in cs}) == 1
			           for cs in by_host.values()),
			       f'{gw.side}: /ike-sas lists an ESP and an AH child per host, named by clone_host, sharing the '
			       f'host\'s inbound SPI ({kids})')
		spi_in = {gw.side: {c['clone_host']: c['spi_in'] for c in kids} for gw, kids in ((a, kids_a), (b, kids_b))}
		expect(all(spi_in['A'][h] != spi_in['B'][h] for h in hosts) and len(set(spi_in['A'].values())) == 2,
		       f'each host has its own SPIs ({spi_in})')
		for gw in (a, b):
			on_wire = wire_ike_sas(gw)
			per_host = {h: sorted((s['direction'], s.get('protocol', 'esp')) for s in on_wire
			                      if s.get('clone_host') == h) for h in hosts}
			expect(len(on_wire) == 8 and all(v == [('in', 'ah'), ('in', 'esp'), ('out', 'ah'), ('out', 'esp')]
			                                 for v in per_host.values()),
			       f'{gw.side}\'s wire holds an AH and an ESP SA per host and direction, with clone_host ({per_host})')
		frames = wan_frames(pkts, 51)
		inner_spi = {spi: {int.from_bytes(bytes(ip.payload)[(bytes(ip.payload)[1] + 2) * 4:][:4], 'big')
		                   for s, ip in frames if s == spi} for spi, _ in frames}
		want = {spi_in['B'][h] for h in hosts} | {spi_in['A'][h] for h in hosts}
		expect(set(inner_spi) == want and all(v == {k} for k, v in inner_spi.items()),
		       f'the WAN carries each host\'s traffic as IP | AH | ESP under its own shared SPI, both ways '
		       f'({ {hex(k): sorted(hex(x) for x in v) for k, v in inner_spi.items()} })')
		expect(all(bytes(ip.payload)[0] == 50 for _, ip in frames) and not wan_frames(pkts, 50),
		       f'every AH frame carries ESP, no ESP without its AH ({len(frames)} AH frames)')
		expect(not any(marker.encode() in bytes(ip) for _, ip in frames), 'the pings are encrypted inside')
		a.d.stop()
		b.d.stop()


TESTS = {
	'transport': transport,
	'algs': algs,
	'acquire': acquire,
	'wire-restart': wire_restart,
	'clone': clone,
	'ah': ah,
	'ahesp': ahesp,
	'ahesp-transport': ahesp_transport,
	'clone-ahesp': clone_ahesp,
}

if __name__ == '__main__':
	sys.exit(main(TESTS))
