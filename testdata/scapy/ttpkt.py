"""Packet helpers for tunterm's interoperability tests (scapy 2.5.0 + cryptography).

What lives here (ttgen.py builds the test captures from it):
  * ESP (RFC 4303) through scapy's SecurityAssociation, with the two scapy 2.5.0
    bugs worked around: (1) ESP-in-UDP (RFC 3948): scapy leaves the UDP length at 8;
    (2) ESN (RFC 4303 §3.3.2.1): scapy leaves the high 32 bits of the sequence number
    out of the HMAC ICV (AEAD is right: scapy puts them in the AAD).
  * An ESP implementation of our own on top of `cryptography` (seal/open for every
    tunterm cipher, ESN-aware). It is the only builder for ChaCha20-Poly1305
    (RFC 7634: nonce = salt || IV, AAD = SPI || [seq_hi ||] seq_lo, 16-byte tag), is
    checked against RFC 7634 Appendix A, and must agree byte for byte with scapy for the
    other ciphers (ttgen.py selftest).
  * L2TPv3 data headers (RFC 3931 §4.1.1.1 over IP, §4.1.2.1 over UDP, §4.6 default
    L2-Specific Sublayer) as plain bytes, and the inner Ethernet frames.
  * A tiny pcap writer (microsecond timestamps, zero-length frames allowed).

Credits: the scapy workarounds and the L2TPv3/tshark recipes were first worked out in
the team's peer recipes (shared/peers: lib/scapy_esp.py, lib/l2tpv3_scapy.py,
02-tshark.sh, 03-scapy-esp.sh). This is an independent, self-contained rewrite: the
repository does not import or run anything from there.

Run with /usr/bin/python3 (Debian python3-scapy); a pyenv python3 may lack scapy.
"""
import hashlib
import hmac
import struct
from collections import namedtuple

# Import the layers, not scapy.all: scapy.all takes seconds (it probes the host).
from scapy.compat import raw
from scapy.config import conf
from scapy.packet import Raw
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import SecurityAssociation, ESP, IPSecIntegrityError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

conf.verb = 0

# tunterm cipher name -> scapy name, key bytes (salt included), salt bytes, IV bytes,
# ciphertext alignment, AEAD?, Wireshark 4.0 esp_sa name (None: tshark 4.0 cannot).
CipherInfo = namedtuple("CipherInfo", "scapy keylen saltlen ivlen align aead ws")
CIPHERS = {
    "aes-gcm-128": CipherInfo("AES-GCM", 20, 4, 8, 4, True, "AES-GCM with 16 octet ICV [RFC4106]"),
    "aes-gcm-256": CipherInfo("AES-GCM", 36, 4, 8, 4, True, "AES-GCM with 16 octet ICV [RFC4106]"),
    "aes-ctr-128": CipherInfo("AES-CTR", 20, 4, 8, 4, False, "AES-CTR [RFC3686]"),
    "aes-ctr-256": CipherInfo("AES-CTR", 36, 4, 8, 4, False, "AES-CTR [RFC3686]"),
    "aes-cbc-128": CipherInfo("AES-CBC", 16, 0, 16, 16, False, "AES-CBC [RFC3602]"),
    "aes-cbc-256": CipherInfo("AES-CBC", 32, 0, 16, 16, False, "AES-CBC [RFC3602]"),
    # tshark 4.0.17 has no ChaCha20-Poly1305 for ESP (added to Wireshark later).
    "chacha20-poly1305": CipherInfo("CHACHA20-POLY1305", 36, 4, 8, 4, True, None),
}
WS_CHACHA = "ChaCha20 with Poly1305 [RFC7634]"  # Wireshark >= 4.2 name; 4.0.17 rejects it
# tunterm integrity name -> scapy name, key bytes, ICV bytes, hash, Wireshark name.
IntegInfo = namedtuple("IntegInfo", "scapy keylen icvlen hash ws")
INTEGS = {
    "hmac-sha1-96": IntegInfo("HMAC-SHA1-96", 20, 12, hashlib.sha1, "HMAC-SHA-1-96 [RFC2404]"),
    "hmac-sha2-256-128": IntegInfo("SHA2-256-128", 32, 16, hashlib.sha256, "HMAC-SHA-256-128 [RFC4868]"),
    "hmac-sha2-384-192": IntegInfo("SHA2-384-192", 48, 24, hashlib.sha384, "HMAC-SHA-384-192 [RFC4868]"),
    "hmac-sha2-512-256": IntegInfo("SHA2-512-256", 64, 32, hashlib.sha512, "HMAC-SHA-512-256 [RFC4868]"),
}

