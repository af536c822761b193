# rest.py: end-to-end through bitwd: the two-site topology configured only over REST; `rest.py TEST` runs one.
#
# Each bitw-wire starts with a minimal configuration (its two interfaces and nothing else); a bitwd beside it
# (own database, plain HTTP on 127.0.0.1 inside the bitw namespace) is the only way anything else gets there.

import concurrent.futures
import ctypes
import json
import os
import re
import secrets
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitwtopo import (  # noqa: E402
	ALGS, HOST_A4, HOST_A6, HOST_B4, HOST_B6, NS_ROOT, SPI, Fail, Keys, Skip, Topo, frames_with, log, main, policy_stats,
	sa_stats, site_config,
)
from e2e import (  # noqa: E402
	ah_frames, as_ah, check_wan_protected, cleartext_between_lans, esp_frames, expect, new_marker,
	pings_both_ways,
)

API = '/api/v1'
BITWD_PORT = 8080
IFACES = {'A': ('a-red', 'a-blk'), 'B': ('b-red', 'b-blk')}
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def find_bitwd():
	path = os.environ.get('BITWD')
	if not path and os.environ.get('BITW_BUILD_ROOT'):
		path = os.path.join(os.environ['BITW_BUILD_ROOT'], 'mgmt', 'bitwd')
	return path


def _enter_netns(name):
	"""Move the calling thread (only it) into a network namespace: its sockets live there."""
	fd = os.open(os.path.join(NS_ROOT, name), os.O_RDONLY)
	try:
		if _libc.setns(fd, CLONE_NEWNET) != 0:
			e = ctypes.get_errno()
			raise OSError(e, f'setns {name}: {os.strerror(e)}')
	finally:
		os.close(fd)


class Problem(Fail):
	"""bitwd answered with a status the caller did not expect."""


class Api:
	"""A REST client of one bitwd. With `netns`, every request runs on a thread inside that namespace,
	so 127.0.0.1 is that namespace's loopback (the test itself stays in the root namespace)."""

	def __init__(self, base, netns=None):
		import requests
		self.base = base
		self.s = requests.Session()
		self.s.trust_env = False  # no proxy from the environment for a loopback address
		self.token = None
		self.ex = concurrent.futures.ThreadPoolExecutor(
			1, initializer=_enter_netns if netns else None, initargs=(netns,) if netns else ())

	def close(self):
		self.s.close()
		self.ex.shutdown(wait=False)

	def raw(self, method, path, body=None, headers=None, timeout=15, data=None):
		h = dict(headers or {})
		if self.token and 'Authorization' not in h:
			h['Authorization'] = f'Bearer {self.token}'
		kw = {'headers': h, 'timeout': timeout}
		if body is not None:
			kw['json'] = body
		elif data is not None:
			kw['data'] = data
		return self.ex.submit(self.s.request, method, self.base + path, **kw).result()

	def call(self, method, path, body=None, ok=(200, 201, 204), what=None):
		"""The JSON answer (None when empty) of a request that must get one of the `ok` statuses."""
		r = self.raw(method, path, body)
		if r.status_code not in ok:
			raise Problem(f'{what or method + " " + path}: HTTP {r.status_code} (wanted {ok}): {r.text[:600]}')
		return r.json() if r.content else None

	def get(self, path):
		return self.call('GET', path)

	def items(self, path):
		"""Every item of a paginated list."""
		out, offset = [], 0
		while True:
			sep = '&' if '?' in path else '?'
			page = self.get(f'{path}{sep}offset={offset}&limit=1000')
			out += page['items']
			offset += len(page['items'])
			if not page['items'] or offset >= page['total']:
				return out

	def login(self, user, password):
		"""Password login (session cookie + CSRF header), then a bearer token for everything after."""
		r = self.raw('POST', f'{API}/login', {'user': user, 'password': password})
		if r.status_code != 200:
			raise Problem(f'login as {user}: HTTP {r.status_code}: {r.text[:300]}')
		# The cookie is Secure: requests would not send it back over plain HTTP, so it is passed by hand.
		m = re.search(r'bitw_session=([^;]+)', r.headers.get('Set-Cookie', ''))
		if not m:
			raise Problem(f'login set no bitw_session cookie: {r.headers}')
		csrf = (r.json() or {}).get('csrf', '')
		h = {'Cookie': f'bitw_session={m.group(1)}', 'X-Bitw-CSRF': csrf}
		r = self.raw('POST', f'{API}/tokens', {'name': f'e2e-{secrets.token_hex(4)}'}, headers=h)
		if r.status_code != 201 or not r.json().get('token'):
			raise Problem(f'creating a token: HTTP {r.status_code}: {r.text[:300]}')
		self.token = r.json()['token']


