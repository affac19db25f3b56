"""ESP transport mode + ESN with IKE-negotiated keys, built and checked by scapy.

strongSwan's kernel-libipsec refuses transport mode and ESN, so the IKE tests
(control/ike/scapy_test.go) negotiate such a CHILD_SA with the Go initiator
(control/ike/iketest), export the AP's side of it to SAS.json, and this script plays
the AP's dataplane:

  gen SAS.json DIR     DIR/down.pcap: Ethernet/IPv4/ESP (transport, built by scapy
                       with ttpkt's ESN-with-HMAC repair) carrying L2TPv3 over IP to the
                       tunnel address for the AP's session; sequence numbers cross 2^32
                       (seq_hi 0 -> 1, RFC 4303 §3.3.2.1 / Appendix A) and one packet is
                       replayed. DIR/manifest.json: per frame the 64-bit sequence number,
                       the fate ("forward" or "replay") and the inner frame (hex).
  decode PCAP SAS.json one JSON record per frame tunterm sent towards the AP: opened with
                       the AP's inbound SA by scapy and by ttpkt's own ESP code, ESN-aware
                       (seq_hi from SAS.json, default 0), plus whether the ESN-ignorant
                       ICV/AAD would have been refused (it must be: proves the ESN bits
                       are covered).

SAS.json: {"ap": "198.18.0.2", "us": "198.18.0.1", "ap_mac": "...", "our_mac": "...",
           "session": 11, "remote_session": 21, "vlan": 100, "client_mac": "...",
           "host_mac": "...", "ap_out": SA, "ap_in": SA, "in_seq_hi": 0}
with SA as ttpkt.SA.to_json. Run with /usr/bin/python3.
"""
import json
import os
import struct
import sys

import ttpkt
from ttpkt import SA, IntegrityError
from scapy.compat import raw
from scapy.layers.inet import IP
from scapy.packet import Raw

# Sequence numbers of the AP's packets: a normal start, a jump the receiver's window
# accepts with seq_hi 0 (from T=2 every seq_lo above T-W+1 infers Th), the top of the
# 32-bit space, then the wrap into seq_hi 1 (seq_lo below Tl-W+1 infers Th+1), and a
# replay of 0xffffffff once the window has moved on.
SEQS = [(1, "forward"), (2, "forward"), (0x80000000, "forward"), (0xfffffffe, "forward"),
        (0xffffffff, "forward"), (1 << 32, "forward"), ((1 << 32) + 1, "forward"),
        (0xffffffff, "replay"), ((1 << 32) + 2, "forward")]


def scapy_seal(sa, seq, src, dst, nh, payload, iv):
    """ttpkt.scapy_seal for transport mode, also for a low half of 0 (seq 2^32):
    scapy 2.5.0's SecurityAssociation.encrypt takes `seq_num or self.seq_num`, so
    seq_num=0 silently becomes the SA's counter (1); set the counter instead."""
    s = ttpkt.scapy_sa(sa, seq >> 32)
    s.seq_num = seq & 0xffffffff
    p = s.encrypt(IP(src=src, dst=dst, proto=nh) / Raw(payload), iv=iv)
    return ttpkt.fix_scapy(sa, raw(p), seq)


def gen(sas_path, out):
    c = json.load(open(sas_path))
    sa = SA.from_json(c["ap_out"])
    assert sa.esn, "the AP's outbound SA must use ESN"
    frames, manifest = [], []
    for n, (seq, fate) in enumerate(SEQS):
        inner = ttpkt.inner_frame(c["client_mac"], c["host_mac"], vlan=c["vlan"], n=n)
        payload = ttpkt.l2tp_data(False, c["session"]) + inner
        iv = struct.pack("!Q", 0x1000 + n)[-sa.c.ivlen:].rjust(sa.c.ivlen, b"\x5a")
        pkt = scapy_seal(sa, seq, c["ap"], c["us"], ttpkt.PROTO_L2TP, payload, iv)
        esp = pkt[(pkt[0] & 15) * 4:]
        assert struct.unpack("!I", esp[4:8])[0] == seq & 0xffffffff, "scapy sent another sequence number"
        # Our own decoder must open what scapy built (ESN-aware), and refuse it
        # ESN-ignorant: the packet really depends on seq_hi.
        got, nh, _ = ttpkt.open_(sa, esp, seq >> 32)
        assert got == payload and nh == ttpkt.PROTO_L2TP, "scapy and ttpkt disagree"
        if seq >> 32:
            try:
                ttpkt.open_(sa, esp, 0)
                raise AssertionError("seq %x opens with seq_hi 0" % seq)
            except IntegrityError:
                pass
        frames.append((1700000000 * 1000000 + n * 1000, ttpkt.ether(c["our_mac"], c["ap_mac"], pkt)))
        manifest.append(dict(seq=seq, fate=fate, inner=inner.hex()))
    os.makedirs(out, exist_ok=True)
    ttpkt.write_pcap(os.path.join(out, "down.pcap"), frames)
    json.dump(dict(frames=manifest), open(os.path.join(out, "manifest.json"), "w"), indent=1)


def decode(pcap, sas_path):
    c = json.load(open(sas_path))
    sa = SA.from_json(c["ap_in"])
    seq_hi = c.get("in_seq_hi", 0)
    plain = SA.from_json(dict(c["ap_in"], esn=False))
    recs = []
    for _, b in ttpkt.read_pcap(pcap):
        r = dict(problems=[])
        recs.append(r)
        r["dst_mac"], r["src_mac"] = b[0:6].hex(), b[6:12].hex()
        if b[12:14] != b"\x08\x00":
            r["problems"].append("not IPv4")
            continue
        ip = b[14:]
        ihl = (ip[0] & 15) * 4
        r["src"] = ".".join(str(x) for x in ip[12:16])
        r["dst"] = ".".join(str(x) for x in ip[16:20])
        r["proto"] = ip[9]
        if ip[9] != ttpkt.PROTO_ESP:
            r["problems"].append("not ESP (proto %d)" % ip[9])
            continue
        esp = ip[ihl:struct.unpack("!H", ip[2:4])[0]]
        r["spi"], r["seq"] = struct.unpack("!II", esp[:8])
        try:
            pl, nh = ttpkt.scapy_open(sa, esp, seq_hi)
        except IntegrityError as e:
            r["problems"].append("scapy: " + str(e))
            continue
        try:
            pl2, nh2, pad = ttpkt.open_(sa, esp, seq_hi)
            if (pl2, nh2) != (pl, nh):
                r["problems"].append("scapy and ttpkt disagree")
            if pad != bytes(range(1, len(pad) + 1)):
                r["problems"].append("padding not 1, 2, 3, ...")
        except (IntegrityError, ValueError) as e:
            r["problems"].append("ttpkt: " + str(e))
        try:
            ttpkt.open_(plain, esp, 0)
            r["problems"].append("also opens without ESN: seq_hi not in the ICV/AAD")
        except (IntegrityError, ValueError):
            pass
        r["next_header"] = nh
        if nh != ttpkt.PROTO_L2TP:
            r["problems"].append("next header %d, want 115 (L2TPv3, transport mode)" % nh)
            continue
        r["session"] = struct.unpack("!I", pl[:4])[0]
        r["sublayer"] = pl[4:8].hex()
        r["inner"] = pl[8:].hex()
    json.dump(recs, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if len(sys.argv) == 4 and sys.argv[1] == "gen":
        gen(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "decode":
        decode(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
