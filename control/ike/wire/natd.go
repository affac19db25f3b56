package wire

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
)

// NATDHashLen is the length of NAT detection data: a SHA-1 hash (RFC 7296
// §2.23).
const NATDHashLen = sha1.Size

// NATDHash is the Notification Data of NAT_DETECTION_SOURCE_IP and
// NAT_DETECTION_DESTINATION_IP (RFC 7296 §2.23):
//
//	SHA-1 ( SPIi | SPIr | IP | Port )
//
// with the IP address (4 or 16 octets) and port (2 octets, network order) of
// the sender (source notify) or of the recipient (destination notify) as the
// sender sees them. SPIr is zero in the IKE_SA_INIT request.
func NATDHash(spii, spir uint64, ap netip.AddrPort) [NATDHashLen]byte {
	var buf [8 + 8 + 16 + 2]byte
	binary.BigEndian.PutUint64(buf[0:], spii)
	binary.BigEndian.PutUint64(buf[8:], spir)
	a := ap.Addr().Unmap()
	n := copy(buf[16:], a.AsSlice())
	binary.BigEndian.PutUint16(buf[16+n:], ap.Port())
	return sha1.Sum(buf[:16+n+2])
}

// NATD returns the NAT detection notifies of a message: the data of every
// NAT_DETECTION_SOURCE_IP (a multi-homed sender sends one per address) and
// of the NAT_DETECTION_DESTINATION_IP, nil if absent. Entries whose length is
// not NATDHashLen are skipped (strongSwan rejects them the same way).
func NATD(ps []Payload) (src [][]byte, dst []byte) {
	for _, p := range ps {
		n, ok := p.(*Notify)
		if !ok || len(n.Data) != NATDHashLen {
			continue
		}
		switch n.NotifyType {
		case NAT_DETECTION_SOURCE_IP:
			src = append(src, n.Data)
		case NAT_DETECTION_DESTINATION_IP:
			if dst == nil {
				dst = n.Data
			}
		}
	}
	return src, dst
}

// NewNATD returns the pair of NAT detection notifies a sender puts in
// IKE_SA_INIT, for the local (source) and remote (destination) address and
// port of the datagram that carries them.
func NewNATD(spii, spir uint64, local, remote netip.AddrPort) (src, dst *Notify) {
	s, d := NATDHash(spii, spir, local), NATDHash(spii, spir, remote)
	return NewNotify(NAT_DETECTION_SOURCE_IP, s[:]), NewNotify(NAT_DETECTION_DESTINATION_IP, d[:])
}

// AppendSignedOctets appends the octets an AUTH payload signs or MACs (RFC
// 7296 §2.15):
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//	ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//
// realMessage is the peer's or our own first message exactly as sent
// (Message.Raw for a received one), nonce the other side's Nonce Data, and
// macedID = prf(SK_px, ID.Body()), computed by the caller.
func AppendSignedOctets(dst, realMessage, nonce, macedID []byte) []byte {
	dst = append(dst, realMessage...)
	dst = append(dst, nonce...)
	return append(dst, macedID...)
}
