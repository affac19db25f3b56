package table

import "testing"

func TestFinishSetsFirstSession(t *testing.T) {
	a := &Peer{Name: "a"}
	b := &Peer{Name: "b"}
	c := &Peer{Name: "c"} // no session
	tb := &Tables{Sessions: map[uint32]*Session{}, Peers: []*Peer{a, b, c}}
	for _, s := range []*Session{
		{Name: "a-9", Peer: a, LocalID: 9},
		{Name: "a-3", Peer: a, LocalID: 3},
		{Name: "a-70000", Peer: a, LocalID: 70000},
		{Name: "b-5", Peer: b, LocalID: 5},
	} {
		tb.Sessions[s.LocalID] = s
	}
	tb.Finish()
	for _, tc := range []struct {
		p    *Peer
		want string
	}{{a, "a-3"}, {b, "b-5"}, {c, ""}} {
		got := ""
		if f := tc.p.First.Load(); f != nil {
			got = f.Name
		}
		if got != tc.want {
			t.Errorf("peer %s: First = %q, want %q", tc.p.Name, got, tc.want)
		}
	}
}

// A peer object reused by the next snapshot follows that snapshot's
// sessions.
func TestFinishFirstSessionOfReusedPeer(t *testing.T) {
	a := &Peer{Name: "a"}
	t1 := &Tables{Sessions: map[uint32]*Session{3: {Name: "old-3", Peer: a, LocalID: 3}}}
	t1.Finish()
	t2 := &Tables{Sessions: map[uint32]*Session{8: {Name: "new-8", Peer: a, LocalID: 8}}}
	t2.Finish()
	if f := a.First.Load(); f == nil || f.Name != "new-8" {
		t.Fatalf("First = %v, want new-8", f)
	}
}
