package steer

import (
	"net/netip"
	"sync"
	"testing"
)

var fuzzProgs struct {
	once     sync.Once
	down, up *Program
	err      error
}

// FuzzSteer feeds arbitrary frames to both programs through BPF_PROG_RUN:
// never an error, always XDP_PASS (no socket registered), exactly one class
// counted, and an outcome counted exactly when the class is steered.
func FuzzSteer(f *testing.F) {
	seeds := [][]byte{
		frame(f, plain, ip(tun4, protoUDP), udp(4500, portNATT), espBody(5)),
		frame(f, plain, ip(tun4, protoUDP), udp(4500, portNATT), pay(0xff)),
		frame(f, plain, ip(tun4, protoUDP), udp(4500, portNATT), ikeNATT()),
		frame(f, tagged, ip(tun6, protoUDP), udp(1701, portL2TP), l2tpUDP(3, 5)),
		frame(f, tagged, ip(tun6, protoUDP), udp(1701, portL2TP), l2tpUDP(0xc803, 0)),
		frame(f, plain, ip(tun4, protoL2TP), l2tpIP(5)),
		frame(f, plain, ip(tun6, protoESP), espBody(5)),
		frame(f, plain, ip(tun6, 0), pay(50, 0, 0, 0, 0, 0, 0, 0)),
		make([]byte, 14),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	requireBPF(f)
	fuzzProgs.once.Do(func() {
		if fuzzProgs.down, fuzzProgs.err = Load(Downstream, []netip.Addr{tun4, tun6}); fuzzProgs.err == nil {
			fuzzProgs.up, fuzzProgs.err = Load(Upstream, nil)
		}
	})
	if fuzzProgs.err != nil {
		if bpfUnavailable(fuzzProgs.err) {
			skipLoudly(f, fuzzProgs.err.Error())
		}
		f.Fatal(fuzzProgs.err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < MinFrameLen || len(b) > 1500 {
			t.Skip()
		}
		for _, p := range []*Program{fuzzProgs.down, fuzzProgs.up} {
			checkOneClass(t, p, b)
		}
	})
}
