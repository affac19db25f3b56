package ike_test

import (
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tunterm/tunterm/control/ike/iketest"
)

// BenchmarkHandshake: IKE_SA_INIT + IKE_AUTH with a CHILD_SA against the
// responder with the real programmer, conc APs at a time, every SA kept (so
// the tables grow like a fleet connecting: -benchtime 10000x is the X10
// shape). The initiators run in the same process and share the cores, so
// the rates are a lower bound for the responder. Reports handshakes/s and
// handshakes/s per core (GOMAXPROCS).
func BenchmarkHandshake(b *testing.B) {
	dir := b.TempDir()
	now := time.Now()
	year := 365 * 24 * time.Hour
	ca := mkCert(b, "Bench AP CA", ecKey(elliptic.P256()), nil, true, now.Add(-year), now.Add(year))
	srv := mkCert(b, "tunterm.example", ecKey(elliptic.P256()), ca, false, now.Add(-year), now.Add(year), "tunterm.example")
	ap := mkCert(b, "ap.example", ecKey(elliptic.P256()), ca, false, now.Add(-year), now.Add(year), "ap.example")
	caFile, _ := writePEM(b, dir, "ca", ca)
	srvCert, srvKey := writePEM(b, dir, "srv", srv)
	for _, tc := range []struct {
		name string
		conc int
		cert bool
	}{{"psk-curve25519/conc=1", 1, false}, {"psk-curve25519/conc=16", 16, false}, {"ecdsa-p256-curve25519/conc=16", 16, true}} {
		b.Run(tc.name, func(b *testing.B) {
			g := newRig(b, withIKE(fmt.Sprintf("  cookie_threshold: 100000\n  cert: %s\n  key: %s\n  ca: [%s]\n", srvCert, srvKey, caFile)))
			var n, fail atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < tc.conc; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						k := n.Add(1)
						if k > int64(b.N) {
							return
						}
						cfg := iketest.Config{Local: netip.MustParseAddrPort(fmt.Sprintf("127.1.%d.%d:0", k>>8&255, k&255)),
							Server: g.ikeAP, ServerNATT: g.natAP, IKE: "aes256ctr-sha512-prfsha512-curve25519", ESP: "aes256ctr-sha512-esn",
							ID: fmt.Sprintf("ap%d@x", k), PSK: []byte("wildcard-secret"), Transport: true, Timeout: 10 * time.Second}
						if tc.cert {
							cfg.ID, cfg.Certs, cfg.Key = "ap.example", []*x509.Certificate{ap.cert}, ap.key
						}
						i, err := iketest.Dial(cfg)
						if err != nil {
							fail.Add(1)
							continue
						}
						if err := i.Connect(); err != nil {
							fail.Add(1)
						}
						i.Close()
					}
				}()
			}
			wg.Wait()
			rate := float64(b.N) / time.Since(start).Seconds()
			b.ReportMetric(rate, "handshakes/s")
			b.ReportMetric(rate/float64(runtime.GOMAXPROCS(0)), "handshakes/s/core")
			b.ReportMetric(float64(fail.Load()), "failures")
			b.ReportMetric(0, "ns/op")
		})
	}
}