PROTO_IPIP, PROTO_UDP, PROTO_ESP, PROTO_L2TP = 4, 17, 50, 115
PORT_L2TP, PORT_NATT = 1701, 4500


class IntegrityError(Exception):
    """ICV / AEAD tag mismatch."""


class SA:
    """One direction of an ESP SA, keyed like Linux xfrm / Wireshark esp_sa:
    GCM/CTR/ChaCha enc_key ends with its 4-byte salt/nonce."""

    def __init__(self, spi, enc, ekey, integ=None, ikey=b"", esn=False):
        c = CIPHERS[enc]
        assert len(ekey) == c.keylen, (enc, len(ekey))
        assert (integ is None) == c.aead, (enc, integ)
        if integ:
            assert len(ikey) == INTEGS[integ].keylen
        self.spi, self.enc, self.ekey, self.integ, self.ikey, self.esn = spi, enc, ekey, integ, ikey, esn
        self.c = c
        self.key, self.salt = ekey[:c.keylen - c.saltlen], ekey[c.keylen - c.saltlen:]

    @property
    def icvlen(self):
        return 16 if self.c.aead else INTEGS[self.integ].icvlen

    def ws_uat(self, src, dst, chacha=False):
        """Wireshark esp_sa UAT line, or None: ESN SAs (the 4.0 UAT has no ESN) and
        ChaCha20-Poly1305 (tshark 4.0 lacks it; chacha=True gives the line with the name
        later Wireshark versions use, for a tshark that accepts it)."""
        if self.esn or (self.c.ws is None) != chacha:
            return None
        au, ak = ("NULL", "") if self.c.aead else (INTEGS[self.integ].ws, "0x" + self.ikey.hex())
        return '"IPv4","%s","%s","0x%08x","%s","0x%s","%s","%s"' % (
            src, dst, self.spi, self.c.ws or WS_CHACHA, self.ekey.hex(), au, ak)

    def to_json(self):
        return dict(spi=self.spi, enc=self.enc, enc_key=self.ekey.hex(), integ=self.integ or "",
                    integ_key=self.ikey.hex(), esn=self.esn)

    @classmethod
    def from_json(cls, d):
        return cls(d["spi"], d["enc"], bytes.fromhex(d["enc_key"]), d["integ"] or None,
                   bytes.fromhex(d["integ_key"]), d["esn"])


def _aad(sa, seq):
    """RFC 4106 §5 / RFC 7634 §2.1: SPI || seq, or SPI || seq_hi || seq_lo with ESN."""
    if sa.esn:
        return struct.pack("!III", sa.spi, seq >> 32, seq & 0xffffffff)
    return struct.pack("!II", sa.spi, seq & 0xffffffff)


def _icv(sa, body, seq):
    """HMAC over ESP header..Next Header, with seq_hi appended for ESN (RFC 4303 §3.3.2.1)."""
    i = INTEGS[sa.integ]
    if sa.esn:
        body = body + struct.pack("!I", seq >> 32)
    return hmac.new(sa.ikey, body, i.hash).digest()[:i.icvlen]


def _ctr(sa, iv):
    # RFC 3686 §4: counter block = nonce(4) || IV(8) || block counter starting at 1.
    return Cipher(algorithms.AES(sa.key), modes.CTR(sa.salt + iv + b"\x00\x00\x00\x01"))


