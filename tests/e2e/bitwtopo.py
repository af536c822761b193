# bitwtopo.py: the two-site network-namespace topology, bitw configs and captures for the e2e tests and the demo.
#
#   hostA [eth0]--[a-red] bitwA [a-blk]--[to-a] router [to-b]--[b-blk] bitwB [b-red]--[eth0] hostB
#
# mode "bitw" runs bitw-wire in the bitwA/bitwB namespaces; mode "bridge" puts a
# Linux bridge there instead, so the harness itself can be checked without bitw.

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PY = '/usr/bin/python3'
HERE = os.path.dirname(os.path.abspath(__file__))
NETIO = os.path.join(HERE, 'netio.py')
NS_ROOT = '/run/netns'

HOST_A4, HOST_B4 = '198.18.1.10', '198.18.2.10'
HOST_A6, HOST_B6 = '2001:db8:1::10', '2001:db8:2::10'
GW_A4, GW_B4 = '198.18.1.1', '198.18.2.1'
GW_A6, GW_B6 = '2001:db8:1::1', '2001:db8:2::1'
LAN_A4, LAN_B4 = '198.18.1.0/24', '198.18.2.0/24'
LAN_A6, LAN_B6 = '2001:db8:1::/64', '2001:db8:2::/64'
WAN = {
	'A': {4: '192.0.2.10', 6: '2001:db8:a::10', 'gw4': '192.0.2.1', 'gw6': '2001:db8:a::1',
	      'prefix4': 24, 'prefix6': 64},
	'B': {4: '198.51.100.10', 6: '2001:db8:b::10', 'gw4': '198.51.100.1', 'gw6': '2001:db8:b::1',
	      'prefix4': 24, 'prefix6': 64},
}

# SPIs: the out SPI of one site is the in SPI of the other.
SPI = {('A', 4): 0x1001, ('A', 6): 0x1002, ('B', 4): 0x2001, ('B', 6): 0x2002}

# Algorithms as bitw names them -> (enc key bytes, integ key bytes, scapy crypt, scapy auth).
ALGS = {
	'aes-gcm-256': (36, 0, 'AES-GCM', 'NULL'),
	'aes-gcm-128': (20, 0, 'AES-GCM', 'NULL'),
	'chacha20-poly1305': (36, 0, 'CHACHA20-POLY1305', 'NULL'),
	'aes-cbc-256+hmac-sha256-128': (32, 32, 'AES-CBC', 'SHA2-256-128'),
	'aes-cbc-128+hmac-sha1-96': (16, 20, 'AES-CBC', 'HMAC-SHA1-96'),
	'aes-ctr-128+hmac-sha256-128': (20, 32, 'AES-CTR', 'SHA2-256-128'),
	'aes-ccm16-128': (19, 0, 'AES-CCM', 'NULL'),
	'aes-ccm8-256': (35, 0, 'AES-CCM', 'NULL'),
	'aes-gmac-256': (36, 0, None, 'NULL'),  # scapy 2.5 has no GMAC: e2e.decrypt checks it by hand
	# integrity only: AH SAs (e2e.py ah) and ESP with NULL encryption
	'null+hmac-sha256-128': (0, 32, 'NULL', 'SHA2-256-128'),
	'null+hmac-sha1-96': (0, 20, 'NULL', 'HMAC-SHA1-96'),
	'null+hmac-sha512-256': (0, 64, 'NULL', 'SHA2-512-256'),
	'null+aes-gmac-128': (0, 20, 'NULL', None),  # AH's AES-GMAC (RFC 4543 5): scapy has none, e2e.py checks it
}


class Skip(Exception):
	"""The test cannot run here (exit 77)."""


class Fail(Exception):
	"""A behaviour the test asserts did not happen."""


def log(*a):
	print('#', *a, flush=True)


def sh(cmd, check=True, timeout=60, input=None):
	r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
	if check and r.returncode != 0:
		raise Fail(f'command failed ({r.returncode}): {" ".join(cmd)}\n{r.stdout}{r.stderr}')
	return r


