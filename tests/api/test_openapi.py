# test_openapi.py: every route bitwd serves has its entry in the OpenAPI document, and bitwd serves that document.
#
# Usage: test_openapi.py BITWD OPENAPI_JSON  (TAP; exit 0 pass, 1 fail)
# The route list comes from the binary itself (bitwd --list-routes), so a route added to routes.c without
# an entry in a fragment of mgmt/openapi/ fails here.

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

checks = failures = 0
METHODS = {'get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'}


def check(cond, what):
	global checks, failures
	checks += 1
	print(('ok' if cond else 'not ok'), checks, '-', what, flush=True)
	if not cond:
		failures += 1
	return cond


def routes(bitwd):
	out = subprocess.run([bitwd, '--list-routes'], capture_output=True, text=True, timeout=30)
	check(out.returncode == 0, 'bitwd --list-routes runs')
	return [tuple(line.split(' ', 1)) for line in out.stdout.splitlines() if line.strip()]


def test_document(doc, rts):
	check(str(doc.get('openapi', '')).startswith('3.0.'), f'openapi is 3.0.x ({doc.get("openapi")})')
	check(isinstance(doc.get('info', {}).get('title'), str) and 'version' in doc.get('info', {}),
	      'info has a title and a version')
	schemes = doc.get('components', {}).get('securitySchemes', {})
	check({'bearer', 'cookie'} <= set(schemes), 'security schemes bearer and cookie are defined')
	check('Problem' in doc.get('components', {}).get('schemas', {}), 'the Problem schema is defined')
	check(len(rts) > 10, f'bitwd lists its routes ({len(rts)})')
	paths = doc.get('paths', {})
	missing = [f'{m} {p}' for m, p in rts if m.lower() not in paths.get(p, {})]
	check(not missing, 'every route has a path+method entry' + (f'; missing: {", ".join(missing)}' if missing else ''))
	served = {(m.lower(), p) for m, p in rts}
	extra = [f'{m.upper()} {p}' for p, item in paths.items() for m in item if m in METHODS and (m, p) not in served]
	check(not extra, 'the document describes no route bitwd does not serve' + (f': {", ".join(extra)}' if extra else ''))
	ops = [(p, m, op) for p, item in paths.items() for m, op in item.items() if m in METHODS]
	no_resp = [f'{m.upper()} {p}' for p, m, op in ops if not op.get('responses')]
	check(not no_resp, 'every operation lists its responses' + (f'; not: {", ".join(no_resp)}' if no_resp else ''))
	ids = [op.get('operationId') for _, _, op in ops if op.get('operationId')]
	check(len(ids) == len(set(ids)), 'operationIds are unique')
	undeclared = []
	for p, m, op in ops:
		declared = {q.get('name') for q in paths[p].get('parameters', []) + op.get('parameters', [])
		            if q.get('in') == 'path'}
		for name in re.findall(r'\{(\w+)\}', p):
			if name not in declared:
				undeclared.append(f'{m.upper()} {p} {{{name}}}')
	check(not undeclared, 'every path parameter is declared' + (f'; not: {", ".join(undeclared)}' if undeclared else ''))
	public = [f'{m.upper()} {p}' for p, m, op in ops if op.get('security') == []]
	check(set(public) <= {'GET /api/v1/health', 'POST /api/v1/login'},
	      f'only health and login are documented as public ({", ".join(public)})')


def free_port():
	with socket.socket() as s:
		s.bind(('127.0.0.1', 0))
		return s.getsockname()[1]


def test_served(bitwd, doc):
	"""bitwd serves the same document at /api/v1/openapi.json, to an authenticated client only."""
	import requests
	work = tempfile.mkdtemp(prefix='bitw-openapi-')
	pw = 'openapi-test-' + os.urandom(8).hex()
	pwfile = os.path.join(work, 'admin.pw')
	with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
		f.write(pw + '\n')
	port = free_port()
	url = f'http://127.0.0.1:{port}/api/v1'
	p = subprocess.Popen([bitwd, '--db', os.path.join(work, 'bitw.db'), '--http', '--port', str(port),
	                      '--wire-socket', os.path.join(work, 'no-wire.sock'), '--admin-password-file', pwfile],
	                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
	s = requests.Session()
	s.trust_env = False
	try:
		for _ in range(300):
			try:
				if s.get(url + '/health', timeout=2).status_code == 200:
					break
			except requests.RequestException:
				time.sleep(0.1)
		r = s.get(url + '/openapi.json', timeout=10)
		check(r.status_code == 401, f'without credentials the document is refused ({r.status_code})')
		r = s.post(url + '/login', json={'user': 'admin', 'password': pw}, timeout=30)
		check(r.status_code == 200, f'admin logs in ({r.status_code})')
		r = s.get(url + '/openapi.json', timeout=10)
		check(r.status_code == 200 and r.headers.get('Content-Type', '').startswith('application/json'),
		      f'GET /api/v1/openapi.json answers JSON ({r.status_code})')
		check(r.status_code == 200 and r.json() == doc, 'the served document is the merged one')
	finally:
		p.terminate()
		try:
			p.wait(10)
		except subprocess.TimeoutExpired:
			p.kill()
			p.wait()
		shutil.rmtree(work, ignore_errors=True)


def main():
	bitwd, path = sys.argv[1], sys.argv[2]
	with open(path) as f:
		text = f.read()
	try:
		doc = json.loads(text)
		check(True, 'the merged openapi.json is valid JSON')
	except ValueError as e:
		check(False, f'the merged openapi.json is valid JSON: {e}')
		doc = {}
	test_document(doc, routes(bitwd))
	test_served(bitwd, doc)
	if len(sys.argv) > 3:
		# docs/openapi.json is the checked-in copy for readers; it must be what the fragments make.
		with open(sys.argv[3]) as f:
			checked_in = json.load(f)
		check(checked_in == doc, 'docs/openapi.json equals the document merged from mgmt/openapi/ '
		      '(regenerate: cp build/mgmt/openapi.json docs/openapi.json)')
	print(f'1..{checks}')
	return 1 if failures else 0


if __name__ == '__main__':
	sys.exit(main())
