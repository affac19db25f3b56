//go:build !amd64 || purego

package prefetch

const supported = false

func forWrite(*byte, int) {}
