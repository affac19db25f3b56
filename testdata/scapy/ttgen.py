#!/usr/bin/python3
"""Builds the captures, configs and expectations of tunterm's interoperability tests
(cmd/tunterm/interop_test.go), and decodes what tunterm sent towards the APs.

  ttgen.py selftest            # RFC 7634 A.1 + our ESP == scapy's, both scapy bugs seen
  ttgen.py gen OUTDIR [matrix|bad|access|aging ...]
                               # OUTDIR/<name>/: config.yaml, down.pcap, up.pcap,
                               #   expected-up.pcap, manifest.json, sas.json, esp_sa
                               #   (+ esp_sa.chacha) Wireshark UATs; all four by default
  ttgen.py decode PCAP SAS     # JSON list: every frame of PCAP (tunterm's downstream
                               #   output) decrypted with scapy and with our own ESP code

See README.md. Run with /usr/bin/python3 (Debian python3-scapy).
"""
import json
import os
import random
import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ttpkt import (CIPHERS, INTEGS, SA, IntegrityError, seal, open_, scapy_seal, scapy_open,  # noqa: E402
                   scapy_sa, esp_packet, l2tp_data, l2tp_upper, ipv4, ether, inner_frame, set_tag,
                   untag, udp, pad_len, write_pcap, read_pcap, raw, IP, Raw, PROTO_IPIP, PROTO_UDP,
                   PROTO_ESP, PROTO_L2TP, PORT_L2TP, PORT_NATT)

US = "198.18.0.1"
US_MAC = "02:00:00:00:00:01"
GW_MAC = "02:00:00:00:00:fe"
T0 = 1700000000 * 1000000  # µs
CORP = "02:c0:00:00:00:01"  # a corporate host the APs talk to (never learned)


def mac(prefix, i):
    return "%s:%02x:%02x" % (prefix, (i >> 8) & 0xff, i & 0xff)


def hx(b):
    return b.hex()


# ---------------------------------------------------------------------------------
# selftest

# RFC 7634 Appendix A (ESP example, tunnel mode): KEYMAT = key(32) || salt(4), SPI
# 0x01020304, seq 5, IV 1011..17, the ESP payload is an 84-byte IPv4 ICMP packet.
RFC7634_KEYMAT = bytes(range(0x80, 0xa0)) + bytes.fromhex("a0a1a2a3")
RFC7634_IV = bytes(range(0x10, 0x18))
RFC7634_PLAIN = bytes.fromhex(
    "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10"
    "0007362708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
    "2425262728292a2b2c2d2e2f3031323334353637")
RFC7634_CT_TAG = bytes.fromhex(
    "24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c6"
    "14ee8099d52844eb61aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3"
    "cbec163fac469b502773f6fb94e664da9165b82829f641e0"
    "76aaa8266b7fb0f7b11b369907e1ad43")


def selftest():
    sa = SA(0x01020304, "chacha20-poly1305", RFC7634_KEYMAT)
    want = struct.pack("!II", 0x01020304, 5) + RFC7634_IV + RFC7634_CT_TAG
    got = seal(sa, 5, PROTO_IPIP, RFC7634_PLAIN, RFC7634_IV)
    assert got == want, "our ChaCha20-Poly1305 ESP != RFC 7634 A.1:\n got %s\nwant %s" % (got.hex(), want.hex())
    pl, nh, pad = open_(sa, want)
    assert (pl, nh, pad) == (RFC7634_PLAIN, 4, b"\x01\x02")
    print("ok   RFC 7634 Appendix A: our ChaCha20-Poly1305 ESP seal/open match the vector")
    s = scapy_sa(sa).encrypt(IP(src="198.18.0.2", dst=US, proto=4) / Raw(RFC7634_PLAIN), seq_num=5, iv=RFC7634_IV)
    print("info scapy 2.5.0's own CHACHA20-POLY1305 %s the vector" % (
        "matches" if raw(s)[20:] == want else "does NOT match"))

    rng = random.Random(1)
    n = 0
    bug_natt = bug_esn = 0
    for enc, c in CIPHERS.items():
        for integ in ([None] if c.aead else list(INTEGS)):
            for esn in (False, True):
                sa = SA(0x1000 + n, enc, rng.randbytes(c.keylen), integ,
                        rng.randbytes(INTEGS[integ].keylen) if integ else b"", esn)
                for tunnel in (False, True):
                    for natt in (None, 4500, 40001):
                        seq = (1 << 32 | 9) if esn else 9
                        iv = rng.randbytes(c.ivlen)
                        pl = rng.randbytes(rng.randrange(1, 90))
                        nh = PROTO_IPIP if tunnel else PROTO_L2TP
                        if tunnel:
                            pl = ipv4("198.18.0.2", US, PROTO_L2TP, pl)
                        ours = seal(sa, seq, nh, pl, iv)
                        # scapy (fixed) must give exactly our bytes, ChaCha20-Poly1305 included
                        sp = scapy_seal(sa, seq, "198.18.0.2", US, nh, pl, iv, tunnel, natt)
                        off = 20 + (8 if natt else 0)
                        assert sp[off:] == ours, (enc, integ, esn, tunnel, natt)
                        if natt:
                            assert struct.unpack("!HH", sp[20:24]) == (natt, PORT_NATT)
                            assert struct.unpack("!H", sp[24:26])[0] == len(sp) - 20
                        # unfixed scapy shows the bugs
                        s = scapy_sa(sa, seq >> 32, ("198.18.0.2", US) if tunnel else None, natt)
                        inner = IP(pl) if tunnel else IP(src="198.18.0.2", dst=US, proto=nh) / Raw(pl)
                        r = raw(s.encrypt(inner, seq_num=seq & 0xffffffff, iv=iv))
                        if natt and struct.unpack("!H", r[24:26])[0] == 8:
                            bug_natt += 1
                        if esn and integ and r[off:] != ours:
                            bug_esn += 1
                        mine = esp_packet(sa, seq, "198.18.0.2", US, nh, pl, iv, tunnel, natt)
                        assert mine[20 + (8 if natt else 0):] == ours
                        # both decoders open it
                        assert open_(sa, ours, seq >> 32)[:2] == (pl, nh)
                        assert scapy_open(sa, ours, seq >> 32) == (pl, nh), (enc, integ, esn)
                        bad = bytearray(ours)
                        bad[-1] ^= 1
                        for f in (open_, scapy_open):
                            try:
                                f(sa, bytes(bad), seq >> 32)
                                raise AssertionError("tampered ICV accepted by %s" % f.__name__)
                            except IntegrityError:
                                pass
                        n += 1
    print("ok   %d ESP packets: our seal == scapy (fixed) for all 7 ciphers x HMAC x ESN x transport/tunnel x NAT-T;"
          " both decoders open them and refuse a flipped ICV bit" % n)
    assert bug_natt > 0 and bug_esn > 0
    print("info scapy 2.5.0 bugs still present: NAT-T UDP length=8 (%d packets), ESN missing from the HMAC ICV"
          " (%d packets); fix_scapy() repairs both" % (bug_natt, bug_esn))