def pid_alive(pid):
	try:
		os.kill(pid, 0)
	except ProcessLookupError:
		return False
	except PermissionError:
		return True
	return True


def list_netns():
	try:
		return sorted(os.listdir(NS_ROOT))
	except FileNotFoundError:
		return []


def kill_ns(ns):
	"""Kill what still runs in one of our namespaces, then delete it."""
	r = sh(['ip', 'netns', 'pids', ns], check=False)
	for p in r.stdout.split():
		try:
			os.kill(int(p), signal.SIGKILL)
		except (ProcessLookupError, ValueError):
			pass
	sh(['ip', 'netns', 'del', ns], check=False)


def cleanup_stale(test):
	"""Delete namespaces an earlier, crashed run of this same test left behind
	(their owner pid is gone); other tests' and live runs' namespaces stay."""
	pat = re.compile(r'^bw(\d+)-' + re.escape(test) + r'-')
	for ns in list_netns():
		m = pat.match(ns)
		if m and not pid_alive(int(m.group(1))):
			log('removing stale namespace', ns)
			kill_ns(ns)


def _sigterm_to_exit(signum, frame):
	# meson's timeout sends SIGTERM: unwind through finally blocks so nothing leaks.
	raise SystemExit(128 + signum)


def rand_key(n):
	return os.urandom(n)


def hexkey(b):
	return b.hex()


class Keys:
	"""Random keys for every SA of one run; both sites and scapy use the same."""

	def __init__(self, alg='aes-gcm-256'):
		if alg not in ALGS:
			raise Skip(f'unknown algorithm {alg}')
		self.alg = alg
		nenc, ninteg, _, _ = ALGS[alg]
		self.enc = {spi: rand_key(nenc) for spi in SPI.values()}
		self.integ = {spi: rand_key(ninteg) for spi in SPI.values()}

	def bitw_algs(self):
		if '+' in self.alg:
			enc, integ = self.alg.split('+')
			return enc, integ
		return self.alg, 'none'

	def scapy_sa(self, spi, outer_src, outer_dst, encap='none'):
		from scapy.layers.inet import IP, UDP
		from scapy.layers.inet6 import IPv6
		from scapy.layers.ipsec import ESP, SecurityAssociation
		_, _, crypt, auth = ALGS[self.alg]
		th = IPv6(src=outer_src, dst=outer_dst) if ':' in outer_src else IP(src=outer_src, dst=outer_dst)
		kw = {}
		if encap == 'udp':
			kw['nat_t_header'] = UDP(sport=4500, dport=4500)
		m = re.match(r'aes-ccm(\d+)-', self.alg)
		if m:
			kw['crypt_icv_size'] = int(m.group(1))
		return SecurityAssociation(ESP, spi=spi, crypt_algo=crypt, crypt_key=self.enc[spi],
		                           auth_algo=auth, auth_key=self.integ[spi] or None,
		                           tunnel_header=th, **kw)


def other(side):
	return 'B' if side == 'A' else 'A'


def lan(side, fam):
	return {('A', 4): LAN_A4, ('B', 4): LAN_B4, ('A', 6): LAN_A6, ('B', 6): LAN_B6}[(side, fam)]


