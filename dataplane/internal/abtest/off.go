//go:build !ttab

package abtest

// On is true in a build with the tag ttab.
const On = false

// B reports whether the batch being received and processed runs variant B.
func B() bool { return false }

// NextB reports whether the next batch will.
func NextB() bool { return false }

// Begin marks the start of a batch: before its Receive.
func Begin() {}

// End adds the time since Begin to the variant of a full batch of frames
// frames and size bytes, and moves on to the next batch.
func End(frames, size int) {}

// SetInfo sets what the report says about the run besides the times (the
// number of SAs, say).
func SetInfo(func() string) {}
