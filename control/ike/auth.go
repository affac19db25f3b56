package ike

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/ike/ikecrypto"
	"github.com/tunterm/tunterm/control/ike/proposal"
	"github.com/tunterm/tunterm/control/ike/wire"
)

// handleAuth processes IKE_AUTH (RFC 7296 §1.2, §2.15): authenticate the
// peer, authenticate ourselves the same way (PSK for PSK, our certificate
// for a certificate), then create the first CHILD_SA.
func (sa *ikeSA) handleAuth(inner []wire.Payload) []wire.Payload {
	c := sa.r.cfg.Load()
	st := &sa.r.stats
	fail := func(n wire.NotifyType) []wire.Payload {
		sa.dropAfter = true
		return []wire.Payload{wire.NewNotify(n, nil)}
	}
	var idi *wire.ID
	for _, p := range inner {
		if id, ok := p.(*wire.ID); ok && !id.Responder {
			idi = id
			break
		}
	}
	auth, hasAuth := wire.First[*wire.AUTH](inner)
	if idi == nil {
		st.inc(Malformed)
		return fail(wire.INVALID_SYNTAX)
	}
	sa.peerID, sa.peerIDStr = idi, idi.String()
	log := sa.logger()
	if !hasAuth {
		// EAP (no AUTH payload from the initiator) is not offered.
		st.inc(Unsupported)
		sa.r.once.log(log, slog.LevelWarn, "eap "+sa.peerIDStr, "IKE: peer wants EAP authentication, which tunterm does not offer")
		return fail(wire.AUTHENTICATION_FAILED)
	}
	prf := sa.suite.PRF
	octetsI, err := ikecrypto.SignedOctets(prf, sa.initReq, sa.nr, sa.keys.SKpi, idi.Body())
	if err != nil {
		return fail(wire.AUTHENTICATION_FAILED)
	}
	var secret []byte
	switch auth.Method {
	case wire.AuthSharedKeyMIC:
		secret = c.PSKByID[sa.peerIDStr]
		if secret == nil {
			secret = c.PSKByID["*"]
		}
		if secret == nil {
			st.inc(AuthFailedPSK)
			sa.r.once.log(log, slog.LevelWarn, "nopsk "+sa.peerIDStr, "IKE: AUTHENTICATION_FAILED: no PSK for this identity (and no \"*\" entry)")
			return fail(wire.AUTHENTICATION_FAILED)
		}
		want, err := ikecrypto.PSKAuth(prf, secret, octetsI)
		if err != nil || !hmac.Equal(want, auth.Data) {
			st.inc(AuthFailedPSK)
			sa.r.once.log(log, slog.LevelWarn, "badpsk "+sa.peerIDStr+" "+sa.remote.Addr().String(),
				"IKE: AUTHENTICATION_FAILED: wrong pre-shared key")
			return fail(wire.AUTHENTICATION_FAILED)
		}
		sa.authInfo = "pre-shared key"
	case wire.AuthDigitalSignature, wire.AuthRSASignature, wire.AuthECDSA256, wire.AuthECDSA384, wire.AuthECDSA521:
		if err := sa.verifyPeerCert(c, idi, auth, inner, octetsI); err != nil {
			return fail(wire.AUTHENTICATION_FAILED)
		}
	default:
		st.inc(Unsupported)
		sa.r.once.log(log, slog.LevelWarn, "authmethod "+sa.peerIDStr, "IKE: AUTHENTICATION_FAILED: unsupported auth method", "method", auth.Method)
		return fail(wire.AUTHENTICATION_FAILED)
	}

	// Our side.
	idr := sa.localIdentity(c)
	sa.localIDStr = idr.String()
	octetsR, err := ikecrypto.SignedOctets(prf, sa.initResp, sa.ni, sa.keys.SKpr, idr.Body())
	if err != nil {
		return fail(wire.AUTHENTICATION_FAILED)
	}
	resp := []wire.Payload{idr}
	if secret != nil {
		d, err := ikecrypto.PSKAuth(prf, secret, octetsR)
		if err != nil {
			return fail(wire.AUTHENTICATION_FAILED)
		}
		resp = append(resp, &wire.AUTH{Method: wire.AuthSharedKeyMIC, Data: d})
	} else {
		if c.Signer == nil {
			st.inc(AuthFailedCert)
			sa.r.once.log(log, slog.LevelError, "nocert", "IKE: a peer authenticated with a certificate but ike.cert/ike.key are not configured; refusing")
			return fail(wire.AUTHENTICATION_FAILED)
		}
		for _, cc := range c.Certs {
			resp = append(resp, &wire.CERT{Encoding: wire.CertX509Signature, Data: cc.Raw})
		}
		a, err := sa.signAuth(c, octetsR)
		if err != nil {
			log.Error("IKE: signing our AUTH failed", "err", err)
			return fail(wire.AUTHENTICATION_FAILED)
		}
		resp = append(resp, a)
	}

	// Established.
	now := time.Now()
	sa.state = stEstablished
	sa.establishedAt, sa.lastActive = now, now
	sa.rekeyAt = now.Add(jitter(time.Duration(c.Lifetime.IKE)))
	sa.expireAt = now.Add(time.Duration(c.Lifetime.IKE) * 11 / 10)
	st.inc(IKESAs)
	others := sa.r.established(sa)
	if wire.FindNotify(inner, wire.INITIAL_CONTACT) != nil {
		for _, o := range others {
			o := o
			sa.after = append(sa.after, func() {
				o.mu.Lock()
				o.terminate("INITIAL_CONTACT: the peer restarted and replaced it", false)
				after := o.after
				o.after = nil
				o.mu.Unlock()
				for _, f := range after {
					f()
				}
			})
		}
	}
	log.Info("IKE SA established", "local_id", sa.localIDStr, "auth", sa.authInfo, "proposal", sa.chosen.String(),
		"nat", sa.natPeer || sa.natUs, "initial_contact", wire.FindNotify(inner, wire.INITIAL_CONTACT) != nil)

	// The first CHILD_SA (§1.2: its failure leaves the IKE SA up).
	if _, hasSA := wire.First[*wire.SA](inner); hasSA {
		r, n := sa.negotiateChild(inner, sa.ni, sa.nr, proposal.NoDH, nil, nil)
		if n != nil {
			resp = append(resp, n)
		} else {
			resp = append(resp, r.payloads(nil)...)
		}
	}
	return resp
}

