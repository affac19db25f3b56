package steer

import "strconv"

// Class is a verdict class of the XDP programs: the index of their per-CPU
// counter array. The values are generated from enum steer_class in
// ../steer.h; see there for what each class means.
//
// Every frame is counted in exactly one class from ClassESP to
// ClassTruncated. A frame steered to AF_XDP is also counted in ClassToXSK
// (its RX queue had a socket) or ClassXSKMissing (it did not, and
// bpf_redirect_map fell back to XDP_PASS).
type Class uint32

const (
	// Steered to AF_XDP.
	ClassESP      = Class(downstreamSteerClassSTEER_CLASS_ESP)      // IP proto 50
	ClassESPUDP   = Class(downstreamSteerClassSTEER_CLASS_ESP_UDP)  // UDP/4500, non-zero first word
	ClassL2TPIP   = Class(downstreamSteerClassSTEER_CLASS_L2TP_IP)  // L2TPv3/IP, session ID != 0
	ClassL2TPUDP  = Class(downstreamSteerClassSTEER_CLASS_L2TP_UDP) // UDP/1701, T clear, version 3
	ClassFragment = Class(downstreamSteerClassSTEER_CLASS_FRAGMENT) // IPv4 non-first fragment
	ClassTrunk    = Class(downstreamSteerClassSTEER_CLASS_TRUNK)    // upstream, not link-local

	// Passed to the kernel.
	ClassIKE          = Class(downstreamSteerClassSTEER_CLASS_IKE)           // UDP/500, UDP/4500 zero marker
	ClassNATKeepalive = Class(downstreamSteerClassSTEER_CLASS_NAT_KEEPALIVE) // UDP/4500 1-byte 0xFF
	ClassL2TPControl  = Class(downstreamSteerClassSTEER_CLASS_L2TP_CONTROL)  // session ID 0, T bit set
	ClassNotOurs      = Class(downstreamSteerClassSTEER_CLASS_NOT_OURS)      // destination not a tunnel address
	ClassIPv6Ext      = Class(downstreamSteerClassSTEER_CLASS_IPV6EXT)       // IPv6 extension header
	ClassOtherPass    = Class(downstreamSteerClassSTEER_CLASS_OTHER_PASS)    // ARP, ICMP, TCP, other UDP...
	ClassLinkLocal    = Class(downstreamSteerClassSTEER_CLASS_LINK_LOCAL)    // 01:80:C2:00:00:0X
	ClassTruncated    = Class(downstreamSteerClassSTEER_CLASS_TRUNCATED)     // frame ended inside a header

	// Redirect outcomes, counted in addition to the class.
	ClassToXSK      = Class(downstreamSteerClassSTEER_CLASS_TO_XSK)
	ClassXSKMissing = Class(downstreamSteerClassSTEER_CLASS_XSK_MISSING)

	// NumClasses is the number of classes and the size of the counter array.
	NumClasses = Class(downstreamSteerClassSTEER_CLASS_MAX)
)

var classNames = [NumClasses]string{
	ClassESP:          "esp",
	ClassESPUDP:       "esp_udp",
	ClassL2TPIP:       "l2tp_ip",
	ClassL2TPUDP:      "l2tp_udp",
	ClassFragment:     "fragment",
	ClassTrunk:        "trunk",
	ClassIKE:          "ike",
	ClassNATKeepalive: "nat_keepalive",
	ClassL2TPControl:  "l2tp_control",
	ClassNotOurs:      "not_ours",
	ClassIPv6Ext:      "ipv6_ext",
	ClassOtherPass:    "other_pass",
	ClassLinkLocal:    "link_local",
	ClassTruncated:    "truncated",
	ClassToXSK:        "to_xsk",
	ClassXSKMissing:   "xsk_missing",
}

// String returns the class's snake_case name, suitable as a metric label.
func (c Class) String() string {
	if c < NumClasses && classNames[c] != "" {
		return classNames[c]
	}
	return "class(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// ToXSK reports whether the programs steer frames of class c to AF_XDP.
// It is false for the outcome classes ClassToXSK and ClassXSKMissing.
func (c Class) ToXSK() bool { return c <= ClassTrunk }

// Outcome reports whether c counts a redirect outcome rather than a frame
// classification.
func (c Class) Outcome() bool { return c == ClassToXSK || c == ClassXSKMissing }
