package port

import (
	"sync"
	"testing"
)

func TestPoolStandalone(t *testing.T) {
	p := NewPool(8)
	var got []Frame
	for {
		f, ok := p.Get()
		if !ok {
			break
		}
		if f.Off != Headroom || len(f.Buf) != ChunkSize {
			t.Fatalf("Get() = off %d len %d, want %d %d", f.Off, len(f.Buf), Headroom, ChunkSize)
		}
		got = append(got, f)
	}
	if len(got) != 8 || p.InUse() != 8 {
		t.Fatalf("got %d chunks, InUse %d; want 8, 8", len(got), p.InUse())
	}
	seen := map[uint32]bool{}
	for _, f := range got {
		if seen[f.ID] {
			t.Fatalf("chunk %d handed out twice", f.ID)
		}
		seen[f.ID] = true
		f.Buf[0] = byte(f.ID) // chunks must not overlap
	}
	for _, f := range got {
		if f.Buf[0] != byte(f.ID) {
			t.Fatalf("chunk %d overlaps another", f.ID)
		}
		p.Put(&f)
	}
	if p.InUse() != 0 {
		t.Fatalf("InUse = %d after returning all", p.InUse())
	}
	defer func() {
		if recover() == nil {
			t.Errorf("double free did not panic")
		}
	}()
	p.Put(&got[0])
}

func TestFramePushPull(t *testing.T) {
	p := NewPool(1)
	f, _ := p.Get()
	f.Len = 10
	copy(f.Bytes(), "0123456789")
	h := f.Push(4)
	copy(h, "abcd")
	if string(f.Bytes()) != "abcd0123456789" || f.Off != Headroom-4 {
		t.Fatalf("Push: %q off %d", f.Bytes(), f.Off)
	}
	f.Pull(6)
	if string(f.Bytes()) != "23456789" {
		t.Fatalf("Pull: %q", f.Bytes())
	}
	if f.Tail() != ChunkSize-f.Off-f.Len {
		t.Fatalf("Tail = %d", f.Tail())
	}
}

// TestDepotConcurrent: workers take chunks from their own cache and free
// chunks another worker took (a frame received on one queue, sent by
// another); nothing is lost or duplicated.
func TestDepotConcurrent(t *testing.T) {
	const n = 1024
	d := NewDepot(make([]byte, n*ChunkSize))
	pools := []*Pool{d.NewPool(), d.NewPool()}
	xfer := make(chan uint32, 256)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // worker 0: allocates, hands chunks to worker 1
		defer wg.Done()
		for range 20000 {
			id, ok := pools[0].GetID()
			if !ok {
				continue
			}
			pools[0].Chunk(id)[0] = 1
			xfer <- id
		}
		close(xfer)
	}()
	go func() { // worker 1: frees what it receives, and churns its own
		defer wg.Done()
		for id := range xfer {
			pools[1].PutID(id)
			if id2, ok := pools[1].GetID(); ok {
				pools[1].PutID(id2)
			}
		}
	}()
	wg.Wait()
	if u := d.InUse(pools...); u != 0 {
		t.Fatalf("Depot.InUse = %d, want 0", u)
	}
	// Drain everything: exactly n distinct chunks.
	seen := map[uint32]bool{}
	for _, p := range pools {
		for {
			id, ok := p.GetID()
			if !ok {
				break
			}
			if seen[id] {
				t.Fatalf("chunk %d twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("drained %d chunks, want %d", len(seen), n)
	}
}

func TestPoolAllocs(t *testing.T) {
	d := NewDepot(make([]byte, 256*ChunkSize))
	p := d.NewPool()
	ids := make([]uint32, 100)
	if a := testing.AllocsPerRun(100, func() {
		for i := range ids {
			ids[i], _ = p.GetID()
		}
		for _, id := range ids {
			p.PutID(id)
		}
	}); a != 0 {
		t.Errorf("allocs = %v, want 0", a)
	}
}
