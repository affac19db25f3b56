package wire

import (
	"errors"
	"fmt"
)

// Parse errors. Every error Parse and ParsePayloads return wraps exactly one
// of these; NotifyForError turns it into the Notify for the response.
var (
	// ErrInvalidSyntax: the message or a payload is malformed (lengths,
	// counts, a value the RFC forbids). RFC 7296 §3.10.1 INVALID_SYNTAX.
	ErrInvalidSyntax = errors.New("ike: invalid syntax")
	// ErrInvalidMajorVersion: MjVer is not 2 (RFC 7296 §2.5).
	ErrInvalidMajorVersion = errors.New("ike: invalid major version")
	// ErrUnsupportedCritical: an unknown payload had the critical bit set
	// (RFC 7296 §2.5). The error is a *CriticalError naming the type.
	ErrUnsupportedCritical = errors.New("ike: unsupported critical payload")
)

// CriticalError reports the unknown critical payload type that failed a
// message; errors.Is(err, ErrUnsupportedCritical) holds.
type CriticalError struct{ Type PayloadType }

func (e *CriticalError) Error() string {
	return fmt.Sprintf("%v: type %d", ErrUnsupportedCritical, uint8(e.Type))
}

func (e *CriticalError) Unwrap() error { return ErrUnsupportedCritical }

func syntaxErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidSyntax}, a...)...)
}

// NotifyForError returns the Notify a responder puts in its answer to a
// request that failed with err (RFC 7296 §2.5, §3.10.1), or nil if err is not
// a parse error of this package:
//   - UNSUPPORTED_CRITICAL_PAYLOAD with the one-octet payload type as data,
//   - INVALID_MAJOR_VERSION (sent in an unprotected response, §2.5),
//   - INVALID_SYNTAX.
func NotifyForError(err error) *Notify {
	var ce *CriticalError
	switch {
	case errors.As(err, &ce):
		return &Notify{NotifyType: UNSUPPORTED_CRITICAL_PAYLOAD, Data: []byte{byte(ce.Type)}}
	case errors.Is(err, ErrInvalidMajorVersion):
		return &Notify{NotifyType: INVALID_MAJOR_VERSION}
	case errors.Is(err, ErrInvalidSyntax):
		return &Notify{NotifyType: INVALID_SYNTAX}
	}
	return nil
}
