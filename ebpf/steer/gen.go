package steer

// The XDP programs live in ../*.c and share ../steer.h. bpf2go compiles them
// for little-endian BPF and writes <stem>_bpfel.go and <stem>_bpfel.o here;
// both are committed, so building and CI need no clang. Regenerate with
// `make generate` (go generate ./ebpf/...) after editing the C.
//
// The include paths are Debian's: /usr/include for libbpf's <bpf/*.h> and the
// UAPI headers, the multiarch directory for <asm/types.h>.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -no-global-types -type steer_class downstream ../xdp_downstream.c -- -O2 -g -Wall -Werror -I/usr/include -I/usr/include/x86_64-linux-gnu
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -no-global-types upstream ../xdp_upstream.c -- -O2 -g -Wall -Werror -I/usr/include -I/usr/include/x86_64-linux-gnu
