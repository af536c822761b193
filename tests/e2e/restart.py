# restart.py: restart behaviour on the wire: bitw-wire or bitwd killed under protected traffic; `restart.py TEST`.
#
# The topology and the two bitwds come from rest.py (both sites configured only over REST). A ping and a UDP
# stream carrying a marker run A->B for the whole test while tcpdump watches A's WAN link; the capture is
# what proves that nothing protected ever crossed in clear, including while bitw-wire was dead or starting.

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitwtopo import HOST_B4, NETIO, PY, SPI, WAN, Fail, frames_with, log, main, rand_key  # noqa: E402
from e2e import cleartext_between_lans, decrypt, esp_frames, expect, new_marker, pings_both_ways  # noqa: E402
from rest import API, Sites, start_wire, wait_wire_has  # noqa: E402

UDP_PORT = 5099
INTERVAL = 0.05          # seconds between pings and between datagrams: 20 per second each
# Seconds from bitw-wire's restart until protected pings pass again. bitwd retries the socket with a back-off
# (wirelink.c: 0.5 s doubling to 5 s), so after a death and a 2 s pause it reconnects at the try ~3.5 s after
# the death: about 1.5 s after the restart, then the push and ARP (measured: ~2.2 s). A wire slower than
# ~1.5 s to get ready waits for the 7.5 s try and fails this limit.
RECOVER_LIMIT = 5.0
# The replacement SPIs for A's outbound SAs after A's bitw-wire restarted (see rekey_a_to_b).
FRESH_SPI = {4: 0x1101, 6: 0x1102}


class PingTimeline:
	"""A ping that runs until stopped and records when each reply came (ping -D)."""

	def __init__(self, t, node, dst, marker):
		cmd = ['ping', '-n', '-D', '-i', str(INTERVAL), '-W', '1', '-p', marker.encode().hex()[:32], dst]
		self.p = t.spawn(t.nsx(node, cmd), 'ping-timeline')

	def replies(self):
		"""{icmp_seq: reply time} of every reply printed so far."""
		out = {}
		for m in re.finditer(r'^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)', self.p.log(), re.M):
			out.setdefault(int(m.group(2)), float(m.group(1)))
		return out

	def stop(self):
		self.p.stop(signal.SIGINT)
		return self.replies()


class UdpStream:
	"""netio's UDP sender A->B (numbered datagrams with the marker) and a receiver on B, so B's stack
	answers no port-unreachable; arrival times come from a capture on B's LAN."""

	def __init__(self, t, marker, seconds):
		self.rx = t.netio_server('hB', 'udp-recv', 'udp-recv', '--port', UDP_PORT, '--v4',
		                         '--count', 1 << 30, '--timeout', seconds + 60)
		self.cap = t.capture('hB', 'eth0', 'lanB-udp', f'udp dst port {UDP_PORT}')
		self.tx = t.spawn(t.nsx('hA', [PY, '-u', NETIO, 'udp-send', '--to', HOST_B4, '--port', str(UDP_PORT),
		                                '--count', str(int(seconds / INTERVAL)), '--interval', str(INTERVAL),
		                                '--size', '200', '--marker', marker]), 'udp-send')

	def stop(self):
		"""{datagram number: arrival time on B's LAN}."""
		from scapy.layers.inet import UDP
		self.tx.stop(signal.SIGKILL)
		pkts = self.cap.stop()
		self.rx.stop(signal.SIGKILL)
		arrived = {}
		for p in pkts:
			if UDP in p and len(bytes(p[UDP].payload)) >= 4:
				arrived.setdefault(int.from_bytes(bytes(p[UDP].payload)[:4], 'big'), float(p.time))
		return arrived


def first_after(timeline, t0):
	"""The first arrival after t0, or None."""
	later = [ts for ts in timeline.values() if ts > t0]
	return min(later) if later else None


def gaps_between(timeline, t0, t1):
	"""Numbers missing between the last arrival before t0 and the first after t1: what a window lost."""
	before = [n for n, ts in timeline.items() if ts < t0]
	after = [n for n, ts in timeline.items() if ts > t1]
	if not before or not after:
		raise Fail(f'the flow did not run on both sides of the window ({len(before)} before, {len(after)} after)')
	lo, hi = max(before), min(after)
	return [n for n in range(lo, hi) if n not in timeline], hi - lo


