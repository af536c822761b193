# test_bitwctl.py: the CLI against a real bitwd: policies, SAs, netstat, config round trip, events, users, errors, TLS.
#
# Runs bitwd on a temporary database (--http on 127.0.0.1, no bitw-wire, so every write is "stored, not
# applied": exit 3), then drives bitwctl the way a script would. Ends with bitwd on HTTPS and its own certificate.
# Usage: test_bitwctl.py BITWD BITWCTL; exit 0 pass, 1 fail, 77 skip. TAP on stdout.

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

failures = 0
checks = 0
UNAPPLIED = 3   # bitwctl's exit code for "stored by bitwd; bitw-wire applies it when it is back"
KEY_OUT = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff01020304'
KEY_IN = 'ffeeddccbbaa99887766554433221100ffeeddccbbaa9988776655443322110004030201'


def check(cond, what):
	global failures, checks
	checks += 1
	print(('ok' if cond else 'not ok'), checks, '-', what.replace('\n', ' | '), flush=True)
	if not cond:
		failures += 1
	return cond


def free_port():
	with socket.socket() as s:
		s.bind(('127.0.0.1', 0))
		return s.getsockname()[1]


def write_file(path, text, mode=0o600):
	with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), 'w') as f:
		f.write(text)


class Daemon:
	def __init__(self, binary, workdir):
		self.bin, self.dir = binary, workdir
		self.db = os.path.join(workdir, 'bitw.db')
		self.logpath = os.path.join(workdir, 'bitwd.log')
		self.p = None
		self.tls = False

	@property
	def url(self):
		return f'{"https" if self.tls else "http"}://127.0.0.1:{self.port}'

	def start(self, admin_pw_file, tls=False):
		self.tls = tls
		self.port = free_port()
		argv = [self.bin, '--db', self.db, '--listen', '127.0.0.1', '--port', str(self.port),
		        '--admin-password-file', admin_pw_file, '--wire-socket', os.path.join(self.dir, 'no-wire.sock')]
		if not tls:
			argv.append('--http')
		self.logf = open(self.logpath, 'ab')
		self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT)
		end = time.time() + 30
		while time.time() < end:
			if self.p.poll() is not None:
				raise RuntimeError(f'bitwd exited {self.p.returncode}: {self.log()[-2000:]}')
			try:
				with socket.create_connection(('127.0.0.1', self.port), timeout=1):
					return
			except OSError:
				time.sleep(0.1)
		raise RuntimeError('bitwd did not listen')

	def stop(self):
		if self.p and self.p.poll() is None:
			self.p.terminate()
			try:
				self.p.wait(10)
			except subprocess.TimeoutExpired:
				self.p.kill()
				self.p.wait()
		if self.p:
			self.logf.close()
		self.p = None

	def log(self):
		with open(self.logpath, 'rb') as f:
			return f.read().decode(errors='replace')


class Ctl:
	"""Runs bitwctl with a fixed connection; returns (exit code, stdout, stderr)."""

	def __init__(self, binary, daemon, workdir):
		self.bin, self.d, self.dir = binary, daemon, workdir
		self.env = {k: v for k, v in os.environ.items()
		            if not k.startswith('BITW_') and 'proxy' not in k.lower()}
		self.seen = []   # every output, to prove no secret is ever printed

	def run(self, *args, conn=None, timeout=30):
		conn = ['--url', self.d.url] + (conn if conn is not None else ['--token-file', self.token_file])
		p = subprocess.run([self.bin] + conn + list(args), capture_output=True, timeout=timeout, env=self.env,
		                   stdin=subprocess.DEVNULL)
		out, err = p.stdout.decode(errors='replace'), p.stderr.decode(errors='replace')
		self.seen.append(out + err)
		if 'Sanitizer' in err or 'runtime error' in err:
			check(False, f'bitwctl {" ".join(args)} ran sanitizer-clean: {err[-1500:]}')
		return p.returncode, out, err

	def json(self, *args):
		rc, out, err = self.run('--json', *args)
		try:
			return rc, json.loads(out), err
		except ValueError:
			return rc, None, err


def stored(res, what):
	"""A write without bitw-wire: stored, not applied (exit 3, the server's warning on stderr)."""
	rc, out, err = res
	return check(rc == UNAPPLIED and 'NOT_APPLIED' in err,
	             f'{what}: exit 3, stored not applied (rc={rc} {err.strip()[:300]})')


