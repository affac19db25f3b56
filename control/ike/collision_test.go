package ike_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tunterm/tunterm/control/ike"
	"github.com/tunterm/tunterm/control/ike/iketest"
	"github.com/tunterm/tunterm/control/ike/wire"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/stats"
)

// Rekey collisions (RFC 7296 §2.8.1, §2.8.2, §2.25): the Go initiator holds
// the responder's CREATE_CHILD_SA request, starts its own rekey of the same
// SA and answers the responder's, so that both ends rekey at once. Its
// nonces (iketest.Config.Nonce) put the lowest of the four nonces into the
// exchange the test wants: that exchange's new SA is redundant and deleted
// by its initiator; the other initiator deletes the old SA.

// collisionNonces makes the AP's rekey nonces: with apLowest the nonce of
// the exchange the AP starts begins 00000000 01 and the one it answers with
// ff..., else the reverse. The responder's nonces are random (below the low
// one with probability 2^-39).
func collisionNonces(apLowest bool) func(initiator bool) []byte {
	return func(initiator bool) []byte {
		b := make([]byte, 32)
		rand.Read(b)
		if initiator == apLowest {
			copy(b, []byte{0, 0, 0, 0, 1})
		} else {
			copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xfe})
		}
		return b
	}
}

// traffic sends frames both ways through a pipeline worker on the rig's
// tables while a test runs, the AP sealing with the CHILD_SA it sends with
// and opening with any of its CHILD_SAs, and counts what is lost.
type traffic struct {
	stop, done           chan struct{}
	sent, lostUp, lostDn int
	reasons              map[stats.Reason]int
	err                  string
}

// sendingChild is the CHILD_SA the AP sends with: the newest active one it
// has not deleted and the responder has not deleted.
func sendingChild(i *iketest.Initiator) *iketest.Child {
	var cur *iketest.Child
	for _, c := range i.ChildList() {
		if c.Active.Load() && !c.Deleted.Load() && !c.Closed.Load() {
			cur = c
		}
	}
	return cur
}

