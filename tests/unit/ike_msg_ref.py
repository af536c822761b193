#!/usr/bin/python3
# ike_msg_ref.py: builds the reference IKEv2 messages of test_ike_msg.c with scapy's independent encoder (run with /usr/bin/python3).
from scapy.all import load_contrib, raw
load_contrib('ikev2')
from scapy.contrib.ikev2 import (IKEv2, IKEv2_payload_SA, IKEv2_payload_Proposal, IKEv2_payload_Transform,
                                 IKEv2_payload_KE, IKEv2_payload_Nonce, IKEv2_payload_Notify, IKEv2_payload,
                                 IKEv2_Key_Length_Attribute)

SPII = bytes.fromhex('0102030405060708')
SPIR = bytes.fromhex('1112131415161718')

def sa_init():
	tr = (IKEv2_payload_Transform(transform_type='Encryption', transform_id=12, length=12, key_length=256)  # AES-CBC-256; scapy writes the attribute only when told the length
	      / IKEv2_payload_Transform(transform_type='PRF', transform_id=5)           # HMAC-SHA2-256
	      / IKEv2_payload_Transform(transform_type='Integrity', transform_id=12)    # HMAC-SHA2-256-128
	      / IKEv2_payload_Transform(transform_type='GroupDesc', transform_id=31))   # Curve25519
	prop = IKEv2_payload_Proposal(proposal=1, proto=1, trans_nb=4, trans=tr)
	# scapy 2.5 fills in only the header's next payload, so each payload names its successor here.
	ke = IKEv2_payload_KE(next_payload=40, group=31, load=bytes(range(32)))
	nonce = IKEv2_payload_Nonce(next_payload=41, load=bytes(range(0x40, 0x60)))
	nsrc = IKEv2_payload_Notify(next_payload=41, type=16388, load=bytes([0xa0 + i for i in range(20)]))
	ndst = IKEv2_payload_Notify(type=16389, load=bytes([0xc0 + i for i in range(20)]))
	m = IKEv2(init_SPI=SPII, resp_SPI=b'\0' * 8, exch_type=34, flags='Initiator', id=0) \
	    / IKEv2_payload_SA(next_payload=34, prop=prop) / ke / nonce / nsrc / ndst
	return raw(m)

def informational_delete():
	# scapy 2.5's IKEv2_payload_Delete is a copy of Vendor ID, so the Delete body (protocol ESP, SPI size 4, two SPIs)
	# goes into the generic payload; scapy still frames it. A real one travels inside SK; the codec does not care.
	# scapy 2.5's Notify length leaves out the SPI, so it is given: 4 + 4 + SPI size.
	n = IKEv2_payload_Notify(length=12, proto=3, SPIsize=4, type=16393, SPI=b'\xc0\x00\x00\x03')  # REKEY_SA
	d = IKEv2_payload(next_payload=41, load=bytes.fromhex('03040002c0000001c0000002'))
	m = IKEv2(init_SPI=SPII, resp_SPI=SPIR, next_payload=42, exch_type=37, flags='Response', id=7) / d / n
	return raw(m)

def check(b):
	# scapy's own dissector must read the message back, payload by payload, to the end.
	m = IKEv2(b)
	assert len(m) == len(b) and not m.haslayer('Raw'), m.show(dump=True)
	return b

def c_array(name, b):
	lines = ['static const uint8_t %s[] = {' % name]
	for i in range(0, len(b), 12):
		lines.append('\t' + ', '.join('0x%02x' % x for x in b[i:i + 12]) + ',')
	lines.append('};')
	return '\n'.join(lines)

print(c_array('ref_sa_init', check(sa_init())))
print(c_array('ref_info_delete', check(informational_delete())))
