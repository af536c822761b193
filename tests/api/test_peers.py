# test_peers.py: IKE peers, policies keyed by a peer and the IKE SA list over REST, as a client sees them:
# the PSK is write-only, errors name the field, read-only users can list but not change, changes are audited.
#
# Usage: test_peers.py BITWD  (TAP; exit 0 pass, 1 fail). bitwd on 127.0.0.1 with a temporary database, no wire.

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import requests

API = '/api/v1'
ADMIN_PW = 'correct horse battery'
RO_PW = 'read only staple'
PSK = 'a secret shared by both ends'
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


class Client:
	def __init__(self, base, token):
		self.base = base
		self.s = requests.Session()
		self.s.trust_env = False
		self.s.headers['Authorization'] = 'Bearer ' + token

	def req(self, method, path, body=None):
		return self.s.request(method, self.base + API + path, json=body, timeout=10)


def token(base, user, password):
	s = requests.Session()
	s.trust_env = False
	r = s.post(base + API + '/login', json={'user': user, 'password': password}, timeout=10)
	r.raise_for_status()
	r = s.post(base + API + '/tokens', json={'name': 'tests'}, headers={'X-Bitw-CSRF': r.json()['csrf']}, timeout=10)
	r.raise_for_status()
	return r.json()['token']


def problem(r, status, field):
	try:
		j = r.json()
	except ValueError:
		j = {}
	return r.status_code == status and r.headers.get('content-type', '').startswith('application/problem+json') \
		and j.get('field') == field


def test_peers(admin, ro, log):
	base_peer = {'name': 'site-b', 'address': '198.51.100.10', 'auth': 'psk', 'psk': PSK,
	             'ike_proposals': 'aes256gcm16-prfsha384-curve25519', 'esp_proposals': 'aes256gcm16',
	             'dpd_action': 'clear', 'start': 'traffic'}
	r = admin.req('POST', '/peers', base_peer)
	check(r.status_code == 201, f'POST /peers creates a peer ({r.status_code} {r.text[:200]})')
	p = r.json() if r.status_code == 201 else {}
	check(p.get('has_psk') is True and 'psk' not in p, 'the reply says has_psk and never shows the PSK')
	check(p.get('start') == 'traffic' and p.get('dpd_action') == 'clear' and p.get('fragmentation') is True,
	      f'fields and defaults come back ({p})')
	pid = p.get('id')
	r = admin.req('GET', f'/peers/{pid}')
	check(r.status_code == 200 and PSK not in r.text, 'GET /peers/{id} has no PSK')
	r = admin.req('GET', '/peers')
	check(r.status_code == 200 and r.json().get('total') == 1 and PSK not in r.text, 'GET /peers lists it, no PSK')
	check(PSK not in log(), 'the PSK is not in the log')

	for body, field, status in (
			({**base_peer, 'name': 'x1', 'address': 'not-an-ip'}, 'address', 422),
			({**base_peer, 'name': 'x2', 'ike_proposals': 'aes999-sha256-modp2048'}, 'ike_proposals', 422),
			({**base_peer, 'name': 'x3', 'esp_proposals': 'aes256-nosuchalg'}, 'esp_proposals', 422),
			({k: v for k, v in base_peer.items() if k != 'psk'} | {'name': 'x4'}, 'psk', 422),
			({**base_peer, 'name': 'x5', 'start': 'sometimes'}, 'start', 422),
			({**base_peer, 'name': 'x6', 'auth': 'pubkey'}, 'certificate', 422),
			({**base_peer, 'name': 'x7', 'colour': 'blue'}, 'colour', 422),
			({**base_peer, 'name': 'x8', 'certificate': 'nope'}, 'certificate', 422),
			({**base_peer}, 'name', 409)):
		r = admin.req('POST', '/peers', body)
		check(problem(r, status, field), f'a bad {field}: {status} naming it ({r.status_code} {r.text[:160]})')

	r = admin.req('PUT', f'/peers/{pid}', {'dpd_interval': 10, 'start': 'never'})
	check(r.status_code == 200 and r.json().get('dpd_interval') == 10 and r.json().get('start') == 'never'
	      and r.json().get('has_psk') is True, f'PUT changes the given fields and keeps the PSK ({r.text[:200]})')

	r = ro.req('GET', '/peers')
	check(r.status_code == 200, 'a read-only user lists peers')
	r = ro.req('POST', '/peers', {**base_peer, 'name': 'ro'})
	check(r.status_code == 403, f'a read-only user cannot add one ({r.status_code})')
	r = ro.req('DELETE', f'/peers/{pid}')
	check(r.status_code == 403, 'nor delete one')
	r = ro.req('GET', '/ike-sas')
	check(r.status_code == 200 and r.json().get('items') == [], f'GET /ike-sas lists no SAs yet ({r.text[:200]})')
	r = ro.req('POST', '/ike-sas', {'peer': 'site-b'})
	check(r.status_code == 403, 'a read-only user cannot initiate')
	return pid


