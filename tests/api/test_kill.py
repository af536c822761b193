# test_kill.py: bitwd killed with SIGKILL in the middle of a stream of writes keeps every acknowledged one, intact.
#
# No bitw-wire: every write is then answered 503 NOT_APPLIED, which still promises it is stored.
# Usage: test_kill.py [BITWD]  (else $BITWD, else $BITW_BUILD_ROOT/mgmt/bitwd); TAP on stdout, exit 0 pass, 1 fail.

import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

API = '/api/v1'
ROUNDS = 3


class TAP:
	n = 0


def ok(what):
	TAP.n += 1
	print(f'ok {TAP.n} - {what}', flush=True)


def log(*a):
	print('#', *a, flush=True)


class Fail(Exception):
	pass


def free_port():
	with socket.socket() as s:
		s.bind(('127.0.0.1', 0))
		return s.getsockname()[1]


def session():
	import requests
	s = requests.Session()
	s.trust_env = False  # never through a proxy from the environment
	return s


class Daemon:
	"""One bitwd on a database that outlives it."""

	def __init__(self, binary, workdir):
		self.bin = binary
		self.dir = workdir
		self.db = os.path.join(workdir, 'db', 'bitw.db')
		os.makedirs(os.path.dirname(self.db), mode=0o700)
		self.password = secrets.token_urlsafe(18)
		self.pwfile = os.path.join(workdir, 'admin.password')
		with open(os.open(self.pwfile, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
			f.write(self.password)
		self.p = None
		self.port = None
		self.starts = 0

	@property
	def url(self):
		return f'http://127.0.0.1:{self.port}'

	def start(self, timeout=20):
		self.port = free_port()
		self.starts += 1
		self.logpath = os.path.join(self.dir, f'bitwd-{self.starts}.log')
		self.logf = open(self.logpath, 'wb')
		# no bitw-wire listens on this socket: bitwd stores and reports NOT_APPLIED
		self.p = subprocess.Popen([self.bin, '--db', self.db, '--http', '--listen', '127.0.0.1',
		                           '--port', str(self.port), '--admin-password-file', self.pwfile,
		                           '--wire-socket', os.path.join(self.dir, 'no-wire.sock')],
		                          stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
		s = session()
		end = time.time() + timeout
		while time.time() < end:
			if self.p.poll() is not None:
				raise Fail(f'bitwd exited {self.p.returncode}:\n{self.log()[-2000:]}')
			try:
				r = s.get(self.url + f'{API}/health', timeout=2)
				if r.status_code == 200:
					return r
			except Exception:
				pass
			time.sleep(0.1)
		raise Fail(f'bitwd did not answer /health within {timeout}s:\n{self.log()[-2000:]}')

	def log(self):
		with open(self.logpath, 'rb') as f:
			return f.read().decode(errors='replace')

	def token(self):
		"""Log in with the admin password and make a bearer token (the session cookie is Secure: passed by hand)."""
		s = session()
		r = s.post(self.url + f'{API}/login', json={'user': 'admin', 'password': self.password}, timeout=10)
		if r.status_code != 200:
			raise Fail(f'login: HTTP {r.status_code}: {r.text[:300]}')
		m = re.search(r'bitw_session=([^;]+)', r.headers.get('Set-Cookie', ''))
		if not m:
			raise Fail(f'login set no session cookie: {r.headers}')
		h = {'Cookie': f'bitw_session={m.group(1)}', 'X-Bitw-CSRF': (r.json() or {}).get('csrf', '')}
		r = s.post(self.url + f'{API}/tokens', json={'name': f'kill-{secrets.token_hex(4)}'}, headers=h,
		           timeout=10)
		if r.status_code != 201 or not r.json().get('token'):
			raise Fail(f'token: HTTP {r.status_code}: {r.text[:300]}')
		return r.json()['token']

	def signal(self, sig):
		if self.p and self.p.poll() is None:
			self.p.send_signal(sig)
			try:
				self.p.wait(15)
			except subprocess.TimeoutExpired:
				self.p.kill()
				self.p.wait()
		if self.p:
			self.logf.close()
		return self.p.returncode if self.p else 0


class Writer(threading.Thread):
	"""Creates policies as fast as bitwd answers; remembers each one bitwd acknowledged as stored."""

	def __init__(self, url, token, prefix):
		super().__init__(daemon=True)
		self.url, self.token, self.prefix = url, token, prefix
		self.acked = []
		self.unexpected = []
		self.errors = 0
		self.stop = False

	def rate(self):
		return len(self.acked) / max(time.time() - self.t0, 1e-3)

	def run(self):
		self.t0 = time.time()
		s = session()
		h = {'Authorization': f'Bearer {self.token}'}
		i = 0
		while not self.stop:
			name = f'{self.prefix}-{i}'
			body = {'name': name, 'action': 'bypass', 'priority': 5,
			        'src': f'198.18.{(i >> 8) & 0xff}.{i & 0xff}', 'dst': '198.19.0.0/16'}
			i += 1
			try:
				r = s.post(self.url + f'{API}/policies', json=body, headers=h, timeout=10)
			except Exception:
				self.errors += 1  # bitwd died before answering: not acknowledged
				if self.errors > 50:
					return
				time.sleep(0.01)
				continue
			code = r.headers.get('Content-Type', '').startswith('application/problem+json') and r.json().get('code')
			if r.status_code == 201 or (r.status_code == 503 and code == 'NOT_APPLIED'):
				self.acked.append(name)
			else:
				self.unexpected.append((name, r.status_code, r.text[:200]))


def all_policy_names(url, token):
	s = session()
	h = {'Authorization': f'Bearer {token}'}
	names, offset = set(), 0
	while True:
		r = s.get(url + f'{API}/policies?offset={offset}&limit=1000', headers=h, timeout=30)
		if r.status_code != 200:
			raise Fail(f'GET /policies: HTTP {r.status_code}: {r.text[:300]}')
		page = r.json()
		names |= {p['name'] for p in page['items']}
		offset += len(page['items'])
		if not page['items'] or offset >= page['total']:
			return names


def integrity(db):
	"""PRAGMA integrity_check by an independent reader (python's sqlite3), as a crash would leave it."""
	c = sqlite3.connect(db)
	try:
		rows = c.execute('PRAGMA integrity_check').fetchall()
		fk = c.execute('PRAGMA foreign_key_check').fetchall()
	finally:
		c.close()
	if rows != [('ok',)]:
		raise Fail(f'integrity_check: {rows[:10]}')
	if fk:
		raise Fail(f'foreign_key_check: {fk[:10]}')


def run(binary):
	work = tempfile.mkdtemp(prefix='bitw-kill-')
	d = Daemon(binary, work)
	passed = False
	try:
		d.start()
		token = d.token()
		acked = set()
		for rnd in range(ROUNDS):
			w = Writer(d.url, token, f'kill{rnd}')
			w.start()
			# kill at a different moment each round, once some writes were acknowledged
			end = time.time() + 10
			while len(w.acked) < 20 + 15 * rnd and time.time() < end:
				time.sleep(0.005)
			time.sleep(0.013 * (rnd + 1))
			d.signal(signal.SIGKILL)
			w.stop = True
			w.join(20)
			if w.unexpected:
				raise Fail(f'writes answered neither 201 nor 503 NOT_APPLIED: {w.unexpected[:5]}')
			if len(w.acked) < 20:
				raise Fail(f'round {rnd}: only {len(w.acked)} writes acknowledged in 10 s:\n{d.log()[-2000:]}')
			log(f'round {rnd}: {len(w.acked)} writes acknowledged ({w.rate():.0f}/s), SIGKILL during the stream')
			acked |= set(w.acked)
			integrity(d.db)
			ok(f'round {rnd}: the database left by SIGKILL passes integrity_check')
			h = d.start()
			body = h.json() if h.content else {}
			if body.get('status') != 'ok':
				raise Fail(f'health after restart: {body}')
			ok(f'round {rnd}: restarted bitwd answers /health ({body})')
			token = d.token() if rnd % 2 else token  # the old token still works; a new login too
			names = all_policy_names(d.url, token)
			missing = sorted(acked - names)
			if missing:
				raise Fail(f'{len(missing)} acknowledged policies lost: {missing[:10]}')
			ok(f'round {rnd}: all {len(acked)} acknowledged policies are there ({len(names)} stored)')
		rc = d.signal(signal.SIGTERM)
		if rc != 0:
			raise Fail(f'bitwd exited {rc} on SIGTERM:\n{d.log()[-2000:]}')
		integrity(d.db)
		ok('the database passes integrity_check after a clean stop')
		print(f'1..{TAP.n}')
		passed = True
	finally:
		d.signal(signal.SIGKILL)
		if passed:
			shutil.rmtree(work, ignore_errors=True)
		else:
			log(f'kept {work} for inspection')


def main():
	binary = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get('BITWD')
	if not binary and os.environ.get('BITW_BUILD_ROOT'):
		binary = os.path.join(os.environ['BITW_BUILD_ROOT'], 'mgmt', 'bitwd')
	if not binary or not os.access(binary, os.X_OK):
		print(f'1..0 # SKIP bitwd not built ({binary})')
		return 0
	try:
		import requests  # noqa: F401
	except ImportError:
		print('1..0 # SKIP python3-requests is not installed')
		return 0
	try:
		run(binary)
	except Fail as e:
		print(f'not ok {TAP.n + 1} - {e}')
		print(f'1..{TAP.n + 1}')
		return 1
	return 0


if __name__ == '__main__':
	sys.exit(main())
