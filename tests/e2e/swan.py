# swan.py: strongSwan (charon + kernel-libipsec, swanctl, vici) as an IKEv2 peer in network namespaces, and its topology.
#
#   hostA [eth0]--[a-red] gwA [a-blk]--(NAT [in]..[out])--[to-a] router [to-b]--[b-blk] gwB [b-red]--[eth0] hostB
#
# Each gateway is either "swan" (a charon of its own routing between its LAN and the WAN through its ipsec0 TUN) or
# "bitw" (bitw-wire + bitwd, transparent between hostX and the next hop, as in bitwtopo.py). The optional NAT
# namespace masquerades UDP from side A. The host kernel has no ESP, so charon carries ESP in userspace
# (kernel-libipsec), always inside UDP 4500 (see /work/shared/notes/strongswan-peer.md).

import os
import re
import signal
import socket
import struct
import subprocess
import time

from bitwtopo import (  # noqa: F401 (re-exported for the tests)
	GW_A4, GW_B4, HOST_A4, HOST_B4, LAN_A4, LAN_B4, Fail, Skip, Topo, log, sh,
)

CHARON = '/usr/lib/ipsec/charon'
SWANCTL = '/usr/sbin/swanctl'
# kernel-libipsec before kernel-netlink, else charon picks the (missing) kernel ESP path for its SAs.
# ccm, ctr, xcbc and md5 for the child SA algorithms of issue 7 (3DES comes with the openssl plugin: Debian has no des).
PLUGINS = ('random nonce openssl aes sha1 sha2 md5 hmac xcbc gcm ccm ctr kdf curve25519 pem pkcs1 pkcs8 x509 pubkey '
           'constraints socket-default kernel-libipsec kernel-netlink vici')

# The WAN: side A's gateway (or the NAT's outside), the router, side B's gateway.
WAN_A4, WAN_A_GW4 = '192.0.2.10', '192.0.2.1'
WAN_B4, WAN_B_GW4 = '198.51.100.10', '198.51.100.1'
# Behind the NAT: side A's gateway and the NAT's inside address.
PRIV_A4, PRIV_A_GW4 = '203.0.113.10', '203.0.113.1'
SIDES = {'A': {'red': 'a-red', 'blk': 'a-blk', 'lan': LAN_A4, 'gw': GW_A4, 'host': HOST_A4},
         'B': {'red': 'b-red', 'blk': 'b-blk', 'lan': LAN_B4, 'gw': GW_B4, 'host': HOST_B4}}


def have_strongswan():
	return os.access(CHARON, os.X_OK) and os.access(SWANCTL, os.X_OK)


