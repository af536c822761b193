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

Transport mode (esp-kat --transport, i.e. wire/transport.c): the host's own
packet gains AH after its IP header (IPv6: after hop-by-hop and routing
headers); esp-kat's packet equals scapy's byte for byte where both place AH
alike (IPv4 with options, IPv6, hop-by-hop, a type 0 routing header that scapy
computes as at its final destination), and scapy verifies the one where they
differ (destination options for the final host: bitw puts AH before them,
scapy after; RFC 4302 3.1.1 allows both) and vice versa. AES-GMAC AH
(RFC 4543 5, which scapy lacks) is checked against python3-cryptography's
AES-GCM over the packet with scapy's mutable fields zeroed, both ways.

Usage: /usr/bin/python3 ah_kat.py path/to/esp-kat      (prints TAP)
"""
import subprocess
import sys

import esp_kat as E
from scapy.layers.inet import IP, IPOption_RR, IPOption_Router_Alert
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.inet import ICMP, UDP
from scapy.layers.inet6 import HBHOptUnknown, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.ipsec import AH, SecurityAssociation, zero_mutable_fields
from scapy.packet import Raw, raw

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


def transport(mode, integ, data, seq, key=None, esn=False):
    key = key if key is not None else E.INTEGS[integ][1]
    args = [E.ESP_KAT, mode, "--transport", "--ah", "0", "--enc", "null", "--integ", integ, "--integ-key",
            key.hex(), "--spi", str(E.SPI), "--seq", str(seq), "--inner" if mode == "encap" else "--esp", data.hex()]
    if esn:
        args.append("--esn")
    r = subprocess.run(args, capture_output=True, text=True)
    return r.returncode, r.stdout.split(), r.stderr


def scapy_transport(integ):
    auth, key, _, _ = E.INTEGS[integ]
    return SecurityAssociation(AH, spi=E.SPI, auth_algo=auth, auth_key=key)


HOST4 = IP(src="198.18.1.10", dst="198.18.2.10", id=4321, ttl=61, flags="DF")
HOST6 = IPv6(src="2001:db8:1::10", dst="2001:db8:2::10", hlim=61)
PING = ICMP(type=8, id=7, seq=1) / Raw(b"bitw transport known answer")
UDP6 = UDP(sport=4000, dport=5000) / Raw(b"bitw transport known answer")


def transport_packets():
    """(what, host packet, bytes-equal to scapy?) for transport mode."""
    rr = IP(raw(IP(src=HOST4.src, dst=HOST4.dst, id=4321, ttl=61, flags="DF",
                   options=[IPOption_RR(routers=["0.0.0.0"]), IPOption_Router_Alert()]) / PING))
    rh = IPv6(src=HOST6.src, dst="2001:db8:9::1", hlim=61) / IPv6ExtHdrRouting(addresses=["2001:db8:2::10"]) / UDP6
    return [
        ("IPv4 ping", IP(raw(HOST4 / PING)), True),
        ("IPv4 with record-route and router-alert options", rr, True),
        ("IPv6 UDP", IPv6(raw(HOST6 / UDP6)), True),
        ("IPv6 hop-by-hop (may-change option)", IPv6(raw(HOST6 / IPv6ExtHdrHopByHop(
            options=[HBHOptUnknown(otype=0x3E, optdata=b"abcd")]) / UDP6)), True),
        ("IPv6 type 0 routing header, one address left", IPv6(raw(rh)), True),
        ("IPv6 hop-by-hop + destination options", IPv6(raw(HOST6 / IPv6ExtHdrHopByHop(
            options=[HBHOptUnknown(otype=0x3E, optdata=b"abcd")]) / IPv6ExtHdrDestOpt(
            options=[HBHOptUnknown(otype=0x1E, optdata=b"wxyz")]) / UDP6)), False),
    ]


def transport_one(integ, what, pkt, same):
    sa = scapy_transport(integ)
    name = "%s transport %s" % (integ, what)
    rc, out, err = transport("encap", integ, raw(pkt), 21)
    ours = bytes.fromhex(out[0]) if rc == 0 and out else b""
    theirs = raw(sa.encrypt(pkt.__class__(raw(pkt)), seq_num=21))
    if same:
        E.check(ours == theirs, name + ": esp-kat's AH packet equals scapy's", "scapy   %s\nesp-kat %s %s" %
                (theirs.hex(), out, err))
    else:
        E.check(ours[40] == 51 and ours[48] == 60, name + ": AH between hop-by-hop and destination options",
                ours.hex())
        try:
            back = raw(sa.decrypt(pkt.__class__(ours)))
        except Exception as e:  # noqa: BLE001 - scapy raises IPSecIntegrityError
            back = repr(e).encode()
        E.check(back == raw(pkt), name + ": scapy verifies esp-kat's packet to the host's own", back.hex())
    routed = route(pkt.__class__(theirs))
    if pkt.version == 6 and IPv6ExtHdrRouting in routed:
        routed = scapy_route_processed(routed)
    rc, out, err = transport("decap", integ, raw(routed), 21)
    want = raw(route(pkt)) if IPv6ExtHdrRouting not in pkt else None
    E.check(rc == 0 and out and (want is None or out[0] == want.hex()),
            name + ": esp-kat verifies scapy's packet after routers had their way, and restores the host's",
            "%s %s" % (out, err))
    bad = bytearray(raw(routed))
    bad[-1] ^= 1
    rc, out, _ = transport("decap", integ, bytes(bad), 21)
    E.check(rc == 1 and out == ["XE_AH_DIGEST_MISMATCH"], name + ": a changed payload bit fails", out)


def scapy_route_processed(p):
    """The first hop of a type 0 routing header did its job: destination and address swapped, none left."""
    p = p.copy()
    rh = p[IPv6ExtHdrRouting]
    final = rh.addresses[-1]
    rh.addresses = [p.dst] + rh.addresses[:-1]
    rh.segleft = 0
    p.dst = final
    return IPv6(raw(p))


GMAC_KEYS = {"aes-gmac-128": bytes(range(1, 21)), "aes-gmac-256": bytes(range(101, 137))}


def gmac_icv(integ, pkt_bytes, ah_off, esn_hi=None):
    """RFC 4543 5 computed here: scapy zeroes the mutable fields, the IV goes back, AES-GCM tags the AAD."""
    key = GMAC_KEYS[integ]
    p = IP(pkt_bytes) if pkt_bytes[0] >> 4 == 4 else IPv6(pkt_bytes)
    zeroed = bytearray(raw(zero_mutable_fields(p.copy(), sending=True)))
    iv = pkt_bytes[ah_off + 12:ah_off + 20]
    zeroed[ah_off + 12:ah_off + 20] = iv
    aad = bytes(zeroed) + (esn_hi.to_bytes(4, "big") if esn_hi is not None else b"")
    return iv, AESGCM(key[:-4]).encrypt(key[-4:] + iv, b"", aad)


def gmac_one(integ, what, pkt, ah_off, seq, esn):
    name = "%s %s%s" % (integ, what, " esn" if esn else "")
    rc, out, err = transport("encap", integ, raw(pkt), seq, GMAC_KEYS[integ], esn)
    ours = bytes.fromhex(out[0]) if rc == 0 and out else b""
    if not ours:
        E.check(False, name + ": esp-kat encapsulates", err)
        return
    iv, tag = gmac_icv(integ, ours, ah_off, seq >> 32 if esn else None)
    E.check(iv == seq.to_bytes(8, "big"), name + ": the IV is the 64-bit sequence number", iv.hex())
    E.check(ours[ah_off + 20:ah_off + 36] == tag, name + ": the ICV equals AES-GCM's tag over the zeroed packet",
            "ours %s\ngcm  %s" % (ours[ah_off + 20:ah_off + 36].hex(), tag.hex()))
    # the other way: a packet made here (another IV) verifies in esp-kat after routers changed mutable fields
    made = bytearray(ours)
    made[ah_off + 12:ah_off + 20] = b"\x5a" * 8
    made[ah_off + 20:ah_off + 36] = b"\x00" * 16
    _, tag = gmac_icv(integ, bytes(made), ah_off, seq >> 32 if esn else None)
    made[ah_off + 20:ah_off + 36] = tag
    routed = raw(route(pkt.__class__(bytes(made))))
    rc, out, err = transport("decap", integ, routed, seq, GMAC_KEYS[integ], esn)
    E.check(rc == 0 and out and out[0] == raw(route(pkt)).hex(),
            name + ": esp-kat verifies a packet tagged by AES-GCM here", "%s %s" % (out, err))
    made[ah_off + 13] ^= 1
    rc, out, _ = transport("decap", integ, bytes(made), seq, GMAC_KEYS[integ], esn)
    E.check(rc == 1 and out == ["XE_AH_DIGEST_MISMATCH"], name + ": a changed IV fails", out)


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
    for integ in ("hmac-sha1-96", "hmac-sha256-128", "aes-xcbc-96"):
        for what, pkt, same in transport_packets():
            transport_one(integ, what, pkt, same)
    for integ in GMAC_KEYS:
        gmac_one(integ, "transport IPv4", IP(raw(HOST4 / PING)), 20, 33, False)
        gmac_one(integ, "transport IPv6", IPv6(raw(HOST6 / UDP6)), 40, 34, False)
    gmac_one("aes-gmac-128", "transport IPv4", IP(raw(HOST4 / PING)), 20, (7 << 32) + 5, True)
    print("1..%d" % E.n_checks)
    return 1 if E.failed else 0


if __name__ == "__main__":
    sys.exit(main())
