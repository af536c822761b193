#!/usr/bin/python3
"""ah_kat.py: AH (RFC 4302) known-answer tests of bitw's ah.c (through esp-kat --ah) against scapy 2.5's AH.

For each integrity algorithm scapy builds a tunnel-mode AH packet (IPv4 and
IPv6 outer headers, with and without ESN); esp-kat, given the same packet,
must compute the same AH header and ICV byte for byte, and must verify
scapy's packet after a router changed its mutable fields (TTL/hop limit,
DSCP/ECN, DF, checksum, flow label) and return the inner packet. Two more
cases carry an IPv4 option (record route, mutable) and an IPv6 hop-by-hop
option with the may-change bit, which scapy zeroes for the ICV as RFC 4302
A.1/A.2 say. AES-XCBC-MAC-96 comes from esp_kat.py, registered with scapy
and checked there against RFC 3566's vectors.

Usage: /usr/bin/python3 ah_kat.py path/to/esp-kat      (prints TAP)
"""
import subprocess
import sys

import esp_kat as E
from scapy.layers.inet import IP, IPOption_RR, IPOption_Router_Alert
from scapy.layers.inet6 import HBHOptUnknown, IPv6, IPv6ExtHdrHopByHop
from scapy.layers.ipsec import AH, SecurityAssociation
from scapy.packet import raw

ALGS = ["hmac-sha1-96", "hmac-sha256-128", "hmac-sha384-192", "hmac-sha512-256", "aes-xcbc-96"]
TUNNEL4 = IP(src="192.0.2.1", dst="198.51.100.2", ttl=64, tos=0x2E, id=77)
TUNNEL6 = IPv6(src="2001:db8::1", dst="2001:db8:1::2", hlim=64)


def kat(mode, integ, ah_off, data_flag, data, seq, esn):
    _, key, _, _ = E.INTEGS[integ]
    args = [E.ESP_KAT, mode, "--ah", str(ah_off), "--enc", "null", "--integ", integ, "--integ-key", key.hex(),
            "--spi", str(E.SPI), "--seq", str(seq), data_flag, data.hex()]
    if esn:
        args.append("--esn")
    if mode == "encap":
        args += ["--nh", str(data[ah_off])]
    r = subprocess.run(args, capture_output=True, text=True)
    return r.returncode, r.stdout.split(), r.stderr


def scapy_ah(integ, pkt, seq, esn, tunnel=None):
    auth, key, _, _ = E.INTEGS[integ]
    sa = SecurityAssociation(AH, spi=E.SPI, auth_algo=auth, auth_key=key, tunnel_header=tunnel)
    if esn:
        return sa.encrypt(pkt, seq_num=seq & 0xFFFFFFFF, esn_en=True, esn=seq >> 32)
    return sa.encrypt(pkt, seq_num=seq)


def route(pkt):
    """What routers on the way may do to the outer header: none of it may break the ICV."""
    p = pkt.copy()
    if p.version == 4:
        p.ttl, p.tos, p.flags = 3, 0x03, 0
        del p.chksum
    else:
        p.hlim, p.tc, p.fl = 3, 0x0F, 0x12345
    return p.__class__(raw(p))


def one(integ, what, pkt, ah_off, seq, esn, inner, tunnel=None):
    theirs = raw(scapy_ah(integ, pkt, seq, esn, tunnel))
    name = "%s %s%s" % (integ, what, " esn" if esn else "")
    rc, out, err = kat("encap", integ, ah_off, "--inner", theirs, seq, esn)
    E.check(rc == 0 and out and out[0] == theirs.hex(), name + ": esp-kat's AH equals scapy's",
            "scapy   %s\nesp-kat %s %s" % (theirs.hex(), out, err))
    routed = raw(route(pkt.__class__(theirs)))
    rc, out, err = kat("decap", integ, ah_off, "--esp", routed, seq, esn)
    E.check(rc == 0 and len(out) == 3 and out[0] == raw(inner).hex() and out[2] == str(theirs[ah_off]),
            name + ": esp-kat verifies scapy's packet after routers changed mutable fields", "%s %s" % (out, err))
    bad = bytearray(routed)
    bad[-1] ^= 1
    rc, out, _ = kat("decap", integ, ah_off, "--esp", bytes(bad), seq, esn)
    E.check(rc == 1 and out == ["XE_AH_DIGEST_MISMATCH"], name + ": a changed payload bit fails", out)


def main():
    inner4 = E.INNERS[0][1]
    inner6 = E.INNERS[1][1]
    for integ in ALGS:
        one(integ, "IPv4 tunnel", inner4, 20, 7, False, inner4, TUNNEL4)
        one(integ, "IPv6 tunnel", inner6, 40, 9, False, inner6, TUNNEL6)
    for integ in ("hmac-sha256-128", "aes-xcbc-96"):
        one(integ, "IPv4 tunnel", inner4, 20, (5 << 32) + 3, True, inner4, TUNNEL4)
    # Options, as a transport-mode packet would carry them; the AH processing is the same.
    opt4 = IP(src="192.0.2.1", dst="198.51.100.2", options=[IPOption_RR(routers=["0.0.0.0"]),
                                                            IPOption_Router_Alert()]) / inner4
    opt4 = IP(raw(opt4))
    one("hmac-sha256-128", "IPv4 options", opt4, opt4.ihl * 4, 11, False, inner4)
    hbh = IPv6(src="2001:db8::1", dst="2001:db8:1::2", nh=0) / IPv6ExtHdrHopByHop(
        options=[HBHOptUnknown(otype=0x3E, optdata=b"abcd")]) / inner6
    hbh = IPv6(raw(hbh))
    one("hmac-sha256-128", "IPv6 hop-by-hop", hbh, 48, 12, False, inner6)
    print("1..%d" % E.n_checks)
    return 1 if E.failed else 0


if __name__ == "__main__":
    sys.exit(main())
