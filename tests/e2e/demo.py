# demo.py: the README's demo: two sites in namespaces joined by bitw over a WAN, traffic, proof on the wire, counters.

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitwtopo import (  # noqa: E402
	HOST_A4, HOST_A6, HOST_B4, HOST_B6, SPI, WAN, Fail, Keys, Skip, Topo, frames_with,
)


def say(*a):
	print('==>', *a, flush=True)


def summarise_wan(pkts, marker):
	from scapy.layers.inet import IP, UDP
	from scapy.layers.inet6 import IPv6
	kinds = {}
	for p in pkts:
		ip = p[IP] if IP in p else (p[IPv6] if IPv6 in p else None)
		if ip is None:
			k = p.lastlayer().name if p.payload else 'non-IP'
		elif (ip.proto if ip.version == 4 else ip.nh) == 50:
			k = f'ESP  {ip.src} -> {ip.dst} SPI {int.from_bytes(bytes(ip.payload)[:4], "big"):#x}'
		elif UDP in p and 4500 in (p[UDP].sport, p[UDP].dport):
			k = f'ESP-in-UDP {ip.src} -> {ip.dst}'
		else:
			k = f'other IPv{ip.version} {ip.src} -> {ip.dst} ({ip.payload.name})'
		kinds[k] = kinds.get(k, 0) + 1
	for k, n in sorted(kinds.items(), key=lambda x: -x[1]):
		print(f'    {n:6d}  {k}')
	leak = frames_with(pkts, marker.encode())
	print(f'    plaintext marker "{marker}" seen on the WAN: {len(leak)} times')
	return not leak


def summarise_stats(t, side):
	st = t.stats(side)
	print(f'  bitw{side}:')
	for name, p in st.get('ports', {}).items():
		print(f'    port {name:5s} {p.get("interface", "?"):6s} rx {p.get("rx_packets", 0):7d} pkts'
		      f'  tx {p.get("tx_packets", 0):7d} pkts  tx_errors {p.get("tx_errors", 0)}')
	for p in st.get('policies', []):
		print(f'    policy {p.get("name", "?"):8s} {p.get("action", "?"):8s} out {p.get("out_packets", 0):7d}'
		      f'  in {p.get("in_packets", 0):7d}  drops {p.get("drops", 0)}')
	for sa in st.get('sas', []):
		print(f'    SA {int(sa.get("spi", 0)):#010x} {sa.get("direction", "?"):3s} {sa.get("packets", 0):7d} pkts'
		      f' {sa.get("bytes", 0):10d} bytes  auth_drops {sa.get("auth_drops", 0)}'
		      f'  replay_drops {sa.get("replay_drops", 0)}')
	drops = {k: v for k, v in st.get('drops', {}).items() if v}
	print(f'    drops: {drops or "none"}')


def run(args):
	keys = Keys(args.alg)
	marker = 'BITW-DEMO-SECRET'
	with Topo('demo', mode='bitw', build=args.build) as t:
		if not (t.bitw_wire and os.access(t.bitw_wire, os.X_OK)):
			raise Skip(f'no bitw-wire at {t.bitw_wire}: build first')
		say('two sites in network namespaces:')
		print(f'    hostA {HOST_A4} {HOST_A6} -- bitwA [{WAN["A"][4]}] -- router -- '
		      f'[{WAN["B"][4]}] bitwB -- hostB {HOST_B4} {HOST_B6}')
		print(f'    namespaces: {", ".join(t.ns.values())}')
		say(f'starting bitw-wire on both sites ({args.alg}, manual keys, configs in {t.dir})')
		t.start_both(keys)
		cap = t.capture('r', 'to-a', 'wan')
		for src, dst in (('hA', HOST_B4), ('hA', HOST_B6), ('hB', HOST_A4)):
			r = t.ping(src, dst, count=3, marker=marker)
			say(f'ping {src} -> {dst}: {r.received}/3 replies')
			if r.received == 0:
				raise Fail(f'ping {src} -> {dst} failed:\n{r.stdout}{r.stderr}')
		n = 10 << 20
		sent, got = t.tcp_transfer('hA', HOST_B4, 'hB', n, marker)
		ok = got and got.get('sha256') == sent.get('sha256')
		say(f'TCP transfer of {n >> 20} MB hostA -> hostB: '
		    f'{"sha256 matches" if ok else "FAILED"} ({got and got.get("seconds")} s)')
		if not ok:
			raise Fail(f'transfer failed: sent {sent} got {got}')
		pkts = cap.stop()
		say(f'what the WAN link carried ({len(pkts)} frames captured on the router, toward bitwA):')
		clean = summarise_wan(pkts, marker)
		if not clean:
			raise Fail('the plaintext marker was seen on the WAN')
		say('counters (bitw-wirectl stats):')
		summarise_stats(t, 'A')
		summarise_stats(t, 'B')
		if not args.once:
			say('running. Try it yourself, e.g.:')
			print(f'    ip netns exec {t.ns["hA"]} ping {HOST_B4}')
			print(f'    ip netns exec {t.ns["r"]} tcpdump -ni to-a')
			print(f'    {t.wirectl_bin} --socket {t.sock("A")} stats')
			say('press Enter (or Ctrl-C) to stop and clean up')
			try:
				sys.stdin.readline()
			except KeyboardInterrupt:
				pass
		t.stop_bitw('A')
		t.stop_bitw('B')
		say('stopped; namespaces removed')


def main():
	ap = argparse.ArgumentParser(description='bitw two-site demo')
	ap.add_argument('--build', default='build', help='meson build directory with bitw-wire')
	ap.add_argument('--once', action='store_true', help='do not wait for Enter; exit when done')
	ap.add_argument('--alg', default='aes-gcm-256')
	args = ap.parse_args()
	args.build = os.path.abspath(args.build)
	if os.geteuid() != 0:
		print('the demo needs root (network namespaces)', file=sys.stderr)
		return 1
	try:
		run(args)
	except Skip as e:
		print(f'demo: {e}', file=sys.stderr)
		return 1
	except Fail as e:
		print(f'demo failed: {e}', file=sys.stderr)
		return 1
	except KeyboardInterrupt:
		print('interrupted; cleaned up', file=sys.stderr)
		return 130
	return 0


if __name__ == '__main__':
	sys.exit(main())
