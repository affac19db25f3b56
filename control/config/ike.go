package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tunterm/tunterm/control/ike/proposal"
	"github.com/tunterm/tunterm/control/ike/wire"
)

// IKE defaults. The proposals are the seed's APs' (docs/ike.md).
var (
	DefaultIKEProposals = []string{"aes256ctr-sha512-prfsha512-curve25519"}
	DefaultESPProposals = []string{"aes256ctr-sha512-esn"}
)

// IKE defaults.
const (
	DefaultIKELifetime     = 24 * time.Hour
	DefaultChildLifetime   = 8 * time.Hour
	DefaultDPD             = 30 * time.Second
	DefaultDPDTimeout      = 30 * time.Second
	DefaultCookieThreshold = 500
	DefaultHalfOpenTimeout = 30 * time.Second
	DefaultFragmentSize    = 1280
	DefaultDeleteGrace     = 5 * time.Second
)

// IKE configures the IKEv2 responder (docs/ike.md). nil when the file has
// no ike block.
type IKE struct {
	// Listen lists the addresses to answer on (UDP 500 and 4500); default
	// the downstream address.
	Listen StringList `yaml:"listen"`
	// LocalID is our identity (IDr), strongSwan notation: an address,
	// "@fqdn", "user@domain", "@#hex" or a plain FQDN. Default: the subject
	// of cert, or else the listen address the peer reached.
	LocalID string `yaml:"local_id"`
	// Cert and Key: our certificate (PEM, chain allowed) and private key
	// (PEM: PKCS#8, PKCS#1 or SEC 1; RSA or ECDSA), for peers that
	// authenticate with certificates.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA: the CAs that sign AP certificates; each a file name or
	// {file: ..., expired_certs: accept|reject}.
	CA []IKECA `yaml:"ca"`
	// ExpiredCerts is the default policy for expired AP certificates:
	// reject (default) or accept (logged once per peer and counted).
	ExpiredCerts string `yaml:"expired_certs"`
	// PSK lists pre-shared keys by peer identity; id "*" matches any.
	PSK []IKEPSK `yaml:"psk"`
	// Proposals and ESPProposals in strongSwan syntax, preferred first.
	Proposals    []string `yaml:"proposals"`
	ESPProposals []string `yaml:"esp_proposals"`
	Lifetime     IKELife  `yaml:"lifetime"`
	// DPD: probe a peer silent (no IKE, no ESP) for this long; 0 = off.
	DPD *Duration `yaml:"dpd"`
	// DPDTimeout: a peer that answers nothing for this long after the
	// first probe (or any request of ours) is dead.
	DPDTimeout Duration `yaml:"dpd_timeout"`
	// CookieThreshold: with this many half-open IKE SAs, IKE_SA_INIT
	// requests without a valid cookie are answered with a COOKIE (RFC 7296
	// §2.6). 0 = the default; -1 = always require cookies.
	CookieThreshold int `yaml:"cookie_threshold"`
	// HalfOpenTimeout: an IKE SA not authenticated within this time is
	// dropped.
	HalfOpenTimeout Duration `yaml:"half_open_timeout"`
	// FragmentSize: IKE messages longer than this are sent as RFC 7383
	// fragments to peers that support them.
	FragmentSize int `yaml:"fragment_size"`
	// DeleteGrace: a deleted or rekeyed CHILD_SA's inbound SA still
	// decrypts for this long (packets in flight), then it is removed.
	DeleteGrace Duration `yaml:"delete_grace"`

	ListenAddrs  []netip.Addr        `yaml:"-"`
	IKEProps     []proposal.Proposal `yaml:"-"`
	ESPProps     []proposal.Proposal `yaml:"-"`
	LocalIDWire  *wire.ID            `yaml:"-"` // nil: derived per SA
	Certs        []*x509.Certificate `yaml:"-"` // ours, leaf first
	Signer       crypto.Signer       `yaml:"-"`
	DPDInterval  time.Duration       `yaml:"-"`
	PSKByID      map[string][]byte   `yaml:"-"` // "*" for the wildcard
	ExpiredByCA  map[string]bool     `yaml:"-"` // CA subject key → accept expired
	CAPool       *x509.CertPool      `yaml:"-"`
	CACerts      []*x509.Certificate `yaml:"-"`
	CAPolicyText map[string]string   `yaml:"-"` // CA subject → "accept"/"reject"
}

// IKECA is one trusted CA file with an optional expiry policy.
type IKECA struct {
	File         string `yaml:"file"`
	ExpiredCerts string `yaml:"expired_certs"`
}

// UnmarshalYAML accepts a bare file name or a mapping.
func (c *IKECA) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		c.File = n.Value
		return nil
	}
	type plain IKECA
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*c = IKECA(p)
	return nil
}

