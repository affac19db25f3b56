package hdr_test

import (
	"bytes"
	"testing"

	"github.com/tunterm/tunterm/dataplane/hdr"
)

func TestL2TPIPSession(t *testing.T) {
	tests := []struct {
		name   string
		b      []byte
		sid    uint32
		wantOK bool
	}{
		{"data, session 4097", []byte{0x00, 0x00, 0x10, 0x01, 0xde, 0xad}, 4097, true},
		{"data, session 0xffffffff", []byte{0xff, 0xff, 0xff, 0xff}, 0xffffffff, true},
		{"control (session 0, RFC 3931 §4.1.1.2)", []byte{0, 0, 0, 0, 0xc8, 0x03}, 0, true},
		{"3 bytes", []byte{0x00, 0x00, 0x10}, 0, false},
		{"empty", nil, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sid, ok := hdr.L2TPIPSession(tc.b)
			if sid != tc.sid || ok != tc.wantOK {
				t.Errorf("L2TPIPSession(%x) = %d, %v, want %d, %v", tc.b, sid, ok, tc.sid, tc.wantOK)
			}
		})
	}
}

func TestL2TPUDPHeader(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		sid     uint32
		control bool
		version uint8
		wantOK  bool
	}{
		// |T|x|x|x|x|x|x|x|x|x|x|x|  Ver  |   Reserved   | Session ID |
		{"data v3, session 8193", []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0xaa}, 8193, false, 3, true},
		{"data v3, exactly 8 bytes", []byte{0x00, 0x03, 0x00, 0x00, 0xff, 0xff, 0xff, 0xfe}, 0xfffffffe, false, 3, true},
		{"data v3, reserved bits set", []byte{0x7f, 0xf3, 0xff, 0xff, 0x00, 0x00, 0x00, 0x07}, 7, false, 3, true},
		{"data v2 (L2TPv2, caller rejects)", []byte{0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02}, 0x00010002, false, 2, true},
		{"control v3 (T, L, S set)", []byte{0xc8, 0x03, 0x00, 0x14, 0, 0, 0, 0, 0, 0, 0, 0}, 0, true, 3, true},
		{"control v3, only flags", []byte{0xc8, 0x03}, 0, true, 3, true},
		{"control v2", []byte{0xc8, 0x02, 0x00, 0x0c}, 0, true, 2, true},
		{"data truncated at 7 bytes", []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x20}, 0, false, 3, false},
		{"data truncated at 2 bytes", []byte{0x00, 0x03}, 0, false, 3, false},
		{"1 byte", []byte{0x80}, 0, false, 0, false},
		{"empty", nil, 0, false, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sid, control, version, ok := hdr.L2TPUDPHeader(tc.b)
			if ok != tc.wantOK || control != tc.control || (ok && (sid != tc.sid || version != tc.version)) {
				t.Errorf("L2TPUDPHeader(%x) = %d, %v, %d, %v, want %d, %v, %d, %v",
					tc.b, sid, control, version, ok, tc.sid, tc.control, tc.version, tc.wantOK)
			}
		})
	}
}

func TestL2TPSublayer(t *testing.T) {
	// |x|S|x|x|x|x|x|x|              Sequence Number                  |
	tests := []struct {
		name     string
		b        []byte
		seqValid bool
		seq      uint32
	}{
		{"S set, seq 5", []byte{0x40, 0x00, 0x00, 0x05}, true, 5},
		{"S clear", []byte{0x00, 0x12, 0x34, 0x56}, false, 0x123456},
		{"S set, max seq", []byte{0x40, 0xff, 0xff, 0xff}, true, 0xffffff},
		{"x bits ignored", []byte{0xbf, 0x00, 0x00, 0x01}, false, 1},
		{"all ones", []byte{0xff, 0xff, 0xff, 0xff, 0x00}, true, 0xffffff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seqValid, seq := hdr.L2TPSublayer(tc.b)
			if seqValid != tc.seqValid || seq != tc.seq {
				t.Errorf("L2TPSublayer(%x) = %v, %#x, want %v, %#x", tc.b, seqValid, seq, tc.seqValid, tc.seq)
			}
		})
	}
}