def site_config(side, keys, outer=4, encap='none', extra_policies=(), sas=True,
                default_action='discard', override=None):
	"""The JSON configuration of one bitw: protect lan<->lan for IPv4 and IPv6
	(policies lan4/lan6, tunnel endpoints of family `outer`), bypass to the
	site's own gateway, manual SAs keyed from `keys`."""
	me, peer = WAN[side], WAN[other(side)]
	red = 'a-red' if side == 'A' else 'b-red'
	blk = 'a-blk' if side == 'A' else 'b-blk'
	gw4, gw6 = (GW_A4, GW_A6) if side == 'A' else (GW_B4, GW_B6)
	policies = [
		{'name': 'gw4', 'priority': 1, 'action': 'bypass', 'src': lan(side, 4), 'dst': gw4},
		{'name': 'gw6', 'priority': 1, 'action': 'bypass', 'src': lan(side, 6), 'dst': gw6},
	]
	policies += [dict(p) for p in extra_policies]
	for fam in (4, 6):
		policies.append({'name': f'lan{fam}', 'priority': 3, 'action': 'protect',
		                 'src': lan(side, fam), 'dst': lan(other(side), fam),
		                 'mode': 'tunnel', 'peer': peer[outer], 'mss_clamp': True})
	enc, integ = keys.bitw_algs()
	salist = []
	if sas:
		for fam in (4, 6):
			for direction, spi in (('out', SPI[(side, fam)]), ('in', SPI[(other(side), fam)])):
				sa = {'spi': f'0x{spi:08x}', 'direction': direction, 'policy': f'lan{fam}',
				      'peer': peer[outer], 'local': me[outer], 'encap': encap,
				      'enc': enc, 'enc_key': hexkey(keys.enc[spi]),
				      'integ': integ, 'integ_key': hexkey(keys.integ[spi])}
				salist.append(sa)
	cfg = {
		'ports': {
			'red': {'interface': red},
			'black': {'interface': blk, 'mtu': 1500,
			          'addresses': [f'{me[4]}/{me["prefix4"]}', f'{me[6]}/{me["prefix6"]}'],
			          'gateway4': me['gw4'], 'gateway6': me['gw6']},
		},
		'options': {'default_action': default_action, 'bridge_non_ip': True},
		'policies': policies,
		'sas': salist,
	}
	if override:
		override(cfg)
	return cfg


class Proc:
	"""A long-running process we started (its log in a file)."""

	def __init__(self, cmd, logpath):
		self.logpath = logpath
		self.logf = open(logpath, 'wb')
		self.p = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
		                          stdin=subprocess.DEVNULL)
		self.cmd = cmd

	@property
	def pid(self):
		return self.p.pid

	def log(self):
		with open(self.logpath, 'rb') as f:
			return f.read().decode(errors='replace')

	def wait_for(self, text, timeout):
		end = time.time() + timeout
		while time.time() < end:
			if text in self.log():
				return True
			if self.p.poll() is not None:
				return text in self.log()
			time.sleep(0.05)
		return False

	def stop(self, sig=signal.SIGTERM, timeout=10):
		if self.p.poll() is None:
			self.p.send_signal(sig)
			try:
				self.p.wait(timeout)
			except subprocess.TimeoutExpired:
				self.p.kill()
				self.p.wait()
		self.logf.close()
		return self.p.returncode


class Capture:
	"""tcpdump on one interface of one namespace, written to a pcap file."""

	def __init__(self, topo, ns, iface, name, bpf=None, snaplen=0):
		self.path = os.path.join(topo.dir, f'{name}.pcap')
		cmd = topo.nsx(ns, ['tcpdump', '-i', iface, '-n', '-U', '--immediate-mode', '-s', str(snaplen), '-Z', 'root',
		                    '-w', self.path] + ([bpf] if bpf else []))
		self.proc = topo.spawn(cmd, f'tcpdump-{name}')
		if not self.proc.wait_for('listening on', 10):
			raise Fail(f'tcpdump on {ns}:{iface} did not start: {self.proc.log()}')
		self.pkts = None

	def stop(self):
		if self.pkts is None:
			time.sleep(0.5)  # let the last frames reach the file
			self.proc.stop(signal.SIGINT)
			from scapy.all import rdpcap  # registers every layer for dissection
			try:
				self.pkts = list(rdpcap(self.path))
			except Exception as e:
				log(f'capture {self.path} unreadable ({e}); tcpdump said: {self.proc.log().strip()}')
				self.pkts = []
			log(f'capture {os.path.basename(self.path)}: {len(self.pkts)} frames; {self.proc.log().strip()[-200:]}')
		return self.pkts

	def stop_raw(self):
		"""Stop without dissecting: [(frame bytes as captured, length on the wire)], fast for big captures."""
		time.sleep(0.5)
		self.proc.stop(signal.SIGINT)
		from scapy.utils import RawPcapReader
		out = [(data, meta.wirelen) for data, meta in RawPcapReader(self.path)]
		log(f'capture {os.path.basename(self.path)}: {len(out)} frames; {self.proc.log().strip()[-200:]}')
		self.pkts = []
		return out