# ---------------------------------------------------------------------------------
# common config / capture building

def yaml_config(tunnels, peers, upstream_vlan=0, hairpin=False):
    out = ['downstream: {interface: eth0, address: %s/24, gateway: 198.18.0.254, mac: "%s", gateway_mac: "%s"}'
           % (US, US_MAC, GW_MAC),
           "upstream: {interface: eth1, vlan: %d}" % upstream_vlan,
           "bridge: {hairpin: %s, aging: 300s, max_macs_per_session: 0}" % ("true" if hairpin else "false"),
           "tunnels:"]
    for t in tunnels:
        out.append("  - {name: %s, vlans: [%s], native_vlan: %d, protocol: %s, mtu: %d, ipsec: %s}" % (
            t["name"], ", ".join(map(str, t["vlans"])), t["native"], t["proto"], t.get("mtu", 1400),
            "true" if t["ipsec"] else "false"))
    out.append("static_peers:")
    for p in peers:
        out += ["  - name: %s" % p["name"], "    address: %s" % p["addr"], "    tunnel: %s" % p["tunnel"]["name"],
                "    max_macs: %d" % p.get("max_macs", 0),
                '    l2tp: {local_session_id: %d, remote_session_id: %d, local_cookie: "%s", remote_cookie: "%s", '
                'pseudowire: %s, l2_specific: %s}' % (p["lsid"], p["rsid"], hx(p["lcookie"]), hx(p["rcookie"]),
                                                      p["pw"], p["l2s"])]
        if p.get("in"):
            i, o = p["in"], p["out"]
            out += ["    esp:", "      mode: %s" % p["mode"], "      udp_encap: %s" % str(p["natt"]).lower(),
                    "      esn: %s" % str(i.esn).lower(), "      replay_window: %d" % p.get("window", 64)]
            if p.get("inner"):
                out.append("      inner: {local: %s, remote: %s}" % p["inner"])
            for k, s in (("in", i), ("out", o)):
                line = '      %s: {spi: 0x%x, enc: %s, enc_key: "%s"' % (k, s.spi, s.enc, hx(s.ekey))
                if s.integ:
                    line += ', integ: %s, integ_key: "%s"' % (s.integ, hx(s.ikey))
                out.append(line + "}")
    return "\n".join(out) + "\n"


class Peer(dict):
    """A static peer: config values plus what an AP needs to build its packets."""

    def l2tp_addrs(self):
        """(src, dst) of the L2TP layer the AP sends: inner addresses in tunnel mode."""
        if self.get("in") and self["mode"] == "tunnel":
            inner = self.get("inner")
            return (inner[1], inner[0]) if inner else (self["addr"], US)
        return self["addr"], US

    def ap_frame(self, seq, frame, rng, src_mac=None, sid=None, cookie=None, sublayer=None, outer_src=None,
                 outer_dst=US, l2tp_src=None, natt_sport=None, padding=None, sa=None, nh=None, upper=None,
                 plaintext=False, tfc=0, inner_dst=None, ip_options=b""):
        """The Ethernet frame an AP sends for one inner frame (bytes). Overrides build the
        bad variants: wrong session/cookie/source/SA, custom padding, raw upper layer
        (next header, bytes), tunnel-mode inner addresses (l2tp_src, inner_dst). tfc: bytes of RFC 4303 §2.7 TFC padding after the tunnel-mode inner packet or the
        transport-mode UDP datagram; ip_options: outer IPv4 options."""
        t = self["tunnel"]
        over_udp = t["proto"] == "udp"
        l2 = l2tp_data(over_udp, self["lsid"] if sid is None else sid,
                       self["lcookie"] if cookie is None else cookie,
                       self["l2s"] == "default" if sublayer is None else sublayer) + frame
        lsrc, ldst = self.l2tp_addrs()
        lsrc, ldst = l2tp_src or lsrc, inner_dst or ldst
        src = outer_src or self["addr"]
        if upper is None:
            nh_, pl = l2tp_upper(over_udp, lsrc if not plaintext else src, ldst if not plaintext else outer_dst, l2)
        else:
            nh_, pl = upper
        if plaintext or not self.get("in"):
            ip = ipv4(src, outer_dst, nh_, pl)
        else:
            sa = sa or self["in"]
            tunnel = self["mode"] == "tunnel"
            if tunnel:
                pl = ipv4(lsrc, ldst, nh_, pl)
                nh_ = PROTO_IPIP
            pl += bytes(tfc)
            if nh is not None:
                nh_ = nh
            iv = rng.randbytes(sa.c.ivlen)
            sport = natt_sport if natt_sport is not None else (self.get("natport") if self["natt"] else None)
            ip = esp_packet(sa, seq, src, outer_dst, nh_, pl, iv, tunnel, sport, padding)
        if ip_options:
            ip = add_ip_options(ip, ip_options)
        return ether(US_MAC, src_mac or self["mac"], ip)

    def expect_down(self, ts, seq, frame, eth_dst):
        """What tunterm must send this peer for inner frame `frame` (already in its
        pseudowire form): the normalized record `decode` produces."""
        t = self["tunnel"]
        r = dict(ts_us=ts, eth_dst=eth_dst, eth_src=US_MAC, ip_src=US, ip_dst=self["addr"], encap="none",
                 udp_sport=0, udp_dport=0, spi=0, seq=0, inner_ip_src="", inner_ip_dst="",
                 l2tp=t["proto"], session_id=self["rsid"], cookie=hx(self["rcookie"]),
                 sublayer="00000000" if self["l2s"] == "default" else "", frame=hx(frame))
        if self.get("out"):
            r.update(encap="esp", spi=self["out"].spi, seq=seq)
            if self["natt"]:
                r.update(encap="udp", udp_sport=PORT_NATT, udp_dport=self["natport"])
            if self["mode"] == "tunnel":
                inner = self.get("inner") or (US, self["addr"])
                r.update(inner_ip_src=inner[0], inner_ip_dst=inner[1])
        return r

    def outer_len(self, inner_len):
        """Length of the outer IPv4 packet tunterm sends this peer for an inner frame of
        inner_len bytes (RFC 3931 header, RFC 4303 §2.4 minimal padding)."""
        udp = self["tunnel"]["proto"] == "udp"
        n = (16 if udp else 4) + len(self["rcookie"]) + (4 if self["l2s"] == "default" else 0) + inner_len
        sa = self.get("out")
        if not sa:
            return 20 + n
        if self["mode"] == "tunnel":
            n += 20
        return 20 + (8 if self["natt"] else 0) + 8 + sa.c.ivlen + n + pad_len(sa, n) + 2 + sa.icvlen

    def pw_form(self, frame, vlan):
        """RFC 4719 forms: pseudowire vlan keeps every tag; ethernet sends the tunnel's
        native VLAN untagged and tags the others. frame arrives tagged with vlan."""
        if self["pw"] == "ethernet" and vlan == self["tunnel"]["native"]:
            return untag(frame)
        return frame

    def sas_json(self):
        d = dict(addr=self["addr"], cookie_len=len(self["rcookie"]), sublayer=self["l2s"] == "default",
                 l2tp=self["tunnel"]["proto"], mode=self.get("mode", ""))
        if self.get("out"):
            d.update(self["out"].to_json())
        return d