def refused(res, field, code, what):
	"""The server's problem as it said it: exit 1, 'error: ... (field: F, code: C)' on stderr."""
	rc, out, err = res
	want = f'(field: {field}, code: {code})' if field else f'code: {code})'
	return check(rc == 1 and err.startswith('error: ') and want in err and out == '',
	             f'{what}: exit 1 with "{want}" (rc={rc} err={err.strip()[:300]} out={out[:100]})')


def test_token(ctl, admin_pw_file):
	admin = ['--user', 'admin', '--password-file', admin_pw_file]
	rc, out, err = ctl.run('token', 'create', 'script', conn=admin)
	tok = out.strip()
	check(rc == 0 and tok and '\n' not in tok and 'shown only this once' in err,
	      f'token create prints just the token on stdout (rc={rc} err={err.strip()[:200]})')
	ctl.token_file = os.path.join(ctl.dir, 'token')
	write_file(ctl.token_file, tok + '\n')
	rc, out, err = ctl.run('whoami')
	check(rc == 0 and out.strip() == 'admin (admin) via token', f'whoami with the token ({out.strip()} {err.strip()})')
	rc, me, _ = ctl.json('whoami')
	check(rc == 0 and me and me.get('user') == 'admin' and me.get('role') == 'admin', f'--json whoami ({me})')
	return tok


def test_ports(ctl):
	stored(ctl.run('port', 'set', 'black', '--interface', 'ctl-blk', '--address', '192.0.2.10/24', '--gateway4',
	               '192.0.2.1'), 'port set black')
	stored(ctl.run('port', 'set', 'red', '--interface', 'ctl-red'), 'port set red')
	rc, ports, _ = ctl.json('port', 'show')
	check(rc == 0 and ports['black']['addresses'] == ['192.0.2.10/24'] and ports['black']['gateway4'] == '192.0.2.1'
	      and ports['red']['interface'] == 'ctl-red', f'port show has what port set stored ({ports})')
	stored(ctl.run('port', 'set', 'black', '--mtu', '1400'), 'port set black --mtu alone')
	rc, black, _ = ctl.json('port', 'show', 'black')
	check(rc == 0 and black['mtu'] == 1400 and black['addresses'] == ['192.0.2.10/24'],
	      f'port set changes only the fields given ({black})')


def test_policies(ctl):
	res = ctl.run('policy', 'add', 'a-to-b', '--action', 'protect', '--src', '198.18.1.0/24', '--dst', '198.18.2.0/24',
	              '--peer', '198.51.100.10', '--priority', '3')
	stored(res, 'policy add a-to-b')
	check('a-to-b' in res[1] and '198.51.100.10' in res[1], f'policy add shows the stored policy ({res[1][:200]})')
	web = os.path.join(ctl.dir, 'web.json')
	write_file(web, json.dumps({'name': 'web', 'action': 'bypass', 'protocol': 'tcp', 'dst_port': 80}))
	stored(ctl.run('policy', 'add', '--file', web), 'policy add --file')
	stored(ctl.run('policy', 'add', 'telnet', '--action', 'discard', '--proto', 'tcp', '--dst-port', '23'),
	       'policy add telnet')

	rc, out, err = ctl.run('policy', 'list')
	lines = out.splitlines()
	check(rc == 0 and lines and lines[0].split()[:4] == ['ID', 'PRI', 'NAME', 'ACTION'] and len(lines) == 4,
	      f'policy list is a table with a header and 3 rows ({out})')
	check(lines[1].split()[2] == 'a-to-b', 'priority 3 is listed first (evaluation order)')
	rc, pols, _ = ctl.json('policy', 'list')
	check(rc == 0 and [p['name'] for p in pols] == ['a-to-b', 'web', 'telnet'], f'--json policy list ({pols})')
	rc, p, _ = ctl.json('policy', 'show', 'a-to-b')
	check(rc == 0 and p['peer'] == '198.51.100.10' and p['priority'] == 3 and p['src'] == '198.18.1.0/24',
	      f'policy show NAME ({p})')
	rc, p2, _ = ctl.json('policy', 'show', str(p['id']))
	check(rc == 0 and p2 == p, 'policy show ID is the same policy')

	# errors: the server's own words, field and code; nothing stored
	refused(ctl.run('policy', 'add', 'bad', '--action', 'protect', '--src', '198.18.1.1/24', '--peer', '198.51.100.10'),
	        'src', 'BAD_FIELD', 'host bits in --src')
	refused(ctl.run('policy', 'add', 'nopeer', '--action', 'protect'), 'peer', 'MISSING_FIELD', 'protect without --peer')
	refused(ctl.run('policy', 'add', 'web', '--action', 'bypass'), 'name', 'CONFLICT', 'a duplicate name')
	rc, pols, _ = ctl.json('policy', 'list')
	check([x['name'] for x in pols] == ['a-to-b', 'web', 'telnet'], 'refused policies were not stored')
	rc, out, err = ctl.run('policy', 'show', 'nosuch')
	check(rc == 1 and 'nosuch' in err, f'policy show of an unknown name: exit 1 ({err.strip()})')

	ids = {x['name']: x['id'] for x in pols}
	res = ctl.run('policy', 'reorder', 'telnet', str(ids['web']), 'a-to-b')
	stored(res, 'policy reorder')
	rc, pols, _ = ctl.json('policy', 'list')
	# priorities still decide first; order only breaks ties (web and telnet both have the default 4)
	check([x['name'] for x in pols] == ['a-to-b', 'telnet', 'web'], f'reorder took effect ({[x["name"] for x in pols]})')
	res = ctl.run('policy', 'del', 'telnet')
	stored(res, 'policy del NAME')
	rc, pols, _ = ctl.json('policy', 'list')
	check([x['name'] for x in pols] == ['a-to-b', 'web'], 'policy del removed it')


