#!/bin/bash
# Captures IKEv2 ground truth from strongSwan (Debian strongswan-charon 5.9.x,
# strongswan-swanctl, libcharon-extra-plugins): two charon daemons in network
# namespaces tt-ikec-a (initiator) and tt-ikec-b (responder), PSK and ECDSA
# certificate auth, kernel-libipsec for the CHILD_SAs. charon logs with
# ike=4/chd=4 ("private" level) the DH secrets, SKEYSEED, SK_*, the AUTH signed
# octets (which contain the IKE_SA_INIT messages and nonces) and the CHILD_SA
# KEYMAT seed and keys; net=4/enc=4 dump the raw packets.
#
# usage: capture.sh OUTDIR     (root; leaves OUTDIR/{a,b}/charon.log and
#                               OUTDIR/steps.txt with log line ranges per step)
# Then: extract.py OUTDIR > ../strongswan-*.txt (see extract.py).
set -u
OUT=$(realpath -m "${1:?usage: capture.sh OUTDIR}")
A=tt-ikec-a; B=tt-ikec-b
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for i in $(seq 30); do alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1; done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null
rm -rf "$OUT"; mkdir -p "$OUT"/{a,b}/run
ip netns add $A; ip netns add $B
ip link add tt-ikec-a0 netns $A type veth peer name tt-ikec-b0 netns $B
ip -n $A addr add 198.18.200.1/24 dev tt-ikec-a0
ip -n $B addr add 198.18.200.2/24 dev tt-ikec-b0
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set tt-ikec-a0 up; ip -n $B link set tt-ikec-b0 up
for i in 1 2 3 4 5 6 7; do
  ip -n $A addr add 198.18.210.$i/32 dev lo
  ip -n $B addr add 198.18.220.$i/32 dev lo
done

# ECDSA P-256 CA + end entity certificates for RFC 7427 signature auth.
mkdir -p "$OUT/pki"
( cd "$OUT/pki"
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -subj "/CN=tt-ikec CA" -days 30 -out ca.pem 2>/dev/null
  for n in a b; do
    openssl ecparam -name prime256v1 -genkey -noout -out $n.key 2>/dev/null
    openssl req -new -key $n.key -subj "/CN=$n.cert.test" -out $n.csr 2>/dev/null
    printf "subjectAltName=DNS:%s.cert.test\n" $n > $n.ext
    openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -extfile $n.ext -out $n.pem 2>/dev/null
    for r in r s; do   # RSA certificates for PKCS#1 v1.5 (r) and RSASSA-PSS (s)
      openssl genrsa -out $r$n.key 2048 2>/dev/null
      openssl req -new -key $r$n.key -subj "/CN=$r$n.cert.test" -out $r$n.csr 2>/dev/null
      printf "subjectAltName=DNS:$r%s.cert.test\n" $n > $r$n.ext
      openssl x509 -req -in $r$n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
        -extfile $r$n.ext -out $r$n.pem 2>/dev/null
    done
  done ) || fail "openssl"

for n in a b; do
  D=$OUT/$n
  mkdir -p $D/{x509,x509ca,private,pubkey,rsa,ecdsa,pkcs8,x509ocsp,x509aa,x509ac,x509crl,pkcs12}
  cp "$OUT/pki/ca.pem" $D/x509ca/
  cp "$OUT/pki/$n.pem" "$OUT/pki/r$n.pem" "$OUT/pki/s$n.pem" $D/x509/
  cp "$OUT/pki/$n.key" $D/ecdsa/; cp "$OUT/pki/r$n.key" "$OUT/pki/s$n.key" $D/rsa/