class SwanTopo(Topo):
	"""The namespaces of one interop run. kinds: {'A': 'swan'|'bitw', 'B': ...}; nat: a masquerading NAT in
	front of side A. Use as a context manager: charons, bitws and namespaces go away even on failure."""

	def __init__(self, test, a='swan', b='swan', nat=False, **kw):
		self.kind = {'A': a, 'B': b}
		self.nat = nat
		self.NODES = ('hA', 'wA') + (('n',) if nat else ()) + ('r', 'wB', 'hB')
		super().__init__(test, mode='bitw', **kw)
		self.charon = {}

	def wan(self, side):
		"""The address side's gateway has on the WAN (behind the NAT: its private one)."""
		if side == 'B':
			return WAN_B4
		return PRIV_A4 if self.nat else WAN_A4

	def public(self, side):
		"""The address the other side sees for side."""
		return WAN_B4 if side == 'B' else WAN_A4

	def up(self):
		for n in self.NODES:
			sh(['ip', 'netns', 'add', self.ns[n]])
		self._up = True
		for n in self.NODES:
			self.run(n, ['ip', 'link', 'set', 'lo', 'up'])
			self.sysctl(n, 'net.ipv6.conf.all.disable_ipv6', 1)
			self.sysctl(n, 'net.ipv6.conf.default.disable_ipv6', 1)
			for k in ('all', 'default'):
				self.sysctl(n, f'net.ipv4.conf.{k}.rp_filter', 0)
				self.sysctl(n, f'net.ipv4.conf.{k}.send_redirects', 0)
		self.veth('hA', 'eth0', 'wA', 'a-red')
		if self.nat:
			self.veth('wA', 'a-blk', 'n', 'in')
			self.veth('n', 'out', 'r', 'to-a')
		else:
			self.veth('wA', 'a-blk', 'r', 'to-a')
		self.veth('r', 'to-b', 'wB', 'b-blk')
		self.veth('wB', 'b-red', 'hB', 'eth0')
		for side, h in (('A', 'hA'), ('B', 'hB')):
			self.addr(h, 'eth0', [SIDES[side]['host'] + '/24'])
			self.run(h, ['ip', 'route', 'add', 'default', 'via', SIDES[side]['gw']])
		self.addr('r', 'to-a', [WAN_A_GW4 + '/24'])
		self.addr('r', 'to-b', [WAN_B_GW4 + '/24'])
		self.sysctl('r', 'net.ipv4.ip_forward', 1)
		first_hop = {'A': ('n', 'in', PRIV_A_GW4) if self.nat else ('r', 'to-a', WAN_A_GW4),
		             'B': ('r', 'to-b', WAN_B_GW4)}
		if self.nat:
			self.addr('n', 'in', [PRIV_A_GW4 + '/24'])
			self.addr('n', 'out', [WAN_A4 + '/24'])
			self.run('n', ['ip', 'route', 'add', 'default', 'via', WAN_A_GW4])
			self.sysctl('n', 'net.ipv4.ip_forward', 1)
			# A port range or masquerade of UDP needs the l4proto match first.
			rules = ('table ip nat {\n chain postrouting {\n  type nat hook postrouting priority srcnat;\n'
			         '  oifname "out" meta l4proto udp masquerade\n }\n}\n')
			self.run('n', ['nft', '-f', '-'], input=rules)
		for side in 'AB':
			s = SIDES[side]
			node = 'w' + side
			hop, hop_if, hop_addr = first_hop[side]
			if self.kind[side] == 'swan':
				self.addr(node, s['red'], [s['gw'] + '/24'])
				self.addr(node, s['blk'], [self.wan(side) + '/24'])
				self.run(node, ['ip', 'route', 'add', 'default', 'via', hop_addr])
				self.sysctl(node, 'net.ipv4.ip_forward', 1)
			elif self.kind[side] == 'bitw':
				# bitw is transparent: the next hop on its black side is hostX's router too.
				self.addr(hop, hop_if, [s['gw'] + '/24'])
			else:
				raise Skip(f'unknown gateway kind {self.kind[side]}')

	def down(self):
		for c in list(self.charon.values()):
			try:
				c.stop()
			except Exception as e:
				log(f'stopping charon {c.node}: {e}')
		self.charon = {}
		super().down()

	def start_charon(self, side, extra=''):
		c = Charon(self, 'w' + side, extra=extra)
		self.charon[side] = c
		c.start()
		return c


# --- vici: just enough of the protocol to list SAs as data ---------------------------------------------------

_CMD_REQUEST, _CMD_RESPONSE, _CMD_UNKNOWN = 0, 1, 2
_EVENT_REGISTER, _EVENT_UNREGISTER, _EVENT_CONFIRM, _EVENT_UNKNOWN, _EVENT = 3, 4, 5, 6, 7
_SECTION_START, _SECTION_END, _KEY_VALUE, _LIST_START, _LIST_ITEM, _LIST_END = 1, 2, 3, 4, 5, 6


def _vici_decode(data):
	"""A vici message as nested dicts; values and list items as str."""
	root = {}
	stack = [root]
	lst = None
	i = 0
	while i < len(data):
		t = data[i]
		i += 1
		if t in (_SECTION_START, _KEY_VALUE, _LIST_START):
			n = data[i]
			name = data[i + 1:i + 1 + n].decode()
			i += 1 + n
		if t == _SECTION_START:
			sec = {}
			stack[-1][name] = sec
			stack.append(sec)
		elif t == _SECTION_END:
			stack.pop()
		elif t == _KEY_VALUE:
			ln = struct.unpack('>H', data[i:i + 2])[0]
			stack[-1][name] = data[i + 2:i + 2 + ln].decode(errors='replace')
			i += 2 + ln
		elif t == _LIST_START:
			lst = []
			stack[-1][name] = lst
		elif t == _LIST_ITEM:
			ln = struct.unpack('>H', data[i:i + 2])[0]
			lst.append(data[i + 2:i + 2 + ln].decode(errors='replace'))
			i += 2 + ln
		elif t == _LIST_END:
			lst = None
		else:
			raise Fail(f'vici: unknown element type {t}')
	return root