def fresh_sa(cfg_sa, old, spi, keys):
	"""A copy of a configured SA with a new SPI and new keys (kept in `keys` so scapy can decrypt it)."""
	sa = dict(cfg_sa, spi=f'0x{spi:08x}')
	keys.enc[spi] = rand_key(len(keys.enc[old]))
	keys.integ[spi] = rand_key(len(keys.integ[old]))
	sa['enc_key'] = keys.enc[spi].hex()
	sa['integ_key'] = keys.integ[spi].hex()
	return sa


def rekey_a_to_b(s):
	"""Install fresh A->B SAs on both sites over REST, B's inbound first (make-before-break).

	Why: manual keys cannot survive a one-sided restart. The restarted bitw-wire on A gets its old outbound
	SAs back from bitwd, but their sequence numbers live only in the dataplane, so they start again at 1;
	B, which kept running, still holds the replay window of those SAs and drops everything as a replay
	until A's counter overtakes it. A manual-keyed deployment replaces the SA pair of the restarted
	direction (B->A needs nothing: A's inbound SAs came back with empty windows, which accept B's numbers).
	The newest outbound SA of a policy is the one bitw-wire uses, so adding A's new SA switches traffic.
	IKE (issue 4) will renegotiate instead."""
	for fam, spi in FRESH_SPI.items():
		old = SPI[('A', fam)]
		sa_in = next(x for x in s.cfg['B']['sas'] if int(x['spi'], 16) == old)
		sa_out = next(x for x in s.cfg['A']['sas'] if int(x['spi'], 16) == old)
		new_in = fresh_sa(sa_in, old, spi, s.keys)
		new_out = dict(sa_out, spi=new_in['spi'], enc_key=new_in['enc_key'], integ_key=new_in['integ_key'])
		s.d['B'].api.call('POST', f'{API}/sas', new_in, ok=(201,))
		# A's bitwd may not have reconnected yet: then the SA is stored and goes out with the resync (503).
		r = s.d['A'].api.raw('POST', f'{API}/sas', new_out)
		if r.status_code not in (201, 503):
			raise Fail(f'POST fresh outbound SA on A: HTTP {r.status_code}: {r.text[:300]}')


def drop_stale_a_to_b(s):
	"""Delete the replaced SA pair on both sites: nothing uses it any more."""
	for side, direction in (('A', 'out'), ('B', 'in')):
		api = s.d[side].api
		for sa in api.items(f'{API}/sas'):
			spi = int(sa['spi'], 16) if isinstance(sa['spi'], str) else sa['spi']
			if sa['direction'] == direction and spi in (SPI[('A', 4)], SPI[('A', 6)]):
				api.call('DELETE', f'{API}/sas/{sa["id"]}', ok=(200, 204))