def sa_file(ctl):
	path = os.path.join(ctl.dir, 'sas.json')
	write_file(path, json.dumps([
		{'spi': '0x00001001', 'direction': 'out', 'policy': 'a-to-b', 'enc': 'aes-gcm-256', 'enc_key': KEY_OUT},
		{'spi': '0x00002001', 'direction': 'in', 'policy': 'a-to-b', 'enc': 'aes-gcm-256', 'enc_key': KEY_IN}]))
	return path


def test_sas(ctl):
	path = sa_file(ctl)
	rc, out, err = ctl.run('sa', 'add')
	check(rc == 64, f'sa add without --file is a usage error (keys never on the command line) (rc={rc})')
	res = ctl.run('sa', 'add', '--file', path)
	stored(res, 'sa add --file (two SAs)')
	check(res[1].count('added SA') == 2 and '0x00001001' in res[1], f'both SAs reported ({res[1].strip()})')
	rc, out, err = ctl.run('sa', 'list')
	check(rc == 0 and '0x00001001' in out and '0x00002001' in out and 'aes-gcm-256' in out, f'sa list ({out})')
	rc, sas, _ = ctl.json('sa', 'list', '--direction', 'in')
	check(rc == 0 and [s['spi'] for s in sas] == [0x2001], f'sa list --direction in ({sas})')
	check(all('enc_key' not in s for s in sas), 'no key in the SA list')
	refused(ctl.run('sa', 'add', '--file', path), 'spi', 'CONFLICT', 'the same SPIs again')
	bad = os.path.join(ctl.dir, 'bad-sa.json')
	write_file(bad, json.dumps({'spi': 4097, 'direction': 'out', 'policy': 'web', 'enc': 'aes-gcm-256',
	                            'enc_key': KEY_OUT}))
	refused(ctl.run('sa', 'add', '--file', bad), 'policy', 'BAD_FIELD', 'an SA for a bypass policy')
	rc, out, err = ctl.run('sad')
	check(rc == 1 and 'WIRE_DOWN' in err, f'sad without bitw-wire: the server says so, exit 1 ({err.strip()})')


