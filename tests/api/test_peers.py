# test_peers.py: IKE peers, policies keyed by a peer and the IKE SA list over REST, as a client sees them:
# the PSK is write-only, errors name the field, read-only users can list but not change, changes are audited.
#
# Usage: test_peers.py BITWD [BITWCTL]  (TAP; exit 0 pass, 1 fail). bitwd on 127.0.0.1 with a temporary database, no wire.

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import datetime

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

API = '/api/v1'
ADMIN_PW = 'correct horse battery'
RO_PW = 'read only staple'
PSK = 'a secret shared by both ends'
checks = failures = 0


def check(cond, what):
	global checks, failures
	checks += 1
	print(('ok' if cond else 'not ok'), checks, '-', ' '.join(str(what).split()), flush=True)
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
		and j.get('field') == field and not str(j.get('detail', '')).startswith(f'{field}:')  # README: not repeated


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
	check(r.json().get('dpd_timeout') == 10, f'dpd_timeout defaults to the 10 s it always was ({r.text[:300]})')
	r = admin.req('PUT', f'/peers/{pid}', {'dpd_timeout': 4})
	check(r.status_code == 200 and r.json().get('dpd_timeout') == 4, f'a peer\'s own dpd_timeout is kept ({r.text[:200]})')
	r = admin.req('PUT', f'/peers/{pid}', {'dpd_timeout': 0})
	check(problem(r, 422, 'dpd_timeout'), f'dpd_timeout 0: 422 naming it ({r.status_code} {r.text[:160]})')

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
	admin.req('PUT', '/ports/red', {'interface': 'red0'})
	admin.req('PUT', '/ports/black', {'interface': 'black0', 'addresses': ['192.0.2.10/24']})
	doc = admin.req('GET', '/config').json()
	r = admin.req('PUT', '/config', doc)
	check(r.status_code in (200, 503), f'the exported configuration imports again ({r.status_code} {r.text[:160]})')
	again = next((p for p in admin.req('GET', '/policies').json().get('items', []) if p.get('name') == 'lan'), {})
	check(again.get('ike_peer') == 'site-b' and again.get('esp_proposals') == 'aes128gcm16-ecp256',
	      f'and the policy is still keyed by its peer ({again})')
	lan = again or lan
	r = admin.req('POST', '/policies', {**pol, 'name': 'lan2', 'ike_peer': 'nobody'})
	check(problem(r, 422, 'ike_peer'), f'an unknown ike_peer: 422 naming it ({r.text[:160]})')
	r = admin.req('POST', '/policies', {'name': 'bp', 'action': 'bypass', 'ike_peer': 'site-b'})
	check(problem(r, 422, 'ike_peer'), 'a bypass policy cannot be keyed by IKE')
	r = admin.req('POST', '/policies', {**pol, 'name': 'lan3', 'src': '192.0.2.128/26',
	                                    'esp_proposals': 'aes128ccm16,aes256ctr-aesxcbc,aes128gmac'})
	check(r.status_code in (201, 503), f'CCM, CTR with XCBC and GMAC child proposals ({r.status_code} {r.text[:160]})')
	legacy = {**pol, 'name': 'lan4', 'src': '192.0.2.192/26', 'esp_proposals': '3des-md5'}
	r = admin.req('POST', '/policies', legacy)
	check(problem(r, 422, 'esp_proposals') and 'legacy' in r.text,
	      f'3DES/MD5 without options.legacy_algorithms: 422 naming esp_proposals ({r.text[:200]})')
	r = admin.req('PUT', '/options', {'legacy_algorithms': True})
	check(r.status_code in (200, 503), f'legacy algorithms enabled ({r.status_code})')
	r = admin.req('POST', '/policies', legacy)
	check(r.status_code in (201, 503), f'then 3DES/MD5 child proposals are taken ({r.status_code} {r.text[:160]})')
	admin.req('PUT', '/options', {})
	for p in admin.req('GET', '/policies').json().get('items', []):
		if p.get('name') in ('lan3', 'lan4'):
			admin.req('DELETE', f'/policies/{p["id"]}')
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