class Bitwd:
	"""bitwd beside one site's bitw-wire: its database in the topology's directory, plain HTTP on loopback."""

	def __init__(self, t, side, netns=True, port=BITWD_PORT, db=None):
		self.t, self.side, self.port = t, side, port
		self.bin = find_bitwd()
		if not self.bin or not os.access(self.bin, os.X_OK):
			raise Skip(f'bitwd not built ({self.bin}): configure with -Dmgmt=true')
		self.netns = t.ns['w' + side] if netns else None
		self.db = db or os.path.join(t.dir, f'bitwd{side}', 'bitw.db')
		self.password = secrets.token_urlsafe(18)
		self.pwfile = os.path.join(t.dir, f'bitwd{side}.password')
		self.proc = None
		self.api = None
		self.starts = 0
		self.extra_args = []  # e.g. --web-root for the browser tests
		with open(os.open(self.pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
			f.write(self.password)

	@property
	def url(self):
		return f'http://127.0.0.1:{self.port}'

	def start(self, timeout=20):
		os.makedirs(os.path.dirname(self.db), mode=0o700, exist_ok=True)
		cmd = [self.bin, '--db', self.db, '--http', '--listen', '127.0.0.1', '--port', str(self.port),
		       '--wire-socket', self.t.sock(self.side), '--admin-password-file', self.pwfile] + self.extra_args
		if self.netns:
			cmd = ['ip', 'netns', 'exec', self.netns] + cmd
		self.starts += 1
		self.proc = self.t.spawn(cmd, f'bitwd{self.side}-{self.starts}')
		if self.api:
			self.api.close()
		self.api = Api(self.url, self.netns)
		end = time.time() + timeout
		while time.time() < end:
			if self.proc.p.poll() is not None:
				raise Fail(f'bitwd {self.side} exited {self.proc.p.returncode}:\n{self.proc.log()[-3000:]}')
			try:
				if self.api.raw('GET', f'{API}/health', timeout=2).status_code == 200:
					break
			except Exception:
				pass
			time.sleep(0.1)
		else:
			raise Fail(f'bitwd {self.side} did not answer /health in {timeout}s:\n{self.proc.log()[-3000:]}')
		self.api.login('admin', self.password)
		return self

	def kill(self):
		self.proc.stop(signal.SIGKILL)

	def stop(self):
		"""SIGTERM: bitwd must exit 0 (sanitizer reports would make it fail)."""
		rc = self.proc.stop(signal.SIGTERM, timeout=15)
		if rc != 0:
			raise Fail(f'bitwd {self.side} exited {rc} on SIGTERM:\n{self.proc.log()[-3000:]}')


def minimal_config(side):
	red, blk = IFACES[side]
	return {'ports': {'red': {'interface': red}, 'black': {'interface': blk}}}


def start_wire(t, side, n=1):
	"""bitw-wire with nothing but its interfaces (a fresh log per start, so restarts keep the old ones)."""
	path = t.write_config(side, minimal_config(side), f'minimal{side}.json')
	cmd = t.nsx('w' + side, [t.bitw_wire, '--config', path, '--ctl', t.sock(side), '--log-level', 'info'])
	p = t.spawn(cmd, f'bitw{side}-{n}')
	if not p.wait_for('bitw-wire: ready', 20):
		raise Fail(f'bitw-wire {side} not ready (exit {p.p.poll()}):\n{p.log()[-3000:]}')
	t.bitw[side] = p
	return p


def wire_config(t, side):
	return json.loads(t.wirectl(side, 'config').stdout)


def configure_site(b, keys, override=None):
	"""Everything of site_config() that is not an interface name, entered over REST."""
	cfg = site_config(b.side, keys, override=override)
	api = b.api
	# The first port alone may not make a configuration the wire accepts (the other one has no interface
	# yet): stored but not applied is a fine answer then; the second must be applied.
	r = api.raw('PUT', f'{API}/ports/red', cfg['ports']['red'])
	log(f'{b.side}: PUT ports/red -> {r.status_code} {r.text[:200] if r.status_code >= 300 else ""}')
	if r.status_code not in (200, 201, 204, 503):
		raise Problem(f'PUT ports/red: HTTP {r.status_code}: {r.text[:400]}')
	api.call('PUT', f'{API}/ports/black', cfg['ports']['black'])
	api.call('PUT', f'{API}/options', cfg['options'])
	for p in cfg['policies']:
		got = api.call('POST', f'{API}/policies', p, ok=(201,))
		if got.get('name') != p['name'] or not isinstance(got.get('id'), int):
			raise Fail(f'POST policies answered {got} for {p["name"]}')
	for sa in cfg['sas']:
		got = api.call('POST', f'{API}/sas', sa, ok=(201,))
		if 'enc_key' in got or 'integ_key' in got:
			raise Fail(f'POST sas answered with a key: {list(got)}')
	return cfg


def wait_wire_has(t, side, npol, nsa, timeout=10):
	"""Until bitw-wire runs npol policies and nsa SAs; seconds it took."""
	start = time.time()
	last = None
	while time.time() - start < timeout:
		r = t.wirectl(side, 'config', check=False)
		if r.returncode == 0:
			last = json.loads(r.stdout)
			if len(last.get('policies', [])) == npol and len(last.get('sas', [])) == nsa:
				return time.time() - start
		time.sleep(0.1)
	raise Fail(f'bitw-wire {side} did not get {npol} policies and {nsa} SAs within {timeout}s: {last}')


class Sites:
	"""The topology, both bitw-wires minimal, a bitwd per site, configured over REST."""

	def __init__(self, name, alg='aes-gcm-256', override=None):
		self.name = name
		self.keys = Keys(alg)
		self.override = override

	def __enter__(self):
		self.t = Topo(self.name).__enter__()
		try:
			t = self.t
			if not t.bitw_wire or not os.access(t.bitw_wire, os.X_OK):
				raise Skip(f'bitw-wire not built ({t.bitw_wire})')
			self.d = {}
			for side in 'AB':
				start_wire(t, side)
				self.d[side] = Bitwd(t, side).start()
			self.cfg = {side: configure_site(self.d[side], self.keys, self.override) for side in 'AB'}
			for side in 'AB':
				wait_wire_has(t, side, 4, 4)
		except BaseException:
			self.__exit__(*sys.exc_info())
			raise
		return self

	def __exit__(self, *exc):
		for b in getattr(self, 'd', {}).values():
			if b.api:
				b.api.close()
		return self.t.__exit__(*exc)

	def stop_all(self):
		for side in 'AB':
			self.d[side].stop()
			self.t.stop_bitw(side)


class Flow:
	"""A ping that runs in the background (e.g. across a change) and must lose nothing."""

	def __init__(self, t, node, dst, count, interval=0.05, name='flow'):
		cmd = ['ping', '-n', '-c', str(count), '-i', str(interval), '-W', '1', dst]
		if ':' in dst:
			cmd.insert(1, '-6')
		self.dst = dst
		self.p = t.spawn(t.nsx(node, cmd), name)

	def result(self, timeout=120):
		self.p.p.wait(timeout)
		m = re.search(r'(\d+) packets transmitted, (\d+) received', self.p.log())
		if not m:
			raise Fail(f'no ping summary: {self.p.log()[-500:]}')
		return int(m.group(1)), int(m.group(2))

	def expect_lossless(self, what):
		sent, got = self.result()
		expect(sent > 0 and got == sent, f'{what}: the ping flow to {self.dst} lost nothing ({got}/{sent})')


# --- the tests ---------------------------------------------------------------

def rest_configure():
	"""Ports, options, policies and manual SAs entered over REST give protected traffic, proven on the WAN."""
	marker = new_marker()
	with Sites('restconf') as s:
		t = s.t
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		pkts = cap.stop()
		check_wan_protected(t, s.keys, pkts, marker, 4, 'none')
		w = wire_config(t, 'A')
		blk = w['ports']['black']
		expect(blk.get('gateway4') == s.cfg['A']['ports']['black']['gateway4'] and
		       set(blk.get('addresses', [])) == set(s.cfg['A']['ports']['black']['addresses']),
		       f'the black port set over REST is the one bitw-wire runs ({blk})')
		api = s.d['A'].api
		sas = api.items(f'{API}/sas')
		expect(len(sas) == 4, f'GET /sas lists the four manual SAs ({len(sas)})')
		text = api.raw('GET', f'{API}/sas').text + api.raw('GET', f'{API}/config').text
		leaked = [k for k in (s.keys.enc.values()) if k.hex() in text.lower()]
		expect('enc_key' not in text and not leaked, 'no key comes back from GET /sas or GET /config')
		sad = api.raw('GET', f'{API}/sad')
		expect(sad.status_code == 200 and 'enc_key' not in sad.text, f'the live SAD is served without keys '
		       f'(HTTP {sad.status_code})')
		s.stop_all()


def rest_policy_change():
	"""A discard policy added over REST stops one flow at once; an unrelated protected flow loses nothing;
	deleting it over REST lets the first flow through again."""
	marker = new_marker()
	with Sites('restpol') as s:
		t = s.t
		pings_both_ways(t, marker)
		flow = Flow(t, 'hA', HOST_B6, count=120, name='flow6')
		time.sleep(1.5)
		pol = {'name': 'no-icmp-b', 'priority': 2, 'action': 'discard', 'protocol': 'icmp',
		       'src': HOST_A4, 'dst': HOST_B4}
		made = s.d['A'].api.call('POST', f'{API}/policies', pol, ok=(201,))
		r = t.ping('hA', HOST_B4, count=3, marker=marker)
		expect(r.received == 0, f'the discard policy added over REST takes effect ({r.received}/3 replies)')
		st = policy_stats(t.stats('A'), 'no-icmp-b')
		expect(st is not None and st.get('action') == 'discard' and st.get('drops', 0) >= 3,
		       f'bitw-wire runs the new policy and it caught the pings ({st})')
		s.d['A'].api.call('DELETE', f'{API}/policies/{made["id"]}', ok=(200, 204))
		r = t.ping('hA', HOST_B4, count=3, marker=marker)
		expect(r.received == 3, f'deleting it over REST restores the flow ({r.received}/3 replies)')
		flow.expect_lossless('across both policy changes')
		api = s.d['A'].api
		gw4 = next(p for p in api.items(f'{API}/policies') if p['name'] == 'gw4')
		bad = {k: v for k, v in gw4.items() if k != 'id'}
		bad['dst'] = '198.18.1.300'
		r = api.raw('PUT', f'{API}/policies/{gw4["id"]}', bad)
		expect(r.status_code == 422 and r.json().get('field', '').endswith('dst'),
		       f'an invalid selector is refused naming the field (HTTP {r.status_code} {r.text[:200]})')
		expect(len(wire_config(t, 'A')['policies']) == 4, 'the refused change never reached the wire')
		s.stop_all()


def rest_wire_restart():
	"""bitw-wire killed and started again with its minimal configuration: bitwd pushes the whole state again
	within seconds and traffic resumes."""
	marker = new_marker()
	with Sites('restwire') as s:
		t = s.t
		pings_both_ways(t, marker)
		# Both sites restart: manual SAs start again at sequence 1, which only a fresh peer window accepts.
		for side in 'AB':
			t.bitw.pop(side).stop(signal.SIGKILL)
		r = t.ping('hA', HOST_B4, count=2, marker=marker, wait=1)
		expect(r.received == 0, f'nothing passes while bitw-wire is down ({r.received}/2)')
		for side in 'AB':
			start_wire(t, side, 2)
		took = max(wait_wire_has(t, side, 4, 4, timeout=15) for side in 'AB')
		expect(took < 10, f'bitwd restored policies and SAs on the restarted wires within seconds ({took:.1f} s)')
		pings_both_ways(t, marker)
		for side in 'AB':
			h = s.d[side].api.get(f'{API}/health')
			log(f'health {side}: {h}')
		s.stop_all()


def rest_bitwd_kill():
	"""bitwd killed: the wire keeps forwarding with its SAs; bitwd started again resynchronises without
	disturbing the flow."""
	marker = new_marker()
	with Sites('restkill') as s:
		t = s.t
		pings_both_ways(t, marker)
		flow = Flow(t, 'hA', HOST_B4, count=150, name='flow4')
		time.sleep(1)
		before = sa_stats(t.stats('A'), SPI[('A', 4)], 'out')['packets']
		for side in 'AB':
			s.d[side].kill()
		time.sleep(2)
		r = t.ping('hB', HOST_A6, count=3, marker=marker)
		expect(r.received == 3, f'with both bitwd dead, protected traffic still flows ({r.received}/3)')
		for side in 'AB':
			s.d[side].start()
		pol = s.d['A'].api.items(f'{API}/policies')
		expect(sorted(p['name'] for p in pol) == ['gw4', 'gw6', 'lan4', 'lan6'],
		       f'the restarted bitwd has the stored policies ({[p["name"] for p in pol]})')
		after = sa_stats(t.stats('A'), SPI[('A', 4)], 'out')['packets']
		expect(after > before, f'the resynchronisation kept the running SA and its counters ({before} -> {after} '
		       'packets)')
		flow.expect_lossless('across bitwd being killed and restarted')
		pings_both_ways(t, marker)
		s.stop_all()


def add_keys(doc, keys):
	"""An export has no keys; give each SA its keys again by SPI."""
	for sa in doc.get('sas', []):
		spi = int(sa['spi'], 0) if isinstance(sa['spi'], str) else sa['spi']
		sa['enc_key'] = keys.enc[spi].hex()
		if keys.integ[spi]:
			sa['integ_key'] = keys.integ[spi].hex()
	return doc


def wipe(api):
	"""DELETE every SA and policy over REST."""
	api.call('DELETE', f'{API}/sas', ok=(200, 204))
	for p in api.items(f'{API}/policies'):
		api.call('DELETE', f'{API}/policies/{p["id"]}', ok=(200, 204))


def rest_export_import():
	"""Export, wipe, import: the same export, and traffic passes again."""
	marker = new_marker()
	with Sites('restexp') as s:
		t = s.t
		pings_both_ways(t, marker)
		exported = {side: s.d[side].api.get(f'{API}/config') for side in 'AB'}
		text = json.dumps(exported)
		expect('enc_key' not in text, 'the export carries no keys')
		expect(len(exported['A'].get('policies', [])) == 4 and len(exported['A'].get('sas', [])) == 4,
		       'the export has the four policies and four SAs')
		for side in 'AB':
			wipe(s.d[side].api)
			wait_wire_has(t, side, 0, 0)
		r = t.ping('hA', HOST_B4, count=2, marker=marker, wait=1)
		expect(r.received == 0, f'after the wipe nothing passes ({r.received}/2)')
		api = s.d['A'].api
		doc = json.loads(json.dumps(exported['A']))
		doc['sas'][0].pop('enc_key', None)
		r = api.raw('PUT', f'{API}/config', doc)
		field = r.json().get('field', '') if r.status_code == 422 else ''
		expect(field.endswith('sas[0].enc_key'), f'an import with an SA missing its key is refused naming it '
		       f'(HTTP {r.status_code} {r.text[:200]})')
		expect(api.items(f'{API}/policies') == [], 'the refused import stored nothing')
		for side in 'AB':
			s.d[side].api.call('PUT', f'{API}/config', add_keys(json.loads(json.dumps(exported[side])), s.keys))
		for side in 'AB':
			again = s.d[side].api.get(f'{API}/config')
			expect(again == exported[side], f'{side}: export after import is the same document'
			       + ('' if again == exported[side] else f'\nbefore {exported[side]}\nafter  {again}'))
			wait_wire_has(t, side, 4, 4)
		pings_both_ways(t, marker)
		s.stop_all()


def set_admin_state(s, state):
	"""PUT /admin-state on both sites: bypass on one side alone would meet a protect policy on the other."""
	for side in 'AB':
		got = s.d[side].api.call('PUT', f'{API}/admin-state', {'state': state})
		expect(got == {'state': state}, f'{side}: PUT /admin-state {state} answers it ({got})')
		expect(s.t.stats(side).get('admin_state') == state, f'{side}: bitw-wire runs admin state {state}')
		h = s.d[side].api.get(f'{API}/health')
		expect(h.get('admin_state') == state, f'{side}: /health shows admin state {state} ({h})')


def rest_admin_state():
	"""The box's administrative state over REST: secure encrypts; bypass all passes the pings in clear on the WAN
	with a warning in both logs and an audit entry; drop all passes nothing; secure again encrypts again."""
	marker = new_marker()
	with Sites('restadm') as s:
		t, api = s.t, s.d['A'].api
		r = api.raw('PUT', f'{API}/admin-state', {'state': 'off'})
		expect(r.status_code == 422 and r.json().get('field') == 'state',
		       f'an unknown state is refused naming the field (HTTP {r.status_code} {r.text[:200]})')
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		check_wan_protected(t, s.keys, cap.stop(), marker, 4, 'none')

		set_admin_state(s, 'bypass')
		cap = t.capture('r', 'to-a', 'wan')
		t.ping('hA', HOST_B4, marker=marker, check=True)
		t.ping('hB', HOST_A6, marker=marker, check=True)
		pkts = cap.stop()
		clear = frames_with(pkts, marker.encode())
		expect(len(clear) >= 12 and not esp_frames(pkts), f'in bypass the WAN sees the pings in clear '
		       f'({len(clear)} frames with the marker, {len(esp_frames(pkts))} ESP)')
		for side in 'AB':
			expect('ADMINISTRATIVE STATE BYPASS' in t.bitw[side].log(), f'{side}: bitw-wire warns of bypass all')
			expect('ADMINISTRATIVE STATE BYPASS' in s.d[side].proc.log(), f'{side}: bitwd warns of bypass all')
		audit = api.get(f'{API}/audit?action=admin_state.update')['items']
		expect(any(a.get('object') == 'admin-state' and (a.get('detail') or {}).get('state') == 'bypass' and
		           (a.get('detail') or {}).get('previous') == 'secure' for a in audit),
		       f'the change to bypass is in the audit log ({audit})')

		set_admin_state(s, 'drop')
		before = t.stats('A')['drops'].get('XE_ADMIN_DROP', 0)
		for dst in (HOST_B4, HOST_B6):
			r = t.ping('hA', dst, count=2, marker=marker, wait=1)
			expect(r.received == 0, f'in drop nothing passes to {dst} ({r.received}/2)')
		after = t.stats('A')['drops'].get('XE_ADMIN_DROP', 0)
		expect(after >= before + 4, f'bitw-wire counts them as XE_ADMIN_DROP ({before} -> {after})')

		set_admin_state(s, 'secure')
		expect(api.get(f'{API}/options').get('admin_state') == 'secure', 'the options show the state too')
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		check_wan_protected(t, s.keys, cap.stop(), marker, 4, 'none')
		s.stop_all()


def as_ah_policies(cfg):
	"""site_config override: AH SAs (e2e.as_ah) on protect policies whose sa_type says ah, as bitwd requires."""
	as_ah(cfg)
	for p in cfg['policies']:
		if p['action'] == 'protect':
			p['sa_type'] = 'ah'


def rest_ah():
	"""A manual AH SA pair per family entered over REST (policy sa_type ah, SA protocol ah, no enc) carries the pings
	between the sites: only AH on the WAN, every AH frame verifies with scapy's AH, bitwd shows the SAs as AH."""
	from scapy.layers.inet import IP
	from scapy.layers.inet6 import IPv6
	from scapy.layers.ipsec import AH, SecurityAssociation
	alg = 'null+hmac-sha256-128'
	marker = new_marker()
	with Sites('restah', alg, as_ah_policies) as s:
		t = s.t
		api = s.d['A'].api
		pols = {p['name']: p for p in api.items(f'{API}/policies')}
		expect(pols['lan4'].get('sa_type') == 'ah' and pols['lan6'].get('sa_type') == 'ah',
		       f'bitwd stores the protect policies as sa_type ah ({pols["lan4"].get("sa_type")})')
		sas = api.items(f'{API}/sas')
		expect(len(sas) == 4 and all(x.get('protocol') == 'ah' and x['enc'] == 'null' for x in sas),
		       f'GET /sas lists four AH SAs with enc null ({[(x.get("protocol"), x["enc"]) for x in sas]})')
		w = wire_config(t, 'B')
		expect(all(x.get('protocol') == 'ah' for x in w.get('sas', [])) and
		       all(p.get('sa_type') == 'ah' for p in w['policies'] if p['action'] == 'protect'),
		       'bitw-wire B runs what bitwd B pushed: AH SAs on sa_type ah policies')
		cap = t.capture('r', 'to-a', 'wan')
		pings_both_ways(t, marker)
		pkts = cap.stop()
		leaks = cleartext_between_lans(pkts)
		expect(not leaks, f'no host-to-host packet outside AH on the WAN (saw {[p.summary() for p in leaks[:3]]})')
		expect(not esp_frames(pkts), 'no ESP on the WAN: the SAs are AH')
		ah = ah_frames(pkts)
		expect(len(ah) >= 12, f'AH frames (IP protocol 51) carried the pings ({len(ah)} seen)')
		expect(set(SPI.values()) <= {spi for _, spi, _ in ah}, 'all four AH SAs were used')
		auth = ALGS[alg][3]
		good = 0
		for _, spi, ip in ah:
			pkt = ip.__class__(bytes(ip))
			sa = SecurityAssociation(AH, spi=spi, auth_algo=auth, auth_key=s.keys.integ[spi],
			                         tunnel_header=ip.__class__(src=pkt.src, dst=pkt.dst))
			try:
				inner = bytes(sa.decrypt(pkt))
			except Exception as e:  # noqa: BLE001 - scapy raises IPSecIntegrityError and friends
				raise Fail(f'scapy cannot verify an AH frame of SA {spi:#x}: {e!r}')
			inner = IP(inner) if pkt[AH].nh == 4 else IPv6(inner)
			good += marker.encode() in bytes(inner)
		expect(good == len(ah), f'all {len(ah)} AH frames verify (scapy AH, {auth}) to the marked pings')
		s.stop_all()


TESTS = {
	'rest-configure': rest_configure,
	'rest-policy-change': rest_policy_change,
	'rest-wire-restart': rest_wire_restart,
	'rest-bitwd-kill': rest_bitwd_kill,
	'rest-export-import': rest_export_import,
	'rest-admin-state': rest_admin_state,
	'rest-ah': rest_ah,
}

if __name__ == '__main__':
	sys.exit(main(TESTS))
