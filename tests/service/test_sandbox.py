# test_sandbox.py: bitw-wire and bitwd started as root with --user nobody really run as nobody, keep only the
# capabilities they need, and bitw-wire's syscall filter refuses what its loops never call, while both still work.
#
# Usage: test_sandbox.py BITW_WIRE BITW_WIRECTL BITWD  (TAP; needs root; namespaces and temporary directories of
# its own, removed even on failure; addresses from the documentation ranges via tests/e2e/bitwtopo.py).

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'e2e'))
import bitwtopo  # noqa: E402

import requests  # noqa: E402

NET_RAW_ADMIN = 0x3000  # CAP_NET_ADMIN (12) | CAP_NET_RAW (13)
checks = failures = 0


def check(cond, what):
	global checks, failures
	checks += 1
	print(('ok' if cond else 'not ok'), checks, '-', ' '.join(what.split()), flush=True)  # one TAP line
	if not cond:
		failures += 1
	return cond


def status_of(path):
	fields = {}
	with open(path) as f:
		for line in f:
			k, _, v = line.partition(':')
			fields[k] = v.split()
	return fields


def ids_are(st, uid, gid):
	return st['Uid'] == [str(uid)] * 4 and st['Gid'] == [str(gid)] * 4


def caps(st, name):
	return int(st[name][0], 16)


def check_wire_process(pid, who, nobody):
	st = status_of(f'/proc/{pid}/status')
	check(ids_are(st, nobody.pw_uid, nobody.pw_gid), f'{who}: real, effective, saved and fs uid/gid are nobody')
	check(st.get('Groups', []) == [str(nobody.pw_gid)], f'{who}: no supplementary groups but nobody\'s ({st.get("Groups")})')
	check(caps(st, 'CapEff') == NET_RAW_ADMIN and caps(st, 'CapPrm') == NET_RAW_ADMIN,
	      f'{who}: effective and permitted capabilities exactly NET_RAW|NET_ADMIN ({st["CapEff"]}, {st["CapPrm"]})')
	check(caps(st, 'CapInh') == 0 and caps(st, 'CapAmb') == 0 and caps(st, 'CapBnd') == NET_RAW_ADMIN,
	      f'{who}: nothing inheritable or ambient, bounding set NET_RAW|NET_ADMIN')
	check(st['NoNewPrivs'] == ['1'], f'{who}: no_new_privs')
	check(st['Seccomp'] == ['2'], f'{who}: a seccomp filter is installed (Seccomp 2)')
	tasks = os.listdir(f'/proc/{pid}/task')
	filtered = [t for t in tasks if status_of(f'/proc/{pid}/task/{t}/status')['Seccomp'] == ['2']
	            and caps(status_of(f'/proc/{pid}/task/{t}/status'), 'CapEff') == NET_RAW_ADMIN]
	check(len(tasks) >= 3 and len(filtered) == len(tasks),
	      f'{who}: every thread (control and data, {len(tasks)}) has the filter and only those capabilities')


def offloads(topo, node, iface):
	out = topo.run(node, ['ethtool', '-k', iface]).stdout
	return {line.split(':')[1].split()[0] for line in out.splitlines()
	        if line.startswith(('generic-receive-offload:', 'generic-segmentation-offload:'))}


# Runs a program under a filter like systemd's SystemCallFilter=@system-service, which refuses seccomp(2) itself.
NO_SECCOMP_SYSCALL = r'''
import ctypes, os, platform, struct, sys
nr = {'x86_64': 317, 'aarch64': 277}[platform.machine()]
code = [(0x20, 0, 0, 0), (0x15, 0, 1, nr), (0x06, 0, 0, 0x00050000 | 1), (0x06, 0, 0, 0x7fff0000)]
buf = ctypes.create_string_buffer(b''.join(struct.pack('HBBI', *c) for c in code))
prog = struct.pack('HxxxxxxQ', len(code), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.c_char_p(prog), 0, 0):
    sys.exit('cannot install the outer filter: %s' % os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
'''


def start_wire(topo, side, cfg, extra, outer_filter=False):
	"""Like Topo.start_bitw, with the sandbox flags; the config readable only by nobody, for SIGHUP reloads."""
	path = topo.write_config(side, cfg)
	nobody = pwd.getpwnam('nobody')
	os.chown(path, nobody.pw_uid, nobody.pw_gid)
	os.chmod(path, 0o600)
	topo.cfgpath[side] = path
	wrap = [bitwtopo.PY, '-c', NO_SECCOMP_SYSCALL] if outer_filter else []
	cmd = topo.nsx('w' + side, wrap + [topo.bitw_wire, '--config', path, '--ctl', topo.sock(side)] + extra)
	p = topo.spawn(cmd, f'bitw{side}')
	topo.bitw[side] = p
	if not p.wait_for('bitw-wire: ready', 20):
		raise bitwtopo.Fail(f'bitw-wire {side} not ready (exit {p.p.poll()}):\n{p.log()[-3000:]}')
	return p


