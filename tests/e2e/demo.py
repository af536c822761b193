# demo.py: the README's demo: two sites joined by bitw, configured over bitwd's REST API; traffic, proof, counters.

import argparse
import os
import shlex
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitwtopo import (  # noqa: E402
	HOST_A4, HOST_A6, HOST_B4, HOST_B6, WAN, Fail, Keys, Skip, Topo, frames_with,
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
		api = start_sites(t, keys, args)
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
		if api:
			say_api(t, api)
			say_web(api)
		if not args.once:
			say('running. Try it yourself, e.g.:')
			if api:
				print(f'    the web UI: {api["A"].url}/  (admin / {api["A"].password})')
			print(f'    ip netns exec {t.ns["hA"]} ping {HOST_B4}')
			print(f'    ip netns exec {t.ns["r"]} tcpdump -ni to-a')
			print(f'    {t.wirectl_bin} --socket {t.sock("A")} stats')
			say('press Enter (or Ctrl-C) to stop and clean up')
			try:
				sys.stdin.readline()
			except KeyboardInterrupt:
				pass
		for b in api.values() if api else ():
			b.stop()
		t.stop_bitw('A')
		t.stop_bitw('B')
		say('stopped; namespaces removed')


def free_port(prefer=8080):
	for port in (prefer, 0):
		with socket.socket() as s:
			try:
				s.bind(('127.0.0.1', port))
			except OSError:
				continue
			return s.getsockname()[1]
	raise Fail('no free TCP port on 127.0.0.1')


def start_sites(t, keys, args):
	"""Both bitw-wires with only their interfaces, a bitwd beside each, every other setting entered over REST.
	Site A's bitwd runs in the root namespace on loopback (reachable from this machine), site B's inside bitwB.
	Without a bitwd build the sites are configured from files as before."""
	import rest
	if not (find_bitwd_in(args.build)):
		say(f'no bitwd in {args.build} (configure with -Dmgmt=true): configuring the sites from files instead')
		t.start_both(keys)
		return None
	os.environ['BITWD'] = find_bitwd_in(args.build)
	say(f'starting bitw-wire on both sites with nothing but their interfaces (logs in {t.dir})')
	for side in 'AB':
		rest.start_wire(t, side)
	api = {'A': rest.Bitwd(t, 'A', netns=False, port=free_port()), 'B': rest.Bitwd(t, 'B')}
	# site A's bitwd listens on this machine's loopback: its web UI opens in the machine's browser
	api['A'].extra_args = ['--web-root', WEB_ROOT]
	for side in 'AB':
		b = api[side].start()
		where = 'root namespace' if side == 'A' else t.ns['wB']
		say(f'bitwd for site {side}: {b.url} ({where}), database {b.db}, wire socket {t.sock(side)}')
	for side in 'AB':
		cfg = rest.configure_site(api[side], keys)
		say(f'site {side} configured over REST: PUT /api/v1/ports/red, /ports/black, /options; '
		    f'POST /api/v1/policies x{len(cfg["policies"])}, POST /api/v1/sas x{len(cfg["sas"])} ({args.alg})')
	for side in 'AB':
		rest.wait_wire_has(t, side, 4, 4)
	pols = api['A'].api.items('/api/v1/policies')
	print('    site A policies (GET /api/v1/policies): ' +
	      ', '.join(f'{p["name"]} {p["action"]} {p.get("src", "any")} -> {p.get("dst", "any")}' for p in pols))
	return api


WEB_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'web')


def say_web(api):
	"""Where to point a browser, after checking the page is really served there."""
	import urllib.request
	a = api['A']
	opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never through a proxy
	with opener.open(a.url + '/', timeout=10) as r:
		page, csp = r.read().decode(), r.headers.get('Content-Security-Policy', '')
	if r.status != 200 or 'js/main.js' not in page or "script-src 'self'" not in csp:
		raise Fail(f'site A\'s bitwd does not serve the web UI from {WEB_ROOT} (status {r.status})')
	say(f'the web UI of site A: open {a.url}/ in a browser on this machine')
	print(f'    log in as user admin, password {a.password}')


def find_bitwd_in(build):
	path = os.path.join(build, 'mgmt', 'bitwd')
	return path if os.access(path, os.X_OK) else None


def say_api(t, api):
	a = api['A']
	base = f'{a.url}/api/v1'
	say(f'the REST API of site A: {base}  (plain HTTP on loopback; OpenAPI at {base}/openapi.json)')
	print(f'    user admin, password {a.password}  (generated for this demo, in {a.pwfile})')
	print(f'    a token for scripts, made by the demo: {a.api.token}')
	print(f'      curl -s -H {shlex.quote("Authorization: Bearer " + a.api.token)} {base}/policies')
	print('    or make one yourself: log in (session cookie + CSRF token), then POST /tokens:')
	login = shlex.quote('{"user":"admin","password":"' + a.password + '"}')
	getcsrf = shlex.quote('import json,sys; print(json.load(sys.stdin)["csrf"])')
	print(f'      csrf=$(curl -s -c /tmp/bitw.cookies -H "Content-Type: application/json" -d {login} {base}/login'
	      f' | python3 -c {getcsrf})')
	print(f'      curl -s -b /tmp/bitw.cookies -H "X-Bitw-CSRF: $csrf" -H "Content-Type: application/json"'
	      f' -d \'{{"name":"mine"}}\' {base}/tokens')
	ctl = os.path.join(os.path.dirname(os.path.dirname(a.bin)), 'mgmt', 'bitwctl')
	env = f'BITW_URL={a.url} BITW_TOKEN={a.api.token}'
	if os.access(ctl, os.X_OK):
		say(f'the same through the CLI: {env} {ctl} netstat')
		r = subprocess.run([ctl, 'netstat'], capture_output=True, text=True, timeout=30,
		                   env=dict(os.environ, BITW_URL=a.url, BITW_TOKEN=a.api.token))
		print('\n'.join('    ' + line for line in (r.stdout + r.stderr).rstrip().splitlines()))
	b = api['B']
	print(f'    site B\'s API is on loopback inside its namespace: ip netns exec {t.ns["wB"]} '
	      f'curl -s -H "Authorization: Bearer {b.api.token}" {b.url}/api/v1/policies')


def main():
	ap = argparse.ArgumentParser(description='bitw two-site demo')
	ap.add_argument('--build', default='build', help='meson build directory with bitw-wire and bitwd')
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
