# test_auth.py: who may do what in bitwd: first admin, login, cookies and CSRF, bearer tokens, roles, rate limits, audit.
#
# Runs bitwd on a temporary database with --http on 127.0.0.1 and no bitw-wire.
# Usage: test_auth.py [BITWD]  (else $BITWD, else $BITW_BUILD_ROOT/mgmt/bitwd); exit 0 pass, 1 fail, 77 skip.

import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

API = '/api/v1'
ROUTES_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'mgmt', 'routes.c')
failures = 0
checks = 0


def check(cond, what):
	global failures, checks
	checks += 1
	print(('ok' if cond else 'not ok'), checks, '-', what, flush=True)
	if not cond:
		failures += 1
	return cond


def free_port():
	with socket.socket() as s:
		s.bind(('127.0.0.1', 0))
		return s.getsockname()[1]


def new_session():
	import requests
	s = requests.Session()
	s.trust_env = False  # never through a proxy from the environment
	return s


def write_secret(path, text):
	with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
		f.write(text + '\n')


class Daemon:
	def __init__(self, binary, workdir):
		self.bin = binary
		self.dir = workdir
		self.db = os.path.join(workdir, 'bitw.db')
		self.p = None
		self.port = None
		self.logpath = os.path.join(workdir, 'bitwd.log')

	@property
	def url(self):
		return f'http://127.0.0.1:{self.port}'

	def argv(self, extra):
		return [self.bin, '--db', self.db, '--http', '--listen', '127.0.0.1', '--port', str(self.port),
		        '--wire-socket', os.path.join(self.dir, 'no-wire.sock')] + extra

	def run_once(self, extra, timeout=30):
		"""bitwd that is expected to refuse to start: (exit code, output)."""
		self.port = free_port()
		p = subprocess.run(self.argv(extra), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
		return p.returncode, (p.stdout + p.stderr).decode(errors='replace')

	def start(self, extra, timeout=30):
		self.port = free_port()
		self.logf = open(self.logpath, 'ab')
		self.p = subprocess.Popen(self.argv(extra), stdin=subprocess.DEVNULL, stdout=self.logf,
		                          stderr=subprocess.STDOUT)
		s = new_session()
		end = time.time() + timeout
		while time.time() < end:
			if self.p.poll() is not None:
				raise RuntimeError(f'bitwd exited {self.p.returncode}:\n{self.log()[-2000:]}')
			try:
				if s.get(self.url + f'{API}/health', timeout=2).status_code == 200:
					return
			except Exception:
				pass
			time.sleep(0.1)
		raise RuntimeError('bitwd did not answer /health')

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


def routes():
	"""(method, path) of every route in routes.c, placeholders filled in."""
	text = open(ROUTES_C).read()
	out = []
	for m, path, role, flags in re.findall(r'\{\s*"(\w+)",\s*"([^"]+)",\s*\w+,\s*(\w+),\s*([^}]*)\}', text):
		out.append((m, re.sub(r'\{role\}', 'red', re.sub(r'\{id\}', '1', path)), 'ROUTE_PUBLIC' in flags, role))
	return out


def login(url, user, password, source=None):
	"""A login from a chosen loopback address (the rate limit counts per address): (status, headers, body)."""
	c = http.client.HTTPConnection('127.0.0.1', int(url.rsplit(':', 1)[1]), timeout=30,
	                               source_address=(source, 0) if source else None)
	c.request('POST', f'{API}/login', json.dumps({'user': user, 'password': password}),
	          {'Content-Type': 'application/json'})
	r = c.getresponse()
	body = r.read()
	c.close()
	return r.status, r.headers, (json.loads(body) if body else None)


def session_login(url, user, password):
	s = new_session()
	r = s.post(url + f'{API}/login', json={'user': user, 'password': password})
	return s, r


def health_latency_while(port, work, done):
	"""Runs work() on a thread and times GET /health every 20 ms until done is set: (sorted latencies, median)."""
	t = threading.Thread(target=work)
	t.start()
	lat = []
	c = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
	time.sleep(0.05)
	while not done.is_set():
		t0 = time.time()
		c.request('GET', f'{API}/health')
		c.getresponse().read()
		lat.append(time.time() - t0)
		time.sleep(0.02)
	c.close()
	t.join()
	lat.sort()
	return lat, (lat[len(lat) // 2] if lat else 99)


def test_bootstrap(d, pw):
	rc, out = d.run_once([])
	check(rc != 0 and '--admin-password-file' in out, 'no user and no password source: refuses to start, says how')
	short = os.path.join(d.dir, 'short.pw')
	write_secret(short, 'short')
	rc, out = d.run_once(['--admin-password-file', short])
	check(rc != 0 and '12' in out, 'admin password shorter than 12 characters: refuses to start')
	check(not os.path.exists(d.db) or os.path.getsize(d.db) >= 0, 'database still sane after refusals')
	pwfile = os.path.join(d.dir, 'admin.pw')
	write_secret(pwfile, pw)
	d.start(['--admin-password-file', pwfile])


def test_login(d, pw):
	s, r = session_login(d.url, 'admin', pw + 'x')
	check(r.status_code == 401 and r.json().get('code') == 'UNAUTHORIZED', 'wrong password: 401 UNAUTHORIZED')
	check(r.headers.get('Content-Type', '').startswith('application/problem+json'), 'wrong password: problem+json')
	check('bitw_session' not in r.headers.get('Set-Cookie', ''), 'wrong password: no session cookie')
	t0 = time.time()
	s2, r = session_login(d.url, 'nobody-here', pw)
	check(r.status_code == 401 and time.time() - t0 >= 0.2, 'unknown user: 401 after the same minimum delay')

	s, r = session_login(d.url, 'admin', pw)
	body = r.json()
	check(r.status_code == 200, 'right password: 200')
	check(body.get('user') == 'admin' and body.get('role') == 'admin', 'login answers user and role')
	check(isinstance(body.get('expires'), int) and body['expires'] > time.time(), 'login answers when it expires')
	check(isinstance(body.get('csrf'), str) and len(body['csrf']) >= 32, 'login answers a CSRF token')
	cookie = r.headers.get('Set-Cookie', '')
	flags = [f.strip().lower() for f in cookie.split(';')]
	check(cookie.startswith('bitw_session=') and len(cookie.split(';')[0]) > 30, 'session cookie set')
	check('httponly' in flags and 'samesite=strict' in flags and 'path=/' in flags, 'cookie HttpOnly, SameSite=Strict, Path=/')
	check(any(f.startswith('max-age=') and int(f[8:]) > 0 for f in flags), 'cookie has a Max-Age')
	check('secure' not in flags, 'cookie without Secure only because of --http on loopback')
	return s, body['csrf']


def test_session_and_csrf(d, s, csrf):
	r = s.get(d.url + f'{API}/whoami')
	check(r.status_code == 200 and r.json().get('via') == 'session' and r.json().get('user') == 'admin',
	      'whoami with the cookie: the admin via session')
	check(r.json().get('csrf') == csrf, 'whoami repeats the CSRF token')
	r = s.post(d.url + f'{API}/tokens', json={'name': 'no-csrf'})
	check(r.status_code == 403 and r.json().get('code') == 'FORBIDDEN', 'cookie write without X-Bitw-CSRF: 403')
	r = s.post(d.url + f'{API}/tokens', json={'name': 'bad-csrf'}, headers={'X-Bitw-CSRF': '0' * len(csrf)})
	check(r.status_code == 403, 'cookie write with a wrong X-Bitw-CSRF: 403')
	r = s.get(d.url + f'{API}/tokens')
	check(r.status_code == 200 and r.json()['total'] == 0, 'the refused writes stored nothing')
	r = s.post(d.url + f'{API}/tokens', json={'name': 'script'}, headers={'X-Bitw-CSRF': csrf})
	check(r.status_code == 201, 'cookie write with the right X-Bitw-CSRF: 201')
	return r.json()


def test_tokens(d, s, csrf, created):
	tok = created.get('token', '')
	check(tok.startswith('bitw_') and created.get('name') == 'script' and 'id' in created,
	      'token creation answers id, name and the token text')
	b = new_session()
	r = b.get(d.url + f'{API}/whoami', headers={'Authorization': f'Bearer {tok}'})
	check(r.status_code == 200 and r.json().get('via') == 'token' and r.json().get('role') == 'admin',
	      'bearer token works and carries its owner\'s role')
	check('csrf' not in r.json(), 'no CSRF token for bearer callers')
	r = b.post(d.url + f'{API}/tokens', json={'name': 'from-token'}, headers={'Authorization': f'Bearer {tok}'})
	check(r.status_code == 201, 'bearer writes need no CSRF header')
	r = b.get(d.url + f'{API}/whoami', headers={'Authorization': f'Bearer {tok[:-2]}xx'})
	check(r.status_code == 401 and 'Bearer' in r.headers.get('WWW-Authenticate', ''), 'a wrong token: 401')
	r = s.get(d.url + f'{API}/tokens')
	listed = r.text
	check(r.status_code == 200 and r.json()['total'] == 2, 'tokens are listed')
	check(tok not in listed and 'token' not in r.json()['items'][0], 'the token text is never listed')
	r = s.post(d.url + f'{API}/tokens', json={'name': 'script'}, headers={'X-Bitw-CSRF': csrf})
	check(r.status_code == 409 and r.json().get('field') == 'name', 'duplicate token name: 409 naming name')
	r = s.post(d.url + f'{API}/tokens', json={'name': 'x', 'expires_in': -5}, headers={'X-Bitw-CSRF': csrf})
	check(r.status_code == 422 and r.json().get('field') == 'expires_in', 'negative expires_in: 422')
	r = s.post(d.url + f'{API}/tokens', json={'name': 'x', 'secret': 1}, headers={'X-Bitw-CSRF': csrf})
	check(r.status_code == 422 and r.json().get('code') == 'UNKNOWN_FIELD', 'unknown field: 422 UNKNOWN_FIELD')
	r = s.post(d.url + f'{API}/tokens', json={'name': 'short', 'expires_in': 3600}, headers={'X-Bitw-CSRF': csrf})
	check(r.status_code == 201 and abs(r.json()['expires'] - (time.time() + 3600)) < 60, 'expires_in sets expires')
	r = s.delete(d.url + f'{API}/tokens/{created["id"]}', headers={'X-Bitw-CSRF': csrf})
	check(r.status_code == 204, 'token deleted')
	r = b.get(d.url + f'{API}/whoami', headers={'Authorization': f'Bearer {tok}'})
	check(r.status_code == 401, 'a deleted token no longer works')


def test_users(d, s, csrf, pw):
	ropw = secrets.token_urlsafe(16)
	h = {'X-Bitw-CSRF': csrf}
	r = s.post(d.url + f'{API}/users', json={'name': 'ro', 'password': 'short', 'role': 'readonly'}, headers=h)
	check(r.status_code == 422 and r.json().get('field') == 'password' and
	      not r.json().get('detail', '').startswith('password'), f'short password for a new user: 422 ({r.text})')
	r = s.post(d.url + f'{API}/users', json={'name': 'ro', 'password': ropw, 'role': 'root'}, headers=h)
	check(r.status_code == 422 and r.json().get('field') == 'role' and not r.json().get('detail', '').startswith('role'),
	      f'unknown role: 422 naming role, not repeating it in detail ({r.text})')
	r = s.post(d.url + f'{API}/users', json={'name': 'ro', 'password': ropw, 'role': 'readonly'}, headers=h)
	check(r.status_code == 201 and r.json().get('role') == 'readonly', 'read-only user created')
	ro_id = r.json()['id']
	r = s.post(d.url + f'{API}/users', json={'name': 'ro', 'password': ropw}, headers=h)
	check(r.status_code == 409, 'duplicate user name: 409')
	for url in (f'{API}/users', f'{API}/users/{ro_id}'):
		r = s.get(d.url + url)
		check(r.status_code == 200 and '$scrypt$' not in r.text and 'password' not in r.text and ropw not in r.text,
		      f'GET {url}: no password hash')
	r = s.get(d.url + f'{API}/users/999')
	check(r.status_code == 404, 'unknown user: 404')
	me = s.get(d.url + f'{API}/whoami').json()['id']
	r = s.delete(d.url + f'{API}/users/{me}', headers=h)
	check(r.status_code == 409 and r.json().get('field') == 'role', 'deleting the last admin: 409')
	r = s.patch(d.url + f'{API}/users/{me}', json={'role': 'readonly'}, headers=h)
	check(r.status_code == 409, 'demoting the last admin: 409')
	return ro_id, ropw


def test_readonly(d, s, csrf, ro_id, ropw):
	ro, r = session_login(d.url, 'ro', ropw)
	check(r.status_code == 200 and r.json()['role'] == 'readonly', 'read-only user logs in')
	h = {'X-Bitw-CSRF': r.json()['csrf']}
	for method, path in routes_writes():
		r = ro.request(method, d.url + path, json={}, headers=h)
		check(r.status_code == 403 and r.json().get('code') == 'FORBIDDEN', f'read-only {method} {path}: 403')
	r = ro.get(d.url + f'{API}/users')
	check(r.status_code == 403, 'read-only cannot list users')
	r = ro.get(d.url + f'{API}/audit')
	check(r.status_code == 403, 'read-only cannot read the audit log')
	r = ro.patch(d.url + f'{API}/users/{ro_id}', json={'role': 'admin'}, headers=h)
	check(r.status_code == 403, 'read-only cannot promote itself')
	r = ro.patch(d.url + f'{API}/users/1', json={'password': secrets.token_urlsafe(16)}, headers=h)
	check(r.status_code == 403, 'read-only cannot change another user\'s password')
	newpw = secrets.token_urlsafe(16)
	r = ro.patch(d.url + f'{API}/users/{ro_id}', json={'password': newpw}, headers=h)
	check(r.status_code == 200, 'read-only changes its own password')
	check(session_login(d.url, 'ro', newpw)[1].status_code == 200, 'the new password works')
	r = ro.post(d.url + f'{API}/tokens', json={'name': 'ro-script'}, headers=h)
	check(r.status_code == 201, 'read-only creates a token of its own')
	rotok = {'Authorization': 'Bearer ' + r.json()['token']}
	b = new_session()
	check(b.get(d.url + f'{API}/whoami', headers=rotok).json().get('role') == 'readonly', 'its token is read-only')
	r = b.post(d.url + f'{API}/users', json={'name': 'x', 'password': newpw}, headers=rotok)
	check(r.status_code == 403, 'read-only token cannot write')
	r = ro.get(d.url + f'{API}/tokens?all=1')
	check(r.status_code == 403, 'read-only cannot list everyone\'s tokens')
	r = s.get(d.url + f'{API}/tokens?all=1')
	check(r.status_code == 200 and any(t.get('user') == 'ro' for t in r.json()['items']),
	      'admin lists everyone\'s tokens with all=1')
	check(all(t.get('user') == 'admin' for t in s.get(d.url + f'{API}/tokens').json()['items']),
	      'without all=1 only one\'s own tokens')
	r = s.patch(d.url + f'{API}/users/{ro_id}', json={'disabled': True}, headers={'X-Bitw-CSRF': csrf})
	check(r.status_code == 200 and r.json()['disabled'] is True, 'admin disables the read-only user')
	check(b.get(d.url + f'{API}/whoami', headers=rotok).status_code == 401, 'a disabled user\'s token is refused')
	check(ro.get(d.url + f'{API}/whoami').status_code == 401, 'a disabled user\'s session is refused')
	check(session_login(d.url, 'ro', newpw)[1].status_code == 401, 'a disabled user cannot log in')
	s.patch(d.url + f'{API}/users/{ro_id}', json={'disabled': False}, headers={'X-Bitw-CSRF': csrf})
	check(session_login(d.url, 'ro', newpw)[1].status_code == 200, 're-enabled user logs in again')
	return newpw


def test_password_change(d, s, csrf, ro_id, ropw):
	"""A new password ends the user's other sessions (not the one changing it), never its tokens."""
	a, r = session_login(d.url, 'ro', ropw)
	ha = {'X-Bitw-CSRF': r.json()['csrf']}
	b, _ = session_login(d.url, 'ro', ropw)
	r = a.post(d.url + f'{API}/tokens', json={'name': 'ro-pwchange'}, headers=ha)
	tok = {'Authorization': 'Bearer ' + r.json()['token']}
	anon = new_session()
	newpw = secrets.token_urlsafe(16)
	r = a.patch(d.url + f'{API}/users/{ro_id}', json={'password': newpw}, headers=ha)
	check(r.status_code == 200, 'a user changes its own password')
	check(a.get(d.url + f'{API}/whoami').status_code == 200, 'the session that changed the password stays')
	check(b.get(d.url + f'{API}/whoami').status_code == 401, 'the user\'s other session is ended')
	check(anon.get(d.url + f'{API}/whoami', headers=tok).status_code == 200, 'the user\'s token still works')
	check(s.get(d.url + f'{API}/whoami').status_code == 200, 'another user\'s session is untouched')
	newpw2 = secrets.token_urlsafe(16)
	r = s.patch(d.url + f'{API}/users/{ro_id}', json={'password': newpw2}, headers={'X-Bitw-CSRF': csrf})
	check(r.status_code == 200, 'an admin sets the user\'s password')
	check(a.get(d.url + f'{API}/whoami').status_code == 401, 'after an admin set it, every session of the user ends')
	check(s.get(d.url + f'{API}/whoami').status_code == 200, 'the admin\'s own session stays')
	check(anon.get(d.url + f'{API}/whoami', headers=tok).status_code == 200, 'tokens survive password changes')
	r = s.get(d.url + f'{API}/audit?limit=5')
	check(any(i['action'] == 'user.update' and i['detail'].get('sessions_ended') == 1 for i in r.json()['items']),
	      'the audit entry says how many sessions ended')
	return newpw2


def test_login_not_blocking(d):
	"""Failed logins answer no sooner than 250 ms, but that wait holds only their own connection."""
	port = int(d.url.rsplit(':', 1)[1])
	done = threading.Event()
	fails = []

	def hammer():
		for i in range(8):   # a new address and name each time: under both rate limits
			t0 = time.time()
			st, _, _ = login(d.url, f'hammer{i}', 'wrong password!', source=f'127.0.3.{i + 1}')
			fails.append((st, time.time() - t0))
		done.set()

	lat, med = health_latency_while(port, hammer, done)
	check(all(st == 401 and dt >= 0.24 for st, dt in fails), f'each wrong password: 401 after >= 250 ms ({fails})')
	check(len(lat) >= 10 and med < 0.08,
	      f'meanwhile GET /health stays fast: median {med * 1000:.0f} ms over {len(lat)} requests'
	      f' (max {lat[-1] * 1000 if lat else 0:.0f} ms)')


def test_password_hashing_not_blocking(d, s, csrf):
	"""Creating users and setting passwords hash with scrypt on the worker thread: GET /health stays fast meanwhile."""
	port = int(d.url.rsplit(':', 1)[1])
	h = {'X-Bitw-CSRF': csrf}
	done = threading.Event()
	answers = []

	def create():
		for i in range(6):
			t0 = time.time()
			r = s.post(d.url + f'{API}/users', json={'name': f'hash{i}', 'password': f'password number {i}!'},
			           headers=h)
			answers.append((r.status_code, time.time() - t0, r.json().get('id') if r.status_code == 201 else None))
			if r.status_code == 201:
				r = s.patch(d.url + f'{API}/users/{answers[-1][2]}', json={'password': f'another password {i}!'},
				            headers=h)
				answers.append((r.status_code, 0, None))
		done.set()

	lat, med = health_latency_while(port, create, done)
	check([a[0] for a in answers] == [201, 200] * 6, f'six users created and their passwords changed ({answers})')
	check(len(lat) >= 5 and med < 0.08,
	      f'meanwhile GET /health stays fast: median {med * 1000:.0f} ms over {len(lat)} requests'
	      f' (max {lat[-1] * 1000 if lat else 0:.0f} ms; creations took {[round(a[1], 2) for a in answers[::2]]} s)')
	st, _, _ = login(d.url, 'hash3', 'another password 3!')
	check(st == 200, f'the changed password logs in ({st})')
	for a in answers[::2]:
		if a[2]:
			s.delete(d.url + f'{API}/users/{a[2]}', headers=h)


def test_update_while_hashing(d, s, csrf):
	"""A PATCH with a password writes only its own fields when the hash is done: a disable made meanwhile stays."""
	h = {'X-Bitw-CSRF': csrf}
	r = s.post(d.url + f'{API}/users', json={'name': 'racer', 'password': 'racer password 1!'}, headers=h)
	uid = r.json().get('id') if r.status_code == 201 else None
	check(uid is not None, f'user "racer" created ({r.status_code})')
	if uid is None:
		return
	slow, order = [], []

	def queue(i):   # hashes ahead of the PATCH on the one worker thread: it waits its turn
		r = s.post(d.url + f'{API}/users', json={'name': f'ahead{i}', 'password': f'ahead password {i}!'}, headers=h)
		slow.append(r.json().get('id') if r.status_code == 201 else None)

	def patch():
		r = new_session().patch(d.url + f'{API}/users/{uid}', json={'password': 'racer password 2!', 'role': 'admin'},
		                        headers={**h, 'Cookie': f'bitw_session={s.cookies.get("bitw_session")}'})
		order.append(('password+role', r.status_code))

	ts = [threading.Thread(target=queue, args=(i,)) for i in range(3)]
	for t in ts:
		t.start()
	time.sleep(0.05)
	tp = threading.Thread(target=patch)
	tp.start()
	time.sleep(0.05)
	r = s.patch(d.url + f'{API}/users/{uid}', json={'disabled': True}, headers=h)
	order.append(('disabled', r.status_code))
	tp.join()
	for t in ts:
		t.join()
	check(order == [('disabled', 200), ('password+role', 200)],
	      f'the disable is answered while the password is still being hashed ({order})')
	u = s.get(d.url + f'{API}/users/{uid}').json()
	check(u.get('role') == 'admin' and u.get('disabled') is True,
	      f'both changes hold: the password change did not write back its old copy ({u})')
	for i in [uid] + [x for x in slow if x]:
		s.delete(d.url + f'{API}/users/{i}', headers=h)


def test_parallel_logins(d, s, csrf):
	"""Logins count against the rate limit when they start, and a login flood cannot refuse an admin's work."""
	results = []

	def attempt(name, src):
		results.append(login(d.url, name, 'wrong password!', source=src)[0])

	ts = [threading.Thread(target=attempt, args=('parallel', '127.0.4.1')) for _ in range(12)]
	for t in ts:
		t.start()
	for t in ts:
		t.join()
	check(sorted(results) == [401] * 5 + [429] * 7,
	      f'12 parallel wrong logins for one name from one address: 5 checked (401), the rest 429 ({sorted(results)})')
	results.clear()
	# Each from an address and name of its own: under both limits, more than the login capacity (16) at once.
	ts = [threading.Thread(target=attempt, args=(f'flood{i}', f'127.0.5.{i + 1}')) for i in range(24)]
	for t in ts:
		t.start()
	time.sleep(0.1)
	r = s.post(d.url + f'{API}/users', json={'name': 'during-flood', 'password': 'during the flood!'},
	           headers={'X-Bitw-CSRF': csrf})
	for t in ts:
		t.join()
	check(r.status_code == 201, f'an admin creates a user (password hashed) during a login flood: {r.status_code}')
	check(set(results) <= {401, 503} and results.count(401) >= 16,
	      f'the flood\'s logins are checked (401) or refused as busy (503) ({sorted(results)})')
	if r.status_code == 201:
		s.delete(d.url + f'{API}/users/{r.json()["id"]}', headers={'X-Bitw-CSRF': csrf})


def routes_writes():
	# POSTs open to read-only users (logout, certificate verify) change no configuration
	return [(m, p) for m, p, public, role in routes() if m != 'GET' and not public and role != 'RO'
	        and not p.startswith(f'{API}/tokens') and not (m == 'PATCH' and p.startswith(f'{API}/users/'))]


def test_no_credentials(d):
	s = new_session()
	rs = routes()
	check(len(rs) > 20, f'routes.c parsed ({len(rs)} routes)')
	for method, path, public, _ in rs:
		r = s.request(method, d.url + path, json={} if method != 'GET' else None)
		if public:
			continue
		check(r.status_code == 401 and r.json().get('code') == 'UNAUTHORIZED'
		      and 'Bearer' in r.headers.get('WWW-Authenticate', ''), f'no credentials: {method} {path} -> 401')
	r = s.get(d.url + f'{API}/whoami', cookies={'bitw_session': 'A' * 43})
	check(r.status_code == 401, 'a made-up session cookie: 401')


def test_logout(d, s, csrf):
	r = s.post(d.url + f'{API}/logout')
	check(r.status_code == 403, 'logout without the CSRF header: 403')
	old = s.cookies.get('bitw_session')
	r = s.post(d.url + f'{API}/logout', headers={'X-Bitw-CSRF': csrf})
	check(r.status_code == 204 and 'max-age=0' in r.headers.get('Set-Cookie', '').lower(),
	      'logout: 204 and the cookie cleared')
	r = new_session().get(d.url + f'{API}/whoami', cookies={'bitw_session': old})
	check(r.status_code == 401, 'the old session id no longer works')


def test_rate_limit(d, pw, ropw):
	# Per user name: failures from several addresses add up.
	for i in range(5):
		st, _, _ = login(d.url, 'ro', 'wrong password!', source=f'127.0.1.{i + 1}')
		check(st == 401, f'failure {i + 1} for "ro": 401')
	st, hd, body = login(d.url, 'ro', ropw, source='127.0.1.9')
	check(st == 429 and body.get('code') == 'RATE_LIMITED', 'sixth try for "ro", right password, new address: 429')
	ra = int(hd.get('Retry-After', '0'))
	check(0 < ra <= 300, f'429 says Retry-After ({ra} s)')
	st, _, _ = login(d.url, 'admin', pw, source='127.0.1.10')
	check(st == 200, 'another user from another address is not limited')
	# Per address: failures for several names add up.
	for i in range(5):
		login(d.url, f'nobody{i}', 'wrong password!', source='127.0.2.1')
	st, _, _ = login(d.url, 'admin', pw, source='127.0.2.1')
	check(st == 429, 'sixth try from one address, another name, right password: 429')
	st, _, _ = login(d.url, 'admin', pw, source='127.0.2.2')
	check(st == 200, 'the same user from another address still logs in')


def test_audit(d, pw, secrets_seen):
	s, r = session_login(d.url, 'admin', pw)
	r = s.get(d.url + f'{API}/audit?action=login.failed&limit=1000')
	items = r.json()['items'] if r.status_code == 200 else []
	check(r.status_code == 200 and r.json()['total'] >= 10, 'failed logins are audited')
	check(any(i['detail'].get('user') == 'ro' and i['remote'].startswith('127.0.1.') for i in items),
	      'the audit names the user and the remote address')
	r = s.get(d.url + f'{API}/audit?limit=1000')
	text = r.text
	check(not any(x in text for x in secrets_seen), 'no password or token in the audit log')
	actions = {i['action'] for i in r.json()['items']}
	for a in ('user.bootstrap', 'login', 'login.failed', 'logout', 'user.create', 'user.update', 'token.create',
	          'token.delete'):
		check(a in actions, f'audit has {a}')
	r = s.get(d.url + f'{API}/audit?user=ro&limit=2')
	check(r.status_code == 200 and r.json()['limit'] == 2 and len(r.json()['items']) <= 2
	      and all(i['user'] == 'ro' for i in r.json()['items']), 'audit filters by user and paginates')
	r = s.get(d.url + f'{API}/audit?since={int(time.time()) + 3600}')
	check(r.status_code == 200 and r.json()['total'] == 0, 'audit since the future: nothing')
	r = s.get(d.url + f'{API}/audit?limit=5000')
	check(r.status_code == 400, 'limit above 1000: 400')
	log = d.log()
	check(not any(x in log for x in secrets_seen), 'no password or token in bitwd\'s log')


def main():
	binary = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get('BITWD')
	          or os.path.join(os.environ.get('BITW_BUILD_ROOT', 'build'), 'mgmt', 'bitwd'))
	try:
		import requests  # noqa: F401
	except ImportError:
		print('1..0 # SKIP python3-requests missing')
		return 77
	if not os.access(binary, os.X_OK):
		print(f'1..0 # SKIP no bitwd at {binary}')
		return 77
	work = tempfile.mkdtemp(prefix='bitw-auth-')
	d = Daemon(binary, work)
	pw = secrets.token_urlsafe(18)
	try:
		test_bootstrap(d, pw)
		test_no_credentials(d)
		s, csrf = test_login(d, pw)
		tok = test_session_and_csrf(d, s, csrf)
		test_tokens(d, s, csrf, tok)
		ro_id, ropw = test_users(d, s, csrf, pw)
		ropw = test_readonly(d, s, csrf, ro_id, ropw)
		ropw = test_password_change(d, s, csrf, ro_id, ropw)
		test_login_not_blocking(d)
		test_password_hashing_not_blocking(d, s, csrf)
		test_update_while_hashing(d, s, csrf)
		test_parallel_logins(d, s, csrf)
		test_logout(d, s, csrf)
		test_rate_limit(d, pw, ropw)
		test_audit(d, pw, [pw, ropw, tok['token']])
	except Exception as e:
		check(False, f'exception: {e!r}')
		try:
			print('# bitwd log:\n#', d.log()[-3000:].replace('\n', '\n# '))
		except OSError:
			pass
	finally:
		d.stop()
		try:
			log = d.log()
			check('AddressSanitizer' not in log and 'runtime error' not in log, 'bitwd ran sanitizer-clean')
		except OSError:
			pass
		shutil.rmtree(work, ignore_errors=True)
	print(f'1..{checks}')
	return 1 if failures else 0


if __name__ == '__main__':
	sys.exit(main())