def run_wire_once(topo, side, extra, timeout=20):
	cmd = topo.nsx('w' + side, [topo.bitw_wire, '--config', topo.cfgpath[side], '--ctl', topo.sock(side) + '.t']
	               + extra)
	return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_wire(wire, wirectl):
	nobody = pwd.getpwnam('nobody')
	keys = bitwtopo.Keys()
	with bitwtopo.Topo('sandbox', build=None) as topo:
		topo.bitw_wire, topo.wirectl_bin = wire, wirectl
		os.chmod(topo.dir, 0o711)  # nobody reads its config file by name on reload
		cfg = {s: bitwtopo.site_config(s, keys) for s in 'AB'}
		# bitw-wire turns these off on its ports and must turn them back on at exit, as nobody
		topo.run('wA', ['ethtool', '-K', 'a-red', 'gro', 'on', 'gso', 'on'])
		pa = start_wire(topo, 'A', cfg['A'], ['--user', 'nobody'])
		pb = start_wire(topo, 'B', cfg['B'], ['--user', 'nobody'], outer_filter=True)
		check('syscall filter on' in pa.log(), 'bitw-wire says it runs with the syscall filter')
		check_wire_process(pa.pid, 'bitw-wire', nobody)
		check(offloads(topo, 'wA', 'a-red') == {'off'}, 'it turned GRO/GSO off on its red port')
		st = status_of(f'/proc/{pb.pid}/status')
		check('syscall filter on' in pb.log() and st['Seccomp'] == ['2'] and st['Seccomp_filters'] == ['2'],
		      'under an outer filter that refuses seccomp(2), as systemd\'s @system-service does, its own filter '
		      f'still goes in (Seccomp_filters {st.get("Seccomp_filters")})')
		check(os.stat(topo.sock('A')).st_uid == nobody.pw_uid, 'the control socket belongs to nobody')
		r = topo.ping('hA', bitwtopo.HOST_B4, count=3)
		check(r.received == 3, f'it still forwards: ping through the tunnel ({r.received}/3)')
		check(topo.stats('A').get('sas') is not None, 'the control socket answers (stats)')

		cfg['A']['options']['default_action'] = 'bypass'
		try:
			topo.reload_bitw('A', cfg['A'])
			reloaded = True
		except bitwtopo.Fail as e:
			print('# ' + str(e).replace('\n', '\n# '))
			reloaded = False
		os.chown(topo.cfgpath['A'], nobody.pw_uid, nobody.pw_gid)
		check(reloaded and pa.p.poll() is None, 'SIGHUP reload works under the filter, as nobody')
		r = topo.ping('hA', bitwtopo.HOST_B4, count=3)
		check(r.received == 3, f'and it forwards after the reload ({r.received}/3)')
		rc = topo.bitw['A'].stop(signal.SIGTERM, timeout=15)
		topo.bitw.pop('A')
		check(rc == 0, f'SIGTERM under the filter: clean exit (exit {rc})')
		check(offloads(topo, 'wA', 'a-red') == {'on'},
		      'at exit, as nobody under the filter, it turned GRO/GSO back on (CAP_NET_ADMIN kept for this)')
		promisc = json.loads(topo.run('wA', ['ip', '-d', '-j', 'link', 'show', 'a-red']).stdout)[0].get('promiscuity')
		check(promisc == 0, f'and left promiscuous mode (promiscuity {promisc})')

		r = run_wire_once(topo, 'A', ['--user', 'nobody', '--selftest-forbidden-syscall'])
		check(r.returncode == -signal.SIGSYS,
		      f'a forbidden syscall (execve) kills it with SIGSYS after socket(AF_INET, SOCK_STREAM) got EPERM '
		      f'(exit {r.returncode})')
		execve = {'x86_64': 59, 'aarch64': 221}[os.uname().machine]
		why = [line for line in r.stderr.splitlines() if 'seccomp' in line]
		check(f'bitw-wire: seccomp: forbidden system call {execve}, exiting' in why,
		      f'and its log says which syscall it was (execve, {execve}): {why}')
		r = run_wire_once(topo, 'A', ['--user', 'nobody', '--no-seccomp', '--selftest-forbidden-syscall'])
		check(r.returncode == 3, f'without the filter (--no-seccomp) the same calls go through (exit {r.returncode})')
		r = run_wire_once(topo, 'A', ['--user', 'no-such-user-bitw'])
		why = [line for line in r.stderr.splitlines() if 'no such user' in line]
		check(r.returncode != 0 and why, f'an unknown --user is refused ({why})')


def free_port():
	with socket.socket() as s:
		s.bind(('127.0.0.1', 0))
		return s.getsockname()[1]


