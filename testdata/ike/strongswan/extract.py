#!/usr/bin/python3
"""Turn the charon log of capture.sh's initiator (a/charon.log) into the
vector files testdata/ike/strongswan-pN.txt read by control/ike/ikecrypto's
tests.

usage: extract.py CAPTUREDIR OUTDIR

Every value is copied from a hex dump charon wrote itself (DBG3/DBG4 "%B"
lines of strongSwan's keymat_v2.c, encrypted_payload.c, child_create.c);
nothing is computed here. One file per connection, one "step" block per
swanctl command (initiate, rekey CHILD_SA, rekey IKE_SA, rekey CHILD_SA):

  step NAME
  proposal IKE:...|ESP:...        ("selected proposal" lines)
  LABEL HEX                       (one blob, labels below)
  sk seal|open iv=.. assoc=.. plain=.. padding=.. encrypted=.. icv=..
"""
import os, re, sys

LABELS = {
    ("IKE", "shared Diffie Hellman secret"): "ike_dh",
    ("IKE", "SKEYSEED"): "skeyseed",
    ("IKE", "Sk_d secret"): "sk_d", ("IKE", "Sk_ai secret"): "sk_ai",
    ("IKE", "Sk_ar secret"): "sk_ar", ("IKE", "Sk_ei secret"): "sk_ei",
    ("IKE", "Sk_er secret"): "sk_er", ("IKE", "Sk_pi secret"): "sk_pi",
    ("IKE", "Sk_pr secret"): "sk_pr",
    ("IKE", "IDx'"): "idx", ("IKE", "SK_p"): "sk_p",
    ("IKE", "octets = message + nonce + prf(Sk_px, IDx')"): "octets",
    ("IKE", "secret"): "psk", ("IKE", "prf(secret, keypad)"): "psk_pad",
    ("IKE", "AUTH = prf(prf(secret, keypad), octets)"): "auth",
    ("CHD", "DH secret"): "child_dh", ("CHD", "seed"): "child_seed",
    ("CHD", "encryption initiator key"): "encr_i",
    ("CHD", "encryption responder key"): "encr_r",
    ("CHD", "integrity initiator key"): "integ_i",
    ("CHD", "integrity responder key"): "integ_r",
}
ENC = {"IV": "iv", "plain": "plain", "padding": "padding", "assoc": "assoc",
       "encrypted": "encrypted", "ICV": "icv"}
HEAD = re.compile(r"^\S+ (\d+)\[(\w+)\] (.*?) => (\d+) bytes @ \S+$")
HEX = re.compile(r"^\S+ (\d+)\[(\w+)\]\s+\d+: ((?:[0-9A-F]{2} )+)")
PROP = re.compile(r"\[CFG\] selected proposal: (\S+)")

def parse(lines):
    out, cur, msgs = [], {}, {}   # cur: thread -> [blob bytearray, want len]
    for l in lines:
        l = l.rstrip("\n")
        m = HEX.match(l)
        if m and m.group(1) in cur:
            cur[m.group(1)][0].extend(bytes.fromhex(m.group(3).replace(" ", "")))
            continue
        m = PROP.search(l)
        if m:
            out.append(("proposal", m.group(1)))
            continue
        m = HEAD.match(l)
        if not m:
            continue
        tid, fac, label, n = m.group(1), m.group(2), m.group(3), int(m.group(4))
        cur.pop(tid, None)
        blob = bytearray()
        if fac == "ENC" and label in ENC:
            key = ENC[label]
            if key == "iv":
                msg = {"order": []}
                msgs[tid] = msg
                out.append(("sk", msg))
            msg = msgs.get(tid)
            if msg is None:
                continue
            msg[key] = blob
            msg["order"].append(key)
        elif (fac, label) in LABELS:
            out.append((LABELS[(fac, label)], blob))
        else:
            continue
        cur[tid] = [blob, n]
    return out

def fmt(out):
    res = []
    for k, v in out:
        if k == "proposal":
            res.append("proposal " + v)
        elif k == "sk":
            if not all(x in v for x in ENC.values()):
                continue
            d = "seal" if v["order"].index("plain") < v["order"].index("encrypted") else "open"
            res.append("sk " + d + " " + " ".join(
                "%s=%s" % (x, bytes(v[x]).hex() or "-") for x in
                ("iv", "assoc", "plain", "padding", "encrypted", "icv")))
        else:
            res.append("%s %s" % (k, bytes(v).hex() or "-"))
    return res

def main():
    cap, outdir = sys.argv[1], sys.argv[2]
    log = open(os.path.join(cap, "a", "charon.log"), errors="replace").readlines()
    steps = [l.split() for l in open(os.path.join(cap, "steps.txt"))]
    conf = open(os.path.join(cap, "a", "swanctl.conf")).read()
    files = {}
    for name, a, b in steps:
        conn = name.split("-")[0]
        files.setdefault(conn, []).append((name, fmt(parse(log[int(a):int(b)]))))
    for conn, blocks in files.items():
        m = re.search(r"^  %s \{.*?proposals = (\S+).*?esp_proposals = (\S+)" % conn, conf, re.S | re.M)
        auth = re.search(r"^  %s \{.*?local  \{ auth = (\S+)" % conn, conf, re.S | re.M).group(1)
        with open(os.path.join(outdir, "strongswan-%s.txt" % conn), "w") as f:
            f.write(HEADER % (conn, m.group(1), m.group(2), auth))
            if auth == "psk":
                f.write("psk_config tt-ikec-psk-%s-0123456789\n" % conn)
            for name, lines in blocks:
                f.write("\nstep %s\n" % name)
                for l in lines:
                    f.write(l + "\n")

HEADER = """# IKEv2 ground truth captured from strongSwan 5.9.8 (Debian strongswan-charon
# 5.9.8-5+deb12u6, openssl plugin) by testdata/ike/strongswan/capture.sh and
# extract.py: two charon daemons in network namespaces, initiator "a" logging
# with ike=4 chd=4 enc=4. Every hex value below is a blob charon dumped in its
# log (keymat_v2.c, encrypted_payload.c); SPIs, nonces and messages are in the
# octets/assoc/plain blobs. Values are random per run; regenerate with
#   sudo testdata/ike/strongswan/capture.sh /tmp/cap &&
#   testdata/ike/strongswan/extract.py /tmp/cap testdata/ike
# Connection %s: proposals = %s, esp_proposals = %s, auth = %s.
# Steps: init (IKE_SA_INIT + IKE_AUTH), rekey-child (CREATE_CHILD_SA),
# rekey-ike (CREATE_CHILD_SA rekeying the IKE SA), rekey-child2 (on the new SA).
"""

main()
