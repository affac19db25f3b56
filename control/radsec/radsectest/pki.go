// Package radsectest has fakes and helpers for testing the RadSec proxy:
// a throw-away PKI, a fake RADIUS/UDP server and a RadSec (RADIUS/TLS)
// client playing an AP. Its RADIUS cryptography is written again here, from
// the RFCs, apart from the proxy's, and leans on layeh.com/radius for
// User-Password and the salted attributes, so that a test never checks the
// proxy only against itself.
package radsectest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte
}

// Pool returns a pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf is a certificate and its key.
type Leaf struct {
	CertPEM, KeyPEM []byte
	TLS             tls.Certificate
	Cert            *x509.Certificate
}

var serial struct {
	sync.Mutex
	n int64
}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	if serial.n == 0 {
		serial.n = time.Now().UnixNano()
	}
	serial.n++
	return big.NewInt(serial.n)
}

// NewCA makes a self-signed CA valid from an hour ago for a year.
func NewCA(cn string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// IssueOptions shape a leaf certificate.
type IssueOptions struct {
	NotBefore, NotAfter time.Time // default: an hour ago, in 30 days
	IPs                 []net.IP  // subjectAltName IP (radsecproxy checks it against the host)
	DNS                 []string
	// Usage defaults to both serverAuth and clientAuth.
	Usage []x509.ExtKeyUsage
}

// Issue signs a leaf certificate for cn.
func (ca *CA) Issue(cn string, o IssueOptions) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(30 * 24 * time.Hour)
	}
	if o.Usage == nil {
		o.Usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: o.NotBefore, NotAfter: o.NotAfter, IPAddresses: o.IPs, DNSNames: o.DNS,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: o.Usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	l := &Leaf{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	if l.TLS, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM); err != nil {
		return nil, err
	}
	l.Cert, err = x509.ParseCertificate(der)
	return l, err
}

// WriteFiles writes dir/base.pem and dir/base.key (mode 0644: FreeRADIUS
// and radsecproxy may run as another user) and returns their paths.
func (l *Leaf) WriteFiles(dir, base string) (cert, key string, err error) {
	cert, key = filepath.Join(dir, base+".pem"), filepath.Join(dir, base+".key")
	if err = os.WriteFile(cert, l.CertPEM, 0o644); err != nil {
		return
	}
	err = os.WriteFile(key, l.KeyPEM, 0o644)
	return
}

// WriteFile writes the CA certificate to dir/base.pem.
func (ca *CA) WriteFile(dir, base string) (string, error) {
	p := filepath.Join(dir, base+".pem")
	return p, os.WriteFile(p, ca.PEM, 0o644)
}