def _vici_encode(msg):
	out = b''
	for k, v in msg.items():
		kb = k.encode()
		if isinstance(v, dict):
			out += bytes([_SECTION_START, len(kb)]) + kb + _vici_encode(v) + bytes([_SECTION_END])
		elif isinstance(v, list):
			out += bytes([_LIST_START, len(kb)]) + kb
			for item in v:
				b = str(item).encode()
				out += bytes([_LIST_ITEM]) + struct.pack('>H', len(b)) + b
			out += bytes([_LIST_END])
		else:
			b = str(v).encode()
			out += bytes([_KEY_VALUE, len(kb)]) + kb + struct.pack('>H', len(b)) + b
	return out


class Vici:
	"""One connection to a charon's vici socket."""

	def __init__(self, path, timeout=30):
		self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		self.s.settimeout(timeout)
		self.s.connect(path)

	def close(self):
		self.s.close()

	def _send(self, ptype, name=None, msg=b''):
		body = bytes([ptype]) + (bytes([len(name)]) + name.encode() if name is not None else b'') + msg
		self.s.sendall(struct.pack('>I', len(body)) + body)

	def _recv_exact(self, n):
		buf = b''
		while len(buf) < n:
			d = self.s.recv(n - len(buf))
			if not d:
				raise Fail('vici: charon closed the connection')
			buf += d
		return buf

	def _recv(self):
		ln = struct.unpack('>I', self._recv_exact(4))[0]
		body = self._recv_exact(ln)
		ptype = body[0]
		if ptype == _EVENT:
			n = body[1]
			return ptype, body[2:2 + n].decode(), body[2 + n:]
		return ptype, None, body[1:]

	def request(self, cmd, msg=None, stream=None):
		"""Send cmd; with stream, collect the events of that name it sends before its response."""
		events = []
		if stream:
			self._send(_EVENT_REGISTER, stream)
			t, _, _ = self._recv()
			if t != _EVENT_CONFIRM:
				raise Fail(f'vici: registering for {stream} failed ({t})')
		self._send(_CMD_REQUEST, cmd, _vici_encode(msg or {}))
		while True:
			t, name, body = self._recv()
			if t == _EVENT:
				events.append(_vici_decode(body))
				continue
			if t == _CMD_UNKNOWN:
				raise Fail(f'vici: charon does not know the command {cmd}')
			if t != _CMD_RESPONSE:
				raise Fail(f'vici: unexpected packet type {t}')
			resp = _vici_decode(body)
			break
		if stream:
			self._send(_EVENT_UNREGISTER, stream)
			self._recv()
		return resp, events


# --- charon -----------------------------------------------------------------------------------------------------

