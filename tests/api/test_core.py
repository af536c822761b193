# test_core.py: bitwd's core as a client sees it: HTTPS by default with its own certificate, flags, routing errors,
# body limits, problem+json, security headers, the event stream's plumbing, a clean stop.
#
# Usage: test_core.py BITWD  (TAP; exit 0 pass, 1 fail). Uses only 127.0.0.1 and temporary directories.

import datetime
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time

import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

API = '/api/v1'
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # waiting for start-up, before the check
checks = failures = 0


def check(cond, what):
	global checks, failures
	checks += 1
	print(('ok' if cond else 'not ok'), checks, '-', what, flush=True)
	if not cond:
		failures += 1
	return cond


def free_port():
	with socket.socket() as s:
		s.bind(('127.0.0.1', 0))
		return s.getsockname()[1]


def session():
	s = requests.Session()
	s.trust_env = False  # never through a proxy from the environment
	return s


class Daemon:
	def __init__(self, binary, workdir, pw):
		self.bin, self.dir = binary, workdir
		self.db = os.path.join(workdir, 'bitw.db')
		self.pwfile = os.path.join(workdir, 'admin.pw')
		with open(os.open(self.pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
			f.write(pw + '\n')
		self.p = None
		self.logpath = os.path.join(workdir, 'bitwd.log')

	def argv(self, extra):
		return [self.bin, '--db', self.db, '--port', str(self.port), '--admin-password-file', self.pwfile,
		        '--wire-socket', os.path.join(self.dir, 'no-wire.sock')] + extra

	def run_once(self, extra):
		self.port = free_port()
		p = subprocess.run(self.argv(extra), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
		return p.returncode, p.stdout + p.stderr

	def start(self, extra, scheme='http', verify=False):
		self.port = free_port()
		self.url = f'{scheme}://127.0.0.1:{self.port}'
		self.logf = open(self.logpath, 'w')
		self.p = subprocess.Popen(self.argv(extra), stdin=subprocess.DEVNULL, stdout=self.logf,
		                          stderr=subprocess.STDOUT)
		s = session()
		for _ in range(300):
			if self.p.poll() is not None:
				raise RuntimeError(f'bitwd exited {self.p.returncode}: {self.log()[-2000:]}')
			try:
				if s.get(self.url + f'{API}/health', timeout=2, verify=verify).status_code == 200:
					return
			except requests.RequestException:
				time.sleep(0.1)
		raise RuntimeError('bitwd did not answer /health')

	def stop(self):
		"""SIGTERM; the exit code."""
		if not self.p:
			return None
		self.p.terminate()
		try:
			rc = self.p.wait(20)
		except subprocess.TimeoutExpired:
			self.p.kill()
			rc = self.p.wait()
		self.logf.close()
		self.p = None
		return rc

	def log(self):
		with open(self.logpath) as f:
			return f.read()


def test_flags(d):
	out = subprocess.run([d.bin, '--help'], capture_output=True, text=True, timeout=30)
	flags = ['--db', '--wire-socket', '--listen', '--port', '--http', '--tls-cert', '--tls-key',
	         '--admin-password-file', '--web-root', '--session-ttl', '--log-level']
	check(out.returncode == 0 and all(f in out.stdout for f in flags), '--help documents every flag')
	rc, text = d.run_once(['--http', '--listen', '192.0.2.1'])
	check(rc != 0 and 'loopback' in text, 'plain HTTP on a non-loopback address is refused')
	rc, text = d.run_once(['--tls-cert', '/nonexistent.crt'])
	check(rc != 0 and '--tls-key' in text, '--tls-cert without --tls-key is refused')
	rc, text = d.run_once(['--port', '70000'])
	check(rc != 0 and '--port' in text, 'an impossible port is refused')


def cert_of(path):
	with open(path, 'rb') as f:
		return x509.load_pem_x509_certificate(f.read())


def test_https_generated(d):
	d.start([], scheme='https')
	crt, key = os.path.join(d.dir, 'bitwd.crt'), os.path.join(d.dir, 'bitwd.key')
	check(os.path.exists(crt) and os.path.exists(key), 'first start made bitwd.crt and bitwd.key beside the database')
	check(stat.S_IMODE(os.stat(key).st_mode) == 0o600, 'the key file is mode 0600')
	check(f'listening on https://127.0.0.1:{d.port}' in d.log(), 'the log says where it listens, over https')
	c = cert_of(crt)
	san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
	ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
	check('127.0.0.1' in ips and 'localhost' in san.get_values_for_type(x509.DNSName),
	      f'SAN names the listen address and localhost ({ips})')
	check(isinstance(c.public_key(), ec.EllipticCurvePublicKey) and c.public_key().curve.name == 'secp256r1',
	      'the key is ECDSA P-256')
	days = (c.not_valid_after - c.not_valid_before).days
	check(c.version == x509.Version.v3 and 725 <= days <= 735, f'X.509 v3, valid about two years ({days} days)')
	# a client that trusts exactly this certificate, checking the host name, gets through
	r = session().get(d.url + f'{API}/health', verify=crt, timeout=10)
	check(r.status_code == 200 and r.json().get('status') == 'ok', 'HTTPS verifies against the generated certificate')
	check('max-age' in r.headers.get('Strict-Transport-Security', ''), 'HTTPS answers carry HSTS')
	with socket.create_connection(('127.0.0.1', d.port)) as raw:
		raw.sendall(b'GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n')
		raw.settimeout(5)
		try:
			reply = raw.recv(100)
		except (socket.timeout, OSError):
			reply = b''
	check(not reply.startswith(b'HTTP/1.1 200'), 'plain HTTP to the HTTPS port gets no answer')
	fp = c.fingerprint(hashes.SHA256())
	check(d.stop() == 0, 'SIGTERM: bitwd exits 0')
	d.start([], scheme='https')
	check(cert_of(crt).fingerprint(hashes.SHA256()) == fp, 'a restart keeps the same certificate')
	served = ssl.get_server_certificate(('127.0.0.1', d.port))
	check(x509.load_pem_x509_certificate(served.encode()).fingerprint(hashes.SHA256()) == fp,
	      'the served certificate is the stored one')
	d.stop()


def make_pair(dirpath, name):
	k = ec.generate_private_key(ec.SECP256R1())
	subj = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
	now = datetime.datetime.now(datetime.timezone.utc)
	c = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj).public_key(k.public_key())
	     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
	     .not_valid_after(now + datetime.timedelta(days=30))
	     .add_extension(x509.SubjectAlternativeName([x509.DNSName('localhost')]), critical=False)
	     .sign(k, hashes.SHA256()))
	cp, kp = os.path.join(dirpath, name + '.crt'), os.path.join(dirpath, name + '.key')
	with open(cp, 'wb') as f:
		f.write(c.public_bytes(serialization.Encoding.PEM))
	with open(os.open(kp, os.O_WRONLY | os.O_CREAT, 0o600), 'wb') as f:
		f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
		                        serialization.NoEncryption()))
	return cp, kp, c


