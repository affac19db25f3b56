package ring_test

import (
	"fmt"

	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/ring"
)

// A dispatcher hands a batch to the worker that owns the SA. What does not
// fit stays with the dispatcher, which counts a drop and frees those frames;
// nothing is lost silently and nothing blocks.
func Example() {
	toOwner := ring.New[port.Frame](4) // one ring per (dispatcher, owner) pair

	// Dispatcher: a batch of six frames for this owner.
	var b port.Batch
	for i := range 6 {
		b.Add(port.Frame{ID: uint32(i), Len: 60})
	}
	sent := toOwner.EnqueueBatch(b.Frames())
	dropped := b.Frames()[sent:] // still ours: count and free them
	fmt.Printf("handed off %d, dropped %d (ring capacity %d)\n", sent, len(dropped), toOwner.Cap())

	// Owner: poll once per loop turn.
	var in [port.BatchSize]port.Frame
	n := toOwner.DequeueBatch(in[:])
	for _, f := range in[:n] {
		fmt.Print(f.ID, " ")
	}
	fmt.Println()
	// Output:
	// handed off 4, dropped 2 (ring capacity 4)
	// 0 1 2 3
}