def test_transport_hosts(admin, log):
	"""A peer without a local address speaks IKE as its first transport policy's host; a second host's policy
	cannot move it (it is not keyed, and the log says why)."""
	r = admin.req('POST', '/peers', {'name': 'hosts', 'address': '198.51.100.20', 'auth': 'psk', 'psk': PSK,
	                                 'start': 'never'})
	check(r.status_code == 201, f'a peer without a local address ({r.status_code} {r.text[:160]})')
	peer = r.json() if r.status_code == 201 else {}
	for name, host in (('host5', '192.0.2.5'), ('host6', '192.0.2.6')):
		r = admin.req('POST', '/policies', {'name': name, 'action': 'protect', 'mode': 'transport', 'src': host,
		                                    'dst': '198.51.100.20', 'peer': '198.51.100.20', 'ike_peer': 'hosts'})
		check(r.status_code in (201, 503), f'transport policy {name} for host {host} ({r.status_code} {r.text[:160]})')
	ids = [p['id'] for p in admin.req('GET', '/policies').json().get('items', []) if p.get('name') in ('host5', 'host6')]
	r = admin.req('POST', '/ike-sas', {'peer': 'hosts'})
	check(r.status_code == 202, f'initiating the peer ({r.status_code} {r.text[:160]})')
	sas = [s for s in admin.req('GET', '/ike-sas').json().get('items', []) if s.get('peer') == 'hosts']
	check(len(sas) == 1 and sas[0].get('local') == '192.0.2.5',
	      f'its IKE SA speaks from the first policy\'s host, 192.0.2.5 ({[s.get("local") for s in sas]})')
	check('transport policy host6: peer hosts speaks IKE for policy host5\'s host already' in log(),
	      'the log says why host6 is not keyed')
	for sa in sas:
		admin.req('DELETE', f'/ike-sas/{sa["id"]}')
	for i in ids:
		admin.req('DELETE', f'/policies/{i}')
	if peer.get('id'):
		admin.req('DELETE', f'/peers/{peer["id"]}')
	# With a local address, a host other than it is refused for that reason, even after a policy whose host it is.
	r = admin.req('POST', '/peers', {'name': 'hostsl', 'address': '198.51.100.21', 'local': '192.0.2.7',
	                                 'auth': 'psk', 'psk': PSK, 'start': 'never'})
	check(r.status_code == 201, f'a peer with local 192.0.2.7 ({r.status_code} {r.text[:160]})')
	peer = r.json() if r.status_code == 201 else {}
	for name, host in (('host7', '192.0.2.7'), ('host8', '192.0.2.8')):
		r = admin.req('POST', '/policies', {'name': name, 'action': 'protect', 'mode': 'transport', 'src': host,
		                                    'dst': '198.51.100.21', 'peer': '198.51.100.21', 'ike_peer': 'hostsl'})
		check(r.status_code in (201, 503), f'transport policy {name} for host {host} ({r.status_code} {r.text[:160]})')
	check('transport policy host8: peer hostsl must have the host\'s address as local' in log() and
	      'peer hostsl speaks IKE for' not in log(), 'the log names the configured local as why host8 is not keyed')
	for p in admin.req('GET', '/policies').json().get('items', []):
		if p.get('name') in ('host7', 'host8'):
			admin.req('DELETE', f'/policies/{p["id"]}')
	if peer.get('id'):
		admin.req('DELETE', f'/peers/{peer["id"]}')