def test_https_configured(d):
	cp, kp, c = make_pair(d.dir, 'mine')
	cp2, kp2, _ = make_pair(d.dir, 'other')
	rc, text = d.run_once(['--tls-cert', cp, '--tls-key', kp2])
	check(rc != 0 and 'does not belong' in text, 'a key that does not match the certificate is refused')
	d.start(['--tls-cert', cp, '--tls-key', kp], scheme='https')
	served = ssl.get_server_certificate(('127.0.0.1', d.port))
	check(x509.load_pem_x509_certificate(served.encode()).fingerprint(hashes.SHA256()) ==
	      c.fingerprint(hashes.SHA256()), '--tls-cert/--tls-key: that certificate is served')
	d.stop()


def problem(r, status, code):
	try:
		body = r.json()
	except ValueError:
		body = {}
	return (r.status_code == status and r.headers.get('Content-Type') == 'application/problem+json' and
	        body.get('code') == code and body.get('status') == status)


def test_http(d, pw):
	d.start(['--http'])
	s = session()
	r = s.get(d.url + f'{API}/health')
	h = r.json()
	check(r.status_code == 200 and h.get('status') == 'ok' and h.get('wire') == 'down' and
	      isinstance(h.get('version'), str) and isinstance(h.get('uptime_s'), int),
	      f'health is public: status ok, wire down without bitw-wire, version, uptime ({h})')
	check(r.headers.get('X-Content-Type-Options') == 'nosniff' and r.headers.get('Cache-Control') == 'no-store' and
	      r.headers.get('Content-Security-Policy') == "default-src 'none'", 'security headers on every answer')
	r = s.get(d.url + f'{API}/nothing')
	check(problem(r, 404, 'NOT_FOUND'), 'an unknown path: 404 problem+json')
	check(r.headers.get('X-Content-Type-Options') == 'nosniff', 'security headers on errors too')
	r = s.delete(d.url + f'{API}/health')
	check(r.status_code == 405 and r.headers.get('Allow') == 'GET', f'a known path, wrong method: 405, Allow: GET')
	r = s.patch(d.url + f'{API}/sas')
	allow = {m.strip() for m in r.headers.get('Allow', '').split(',')}
	check(r.status_code == 405 and allow == {'GET', 'POST', 'DELETE'}, f'405 lists every allowed method ({allow})')
	r = s.get(d.url + f'{API}/policies')
	check(problem(r, 401, 'UNAUTHORIZED'), 'a protected route without credentials: 401')
	login = d.url + f'{API}/login'
	r = s.post(login, data='{"user": "admin"}', headers={'Content-Type': 'text/plain'})
	check(problem(r, 415, 'UNSUPPORTED_MEDIA_TYPE'), 'a body that is not application/json: 415')
	r = s.post(login, data='{"user": "admin",\n "password": }', headers={'Content-Type': 'application/json'})
	detail = r.json().get('detail', '') if r.status_code == 400 else ''
	check(problem(r, 400, 'BAD_JSON') and 'line 2' in detail and 'column' in detail,
	      f'malformed JSON: 400 naming line and column ({detail})')
	r = s.post(login, data='{"user": "a", "user": "b"}', headers={'Content-Type': 'application/json'})
	check(problem(r, 400, 'BAD_JSON'), 'a duplicate key: 400')
	big = b'{"user": "' + b'a' * (1 << 20) + b'"}'
	r = s.post(login, data=big, headers={'Content-Type': 'application/json'})
	check(problem(r, 413, 'TOO_LARGE'), 'a body over 1 MiB (Content-Length): 413')
	r = s.post(login, data=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
	           headers={'Content-Type': 'application/json'})
	check(problem(r, 413, 'TOO_LARGE'), 'a chunked body over 1 MiB: 413')
	r = s.post(login, json={'user': 'admin', 'password': pw, 'extra': 1})
	check(problem(r, 422, 'UNKNOWN_FIELD') and r.json().get('field') == 'extra', 'an unknown field: 422 naming it')
	r = s.post(login, json={'user': 'admin', 'password': pw})
	check(r.status_code == 200, 'admin logs in')
	r = s.get(d.url + f'{API}/policies?limit=abc')
	check(problem(r, 400, 'BAD_FIELD') and r.json().get('field') == 'limit', 'a non-numeric query parameter: 400')
	r = s.get(d.url + f'{API}/policies/xyz')
	check(problem(r, 404, 'NOT_FOUND'), 'a non-numeric id in the path: 404')
	check(s.get(d.url + f'{API}/health').status_code == 200, 'still serving after all that')
	return s