func startTraffic(t *testing.T, g *rig, i *iketest.Initiator) *traffic {
	d := newDP(t, g)
	ap := &apESP{t: t, out: map[*iketest.Child]*esp.SA{}, in: map[*iketest.Child]*esp.SA{}}
	tr := &traffic{stop: make(chan struct{}), done: make(chan struct{}), reasons: map[stats.Reason]int{}}
	go func() {
		defer close(tr.done)
		for n := 0; ; n++ {
			select {
			case <-tr.stop:
				return
			default:
			}
			cur := sendingChild(i)
			if cur == nil {
				tr.err = fmt.Sprintf("frame %d: the AP has no CHILD_SA to send with", n)
				return
			}
			tr.sent++
			up, _, drops := d.send(stats.FromDown, ap.frame(cur, hostFrameFrom(t, n)))
			if len(up) != 1 {
				tr.lostUp++
				for _, r := range drops {
					tr.reasons[r]++
				}
			}
			_, down, drops := d.send(stats.FromUp, hostFrame(t, n))
			if len(down) != 1 || !ap.open(i.ChildList(), down[0]) {
				tr.lostDn++
				for _, r := range drops {
					tr.reasons[r]++
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return tr
}

// check stops the traffic: no frame may have been lost.
func (tr *traffic) check(t *testing.T) {
	t.Helper()
	close(tr.stop)
	<-tr.done
	if tr.err != "" {
		t.Error(tr.err)
	}
	if tr.lostUp+tr.lostDn != 0 || tr.sent < 100 {
		t.Errorf("traffic across the collision: %d frames each way, lost %d AP->corp and %d corp->AP (drops %v)",
			tr.sent, tr.lostUp, tr.lostDn, tr.reasons)
	}
	t.Logf("%d frames each way across the collision, none lost", tr.sent)
}

// heldRequest waits for the responder's next held request, of type x.
func heldRequest(t *testing.T, i *iketest.Initiator, x wire.ExchangeType, d time.Duration) *iketest.Request {
	t.Helper()
	r, err := i.Held(d)
	if err != nil {
		t.Fatalf("no %v request from the responder: %v", x, err)
	}
	if r.Header.Exchange != x {
		t.Fatalf("held %v, want %v", r.Header.Exchange, x)
	}
	return r
}

// rekeysChild reports whether a held request rekeys the CHILD_SA whose
// inbound SPI (at the responder) is spi.
func rekeysChild(r *iketest.Request, spi uint32) bool {
	n := wire.FindNotify(r.Payloads, wire.REKEY_SA)
	if n == nil {
		return false
	}
	s, ok := n.ESPSPI()
	return ok && s == spi
}

// deletes lists the ESP SPIs a held INFORMATIONAL request deletes.
func deletes(r *iketest.Request) []uint32 {
	var out []uint32
	for _, p := range r.Payloads {
		if d, ok := p.(*wire.Delete); ok {
			for _, s := range d.SPIs {
				if len(s) == 4 {
					out = append(out, uint32(s[0])<<24|uint32(s[1])<<16|uint32(s[2])<<8|uint32(s[3]))
				}
			}
		}
	}
	return out
}

// logCount counts the responder's log lines with all of the parts.
func (g *rig) logCount(parts ...string) int {
	n := 0
	for _, l := range strings.Split(g.log.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

// wantLog checks that the responder logged exactly want lines with all of
// the parts. A line is written after the packet it describes may already
// have reached the AP (terminate sends the Delete, then logs), so a wanted
// line is waited for before it is counted.
func (g *rig) wantLog(t *testing.T, want int, what string, parts ...string) {
	t.Helper()
	if want > 0 {
		for end := time.Now().Add(5 * time.Second); g.logCount(parts...) < want && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if n := g.logCount(parts...); n != want {
		t.Errorf("%s: logged %d times, want %d", what, n, want)
	}
}

// wantOneChild: after the collision and the grace window, the responder
// has exactly the survivor: one CHILD_SA in its IKE SA and one inbound SA
// in the tables, the survivor's.
func wantOneChild(t *testing.T, g *rig, s *iketest.Child) {
	t.Helper()
	waitFor(t, "only the surviving inbound SA in the tables", func() bool {
		tb := g.store.Load()
		return len(tb.InSA) == 1 && tb.InSA[s.Out.SPI] != nil
	})
	waitFor(t, "only the surviving CHILD_SA in the IKE SA", func() bool {
		l := g.r.Listing()
		return len(l.IKESAs) == 1 && len(l.IKESAs[0].Children) == 1
	})
	c := g.r.Listing().IKESAs[0].Children[0]
	if c.SPIIn != fmt.Sprintf("%08x", s.Out.SPI) || c.SPIOut != fmt.Sprintf("%08x", s.In.SPI) || c.State != "INSTALLED" {
		t.Errorf("responder's CHILD_SA in %s out %s %s, want in %08x out %08x INSTALLED", c.SPIIn, c.SPIOut, c.State, s.Out.SPI, s.In.SPI)
	}
}

// wantOut: the responder sends with s (the traffic, which has used it both
// ways, stands for checkESP: the SAs' sequence numbers are past 1).
func wantOut(t *testing.T, g *rig, s *iketest.Child) {
	t.Helper()
	if pe := g.peer("127.0.0.2"); pe == nil || pe.Out == nil || pe.Out.ESP.SPI() != s.In.SPI {
		t.Errorf("the responder does not send with the surviving CHILD_SA (SPI %08x)", s.In.SPI)
	}
}

// TestChildRekeyCollision: both ends rekey the CHILD_SA before either has
// answered (RFC 7296 §2.8.1). With the lowest nonce in the AP's exchange,
// the AP deletes the SA it created and the responder, whose SA survives,
// deletes the old one; with the lowest in the responder's exchange, the
// reverse. Meanwhile an IKE SA rekey gets TEMPORARY_FAILURE (§2.25.2), and
// frames flow both ways without a loss.
func TestChildRekeyCollision(t *testing.T) {
	for _, tc := range []struct {
		name     string
		apLowest bool
	}{
		{"lowest nonce in the AP's exchange", true},
		{"lowest nonce in the responder's exchange", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const esps = "aes256gcm16-esn"
			g := newRigBase(t, dpYAML, withIKE("  esp_proposals: ["+esps+"]\n  delete_grace: 3s\n"))
			i := g.ap("127.0.0.2", func(c *iketest.Config) {
				c.ESP, c.Transport, c.Nonce = esps, true, collisionNonces(tc.apLowest)
			})
			if err := i.Connect(); err != nil {
				t.Fatalf("Connect() = %v", err)
			}
			old := i.Children[0]
			tr := startTraffic(t, g, i)

			// The responder rekeys (the soft limit flag the dataplane sets at
			// lifetime.child_bytes); the AP holds that request.
			i.Hold(wire.CREATE_CHILD_SA)
			g.store.Load().InSA[old.Out.SPI].ESP.St.RekeyNeeded.Store(true)
			theirs := heldRequest(t, i, wire.CREATE_CHILD_SA, 5*time.Second)
			if !rekeysChild(theirs, old.Out.SPI) {
				t.Fatalf("the responder's request %v does not rekey CHILD_SA %08x", theirs.Payloads, old.Out.SPI)
			}
			if err := i.RekeyIKE(); !errors.Is(err, &iketest.NotifyError{Type: wire.TEMPORARY_FAILURE}) {
				t.Errorf("IKE SA rekey while the responder rekeys a CHILD_SA: %v, want TEMPORARY_FAILURE", err)
			}

			// The AP rekeys the same CHILD_SA; the responder answers as usual
			// and notes the collision; then the AP answers its request.
			p, err := i.PrepareRekeyChild(old)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Send(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the responder notes the collision", func() bool { return g.r.Stats().Get(ike.ChildCollisions) == 1 })
			i.Answer(theirs)
			waitFor(t, "the responder resolves the collision", func() bool { return g.r.Stats().Get(ike.ChildRekeys) == 1 })
			i.Hold()
			if _, err := p.Finish(); err != nil {
				t.Fatalf("Finish() = %v", err)
			}
			if !p.Collision || p.Abandoned || p.Lost != tc.apLowest {
				t.Fatalf("AP: collision %v, abandoned %v, lost %v; want true, false, %v", p.Collision, p.Abandoned, p.Lost, tc.apLowest)
			}
			var ours *iketest.Child // the responder's rekey, as the AP has it
			for _, c := range i.ChildList() {
				if c.Replaces == old {
					ours = c
				}
			}
			survivor, redundant := p.New, ours
			if tc.apLowest {
				survivor, redundant = ours, p.New
			}
			if p.Survivor != survivor || ours == nil {
				t.Fatalf("AP's survivor %p, want %p (responder's rekey %p)", p.Survivor, survivor, ours)
			}
			// The old inbound SA decrypts during its grace window.
			if g.store.Load().InSA[old.Out.SPI] == nil {
				t.Errorf("old inbound SA %08x removed before its grace window ended", old.Out.SPI)
			}
			waitFor(t, "the AP sends with the survivor", func() bool { return sendingChild(i) == survivor })

			// The redundant SA was deleted by its creator, the old one once,
			// by the other side.
			if tc.apLowest {
				if !redundant.Closed.Load() || redundant.Deleted.Load() || !old.Deleted.Load() || old.Closed.Load() {
					t.Errorf("the AP's redundant SA: closed by the AP %v, deleted by the responder %v; old: %v, %v; want true false / false true",
						redundant.Closed.Load(), redundant.Deleted.Load(), old.Closed.Load(), old.Deleted.Load())
				}
			} else if redundant.Closed.Load() || !redundant.Deleted.Load() || old.Deleted.Load() || !old.Closed.Load() {
				t.Errorf("the responder's redundant SA: closed by the AP %v, deleted by the responder %v; old: %v, %v; want false true / true false",
					redundant.Closed.Load(), redundant.Deleted.Load(), old.Closed.Load(), old.Deleted.Load())
			}
			wantDeletes := 0
			if tc.apLowest {
				wantDeletes = 1
			}
			g.wantLog(t, wantDeletes, "the responder deleted the old CHILD_SA", `msg="deleting CHILD_SA"`, fmt.Sprintf("spi_in=%08x", old.Out.SPI))
			msg := `msg="CHILD_SA rekey collision won`
			if !tc.apLowest {
				msg = `msg="CHILD_SA rekey collision lost`
			}
			g.wantLog(t, 1, msg, msg)

			wantOneChild(t, g, survivor)
			tr.check(t)
			wantOut(t, g, survivor)
			if c, r := g.r.Stats().Get(ike.ChildCollisions), g.r.Stats().Get(ike.ChildRekeys); c != 1 || r != 1 {
				t.Errorf("child_rekey_collisions %d, child_rekeys %d; want 1, 1", c, r)
			}
			// The old SPI now meets no SA.
			d := newDP(t, g)
			ap := &apESP{t: t, out: map[*iketest.Child]*esp.SA{}, in: map[*iketest.Child]*esp.SA{}}
			if up, _, drops := d.send(stats.FromDown, ap.frame(old, hostFrameFrom(t, 0))); len(up) != 0 || len(drops) != 1 || drops[0] != stats.NoSA {
				t.Errorf("frame under the old SPI after grace: up %d drops %v, want [no_sa]", len(up), drops)
			}
		})
	}
}

// TestChildRekeyCollisionRefused: the responder's rekey completes before
// the AP's request (sent first, delayed) arrives: it is closing the old SA
// (TEMPORARY_FAILURE) or has closed it (CHILD_SA_NOT_FOUND), and the AP
// drops its rekey (§2.8.1, §2.25.1): the responder's SA is the only new one.
func TestChildRekeyCollisionRefused(t *testing.T) {
	for _, tc := range []struct {
		name        string
		deleteFirst bool // the AP answers the DELETE of the old SA before its request arrives
		notify      string
	}{
		{"closing", false, "TEMPORARY_FAILURE"},
		{"closed", true, "CHILD_SA_NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const esps = "aes256gcm16-esn"
			g := newRigBase(t, dpYAML, withIKE("  esp_proposals: ["+esps+"]\n  delete_grace: 3s\n"))
			i := g.ap("127.0.0.2", func(c *iketest.Config) { c.ESP, c.Transport = esps, true })
			if err := i.Connect(); err != nil {
				t.Fatalf("Connect() = %v", err)
			}
			old := i.Children[0]
			tr := startTraffic(t, g, i)
			i.Hold(wire.CREATE_CHILD_SA, wire.INFORMATIONAL)
			g.store.Load().InSA[old.Out.SPI].ESP.St.RekeyNeeded.Store(true)
			theirs := heldRequest(t, i, wire.CREATE_CHILD_SA, 5*time.Second)
			p, err := i.PrepareRekeyChild(old) // under way, not yet on the wire
			if err != nil {
				t.Fatal(err)
			}
			i.Answer(theirs)
			del := heldRequest(t, i, wire.INFORMATIONAL, 5*time.Second)
			if d := deletes(del); len(d) != 1 || d[0] != old.Out.SPI {
				t.Fatalf("the responder's INFORMATIONAL deletes %x, want [%08x]", d, old.Out.SPI)
			}
			if !oldDeleting(g, old) {
				t.Fatalf("the listing does not show the old CHILD_SA %08x deleting while its DELETE awaits an answer", old.Out.SPI)
			}
			var text strings.Builder
			g.r.Listing().WriteText(&text)
			if !strings.Contains(text.String(), "DELETING, TRANSPORT, DELETE_UNANSWERED") {
				t.Errorf("the text listing does not flag the unanswered DELETE:\n%s", text.String())
			}
			if tc.deleteFirst {
				i.Answer(del)
				waitFor(t, "the responder handles the answer before the request", func() bool { return !oldDeleting(g, old) })
			}
			if err := p.Send(); err != nil {
				t.Fatal(err)
			}
			if n, err := p.Finish(); err != nil || n != nil || !p.Collision || !p.Abandoned {
				t.Fatalf("Finish() = %v, %v; collision %v, abandoned %v; want nil, nil, true, true", n, err, p.Collision, p.Abandoned)
			}
			if !tc.deleteFirst {
				i.Answer(del)
			}
			i.Hold()
			g.wantLog(t, 1, "the refusal ("+tc.notify+")", "rekeys a CHILD_SA we have rekeyed already", "notify="+tc.notify)
			survivor := p.Survivor
			if survivor == nil || survivor.Replaces != old || !old.Deleted.Load() || old.Closed.Load() {
				t.Fatalf("survivor %v (replaces old %v); old deleted by the responder %v, by the AP %v", survivor,
					survivor != nil && survivor.Replaces == old, old.Deleted.Load(), old.Closed.Load())
			}
			waitFor(t, "the AP sends with the survivor", func() bool { return sendingChild(i) == survivor })
			wantOneChild(t, g, survivor)
			tr.check(t)
			wantOut(t, g, survivor)
			if c, r := g.r.Stats().Get(ike.ChildCollisions), g.r.Stats().Get(ike.ChildRekeys); c != 1 || r != 1 {
				t.Errorf("child_rekey_collisions %d, child_rekeys %d; want 1, 1", c, r)
			}
		})
	}
}

// oldDeleting reports whether the responder's listing shows the CHILD_SA
// of old (by our inbound SPI, the AP's outbound) waiting for the answer to
// our DELETE.
func oldDeleting(g *rig, old *iketest.Child) bool {
	for _, s := range g.r.Listing().IKESAs {
		for _, c := range s.Children {
			if c.SPIIn == fmt.Sprintf("%08x", old.Out.SPI) {
				return c.DeleteUnanswered
			}
		}
	}
	return false
}

// TestChildRekeyCollisionWithDelete: the AP deletes the CHILD_SA the
// responder is rekeying; the responder answers the DELETE as usual and,
// when the AP's answer to its rekey is CHILD_SA_NOT_FOUND, drops its rekey
// (§2.25.1) without retrying.
func TestChildRekeyCollisionWithDelete(t *testing.T) {
	g := newRig(t, withIKE("  delete_grace: 1s\n"))
	i := g.ap("127.0.0.2", nil)
	if err := i.Connect(); err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	old := i.Children[0]
	i.Hold(wire.CREATE_CHILD_SA)
	g.store.Load().InSA[old.Out.SPI].ESP.St.RekeyNeeded.Store(true)
	theirs := heldRequest(t, i, wire.CREATE_CHILD_SA, 5*time.Second)
	paired, err := i.DeleteChild(old)
	if err != nil || len(paired) != 1 || paired[0] != old.Out.SPI {
		t.Fatalf("DeleteChild() during the responder's rekey = %x, %v; want [%08x]", paired, err, old.Out.SPI)
	}
	i.Answer(theirs)
	i.Hold()
	waitFor(t, "the responder drops its rekey", func() bool {
		return g.logCount(`msg="CHILD_SA rekey abandoned: the peer deleted the CHILD_SA"`, "CHILD_SA_NOT_FOUND") == 1
	})
	waitFor(t, "no SA left after the grace window", func() bool {
		l := g.r.Listing()
		return len(g.store.Load().InSA) == 0 && len(l.IKESAs) == 1 && len(l.IKESAs[0].Children) == 0
	})
	if n := g.logCount("CHILD_SA rekey failed; retrying"); n != 0 {
		t.Errorf("the responder retries its rekey of a deleted CHILD_SA")
	}
	if r := g.r.Stats().Get(ike.ChildRekeys); r != 0 {
		t.Errorf("child_rekeys = %d, want 0", r)
	}
	if err := i.DPD(); err != nil {
		t.Errorf("DPD after the collision: %v", err)
	}
}

// TestIKERekeyCollision: both ends rekey the IKE SA at once (§2.8.2; the
// responder's rekey comes from lifetime.ike, 10 s). The redundant IKE SA is
// deleted by its creator, the old one by the other side, the CHILD_SA moves
// to the surviving IKE SA without a lost frame, whose keys the next
// exchanges use. Meanwhile a CHILD_SA rekey gets TEMPORARY_FAILURE
// (§2.25.2). In "refused" the responder finishes first and refuses the
// AP's (TEMPORARY_FAILURE: it is closing the old IKE SA).
func TestIKERekeyCollision(t *testing.T) {
	if testing.Short() {
		t.Skip("about 10 s of IKE SA lifetime")
	}
	for _, tc := range []struct {
		name     string
		apLowest bool
		refused  bool
	}{
		{"lowest nonce in the AP's exchange", true, false},
		{"lowest nonce in the responder's exchange", false, false},
		{"refused", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const esps = "aes256gcm16-esn"
			g := newRigBase(t, dpYAML, withIKE("  esp_proposals: ["+esps+"]\n  lifetime: {ike: 10s}\n  delete_grace: 3s\n"))
			i := g.ap("127.0.0.2", func(c *iketest.Config) {
				c.ESP, c.Transport, c.Nonce = esps, true, collisionNonces(tc.apLowest)
			})
			if err := i.Connect(); err != nil {
				t.Fatalf("Connect() = %v", err)
			}
			child := i.Children[0]
			spii0, spir0 := i.IKESPIs()
			tr := startTraffic(t, g, i)
			if tc.refused {
				i.Hold(wire.CREATE_CHILD_SA, wire.INFORMATIONAL)
			} else {
				i.Hold(wire.CREATE_CHILD_SA)
			}
			theirs := heldRequest(t, i, wire.CREATE_CHILD_SA, 15*time.Second)
			if saP, ok := wire.First[*wire.SA](theirs.Payloads); !ok || len(saP.Proposals) == 0 || saP.Proposals[0].Protocol != wire.ProtoIKE {
				t.Fatalf("the responder's CREATE_CHILD_SA %v does not rekey the IKE SA", theirs.Payloads)
			}
			if _, err := i.RekeyChild(child); !errors.Is(err, &iketest.NotifyError{Type: wire.TEMPORARY_FAILURE}) {
				t.Errorf("CHILD_SA rekey while the responder rekeys the IKE SA: %v, want TEMPORARY_FAILURE", err)
			}
			p, err := i.PrepareRekeyIKE()
			if err != nil {
				t.Fatal(err)
			}
			if tc.refused {
				i.Answer(theirs)
				del := heldRequest(t, i, wire.INFORMATIONAL, 5*time.Second)
				if err := p.Send(); err != nil {
					t.Fatal(err)
				}
				if err := p.Finish(); err != nil || !p.Collision || !p.Abandoned {
					t.Fatalf("Finish() = %v; collision %v, abandoned %v; want nil, true, true", err, p.Collision, p.Abandoned)
				}
				i.Answer(del)
			} else {
				if err := p.Send(); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the responder notes the collision", func() bool { return g.r.Stats().Get(ike.IKECollisions) == 1 })
				i.Answer(theirs)
				waitFor(t, "the responder resolves the collision", func() bool { return g.r.Stats().Get(ike.IKERekeys) == 1 })
				if err := p.Finish(); err != nil {
					t.Fatalf("Finish() = %v", err)
				}
				if !p.Collision || p.Abandoned || p.Lost != tc.apLowest {
					t.Fatalf("AP: collision %v, abandoned %v, lost %v; want true, false, %v", p.Collision, p.Abandoned, p.Lost, tc.apLowest)
				}
			}
			i.Hold()
			// The survivor: the responder's IKE SA unless the AP's won.
			wi, wr := p.PeerSPIi, p.PeerSPIr
			if !tc.apLowest && !tc.refused {
				wi, wr = p.SPIi, p.SPIr
			}
			waitFor(t, "the AP speaks on the surviving IKE SA", func() bool { a, b := i.IKESPIs(); return a == wi && b == wr })
			waitFor(t, "the responder has only the surviving IKE SA", func() bool {
				l := g.r.Listing()
				return len(l.IKESAs) == 1 && l.IKESAs[0].SPIi == fmt.Sprintf("%016x", wi) && l.IKESAs[0].SPIr == fmt.Sprintf("%016x", wr) &&
					l.IKESAs[0].State == "ESTABLISHED" && len(l.IKESAs[0].Children) == 1
			})
			// Who deleted what: the old IKE SA once, by the survivor's creator
			// (the AP's reader switched when the responder deleted it); the
			// redundant one by its creator.
			responderWon := tc.apLowest || tc.refused
			if got := i.IKERekeysAnswered.Load() == 1; got != responderWon {
				t.Errorf("the responder deleted the old IKE SA: %v, want %v", got, responderWon)
			}
			// The AP's reader counts the DELETE of the redundant IKE SA
			// after it has sent its answer, on which the responder may
			// already have removed that SA from the listing.
			if want := int64(0); !tc.refused && !tc.apLowest {
				want = 1
				poll(func() bool { return i.RedundantIKEDeleted.Load() >= want })
				if got := i.RedundantIKEDeleted.Load(); got != want {
					t.Errorf("the responder deleted its redundant IKE SA %d times, want %d", got, want)
				}
			} else if got := i.RedundantIKEDeleted.Load(); got != want {
				t.Errorf("the responder deleted a redundant IKE SA %d times, want %d", got, want)
			}
			g.wantLog(t, 1, "the old IKE SA deleted", `msg="IKE SA deleted"`, fmt.Sprintf("spi_i=%016x", spii0), fmt.Sprintf("spi_r=%016x", spir0))
			// The CHILD_SA lives on the new IKE SA; its keys are the ones
			// both ends use: DPD, and a CHILD_SA rekey from its SK_d.
			if err := i.DPD(); err != nil {
				t.Errorf("DPD on the surviving IKE SA: %v", err)
			}
			tr.check(t)
			wantOut(t, g, child)
			n, err := i.RekeyChild(child)
			if err != nil {
				t.Fatalf("RekeyChild() on the surviving IKE SA = %v", err)
			}
			if _, err := i.DeleteChild(child); err != nil {
				t.Fatal(err)
			}
			checkESP(t, g.store.Load(), g.peer("127.0.0.2"), n)
			if c, r := g.r.Stats().Get(ike.IKECollisions), g.r.Stats().Get(ike.IKERekeys); c != 1 || r != 1 {
				t.Errorf("ike_rekey_collisions %d, ike_rekeys %d; want 1, 1", c, r)
			}
		})
	}
}