def check_capture(s, pkts, marker, windows):
	"""Over the whole WAN capture: no marker, no host-to-host packet in clear, ESP only between the two
	black addresses, ESP in every window of the test, and a sample decrypts (scapy) to the marked traffic."""
	expect(not frames_with(pkts, marker.encode()), f'the marker never appears in clear on the WAN '
	       f'({len(pkts)} frames over the whole test, restarts included)')
	leaks = cleartext_between_lans(pkts)
	expect(not leaks, f'no packet between the two LANs crossed the WAN in clear (saw {len(leaks)}: '
	       f'{[p.summary() for p in leaks[:3]]})')
	esp = esp_frames(pkts)
	ends = {WAN['A'][4], WAN['B'][4]}
	odd = [p.summary() for p, _, _, ip in esp if {ip.src, ip.dst} != ends]
	expect(not odd, f'all {len(esp)} ESP frames are between the two black addresses ({odd[:3]})')
	for name, (t0, t1) in windows.items():
		n = sum(1 for p, _, _, _ in esp if t0 <= float(p.time) <= t1)
		expect(n > 0, f'ESP carried the traffic {name} ({n} frames)')
	spis = {spi for _, spi, _, _ in esp}
	known = set(SPI.values()) | set(FRESH_SPI.values())
	expect(spis <= known and FRESH_SPI[4] in spis, f'ESP used the configured SAs and, after the restart, the '
	       f'fresh one ({sorted(hex(x) for x in spis)})')
	sample = esp[::max(1, len(esp) // 40)]
	for p, spi, raw, ip in sample:
		try:
			inner = decrypt(s.keys, spi, raw, ip)
		except Exception as e:
			raise Fail(f'scapy cannot decrypt {p.summary()} (SPI {spi:#x}): {e!r}')
		if marker.encode() not in bytes(inner):
			raise Fail(f'an ESP frame (SPI {spi:#x}) decrypts to something without the marker: {inner.summary()}')
	log(f'ok: {len(sample)} sampled ESP frames decrypt (scapy) to marked pings and datagrams')


def restart_leak():
	"""bitw-wire killed -9 and restarted with its minimal configuration, then bitwd killed -9 and restarted,
	all under a protected ping and UDP stream A->B: the wire is back within seconds, nothing is lost while
	only bitwd is gone, and nothing protected ever crosses the WAN in clear."""
	marker = new_marker()
	with Sites('restartleak') as s:
		t = s.t
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker, count=1)
		t_begin = time.time()
		ping = PingTimeline(t, 'hA', HOST_B4, marker)
		udp = UdpStream(t, marker, seconds=40)
		time.sleep(2)

		# (1) bitw-wire dies; a supervisor starts it again 2 s later with the minimal configuration.
		t_kill = time.time()
		t.bitw.pop('A').stop(signal.SIGKILL)
		time.sleep(2)
		t_restart = time.time()
		start_wire(t, 'A', 2)
		log(f'the restarted bitw-wire was ready {time.time() - t_restart:.2f} s after its start')
		rekey_a_to_b(s)
		resync = wait_wire_has(t, 'A', 4, 6, timeout=10)
		log(f'bitwd A resynchronised the restarted bitw-wire {time.time() - t_restart:.2f} s after its start '
		    f'({resync:.2f} s after the fresh SAs were posted)')
		# The flows reached the restarted wire before bitwd did: its empty SPD discarded them (then the
		# capture shows they did not leak), rather than them never arriving.
		held = t.stats('A')['drops'].get('XE_NO_POLICY', 0)
		expect(held >= 10, f'until resynchronised, the restarted bitw-wire discarded the flows by default '
		       f'({held} packets)')
		end = time.time() + 10
		while time.time() < end and first_after(ping.replies(), t_restart) is None:
			time.sleep(0.1)
		time.sleep(1.5)
		drop_stale_a_to_b(s)
		wait_wire_has(t, 'A', 4, 4)
		time.sleep(1)

		# (2) bitwd dies; the wire runs on alone, then bitwd comes back and resynchronises.
		t_bitwd_kill = time.time()
		s.d['A'].kill()
		time.sleep(3)
		s.d['A'].start()
		t_bitwd_back = time.time()
		time.sleep(2)

		pings_both_ways(t, marker, count=2)
		t_end = time.time()
		replies = ping.stop()
		arrived = udp.stop()
		pkts = cap.stop()

		back = first_after(replies, t_restart)
		expect(back is not None, 'pings pass again after bitw-wire restarted')
		log(f'ping outage: {back - t_kill:.2f} s from the kill, {back - t_restart:.2f} s from the restart')
		expect(back - t_restart < RECOVER_LIMIT, f'protected pings pass {back - t_restart:.2f} s after bitw-wire '
		       f'restarted (< {RECOVER_LIMIT} s)')
		udp_back = first_after(arrived, t_restart)
		expect(udp_back is not None and udp_back - t_restart < RECOVER_LIMIT,
		       f'the UDP stream arrives again {(udp_back or 0) - t_restart:.2f} s after the restart')
		lost, span = gaps_between(replies, t_bitwd_kill, t_bitwd_back)
		expect(not lost, f'no ping lost while bitwd was dead and restarting ({span} pings, missing {lost[:10]})')
		lost, span = gaps_between(arrived, t_bitwd_kill, t_bitwd_back)
		expect(not lost, f'no datagram lost while bitwd was dead and restarting ({span} datagrams, '
		       f'missing {lost[:10]})')
		check_capture(s, pkts, marker, {
			'before the kill': (t_begin, t_kill),
			'after the restart': (t_restart, t_bitwd_kill),
			'while bitwd was dead': (t_bitwd_kill, t_bitwd_back),
			'after bitwd came back': (t_bitwd_back, t_end),
		})
		s.stop_all()


TESTS = {
	'restart-leak': restart_leak,
}

if __name__ == '__main__':
	sys.exit(main(TESTS))
