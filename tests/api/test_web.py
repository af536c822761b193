# test_web.py: bitwd serving the web UI's files: types, security and cache headers, ETag, SPA fallback, 404s,
# no way out of --web-root (.., %2e%2e, hidden files, symlinks), the API untouched, and the real web/ loadable.
#
# Usage: test_web.py BITWD WEBDIR  (TAP). Uses only 127.0.0.1 and temporary directories.

import html.parser
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import requests

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
PNG = b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01'   # NULs inside: served byte for byte
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


class Daemon:
	def __init__(self, binary, work, web_root):
		self.port = free_port()
		self.url = f'http://127.0.0.1:{self.port}'
		pw = os.path.join(work, 'admin.pw')
		with open(os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
			f.write('web-test-' + os.urandom(8).hex() + '\n')
		self.logpath = os.path.join(work, 'bitwd.log')
		self.logf = open(self.logpath, 'w')
		self.p = subprocess.Popen([binary, '--http', '--port', str(self.port), '--db', os.path.join(work, 'bitw.db'),
		                           '--admin-password-file', pw, '--wire-socket', os.path.join(work, 'none.sock'),
		                           '--web-root', web_root], stdin=subprocess.DEVNULL, stdout=self.logf,
		                          stderr=subprocess.STDOUT)
		self.s = requests.Session()
		self.s.trust_env = False
		for _ in range(300):
			if self.p.poll() is not None:
				raise RuntimeError(f'bitwd exited {self.p.returncode}: {self.log()[-2000:]}')
			try:
				if self.s.get(self.url + '/api/v1/health', timeout=2).status_code == 200:
					return
			except requests.RequestException:
				time.sleep(0.1)
		raise RuntimeError('bitwd did not answer /api/v1/health')

	def get(self, path, **kw):
		return self.s.get(self.url + path, timeout=10, **kw)

	def raw(self, path, method='GET'):
		"""The path exactly as given: requests would normalise the dot segments away."""
		c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)
		c.putrequest(method, path, skip_accept_encoding=True)
		c.endheaders()
		r = c.getresponse()
		body = r.read()
		c.close()
		return r.status, body

	def stop(self):
		self.p.terminate()
		try:
			rc = self.p.wait(20)
		except subprocess.TimeoutExpired:
			self.p.kill()
			rc = self.p.wait()
		self.logf.close()
		return rc

	def log(self):
		with open(self.logpath) as f:
			return f.read()


def make_root(work):
	root = os.path.join(work, 'web')
	os.makedirs(os.path.join(root, 'js'))
	files = {
		'index.html': b'<!doctype html><title>bitw</title><script type="module" src="js/app.js"></script>',
		'js/app.js': b'export const x = 1;\n',
		'app.css': b'body { margin: 0 }\n',
		'logo.png': PNG,
		'.hidden': b'hidden',
	}
	for name, data in files.items():
		with open(os.path.join(root, name), 'wb') as f:
			f.write(data)
	with open(os.path.join(work, 'secret.txt'), 'w') as f:
		f.write('SECRET-OUTSIDE-THE-ROOT\n')
	os.symlink(os.path.join(work, 'secret.txt'), os.path.join(root, 'escape.txt'))
	os.symlink(os.path.join(root, 'app.css'), os.path.join(root, 'alias.css'))
	return root


def test_files(d):
	r = d.get('/')
	check(r.status_code == 200 and r.headers.get('Content-Type') == 'text/html; charset=utf-8' and
	      b'<title>bitw</title>' in r.content, 'GET / is index.html')
	check(r.headers.get('Content-Security-Policy') == CSP, 'the UI\'s strict Content-Security-Policy')
	check(r.headers.get('X-Content-Type-Options') == 'nosniff' and r.headers.get('X-Frame-Options') == 'DENY',
	      'nosniff and no framing')
	etag = r.headers.get('ETag', '')
	check(r.headers.get('Cache-Control') == 'no-cache' and etag.startswith('"'), 'cached but revalidated (ETag)')
	r = d.get('/', headers={'If-None-Match': etag})
	check(r.status_code == 304 and r.content == b'', 'If-None-Match with the ETag: 304, no body')
	r = d.get('/js/app.js')
	check(r.status_code == 200 and r.headers.get('Content-Type') == 'text/javascript; charset=utf-8',
	      'a module in a subfolder: text/javascript')
	r = d.get('/app.css')
	check(r.status_code == 200 and r.headers.get('Content-Type') == 'text/css; charset=utf-8', 'CSS: text/css')
	r = d.get('/logo.png')
	check(r.status_code == 200 and r.headers.get('Content-Type') == 'image/png' and r.content == PNG,
	      'a binary file byte for byte (NULs included)')
	r = d.get('/alias.css')
	check(r.status_code == 200 and r.content == b'body { margin: 0 }\n', 'a symlink inside the root is followed')
	status, body = d.raw('/', 'HEAD')
	check(status == 200 and body == b'', 'HEAD /: 200 without a body')