def pad_len(sa, n):
    """Least padding so that payload + padding + 2 is a multiple of the alignment."""
    a = sa.c.align
    return (a - (n + 2) % a) % a


def seal(sa, seq, nh, payload, iv, padding=None):
    """Our own ESP encryption (RFC 4303 §3.3): returns SPI..ICV. seq is 64-bit (only the
    low half is sent). padding=None gives the RFC 4303 §2.4 default 1, 2, 3, ...; else
    bytes, or a function of the payload length returning bytes (bad-padding tests)."""
    assert len(iv) == sa.c.ivlen
    if padding is None:
        padding = bytes(range(1, pad_len(sa, len(payload)) + 1))
    elif callable(padding):
        padding = padding(len(payload))
    pt = payload + padding + bytes([len(padding), nh])
    hdr = struct.pack("!II", sa.spi, seq & 0xffffffff)
    if sa.c.aead:
        aead = ChaCha20Poly1305(sa.key) if sa.enc == "chacha20-poly1305" else AESGCM(sa.key)
        return hdr + iv + aead.encrypt(sa.salt + iv, pt, _aad(sa, seq))
    if sa.enc.startswith("aes-ctr"):
        e = _ctr(sa, iv).encryptor()
    else:
        e = Cipher(algorithms.AES(sa.key), modes.CBC(iv)).encryptor()
    body = hdr + iv + e.update(pt) + e.finalize()
    return body + _icv(sa, body, seq)


def open_(sa, esp, seq_hi=0):
    """Our own ESP decryption: returns (payload, next_header, padding). Raises
    IntegrityError on a bad ICV/tag and ValueError on a malformed packet."""
    c, n = sa.c, sa.icvlen
    if len(esp) < 8 + c.ivlen + n + c.align or (len(esp) - 8 - c.ivlen - n) % c.align:
        raise ValueError("ESP length %d does not fit %s" % (len(esp), sa.enc))
    seq = seq_hi << 32 | struct.unpack("!I", esp[4:8])[0]
    iv, ct = esp[8:8 + c.ivlen], esp[8 + c.ivlen:]
    if c.aead:
        aead = ChaCha20Poly1305(sa.key) if sa.enc == "chacha20-poly1305" else AESGCM(sa.key)
        try:
            pt = aead.decrypt(sa.salt + iv, ct, _aad(sa, seq))
        except InvalidTag:
            raise IntegrityError("AEAD tag mismatch")
    else:
        if not hmac.compare_digest(_icv(sa, esp[:-n], seq), esp[-n:]):
            raise IntegrityError("ICV mismatch")
        ct = ct[:-n]
        d = (_ctr(sa, iv) if sa.enc.startswith("aes-ctr") else
             Cipher(algorithms.AES(sa.key), modes.CBC(iv))).decryptor()
        pt = d.update(ct) + d.finalize()
    plen, nh = pt[-2], pt[-1]
    if plen + 2 > len(pt):
        raise ValueError("pad length %d too big" % plen)
    return pt[:-2 - plen], nh, pt[-2 - plen:-2]


# ---- scapy ----------------------------------------------------------------------

def scapy_sa(sa, seq_hi=0, tunnel=None, natt_sport=None):
    kw = {}
    if tunnel:
        kw["tunnel_header"] = IP(src=tunnel[0], dst=tunnel[1])
    if natt_sport:
        kw["nat_t_header"] = UDP(sport=natt_sport, dport=PORT_NATT)
    if sa.esn:
        kw["esn_en"], kw["esn"] = True, seq_hi
    # NB: pass the ESP class, not the string "ESP": the nat_t_header check uses `is ESP`.
    return SecurityAssociation(ESP, spi=sa.spi, crypt_algo=sa.c.scapy, crypt_key=sa.ekey,
                               auth_algo=INTEGS[sa.integ].scapy if sa.integ else None,
                               auth_key=sa.ikey or None, **kw)


