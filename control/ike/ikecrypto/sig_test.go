package ikecrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	testKeysOnce sync.Once
	testRSA      *rsa.PrivateKey
	testEC       map[elliptic.Curve]*ecdsa.PrivateKey
)

func testKeys(t testing.TB) {
	testKeysOnce.Do(func() {
		var err error
		if testRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		testEC = map[elliptic.Curve]*ecdsa.PrivateKey{}
		for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
			testEC[c], _ = ecdsa.GenerateKey(c, rand.Reader)
		}
	})
}

// The AlgorithmIdentifier blobs decode (encoding/asn1) to the OIDs of
// RFC 4055 / RFC 5758 and, for PSS, to RFC 7427 A.4.3's parameters. The
// strongSwan vectors check the ECDSA-SHA256, PKCS#1-SHA256 and PSS-SHA384
// blobs byte for byte.
func TestAlgorithmIdentifiers(t *testing.T) {
	for _, c := range []struct {
		s   SigScheme
		oid asn1.ObjectIdentifier
	}{
		{SigRSAPKCS1SHA256, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}},
		{SigRSAPKCS1SHA384, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}},
		{SigRSAPKCS1SHA512, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}},
		{SigRSAPSSSHA256, oidPSS},
		{SigRSAPSSSHA384, oidPSS},
		{SigRSAPSSSHA512, oidPSS},
		{SigECDSASHA256, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}},
		{SigECDSASHA384, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}},
		{SigECDSASHA512, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}},
	} {
		var ai pkix.AlgorithmIdentifier
		rest, err := asn1.Unmarshal(c.s.AlgorithmIdentifier(), &ai)
		if err != nil || len(rest) != 0 || !ai.Algorithm.Equal(c.oid) {
			t.Errorf("%s: AlgorithmIdentifier %x decodes to %v (%v), want %v", c.s, c.s.AlgorithmIdentifier(), ai.Algorithm, err, c.oid)
		}
		if got, ok := parsePSS(c.s.AlgorithmIdentifier()); ok != sigSchemes[c.s].pss || (ok && got != c.s) {
			t.Errorf("%s: parsePSS = %s, %v", c.s, got, ok)
		}
	}
	// PSS parameters with absent (instead of NULL) hash parameters are the
	// same scheme (RFC 4055 §2.1 allows both).
	p := pssParams{
		Hash:       pkix.AlgorithmIdentifier{Algorithm: oidSHA256},
		SaltLength: 32, Trailer: 1,
	}
	mgfHash, _ := asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oidSHA256})
	p.MGF = pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: mgfHash}}
	pb, _ := asn1.Marshal(p)
	der, _ := asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oidPSS, Parameters: asn1.RawValue{FullBytes: pb}})
	if s, ok := parsePSS(der); !ok || s != SigRSAPSSSHA256 {
		t.Errorf("parsePSS(absent hash parameters %x) = %s, %v", der, s, ok)
	}
	p.SaltLength = 20
	pb, _ = asn1.Marshal(p)
	der, _ = asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oidPSS, Parameters: asn1.RawValue{FullBytes: pb}})
	if _, ok := parsePSS(der); ok {
		t.Errorf("parsePSS accepted salt length 20 with SHA-256")
	}
}

