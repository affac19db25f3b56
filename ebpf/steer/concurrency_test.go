package steer

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
)

// TestConcurrentUse runs every method from several goroutines while the
// program is reconfigured and finally closed (run with -race): each call
// either works or reports ErrClosed, and nothing panics.
func TestConcurrentUse(t *testing.T) {
	requireBPF(t)
	p, err := Load(Downstream, []netip.Addr{tun4})
	if err != nil {
		if bpfUnavailable(err) {
			skipLoudly(t, err.Error())
		}
		t.Fatal(err)
	}
	esp := frame(t, plain, ip(tun4, protoESP), espBody(5))
	ok := func(err error) bool { return err == nil || errors.Is(err, ErrClosed) }

	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range 300 {
				var err error
				switch (g + i) % 5 {
				case 0, 1:
					var v uint32
					v, err = p.Run(esp)
					if err == nil && v != XDPPass {
						t.Errorf("Run verdict %d, want %d", v, XDPPass)
					}
				case 2:
					_, err = p.Counters()
				case 3:
					addrs := []netip.Addr{tun4, tun6}
					if i%2 == 0 {
						addrs = []netip.Addr{other4}
					}
					err = p.SetAddrs(addrs)
				case 4:
					err = p.UnregisterXSK(i % MaxQueues)
				}
				if !ok(err) {
					t.Errorf("goroutine %d call %d: %v", g, i, err)
					return
				}
			}
		}()
	}
	close(start)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 100 {
			if _, err := p.Counters(); err != nil {
				break
			}
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	}()
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Errorf("Close() after concurrent use = %v", err)
	}
}
