#!/usr/bin/python3
"""Builds the demo captures that `make run` replays (run with Debian's
/usr/bin/python3, which has python3-scapy):

  /usr/bin/python3 testdata/demo/gen.py testdata/demo

Two APs behind one tunnel profile (VLANs 100 and 200, native 100):
  ap1: the seed's tunnel -- ESP transport mode, AES-CTR-256 + HMAC-SHA2-512-256,
       ESN, L2TPv3 over IP (proto 115), 8-byte cookies, VLAN pseudowire.
  ap2: ESP tunnel mode in UDP 4500 (NAT-T), AES-GCM-256, L2TPv3 over IP, no
       cookie, Ethernet pseudowire.
The downstream capture also holds what a real link carries besides data (IKE,
an L2TP HELLO) and three attacks (a replayed packet, a wrong cookie, a
tampered ICV); the upstream capture holds the corporate side's answers, a
broadcast and a frame on a VLAN no tunnel carries.

scapy 2.5.0 has two ESP bugs worked around here (the ideas come from the
project's peer notes): with NAT-T it leaves the UDP length at 8, and with ESN it
leaves the high sequence bits out of the HMAC ICV (RFC 4303 §3.3.2.1).
Keys are fixed so the capture is reproducible and tshark can decrypt it.
"""
import hashlib, hmac, struct, sys
from scapy.all import Ether, Dot1Q, IP, UDP, ARP, Raw, BOOTP, DHCP, wrpcap, raw, conf
from scapy.layers.ipsec import SecurityAssociation, ESP
conf.verb = 0

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
TUN, AP1, AP2 = "198.18.0.1", "198.18.0.2", "198.18.0.3"
GW_MAC, OUR_MAC = "02:00:00:00:00:fe", "02:00:00:00:00:01"
AP1_KEY_IN = bytes.fromhex("11" * 32 + "a1a2a3a4")     # what ap1 encrypts with (our "in")
AP1_AUTH_IN = bytes.fromhex("22" * 64)
AP2_KEY_IN = bytes.fromhex("33" * 32 + "b1b2b3b4")
C1, C2, HOST = "02:aa:00:00:00:01", "02:aa:00:00:00:02", "02:cc:00:00:00:10"


def l2tp_ip(sid, cookie, inner):
    return struct.pack("!I", sid) + cookie + struct.pack("!I", 0) + raw(inner)   # + default L2-specific sublayer


def esn_fix(sa, pkt, seq_hi):
    """recompute the HMAC ICV with the ESN high bits appended (RFC 4303 §3.3.2.1)"""
    n = sa.auth_algo.icv_size
    esp = pkt[ESP]
    body = raw(esp)[:-n]
    esp.data = esp.data[:-n] + hmac.new(sa.auth_key, body + struct.pack("!L", seq_hi), hashlib.sha512).digest()[:n]
    return pkt.__class__(raw(pkt))


def ap1(seq, inner, cookie=bytes.fromhex("0011223344556677"), tamper=False):
    sa = SecurityAssociation(ESP, spi=0x1001, crypt_algo="AES-CTR", crypt_key=AP1_KEY_IN,
                             auth_algo="SHA2-512-256", auth_key=AP1_AUTH_IN, esn_en=True, esn=0)
    p = IP(src=AP1, dst=TUN, proto=115) / Raw(l2tp_ip(4097, cookie, inner))
    e = esn_fix(sa, sa.encrypt(p, seq_num=seq), 0)
    if tamper:
        b = bytearray(raw(e)); b[-1] ^= 1; e = IP(bytes(b))
    return Ether(src=GW_MAC, dst=OUR_MAC) / e


def ap2(seq, inner):
    sa = SecurityAssociation(ESP, spi=0x1002, crypt_algo="AES-GCM", crypt_key=AP2_KEY_IN,
                             tunnel_header=IP(src=AP2, dst=TUN), nat_t_header=UDP(sport=4500, dport=4500))
    e = sa.encrypt(IP(src=AP2, dst=TUN, proto=115) / Raw(l2tp_ip(4098, b"", inner)), seq_num=seq)
    e[UDP].len = None                       # scapy 2.5.0 NAT-T length bug
    return Ether(src=GW_MAC, dst=OUR_MAC) / IP(raw(e))


def dhcp_discover(mac, vlan=None):
    l2 = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
    if vlan:
        l2 = l2 / Dot1Q(vlan=vlan)
    return (l2 / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) /
            BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")) + b"\0" * 10, xid=0x1234) /
            DHCP(options=[("message-type", "discover"), "end"]))


down, up = [], []
t = 1700000000.0
def at(lst, pkt, dt=0.001):
    global t
    t += dt
    pkt.time = t
    lst.append(pkt)

at(down, Ether(src=GW_MAC, dst=OUR_MAC) / IP(src=AP1, dst=TUN) / UDP(sport=500, dport=500) / Raw(b"\0" * 28))  # IKE_SA_INIT-ish: host
at(down, ap1(1, dhcp_discover(C1, vlan=100)))                                   # tagged broadcast, VLAN 100
at(down, ap2(1, Ether(src=C2, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="198.19.200.2", pdst="198.19.200.1")))  # untagged -> native 100
at(down, ap1(2, Ether(src=C1, dst=HOST) / Dot1Q(vlan=200) / IP(src="198.19.200.10", dst="198.19.200.1") / UDP(sport=5000, dport=9999) / Raw(b"query")))
at(up,   Ether(src=HOST, dst=C1) / Dot1Q(vlan=200) / IP(src="198.19.200.1", dst="198.19.200.10") / UDP(sport=9999, dport=5000) / Raw(b"answer"))
at(up,   Ether(src=HOST, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=100) / ARP(op=1, psrc="198.19.100.1", pdst="198.19.100.77"))  # flooded to both APs
at(up,   Ether(src=HOST, dst=C2) / Dot1Q(vlan=100) / IP(src="198.19.100.1", dst="198.19.100.2") / UDP(sport=9999, dport=5001) / Raw(b"to-ap2"))
at(up,   Ether(src=HOST, dst=C1) / Dot1Q(vlan=300) / IP(src="198.19.30.1", dst="198.19.30.2") / UDP(sport=9999, dport=9999) / Raw(b"vlan 300 is not ours"))
at(down, ap1(2, Ether(src=C1, dst=HOST) / Dot1Q(vlan=200) / Raw(b"replayed")))  # same seq as before
at(down, ap1(3, Ether(src=C1, dst=HOST) / Dot1Q(vlan=200) / Raw(b"x"), cookie=bytes(8)))  # wrong cookie
at(down, ap1(4, Ether(src=C1, dst=HOST) / Dot1Q(vlan=200) / Raw(b"y"), tamper=True))  # flipped ICV bit
at(down, Ether(src=GW_MAC, dst=OUR_MAC) / IP(src=AP1, dst=TUN, proto=115) / Raw(struct.pack("!I", 0) + b"\xc8\x03\0\x14" + b"\0" * 16))  # L2TP control
wrpcap(OUT + "/downstream-in.pcap", down)
wrpcap(OUT + "/upstream-in.pcap", up)
print("wrote %d downstream and %d upstream frames to %s" % (len(down), len(up), OUT))