// l2tpPutCases hold the bytes written by hand from the RFC 3931 diagrams
// (§4.1.1.1 over IP, §4.1.2.1 over UDP, §4.6 default sublayer).
var l2tpPutCases = []struct {
	name     string
	sid      uint32
	cookie   []byte
	sublayer bool
	seqValid bool
	seq      uint32
	wantIP   []byte
	wantUDP  []byte
}{
	{name: "no cookie, no sublayer", sid: 0x2001,
		wantIP:  []byte{0x00, 0x00, 0x20, 0x01},
		wantUDP: []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01}},
	{name: "4-byte cookie", sid: 0xfedcba98, cookie: []byte{0xde, 0xad, 0xbe, 0xef},
		wantIP:  []byte{0xfe, 0xdc, 0xba, 0x98, 0xde, 0xad, 0xbe, 0xef},
		wantUDP: []byte{0x00, 0x03, 0x00, 0x00, 0xfe, 0xdc, 0xba, 0x98, 0xde, 0xad, 0xbe, 0xef}},
	{name: "8-byte cookie", sid: 1, cookie: []byte{0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
		wantIP:  []byte{0, 0, 0, 1, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
		wantUDP: []byte{0x00, 0x03, 0x00, 0x00, 0, 0, 0, 1, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}},
	{name: "no cookie, sublayer without sequencing", sid: 0x2001, sublayer: true,
		wantIP:  []byte{0x00, 0x00, 0x20, 0x01, 0x00, 0x00, 0x00, 0x00},
		wantUDP: []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x00, 0x00, 0x00, 0x00}},
	{name: "4-byte cookie, sublayer S=1 seq 0x123456", sid: 0x1001, cookie: []byte{1, 2, 3, 4}, sublayer: true, seqValid: true, seq: 0x123456,
		wantIP:  []byte{0x00, 0x00, 0x10, 0x01, 1, 2, 3, 4, 0x40, 0x12, 0x34, 0x56},
		wantUDP: []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 1, 2, 3, 4, 0x40, 0x12, 0x34, 0x56}},
	{name: "8-byte cookie, sublayer S=1, seq wraps to 24 bits", sid: 0x1001,
		cookie: []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}, sublayer: true, seqValid: true, seq: 0x01abcdef,
		wantIP:  []byte{0x00, 0x00, 0x10, 0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x40, 0xab, 0xcd, 0xef},
		wantUDP: []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x40, 0xab, 0xcd, 0xef}},
}

func TestPutL2TPIP(t *testing.T) {
	for _, tc := range l2tpPutCases {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Repeat([]byte{0xee}, 32) // dirty buffer
			n := hdr.PutL2TPIP(b, tc.sid, tc.cookie, tc.sublayer, tc.seqValid, tc.seq)
			if n != len(tc.wantIP) || !bytes.Equal(b[:n], tc.wantIP) {
				t.Errorf("PutL2TPIP(%#x, %x, %v, %v, %#x) = %d, %x, want %d, %x",
					tc.sid, tc.cookie, tc.sublayer, tc.seqValid, tc.seq, n, b[:n], len(tc.wantIP), tc.wantIP)
			}
			if !bytes.Equal(b[n:], bytes.Repeat([]byte{0xee}, 32-n)) {
				t.Errorf("PutL2TPIP wrote past its returned length: %x", b)
			}
			// Read back with the parsers.
			if sid, ok := hdr.L2TPIPSession(b[:n]); !ok || sid != tc.sid {
				t.Errorf("L2TPIPSession(%x) = %d, %v, want %d, true", b[:n], sid, ok, tc.sid)
			}
			if tc.sublayer {
				s := b[hdr.L2TPIPHdrLen+len(tc.cookie):]
				if sv, seq := hdr.L2TPSublayer(s); sv != tc.seqValid || (tc.seqValid && seq != tc.seq&0xffffff) {
					t.Errorf("L2TPSublayer(%x) = %v, %#x, want %v, %#x", s[:4], sv, seq, tc.seqValid, tc.seq&0xffffff)
				}
			}
		})
	}
}

func TestPutL2TPUDP(t *testing.T) {
	for _, tc := range l2tpPutCases {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Repeat([]byte{0xee}, 32)
			n := hdr.PutL2TPUDP(b, tc.sid, tc.cookie, tc.sublayer, tc.seqValid, tc.seq)
			if n != len(tc.wantUDP) || !bytes.Equal(b[:n], tc.wantUDP) {
				t.Errorf("PutL2TPUDP(%#x, %x, %v, %v, %#x) = %d, %x, want %d, %x",
					tc.sid, tc.cookie, tc.sublayer, tc.seqValid, tc.seq, n, b[:n], len(tc.wantUDP), tc.wantUDP)
			}
			if !bytes.Equal(b[n:], bytes.Repeat([]byte{0xee}, 32-n)) {
				t.Errorf("PutL2TPUDP wrote past its returned length: %x", b)
			}
			sid, control, version, ok := hdr.L2TPUDPHeader(b[:n])
			if !ok || control || version != hdr.L2TPVersion3 || sid != tc.sid {
				t.Errorf("L2TPUDPHeader(%x) = %d, %v, %d, %v, want %d, false, 3, true", b[:n], sid, control, version, ok, tc.sid)
			}
		})
	}
}
