# web.py: browser tests of the web UI; `web.py TEST` builds the world (namespaces, bitw-wire, bitwd) and runs TEST.mjs in chromium.
#
# The world is the e2e two-site topology (tests/e2e/bitwtopo.py). Every bitwd listens on 127.0.0.1 inside site A's
# bitw namespace (site B's on another port, talking to its own bitw-wire over its unix socket), and node with
# playwright-core and Debian's chromium runs in that same namespace: nothing listens or browses in the root namespace.
# What the test script needs (addresses, passwords, tokens, namespaces) it gets as a JSON file.

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'e2e'))
from bitwtopo import (  # noqa: E402
	GW_A4, GW_B4, HOST_A4, HOST_B4, LAN_A4, LAN_B4, WAN, Fail, Skip, Topo, log, main,
)
from rest import API, Bitwd, start_wire  # noqa: E402

CHROMIUM = os.environ.get('BITW_CHROMIUM', '/usr/bin/chromium')
PORTS = {'A': 8080, 'B': 8081}
NODE_LIMIT = 420  # seconds for one TEST.mjs; meson's timeout for a web test (tests/web/meson.build) is above it


def node_bin():
	return shutil.which('node') or shutil.which('nodejs')


def check_tools():
	"""Skip (77) only when the browser stack is truly not installed; scripts/deps installs all of it."""
	if not os.access(CHROMIUM, os.X_OK):
		raise Skip(f'{CHROMIUM} missing (scripts/deps installs Debian\'s chromium)')
	if not node_bin():
		raise Skip('node missing (scripts/deps installs it)')
	if not os.path.isfile(os.path.join(HERE, 'node_modules', 'playwright-core', 'package.json')):
		raise Skip('playwright-core missing in tests/web/node_modules (scripts/deps runs npm ci there)')


def web_root():
	root = os.environ.get('BITW_WEB_ROOT') or os.path.join(os.environ.get('BITW_SOURCE_ROOT', os.path.join(HERE, '..', '..')), 'web')
	return os.path.abspath(root)


def artifacts_dir():
	d = os.environ.get('BITW_WEB_ARTIFACTS') or os.path.join(HERE, 'artifacts')
	os.makedirs(d, exist_ok=True)
	return d


def _black(side):
	"""The black port of the e2e site configuration: addresses, gateways, MTU."""
	me = WAN[side]
	return {'interface': 'a-blk' if side == 'A' else 'b-blk', 'mtu': 1500,
	        'addresses': [f'{me[4]}/{me["prefix4"]}', f'{me[6]}/{me["prefix6"]}'],
	        'gateway4': me['gw4'], 'gateway6': me['gw6']}


def base_policies(side):
	"""IPv4 only: bypass to the site's gateway, protect LAN to LAN through the other site."""
	lan, other_lan, gw = (LAN_A4, LAN_B4, GW_A4) if side == 'A' else (LAN_B4, LAN_A4, GW_B4)
	peer = WAN['B' if side == 'A' else 'A'][4]
	return [
		{'name': 'gw4', 'priority': 1, 'action': 'bypass', 'src': lan, 'dst': gw},
		{'name': 'lan4', 'priority': 3, 'action': 'protect', 'src': lan, 'dst': other_lan,
		 'mode': 'tunnel', 'peer': peer, 'mss_clamp': True},
	]


def start_site(t, side, root):
	"""bitw-wire with its interfaces only, bitwd serving the UI in site A's namespace; ports, options and
	the two base policies entered over REST."""
	start_wire(t, side)
	b = Bitwd(t, side, port=PORTS[side])
	b.netns = t.ns['wA']
	b.extra_args = ['--web-root', root]
	b.start()
	api = b.api
	r = api.raw('PUT', f'{API}/ports/red', {'interface': 'a-red' if side == 'A' else 'b-red'})
	if r.status_code not in (200, 201, 204, 503):
		raise Fail(f'{side}: PUT ports/red: HTTP {r.status_code}: {r.text[:300]}')
	api.call('PUT', f'{API}/ports/black', _black(side))
	api.call('PUT', f'{API}/options', {'default_action': 'discard', 'bridge_non_ip': True})
	for p in base_policies(side):
		api.call('POST', f'{API}/policies', p, ok=(201,))
	return b


def run(test, sides):
	check_tools()
	root = web_root()
	if not os.path.isfile(os.path.join(root, 'index.html')):
		raise Skip(f'no web UI in {root} yet')
	script = os.path.join(HERE, f'{test}.mjs')
	with Topo(f'web{test}') as t:
		if not t.bitw_wire or not os.access(t.bitw_wire, os.X_OK):
			raise Skip(f'bitw-wire not built ({t.bitw_wire})')
		d = {}
		try:
			for side in sides:
				d[side] = start_site(t, side, root)
			world = {
				'test': test,
				'chromium': CHROMIUM,
				'artifacts': artifacts_dir(),
				'tmp': t.dir,
				'ns': t.ns,
				'hosts': {'A4': HOST_A4, 'B4': HOST_B4},
				'wan': {s: WAN[s][4] for s in 'AB'},
				'sites': {s: {'url': b.url, 'user': 'admin', 'password': b.password, 'token': b.api.token}
				          for s, b in d.items()},
				'screenshot': os.environ.get('BITW_WEB_SCREENSHOT', ''),
			}
			path = os.path.join(t.dir, 'world.json')
			with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
				json.dump(world, f, indent=1)
			cmd = t.nsx('wA', [node_bin(), script, path])
			log(' '.join(cmd))
			try:
				# a bound for a hung browser, not a pace: steps wait up to lib.mjs's WAIT each on a loaded machine
				rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=NODE_LIMIT, cwd=HERE).returncode
			except subprocess.TimeoutExpired:
				raise Fail(f'{test}.mjs did not finish in {NODE_LIMIT} s')
			if rc != 0:
				for side, b in d.items():
					log(f'bitwd {side} log (tail):\n{b.proc.log()[-2000:]}')
				raise Fail(f'{test}.mjs exited {rc}')
			for side in sides:
				d[side].stop()
				t.stop_bitw(side)
		finally:
			for b in d.values():
				if b.api:
					b.api.close()


TESTS = {
	'login': lambda: run('login', 'A'),
	'policies': lambda: run('policies', 'A'),
	'traffic': lambda: run('traffic', 'AB'),
	'readonly': lambda: run('readonly', 'A'),
	'config': lambda: run('config', 'A'),
	'security': lambda: run('security', 'A'),
	'session': lambda: run('session', 'A'),
	'adminstate': lambda: run('adminstate', 'A'),
	'policyopts': lambda: run('policyopts', 'A'),
}

if __name__ == '__main__':
	sys.exit(main(TESTS))
