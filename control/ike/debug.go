package ike

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Listing is the /debug/ipsec page: every IKE SA with its CHILD_SAs, in the
// layout of strongSwan's `swanctl --list-sas` (WriteText), or as JSON
// (encoding/json of the value), plus the counters and the certificate
// policy.
type Listing struct {
	IKESAs   []IKESAInfo       `json:"ike_sas"`
	HalfOpen int               `json:"half_open"`
	Counters map[string]uint64 `json:"counters"`
	// CAPolicy is the expired-certificate policy by CA subject.
	CAPolicy map[string]string `json:"ca_expired_policy,omitempty"`
	now      time.Time
}

// IKESAInfo describes one IKE SA.
type IKESAInfo struct {
	SPIi        string      `json:"spi_i"`
	SPIr        string      `json:"spi_r"`
	WeInitiated bool        `json:"we_are_original_initiator"`
	State       string      `json:"state"`
	Local       string      `json:"local"`
	Remote      string      `json:"remote"`
	LocalID     string      `json:"local_id"`
	RemoteID    string      `json:"remote_id"`
	NAT         bool        `json:"nat"`
	Proposal    string      `json:"proposal"`
	Auth        string      `json:"auth"`
	CertExpired bool        `json:"cert_expired_accepted,omitempty"`
	CertSubject string      `json:"cert_subject,omitempty"`
	CertExpires time.Time   `json:"cert_not_after,omitempty"`
	Created     time.Time   `json:"created"`
	Established time.Time   `json:"established"`
	RekeyAt     time.Time   `json:"rekey_at"`
	LastRecv    time.Time   `json:"last_received"`
	Children    []ChildInfo `json:"child_sas"`
}

// ChildInfo describes one CHILD_SA pair.
type ChildInfo struct {
	SPIIn  string `json:"spi_in"`
	SPIOut string `json:"spi_out"`
	State  string `json:"state"`
	// DeleteUnanswered: we sent an INFORMATIONAL deleting this CHILD_SA and the
	// peer has not answered it yet.
	DeleteUnanswered bool      `json:"delete_unanswered,omitempty"`
	Mode             string    `json:"mode"`
	UDPEncap         bool      `json:"udp_encap"`
	ESN              bool      `json:"esn"`
	Proposal         string    `json:"proposal"`
	LocalTS          string    `json:"local_ts"`
	RemoteTS         string    `json:"remote_ts"`
	Installed        time.Time `json:"installed"`
	RekeyAt          time.Time `json:"rekey_at"`
	BytesIn          uint64    `json:"bytes_in"`
	PacketsIn        uint64    `json:"packets_in"`
	BytesOut         uint64    `json:"bytes_out"`
	PacketsOut       uint64    `json:"packets_out"`
	// Drops on the inbound SA by reason.
	ReplayErrors    uint64 `json:"replay_errors"`
	IntegrityErrors uint64 `json:"integrity_errors"`
}

// Listing snapshots the SAs and counters.
func (r *Responder) Listing() *Listing {
	l := &Listing{Counters: r.stats.Map(), HalfOpen: r.HalfOpen(), now: time.Now()}
	c := r.cfg.Load()
	if len(c.CAPolicyText) > 0 {
		l.CAPolicy = c.CAPolicyText
	}
	for _, sa := range r.allSAs() {
		sa.mu.Lock()
		if sa.state != stDead {
			l.IKESAs = append(l.IKESAs, sa.info())
		}
		sa.mu.Unlock()
	}
	sort.Slice(l.IKESAs, func(i, j int) bool {
		a, b := l.IKESAs[i], l.IKESAs[j]
		if a.RemoteID != b.RemoteID {
			return a.RemoteID < b.RemoteID
		}
		return a.Created.Before(b.Created)
	})
	return l
}