cat > $D/strongswan.conf <<EOC
charon {
  load = random nonce openssl aes sha1 sha2 hmac gcm pem pkcs1 pkcs8 x509 pubkey kdf constraints revocation kernel-libipsec kernel-netlink socket-default vici updown
  install_routes = yes
  plugins {
    vici { socket = unix://$D/run/charon.vici }
    socket-default { fwmark = 0x42 }
    kernel-netlink { fwmark = !0x42 }
  }
  filelog {
    main {
      path = $D/charon.log
      time_format = %T
      default = 1
      ike = 4
      chd = 4
      enc = 4
      net = 4
      cfg = 2
      flush_line = yes
      append = no
    }
  }
  syslog { daemon { default = -1 } }
}
swanctl { load = pem pkcs1 pkcs8 x509 revocation constraints pubkey openssl random }
EOC
done

# conn NAME  IKE-PROPOSAL  ESP-PROPOSAL  index  [auth]
conn() {
  local name=$1 ike=$2 esp=$3 i=$4 auth=${5:-psk} me=$6 peer=$7 mynet=$8 peernet=$9 myid peerid
  if [ "$auth" = psk ]; then myid=$me-$name@ikec.test; peerid=$peer-$name@ikec.test
  elif [ "$auth" = rsa ]; then myid=r$me.cert.test; peerid=r$peer.cert.test
  elif [ "$auth" = pss ]; then myid=s$me.cert.test; peerid=s$peer.cert.test
  else myid=$me.cert.test; peerid=$peer.cert.test; fi
  local la ra
  if [ "$auth" = psk ]; then la="auth = psk"; ra="auth = psk"
  elif [ "$auth" = rsa ]; then la="auth = pubkey-sha256
             certs = r$me.pem"; ra="auth = pubkey"
  elif [ "$auth" = pss ]; then la="auth = rsa/pss-sha384
             certs = s$me.pem"; ra="auth = pubkey"
  else la="auth = pubkey
             certs = $me.pem"; ra="auth = pubkey"; fi
cat <<EOC
  $name {
    version = 2
    local_addrs = $([ $me = a ] && echo 198.18.200.1 || echo 198.18.200.2)
    remote_addrs = $([ $me = a ] && echo 198.18.200.2 || echo 198.18.200.1)
    proposals = $ike
    rekey_time = 0
    local  { $la
             id = $myid }
    remote { $ra
             id = $peerid }
    children {
      $name { local_ts = $mynet.$i/32
              remote_ts = $peernet.$i/32
              esp_proposals = $esp
              rekey_time = 0
              mode = tunnel }
    }
  }
EOC
}
gen() { # me peer mynet peernet
  echo "connections {"
  conn p1 aes256ctr-sha512-prfsha512-curve25519 aes256ctr-sha512-curve25519 1 psk "$@"
  conn p2 aes256gcm16-prfsha384-ecp384 aes256gcm16-ecp384 2 psk "$@"
  conn p3 aes128-sha256-prfsha256-modp2048 aes128-sha256 3 psk "$@"
  conn p4 chacha20poly1305-prfsha256-ecp521 aes128gcm16-ecp256 4 psk "$@"
  conn p5 aes128gcm16-prfsha256-ecp256 aes256gcm16 5 ecdsa "$@"
  conn p6 aes256-sha384-prfsha384-ecp256 aes256-sha1 6 rsa "$@"
  conn p7 aes256-sha1-prfsha256-modp2048 aes256ctr-sha256-modp2048 7 pss "$@"
  echo "}"
  echo "secrets {"
  for c in p1 p2 p3 p4; do
    echo "  ike-$c { id-a = a-$c@ikec.test
             id-b = b-$c@ikec.test
             secret = \"tt-ikec-psk-$c-0123456789\" }"
  done
  echo "}"
}
gen a b 198.18.210 198.18.220 > $OUT/a/swanctl.conf
gen b a 198.18.220 198.18.210 > $OUT/b/swanctl.conf

for n in a b; do
  ns=tt-ikec-$n
  STRONGSWAN_CONF=$OUT/$n/strongswan.conf \
  ip netns exec $ns sh -c "mount --bind $OUT/$n/run /run && exec /usr/lib/ipsec/charon" \
     > $OUT/$n/stdout.log 2>&1 &
  PIDS+=($!)
done
for i in $(seq 50); do [ -S $OUT/a/run/charon.vici ] && [ -S $OUT/b/run/charon.vici ] && break; sleep 0.1; done
[ -S $OUT/a/run/charon.vici ] || fail "charon did not start"
sw() { local n=$1; shift; STRONGSWAN_CONF=$OUT/$n/strongswan.conf ip netns exec tt-ikec-$n swanctl "$@" --uri unix://$OUT/$n/run/charon.vici; }
for n in a b; do
  sw $n --load-all --file $OUT/$n/swanctl.conf > $OUT/$n/load.log 2>&1 || { cat $OUT/$n/load.log; fail "load $n"; }
done

lines() { wc -l < $OUT/a/charon.log; }
step() { # name cmd...
  local name=$1; shift
  local from=$(lines)
  "$@" > $OUT/step-$name.log 2>&1 || echo "step $name failed (see $OUT/step-$name.log)" >&2
  sleep 0.3
  echo "$name $from $(lines)" >> $OUT/steps.txt
}
for c in p1 p2 p3 p4 p5 p6 p7; do
  step $c-init sw a --initiate --child $c
  step $c-rekey-child sw a --rekey --child $c
  step $c-rekey-ike sw a --rekey --ike $c
  step $c-rekey-child2 sw a --rekey --child $c
done
sw a --list-sas > $OUT/list-sas.txt 2>&1
echo "captured into $OUT"
