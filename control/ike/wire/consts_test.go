package wire_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tunterm/tunterm/control/ike/wire"
)

// tsharkValues loads the value strings of Wireshark's isakmp dissector
// (`tshark -G values`): field -> value -> labels (IKEv1 and IKEv2 tables
// share field names, so a value may have two labels).
var tsharkValues = sync.OnceValues(func() (map[string]map[int][]string, error) {
	out, err := exec.Command("tshark", "-G", "values").Output()
	if err != nil {
		return nil, err
	}
	m := map[string]map[int][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 4 || !strings.HasPrefix(f[1], "isakmp.") {
			continue
		}
		add := func(lo, hi int, label string) {
			if hi-lo > 1000 {
				return // "Private use" style ranges
			}
			if m[f[1]] == nil {
				m[f[1]] = map[int][]string{}
			}
			for v := lo; v <= hi; v++ {
				m[f[1]][v] = append(m[f[1]][v], label)
			}
		}
		switch f[0] {
		case "V":
			v, _ := strconv.Atoi(f[2])
			add(v, v, f[3])
		case "R":
			if len(f) < 5 {
				continue
			}
			lo, _ := strconv.Atoi(f[2])
			hi, _ := strconv.Atoi(f[3])
			add(lo, hi, f[4])
		}
	}
	return m, sc.Err()
})

func needTshark(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("SKIPPING: tshark not installed (apt-get install tshark, or `make deps`); the outside check of the IKE constants and encodings did not run")
	}
}