func (sa *ikeSA) info() IKESAInfo {
	in := IKESAInfo{SPIi: spiHex(sa.spiI), SPIr: spiHex(sa.spiR), WeInitiated: sa.weInit, State: sa.state.String(),
		Remote: sa.remote.String(), LocalID: sa.localIDStr, RemoteID: sa.peerIDStr, NAT: sa.natPeer || sa.natUs,
		Proposal: sa.chosen.String(), Auth: sa.authInfo, CertExpired: sa.certExpired, Created: sa.created,
		Established: sa.establishedAt, RekeyAt: sa.rekeyAt, LastRecv: sa.lastRecv}
	if sa.sock != nil {
		in.Local = sa.sock.local.String()
	}
	if sa.peerCert != nil {
		in.CertSubject, in.CertExpires = sa.peerCert.Subject.String(), sa.peerCert.NotAfter
	}
	for _, ch := range sa.children {
		ci := ChildInfo{SPIIn: spi32(ch.inSPI), SPIOut: spi32(ch.outSPI), State: ch.state.String(), DeleteUnanswered: ch.deleting, Mode: ch.mode.String(),
			UDPEncap: ch.udp, ESN: ch.in != nil && ch.in.ESN(), Proposal: ch.chosen.String(), LocalTS: ch.local.String(),
			RemoteTS: ch.remote.String(), Installed: ch.created, RekeyAt: ch.rekeyAt}
		if ch.in != nil {
			s := ch.in.St
			ci.BytesIn, ci.PacketsIn = s.Bytes.Load(), s.Packets.Load()
			ci.ReplayErrors, ci.IntegrityErrors = s.ReplayErrors.Load(), s.IntegrityErrors.Load()
		}
		if ch.out != nil {
			ci.BytesOut, ci.PacketsOut = ch.out.St.Bytes.Load(), ch.out.St.Packets.Load()
		}
		in.Children = append(in.Children, ci)
	}
	return in
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func in(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Sub(now).Round(time.Second).String()
}

// WriteText renders the listing like `swanctl --list-sas`.
func (l *Listing) WriteText(w io.Writer) {
	now := l.now
	if now.IsZero() {
		now = time.Now()
	}
	if len(l.IKESAs) == 0 {
		fmt.Fprintf(w, "no IKE SAs\n")
	}
	for _, s := range l.IKESAs {
		star := func(ours bool) string {
			if ours {
				return "*"
			}
			return ""
		}
		fmt.Fprintf(w, "%s: %s, IKEv2, %s_i%s %s_r%s\n", s.RemoteID, s.State, s.SPIi, star(s.WeInitiated), s.SPIr, star(!s.WeInitiated))
		fmt.Fprintf(w, "  local  '%s' @ %s\n", s.LocalID, s.Local)
		nat := ""
		if s.NAT {
			nat = " [NAT]"
		}
		fmt.Fprintf(w, "  remote '%s' @ %s%s\n", s.RemoteID, s.Remote, nat)
		fmt.Fprintf(w, "  %s\n", strings.TrimPrefix(s.Proposal, "IKE:"))
		fmt.Fprintf(w, "  established %s, rekeying in %s, last message %s\n", ago(now, s.Established), in(now, s.RekeyAt), ago(now, s.LastRecv))
		if s.Auth != "" {
			fmt.Fprintf(w, "  auth %s\n", s.Auth)
		}
		if s.CertSubject != "" {
			exp := ""
			if s.CertExpired {
				exp = " EXPIRED (accepted by policy)"
			}
			fmt.Fprintf(w, "  certificate %q valid until %s%s\n", s.CertSubject, s.CertExpires.UTC().Format(time.RFC3339), exp)
		}
		for _, c := range s.Children {
			flags := []string{c.State, strings.ToUpper(c.Mode)}
			if c.DeleteUnanswered {
				flags = append(flags, "DELETE_UNANSWERED")
			}
			if c.UDPEncap {
				flags = append(flags, "UDP_ENCAP")
			}
			if c.ESN {
				flags = append(flags, "ESN")
			}
			fmt.Fprintf(w, "  child: %s\n", strings.Join(flags, ", "))
			fmt.Fprintf(w, "    %s\n", strings.TrimPrefix(c.Proposal, "ESP:"))
			fmt.Fprintf(w, "    installed %s, rekeying in %s\n", ago(now, c.Installed), in(now, c.RekeyAt))
			fmt.Fprintf(w, "    in  %s, %9d bytes, %7d packets, replay errors %d, integrity errors %d\n",
				c.SPIIn, c.BytesIn, c.PacketsIn, c.ReplayErrors, c.IntegrityErrors)
			fmt.Fprintf(w, "    out %s, %9d bytes, %7d packets\n", c.SPIOut, c.BytesOut, c.PacketsOut)
			fmt.Fprintf(w, "    local  %s\n    remote %s\n", c.LocalTS, c.RemoteTS)
		}
	}
	fmt.Fprintf(w, "\nhalf-open IKE SAs: %d\n", l.HalfOpen)
	if len(l.CAPolicy) > 0 {
		fmt.Fprintf(w, "expired certificates by CA:\n")
		var ks []string
		for k := range l.CAPolicy {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			fmt.Fprintf(w, "  %-8s %s\n", l.CAPolicy[k], k)
		}
	}
	fmt.Fprintf(w, "counters:\n")
	var ks []string
	for k, v := range l.Counters {
		if v != 0 {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(w, "  %-24s %d\n", k, l.Counters[k])
	}
}