def test_issue7_flags(ctl):
	"""policy add/set flags for sa_type, clone and the SA options; sa add --protocol/--clone-host over a key file."""
	res = ctl.run('policy', 'add', 'ah-pol', '--action', 'protect', '--src', '198.18.1.0/24', '--dst', '198.18.30.0/24',
	              '--peer', '198.51.100.10', '--sa-type', 'ah', '--clone', 'src', '--ecn', 'no', '--df', 'copy',
	              '--pad-check', 'no', '--icv-96', 'yes', '--mss-clamp', 'no')
	stored(res, 'policy add with --sa-type ah --clone src and the option flags')
	rc, p, _ = ctl.json('policy', 'show', 'ah-pol')
	want = {'sa_type': 'ah', 'clone': 'src', 'ecn': False, 'df': 'copy', 'pad_check': False, 'icv_96': True,
	        'mss_clamp': False}
	check(rc == 0 and p and all(p.get(k) == v for k, v in want.items()), f'every flag is stored ({p})')
	stored(ctl.run('policy', 'add', 'padded', '--action', 'protect', '--dst', '198.18.31.0/24', '--peer',
	               '198.51.100.10', '--tfc-pad', '64', '--dummy-interval-ms', '250'), 'policy add --tfc-pad --dummy-interval-ms')
	rc, q, _ = ctl.json('policy', 'show', 'padded')
	check(rc == 0 and q and q.get('tfc_pad') == 64 and q.get('dummy_interval_ms') == 250 and q.get('sa_type') == 'esp',
	      f'numbers stored, sa_type esp by default ({q})')
	stored(ctl.run('policy', 'set', 'ah-pol', '--df', 'set'), 'policy set NAME --df set')
	rc, p2, _ = ctl.json('policy', 'show', 'ah-pol')
	check(rc == 0 and p2 and p2.get('df') == 'set' and all(p2.get(k) == v for k, v in want.items() if k != 'df') and
	      p2['id'] == p['id'], f'policy set changes only what it names ({p2})')
	refused(ctl.run('policy', 'set', 'ah-pol', '--sa-type', 'gre'), 'sa_type', 'BAD_FIELD', 'policy set --sa-type gre')
	refused(ctl.run('policy', 'set', 'ah-pol', '--ecn', 'maybe'), 'ecn', 'BAD_FIELD', 'policy set --ecn maybe')
	refused(ctl.run('policy', 'add', 'ah-pad', '--action', 'protect', '--peer', '198.51.100.10', '--sa-type', 'ah',
	                '--tfc-pad', '8'), 'tfc_pad', 'BAD_FIELD', 'TFC padding on an AH policy')
	rc, out, err = ctl.run('policy', 'set', 'nosuch', '--df', 'set')
	check(rc == 1 and 'nosuch' in err, f'policy set of an unknown name: exit 1 ({err.strip()})')

	path = os.path.join(ctl.dir, 'ah-sa.json')
	write_file(path, json.dumps({'spi': 0x3001, 'direction': 'out', 'policy': 'ah-pol', 'integ': 'hmac-sha256-128',
	                             'integ_key': KEY_OUT[:64]}))
	refused(ctl.run('sa', 'add', '--file', path, '--protocol', 'ah', '--clone-host', '198.18.99.7'), 'clone_host',
	        'BAD_FIELD', 'a --clone-host outside the policy\'s src')
	stored(ctl.run('sa', 'add', '--file', path, '--protocol', 'ah', '--clone-host', '198.18.1.7'),
	       'sa add --protocol ah --clone-host')
	rc, sas, _ = ctl.json('sa', 'list', '--policy', 'ah-pol')
	check(rc == 0 and len(sas) == 1 and sas[0].get('protocol') == 'ah' and sas[0].get('clone_host') == '198.18.1.7' and
	      sas[0].get('enc') == 'null', f'the SA is AH for host 198.18.1.7 ({sas})')
	rc, out, _ = ctl.run('sa', 'list', '--policy', 'ah-pol')
	check(rc == 0 and out.split()[:4] == ['ID', 'SPI', 'DIR', 'PROTO'] and ' ah ' in out, f'sa list shows PROTO ({out})')
	stored(ctl.run('policy', 'set', 'ah-pol', '--sa-type', 'ahesp'), 'policy set --sa-type ahesp on the clone policy')
	rc, p3, _ = ctl.json('policy', 'show', 'ah-pol')
	check(rc == 0 and p3 and p3.get('sa_type') == 'ahesp' and p3.get('clone') == 'src', f'a cloned bundle ({p3})')
	esp_path = os.path.join(ctl.dir, 'esp-sa.json')
	write_file(esp_path, json.dumps({'spi': 0x3002, 'direction': 'out', 'policy': 'ah-pol', 'enc': 'aes-gcm-256',
	                                 'enc_key': KEY_OUT}))
	stored(ctl.run('sa', 'add', '--file', esp_path, '--clone-host', '198.18.1.7'), 'sa add: the host\'s ESP SA beside its AH SA')
	rc, sas, _ = ctl.json('sa', 'list', '--policy', 'ah-pol')
	check(rc == 0 and sorted(s.get('protocol') for s in sas) == ['ah', 'esp'] and
	      all(s.get('clone_host') == '198.18.1.7' for s in sas), f'host 198.18.1.7 has its bundle pair ({sas})')
	for name in ('ah-pol', 'padded'):
		stored(ctl.run('policy', 'del', name), f'policy del {name}')


