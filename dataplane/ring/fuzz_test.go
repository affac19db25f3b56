package ring

import (
	"slices"
	"testing"
)

// FuzzModel drives a ring from one goroutine with operations decoded from the
// input and compares every result with a slice-backed queue of the same
// capacity. Input: byte 0 picks the capacity (rounded up), byte 1 how close to
// 2^64 the indices start (so the wrap of the counters is exercised), then one
// byte per operation: low two bits the operation, the rest a batch size
// (0..63, larger than small rings on purpose).
func FuzzModel(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 0, 1, 1, 1})
	f.Add([]byte{0, 5, 0, 0, 0, 4, 1, 5, 0xfe, 0xff})
	f.Add([]byte{6, 200, 0x82, 0x43, 0x86, 0x0b, 0xfe, 0xff, 0x02})
	f.Add([]byte{1, 0, 0x7e, 0x7f, 0x0e, 0x0f, 0x12, 0x13})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		capacity := 1 + int(data[0])%70
		r := newAt[uint32](capacity, ^uint64(0)-uint64(data[1]))
		c := r.Cap()
		want := 2
		for want < capacity {
			want *= 2
		}
		if c != want {
			t.Fatalf("New(%d).Cap() = %d, want %d", capacity, c, want)
		}
		var model []uint32
		next := uint32(1) // 0 marks a vacated slot
		buf := make([]uint32, 64)
		for i, op := range data[2:] {
			k := int(op >> 2)
			switch op & 3 {
			case 0: // Enqueue
				ok := r.Enqueue(next)
				if want := len(model) < c; ok != want {
					t.Fatalf("op %d: Enqueue with %d/%d = %v, want %v", i, len(model), c, ok, want)
				}
				if ok {
					model = append(model, next)
					next++
				}
			case 1: // Dequeue
				v, ok := r.Dequeue()
				if ok != (len(model) > 0) {
					t.Fatalf("op %d: Dequeue with %d queued = _, %v", i, len(model), ok)
				}
				if ok {
					if v != model[0] {
						t.Fatalf("op %d: Dequeue = %d, want %d", i, v, model[0])
					}
					model = model[1:]
				}
			case 2: // EnqueueBatch of k
				in := buf[:k]
				for j := range in {
					in[j] = next + uint32(j)
				}
				n := r.EnqueueBatch(in)
				if want := min(k, c-len(model)); n != want {
					t.Fatalf("op %d: EnqueueBatch(%d) with %d/%d = %d, want %d", i, k, len(model), c, n, want)
				}
				model = append(model, in[:n]...)
				next += uint32(n)
			case 3: // DequeueBatch into k, canaries after
				out := buf[:k]
				for j := range buf {
					buf[j] = 0xdeadbeef
				}
				n := r.DequeueBatch(out)
				if want := min(k, len(model)); n != want || !slices.Equal(out[:n], model[:n]) {
					t.Fatalf("op %d: DequeueBatch(%d) = %d %v, want %d %v", i, k, n, out[:n], want, model[:want])
				}
				for j, v := range buf[n:] {
					if v != 0xdeadbeef {
						t.Fatalf("op %d: DequeueBatch(%d) returned %d but wrote buf[%d]", i, k, n, n+j)
					}
				}
				model = model[n:]
			}
			if r.Len() != len(model) {
				t.Fatalf("op %d: Len() = %d, model has %d", i, r.Len(), len(model))
			}
			checkInvariants(t, r)
		}
		// Occupied slots hold the model's values, vacated ones are zero.
		h := r.head.Load()
		for j := range uint64(c) {
			want := uint32(0)
			if j < uint64(len(model)) {
				want = model[j]
			}
			if v := r.buf[(h+j)&r.mask]; v != want {
				t.Fatalf("slot for index %d = %d, want %d", h+j, v, want)
			}
		}
	})
}
