package bridge

import (
	"net"
	"testing"
)

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		vlan uint16
		mac  string
		want Key
		str  string
	}{
		{"basic", 100, "02:00:00:00:00:01", 100<<48 | 0x020000000001, "vlan 100 02:00:00:00:00:01"},
		{"vlan0", 0, "00:11:22:33:44:55", 0x001122334455, "vlan 0 00:11:22:33:44:55"},
		{"vlan4095", 4095, "ff:ff:ff:ff:ff:fe", 4095<<48 | 0xfffffffffffe, "vlan 4095 ff:ff:ff:ff:ff:fe"},
		{"vlan masked", 0xf00a, "aa:bb:cc:dd:ee:ff", 0x00a<<48 | 0xaabbccddeeff, "vlan 10 aa:bb:cc:dd:ee:ff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mac, err := net.ParseMAC(tc.mac)
			if err != nil {
				t.Fatal(err)
			}
			k := MakeKey(tc.vlan, mac)
			if k != tc.want {
				t.Fatalf("MakeKey(%d, %s) = %#x, want %#x", tc.vlan, tc.mac, uint64(k), uint64(tc.want))
			}
			if got := k.VLAN(); got != tc.vlan&0xfff {
				t.Errorf("VLAN() = %d, want %d", got, tc.vlan&0xfff)
			}
			if got := k.MAC(); net.HardwareAddr(got[:]).String() != tc.mac {
				t.Errorf("MAC() = %x, want %s", got, tc.mac)
			}
			if got := k.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
		})
	}
}

func TestMakeKeyLongSlice(t *testing.T) {
	// A frame header passed directly: only the first 6 bytes count.
	b := []byte{2, 0, 0, 0, 0, 9, 0xff, 0xff}
	if got, want := MakeKey(5, b), MakeKey(5, b[:6]); got != want {
		t.Fatalf("MakeKey(5, %x) = %v, want %v", b, got, want)
	}
}

func TestMakeKeyShortPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MakeKey with a 5-byte MAC did not panic")
		}
	}()
	MakeKey(1, make([]byte, 5))
}

func TestOwner(t *testing.T) {
	tests := []struct {
		name     string
		o        Owner
		upstream bool
		session  bool
		index    uint32
		gen      uint32
		str      string
	}{
		{"none", 0, false, false, 0, 0, "none"},
		{"upstream", Upstream, true, false, 0, 0, "upstream"},
		{"session 0/0", SessionOwner(0, 0), false, true, 0, 0, "session 0/0"},
		{"session 7/2", SessionOwner(7, 2), false, true, 7, 2, "session 7/2"},
		{"max index", SessionOwner(MaxSessionIndex, 1), false, true, MaxSessionIndex, 1, "session 2147483647/1"},
		{"max gen", SessionOwner(3, ^uint32(0)), false, true, 3, ^uint32(0), "session 3/4294967295"},
		{"max both", SessionOwner(MaxSessionIndex, ^uint32(0)), false, true, MaxSessionIndex, ^uint32(0), "session 2147483647/4294967295"},
		{"reserved", 2, false, false, 0, 0, "owner 0x2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.session && (tc.o == 0 || tc.o == Upstream) {
				t.Fatalf("SessionOwner(%d, %d) = %#x, collides with a reserved owner", tc.index, tc.gen, uint64(tc.o))
			}
			if got := tc.o.IsUpstream(); got != tc.upstream {
				t.Errorf("%#x.IsUpstream() = %v, want %v", uint64(tc.o), got, tc.upstream)
			}
			i, g, ok := tc.o.Session()
			if ok != tc.session || i != tc.index || g != tc.gen {
				t.Errorf("%#x.Session() = %d, %d, %v, want %d, %d, %v", uint64(tc.o), i, g, ok, tc.index, tc.gen, tc.session)
			}
			if got := tc.o.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
		})
	}
}

func TestSessionOwnerIndexPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("SessionOwner(1<<31, 0) did not panic")
		}
	}()
	SessionOwner(MaxSessionIndex+1, 0)
}

func FuzzKey(f *testing.F) {
	f.Add(uint16(100), []byte{2, 0, 0, 0, 0, 1}, uint32(5), uint32(9))
	f.Add(uint16(0xffff), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint32(1<<31-1), ^uint32(0))
	f.Fuzz(func(t *testing.T, vlan uint16, mac []byte, idx, gen uint32) {
		if len(mac) < 6 {
			return
		}
		k := MakeKey(vlan, mac)
		if uint64(k)&^keyMask != 0 {
			t.Fatalf("MakeKey(%d, %x) = %#x sets bits above 60", vlan, mac, uint64(k))
		}
		m := k.MAC()
		if k.VLAN() != vlan&0xfff || string(m[:]) != string(mac[:6]) {
			t.Fatalf("MakeKey(%d, %x) round-trips to %d %x", vlan, mac, k.VLAN(), m)
		}
		if MakeKey(k.VLAN(), m[:]) != k {
			t.Fatalf("MakeKey(VLAN(), MAC()) of %v differs", k)
		}
		idx &= MaxSessionIndex
		o := SessionOwner(idx, gen)
		i, g, ok := o.Session()
		if o == 0 || o.IsUpstream() || !ok || i != idx || g != gen {
			t.Fatalf("SessionOwner(%d, %d) = %#x; Session() = %d, %d, %v", idx, gen, uint64(o), i, g, ok)
		}
	})
}