// localIdentity is our IDr: local_id, else our certificate's subject, else
// the address the peer reached.
func (sa *ikeSA) localIdentity(c *config.IKE) *wire.ID {
	if c.LocalIDWire != nil {
		return c.LocalIDWire
	}
	if len(c.Certs) > 0 {
		return &wire.ID{Responder: true, IDType: wire.ID_DER_ASN1_DN, Data: c.Certs[0].RawSubject}
	}
	a := sa.sock.local.Addr()
	if a.Is4() {
		return &wire.ID{Responder: true, IDType: wire.ID_IPV4_ADDR, Data: a.AsSlice()}
	}
	return &wire.ID{Responder: true, IDType: wire.ID_IPV6_ADDR, Data: a.AsSlice()}
}

// verifyPeerCert checks the peer's certificate chain against the
// configured CAs with the expiry policy, its identity against the
// certificate, and the AUTH signature. Each refusal is counted and logged
// once per peer.
func (sa *ikeSA) verifyPeerCert(c *config.IKE, idi *wire.ID, auth *wire.AUTH, inner []wire.Payload, octets []byte) error {
	st := &sa.r.stats
	log := sa.logger()
	refuse := func(cnt Counter, key, msg string, args ...any) error {
		st.inc(cnt)
		sa.r.once.log(log, slog.LevelWarn, key+" "+sa.peerIDStr, "IKE: AUTHENTICATION_FAILED: "+msg, args...)
		return errors.New(msg)
	}
	var certs []*x509.Certificate
	for _, p := range inner {
		if ce, ok := p.(*wire.CERT); ok {
			if ce.Encoding != wire.CertX509Signature {
				continue
			}
			x, err := x509.ParseCertificate(ce.Data)
			if err != nil {
				return refuse(AuthFailedCert, "badcert", "unparsable certificate", "err", err)
			}
			certs = append(certs, x)
		}
	}
	if len(certs) == 0 {
		return refuse(AuthFailedCert, "nocert", "signature authentication without a CERT payload")
	}
	if len(c.CACerts) == 0 {
		return refuse(UnknownCA, "noca", "certificate authentication but no ike.ca is configured")
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, x := range certs[1:] {
		inter.AddCert(x)
	}
	opts := x509.VerifyOptions{Roots: c.CAPool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	_, err := leaf.Verify(opts)
	var inv x509.CertificateInvalidError
	switch {
	case err == nil:
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		// Which CA issued it? Verify at a moment inside its validity.
		at := opts
		at.CurrentTime = leaf.NotAfter.Add(-time.Second)
		if leaf.NotBefore.After(at.CurrentTime) {
			at.CurrentTime = leaf.NotBefore
		}
		chains, err2 := leaf.Verify(at)
		if err2 != nil {
			return refuse(UnknownCA, "unknownca", "certificate expired and not issued by a configured CA",
				"subject", leaf.Subject.String(), "err", err2)
		}
		ca := chains[0][len(chains[0])-1]
		if !c.ExpiredAccepted(ca) {
			return refuse(CertExpiredReject, "expired", "certificate expired (expired_certs: reject)",
				"subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "ca", ca.Subject.String())
		}
		st.inc(CertExpiredAccept)
		sa.certExpired = true
		sa.r.once.log(log, slog.LevelWarn, "expired-ok "+sa.peerIDStr, "IKE: accepting an EXPIRED certificate (expired_certs: accept)",
			"subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "ca", ca.Subject.String())
	default:
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return refuse(UnknownCA, "unknownca", "certificate not issued by a configured CA",
				"subject", leaf.Subject.String(), "issuer", leaf.Issuer.String())
		}
		return refuse(AuthFailedCert, "badchain", "certificate chain invalid", "subject", leaf.Subject.String(), "err", err)
	}
	if !idMatchesCert(idi, leaf) {
		return refuse(AuthFailedCert, "idmismatch", "identity not confirmed by the certificate",
			"subject", leaf.Subject.String())
	}
	scheme, err := ikecrypto.VerifyAuth(leaf.PublicKey, ikecrypto.AuthMethod(auth.Method), auth.Data, octets)
	if err != nil {
		return refuse(AuthFailedCert, "badsig", "signature does not verify", "err", err)
	}
	sa.peerCert = leaf
	how := auth.Method.String()
	if auth.Method == wire.AuthDigitalSignature {
		how = scheme.String()
	}
	sa.authInfo = fmt.Sprintf("certificate %q (%s)", leaf.Subject.String(), how)
	if sa.certExpired {
		sa.authInfo += " EXPIRED, accepted by policy"
	}
	return nil
}

// idMatchesCert: the identity must be the certificate's (RFC 7296 §3.5,
// as strongSwan checks it): the subject DN, a subjectAltName of the ID's
// type, or, for KEY_ID, the subject key identifier or a subject CN that
// contains it (the seed's APs send "@#<MAC>" with a CN naming the MAC).
func idMatchesCert(id *wire.ID, c *x509.Certificate) bool {
	switch id.IDType {
	case wire.ID_DER_ASN1_DN:
		return bytes.Equal(id.Data, c.RawSubject)
	case wire.ID_FQDN:
		s := string(id.Data)
		for _, d := range c.DNSNames {
			if strings.EqualFold(d, s) {
				return true
			}
		}
		return strings.EqualFold(c.Subject.CommonName, s)
	case wire.ID_RFC822_ADDR:
		for _, e := range c.EmailAddresses {
			if strings.EqualFold(e, string(id.Data)) {
				return true
			}
		}
	case wire.ID_IPV4_ADDR, wire.ID_IPV6_ADDR:
		a, ok := netip.AddrFromSlice(id.Data)
		if !ok {
			return false
		}
		for _, ip := range c.IPAddresses {
			if b, ok := netip.AddrFromSlice(ip); ok && b.Unmap() == a.Unmap() {
				return true
			}
		}
	case wire.ID_KEY_ID:
		if len(c.SubjectKeyId) > 0 && bytes.Equal(id.Data, c.SubjectKeyId) {
			return true
		}
		h := fmt.Sprintf("%x", id.Data)
		cn := strings.ToLower(strings.NewReplacer(":", "", "-", "", ".", "").Replace(c.Subject.CommonName))
		return len(h) >= 8 && strings.Contains(cn, h)
	}
	return false
}

// signAuth signs our AUTH: RFC 7427 when the peer announced hash
// algorithms we can use, else the classic method of the key.
func (sa *ikeSA) signAuth(c *config.IKE, octets []byte) (*wire.AUTH, error) {
	scheme := ikecrypto.SigScheme(0)
	switch k := c.Signer.Public().(type) {
	case *rsa.PublicKey:
		scheme = ikecrypto.SigRSAPKCS1SHA256
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			scheme = ikecrypto.SigECDSASHA256
		case elliptic.P384():
			scheme = ikecrypto.SigECDSASHA384
		case elliptic.P521():
			scheme = ikecrypto.SigECDSASHA512
		}
	}
	if scheme != 0 {
		for _, h := range sa.peerHashes {
			if uint16(h) == uint16(scheme.Hash()) {
				d, err := ikecrypto.SignAuth(c.Signer, scheme, octets, nil)
				if err != nil {
					return nil, err
				}
				return &wire.AUTH{Method: wire.AuthDigitalSignature, Data: d}, nil
			}
		}
	}
	m, d, err := ikecrypto.SignClassic(c.Signer, octets, nil)
	if err != nil {
		return nil, err
	}
	return &wire.AUTH{Method: wire.AuthMethod(m), Data: d}, nil
}

// jitter shortens a lifetime by up to 10%, so that SAs created together
// do not all rekey in the same second.
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}