def make_cert(cn, issuer=None, ca=False, days=(-1, 30)):
	"""(cert PEM, key PEM): self-signed when issuer is None, else signed by issuer's (cert, key)."""
	key = ec.generate_private_key(ec.SECP256R1())
	name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'bitw tests')])
	now = datetime.datetime.now(datetime.timezone.utc)
	b = (x509.CertificateBuilder().subject_name(name).public_key(key.public_key())
	     .serial_number(x509.random_serial_number())
	     .not_valid_before(now + datetime.timedelta(days=days[0])).not_valid_after(now + datetime.timedelta(days=days[1]))
	     .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
	if issuer:
		b = b.issuer_name(issuer[0].subject)
		cert = b.sign(issuer[1], hashes.SHA256())
	else:
		cert = b.issuer_name(name).sign(key, hashes.SHA256())
	key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
	                            serialization.NoEncryption()).decode()
	return cert, key, cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def test_certificates(admin, ro, log):
	ca, ca_key, ca_pem, _ = make_cert('test CA', ca=True)
	_, _, gw_pem, gw_key = make_cert('gw.example.org', issuer=(ca, ca_key))
	_, _, old_pem, _ = make_cert('old.example.org', issuer=(ca, ca_key), days=(-30, -1))
	_, _, stray_pem, _ = make_cert('stray.example.org')
	_, _, _, other_key = make_cert('other')
	r = admin.req('POST', '/certificates', {'name': 'ca', 'pem': ca_pem})
	check(r.status_code == 201 and r.json().get('is_ca') is True and r.json().get('has_key') is False
	      and 'test CA' in r.json().get('subject', ''), f'POST /certificates stores a CA ({r.text[:200]})')
	r = admin.req('POST', '/certificates', {'name': 'gw', 'pem': gw_pem, 'key': gw_key})
	gw = r.json() if r.status_code == 201 else {}
	check(gw.get('has_key') is True and gw.get('is_ca') is False and gw.get('not_after', 0) > time.time(),
	      f'our certificate with its key ({r.text[:200]})')
	r = admin.req('GET', f'/certificates/{gw.get("id")}')
	check(r.status_code == 200 and 'BEGIN CERTIFICATE' in r.json().get('pem', '') and 'PRIVATE' not in r.text,
	      'GET shows the PEM and never the key')
	r = admin.req('GET', '/certificates')
	check(r.status_code == 200 and r.json().get('total') == 2 and 'PRIVATE' not in r.text, 'the list has both, no key')
	check('PRIVATE KEY' not in log(), 'the key is not in the log')
	r = admin.req('POST', '/certificates', {'name': 'bad', 'pem': gw_pem, 'key': other_key})
	check(problem(r, 422, 'key'), f'a key of another certificate: 422 naming key ({r.text[:160]})')
	r = admin.req('POST', '/certificates', {'name': 'bad', 'pem': 'hello'})
	check(problem(r, 422, 'pem'), 'not a certificate: 422 naming pem')
	r = ro.req('POST', '/certificates', {'name': 'ro', 'pem': ca_pem})
	check(r.status_code == 403, 'a read-only user cannot add one')
	r = ro.req('POST', f'/certificates/{gw.get("id")}/verify')
	check(r.status_code == 200 and r.json().get('valid') is True, f'verify: signed by the stored CA ({r.text[:200]})')
	for name, pem, code in (('old', old_pem, 'IKE_E_CERT_EXPIRED'), ('stray', stray_pem, 'IKE_E_CERT_UNKNOWN_CA')):
		c = admin.req('POST', '/certificates', {'name': name, 'pem': pem}).json()
		r = admin.req('POST', f'/certificates/{c.get("id")}/verify')
		check(r.status_code == 200 and r.json().get('valid') is False and r.json().get('code') == code,
		      f'verify {name}: {code} ({r.text[:200]})')
	r = admin.req('POST', '/peers', {'name': 'x509', 'address': '198.51.100.20', 'auth': 'pubkey',
	                                 'certificate': 'gw', 'ca': 'ca', 'local_id': 'gw.example.org'})
	check(r.status_code == 201 and r.json().get('certificate') == 'gw' and r.json().get('ca') == 'ca',
	      f'a pubkey peer names its certificate and CA ({r.text[:200]})')
	r = admin.req('POST', '/peers', {'name': 'x509b', 'address': '198.51.100.21', 'auth': 'pubkey',
	                                 'certificate': 'ca'})
	check(problem(r, 422, 'certificate'), 'our certificate must come with a key')
	r = admin.req('DELETE', f'/certificates/{gw.get("id")}')
	check(problem(r, 409, 'certificate'), f'a certificate in use cannot be deleted ({r.text[:160]})')