def add_ip_options(ip, opts):
    """The IPv4 packet with options (a multiple of 4 bytes) after its 20-byte header."""
    h = bytearray(ip[:20])
    h[0] = 0x40 | (20 + len(opts)) // 4
    struct.pack_into("!HH", h, 2, len(ip) + len(opts), struct.unpack_from("!H", h, 4)[0])
    h[10:12] = b"\0\0"
    h = bytes(h) + opts
    c = ip_csum(h)
    return h[:10] + struct.pack("!H", c) + h[12:] + ip[20:]


def make_sa(rng, spi, enc, integ, esn):
    c = CIPHERS[enc]
    return SA(spi, enc, rng.randbytes(c.keylen), integ,
              rng.randbytes(INTEGS[integ].keylen) if integ else b"", esn)


class Scenario:
    """Frames on one timeline (1 ms apart) split into down.pcap / up.pcap, with the
    fate tunterm must give each one."""

    def __init__(self):
        self.frames, self.up_expected, self.down_expected = [], [], []
        self.ts = T0

    def add(self, direction, b, fate, reasons=(), name="", up=None):
        self.ts += 1000
        self.frames.append(dict(dir=direction, ts_us=self.ts, fate=fate, reasons=list(reasons), name=name,
                                len=len(b), data=b))
        if up is not None:
            self.up_expected.append((self.ts, up))
        return self.ts

    def write(self, d, config, peers, extra=None):
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "config.yaml"), "w").write(config)
        for direction in ("down", "up"):
            fr = [(f["ts_us"], f["data"]) for f in self.frames if f["dir"] == direction]
            if fr:
                write_pcap(os.path.join(d, direction + ".pcap"), fr)
        write_pcap(os.path.join(d, "expected-up.pcap"), self.up_expected)
        for name, chacha in (("esp_sa", False), ("esp_sa.chacha", True)):
            uat = [p["out"].ws_uat(US, p["addr"], chacha) for p in peers if p.get("out")]
            open(os.path.join(d, name), "w").write("\n".join(u for u in uat if u) + "\n")
        sas = {str(p["out"].spi if p.get("out") else 0x100000000 + p["rsid"]): p.sas_json() for p in peers}
        json.dump(sas, open(os.path.join(d, "sas.json"), "w"), indent=0)
        m = dict(frames=[{k: v for k, v in f.items() if k != "data"} for f in self.frames],
                 down_expected=self.down_expected)
        m.update(extra or {})
        json.dump(m, open(os.path.join(d, "manifest.json"), "w"), indent=0)


# ---------------------------------------------------------------------------------
# 1+2: the matrix