def wait_health(url, proc, timeout=20):
	end = time.time() + timeout
	while time.time() < end and proc.poll() is None:
		try:
			r = requests.get(url + '/api/v1/health', timeout=2)
			if r.status_code == 200:
				return r
		except requests.RequestException:
			pass
		time.sleep(0.1)
	return None


def test_bitwd(bitwd):
	nobody = pwd.getpwnam('nobody')
	d = tempfile.mkdtemp(prefix='bitw-sandbox-bitwd-')
	p = None
	try:
		os.chmod(d, 0o700)
		pw = 'sandbox-admin-password'
		with open(os.path.join(d, 'admin.pw'), 'w') as f:
			f.write(pw + '\n')
		state = os.path.join(d, 'state')
		os.mkdir(state, 0o700)
		os.chown(state, nobody.pw_uid, nobody.pw_gid)  # as a StateDirectory would be
		file_port, port = free_port(), free_port()
		conf = os.path.join(d, 'bitwd.conf')
		with open(conf, 'w') as f:
			f.write('# bitwd service settings\n\nhttp = yes\nlisten = 127.0.0.1\n'
			        f'port = {file_port}\n db = {state}/bitw.db \nuser=nobody\n'
			        f'admin-password-file = {d}/admin.pw\nwire-socket = {d}/none.sock\n')
		log = open(os.path.join(d, 'bitwd.log'), 'w+')
		p = subprocess.Popen([bitwd, '--config', conf, '--port', str(port)], stdout=log, stderr=subprocess.STDOUT)
		url = f'http://127.0.0.1:{port}'
		r = wait_health(url, p)
		check(r is not None and r.json().get('status') == 'ok',
		      'bitwd --config FILE --port N: serves /api/v1/health on the port of the flag, not the file\'s')
		st = status_of(f'/proc/{p.pid}/status')
		check(ids_are(st, nobody.pw_uid, nobody.pw_gid), 'bitwd: uid and gid are nobody (user = nobody in the file)')
		check(all(caps(st, k) == 0 for k in ('CapEff', 'CapPrm', 'CapInh', 'CapAmb', 'CapBnd')),
		      'bitwd: no capabilities at all, bounding set empty')
		check(st['NoNewPrivs'] == ['1'], 'bitwd: no_new_privs')
		s = requests.Session()
		s.trust_env = False
		r = s.post(url + '/api/v1/login', json={'user': 'admin', 'password': pw})
		check(r.status_code == 200, f'login as admin ({r.status_code})')
		h = {'X-Bitw-CSRF': r.json().get('csrf', '')} if r.status_code == 200 else {}
		r = s.post(url + '/api/v1/users', json={'name': 'ro', 'password': 'readonly-password-1', 'role': 'readonly'},
		           headers=h)
		check(r.status_code == 201, f'bitwd as nobody writes its database: a user is created ({r.status_code} {r.text[:200]})')
		check(os.stat(f'{state}/bitw.db').st_uid == nobody.pw_uid, 'the database file belongs to nobody')
		p.send_signal(signal.SIGTERM)
		check(p.wait(15) == 0, 'bitwd stops cleanly as nobody')
		p = subprocess.Popen([bitwd, '--config', conf, '--port', str(port)], stdout=log, stderr=subprocess.STDOUT)
		wait_health(url, p)
		s.cookies.clear()
		r = s.post(url + '/api/v1/login', json={'user': 'admin', 'password': pw})
		r = s.get(url + '/api/v1/users') if r.status_code == 200 else r
		names = [u.get('name') for u in r.json().get('items', [])] if r.status_code == 200 else []
		check('ro' in names, f'after a restart the user is still there: the write reached the disk ({names})')
		p.send_signal(signal.SIGTERM)
		p.wait(15)
		p = None

		with open(conf, 'a') as f:
			f.write('colour = blue\n')
		r = subprocess.run([bitwd, '--config', conf], capture_output=True, text=True, timeout=20)
		check(r.returncode == 2 and f'{conf}:10: unknown key "colour"' in r.stderr,
		      f'an unknown key in the file is refused with its line ({r.stderr.strip()})')
	finally:
		if p is not None and p.poll() is None:
			p.kill()
			p.wait()
		shutil.rmtree(d, ignore_errors=True)


def main():
	if len(sys.argv) != 4:
		print('usage: test_sandbox.py BITW_WIRE BITW_WIRECTL BITWD', file=sys.stderr)
		return 2
	if os.geteuid() != 0:
		print('1..0 # SKIP needs root')
		return 0
	try:
		test_wire(sys.argv[1], sys.argv[2])
	except (bitwtopo.Fail, subprocess.SubprocessError, OSError) as e:
		check(False, f'bitw-wire sandbox: {e}')
	test_bitwd(sys.argv[3])
	print(f'1..{checks}')
	return 1 if failures else 0


if __name__ == '__main__':
	sys.exit(main())
