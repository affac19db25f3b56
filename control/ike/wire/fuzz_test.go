package wire_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unsafe"

	"github.com/tunterm/tunterm/control/ike/wire"
)

func fuzzSeeds(f *testing.F) [][]byte {
	seeds := [][]byte{saInitRequest(f)}
	for _, cm := range captureSet(f) {
		seeds = append(seeds, cm.m.Marshal())
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "strongswan", "*.bin"))
	for _, fn := range files {
		if b, err := os.ReadFile(fn); err == nil {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

// FuzzParse: no panic; an error exactly when the result is nil, and then one
// of the package's three error kinds; every slice in the result points into
// the input; Marshal of the result re-parses to the same message and
// re-marshals to the same octets.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := wire.Parse(data)
		if (err == nil) != (m != nil) {
			t.Fatalf("Parse(%x) = %v, %v: error and result disagree", data, m, err)
		}
		_, _, serr := wire.SplitEncrypted(data)
		if err != nil {
			if !errors.Is(err, wire.ErrInvalidSyntax) && !errors.Is(err, wire.ErrInvalidMajorVersion) && !errors.Is(err, wire.ErrUnsupportedCritical) {
				t.Fatalf("Parse(%x) error %v is none of the package's kinds", data, err)
			}
			if wire.NotifyForError(err) == nil {
				t.Fatalf("NotifyForError(%v) = nil", err)
			}
			return
		}
		_ = m.String()
		if !bytes.Equal(m.Raw(), data) || int(m.Length) != len(data) {
			t.Fatalf("Raw/Length differ from the input")
		}
		checkInBounds(t, data, reflect.ValueOf(m.Payloads))
		for _, p := range m.Payloads {
			_ = wire.Short(p)
			if id, ok := p.(*wire.ID); ok {
				_ = id.String()
				if body := id.Body(); !within(data, body) || !bytes.Equal(body[4:], id.Data) {
					t.Fatalf("ID.Body() %x not the received body", body)
				}
			}
		}
		// SplitEncrypted agrees with Parse on where SK/SKF is.
		last := len(m.Payloads) - 1
		if last >= 0 {
			switch m.Payloads[last].(type) {
			case *wire.Encrypted, *wire.EncryptedFragment:
				head, body, err := wire.SplitEncrypted(data)
				if err != nil || len(head)+len(body) != len(data) {
					t.Fatalf("SplitEncrypted = %d+%d, %v for a message Parse accepted", len(head), len(body), err)
				}
			default:
				if serr == nil {
					t.Fatalf("SplitEncrypted found SK in %v", m)
				}
			}
		}
		out := m.Marshal()
		m2, err := wire.Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(%x))) = %v", data, err)
		}
		if !sameMessage(m, m2) {
			t.Fatalf("re-parsed message differs:\n%+v\n%+v", m, m2)
		}
		if out2 := m2.Marshal(); !bytes.Equal(out, out2) {
			t.Fatalf("Marshal not stable: %x vs %x", out, out2)
		}
	})
}

// FuzzParsePayloads fuzzes the inner (decrypted SK) chain the same way.
func FuzzParsePayloads(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if len(s) > wire.HeaderLen {
			f.Add(s[16], s[wire.HeaderLen:])
		}
	}
	f.Fuzz(func(t *testing.T, first byte, data []byte) {
		ps, err := wire.ParsePayloads(wire.PayloadType(first), data)
		if err != nil {
			if ps != nil || (!errors.Is(err, wire.ErrInvalidSyntax) && !errors.Is(err, wire.ErrUnsupportedCritical)) {
				t.Fatalf("ParsePayloads = %v, %v", ps, err)
			}
			return
		}
		checkInBounds(t, data, reflect.ValueOf(ps))
		out, ft := wire.AppendPayloads(nil, ps)
		ps2, err := wire.ParsePayloads(ft, out)
		if err != nil || len(ps2) != len(ps) {
			t.Fatalf("re-parse = %v, %v", ps2, err)
		}
		for i := range ps {
			if !reflect.DeepEqual(normalize(ps[i]), normalize(ps2[i])) {
				t.Fatalf("payload %d differs: %+v vs %+v", i, ps[i], ps2[i])
			}
		}
		if _, err := wire.StripPadding(data); err == nil && len(data) == 0 {
			t.Fatalf("StripPadding accepted empty input")
		}
	})
}

func within(data, s []byte) bool {
	if len(s) == 0 {
		return true
	}
	if len(data) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(data))
}

// checkInBounds walks every []byte reachable from v and checks it lies in
// data (Parse never copies and never reads past the input).
func checkInBounds(t *testing.T, data []byte, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if !v.IsNil() {
			checkInBounds(t, data, v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() && v.Type().Field(i).Type.Kind() != reflect.Slice {
				continue
			}
			checkInBounds(t, data, v.Field(i))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := unsafe.Slice((*byte)(v.UnsafePointer()), v.Len())
			if !within(data, b) {
				t.Fatalf("slice %x outside the input", b)
			}
			return
		}
		for i := 0; i < v.Len(); i++ {
			checkInBounds(t, data, v.Index(i))
		}
	}
}
