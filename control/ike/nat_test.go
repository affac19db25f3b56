package ike_test

import (
	"fmt"
	"testing"

	"github.com/tunterm/tunterm/control/ike/iketest"
	"github.com/tunterm/tunterm/dataplane/table"
)

func (g *rig) peerNamed(name string) *table.Peer {
	for _, p := range g.store.Load().Peers {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// TestAPsBehindOneNAT: APs behind one NAT share an address and differ only
// in their UDP port; each gets its own dataplane peer, which keeps its name
// (and so its worker and counters) across rekeys, and losing one does not
// disturb the other.
func TestAPsBehindOneNAT(t *testing.T) {
	g := newRig(t, withIKE(""))
	var aps []*iketest.Initiator
	for _, id := range []string{"ap-a@example", "ap-b@example", "ap-c@example"} {
		i := g.ap("127.0.0.9", func(c *iketest.Config) {
			c.ID, c.PSK, c.FakeNAT, c.Transport = id, []byte("wildcard-secret"), true, true
		})
		if err := i.Connect(); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		aps = append(aps, i)
	}
	names := map[string]bool{}
	for _, i := range aps {
		name := fmt.Sprintf("ike %s", i.LocalAddr())
		pe := g.peerNamed(name)
		if pe == nil {
			t.Fatalf("no dataplane peer %q; peers: %v", name, peerNames(g))
		}
		names[name] = true
		if pe.St.NATPort.Load() != uint32(i.LocalAddr().Port()) || !pe.Out.UDPEncap {
			t.Errorf("%s: NAT port %d, udp_encap %v", name, pe.St.NATPort.Load(), pe.Out.UDPEncap)
		}
		checkESP(t, g.store.Load(), pe, i.Children[0])
	}
	if len(names) != 3 {
		t.Fatalf("peers %v", peerNames(g))
	}

	// Rekeys keep each AP on its peer.
	a := aps[0]
	name := fmt.Sprintf("ike %s", a.LocalAddr())
	st := g.peerNamed(name).St
	if err := a.RekeyIKE(); err != nil {
		t.Fatal(err)
	}
	nc := rekeyChild(t, a)
	pe := g.peerNamed(name)
	if pe == nil || pe.St != st {
		t.Fatalf("after rekeys the AP's peer changed: %v", peerNames(g))
	}
	checkESP(t, g.store.Load(), pe, nc)

	// One AP leaves; the others keep their SAs.
	if err := aps[1].DeleteIKE(); err != nil {
		t.Fatal(err)
	}
	gone := fmt.Sprintf("ike %s", aps[1].LocalAddr())
	waitFor(t, "the departed AP's peer removed", func() bool { return g.peerNamed(gone) == nil })
	for _, c := range []struct {
		ch   *iketest.Child
		name string
	}{{nc, name}, {aps[2].Children[0], fmt.Sprintf("ike %s", aps[2].LocalAddr())}} {
		pe := g.peerNamed(c.name)
		if in := g.store.Load().InSA[c.ch.Out.SPI]; in == nil || pe == nil || in.Peer != pe || pe.Out.ESP.SPI() != c.ch.In.SPI {
			t.Fatalf("%s lost its SAs when another AP behind its NAT left", c.name)
		}
	}
}

// TestStaticPeerBehindNAT: a static peer matches by address; with two APs
// behind its address it keeps the first, the second becomes an IKE-only
// peer, and neither steals the other's SAs.
func TestStaticPeerBehindNAT(t *testing.T) {
	g := newRig(t, withIKE(""))
	first := g.ap("127.0.0.2", func(c *iketest.Config) { c.FakeNAT = true })
	if err := first.Connect(); err != nil {
		t.Fatal(err)
	}
	second := g.ap("127.0.0.2", func(c *iketest.Config) {
		c.ID, c.PSK, c.FakeNAT = "ap-b@example", []byte("wildcard-secret"), true
	})
	if err := second.Connect(); err != nil {
		t.Fatal(err)
	}
	ap1 := g.peerNamed("ap1")
	if ap1 == nil || ap1.St.NATPort.Load() != uint32(first.LocalAddr().Port()) {
		t.Fatalf("static peer ap1 = %+v", ap1)
	}
	checkESP(t, g.store.Load(), ap1, first.Children[0])
	other := g.peerNamed(fmt.Sprintf("ike %s", second.LocalAddr()))
	if other == nil {
		t.Fatalf("second AP has no peer: %v", peerNames(g))
	}
	checkESP(t, g.store.Load(), other, second.Children[0])
	// A later CHILD_SA of the second AP does not move ap1 over to it.
	nc := rekeyChild(t, second)
	tb := g.store.Load()
	if in := tb.InSA[first.Children[0].Out.SPI]; in == nil || in.Peer.Name != "ap1" || g.peerNamed("ap1").Out.ESP.SPI() != first.Children[0].In.SPI {
		t.Fatalf("ap1 lost its SAs to the second AP behind its address")
	}
	checkESP(t, tb, g.peerNamed(fmt.Sprintf("ike %s", second.LocalAddr())), nc)
}

// rekeyChild rekeys the AP's first CHILD_SA and deletes the old one, as
// strongSwan does, so that the new one is the only one in both directions.
func rekeyChild(t *testing.T, i *iketest.Initiator) *iketest.Child {
	t.Helper()
	old := i.Children[0]
	n, err := i.RekeyChild(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := i.DeleteChild(old); err != nil {
		t.Fatal(err)
	}
	return n
}

func peerNames(g *rig) []string {
	var s []string
	for _, p := range g.store.Load().Peers {
		s = append(s, p.Name)
	}
	return s
}
