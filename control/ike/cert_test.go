package ike_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tunterm/tunterm/control/ike"
	"github.com/tunterm/tunterm/control/ike/iketest"
	"github.com/tunterm/tunterm/control/ike/wire"
)

type pki struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial int64

func mkCert(t testing.TB, cn string, key crypto.Signer, parent *pki, isCA bool, notBefore, notAfter time.Time, dns ...string) *pki {
	t.Helper()
	serial++
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"tunterm test"}},
		NotBefore: notBefore, NotAfter: notAfter, DNSNames: dns, BasicConstraintsValid: true, IsCA: isCA,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	signer, pcert := key, tpl
	if parent != nil {
		signer, pcert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, pcert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &pki{c, key}
}

func ecKey(c elliptic.Curve) crypto.Signer { k, _ := ecdsa.GenerateKey(c, rand.Reader); return k }

func rsaKey() crypto.Signer { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k }

func writePEM(t testing.TB, dir, name string, p *pki) (certFile, keyFile string) {
	certFile = filepath.Join(dir, name+".pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.cert.Raw}), 0o644)
	der, err := x509.MarshalPKCS8PrivateKey(p.key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, name+".key")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	return
}

func TestCertificates(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	year := 365 * 24 * time.Hour
	caA := mkCert(t, "AP CA A", ecKey(elliptic.P256()), nil, true, now.Add(-20*year), now.Add(20*year))
	caB := mkCert(t, "AP CA B (old APs)", rsaKey(), nil, true, now.Add(-20*year), now.Add(20*year))
	rogue := mkCert(t, "Rogue CA", ecKey(elliptic.P256()), nil, true, now.Add(-year), now.Add(year))
	srv := mkCert(t, "tunterm.example", ecKey(elliptic.P384()), caA, false, now.Add(-year), now.Add(year), "tunterm.example")
	caAFile, _ := writePEM(t, dir, "caA", caA)
	caBFile, _ := writePEM(t, dir, "caB", caB)
	srvCert, srvKey := writePEM(t, dir, "srv", srv)

	g := newRig(t, fmt.Sprintf(`
ike:
  listen: [127.0.0.1]
  cert: %s
  key: %s
  ca: [%s, {file: %s, expired_certs: accept}]
  expired_certs: reject
  psk: [{id: "*", secret: "unused"}]
  esp_proposals: [aes256gcm16]
`, srvCert, srvKey, caAFile, caBFile))

	valid := func(ca *pki, key crypto.Signer, cn string, dns ...string) *pki {
		return mkCert(t, cn, key, ca, false, now.Add(-year), now.Add(year), dns...)
	}
	expired := func(ca *pki, key crypto.Signer, cn string, dns ...string) *pki {
		return mkCert(t, cn, key, ca, false, now.Add(-11*year), now.Add(-year), dns...)
	}
	for _, tc := range []struct {
		name    string
		id      string
		leaf    *pki
		classic bool
		want    error
		counter ike.Counter
	}{
		{"ecdsa-rfc7427", "ap1.example", valid(caA, ecKey(elliptic.P256()), "ap1", "ap1.example"), false, nil, ike.IKESAs},
		{"ecdsa384-classic", "ap2.example", valid(caA, ecKey(elliptic.P384()), "ap2", "ap2.example"), true, nil, ike.IKESAs},
		{"rsa-rfc7427", "ap3.example", valid(caB, rsaKey(), "ap3", "ap3.example"), false, nil, ike.IKESAs},
		{"rsa-classic", "ap4.example", valid(caB, rsaKey(), "ap4", "ap4.example"), true, nil, ike.IKESAs},
		{"keyid-mac-in-cn", "@#0011223344ff", valid(caA, ecKey(elliptic.P256()), "AP 00:11:22:33:44:ff"), false, nil, ike.IKESAs},
		{"expired-reject", "ap5.example", expired(caA, ecKey(elliptic.P256()), "ap5", "ap5.example"), false, errAuth, ike.CertExpiredReject},
		{"expired-accept-per-ca", "ap6.example", expired(caB, rsaKey(), "ap6", "ap6.example"), false, nil, ike.CertExpiredAccept},
		{"unknown-ca", "ap7.example", valid(rogue, ecKey(elliptic.P256()), "ap7", "ap7.example"), false, errAuth, ike.UnknownCA},
		{"id-mismatch", "other.example", valid(caA, ecKey(elliptic.P256()), "ap8", "ap8.example"), false, errAuth, ike.AuthFailedCert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := g.r.Stats().Get(tc.counter)
			i := g.ap("127.0.0.2", func(c *iketest.Config) {
				c.ID, c.Certs, c.Key, c.ClassicAuth = tc.id, []*x509.Certificate{tc.leaf.cert}, tc.leaf.key, tc.classic
				c.ESP, c.Transport = "aes256gcm16", true
			})
			err := i.Connect()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Connect() = %v, want %v", err, tc.want)
			}
			if got := g.r.Stats().Get(tc.counter); got != before+1 {
				t.Errorf("%s = %d, want %d", tc.counter, got, before+1)
			}
			if err == nil {
				if !strings.Contains(i.IDr.String(), "CN=tunterm.example") { // our certificate's subject DN
					t.Errorf("IDr = %s", i.IDr)
				}
				i.DeleteIKE()
			}
		})
	}
	log := g.log.String()
	for _, want := range []string{"certificate expired (expired_certs: reject)", "accepting an EXPIRED certificate",
		"certificate not issued by a configured CA", "identity not confirmed by the certificate"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	var b strings.Builder
	g.r.Listing().WriteText(&b)
	if !strings.Contains(b.String(), "accept   CN=AP CA B (old APs)") || !strings.Contains(b.String(), "reject   CN=AP CA A") {
		t.Errorf("listing lacks the CA policies:\n%s", b.String())
	}
}

var errAuth = &iketest.NotifyError{Type: wire.AUTHENTICATION_FAILED}

// TestFragmentedResponse: our IKE_AUTH response with a certificate chain is
// longer than fragment_size and goes out as RFC 7383 fragments.
func TestFragmentedResponse(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	year := 365 * 24 * time.Hour
	ca := mkCert(t, "AP CA", rsaKey(), nil, true, now.Add(-year), now.Add(year))
	srv := mkCert(t, "tunterm.example", rsaKey(), ca, false, now.Add(-year), now.Add(year), "tunterm.example")
	ap := mkCert(t, "ap", ecKey(elliptic.P256()), ca, false, now.Add(-year), now.Add(year), "ap.example")
	caFile, _ := writePEM(t, dir, "ca", ca)
	srvCert, srvKey := writePEM(t, dir, "srv", srv)
	g := newRig(t, fmt.Sprintf("ike:\n  listen: [127.0.0.1]\n  cert: %s\n  key: %s\n  ca: [%s]\n  fragment_size: 576\n", srvCert, srvKey, caFile))
	i := g.ap("127.0.0.2", func(c *iketest.Config) {
		c.ID, c.Certs, c.Key, c.FragmentSize = "ap.example", []*x509.Certificate{ap.cert}, ap.key, 200
	})
	if err := i.Connect(); err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	if g.r.Stats().Get(ike.FragmentsTx) < 2 || g.r.Stats().Get(ike.FragmentsRx) < 2 {
		t.Errorf("fragments_tx %d, fragments_rx %d", g.r.Stats().Get(ike.FragmentsTx), g.r.Stats().Get(ike.FragmentsRx))
	}
}
