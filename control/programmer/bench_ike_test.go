package programmer

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/tunterm/tunterm/dataplane/table"
)

// BenchmarkInstallChild: one CHILD_SA install (a full snapshot rebuild)
// with n IKE peers already installed.
func BenchmarkInstallChild(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			p, _ := newIKEProg(b)
			for i := 0; i < n; i++ {
				a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				if _, _, err := p.InstallChild(child(p, a.String(), table.ModeTransport), true); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := child(p, "198.18.0.2", table.ModeTransport)
				p.InstallChild(c, true)
				b.StopTimer()
				p.RemoveChild(c.In.SPI)
				b.StartTimer()
			}
		})
	}
}