class Charon:
	"""One charon in a namespace: its own /run (pid file, vici socket), its own strongswan.conf and swanctl dir."""

	def __init__(self, topo, node, extra=''):
		self.t, self.node = topo, node
		self.dir = os.path.join(topo.dir, f'swan-{node}')
		self.run = os.path.join(self.dir, 'run')
		self.swanctl_dir = os.path.join(self.dir, 'swanctl')
		for d in (self.run, self.swanctl_dir):
			os.makedirs(d, exist_ok=True)
		for sub in ('x509', 'x509ca', 'x509crl', 'private', 'rsa', 'ecdsa', 'pkcs8'):
			os.makedirs(os.path.join(self.swanctl_dir, sub), exist_ok=True)
		self.vici_path = os.path.join(self.run, 'charon.vici')
		self.logpath = os.path.join(self.dir, 'charon.log')
		self.conf = os.path.join(self.dir, 'strongswan.conf')
		with open(self.conf, 'w') as f:
			f.write(f'''charon {{
	load_modular = no
	load = {PLUGINS}
	install_virtual_ip = no
	filelog {{
		charon {{
			path = {self.logpath}
			time_format = %T
			default = 1
			ike = 2
			cfg = 1
			flush_line = yes
		}}
	}}
	plugins {{
		vici {{
			socket = unix://{self.vici_path}
		}}
	}}
{extra}
}}
''')
		self.proc = None

	@property
	def uri(self):
		return f'unix://{self.vici_path}'

	def start(self, timeout=20):
		if not have_strongswan():
			raise Skip('strongSwan is not installed (scripts/deps)')
		# charon's pid file is fixed at /var/run/charon.pid: a private /run per namespace (ip netns exec already
		# runs us in a mount namespace of our own, so the bind mount is ours alone).
		cmd = self.t.nsx(self.node, ['sh', '-c', f'mount --bind {self.run} /run && exec env '
		                             f'STRONGSWAN_CONF={self.conf} {CHARON}'])
		self.proc = self.t.spawn(cmd, f'charon-{self.node}')
		end = time.time() + timeout
		while time.time() < end:
			if self.proc.p.poll() is not None:
				raise Fail(f'charon in {self.node} exited {self.proc.p.returncode}:\n{self.log()[-3000:]}')
			if os.path.exists(self.vici_path):
				try:
					Vici(self.vici_path, timeout=2).close()
					return self
				except OSError:
					pass
			time.sleep(0.1)
		raise Fail(f'charon in {self.node} did not open its vici socket in {timeout}s:\n{self.log()[-3000:]}')

	def pid(self):
		try:
			with open(os.path.join(self.run, 'charon.pid')) as f:
				return int(f.read().strip())
		except (OSError, ValueError):
			return None

	def stop(self, sig=signal.SIGTERM, timeout=10):
		"""Stop by the pid in its pid file (never by name); SIGKILL makes it vanish without a DELETE."""
		if not self.proc:
			return
		pid = self.pid()
		if pid and self.proc.p.poll() is None:
			try:
				os.kill(pid, sig)
			except ProcessLookupError:
				pass
		try:
			self.proc.p.wait(timeout)
		except subprocess.TimeoutExpired:
			self.proc.p.kill()
			self.proc.p.wait()
		self.proc.logf.close()
		self.proc = None
		self.t.charon = {k: v for k, v in self.t.charon.items() if v is not self}

	def log(self):
		out = ''
		for p in (self.logpath, self.proc.logpath if self.proc else None):
			if p and os.path.exists(p):
				with open(p, errors='replace') as f:
					out += f.read()
		return out

	def swanctl(self, *args, check=True, timeout=60):
		env = dict(os.environ, SWANCTL_DIR=self.swanctl_dir)
		cmd = [SWANCTL] + list(args) + ['--uri', self.uri]
		r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
		if check and r.returncode != 0:
			raise Fail(f'swanctl {" ".join(args)} in {self.node} -> {r.returncode}:\n{r.stdout}{r.stderr}\n'
			           f'charon log:\n{self.log()[-3000:]}')
		return r

	def load(self, conf_text):
		"""Write swanctl.conf (credentials beside it in the swanctl dir) and load all of it."""
		path = os.path.join(self.swanctl_dir, 'swanctl.conf')
		with open(path, 'w') as f:
			f.write(conf_text)
		return self.swanctl('--load-all', '--file', path)

	def initiate(self, child, timeout=20):
		return self.swanctl('--initiate', '--child', child, '--timeout', str(timeout), timeout=timeout + 10)

	def terminate_ike(self, ike, timeout=10):
		return self.swanctl('--terminate', '--ike', ike, '--timeout', str(timeout), check=False,
		                    timeout=timeout + 10)

	def rekey(self, child=None, ike=None):
		args = ['--rekey'] + (['--child', child] if child else []) + (['--ike', ike] if ike else [])
		return self.swanctl(*args)

	def vici(self, cmd, msg=None, stream=None):
		v = Vici(self.vici_path)
		try:
			return v.request(cmd, msg, stream)
		finally:
			v.close()

	def sas(self):
		"""[(ike name, ike sa dict)] as list-sas reports them (state, spis, child-sas with spi-in/spi-out, ...)."""
		_, events = self.vici('list-sas', {}, stream='list-sa')
		out = []
		for ev in events:
			for name, sa in ev.items():
				out.append((name, sa))
		return out

	def children(self, state='INSTALLED'):
		"""Every child SA in that state: [(ike name, child dict)]."""
		out = []
		for name, sa in self.sas():
			for ch in (sa.get('child-sas') or {}).values():
				if state is None or ch.get('state') == state:
					out.append((name, ch))
		return out

	def wait_sa(self, state='ESTABLISHED', children=1, timeout=20):
		"""Until an IKE SA in that state with that many installed children exists; returns it."""
		end = time.time() + timeout
		last = None
		while time.time() < end:
			last = self.sas()
			for _, sa in last:
				kids = [c for c in (sa.get('child-sas') or {}).values() if c.get('state') == 'INSTALLED']
				if sa.get('state') == state and len(kids) >= children:
					return sa
			time.sleep(0.2)
		raise Fail(f'charon in {self.node}: no {state} IKE SA with {children} child(ren) in {timeout}s: {last}\n'
		           f'charon log:\n{self.log()[-4000:]}')