func TestSignVerifyAuth(t *testing.T) {
	testKeys(t)
	octets := []byte("IKE_SA_INIT message | Nonce | prf(SK_p, IDx')")
	for s := SigScheme(1); s < numSigSchemes; s++ {
		var key crypto.Signer = testRSA
		if sigSchemes[s].ecdsa {
			key = testEC[elliptic.P256()]
		}
		t.Run(s.String(), func(t *testing.T) {
			data, err := SignAuth(key, s, octets, nil)
			if err != nil {
				t.Fatal(err)
			}
			if int(data[0]) != len(s.AlgorithmIdentifier()) || !bytes.Equal(data[1:1+data[0]], s.AlgorithmIdentifier()) {
				t.Fatalf("AUTH data %x does not start with the AlgorithmIdentifier", data)
			}
			got, err := VerifyAuth(key.Public(), AuthDigitalSignature, data, octets)
			if err != nil || got != s {
				t.Fatalf("VerifyAuth = %s, %v", got, err)
			}
			if _, err := VerifyAuth(key.Public(), AuthDigitalSignature, data, octets[1:]); !errors.Is(err, ErrSignature) {
				t.Errorf("VerifyAuth(other octets) = %v, want ErrSignature", err)
			}
			bad := append([]byte{}, data...)
			bad[len(bad)-1] ^= 1
			if _, err := VerifyAuth(key.Public(), AuthDigitalSignature, bad, octets); err == nil {
				t.Errorf("VerifyAuth accepted a modified signature")
			}
			// A key of the other type does not verify.
			var other crypto.PublicKey = testEC[elliptic.P256()].Public()
			if sigSchemes[s].ecdsa {
				other = testRSA.Public()
			}
			if _, err := VerifyAuth(other, AuthDigitalSignature, data, octets); !errors.Is(err, ErrUnsupported) {
				t.Errorf("VerifyAuth with a %T = %v, want ErrUnsupported", other, err)
			}
			if s.Hash() < HashSHA2_256 || s.Hash() > HashSHA2_512 {
				t.Errorf("Hash() = %d", s.Hash())
			}
			opensslVerify(t, s, key.Public(), data[1+data[0]:], octets)
		})
	}
	if _, err := SignAuth(testRSA, SigECDSASHA256, octets, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("SignAuth(RSA key, ECDSA) = %v, want ErrUnsupported", err)
	}
	for _, d := range [][]byte{nil, {5, 1, 2}, {3, 1, 2, 3, 4}} {
		if _, err := VerifyAuth(testRSA.Public(), AuthDigitalSignature, d, octets); err == nil {
			t.Errorf("VerifyAuth(%x) accepted", d)
		}
	}
}

// opensslVerify has the openssl command line tool (a verifier we did not
// write) check our signature, when it is installed.
func opensslVerify(t *testing.T, s SigScheme, pub crypto.PublicKey, sig, msg []byte) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl not installed; skipping the independent verification")
		return
	}
	dir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(pub)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"dgst", "-" + map[crypto.Hash]string{crypto.SHA256: "sha256", crypto.SHA384: "sha384", crypto.SHA512: "sha512"}[sigSchemes[s].hash],
		"-verify", write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"-signature", write("sig", sig)}
	if sigSchemes[s].pss {
		args = append(args, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1", "-sigopt", "rsa_mgf1_md:"+args[1][1:])
	}
	args = append(args, write("msg", msg))
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("Verified OK")) {
		t.Errorf("openssl %v: %s (%v)", args, out, err)
	}
}

func TestClassicAuth(t *testing.T) {
	testKeys(t)
	octets := []byte("signed octets")
	for _, c := range []struct {
		key  crypto.Signer
		want AuthMethod
		n    int
	}{
		{testRSA, AuthRSASig, 256},
		{testEC[elliptic.P256()], AuthECDSA256, 64},
		{testEC[elliptic.P384()], AuthECDSA384, 96},
		{testEC[elliptic.P521()], AuthECDSA521, 132},
	} {
		m, data, err := SignClassic(c.key, octets, nil)
		if err != nil || m != c.want || len(data) != c.n {
			t.Fatalf("SignClassic(%T) = %d, %d octets, %v; want method %d, %d octets", c.key, m, len(data), err, c.want, c.n)
		}
		if _, err := VerifyAuth(c.key.Public(), m, data, octets); err != nil {
			t.Errorf("VerifyAuth(method %d) = %v", m, err)
		}
		if _, err := VerifyAuth(c.key.Public(), m, data, append(octets, 0)); !errors.Is(err, ErrSignature) {
			t.Errorf("VerifyAuth(method %d, other octets) = %v, want ErrSignature", m, err)
		}
	}
	// The RFC 4754 curve is bound to the method.
	_, data, _ := SignClassic(testEC[elliptic.P384()], octets, nil)
	if _, err := VerifyAuth(testEC[elliptic.P384()].Public(), AuthECDSA256, data, octets); !errors.Is(err, ErrUnsupported) {
		t.Errorf("method 9 with a P-384 key = %v, want ErrUnsupported", err)
	}
	if _, err := VerifyAuth(testRSA.Public(), AuthPSK, nil, octets); !errors.Is(err, ErrUnsupported) {
		t.Errorf("VerifyAuth(PSK) = %v, want ErrUnsupported", err)
	}
}

func TestPSKAuthDefinition(t *testing.T) {
	// AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>),
	// written out with the RFC 4231-checked PRF.
	secret, octets := []byte("tt-ikec-psk"), []byte("octets")
	k, _ := PRF(PRFHMACSHA256, secret, []byte("Key Pad for IKEv2"))
	want, _ := PRF(PRFHMACSHA256, k, octets)
	got, err := PSKAuth(PRFHMACSHA256, secret, octets)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("PSKAuth = %x, %v, want %x", got, err, want)
	}
}
