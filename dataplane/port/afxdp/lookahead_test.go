package afxdp

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/dataplane/port"
)

// TestLookAhead: lookAhead reads the descriptors of the frames waiting in
// the RX ring and nothing else: it consumes none of them, changes no byte
// of the UMEM, and does not fault on a descriptor whose address is at or
// past the end of the UMEM (the kernel's word is not trusted) or whose
// first lines run past it. No kernel socket is needed: the ring is plain
// memory here.
func TestLookAhead(t *testing.T) {
	const chunks = 4
	mem := make([]byte, chunks*port.ChunkSize)
	for i := range mem {
		mem[i] = byte(i * 7)
	}
	want := bytes.Clone(mem)
	desc := make([]unix.XDPDesc, 8)
	addrs := []uint64{
		port.Headroom,                       // an ordinary frame
		port.ChunkSize + port.Headroom,      // another
		uint64(len(mem)) - 1,                // its first lines run past the end
		uint64(len(mem)) - lookAheadLen + 1, // the same
		uint64(len(mem)),                    // just past the end
		1 << 40,                             // far past it
	}
	const cons = 6 // the ring's indices wrap: the waiting frames sit at slots 6, 7, 0, ...
	for i, a := range addrs {
		desc[(cons+i)%len(desc)] = unix.XDPDesc{Addr: a, Len: 64}
	}
	for _, waiting := range []uint32{0, 1, uint32(len(addrs))} {
		p := &Port{u: &UMEM{mem: mem}}
		p.rx.desc = desc
		p.rx.mask, p.rx.size = uint32(len(desc)-1), uint32(len(desc))
		p.rx.cachedCons, p.rx.cachedProd = cons, cons+waiting
		p.lookAhead()
		if p.rx.cachedCons != cons || p.rx.cachedProd != cons+waiting {
			t.Errorf("%d waiting: indices %d..%d after lookAhead, want %d..%d", waiting, p.rx.cachedCons, p.rx.cachedProd, cons, cons+waiting)
		}
	}
	if !bytes.Equal(mem, want) {
		t.Errorf("lookAhead changed the UMEM")
	}
}