# --- configuration texts ------------------------------------------------------------------------------------------

# Proposal pairs the interop tests run: (IKE, ESP) in strongSwan's notation, which bitw's peers accept as-is.
SUITES = {
	'gcm': ('aes256gcm16-prfsha256-curve25519', 'aes256gcm16'),
	'cbc': ('aes256-sha256-modp3072', 'aes256-sha256'),
	'ccm': ('aes256gcm16-prfsha256-curve25519', 'aes256ccm16'),
	'ctr': ('aes256gcm16-prfsha256-curve25519', 'aes128ctr-sha256'),
}


def swanctl_conn(name, local, remote, local_ts, remote_ts, ike_props, esp_props, auth='psk', local_id=None,
                 remote_id=None, cert=None, ca=None, psk=None, start='none', ike_rekey=0, child_rekey=0,
                 dpd=0, dpd_action='clear', encap=False):
	"""One connection (and its secret) in swanctl.conf syntax: the text the README shows beside bitw's side."""
	local_id = local_id or local
	remote_id = remote_id or remote
	lines = ['connections {', f'\t{name} {{', '\t\tversion = 2', f'\t\tlocal_addrs = {local}',
	         f'\t\tremote_addrs = {remote}', f'\t\tproposals = {ike_props}']
	# Rekeying only when asked (0 = never); life times 10% past the rekey time, no random jitter.
	if ike_rekey:
		lines += [f'\t\trekey_time = {ike_rekey}s', f'\t\tover_time = {max(ike_rekey // 10, 5)}s', '\t\trand_time = 0s']
	else:
		lines += ['\t\trekey_time = 0']
	if dpd:
		lines += [f'\t\tdpd_delay = {dpd}s']
	if encap:
		lines += ['\t\tencap = yes']
	if auth == 'psk':
		lines += ['\t\tlocal {', '\t\t\tauth = psk', f'\t\t\tid = {local_id}', '\t\t}',
		          '\t\tremote {', '\t\t\tauth = psk', f'\t\t\tid = {remote_id}', '\t\t}']
	else:
		lines += ['\t\tlocal {', '\t\t\tauth = pubkey', f'\t\t\tcerts = {cert}', f'\t\t\tid = "{local_id}"', '\t\t}',
		          '\t\tremote {', '\t\t\tauth = pubkey', f'\t\t\tcacerts = {ca}', f'\t\t\tid = "{remote_id}"',
		          '\t\t}']
	lines += ['\t\tchildren {', f'\t\t\t{name} {{', f'\t\t\t\tlocal_ts = {local_ts}', f'\t\t\t\tremote_ts = {remote_ts}',
	          f'\t\t\t\tesp_proposals = {esp_props}', f'\t\t\t\tstart_action = {start}',
	          f'\t\t\t\tdpd_action = {dpd_action}']
	if child_rekey:
		lines += [f'\t\t\t\trekey_time = {child_rekey}s', f'\t\t\t\tlife_time = {child_rekey + max(child_rekey // 10, 5)}s',
		          '\t\t\t\trand_time = 0s']
	else:
		lines += ['\t\t\t\trekey_time = 0']
	lines += ['\t\t\t}', '\t\t}', '\t}', '}']
	if auth == 'psk':
		lines += ['secrets {', f'\tike-{name} {{', f'\t\tid-1 = {local_id}', f'\t\tid-2 = {remote_id}',
		          f'\t\tsecret = "{psk}"', '\t}', '}']
	return '\n'.join(lines) + '\n'