def test_bitwctl(bitwctl, base, tok, d):
	tokf = os.path.join(d, 'token')
	pskf = os.path.join(d, 'psk')
	with open(os.open(tokf, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
		f.write(tok + '\n')
	with open(os.open(pskf, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
		f.write(PSK + '\n')

	def ctl(*args):
		return subprocess.run([bitwctl, '--url', base, '--token-file', tokf] + list(args), capture_output=True,
		                      text=True, timeout=30)

	r = ctl('peer', 'add', 'cli', '--address', '198.51.100.30', '--psk-file', pskf, '--start', 'never',
	        '--ike-proposals', 'aes256-sha256-modp3072', '--force-encap', 'yes')
	check(r.returncode == 0 and PSK not in r.stdout + r.stderr, f'bitwctl peer add ({r.returncode} {r.stderr[:200]})')
	r = ctl('peer', 'list')
	check(r.returncode == 0 and 'cli' in r.stdout and 'aes256-sha256-modp3072' in r.stdout and PSK not in r.stdout,
	      f'bitwctl peer list shows it ({r.stdout[:300]})')
	r = ctl('peer', 'set', 'cli', '--dpd-interval', '5')
	check(r.returncode == 0, f'bitwctl peer set ({r.stderr[:200]})')
	r = ctl('--json', 'peer', 'show', 'cli')
	check(r.returncode == 0 and '"dpd_interval": 5' in r.stdout and '"force_encap": true' in r.stdout,
	      f'bitwctl peer show has the change ({r.stdout[:300]})')
	r = ctl('peer', 'add', 'cli2', '--address', 'nowhere', '--psk-file', pskf)
	check(r.returncode == 1 and 'address' in r.stderr, f'a refused peer: exit 1 naming the field ({r.stderr[:200]})')
	r = ctl('ike', 'list')
	check(r.returncode == 0 and 'STATE' in r.stdout, 'bitwctl ike list prints a table')
	r = ctl('ike', 'terminate', '999')
	check(r.returncode == 1, 'bitwctl ike terminate of an unknown SA: exit 1')
	r = ctl('cert', 'list')
	check(r.returncode == 0 and 'gw' in r.stdout and 'PRIVATE' not in r.stdout, 'bitwctl cert list')
	r = ctl('cert', 'verify', 'gw')
	check(r.returncode == 0, f'bitwctl cert verify of a good chain: exit 0 ({r.stdout[:200]})')
	r = ctl('cert', 'verify', 'old')
	check(r.returncode == 1 and 'EXPIRED' in r.stdout, f'of an expired one: exit 1 saying so ({r.stdout[:200]})')
	r = ctl('peer', 'del', 'cli')
	check(r.returncode == 0, 'bitwctl peer del')


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
		admin_tok = token(base, 'admin', ADMIN_PW)
		admin = Client(base, admin_tok)
		admin.req('POST', '/users', {'name': 'viewer', 'password': RO_PW, 'role': 'readonly'})
		ro = Client(base, token(base, 'viewer', RO_PW))
		pid = test_peers(admin, ro, lambda: open(logpath).read())
		test_policy_keying(admin, pid)
		test_transport_hosts(admin, lambda: open(logpath).read())
		test_certificates(admin, ro, lambda: open(logpath).read())
		if len(sys.argv) > 2:
			test_bitwctl(sys.argv[2], base, admin_tok, d)
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