def test_policy_keying(admin, pid):
	pol = {'name': 'lan', 'action': 'protect', 'src': '192.0.2.0/25', 'dst': '203.0.113.0/24',
	       'peer': '198.51.100.10', 'ike_peer': 'site-b', 'esp_proposals': 'aes128gcm16-ecp256'}
	r = admin.req('POST', '/policies', pol)
	# No wire: stored, then 503 NOT_APPLIED; the row is there either way.
	check(r.status_code in (201, 503), f'a policy keyed by a peer is accepted ({r.status_code} {r.text[:200]})')
	r = admin.req('GET', '/policies')
	items = r.json().get('items', []) if r.status_code == 200 else []
	lan = next((p for p in items if p.get('name') == 'lan'), {})
	check(lan.get('ike_peer') == 'site-b' and lan.get('esp_proposals') == 'aes128gcm16-ecp256',
	      f'it reads back with ike_peer and esp_proposals ({lan})')
	r = admin.req('POST', '/policies', {**pol, 'name': 'lan2', 'ike_peer': 'nobody'})
	check(problem(r, 422, 'ike_peer'), f'an unknown ike_peer: 422 naming it ({r.text[:160]})')
	r = admin.req('POST', '/policies', {'name': 'bp', 'action': 'bypass', 'ike_peer': 'site-b'})
	check(problem(r, 422, 'ike_peer'), 'a bypass policy cannot be keyed by IKE')
	r = admin.req('DELETE', f'/peers/{pid}')
	check(problem(r, 409, 'peer'), f'a peer in use by a policy cannot be deleted ({r.status_code} {r.text[:160]})')
	if lan.get('id'):
		admin.req('DELETE', f'/policies/{lan["id"]}')
	r = admin.req('POST', '/ike-sas', {'peer': 'nobody'})
	check(problem(r, 422, 'peer'), 'initiating an unknown peer: 422 naming peer')
	r = admin.req('DELETE', '/ike-sas/12345')
	check(r.status_code == 404, f'terminating an unknown IKE SA: 404 ({r.status_code})')
	r = admin.req('DELETE', f'/peers/{pid}')
	check(r.status_code == 204, f'then it can be deleted ({r.status_code} {r.text[:160]})')
	r = admin.req('GET', '/audit')
	actions = [a.get('action') for a in r.json().get('items', [])] if r.status_code == 200 else []
	check({'peer.create', 'peer.update', 'peer.delete'} <= set(actions), f'the changes are audited ({actions[:8]})')


def main():
	bitwd = sys.argv[1]
	d = tempfile.mkdtemp(prefix='bitw-peers-')
	pwfile = os.path.join(d, 'admin.pw')
	with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
		f.write(ADMIN_PW + '\n')
	port = free_port()
	base = f'http://127.0.0.1:{port}'
	logpath = os.path.join(d, 'bitwd.log')
	logf = open(logpath, 'w')
	p = subprocess.Popen([bitwd, '--http', '--port', str(port), '--db', os.path.join(d, 'bitw.db'),
	                      '--admin-password-file', pwfile, '--wire-socket', os.path.join(d, 'none.sock'),
	                      '--log-level', 'debug'], stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
	try:
		for _ in range(300):
			try:
				if requests.get(base + API + '/health', timeout=2).status_code == 200:
					break
			except requests.RequestException:
				time.sleep(0.1)
		admin = Client(base, token(base, 'admin', ADMIN_PW))
		admin.req('POST', '/users', {'name': 'viewer', 'password': RO_PW, 'role': 'readonly'})
		ro = Client(base, token(base, 'viewer', RO_PW))
		pid = test_peers(admin, ro, lambda: open(logpath).read())
		test_policy_keying(admin, pid)
		check(PSK not in open(logpath).read(), 'the PSK never reached the log')
	finally:
		p.terminate()
		try:
			p.wait(20)
		except subprocess.TimeoutExpired:
			p.kill()
		logf.close()
		if failures:
			print('# bitwd log tail:\n# ' + open(logpath).read()[-3000:].replace('\n', '\n# '))
		shutil.rmtree(d, ignore_errors=True)
	print(f'1..{checks}')
	return 1 if failures else 0


if __name__ == '__main__':
	sys.exit(main())
