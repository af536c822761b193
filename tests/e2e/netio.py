# netio.py: TCP/UDP senders and receivers run inside the test namespaces; each prints one JSON result line.

import argparse
import hashlib
import json
import socket
import sys
import time


def payload_stream(nbytes, marker):
	"""Deterministic data with the marker in every block, so a capture of a
	cleartext leak would show it."""
	block = (marker.encode() + b'|' + bytes(range(256)) * 16)[:4096]
	sent = 0
	i = 0
	while sent < nbytes:
		chunk = (i.to_bytes(8, 'big') + block)[:min(4096, nbytes - sent)]
		yield chunk
		sent += len(chunk)
		i += 1


def family(args):
	return socket.AF_INET6 if args.v6 or (getattr(args, 'to', None) and ':' in args.to) else socket.AF_INET


def tcp_recv(args):
	s = socket.socket(family(args), socket.SOCK_STREAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind(('::' if args.v6 else '0.0.0.0', args.port))
	s.listen(1)
	s.settimeout(args.timeout)
	print('listening', flush=True)
	c, peer = s.accept()
	c.settimeout(args.timeout)
	h = hashlib.sha256()
	n = 0
	t0 = time.time()
	while True:
		d = c.recv(65536)
		if not d:
			break
		h.update(d)
		n += len(d)
	print(json.dumps({'bytes': n, 'sha256': h.hexdigest(), 'peer': peer[0],
	                  'seconds': round(time.time() - t0, 3)}), flush=True)


def tcp_send(args):
	s = socket.create_connection((args.to, args.port), timeout=args.timeout)
	h = hashlib.sha256()
	n = 0
	for chunk in payload_stream(args.bytes, args.marker):
		s.sendall(chunk)
		h.update(chunk)
		n += len(chunk)
	s.shutdown(socket.SHUT_WR)
	s.recv(1)  # wait for the receiver to close: everything arrived
	s.close()
	print(json.dumps({'bytes': n, 'sha256': h.hexdigest()}), flush=True)


def udp_recv(args):
	s = socket.socket(family(args), socket.SOCK_DGRAM)
	if args.hold:
		s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
	s.bind(('::' if args.v6 else '0.0.0.0', args.port))
	print('listening', flush=True)
	# --hold: leave what arrives queued on the socket for a while before reading any of it
	time.sleep(args.hold)
	got = {}
	bad = 0
	end = time.time() + args.timeout
	while len(got) < args.count and time.time() < end:
		s.settimeout(max(0.05, end - time.time()))
		try:
			d, _ = s.recvfrom(65536)
		except socket.timeout:
			break
		seq = int.from_bytes(d[:4], 'big')
		if d[4:] != udp_body(seq, args.size, args.marker):
			bad += 1
			continue
		got[seq] = got.get(seq, 0) + 1
	print(json.dumps({'received': len(got), 'corrupt': bad,
	                  'duplicates': sum(v - 1 for v in got.values())}), flush=True)


def udp_body(seq, size, marker):
	base = (marker.encode() + b'#' + str(seq).encode() + b'#') * (size // 8 + 1)
	return base[:max(0, size - 4)]


SO_RCVBUFFORCE, SO_NO_CHECK = 33, 11  # not in Python's socket module


def udp_send(args):
	s = socket.socket(family(args), socket.SOCK_DGRAM)
	if args.no_check:
		# IPv4 UDP without a checksum: a datagram changed on its way is delivered (and found corrupt), not dropped
		s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
	for seq in range(args.count):
		s.sendto(seq.to_bytes(4, 'big') + udp_body(seq, args.size, args.marker), (args.to, args.port))
		if args.interval:
			time.sleep(args.interval)
	print(json.dumps({'sent': args.count}), flush=True)


def main():
	ap = argparse.ArgumentParser()
	ap.add_argument('cmd', choices=['tcp-recv', 'tcp-send', 'udp-recv', 'udp-send'])
	ap.add_argument('--to')
	ap.add_argument('--port', type=int, default=5001)
	ap.add_argument('--v6', action='store_true')
	ap.add_argument('--v4', action='store_true')
	ap.add_argument('--bytes', type=int, default=1 << 20)
	ap.add_argument('--count', type=int, default=100)
	ap.add_argument('--size', type=int, default=200)
	ap.add_argument('--interval', type=float, default=0.002)
	ap.add_argument('--marker', default='BITW-PLAINTEXT-MARKER')
	ap.add_argument('--timeout', type=float, default=60)
	ap.add_argument('--hold', type=float, default=0)
	ap.add_argument('--no-check', action='store_true')
	args = ap.parse_args()
	try:
		{'tcp-recv': tcp_recv, 'tcp-send': tcp_send, 'udp-recv': udp_recv, 'udp-send': udp_send}[args.cmd](args)
	except OSError as e:
		print(json.dumps({'error': str(e)}), flush=True)
		return 1
	return 0


if __name__ == '__main__':
	sys.exit(main())