class Topo:
	"""The namespaces, links, addresses and processes of one test run.
	Use as a context manager: everything goes away on exit, even on failure."""

	NODES = ('hA', 'wA', 'r', 'wB', 'hB')

	def __init__(self, test, mode=None, build=None, keep=False):
		self.test = re.sub(r'[^A-Za-z0-9]', '', test)[:20] or 't'
		self.mode = mode or os.environ.get('BITW_E2E_MODE', 'bitw')
		if self.mode not in ('bitw', 'bridge'):
			raise Skip(f'unknown BITW_E2E_MODE {self.mode}')
		self.prefix = f'bw{os.getpid()}-{self.test}-'
		self.ns = {n: self.prefix + n for n in self.NODES}
		self.dir = tempfile.mkdtemp(prefix=f'bitw-e2e-{self.test}-')
		self.procs = []
		self.bitw = {}
		self.cfgpath = {}
		self.keep = keep or bool(os.environ.get('BITW_E2E_KEEP'))
		self.bitw_wire, self.wirectl_bin = find_binaries(build)
		self._up = False

	# --- plumbing -------------------------------------------------------
	def nsx(self, node, cmd):
		ns = self.ns.get(node, node)
		return ['ip', 'netns', 'exec', ns] + list(cmd)

	def run(self, node, cmd, check=True, timeout=60, input=None):
		return sh(self.nsx(node, cmd), check=check, timeout=timeout, input=input)

	def spawn(self, cmd, name):
		p = Proc(cmd, os.path.join(self.dir, f'{name}.log'))
		self.procs.append(p)
		return p

	def sysctl(self, node, key, val):
		self.run(node, ['sysctl', '-q', '-w', f'{key}={val}'])

	def mac(self, node, iface):
		r = self.run(node, ['ip', '-j', 'link', 'show', iface])
		return json.loads(r.stdout)[0]['address']

	# --- building -------------------------------------------------------
	def __enter__(self):
		cleanup_stale(self.test)
		signal.signal(signal.SIGTERM, _sigterm_to_exit)
		atexit.register(self.down)
		try:
			self.up()
		except BaseException:
			self.down()
			raise
		return self

	def __exit__(self, *exc):
		self.down()
		return False

	def up(self):
		for n in self.NODES:
			sh(['ip', 'netns', 'add', self.ns[n]])
		self._up = True
		for n in self.NODES:
			self.run(n, ['ip', 'link', 'set', 'lo', 'up'])
			if n.startswith('w'):
				# the kernel must never speak on a bitw port
				self.sysctl(n, 'net.ipv6.conf.all.disable_ipv6', 1)
				self.sysctl(n, 'net.ipv6.conf.default.disable_ipv6', 1)
			else:
				self.sysctl(n, 'net.ipv6.conf.all.accept_dad', 0)
				self.sysctl(n, 'net.ipv6.conf.default.accept_dad', 0)
		self.veth('hA', 'eth0', 'wA', 'a-red')
		self.veth('wA', 'a-blk', 'r', 'to-a')
		self.veth('r', 'to-b', 'wB', 'b-blk')
		self.veth('wB', 'b-red', 'hB', 'eth0')
		for n, ifs in (('wA', ('a-red', 'a-blk')), ('wB', ('b-red', 'b-blk'))):
			for i in ifs:
				self.sysctl(n, f'net.ipv6.conf.{i}.disable_ipv6', 1)
		self.addr('hA', 'eth0', [HOST_A4 + '/24', HOST_A6 + '/64'])
		self.addr('hB', 'eth0', [HOST_B4 + '/24', HOST_B6 + '/64'])
		self.run('hA', ['ip', 'route', 'add', 'default', 'via', GW_A4])
		self.run('hA', ['ip', '-6', 'route', 'add', 'default', 'via', GW_A6])
		self.run('hB', ['ip', 'route', 'add', 'default', 'via', GW_B4])
		self.run('hB', ['ip', '-6', 'route', 'add', 'default', 'via', GW_B6])
		self.addr('r', 'to-a', [GW_A4 + '/24', WAN['A']['gw4'] + '/24', GW_A6 + '/64', WAN['A']['gw6'] + '/64'])
		self.addr('r', 'to-b', [GW_B4 + '/24', WAN['B']['gw4'] + '/24', GW_B6 + '/64', WAN['B']['gw6'] + '/64'])
		self.sysctl('r', 'net.ipv4.ip_forward', 1)
		self.sysctl('r', 'net.ipv6.conf.all.forwarding', 1)
		for k in ('all', 'default', 'to-a', 'to-b'):
			self.sysctl('r', f'net.ipv4.conf.{k}.send_redirects', 0)
			self.sysctl('r', f'net.ipv4.conf.{k}.rp_filter', 0)
		if self.mode == 'bridge':
			for n, ifs in (('wA', ('a-red', 'a-blk')), ('wB', ('b-red', 'b-blk'))):
				self.run(n, ['ip', 'link', 'add', 'br0', 'type', 'bridge'])
				self.sysctl(n, 'net.ipv6.conf.br0.disable_ipv6', 1)
				for i in ifs:
					self.run(n, ['ip', 'link', 'set', i, 'master', 'br0'])
				self.run(n, ['ip', 'link', 'set', 'br0', 'up'])

	def veth(self, n1, if1, n2, if2):
		sh(['ip', '-n', self.ns[n1], 'link', 'add', if1, 'type', 'veth',
		    'peer', 'name', if2, 'netns', self.ns[n2]])
		for n, i in ((n1, if1), (n2, if2)):
			# veth ends behave like a wire: no super-frames
			self.run(n, ['ethtool', '-K', i, 'tso', 'off', 'gso', 'off', 'gro', 'off'])
			self.run(n, ['ip', 'link', 'set', i, 'up'])

	def addr(self, node, iface, addrs):
		for a in addrs:
			extra = ['nodad'] if ':' in a else []
			self.run(node, ['ip', 'addr', 'add', a, 'dev', iface] + extra)

	def down(self):
		for p in reversed(self.procs):
			try:
				p.stop(signal.SIGKILL, timeout=5)
			except Exception:
				pass
		self.procs = []
		if self._up:
			for n in self.NODES:
				kill_ns(self.ns[n])
			self._up = False
		if self.dir and not self.keep and os.path.isdir(self.dir):
			shutil.rmtree(self.dir, ignore_errors=True)
			self.dir = None

	# --- bitw -----------------------------------------------------------
	def write_config(self, side, cfg, name=None):
		path = os.path.join(self.dir, name or f'bitw{side}.json')
		with open(path, 'w') as f:
			json.dump(cfg, f, indent=1)
		return path

	def sock(self, side):
		return os.path.join(self.dir, f'bitw{side}.sock')

	def start_bitw(self, side, cfg, log_level='info', timeout=20):
		"""Start bitw-wire for one site and wait for it to say it is ready."""
		if self.mode == 'bridge':
			return None
		path = self.write_config(side, cfg)
		self.cfgpath[side] = path
		cmd = self.nsx('w' + side, [self.bitw_wire, '--config', path, '--ctl', self.sock(side),
		                            '--log-level', log_level])
		p = self.spawn(cmd, f'bitw{side}')
		self.bitw[side] = p
		if not p.wait_for('bitw-wire: ready', timeout):
			rc = p.p.poll()
			raise Fail(f'bitw-wire {side} not ready after {timeout}s (exit {rc}):\n{p.log()[-3000:]}')
		return p

	def start_both(self, keys, a=None, b=None, **common):
		"""Start both sites: `common` site_config arguments, `a`/`b` per-site ones."""
		self.start_bitw('A', site_config('A', keys, **dict(common, **(a or {}))))
		self.start_bitw('B', site_config('B', keys, **dict(common, **(b or {}))))

	def stop_bitw(self, side):
		"""SIGTERM: bitw-wire must exit 0 (sanitizer reports would make it fail)."""
		p = self.bitw.pop(side, None)
		if p is None:
			return 0
		rc = p.stop(signal.SIGTERM, timeout=15)
		if rc != 0:
			raise Fail(f'bitw-wire {side} exited {rc} on SIGTERM:\n{p.log()[-3000:]}')
		return rc

	def reload_bitw(self, side, cfg, timeout=10):
		"""Write a new configuration for a running bitw-wire, SIGHUP it and wait until it took it."""
		p = self.bitw[side]
		before = p.log().count('configuration reloaded')
		self.write_config(side, cfg)
		p.p.send_signal(signal.SIGHUP)
		end = time.time() + timeout
		while time.time() < end:
			if p.log().count('configuration reloaded') > before:
				return
			if p.p.poll() is not None:
				break
			time.sleep(0.05)
		raise Fail(f'bitw-wire {side} did not reload its configuration:\n{p.log()[-2000:]}')

	def events(self, side, name=None):
		"""A bitw-wirectl events client on one site, subscribed when this returns."""
		p = self.spawn([self.wirectl_bin, '--socket', self.sock(side), 'events', '--timeout', '300'],
		               name or f'events{side}')
		if not p.wait_for('listening', 10):
			raise Fail(f'bitw-wirectl events on {side} did not subscribe: {p.log()}')
		return p

	def bitw_log(self, side):
		p = self.bitw.get(side)
		return p.log() if p else ''

	def wirectl(self, side, *args, input=None, check=True, timeout=30):
		r = sh([self.wirectl_bin, '--socket', self.sock(side)] + list(args), check=False,
		       timeout=timeout, input=input)
		if check and r.returncode != 0:
			raise Fail(f'bitw-wirectl {" ".join(args)} on {side} -> {r.returncode}: {r.stdout}{r.stderr}')
		return r

	def stats(self, side):
		r = self.wirectl(side, 'stats')
		try:
			return json.loads(r.stdout)
		except ValueError:
			raise Fail(f'stats on {side} is not JSON: {r.stdout[:500]}')

	# --- traffic --------------------------------------------------------
	def capture(self, node, iface, name, bpf=None, snaplen=0):
		return Capture(self, node, iface, name, bpf, snaplen)

	def ping(self, node, dst, count=3, size=56, marker=None, df=False, interval=0.2, wait=3,
	         check=False):
		cmd = ['ping', '-n', '-c', str(count), '-i', str(interval), '-W', str(wait), '-s', str(size)]
		if ':' in dst:
			cmd.insert(1, '-6')
		if marker:
			cmd += ['-p', marker.encode().hex()[:32]]
		if df:
			cmd += ['-M', 'do']
		r = self.run(node, cmd + [dst], check=False, timeout=count * (interval + wait) + 20)
		m = re.search(r'(\d+) (?:packets )?received', r.stdout)
		r.received = int(m.group(1)) if m else 0
		if check and r.received != count:
			raise Fail(f'ping {node} -> {dst}: {r.received}/{count} replies\n{r.stdout}{r.stderr}')
		return r

	def netio(self, node, *args, timeout=120):
		try:
			return self.run(node, [PY, NETIO] + [str(a) for a in args], check=False, timeout=timeout)
		except subprocess.TimeoutExpired:
			# a stalled transfer is a test failure to report, not a harness crash
			return subprocess.CompletedProcess(args, -1, '', f'netio {args[0]} timed out after {timeout}s')

	def netio_server(self, node, name, *args):
		p = self.spawn(self.nsx(node, [PY, '-u', NETIO] + [str(a) for a in args]), name)
		if not p.wait_for('listening', 10):
			raise Fail(f'netio server {name} did not start: {p.log()}')
		return p

	def netio_result(self, proc, timeout=120):
		try:
			proc.p.wait(timeout)
		except subprocess.TimeoutExpired:
			proc.stop(signal.SIGKILL)
			raise Fail(f'{proc.cmd} did not finish in {timeout}s: {proc.log()[-1000:]}')
		return last_json(proc.log())

	def tcp_transfer(self, src, dst_addr, dst_node, nbytes, marker, port=5001, timeout=120):
		"""Send nbytes over TCP from src to dst; returns (sender, receiver) results."""
		srv = self.netio_server(dst_node, f'tcp-recv-{port}', 'tcp-recv', '--port', port,
		                        '--v6' if ':' in dst_addr else '--v4', '--timeout', timeout)
		r = self.netio(src, 'tcp-send', '--to', dst_addr, '--port', port, '--bytes', nbytes,
		               '--marker', marker, '--timeout', timeout, timeout=timeout + 10)
		sent = last_json(r.stdout) or {'error': r.stdout + r.stderr}
		got = self.netio_result(srv, timeout=timeout)
		return sent, got

	def udp_send(self, node, src, sport, dst, dport, payloads):
		"""Datagrams from the namespace's own stack, from src:sport (e.g. the router toward a bitw address)."""
		code = ('import socket, sys\n'
		        'fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET\n'
		        's = socket.socket(fam, socket.SOCK_DGRAM)\n'
		        's.bind((sys.argv[1], int(sys.argv[2])))\n'
		        'for h in sys.argv[5:]:\n'
		        '\ts.sendto(bytes.fromhex(h), (sys.argv[3], int(sys.argv[4])))\n')
		self.run(node, [PY, '-c', code, src, str(sport), dst, str(dport)] + [p.hex() for p in payloads])

	def inject(self, node, iface, frames):
		"""Send scapy frames out of iface in a namespace (as if from that wire)."""
		from scapy.utils import wrpcap
		path = os.path.join(self.dir, f'inject-{time.time_ns()}.pcap')
		wrpcap(path, frames)
		code = ('import sys\nfrom scapy.all import rdpcap, sendp\n'
		        'sendp(rdpcap(sys.argv[1]), iface=sys.argv[2], verbose=0)\n')
		self.run(node, [PY, '-c', code, path, iface])


