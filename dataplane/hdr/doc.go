// Package hdr provides allocation-free views of the packet headers the
// dataplane reads and writes: Ethernet and 802.1Q/802.1ad tags, IPv4, IPv6
// (with extension headers), UDP, ESP and L2TPv3 data messages over IP and UDP.
//
// A view is a byte slice (type IPv4 []byte). Parse/Valid functions check the
// length once; after that the accessors are plain binary.BigEndian reads with no
// further bounds surprises. Put* functions write a header into a caller-owned
// buffer. Nothing here allocates, and the package imports nothing from the rest
// of the dataplane.
package hdr