// Every number this package puts on the wire, checked against the labels of
// Wireshark's independently written isakmp dissector.
func TestConstantsAgainstWireshark(t *testing.T) {
	needTshark(t)
	vals, err := tsharkValues()
	if err != nil {
		t.Fatalf("tshark -G values: %v", err)
	}
	type c struct {
		field string
		v     int
		label string
	}
	cs := []c{
		{"isakmp.exchangetype", int(wire.IKE_SA_INIT), "IKE_SA_INIT"}, {"isakmp.exchangetype", int(wire.IKE_AUTH), "IKE_AUTH"},
		{"isakmp.exchangetype", int(wire.CREATE_CHILD_SA), "CREATE_CHILD_SA"}, {"isakmp.exchangetype", int(wire.INFORMATIONAL), "INFORMATIONAL"},
		{"isakmp.nextpayload", int(wire.PayloadNone), "NONE / No Next Payload "},
		{"isakmp.nextpayload", int(wire.PayloadSA), "Security Association"}, {"isakmp.nextpayload", int(wire.PayloadKE), "Key Exchange"},
		{"isakmp.nextpayload", int(wire.PayloadIDi), "Identification - Initiator"}, {"isakmp.nextpayload", int(wire.PayloadIDr), "Identification - Responder"},
		{"isakmp.nextpayload", int(wire.PayloadCERT), "Certificate"}, {"isakmp.nextpayload", int(wire.PayloadCERTREQ), "Certificate Request"},
		{"isakmp.nextpayload", int(wire.PayloadAUTH), "Authentication"}, {"isakmp.nextpayload", int(wire.PayloadNonce), "Nonce"},
		{"isakmp.nextpayload", int(wire.PayloadNotify), "Notify"}, {"isakmp.nextpayload", int(wire.PayloadDelete), "Delete"},
		{"isakmp.nextpayload", int(wire.PayloadVendorID), "Vendor ID"}, {"isakmp.nextpayload", int(wire.PayloadTSi), "Traffic Selector - Initiator"},
		{"isakmp.nextpayload", int(wire.PayloadTSr), "Traffic Selector - Responder"}, {"isakmp.nextpayload", int(wire.PayloadSK), "Encrypted and Authenticated"},
		{"isakmp.nextpayload", int(wire.PayloadCP), "Configuration"}, {"isakmp.nextpayload", int(wire.PayloadEAP), "Extensible Authentication"},
		{"isakmp.nextpayload", int(wire.PayloadSKF), "Encrypted and Authenticated Fragment"},
		{"isakmp.prop.protoid", int(wire.ProtoIKE), "IKE"}, {"isakmp.prop.protoid", int(wire.ProtoAH), "AH"}, {"isakmp.prop.protoid", int(wire.ProtoESP), "ESP"},
		{"isakmp.tf.type", int(wire.TransformENCR), "Encryption Algorithm (ENCR)"}, {"isakmp.tf.type", int(wire.TransformPRF), "Pseudo-random Function (PRF)"},
		{"isakmp.tf.type", int(wire.TransformINTEG), "Integrity Algorithm (INTEG)"}, {"isakmp.tf.type", int(wire.TransformDH), "Diffie-Hellman Group (D-H)"},
		{"isakmp.tf.type", int(wire.TransformESN), "Extended Sequence Numbers (ESN)"},
		{"isakmp.ike2.attr.type", wire.AttrKeyLength, "Key Length"},
		{"isakmp.tf.id.encr", int(wire.ENCR_3DES), "ENCR_3DES"}, {"isakmp.tf.id.encr", int(wire.ENCR_NULL), "ENCR_NULL"},
		{"isakmp.tf.id.encr", int(wire.ENCR_AES_CBC), "ENCR_AES_CBC"}, {"isakmp.tf.id.encr", int(wire.ENCR_AES_CTR), "ENCR_AES_CTR"},
		{"isakmp.tf.id.encr", int(wire.ENCR_AES_CCM_8), "ENCR_AES-CCM_8"}, {"isakmp.tf.id.encr", int(wire.ENCR_AES_CCM_16), "ENCR-AES-CCM_16"},
		{"isakmp.tf.id.encr", int(wire.ENCR_AES_GCM_8), "AES-GCM with a 8 octet ICV"}, {"isakmp.tf.id.encr", int(wire.ENCR_AES_GCM_12), "AES-GCM with a 12 octet ICV"},
		{"isakmp.tf.id.encr", int(wire.ENCR_AES_GCM_16), "AES-GCM with a 16 octet ICV"}, {"isakmp.tf.id.encr", int(wire.ENCR_NULL_AUTH_GMAC), "ENCR_NULL_AUTH_AES_GMAC"},
		{"isakmp.tf.id.encr", int(wire.ENCR_CAMELLIA_CBC), "ENCR_CAMELLIA_CBC"}, {"isakmp.tf.id.encr", int(wire.ENCR_CHACHA20_POLY1305), "ENCR_CHACHA20_POLY1305"},
		{"isakmp.tf.id.esn", int(wire.NO_ESN), "No Extended Sequence Numbers"}, {"isakmp.tf.id.esn", int(wire.ESN), "Extended Sequence Numbers"},
		{"isakmp.tf.id.dh", int(wire.MODP_1024), "Alternate 1024-bit MODP group"}, {"isakmp.tf.id.dh", int(wire.MODP_2048), "2048 bit MODP group"},
		{"isakmp.tf.id.dh", int(wire.MODP_3072), "3072 bit MODP group"}, {"isakmp.tf.id.dh", int(wire.MODP_4096), "4096 bit MODP group"},
		{"isakmp.tf.id.dh", int(wire.ECP_256), "256-bit random ECP group"}, {"isakmp.tf.id.dh", int(wire.ECP_384), "384-bit random ECP group"},
		{"isakmp.tf.id.dh", int(wire.ECP_521), "521-bit random ECP group"}, {"isakmp.tf.id.dh", int(wire.ECP_256_BP), "256-bit Brainpool ECP group"},
		{"isakmp.tf.id.dh", int(wire.CURVE_25519), "Curve25519"}, {"isakmp.tf.id.dh", int(wire.CURVE_448), "Curve448"},
		{"isakmp.id.type", int(wire.ID_IPV4_ADDR), "IPV4_ADDR"}, {"isakmp.id.type", int(wire.ID_FQDN), "FQDN"},
		{"isakmp.id.type", int(wire.ID_RFC822_ADDR), "ID_RFC822_ADDR"}, {"isakmp.id.type", int(wire.ID_IPV6_ADDR), "IPV6_ADDR"},
		{"isakmp.id.type", int(wire.ID_DER_ASN1_DN), "DER_ASN1_DN"}, {"isakmp.id.type", int(wire.ID_DER_ASN1_GN), "DER_ASN1_GN"},
		{"isakmp.id.type", int(wire.ID_KEY_ID), "KEY_ID"},
		{"isakmp.cert.encoding", int(wire.CertPKCS7), "PKCS #7 wrapped X.509 certificate"},
		{"isakmp.cert.encoding", int(wire.CertX509Signature), "X.509 Certificate - Signature"},
		{"isakmp.cert.encoding", int(wire.CertCRL), "Certificate Revocation List (CRL)"},
		{"isakmp.cert.encoding", int(wire.CertHashURLX509), "Hash and URL of X.509 certificate"},
		{"isakmp.auth.method", int(wire.AuthRSASignature), "RSA Digital Signature"},
		{"isakmp.auth.method", int(wire.AuthSharedKeyMIC), "Shared Key Message Integrity Code"},
		{"isakmp.auth.method", int(wire.AuthDSSSignature), "DSS Digital Signature"},
		{"isakmp.auth.method", int(wire.AuthECDSA256), "ECDSA with SHA-256 on the P-256 curve"},
		{"isakmp.auth.method", int(wire.AuthECDSA384), "ECDSA with SHA-384 on the P-384 curve"},
		{"isakmp.auth.method", int(wire.AuthECDSA521), "ECDSA with SHA-512 on the P-521 curve"},
		{"isakmp.auth.method", int(wire.AuthNULL), "NULL Authentication"},
		{"isakmp.auth.method", int(wire.AuthDigitalSignature), "Digital Signature"},
		{"isakmp.ts.type", int(wire.TS_IPV4_ADDR_RANGE), "TS_IPV4_ADDR_RANGE"}, {"isakmp.ts.type", int(wire.TS_IPV6_ADDR_RANGE), "TS_IPV6_ADDR_RANGE"},
		{"isakmp.cfg.type", int(wire.CFG_REQUEST), "CFG_REQUEST"}, {"isakmp.cfg.type", int(wire.CFG_REPLY), "CFG_REPLY"},
		{"isakmp.cfg.type", int(wire.CFG_SET), "CFG_SET"}, {"isakmp.cfg.type", int(wire.CFG_ACK), "CFG_ACK"},
		{"isakmp.notify.data.signature_hash_algorithms", int(wire.HashSHA1), "SHA1"},
		{"isakmp.notify.data.signature_hash_algorithms", int(wire.HashSHA2_256), "SHA2-256"},
		{"isakmp.notify.data.signature_hash_algorithms", int(wire.HashSHA2_384), "SHA2-384"},
		{"isakmp.notify.data.signature_hash_algorithms", int(wire.HashSHA2_512), "SHA2-512"},
		{"isakmp.notify.data.signature_hash_algorithms", int(wire.HashIdentity), "Identity"},
	}
	for _, id := range []wire.PRFID{wire.PRF_HMAC_MD5, wire.PRF_HMAC_SHA1, wire.PRF_HMAC_SHA2_256, wire.PRF_HMAC_SHA2_384, wire.PRF_HMAC_SHA2_512} {
		cs = append(cs, c{"isakmp.tf.id.prf", int(id), id.String()})
	}
	for _, id := range []wire.IntegID{wire.AUTH_HMAC_MD5_96, wire.AUTH_HMAC_SHA1_96, wire.AUTH_AES_XCBC_96, wire.AUTH_AES_CMAC_96,
		wire.AUTH_AES_128_GMAC, wire.AUTH_AES_256_GMAC, wire.AUTH_HMAC_SHA2_256_128, wire.AUTH_HMAC_SHA2_384_192, wire.AUTH_HMAC_SHA2_512_256} {
		cs = append(cs, c{"isakmp.tf.id.integ", int(id), "AUTH_" + id.String()})
	}
	for n := range 1 << 16 {
		nt := wire.NotifyType(n)
		if s := nt.String(); s != strconv.Itoa(n) {
			cs = append(cs, c{"isakmp.notify.msgtype", n, s})
		}
	}
	for _, tc := range cs {
		labels := vals[tc.field][tc.v]
		found := false
		for _, l := range labels {
			found = found || l == tc.label
		}
		if !found {
			t.Errorf("%s %d: Wireshark says %q, want %q", tc.field, tc.v, labels, tc.label)
		}
	}
	t.Logf("%d constants agree with Wireshark's isakmp dissector", len(cs))
}