def test_netstat(ctl):
	rc, out, err = ctl.run('netstat')
	check(rc == 0 and 'bitw-wire: down' in out and 'Ports' in out and 'ctl-blk' in out, f'netstat header and ports ({out[:300]})')
	pol = [l for l in out.splitlines() if 'a-to-b' in l and 'protect' in l]
	check(pol and '198.51.100.10' in pol[0], f'netstat lists the policy with its peer ({pol})')
	check('0x00001001' in out and '0x00002001' in out, 'netstat lists the SAs')
	rc, st, _ = ctl.json('netstat')
	check(rc == 0 and st and st.get('wire') == 'down' and 'bitwd' in st, f'--json netstat is GET /stats as is ({st})')


def test_admin_state(ctl):
	rc, out, err = ctl.run('admin-state')
	check(rc == 0 and out.strip() == 'secure', f'admin-state shows secure by default ({rc} {out.strip()} {err.strip()})')
	stored(ctl.run('admin-state', 'bypass'), 'admin-state bypass')
	rc, out, err = ctl.run('admin-state')
	check(rc == 0 and out.startswith('bypass') and 'WARNING' in out and 'clear text' in out,
	      f'admin-state shows bypass with a warning ({out.strip()})')
	refused(ctl.run('admin-state', 'off'), 'state', 'BAD_FIELD', 'admin-state off')
	stored(ctl.run('admin-state', 'secure'), 'admin-state secure')
	rc, st, _ = ctl.json('admin-state')
	check(rc == 0 and st == {'state': 'secure'}, f'--json admin-state is GET /admin-state as is ({st})')


def test_config_round_trip(ctl):
	exp = os.path.join(ctl.dir, 'export.json')
	rc, out, err = ctl.run('config', 'export', '-o', exp)
	check(rc == 0 and out == '', f'config export -o FILE ({err.strip()})')
	doc = json.load(open(exp))
	check([p['name'] for p in doc['policies']] == ['a-to-b', 'web'] and len(doc['sas']) == 2, 'the export has everything')
	check(KEY_OUT not in open(exp).read() and all('enc_key' not in s for s in doc['sas']), 'the export has no keys')
	rc, out, _ = ctl.run('config', 'export')
	check(rc == 0 and json.loads(out) == doc, 'config export to stdout is the same document')

	# wipe, then import the export with its keys given back: the same configuration again
	stored(ctl.run('sa', 'flush', '--policy', 'a-to-b'), 'sa flush --policy')
	rc, sas, _ = ctl.json('sa', 'list')
	check(rc == 0 and sas == [], 'sa flush emptied the SAD')
	for name in ('a-to-b', 'web'):
		stored(ctl.run('policy', 'del', name), f'policy del {name}')
	rc, pols, _ = ctl.json('policy', 'list')
	check(rc == 0 and pols == [], 'every policy deleted')
	for s in doc['sas']:
		s['enc_key'] = KEY_OUT if s['direction'] == 'out' else KEY_IN
	imp = os.path.join(ctl.dir, 'import.json')
	write_file(imp, json.dumps(doc))
	res = ctl.run('config', 'import', imp)
	stored(res, 'config import')
	check('2 policies, 2 SAs' in res[1], f'config import says what it imported ({res[1].strip()})')
	rc, out, _ = ctl.run('config', 'export')
	check(rc == 0 and json.loads(out) == json.load(open(exp)), 'export, wipe, import: the same configuration')

	broken = os.path.join(ctl.dir, 'broken.json')
	write_file(broken, '{"policies": [\n  {"name": "x",}\n]}')
	rc, out, err = ctl.run('config', 'import', broken)
	check(rc == 1 and 'BAD_JSON' in err and 'line 2' in err, f'a malformed file: bitwd names the line ({err.strip()})')
	rc, out, _ = ctl.run('config', 'export')
	check(rc == 0 and json.loads(out) == json.load(open(exp)), 'the failed import changed nothing')