def test_stream(d, s):
	t0 = time.time()
	r = s.get(d.url + f'{API}/events', stream=True, timeout=30)
	lines = r.iter_lines(decode_unicode=True)
	first = next(lines, None) if r.status_code == 200 else None
	check(r.status_code == 200 and r.headers.get('Content-Type', '').startswith('text/event-stream') and
	      time.time() - t0 < 5 and first is not None and first.startswith('retry:'),
	      f'the event stream opens at once with text/event-stream ({r.status_code}, {first!r})')
	# an idle stream gets a heartbeat comment every 15 s (which is also how a vanished client is noticed)
	t0, ping = time.time(), False
	for line in lines:
		if line.startswith(': ping') or time.time() - t0 > 20:
			ping = line.startswith(': ping')
			break
	check(ping and 13 <= time.time() - t0 <= 20, f'an idle stream gets ": ping" after about 15 s ({time.time() - t0:.1f} s)')
	r2 = s.get(d.url + f'{API}/events', stream=True, timeout=10)
	r2.close()   # a client that goes away
	time.sleep(0.3)
	check(s.get(d.url + f'{API}/health', timeout=5).status_code == 200, 'other requests are served while streams are open')
	r.close()
	# stop with a stream open: clean exit (the sanitizers would turn leaks into a non-zero exit)
	r3 = s.get(d.url + f'{API}/events', stream=True, timeout=10)
	rc = d.stop()
	r3.close()
	check(rc == 0 and 'Sanitizer' not in d.log(), f'SIGTERM with an open event stream: clean exit ({rc})')


def test_stream_reaped(d, pw):
	"""--sse-heartbeat: the comment comes at that pace, and a client that vanished is dropped without any event."""
	d.start(['--http', '--sse-heartbeat', '1'])
	s = session()
	check(s.post(d.url + f'{API}/login', json={'user': 'admin', 'password': pw}).status_code == 200, 'logged in again')
	streams = lambda: s.get(d.url + f'{API}/stats', timeout=5).json()['bitwd']['event_streams']
	r = s.get(d.url + f'{API}/events', stream=True, timeout=10)
	lines = r.iter_lines(decode_unicode=True)
	t0 = time.time()
	ping = next((line for line in lines if line.startswith(':') or time.time() - t0 > 5), '')
	check(ping.startswith(': ping') and time.time() - t0 < 3, f'with --sse-heartbeat 1 the comment comes within a second or two ({time.time() - t0:.1f} s)')
	check(streams() == 1, 'one event stream open')
	r.close()   # the client vanishes without a word
	gone = False
	for _ in range(50):
		if streams() == 0:
			gone = True
			break
		time.sleep(0.1)
	check(gone, 'the vanished client\'s stream is dropped within seconds, with no event published meanwhile')
	rc = d.stop()
	check(rc == 0 and 'Sanitizer' not in d.log(), f'clean exit after a reaped stream ({rc})')


def main():
	bitwd = sys.argv[1]
	work = tempfile.mkdtemp(prefix='bitw-core-')
	pw = 'core-test-' + os.urandom(8).hex()
	d = Daemon(bitwd, work, pw)
	try:
		test_flags(d)
		test_https_generated(d)
		test_https_configured(d)
		s = test_http(d, pw)
		test_stream(d, s)
		test_stream_reaped(d, pw)
	except Exception as e:
		check(False, f'unexpected {type(e).__name__}: {e}')
		if d.p:
			print('# ' + d.log()[-3000:].replace('\n', '\n# '))
	finally:
		if d.p:
			d.stop()
		shutil.rmtree(work, ignore_errors=True)
	print(f'1..{checks}')
	return 1 if failures else 0


if __name__ == '__main__':
	sys.exit(main())