def events_seen(proc):
	"""The events a `Topo.events` client has printed so far."""
	out = []
	for line in proc.log().splitlines():
		if line.strip().startswith('{'):
			try:
				out.append(json.loads(line))
			except ValueError:
				pass
	return out


def wait_event(proc, pred, timeout=5):
	"""The first event printed that satisfies pred, waiting up to timeout seconds; else None."""
	end = time.time() + timeout
	while True:
		for e in events_seen(proc):
			if pred(e):
				return e
		if time.time() >= end:
			return None
		time.sleep(0.05)


def last_json(text):
	for line in reversed(text.strip().splitlines()):
		line = line.strip()
		if line.startswith('{'):
			try:
				return json.loads(line)
			except ValueError:
				continue
	return None


def find_binaries(build=None):
	wire = os.environ.get('BITW_WIRE')
	ctl = os.environ.get('BITW_WIRECTL')
	if build:
		wire = wire or os.path.join(build, 'wire', 'bitw-wire')
		ctl = ctl or os.path.join(build, 'tests', 'tools', 'bitw-wirectl')
	return wire, ctl


def counter(stats, name):
	return int(stats.get('drops', {}).get(name, 0))


def sa_stats(stats, spi, direction):
	for sa in stats.get('sas', []):
		if int(sa.get('spi', -1)) == spi and sa.get('direction') == direction:
			return sa
	return None


def policy_stats(stats, name):
	for p in stats.get('policies', []):
		if p.get('name') == name:
			return p
	return None


def frames_with(pkts, needle):
	return [p for p in pkts if needle in bytes(p)]


def main(tests, argv=None):
	"""Run one named test: exit 0 pass, 1 fail, 77 skip."""
	argv = sys.argv[1:] if argv is None else argv
	if os.geteuid() != 0:
		print('1..0 # SKIP e2e tests need root (network namespaces)')
		return 77
	if not argv or argv[0] not in tests:
		print(f'usage: {sys.argv[0]} TEST  (one of: {", ".join(tests)})', file=sys.stderr)
		return 2
	name = argv[0]
	try:
		tests[name](*argv[1:])
	except Skip as e:
		print(f'SKIP {name}: {e}')
		return 77
	except Fail as e:
		print(f'FAIL {name}: {e}')
		return 1
	print(f'PASS {name}')
	return 0