def test_events(ctl):
	rc, out, err = ctl.run('events', '--count', '2', '--after', '0')
	lines = out.splitlines()
	check(rc == 0 and len(lines) == 2 and lines[0].split()[:2] == ['1', 'config.changed'],
	      f'events --count 2 --after 0: the first two events, one line each ({out.strip()[:300]} {err.strip()})')
	# a live event: follow (no replay unless asked with --after), then make a change
	p = subprocess.Popen([ctl.bin, '--url', ctl.d.url, '--token-file', ctl.token_file, '--json', 'events', '--count',
	                      '1'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ctl.env)
	time.sleep(1.5)
	stored(ctl.run('policy', 'add', 'live', '--action', 'discard', '--proto', 'udp', '--dst-port', '9'), 'a change while following')
	try:
		out, err = p.communicate(timeout=20)
	except subprocess.TimeoutExpired:
		p.kill()
		out, err = p.communicate()
	evs = [json.loads(l) for l in out.decode().splitlines() if l.strip()]
	last = evs[-1] if evs else {}
	check(p.returncode == 0 and len(evs) == 1 and last.get('type') == 'config.changed'
	      and last.get('data', {}).get('action') == 'policy.create' and last.get('id', 0) > 2,
	      f'events --json --count 1 follows the stream and shows the new change ({evs} rc={p.returncode} {err.decode()[-300:]})')
	stored(ctl.run('policy', 'del', 'live'), 'policy del live')


def test_users_and_roles(ctl):
	ropw = os.path.join(ctl.dir, 'ro.pw')
	write_file(ropw, 'read-only-password-1\n')
	rc, out, err = ctl.run('user', 'add', 'viewer', '--role', 'readonly', '--new-password-file', ropw)
	check(rc == 0 and 'viewer' in out, f'user add ({out.strip()} {err.strip()})')
	rc, users, _ = ctl.json('user', 'list')
	check(rc == 0 and sorted(u['name'] for u in users) == ['admin', 'viewer'], f'user list ({users})')
	short = os.path.join(ctl.dir, 'short.pw')
	write_file(short, 'short\n')
	refused(ctl.run('user', 'add', 'weak', '--new-password-file', short), 'password', 'BAD_FIELD', 'a short password')
	viewer = ['--user', 'viewer', '--password-file', ropw]
	rc, out, err = ctl.run('whoami', conn=viewer)
	check(rc == 0 and out.strip() == 'viewer (readonly) via session', f'--user login ({out.strip()} {err.strip()})')
	rc, out, err = ctl.run('policy', 'list', conn=viewer)
	check(rc == 0 and 'a-to-b' in out, 'a read-only user can read')
	refused(ctl.run('policy', 'add', 'x', '--action', 'bypass', conn=viewer), None, 'FORBIDDEN', 'a read-only user cannot write')
	newpw = os.path.join(ctl.dir, 'ro2.pw')
	write_file(newpw, 'read-only-password-2\n')
	rc, out, err = ctl.run('user', 'passwd', '--new-password-file', newpw, conn=viewer)
	check(rc == 0 and 'password changed for viewer' in out, f'a read-only user changes their own password ({out.strip()} {err.strip()})')
	refused(ctl.run('whoami', conn=viewer), None, 'UNAUTHORIZED', 'the old password no longer logs in')
	# a write over a cookie session: bitwctl must send the CSRF header or bitwd answers 403
	admin_pw = os.path.join(ctl.dir, 'admin.pw')
	stored(ctl.run('policy', 'add', 'by-session', '--action', 'bypass', '--dst', '198.18.9.9',
	               conn=['--user', 'admin', '--password-file', admin_pw]), 'a write over a session (CSRF header sent)')
	stored(ctl.run('policy', 'del', 'by-session'), 'policy del by-session')
	rc, out, err = ctl.run('user', 'del', 'viewer')
	check(rc == 0, f'user del NAME ({err.strip()})')
	rc, toks, _ = ctl.json('token', 'list')
	check(rc == 0 and [t['name'] for t in toks] == ['script'] and all('token' not in t for t in toks), f'token list ({toks})')
	rc, out, err = ctl.run('token', 'create', 'short-lived', '--expires', '1h')
	rc2, toks, _ = ctl.json('token', 'list')
	tid = [t['id'] for t in toks if t['name'] == 'short-lived']
	check(rc == 0 and tid and 3500 < next(t['expires'] - t['created'] for t in toks if t['name'] == 'short-lived') <= 3600,
	      'token create --expires 1h')
	rc, out, err = ctl.run('token', 'del', str(tid[0]) if tid else '0')
	check(rc == 0, f'token del ({err.strip()})')


def test_failures(ctl):
	rc, out, err = ctl.run('whoami', conn=[])
	check(rc == 1 and 'code: UNAUTHORIZED' in err, f'no credentials: the server\'s 401, exit 1 ({err.strip()})')
	rc, out, err = ctl.run('health', conn=[])
	check(rc == 0 and 'status' in out, f'health needs no credentials ({out.strip()})')
	port = free_port()
	rc, out, err = ctl.run('health', conn=['--url', f'http://127.0.0.1:{port}'])
	check(rc == 2 and 'cannot reach' in err, f'nothing listening: exit 2 ({err.strip()})')
	for argv in (['policy'], ['policy', 'add', 'x', '--bogus', '1'], ['frobnicate'], ['sa', 'del', 'x']):
		rc, out, err = ctl.run(*argv)
		check(rc == 64, f'usage error {argv}: exit 64 (rc={rc})')


def test_tls(ctl, d, admin_pw_file):
	d.stop()
	d.start(admin_pw_file, tls=True)
	cert = os.path.join(d.dir, 'bitwd.crt')
	rc, out, err = ctl.run('whoami', conn=['--token-file', ctl.token_file, '--cacert', cert])
	check(rc == 0 and 'admin' in out, f'HTTPS with --cacert bitwd.crt ({err.strip()})')
	rc, out, err = ctl.run('whoami', conn=['--token-file', ctl.token_file])
	check(rc == 2 and 'cannot reach' in err, f'HTTPS without trusting the certificate: exit 2 ({err.strip()[:200]})')
	rc, out, err = ctl.run('whoami', conn=['--token-file', ctl.token_file, '--insecure'])
	check(rc == 0, '--insecure skips verification')


def main():
	if len(sys.argv) < 3:
		print('usage: test_bitwctl.py BITWD BITWCTL', file=sys.stderr)
		return 2
	bitwd, bitwctl = sys.argv[1], sys.argv[2]
	for b in (bitwd, bitwctl):
		if not os.access(b, os.X_OK):
			print(f'1..0 # SKIP no {b}')
			return 77
	work = tempfile.mkdtemp(prefix='bitw-ctl-')
	d = Daemon(bitwd, work)
	ctl = Ctl(bitwctl, d, work)
	admin_pw = os.path.join(work, 'admin.pw')
	write_file(admin_pw, 'admin-password-for-bitwctl\n')
	try:
		d.start(admin_pw)
		test_token(ctl, admin_pw)
		test_ports(ctl)
		test_policies(ctl)
		test_sas(ctl)
		test_issue7_flags(ctl)
		test_netstat(ctl)
		test_admin_state(ctl)
		test_config_round_trip(ctl)
		test_events(ctl)
		test_users_and_roles(ctl)
		test_failures(ctl)
		test_tls(ctl, d, admin_pw)
	except Exception as e:
		check(False, f'exception: {e!r}')
		try:
			print('# bitwd log:\n#', d.log()[-3000:].replace('\n', '\n# '))
		except OSError:
			pass
	finally:
		d.stop()
		seen = '\n'.join(ctl.seen)
		check(KEY_OUT not in seen and KEY_IN not in seen and 'admin-password-for-bitwctl' not in seen,
		      'no key or password ever printed by bitwctl')
		shutil.rmtree(work, ignore_errors=True)
	print(f'1..{checks}')
	return 1 if failures else 0


if __name__ == '__main__':
	sys.exit(main())