// IKEPSK is one pre-shared key.
type IKEPSK struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
}

// IKELife holds the SA lifetimes: the time after which an SA is rekeyed
// (hard expiry 10% later), and the CHILD_SA byte and packet counts after
// which it is rekeyed (hard limit 10% later; 0 = none), counted by the
// dataplane.
type IKELife struct {
	IKE          Duration `yaml:"ike"`
	Child        Duration `yaml:"child"`
	ChildBytes   uint64   `yaml:"child_bytes"`
	ChildPackets uint64   `yaml:"child_packets"`
}

// ExpiredAccepted reports whether an expired certificate issued by ca may
// be accepted.
func (k *IKE) ExpiredAccepted(ca *x509.Certificate) bool {
	if v, ok := k.ExpiredByCA[string(ca.RawSubjectPublicKeyInfo)]; ok {
		return v
	}
	return k.ExpiredCerts == "accept"
}

func policyOK(s string) bool { return s == "" || s == "accept" || s == "reject" }

// validateIKE checks the ike block; it runs after downstream is parsed.
func (c *Config) validateIKE() error {
	k := c.IKE
	if k == nil {
		return nil
	}
	var err error
	if len(k.Listen) == 0 {
		k.ListenAddrs = []netip.Addr{c.Downstream.Prefix.Addr()}
	}
	for i, s := range k.Listen {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("ike.listen[%d]: %q is not an IP address", i, s)
		}
		k.ListenAddrs = append(k.ListenAddrs, a)
	}
	if k.LocalID != "" {
		if k.LocalIDWire, err = wire.NewID(k.LocalID, true); err != nil {
			return fmt.Errorf("ike.local_id: %q: %v", k.LocalID, err)
		}
	}
	if len(k.Proposals) == 0 {
		k.Proposals = DefaultIKEProposals
	}
	if len(k.ESPProposals) == 0 {
		k.ESPProposals = DefaultESPProposals
	}
	for i, s := range k.Proposals {
		p, err := proposal.Parse(s, proposal.IKE)
		if err != nil {
			return fmt.Errorf("ike.proposals[%d]: %w", i, err)
		}
		k.IKEProps = append(k.IKEProps, p)
	}
	for i, s := range k.ESPProposals {
		p, err := proposal.Parse(s, proposal.ESP)
		if err != nil {
			return fmt.Errorf("ike.esp_proposals[%d]: %w", i, err)
		}
		k.ESPProps = append(k.ESPProps, p)
	}
	if k.Lifetime.IKE == 0 {
		k.Lifetime.IKE = Duration(DefaultIKELifetime)
	}
	if k.Lifetime.Child == 0 {
		k.Lifetime.Child = Duration(DefaultChildLifetime)
	}
	if time.Duration(k.Lifetime.IKE) < 10*time.Second {
		return fmt.Errorf("ike.lifetime.ike: %v is shorter than 10s", time.Duration(k.Lifetime.IKE))
	}
	if time.Duration(k.Lifetime.Child) < 5*time.Second {
		return fmt.Errorf("ike.lifetime.child: %v is shorter than 5s", time.Duration(k.Lifetime.Child))
	}
	if k.Lifetime.ChildBytes != 0 && k.Lifetime.ChildBytes < 1<<20 {
		return fmt.Errorf("ike.lifetime.child_bytes: %d is less than 1 MiB (0 = no limit)", k.Lifetime.ChildBytes)
	}
	if k.Lifetime.ChildPackets != 0 && k.Lifetime.ChildPackets < 1000 {
		return fmt.Errorf("ike.lifetime.child_packets: %d is less than 1000 (0 = no limit)", k.Lifetime.ChildPackets)
	}
	k.DPDInterval = DefaultDPD
	if k.DPD != nil {
		k.DPDInterval = time.Duration(*k.DPD)
		if k.DPDInterval != 0 && k.DPDInterval < time.Second {
			return fmt.Errorf("ike.dpd: %v is shorter than 1s (0 = off)", k.DPDInterval)
		}
	}
	if k.DPDTimeout == 0 {
		k.DPDTimeout = Duration(DefaultDPDTimeout)
	}
	if time.Duration(k.DPDTimeout) < time.Second {
		return fmt.Errorf("ike.dpd_timeout: %v is shorter than 1s", time.Duration(k.DPDTimeout))
	}
	if k.CookieThreshold == 0 {
		k.CookieThreshold = DefaultCookieThreshold
	}
	if k.CookieThreshold < -1 {
		return fmt.Errorf("ike.cookie_threshold: %d (a count of half-open SAs, 0 = default %d, -1 = always)", k.CookieThreshold, DefaultCookieThreshold)
	}
	if k.HalfOpenTimeout == 0 {
		k.HalfOpenTimeout = Duration(DefaultHalfOpenTimeout)
	}
	if time.Duration(k.HalfOpenTimeout) < time.Second {
		return fmt.Errorf("ike.half_open_timeout: %v is shorter than 1s", time.Duration(k.HalfOpenTimeout))
	}
	if k.FragmentSize == 0 {
		k.FragmentSize = DefaultFragmentSize
	}
	if k.FragmentSize < 576 || k.FragmentSize > 65000 {
		return fmt.Errorf("ike.fragment_size: %d is outside 576..65000", k.FragmentSize)
	}
	if k.DeleteGrace == 0 {
		k.DeleteGrace = Duration(DefaultDeleteGrace)
	}
	if !policyOK(k.ExpiredCerts) {
		return fmt.Errorf("ike.expired_certs: %q is not reject or accept", k.ExpiredCerts)
	}
	if k.ExpiredCerts == "" {
		k.ExpiredCerts = "reject"
	}

	k.PSKByID = map[string][]byte{}
	for i, p := range k.PSK {
		where := fmt.Sprintf("ike.psk[%d]", i)
		if p.ID == "" {
			return fmt.Errorf("%s.id: required (a peer identity like \"@#0011223344ff\" or \"ap1@example\", or \"*\")", where)
		}
		key := p.ID
		if key != "*" {
			id, err := wire.NewID(p.ID, false)
			if err != nil {
				return fmt.Errorf("%s.id: %q: %v", where, p.ID, err)
			}
			key = id.String() // the form the responder compares with
		}
		if _, dup := k.PSKByID[key]; dup {
			return fmt.Errorf("%s.id: %q is listed twice", where, p.ID)
		}
		sec, err := pskBytes(p.Secret)
		if err != nil {
			return fmt.Errorf("%s.secret: %v", where, err)
		}
		k.PSKByID[key] = sec
	}

	if (k.Cert == "") != (k.Key == "") {
		return fmt.Errorf("ike.cert and ike.key: give both or neither")
	}
	if k.Cert != "" {
		if k.Certs, err = ReadCertificates(k.Cert); err != nil {
			return fmt.Errorf("ike.cert: %w", err)
		}
		if k.Signer, err = readKey(k.Key); err != nil {
			return fmt.Errorf("ike.key: %w", err)
		}
		if !samePublic(k.Certs[0].PublicKey, k.Signer.Public()) {
			return fmt.Errorf("ike.key: %s does not match the certificate in %s", k.Key, k.Cert)
		}
	}
	k.CAPool = x509.NewCertPool()
	k.ExpiredByCA = map[string]bool{}
	k.CAPolicyText = map[string]string{}
	for i, ca := range k.CA {
		where := fmt.Sprintf("ike.ca[%d]", i)
		if ca.File == "" {
			return fmt.Errorf("%s.file: required", where)
		}
		if !policyOK(ca.ExpiredCerts) {
			return fmt.Errorf("%s.expired_certs: %q is not reject or accept", where, ca.ExpiredCerts)
		}
		certs, err := ReadCertificates(ca.File)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for _, cc := range certs {
			k.CAPool.AddCert(cc)
			k.CACerts = append(k.CACerts, cc)
			pol := k.ExpiredCerts
			if ca.ExpiredCerts != "" {
				pol = ca.ExpiredCerts
				k.ExpiredByCA[string(cc.RawSubjectPublicKeyInfo)] = ca.ExpiredCerts == "accept"
			}
			k.CAPolicyText[cc.Subject.String()] = pol
		}
	}
	if len(k.PSK) == 0 && len(k.CA) == 0 {
		return fmt.Errorf("ike: neither psk nor ca is configured: no AP could authenticate")
	}
	return nil
}

// pskBytes reads a secret: plain text, or 0x-prefixed hex (strongSwan's
// notation).
func pskBytes(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("required")
	}
	if strings.HasPrefix(s, "0x") {
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, fmt.Errorf("0x... is not hex")
		}
		return b, nil
	}
	return []byte(s), nil
}

// ReadCertificates reads the certificates of a PEM file (or one DER
// certificate) at path: CA bundles for IKE and RadSec.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		if c, err := x509.ParseCertificate(b); err == nil { // DER
			return []*x509.Certificate{c}, nil
		}
		return nil, fmt.Errorf("%s: no PEM certificate in the file", path)
	}
	return out, nil
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM private key in the file", path)
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			switch k := k.(type) {
			case *rsa.PrivateKey:
				return k, nil
			case *ecdsa.PrivateKey:
				return k, nil
			}
			return nil, fmt.Errorf("%s: %T keys are not supported (RSA or ECDSA)", path, k)
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return k, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return k, nil
		}
	}
}

func samePublic(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	if x, ok := a.(eq); ok {
		return x.Equal(b)
	}
	return false
}