def fix_scapy(sa, pkt, seq):
    """Repairs a packet from scapy 2.5.0's SecurityAssociation.encrypt (outer IPv4 bytes):
      bug 1 (NAT-T): the UDP length stays 8 although the ESP follows; a real receiver
             trims the datagram to 8 bytes. Set it to the datagram length (checksum 0 is
             allowed for IPv4, RFC 3948 §2.1).
      bug 2 (ESN + HMAC): the ICV is computed without seq_hi; recompute it over
             SPI..Next Header || seq_hi (RFC 4303 §3.3.2.1). AEAD is already right."""
    b = bytearray(pkt)
    off = (b[0] & 15) * 4
    if b[9] == PROTO_UDP:
        if struct.unpack_from("!H", b, off + 4)[0] == 8:
            struct.pack_into("!H", b, off + 4, len(b) - off)
        off += 8
    if sa.esn and sa.integ:
        n = sa.icvlen
        b[-n:] = _icv(sa, bytes(b[off:-n]), seq)
    return bytes(b)


def scapy_seal(sa, seq, src, dst, nh, payload, iv, tunnel=False, natt_sport=None):
    """Outer IPv4 [UDP 4500] ESP built by scapy. Transport: payload is the upper layer
    (protocol nh). Tunnel: payload is the inner IPv4 packet; scapy adds the outer header
    (src -> dst) with scapy's tunnel_header machinery."""
    s = scapy_sa(sa, seq >> 32, (src, dst) if tunnel else None, natt_sport)
    inner = IP(payload) if tunnel else IP(src=src, dst=dst, proto=nh) / Raw(payload)
    p = s.encrypt(inner, seq_num=seq & 0xffffffff, iv=iv)
    return fix_scapy(sa, raw(p), seq)


def scapy_open(sa, esp, seq_hi=0):
    """Decrypts SPI..ICV with scapy (scapy does the AEAD check and, without ESN, the HMAC
    check; with ESN + HMAC we check the ICV ourselves, scapy bug 2). Returns
    (payload, next_header)."""
    s = scapy_sa(sa, seq_hi)
    if sa.esn and sa.integ:
        n = sa.icvlen
        seq = seq_hi << 32 | struct.unpack("!I", esp[4:8])[0]
        if not hmac.compare_digest(_icv(sa, esp[:-n], seq), esp[-n:]):
            raise IntegrityError("ICV mismatch (ESN)")
    try:
        d = s.decrypt(IP(src="198.18.0.1", dst="198.18.0.2", proto=PROTO_ESP) / ESP(esp),
                      verify=not (sa.esn and sa.integ))
    except IPSecIntegrityError as e:
        raise IntegrityError(str(e))
    return raw(d[IP].payload), d[IP].proto


def esp_packet(sa, seq, src, dst, nh, payload, iv, tunnel=False, natt_sport=None, padding=None):
    """Outer IPv4 packet (bytes) carrying ESP. scapy builds it, except ChaCha20-Poly1305
    (built by seal(), checked against RFC 7634 Appendix A; scapy 2.5.0 does have a
    CHACHA20-POLY1305 and selftest shows it gives the same bytes) and custom padding
    (bad_padding tests)."""
    if sa.enc != "chacha20-poly1305" and padding is None:
        return scapy_seal(sa, seq, src, dst, nh, payload, iv, tunnel, natt_sport)
    if tunnel:
        nh = PROTO_IPIP
    e = seal(sa, seq, nh, payload, iv, padding)
    if natt_sport:
        return raw(IP(src=src, dst=dst) / UDP(sport=natt_sport, dport=PORT_NATT, chksum=0) / Raw(e))
    return raw(IP(src=src, dst=dst, proto=PROTO_ESP) / Raw(e))


# ---- L2TPv3 / Ethernet ---------------------------------------------------------