# --- certificates (made at test time with the openssl CLI) ---------------------------------------------------------

class Pki:
	"""A CA and end-entity certificates (RSA 2048 or ECDSA P-256), generated in dir at test time."""

	def __init__(self, dir, kind='rsa', name='bitw test CA'):
		self.dir, self.kind = dir, kind
		os.makedirs(dir, exist_ok=True)
		self.ca_key = self._key('ca')
		self.ca_cert = os.path.join(dir, 'ca.pem')
		sh(['openssl', 'req', '-x509', '-new', '-key', self.ca_key, '-subj', f'/O=bitw test/CN={name}',
		    '-days', '2', '-sha256', '-out', self.ca_cert,
		    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])

	def _key(self, stem):
		path = os.path.join(self.dir, f'{stem}.key')
		if self.kind == 'rsa':
			sh(['openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path])
		else:
			sh(['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path])
		os.chmod(path, 0o600)
		return path

	def issue(self, stem, cn, san):
		"""An end-entity certificate for cn with subjectAltName san (e.g. 'IP:192.0.2.10' or 'DNS:a.example')."""
		key = self._key(stem)
		csr = os.path.join(self.dir, f'{stem}.csr')
		cert = os.path.join(self.dir, f'{stem}.pem')
		ext = os.path.join(self.dir, f'{stem}.ext')
		with open(ext, 'w') as f:
			f.write(f'subjectAltName={san}\nbasicConstraints=CA:FALSE\n'
			        'keyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n')
		sh(['openssl', 'req', '-new', '-key', key, '-subj', f'/O=bitw test/CN={cn}', '-out', csr])
		sh(['openssl', 'x509', '-req', '-in', csr, '-CA', self.ca_cert, '-CAkey', self.ca_key, '-CAcreateserial',
		    '-days', '1', '-sha256', '-extfile', ext, '-out', cert])
		return cert, key


def dn(cn):
	return f'O=bitw test, CN={cn}'


# --- checks shared by the interop tests ---------------------------------------------------------------------------

def udp_ports(pkts):
	"""{(sport, dport)} of the UDP datagrams in a capture."""
	from scapy.layers.inet import UDP
	return {(p[UDP].sport, p[UDP].dport) for p in pkts if UDP in p}


def esp_in_udp(pkts):
	"""The frames that carry ESP in UDP 4500 (a non-zero first word: not the non-ESP marker of IKE)."""
	from scapy.layers.inet import UDP
	out = []
	for p in pkts:
		if UDP in p and 4500 in (p[UDP].sport, p[UDP].dport):
			body = bytes(p[UDP].payload)
			if len(body) > 8 and body[:4] != b'\0\0\0\0':
				out.append(p)
	return out


def plaintext_between_lans(pkts):
	from scapy.layers.inet import IP
	lans = ('198.18.1.', '198.18.2.')
	return [p for p in pkts if IP in p and p[IP].src.startswith(lans) and p[IP].dst.startswith(lans)]


def children_spis(charon):
	return sorted((c.get('spi-in'), c.get('spi-out')) for _, c in charon.children())


def ike_spis(charon):
	return sorted((sa.get('initiator-spi'), sa.get('responder-spi')) for _, sa in charon.sas()
	              if sa.get('state') == 'ESTABLISHED')


def wait_for(pred, timeout, step=0.2):
	end = time.time() + timeout
	while time.time() < end:
		v = pred()
		if v:
			return v
		time.sleep(step)
	return pred()


def parse_ping(text):
	m = re.search(r'(\d+) packets transmitted, (\d+) received', text)
	return (int(m.group(1)), int(m.group(2))) if m else (0, 0)