def test_refusals(d):
	r = d.get('/missing.js')
	check(r.status_code == 404 and r.headers.get('Content-Type') == 'application/problem+json',
	      'a missing file: 404 problem+json')
	r = d.get('/policies')
	check(r.status_code == 200 and b'<title>bitw</title>' in r.content, 'a client-side route gets index.html')
	for path in ('/../secret.txt', '/js/../../secret.txt', '/%2e%2e/secret.txt', '/js/%2E%2E/%2e%2e/secret.txt',
	             '/..%2fsecret.txt', '/./index.html', '//etc/passwd'):
		status, body = d.raw(path)
		check(status == 404 and b'SECRET' not in body and b'root:' not in body, f'{path}: 404, nothing served')
	status, body = d.raw('/escape.txt')
	check(status == 404 and b'SECRET' not in body, 'a symlink leading out of the root: 404')
	status, body = d.raw('/.hidden')
	check(status == 404 and b'hidden' != body, 'a hidden file: 404')
	r = d.s.post(d.url + '/', timeout=10)
	check(r.status_code in (404, 405) and r.headers.get('Content-Security-Policy') == "default-src 'none'",
	      f'POST / is not a file read ({r.status_code})')
	r = d.get('/api/v1/nothing')
	check(r.status_code == 404 and r.headers.get('Content-Security-Policy') == "default-src 'none'" and
	      r.headers.get('Cache-Control') == 'no-store', 'the API keeps its own 404 and headers')
	r = d.get('/metrics')
	check(r.status_code == 401, 'GET /metrics is still the API (401 without credentials)')


class Refs(html.parser.HTMLParser):
	def __init__(self):
		super().__init__()
		self.refs, self.inline, self.styled = [], 0, 0

	def handle_starttag(self, tag, attrs):
		a = dict(attrs)
		if tag == 'script':
			if a.get('src'):
				self.refs.append(a['src'])
			else:
				self.inline += 1
		if tag == 'link' and a.get('href'):
			self.refs.append(a['href'])
		if 'style' in a or any(k.startswith('on') for k in a):
			self.styled += 1


def test_real_ui(d):
	r = d.get('/')
	p = Refs()
	p.feed(r.text)
	check(r.status_code == 200 and p.refs, f'web/index.html is served and loads files ({p.refs})')
	check(p.inline == 0 and p.styled == 0, 'no inline script, style attribute or on* handler (the CSP forbids them)')
	check(all('//' not in ref for ref in p.refs), 'nothing loaded from another origin')
	bad = [ref for ref in p.refs if d.get('/' + ref.lstrip('/')).status_code != 200]
	check(not bad, f'every file index.html names is served ({bad})')


def main():
	bitwd, webdir = sys.argv[1], sys.argv[2]
	work = tempfile.mkdtemp(prefix='bitw-web-')
	daemons = []
	try:
		os.mkdir(os.path.join(work, 'a'))
		d = Daemon(bitwd, os.path.join(work, 'a'), make_root(os.path.join(work, 'a')))
		daemons.append(d)
		test_files(d)
		test_refusals(d)
		check(d.stop() == 0 and 'Sanitizer' not in d.log(), 'a clean stop')
		daemons.pop()
		os.mkdir(os.path.join(work, 'b'))
		d = Daemon(bitwd, os.path.join(work, 'b'), webdir)
		daemons.append(d)
		test_real_ui(d)
		check(d.stop() == 0 and 'Sanitizer' not in d.log(), 'a clean stop')
		daemons.pop()
		os.mkdir(os.path.join(work, 'c'))
		d = Daemon(bitwd, os.path.join(work, 'c'), os.path.join(work, 'no-such-dir'))
		daemons.append(d)
		check(d.get('/').status_code == 404 and d.get('/api/v1/health').status_code == 200 and
		      'serving the API only' in d.log(), 'a missing web root: the API only, and the log says so')
		d.stop()
		daemons.pop()
	except Exception as e:
		check(False, f'unexpected {type(e).__name__}: {e}')
	finally:
		for d in daemons:
			print('# ' + d.log()[-3000:].replace('\n', '\n# '))
			d.stop()
		shutil.rmtree(work, ignore_errors=True)
	print(f'1..{checks}')
	return 1 if failures else 0


if __name__ == '__main__':
	sys.exit(main())