def l2tp_data(over_udp, sid, cookie=b"", sublayer=True, seq=None):
    """L2TPv3 data header. Over UDP: T=0, Ver=3, Reserved (RFC 3931 §4.1.2.1). Then the
    session ID, the cookie (0/4/8 bytes) and, if sublayer, the default L2-Specific
    Sublayer (§4.6): S bit set only when seq is given."""
    h = struct.pack("!HH", 0x0003, 0) if over_udp else b""
    h += struct.pack("!I", sid) + cookie
    if sublayer:
        h += struct.pack("!I", 0 if seq is None else 0x40000000 | (seq & 0xffffff))
    return h


def l2tp_upper(over_udp, src, dst, l2tp_and_frame):
    """(next header, bytes) of the L2TPv3 upper layer: proto 115, or UDP 1701 -> 1701
    with its checksum over the src/dst pseudo-header."""
    if not over_udp:
        return PROTO_L2TP, l2tp_and_frame
    return PROTO_UDP, udp(src, dst, PORT_L2TP, PORT_L2TP, l2tp_and_frame)


def _a4(a):
    return bytes(int(x) for x in a.split("."))


def udp(src, dst, sport, dport, payload, checksum=True):
    u = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
    if checksum:
        ph = _a4(src) + _a4(dst) + struct.pack("!BBH", 0, PROTO_UDP, len(u))
        c = _csum(ph + bytes(u) + (b"\0" if len(u) % 2 else b""))
        struct.pack_into("!H", u, 6, c or 0xffff)
    return bytes(u)


def ipv4(src, dst, proto, payload, ident=1, flags_frag=0):
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_frag, 64, proto, 0,
                              _a4(src), _a4(dst)))
    struct.pack_into("!H", h, 10, _csum(bytes(h)))
    return bytes(h) + payload


def ether(dst, src, payload, ethertype=0x0800):
    return _mac(dst) + _mac(src) + struct.pack("!H", ethertype) + payload


def _csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return 0xffff - s


def _mac(m):
    return bytes.fromhex(m.replace(":", ""))


def inner_frame(src, dst, vlan=None, prio=0, n=0, size=0):
    """An inner Ethernet frame (802.1Q when vlan is not None) carrying IPv4/UDP, at least
    64 bytes. Plain bytes: scapy is too slow for a thousand payloads, and nothing here is
    under test."""
    body = b"tunterm-interop-%06d-" % n + bytes((n + i) & 0xff for i in range(max(size, 24)))
    udp = struct.pack("!HHHH", 5000 + n % 1000, 6000, 8 + len(body), 0) + body
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xffff, 0, 64, 17, 0,
                               bytes([198, 19, 200, 1 + n % 250]), bytes([198, 19, 201, 1 + n // 250 % 250])))
    struct.pack_into("!H", ip, 10, _csum(bytes(ip)))
    tag = b"" if vlan is None else struct.pack("!HH", 0x8100, prio << 13 | vlan)
    return _mac(dst) + _mac(src) + tag + b"\x08\x00" + bytes(ip) + udp


def set_tag(frame, vlan, prio=0):
    """frame with exactly one 802.1Q tag (vlan, prio) right after the MACs: inserted, or
    replacing the one it has."""
    rest = frame[16:] if frame[12:14] == b"\x81\x00" else frame[12:]
    return frame[:12] + struct.pack("!HH", 0x8100, prio << 13 | vlan) + rest


def untag(frame):
    return frame[:12] + frame[16:] if frame[12:14] == b"\x81\x00" else frame


# ---- pcap ------------------------------------------------------------------------

def write_pcap(path, frames):
    """frames: [(ts_us, bytes)]; Ethernet link type, microsecond timestamps."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for ts, b in frames:
            f.write(struct.pack("<IIII", ts // 1000000, ts % 1000000, len(b), len(b)) + b)


def read_pcap(path):
    """[(ts_ns, bytes)] from a pcap with µs or ns timestamps (tunterm writes ns)."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    scale = {0xa1b2c3d4: 1000, 0xa1b23c4d: 1}[magic]
    out, off = [], 24
    while off < len(data):
        s, frac, incl, _ = struct.unpack_from("<IIII", data, off)
        off += 16
        out.append((s * 1000000000 + frac * scale, data[off:off + incl]))
        off += incl
    return out
