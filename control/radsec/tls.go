package radsec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/tunterm/tunterm/control/config"
)

// tlsSetup is the TLS side of one configuration: immutable once built.
type tlsSetup struct {
	conf *tls.Config
	// For /debug/radsec and the expiry gauges.
	cert certInfo
	cas  []certInfo
}

type certInfo struct {
	File     string    `json:"file"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
}

func infoOf(file string, c *x509.Certificate) certInfo {
	return certInfo{File: file, Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotAfter: c.NotAfter}
}

// handshakeError carries the reason a client certificate was refused out of
// VerifyPeerCertificate.
type handshakeError struct {
	reason reject
	err    error
}

func (e *handshakeError) Error() string { return e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// loadTLS reads radsec.cert, radsec.key and radsec.ca. Errors name the key.
func loadTLS(rc *config.RadSec) (*tlsSetup, error) {
	pair, err := tls.LoadX509KeyPair(rc.Cert, rc.Key)
	if err != nil {
		return nil, fmt.Errorf("radsec.cert/radsec.key: %w", err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("radsec.cert: %s: %w", rc.Cert, err)
		}
	}
	ts := &tlsSetup{cert: infoOf(rc.Cert, leaf)}
	roots := x509.NewCertPool()
	for i, f := range rc.CA {
		certs, err := config.ReadCertificates(f)
		if err != nil {
			return nil, fmt.Errorf("radsec.ca[%d]: %w", i, err)
		}
		for _, c := range certs {
			roots.AddCert(c)
			ts.cas = append(ts.cas, infoOf(f, c))
		}
	}
	acceptExpired := rc.AcceptExpired
	ts.conf = &tls.Config{
		MinVersion:   tls.VersionTLS12, // RFC 6614 §2.3 asks for 1.1+; we take 1.2 and 1.3
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		// We verify ourselves to tell the reasons apart and to apply
		// accept_expired; RequestClientCert makes Go call us even when the
		// client sends no certificate.
		ClientAuth: tls.RequestClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyClient(raw, roots, acceptExpired)
		},
	}
	return ts, nil
}

// verifyClient checks an AP's chain against roots for client
// authentication (RFC 6614 §2.3: mutual authentication, both sides check the
// peer's certificate against their trust anchors).
func verifyClient(raw [][]byte, roots *x509.CertPool, acceptExpired bool) error {
	if len(raw) == 0 {
		return &handshakeError{rejectNoCert, errors.New("the client sent no certificate")}
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return &handshakeError{rejectBadCert, fmt.Errorf("unparsable client certificate: %w", err)}
		}
		certs = append(certs, c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	_, err := certs[0].Verify(opts)
	if err == nil {
		return nil
	}
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return &handshakeError{rejectUnknownCA, err}
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		if acceptExpired {
			// Verify as of the moment the earliest certificate of the
			// chain was last valid.
			t := certs[0].NotAfter
			for _, c := range certs[1:] {
				if c.NotAfter.Before(t) {
					t = c.NotAfter
				}
			}
			opts.CurrentTime = t
			if _, err2 := certs[0].Verify(opts); err2 == nil {
				return nil // serveConn counts it: the leaf or chain is past NotAfter
			}
		}
		return &handshakeError{rejectExpired, err}
	}
	return &handshakeError{rejectBadCert, err}
}

// classify names the reason a TLS handshake failed.
func classify(err error) reject {
	var he *handshakeError
	var rh tls.RecordHeaderError
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.As(err, &he):
		return he.reason
	case errors.As(err, &rh):
		return rejectPlaintext
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return rejectTimeout
	case errors.As(err, &op) && op.Op == "remote error":
		return rejectPeerAlert
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.EPIPE):
		return rejectClosed
	}
	return rejectProtocol
}