def gen_matrix(d):
    """Full cross product: 7 ciphers x transport/tunnel x plain/UDP-encap x ESN off/on x
    L2TPv3 over IP/UDP x cookie 0/4/8 x untagged/tagged inner frame = 672 peers.
    Extra factors are XORs of two distinct binary base factors, so each one meets every
    value of every other factor (pairwise coverage) while the base product stays full:
      pseudowire  = vlan       iff tagged ^ (l2tp over udp)
      l2_specific = none       iff tagged ^ udp_encap
      NAT source port = 4500   iff esn ^ tunnel      (else 40000+i)   [udp_encap peers]
      tag of a tagged frame = the tunnel's native VLAN iff esn ^ (l2tp over udp)
      esp.inner addresses set  iff udp_encap ^ esn                     [tunnel peers]
      remote cookie length = [0,4,8][(cookie index + tunnel) % 3]
    Integrity algorithms rotate over the non-AEAD peers (in and out differ)."""
    rng = random.Random(4303)
    tunnels = {"ip": dict(name="l2ip", vlans=[100, 200, 300], native=100, proto="ip", ipsec=True),
               "udp": dict(name="l2udp", vlans=[100, 200, 400], native=200, proto="udp", ipsec=True)}
    other = {"ip": 200, "udp": 100}
    integs = list(INTEGS)
    peers, k = [], 0
    for enc in CIPHERS:
        for mode in ("transport", "tunnel"):
            for natt in (False, True):
                for esn in (False, True):
                    for proto in ("ip", "udp"):
                        for ci, clen in enumerate((0, 4, 8)):
                            for tagged in (False, True):
                                i = len(peers)
                                tun, pu = mode == "tunnel", proto == "udp"
                                ii = io = None
                                if not CIPHERS[enc].aead:
                                    ii, io = integs[k % len(integs)], integs[(k + 1) % len(integs)]
                                    k += 1
                                p = Peer(name="p%03d-%s-%s-%s-%s-%s-c%d-%s" % (
                                    i, enc, mode[:5], "udp4500" if natt else "esp", "esn" if esn else "noesn",
                                    proto, clen, "tag" if tagged else "untag"),
                                    addr="198.18.%d.%d" % (1 + i // 200, 10 + i % 200), tunnel=tunnels[proto],
                                    lsid=0x100000 + i, rsid=0x200000 + i, lcookie=rng.randbytes(clen),
                                    rcookie=rng.randbytes((0, 4, 8)[(ci + tun) % 3]),
                                    pw="vlan" if tagged ^ pu else "ethernet",
                                    l2s="none" if tagged ^ natt else "default", mode=mode, natt=natt,
                                    natport=(4500 if esn ^ tun else 40000 + i) if natt else 0,
                                    inner=("198.19.255.1", "198.19.%d.%d" % (1 + i // 200, 10 + i % 200))
                                    if tun and natt ^ esn else None,
                                    mac=mac("02:a2:00:00", i),
                                    imac=mac("02:5a:00:00", i))
                                p["in"] = make_sa(rng, 0x10000 + i, enc, ii, esn)
                                p["out"] = make_sa(rng, 0x20000 + i, enc, io, esn)
                                native = tunnels[proto]["native"]
                                p["vlan"] = (native if esn ^ pu else other[proto]) if tagged else native
                                p["tagged"] = tagged
                                peers.append(p)
    sc = Scenario()
    for p in peers:
        i = int(p["name"][1:4])
        # ESN: the second packet crosses into seq_hi 1 (RFC 4303 Appendix A infers it, the
        # ICV/AAD covers it). A fresh SA cannot take a low half near 2^32 first: Appendix A
        # would place it in seq_hi -1.
        seqs = ((0x7FFFFFF0, 1 << 32 | 5) if p["in"].esn else (7, 0xFFFFFFFF))
        for n, (seq, dst) in enumerate(zip(seqs, (CORP, "ff:ff:ff:ff:ff:ff"))):
            v = p["vlan"] if p["tagged"] else None
            f = inner_frame(p["imac"], dst, v, prio=i % 8 if v else 0, n=2 * i + n, size=(i * 7 + n * 13) % 61)
            # the last authenticated frame's source MAC is the next hop: frame 1 comes
            # from another MAC than frame 2
            b = p.ap_frame(seq, f, rng, src_mac=mac("02:a1:00:00", i) if n == 0 else None)
            up = f if p["tagged"] else set_tag(f, p["tunnel"]["native"])
            sc.add("down", b, "forward", name="%s frame %d" % (p["name"], n + 1), up=up)
    # corporate -> AP, 10 s later
    sc.ts = T0 + 10 * 1000000
    out_seq = {p["out"].spi: 0 for p in peers}

    def deliver(p, ts, f, vlan):
        out_seq[p["out"].spi] += 1
        sc.down_expected.append(p.expect_down(ts, out_seq[p["out"].spi], p.pw_form(f, vlan), p["mac"]))

    for p in peers:
        i = int(p["name"][1:4])
        f = inner_frame("02:c0:00:00:00:10", p["imac"], p["vlan"], prio=(i + 3) % 8, n=5000 + i, size=i % 47)
        ts = sc.add("up", f, "forward", name="to %s" % p["name"])
        deliver(p, ts, f, p["vlan"])
    for vlan, dst in ((300, "ff:ff:ff:ff:ff:ff"), (200, "02:cc:00:00:00:01")):
        f = inner_frame("02:c0:00:00:00:11", dst, vlan, prio=1, n=9000 + vlan)
        ts = sc.add("up", f, "forward", name="flood VLAN %d" % vlan)
        for p in peers:
            if vlan in p["tunnel"]["vlans"]:
                deliver(p, ts, f, vlan)
    sc.write(d, yaml_config(tunnels.values(), peers), peers, dict(peers=len(peers)))
    return len(peers)


# ---------------------------------------------------------------------------------
# 3: bad input

EVIL_MAC = "02:ee:ee:ee:ee:ee"  # source MAC of every frame that must not authenticate


def flip(b, pos):
    b = bytearray(b)
    b[pos] ^= 0x01
    return bytes(b)


def ip_csum(h):
    s = sum(struct.unpack("!%dH" % (len(h) // 2), h))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return 0xffff - s


def fix_ip_lengths(frame, ip_len):
    """frame with its IPv4 packet cut to ip_len bytes, the IPv4 total length and
    checksum and (when the UDP header is whole) the UDP length made consistent: the
    ESP is short but every header in front of it is coherent."""
    ip = bytearray(frame[14:14 + ip_len])
    hl = (ip[0] & 15) * 4
    struct.pack_into("!HH", ip, 2, ip_len, struct.unpack_from("!H", ip, 4)[0])
    ip[10:12] = b"\0\0"
    struct.pack_into("!H", ip, 10, ip_csum(bytes(ip[:hl])))
    if ip[9] == PROTO_UDP and ip_len >= hl + 8:
        struct.pack_into("!H", ip, hl + 4, ip_len - hl)
    return frame[:14] + bytes(ip)


def gen_bad(d):
    rng = random.Random(3931)
    T = {"sec-ip": dict(name="sec-ip", vlans=[100, 200], native=100, proto="ip", ipsec=True, mtu=1400),
         "sec-udp": dict(name="sec-udp", vlans=[100, 200], native=100, proto="udp", ipsec=True),
         "plain-udp": dict(name="plain-udp", vlans=[100, 200], native=100, proto="udp", ipsec=False)}

    def peer(n, addr, tun, enc, integ, mode, natt, esn, clen, l2s="default", pw="vlan", natport=0, **kw):
        p = Peer(name=n, addr=addr, tunnel=T[tun], lsid=0x3000 + ord(n[0]), rsid=0x7000 + ord(n[0]),
                 lcookie=rng.randbytes(clen), rcookie=rng.randbytes(clen), pw=pw, l2s=l2s, mode=mode, natt=natt,
                 natport=natport, inner=None, mac="02:0b:00:00:00:%02x" % ord(n[0]),
                 imac="02:5b:00:00:00:%02x" % ord(n[0]), **kw)
        if enc:
            p["in"] = make_sa(rng, 0x3000 + ord(n[0]), enc, integ, esn)
            p["out"] = make_sa(rng, 0x4000 + ord(n[0]), enc, integ, esn)
        return p

    A = peer("A", "198.18.0.2", "sec-ip", "aes-gcm-256", None, "transport", False, False, 8)
    B = peer("B", "198.18.0.3", "sec-udp", "aes-cbc-128", "hmac-sha1-96", "tunnel", True, False, 4,
             pw="ethernet", natport=31000)
    C = peer("C", "198.18.0.4", "sec-ip", "aes-ctr-128", "hmac-sha2-256-128", "transport", False, True, 0,
             l2s="none")
    D = peer("D", "198.18.0.5", "sec-ip", "chacha20-poly1305", None, "tunnel", False, False, 4, window=128)
    P = peer("P", "198.18.0.6", "plain-udp", None, None, "", False, False, 4, pw="ethernet", max_macs=1)
    peers = [A, B, C, D, P]
    sc = Scenario()
    cnt = [0]

    def F(p, vlan=None, src=None, dst=CORP):
        cnt[0] += 1
        return inner_frame(src or p["imac"], dst, vlan, prio=3 if vlan else 0, n=cnt[0], size=cnt[0] % 29)

    def up_of(p, f):
        e = f[12:14]
        return f if e == b"\x81\x00" else set_tag(f, p["tunnel"]["native"])

    def good(p, seq, name, **kw):
        f = F(p, kw.pop("vlan", None))
        return sc.add("down", p.ap_frame(seq, f, rng, **kw), "forward", name=name, up=up_of(p, f))

    def bad(p, seq, reason, name, frame=None, mutate=None, reasons=None, **kw):
        kw.setdefault("src_mac", EVIL_MAC)
        b = p.ap_frame(seq, frame or F(p), rng, **kw)
        if mutate:
            b = mutate(b)
        return sc.add("down", b, "drop", reasons or [reason], name=name)

    icvflip = lambda b: flip(b, len(b) - 1)
    ctflip = lambda off: (lambda b: flip(b, off))   # offset in the Ethernet frame

    # --- anti-replay (RFC 4303 §3.4.3), window 64
    good(A, 1, "A seq 1")
    f = F(A)
    a1 = A.ap_frame(2, f, rng)
    sc.add("down", a1, "forward", name="A seq 2", up=up_of(A, f))
    sc.add("down", a1, "drop", ["replay"], name="A seq 2 replayed (same packet twice)")
    good(A, 100, "A seq 100")
    bad(A, 36, "replay", "A seq 36: left of the window [37,100]")
    good(A, 50, "A seq 50: inside the window, not seen")
    bad(A, 0, "replay", "A seq 0: never sent (RFC 4303 §3.3.3)")
    f = inner_frame(A["imac"], CORP, 0, prio=5, n=90)    # 802.1Q priority tag: VID 0 = native VLAN
    sc.add("down", A.ap_frame(53, f, rng), "forward", name="A seq 53 priority-tagged (VID 0, PCP 5)",
           up=set_tag(f, A["tunnel"]["native"], prio=5))
    bad(A, 50, "replay", "A seq 50 again")
    # --- integrity: flipped ICV / ciphertext bit; then the same seq, valid, is accepted
    # (a failed check must not advance the window)
    ESP_OFF_A = 14 + 20 + 8 + 8 + 4   # eth, ip, esp hdr, iv, into the ciphertext
    bad(A, 101, "integrity", "A seq 101 GCM tag bit flipped", mutate=icvflip)
    bad(A, 101, "integrity", "A seq 101 GCM ciphertext bit flipped", mutate=ctflip(ESP_OFF_A))
    good(A, 101, "A seq 101 valid after the failures")
    good(B, 1, "B seq 1 (CBC+HMAC-SHA1, tunnel, UDP 4500 from NAT port 31000)")
    bad(B, 2, "integrity", "B seq 2 HMAC-SHA1-96 ICV bit flipped", mutate=icvflip, natt_sport=6666)
    bad(B, 2, "integrity", "B seq 2 CBC ciphertext bit flipped", mutate=ctflip(14 + 20 + 8 + 8 + 16 + 3),
        natt_sport=6666)
    bad(B, 2, "integrity", "B seq 2 IV bit flipped", mutate=ctflip(14 + 20 + 8 + 8 + 2), natt_sport=6666)
    good(B, 2, "B seq 2 valid")
    # --- ESN (RFC 4303 §2.2.1, Appendix A): seq_hi inferred, covered by the ICV
    good(C, 1, "C ESN seq 0x0_00000001")
    good(C, 0x80000000, "C ESN seq 0x0_80000000")
    good(C, 0xFFFFFFF0, "C ESN seq 0x0_fffffff0")
    good(C, 1 << 32 | 5, "C ESN seq 0x1_00000005 (wrapped low half)")
    bad(C, 1 << 32 | 5, "replay", "C ESN seq 0x1_00000005 again")
    bad(C, 0xFFFFFFF0, "replay", "C ESN seq 0x0_fffffff0 again (right of the low half, seq_hi inferred 0)")
    bad(C, 1 << 32 | 6, "integrity", "C ESN seq 0x1_00000006 HMAC-SHA-256-128 ICV flipped", mutate=icvflip)
    noesn = SA(C["in"].spi, C["in"].enc, C["in"].ekey, C["in"].integ, C["in"].ikey, False)
    bad(C, 1 << 32 | 6, "integrity", "C seq 0x1_00000006 with an ICV that leaves seq_hi out (scapy bug 2)",
        sa=noesn)
    good(C, 1 << 32 | 6, "C ESN seq 0x1_00000006 valid")
    good(D, 1, "D seq 1 (ChaCha20-Poly1305, tunnel)")
    bad(D, 2, "integrity", "D seq 2 Poly1305 tag flipped", mutate=icvflip)
    bad(D, 2, "integrity", "D seq 2 ChaCha20 ciphertext flipped", mutate=ctflip(14 + 20 + 16 + 5))
    good(D, 2, "D seq 2 valid")
    good(D, 3, "D seq 3 with 16 bytes of TFC padding after the inner IPv4 packet (RFC 4303 §2.7)", tfc=16)
    good(B, 4, "B seq 4 (CBC, scapy) with 32 bytes of TFC padding", tfc=32)
    good(A, 51, "A seq 51 with outer IPv4 options (NOP NOP NOP EOL)", ip_options=b"\x01\x01\x01\x00")
    bad(A, 52, "bad_next_header", "A dummy packet, next header 59 (RFC 4303 §2.6: discard)", nh=59,
        upper=(59, b"\0" * 16), src_mac=None)
    bad(D, 4, "not_for_us", "D tunnel mode, inner IPv4 destination 198.18.0.77", inner_dst="198.18.0.77",
        src_mac=None)
    bad(D, 5, "peer_mismatch", "D tunnel mode, inner IPv4 source 198.18.9.9 (not D's)", l2tp_src="198.18.9.9",
        src_mac=None)
    ctl = struct.pack("!HHIHH", 0xC803, 12, 0, 0, 0)
    bad(B, 5, "punt_l2tp_control", "B: L2TPv3 control message inside ESP", src_mac=None,
        upper=(PROTO_UDP, udp(B["addr"], US, 1701, 1701, ctl)))
    good(D, 200, "D seq 200 (replay_window 128)")
    good(D, 73, "D seq 73: inside the 128-packet window [73,200]")
    bad(D, 72, "replay", "D seq 72: left of the 128-packet window")
    # --- decrypted but wrong inside
    bad(A, 102, "cookie_mismatch", "A cookie with one bit flipped", cookie=flip(A["lcookie"], 7), src_mac=None)
    bad(A, 103, "no_session", "A unknown session ID 0x00badbad", sid=0xbadbad, src_mac=None)
    bad(A, 104, "no_session", "A carries B's session ID (an L2TP-over-UDP session) over IP", sid=B["lsid"],
        src_mac=None)
    # padding of a legal length whose last byte is wrong: a function of the payload length
    badpad = lambda n: bytes(range(1, (pad_len(A["in"], n) or 4))) + b"\xee"
    bad(A, 105, "bad_padding", "A padding bytes not 1,2,3,... (valid tag)", src_mac=None, padding=badpad)
    bad(A, 106, "bad_next_header", "A ESP next header 6 (TCP)", nh=6, src_mac=None)
    bad(A, 107, "bad_next_header", "A ESP next header UDP to port 53",
        upper=(PROTO_UDP, udp(A["addr"], US, 53, 53, b"x" * 40)),
        src_mac=None)
    bad(A, 108, "vlan_not_allowed", "A inner VLAN 300 (tunnel carries 100, 200)", frame=F(A, 300), src_mac=None)
    bad(A, 109, "bad_src_mac", "A inner frame with a multicast source MAC", frame=F(A, src="03:00:00:00:00:01"),
        src_mac=None)
    bad(D, 201, "wrong_sa", "D's SA carries A's session (inner IP source = A's address)", l2tp_src=A["addr"],
        src_mac=None, upper=(PROTO_L2TP, l2tp_data(False, A["lsid"], A["lcookie"], True) + F(A)))
    # --- before the SA
    spi_unknown = SA(0x0bad0bad, A["in"].enc, A["in"].ekey)
    bad(A, 110, "no_sa", "ESP with an unknown SPI 0x0bad0bad", sa=spi_unknown)
    bad(A, 111, "sa_peer_mismatch", "A's SA from B's address", outer_src=B["addr"])
    bad(A, 112, "sa_peer_mismatch", "A's SA from an unknown address 198.18.9.9", outer_src="198.18.9.9")
    bad(A, 113, "not_for_us", "A's ESP to 198.18.0.99", outer_dst="198.18.0.99")
    bad(A, 114, "ipsec_required", "plaintext L2TPv3/IP to A's ipsec:true session", plaintext=True)
    bad(B, 0, "ipsec_required", "plaintext L2TPv3/UDP to B's ipsec:true session", plaintext=True)
    # outer fragments (RFC 791): first (MF, offset 0) and a later one (offset 8)
    a = A.ap_frame(115, F(A), rng, src_mac=EVIL_MAC)

    def frag(b, flags_off):
        ip = IP(b[14:])
        ip.frag, ip.flags, ip.chksum = flags_off & 0x1fff, flags_off >> 13, None
        return b[:14] + raw(ip)

    sc.add("down", frag(a, 0x2000), "drop", ["fragment"], name="A ESP as a first fragment (MF=1, offset 0)")
    sc.add("down", frag(a, 0x0001), "drop", ["fragment"], name="A ESP as a last fragment (offset 8)")
    good(A, 115, "A seq 115 unfragmented")
    # --- punts
    ctrl = struct.pack("!HHIHH", 0xC803, 12, 0, 0, 0)
    sc.add("down", ether(US_MAC, A["mac"], ipv4(A["addr"], US, PROTO_UDP,
                                                 udp(A["addr"], US, 1701, 1701, ctrl))),
           "punt", ["punt_l2tp_control"], name="L2TPv3 control message over UDP (T bit)")
    sc.add("down", ether(US_MAC, A["mac"], ipv4(A["addr"], US, PROTO_L2TP, b"\0\0\0\0" + ctrl[4:] + b"\0" * 8)),
           "punt", ["punt_l2tp_control"], name="L2TPv3 control message over IP (session ID 0)")
    ike = bytes(8) + bytes(8) + bytes([33, 0x20, 34, 0x08]) + struct.pack("!II", 0, 28)  # IKE_SA_INIT header
    sc.add("down", ether(US_MAC, A["mac"], ipv4(A["addr"], US, PROTO_UDP, udp(A["addr"], US, 500, 500, ike))),
           "punt", ["punt_ike"], name="IKE on UDP 500")
    sc.add("down", ether(US_MAC, B["mac"], ipv4(B["addr"], US, PROTO_UDP,
                                                 udp(B["addr"], US, 31000, 4500, bytes(4) + ike))),
           "punt", ["punt_ike"], name="IKE on UDP 4500 behind the zero non-ESP marker")
    sc.add("down", ether(US_MAC, B["mac"], ipv4(B["addr"], US, PROTO_UDP,
                                                 udp(B["addr"], US, 31000, 4500, b"\xff"))),
           "punt", ["punt_ike"], name="NAT-keepalive on UDP 4500")
    # --- plaintext tunnel
    good(P, 0, "P plaintext L2TPv3/UDP (ipsec: false)", plaintext=True)
    bad(P, 0, "mac_limit", "P second MAC, max_macs 1", plaintext=True, frame=F(P, src="02:5b:00:00:01:50"),
        src_mac=None)
    bad(P, 0, "peer_mismatch", "P's session from 198.18.0.9", plaintext=True, outer_src="198.18.0.9")
    v2 = struct.pack("!HHHH", 0x0002, 0, 0, 0) + bytes(8)
    sc.add("down", ether(US_MAC, P["mac"], ipv4(P["addr"], US, PROTO_UDP, udp(P["addr"], US, 1701, 1701, v2))),
           "drop", ["bad_version"], name="L2TP over UDP data with version 2")
    # --- bridge
    fb = F(B)                        # B learns its MAC on VLAN 100 (native, untagged)
    sc.add("down", B.ap_frame(3, fb, rng), "forward", name="B seq 3 learns %s" % B["imac"],
           up=up_of(B, fb))
    bad(A, 116, "hairpin_denied", "A unicast to B's MAC (hairpin: false)", frame=F(A, dst=B["imac"]), src_mac=None)
    corp = "02:c0:00:00:00:77"
    fu = inner_frame(corp, "02:cc:00:00:00:02", 100, prio=2, n=777)
    ts = sc.add("up", fu, "forward", name="corporate %s on VLAN 100, unknown unicast -> flooded" % corp)
    for p in peers:                   # flood copies, each for the peer's last good next hop
        p.setdefault("oseq", 0)
        p["oseq"] += 1
        sc.down_expected.append(p.expect_down(ts, p["oseq"], p.pw_form(fu, 100), p["mac"]))
    bad(A, 117, "mac_move", "A claims %s, learned upstream" % corp, frame=F(A, src=corp), src_mac=None)
    # link-layer padding after the IP packet is not part of it
    f = F(A)
    sc.add("down", A.ap_frame(118, f, rng) + bytes(6), "forward", name="A seq 118 with 6 bytes of Ethernet padding",
           up=up_of(A, f))
    # tunnel mtu bounds the outer IP packet: the largest inner frame that fits, then one more byte
    size = 0
    while A.outer_len(len(inner_frame(corp, A["imac"], 100, n=800, size=size + 1))) <= T["sec-ip"]["mtu"]:
        size += 1
    for extra, fate in ((0, "forward"), (1, "drop")):
        f = inner_frame(corp, A["imac"], 100, n=800 + extra, size=size + extra)
        ts = sc.add("up", f, fate, ["too_big"] if extra else [],
                    name="%d-byte frame to A: outer IPv4 %d bytes, mtu %d" % (len(f), A.outer_len(len(f)),
                                                                            T["sec-ip"]["mtu"]))
        if not extra:
            A["oseq"] += 1
            sc.down_expected.append(A.expect_down(ts, A["oseq"], A.pw_form(f, 100), A["mac"]))
    sc.add("up", inner_frame("02:c0:00:00:00:78", CORP, None, n=778), "drop", ["vlan_not_allowed"],
           name="untagged frame on the trunk")
    sc.add("up", inner_frame("02:c0:00:00:00:79", CORP, 999, n=779), "drop", ["vlan_not_allowed"],
           name="VLAN 999 on the trunk (no tunnel carries it)")
    sc.add("up", raw(Raw(bytes.fromhex("0180c200000e02c00000007a88cc") + bytes(50))), "punt", ["punt_link_local"],
           name="LLDP on the trunk")
    # --- truncation of one valid ESP-in-UDP packet (B, CBC+HMAC, tunnel) at every length
    trunc_ok = ["malformed", "integrity", "bad_padding"]
    fb = F(B)
    full = B.ap_frame(1000, fb, rng)
    for n in range(len(full)):
        sc.add("down", full[:n], "drop", trunc_ok, name="B seq 1000 frame truncated to %d bytes" % n)
    for n in range(20, len(full) - 14):
        sc.add("down", fix_ip_lengths(full, n), "drop", trunc_ok,
               name="B seq 1000 IP packet cut to %d bytes, IP/UDP lengths consistent" % n)
    sc.add("down", full, "forward", name="B seq 1000 whole", up=up_of(B, fb))
    # and a plain-ESP GCM one (A), IP length consistent
    fa = F(A)
    fulla = A.ap_frame(1000, fa, rng)
    for n in range(20, len(fulla) - 14):
        sc.add("down", fix_ip_lengths(fulla, n), "drop", trunc_ok,
               name="A seq 1000 IP packet cut to %d bytes, IP length consistent" % n)
    sc.add("down", fulla, "forward", name="A seq 1000 whole", up=up_of(A, fa))
    # --- everyone still works
    for p, s in ((A, 1001), (B, 1001), (C, 1 << 32 | 7), (D, 202)):
        good(p, s, "%s still works" % p["name"])
    sc.write(d, yaml_config(T.values(), peers), peers)
    return len(sc.frames)


def gen_access(d):
    """upstream.vlan: 100 (access port): VLAN 100 leaves untagged, others are refused.
    bridge.hairpin: true: sessions reach each other, a session's flood reaches the others
    (never itself). Peer G never sends: it gets the gateway_mac and UDP port 4500."""
    rng = random.Random(4719)
    # A's tunnel also carries VLAN 200, E's and G's only 100: a VLAN 200 frame from A has
    # nowhere to go (the access port carries 100 only), even with hairpin.
    t = dict(name="t", vlans=[100, 200], native=100, proto="ip", ipsec=True)
    t1 = dict(name="t1", vlans=[100], native=100, proto="ip", ipsec=True)
    peers = []
    for n, pw, enc, natt in (("A", "vlan", "aes-gcm-128", False), ("E", "ethernet", "aes-ctr-256", False),
                             ("G", "ethernet", "chacha20-poly1305", True)):
        p = Peer(name=n, addr="198.18.0.%d" % (2 + len(peers)), tunnel=t if n == "A" else t1, lsid=0x5000 + len(peers),
                 rsid=0x6000 + len(peers), lcookie=rng.randbytes(4), rcookie=rng.randbytes(8), pw=pw,
                 l2s="default", mode="transport", natt=natt, natport=4500 if natt else 0, inner=None,
                 mac="02:0a:00:00:00:%02x" % len(peers), imac="02:5c:00:00:00:%02x" % len(peers), oseq=0)
        integ = None if CIPHERS[enc].aead else "hmac-sha2-512-256"
        p["in"] = make_sa(rng, 0x8000 + len(peers), enc, integ, False)
        p["out"] = make_sa(rng, 0x9000 + len(peers), enc, integ, False)
        peers.append(p)
    A, E, G = peers
    sc = Scenario()

    def to(p, ts, frame, eth_dst=None):
        p["oseq"] += 1
        sc.down_expected.append(p.expect_down(ts, p["oseq"], frame, eth_dst or p["mac"]))

    # hairpin: true, so a session's unknown unicast is flooded to the other sessions too;
    # E and G have sent nothing yet: their next hop is the gateway_mac
    f = inner_frame(A["imac"], CORP, None, n=1)
    ts = sc.add("down", A.ap_frame(1, f, rng), "forward", name="A untagged (VLAN 100) -> out untagged", up=f)
    to(E, ts, f, GW_MAC)
    to(G, ts, f, GW_MAC)
    f = inner_frame(E["imac"], CORP, 100, prio=5, n=2)
    ts = sc.add("down", E.ap_frame(1, f, rng), "forward", name="E tagged 100 -> out untagged", up=untag(f))
    to(A, ts, f)                       # pseudowire vlan: keeps the tag (and its priority)
    to(G, ts, untag(f), GW_MAC)        # pseudowire ethernet: native VLAN untagged
    f = inner_frame(A["imac"], CORP, 200, n=3)
    sc.add("down", A.ap_frame(2, f, rng), "drop", ["vlan_not_allowed"], name="A tagged 200 -> not on the access port")
    for p in (A, E):
        f = inner_frame("02:c0:00:00:00:20", p["imac"], None, n=10 + len(p["name"]))
        to(p, sc.add("up", f, "forward", name="untagged to %s" % p["name"]), p.pw_form(set_tag(f, 100), 100))
    f = inner_frame("02:c0:00:00:00:21", A["imac"], 200, n=30)
    sc.add("up", f, "drop", ["vlan_not_allowed"], name="tagged 200 on the access port")
    f = inner_frame("02:c0:00:00:00:22", E["imac"], 0, prio=6, n=31)
    to(E, sc.add("up", f, "forward", name="priority-tagged (VID 0) to E = access VLAN 100"), untag(f))
    # hairpin: A -> E's MAC goes to E only
    f = inner_frame(A["imac"], E["imac"], None, n=40)
    to(E, sc.add("down", A.ap_frame(3, f, rng), "forward", name="A unicast to E (hairpin: true)"), f)
    # A's broadcast: E, G and the access port, not A
    f = inner_frame(A["imac"], "ff:ff:ff:ff:ff:ff", None, n=41)
    ts = sc.add("down", A.ap_frame(4, f, rng), "forward", name="A broadcast (hairpin: true)", up=f)
    to(E, ts, f)
    to(G, ts, f, GW_MAC)
    # the trunk's broadcast: every session
    f = inner_frame("02:c0:00:00:00:23", "ff:ff:ff:ff:ff:ff", None, n=42)
    ts = sc.add("up", f, "forward", name="untagged broadcast from the access port")
    for p in (A, E, G):
        to(p, ts, p.pw_form(set_tag(f, 100), 100), GW_MAC if p is G else None)
    sc.write(d, yaml_config([t, t1], peers, upstream_vlan=100, hairpin=True), peers)
    return len(sc.frames)


def gen_aging(d):
    """bridge.aging: 300s, on the capture's clock: a MAC last seen 200 s ago is still
    known (unicast), one last seen 500 s ago is gone (the frame is flooded)."""
    rng = random.Random(8021)
    t = dict(name="t", vlans=[100], native=100, proto="udp", ipsec=True)
    peers = []
    for n, enc in (("A", "aes-gcm-256"), ("B", "aes-cbc-256")):
        p = Peer(name=n, addr="198.18.0.%d" % (2 + len(peers)), tunnel=t, lsid=0x5100 + len(peers),
                 rsid=0x6100 + len(peers), lcookie=b"", rcookie=b"", pw="ethernet", l2s="default",
                 mode="tunnel", natt=True, natport=4500, inner=None, mac="02:0c:00:00:00:%02x" % len(peers),
                 imac="02:5d:00:00:00:%02x" % len(peers), oseq=0)
        integ = None if CIPHERS[enc].aead else "hmac-sha2-256-128"
        p["in"] = make_sa(rng, 0x8100 + len(peers), enc, integ, False)
        p["out"] = make_sa(rng, 0x9100 + len(peers), enc, integ, False)
        peers.append(p)
    A, B = peers
    sc = Scenario()

    def to(p, ts, frame):
        p["oseq"] += 1
        sc.down_expected.append(p.expect_down(ts, p["oseq"], frame, p["mac"]))

    t0 = sc.ts
    for p in peers:
        f = inner_frame(p["imac"], CORP, None, n=len(p["name"]) + ord(p["name"][0]))
        sc.add("down", p.ap_frame(1, f, rng), "forward", name="%s learns %s" % (p["name"], p["imac"]),
               up=set_tag(f, 100))
    for age in (200, 500):
        sc.ts = t0 + age * 1000000
        f = inner_frame("02:c0:00:00:00:30", A["imac"], 100, n=age)
        ts = sc.add("up", f, "forward", name="to A's MAC, last seen %d s ago (aging 300s)" % age)
        for p in ((A,) if age < 300 else (A, B)):
            to(p, ts, untag(f))
    sc.write(d, yaml_config([t], peers), peers)
    return len(sc.frames)


# ---------------------------------------------------------------------------------
# decode tunterm's downstream output

def _ipv4_ok(h):
    s = sum(struct.unpack("!10H", h[:20]))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s == 0xffff


def _udp_ok(src, dst, u):
    if struct.unpack("!H", u[6:8])[0] == 0:
        return True  # no checksum (IPv4)
    ph = src + dst + struct.pack("!BBH", 0, 17, len(u))
    d = ph + u + (b"\0" if len(u) % 2 else b"")
    s = sum(struct.unpack("!%dH" % (len(d) // 2), d))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s == 0xffff


def ipstr(b):
    return ".".join(map(str, b))


def decode_frame(b, sas):
    """Normalized record of one downstream frame (same keys as Peer.expect_down) plus
    "problems": every RFC-level defect seen on the way."""
    probs = []
    r = dict(eth_dst=":".join("%02x" % x for x in b[0:6]), eth_src=":".join("%02x" % x for x in b[6:12]),
             encap="none", udp_sport=0, udp_dport=0, spi=0, seq=0, iv="", inner_ip_src="", inner_ip_dst="",
             l2tp="", session_id=0, cookie="", sublayer="", frame="", problems=probs)
    if b[12:14] != b"\x08\x00":
        probs.append("ethertype %s, want IPv4" % b[12:14].hex())
        return r

    def ip_check(ip, what):
        if ip[0] != 0x45:
            probs.append("%s IPv4 version/IHL %02x" % (what, ip[0]))
        tl = struct.unpack("!H", ip[2:4])[0]
        if tl != len(ip):
            probs.append("%s IPv4 total length %d, packet is %d" % (what, tl, len(ip)))
        if not _ipv4_ok(ip):
            probs.append("%s IPv4 header checksum bad" % what)
        if struct.unpack("!H", ip[6:8])[0] & 0x3fff:
            probs.append("%s IPv4 is a fragment" % what)
        if ip[8] == 0:
            probs.append("%s IPv4 TTL 0" % what)
        return ip[9], ip[20:tl]

    ip = b[14:]
    r.update(ip_src=ipstr(ip[12:16]), ip_dst=ipstr(ip[16:20]))
    proto, pl = ip_check(ip, "outer")
    if proto == PROTO_UDP and PORT_NATT in struct.unpack("!HH", pl[0:4]):  # we send from 4500 to the NAT port
        r.update(encap="udp", udp_sport=struct.unpack("!H", pl[0:2])[0], udp_dport=struct.unpack("!H", pl[2:4])[0])
        if struct.unpack("!H", pl[4:6])[0] != len(pl):
            probs.append("ESP-in-UDP length %d, datagram is %d" % (struct.unpack("!H", pl[4:6])[0], len(pl)))
        if not _udp_ok(ip[12:16], ip[16:20], pl):
            probs.append("ESP-in-UDP checksum bad")
        proto, pl = PROTO_ESP, pl[8:]
    l2src, l2dst = ip[12:16], ip[16:20]
    if proto == PROTO_ESP:
        if r["encap"] == "none":
            r["encap"] = "esp"
        spi, seq = struct.unpack("!II", pl[:8])
        r.update(spi=spi, seq=seq)
        s = sas.get(str(spi))
        if s is None:
            probs.append("unknown SPI 0x%08x" % spi)
            return r
        sa = SA.from_json(s)
        r["iv"] = pl[8:8 + sa.c.ivlen].hex()
        try:
            payload, nh, pad = open_(sa, pl, 0)
        except (IntegrityError, ValueError) as e:
            probs.append("own ESP decoder: %s" % e)
            return r
        try:
            sp, snh = scapy_open(sa, pl, 0)
            if (sp, snh) != (payload, nh):
                probs.append("scapy and our decoder disagree")
        except Exception as e:  # noqa: BLE001 - any scapy failure is a finding
            probs.append("scapy decrypt: %r" % e)
        if pad != bytes(range(1, len(pad) + 1)):
            probs.append("ESP padding %s is not 1,2,3,... (RFC 4303 §2.4)" % pad.hex())
        if s["mode"] == "tunnel":
            if nh != PROTO_IPIP:
                probs.append("tunnel mode next header %d, want 4" % nh)
                return r
            r.update(inner_ip_src=ipstr(payload[12:16]), inner_ip_dst=ipstr(payload[16:20]))
            l2src, l2dst = payload[12:16], payload[16:20]
            nh, payload = ip_check(payload, "inner")
        proto, pl = nh, payload
    else:
        s = next((v for v in sas.values() if v["addr"] == r["ip_dst"] and "spi" not in v), None)
        if s is None:
            probs.append("plaintext to an unknown peer")
            return r
    if proto == PROTO_L2TP:
        r["l2tp"] = "ip"
        sid, rest = struct.unpack("!I", pl[:4])[0], pl[4:]
    elif proto == PROTO_UDP:
        r["l2tp"] = "udp"
        sp, dp, ln = struct.unpack("!HHH", pl[:6])
        if (sp, dp) != (PORT_L2TP, PORT_L2TP):
            probs.append("L2TP UDP ports %d->%d, want 1701->1701" % (sp, dp))
        if ln != len(pl):
            probs.append("L2TP UDP length %d, datagram is %d" % (ln, len(pl)))
        if not _udp_ok(l2src, l2dst, pl):
            probs.append("L2TP UDP checksum bad")
        fv, res, sid = struct.unpack("!HHI", pl[8:16])
        if fv != 0x0003 or res != 0:
            probs.append("L2TPv3/UDP header %04x %04x, want 0003 0000 (T=0, ver 3)" % (fv, res))
        rest = pl[16:]
    else:
        probs.append("next protocol %d, want 115 or 17" % proto)
        return r
    r["session_id"] = sid
    cl = s["cookie_len"]
    r["cookie"], rest = rest[:cl].hex(), rest[cl:]
    if s["sublayer"]:
        r["sublayer"], rest = rest[:4].hex(), rest[4:]
    r["frame"] = rest.hex()
    return r


def decode(pcap, sasfile):
    sas = json.load(open(sasfile))
    out = []
    for ts, b in read_pcap(pcap):
        r = decode_frame(b, sas)
        r["ts_us"] = ts // 1000
        out.append(r)
    json.dump(out, sys.stdout, indent=0)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "selftest":
        selftest()
    elif cmd == "gen":
        d = sys.argv[2]
        for what in sys.argv[3:] or ("matrix", "bad", "access", "aging"):
            n = {"matrix": gen_matrix, "bad": gen_bad, "access": gen_access, "aging": gen_aging}[what](
                os.path.join(d, what))
            print("%s: %d %s in %s" % (what, n, "peers" if what == "matrix" else "frames", os.path.join(d, what)))
    elif cmd == "decode":
        decode(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
