package wire

import "encoding/binary"

// HeaderLen is the length of the IKE header (RFC 7296 §3.1, Figure 4).
const HeaderLen = 28

// genericLen is the length of the generic payload header (RFC 7296 §3.2).
const genericLen = 4

// Header is the IKE header (RFC 7296 §3.1); see the package doc for the
// diagram.
type Header struct {
	SPIi, SPIr uint64
	// NextPayload is the type of the first payload. Parse fills it in;
	// Append writes the type of the first element of Payloads instead.
	NextPayload PayloadType
	// Version is MjVer<<4 | MnVer as received. Append writes Version2 when
	// it is zero.
	Version   uint8
	Exchange  ExchangeType
	Flags     Flags
	MessageID uint32
	// Length is the total message length. Parse fills it in; Append
	// computes it.
	Length uint32
}

// ParseHeader reads the IKE header at the start of b without looking at the
// payloads, so that a responder can still answer (with the SPIs and Message
// ID) a message that Parse rejects. It fails only if b is shorter than the
// header, the Length field is smaller than the header, or MjVer is not 2
// (ErrInvalidMajorVersion; the header is returned with it).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, syntaxErr("message of %d octets is shorter than the IKE header", len(b))
	}
	h := Header{
		SPIi:        binary.BigEndian.Uint64(b[0:]),
		SPIr:        binary.BigEndian.Uint64(b[8:]),
		NextPayload: PayloadType(b[16]),
		Version:     b[17],
		Exchange:    ExchangeType(b[18]),
		Flags:       Flags(b[19]),
		MessageID:   binary.BigEndian.Uint32(b[20:]),
		Length:      binary.BigEndian.Uint32(b[24:]),
	}
	if h.Version>>4 != 2 {
		// RFC 7296 §2.5: a higher major version gets INVALID_MAJOR_VERSION;
		// the minor version is ignored.
		return h, ErrInvalidMajorVersion
	}
	if h.Length < HeaderLen {
		return Header{}, syntaxErr("Length %d is shorter than the IKE header", h.Length)
	}
	return h, nil
}

// IsResponse reports whether the R flag is set.
func (h *Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the I flag is set: the sender is the original
// initiator of the IKE SA.
func (h *Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

func (h *Header) append(dst []byte, next PayloadType) []byte {
	v := h.Version
	if v == 0 {
		v = Version2
	}
	dst = binary.BigEndian.AppendUint64(dst, h.SPIi)
	dst = binary.BigEndian.AppendUint64(dst, h.SPIr)
	dst = append(dst, byte(next), v, byte(h.Exchange), byte(h.Flags))
	dst = binary.BigEndian.AppendUint32(dst, h.MessageID)
	return append(dst, 0, 0, 0, 0) // Length, patched by Message.Append
}

// ResponseHeader is the header of the response to request h (RFC 7296 §2.2,
// §3.1): same SPIs, exchange and Message ID, R set, and I set exactly when
// the request came from the original responder (the I flag tells who is the
// original initiator, not who sends the request). Version is 2.0 and the
// other flag bits are clear. A responder to IKE_SA_INIT fills in SPIr.
func (h *Header) ResponseHeader() Header {
	f := FlagResponse
	if !h.IsInitiator() {
		f |= FlagInitiator
	}
	return Header{SPIi: h.SPIi, SPIr: h.SPIr, Version: Version2, Exchange: h.Exchange, Flags: f, MessageID: h.MessageID}
}
