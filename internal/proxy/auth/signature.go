package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Header names (gRPC metadata keys are lower-case).
const (
	HeaderAuthorization = "authorization"
	HeaderDateTime      = "x-mq-date-time"
	// DateTimeLayout is the x-mq-date-time format ("20231227T194619Z"). go5 fills it with
	// local time despite the Z.
	DateTimeLayout = "20060102T150405Z"
	// Algorithm is the only signing scheme clients use.
	Algorithm = "MQv2-HMAC-SHA1"
)

// Authentication failures. Each is distinct for logs and tests; ClientMessage folds those that
// would reveal whether a user exists.
var (
	ErrNoAuthorization  = errors.New("auth: authorization header is missing")
	ErrNoDateTime       = errors.New("auth: datetime is null")
	ErrMalformedHeader  = errors.New("auth: authentication header is incorrect")
	ErrBadDateTime      = errors.New("auth: datetime is malformed")
	ErrStaleDateTime    = errors.New("auth: datetime is outside the allowed clock skew")
	ErrUnknownUser      = errors.New("auth: user not found")
	ErrDisabledUser     = errors.New("auth: user is disabled")
	ErrSignatureInvalid = errors.New("auth: check signature failed")
)

// ClientMessage is the text returned to a client for an authentication error: the same for
// unknown users, disabled users and wrong signatures, so existence never leaks.
func ClientMessage(err error) string {
	switch {
	case errors.Is(err, ErrNoAuthorization):
		return "authentication required"
	case errors.Is(err, ErrNoDateTime):
		return "datetime is null"
	case errors.Is(err, ErrMalformedHeader):
		return "authentication header is incorrect"
	case errors.Is(err, ErrBadDateTime), errors.Is(err, ErrStaleDateTime):
		return "datetime is invalid or outside the allowed clock skew"
	default:
		return "check signature failed"
	}
}

// Authorization is a parsed authorization header.
type Authorization struct {
	AccessKey     string
	SignedHeaders []string
	Signature     []byte // decoded from hex
}

// ParseAuthorization parses
// "MQv2-HMAC-SHA1 Credential=<AK>/<...>/Rocketmq, SignedHeaders=x-mq-date-time, Signature=<hex>".
// Field order is free; whitespace around fields is ignored. Credential must carry a non-empty
// access key (its first '/'-separated element) and Signature must be non-empty hex.
func ParseAuthorization(h string) (*Authorization, error) {
	h = strings.TrimSpace(h)
	alg, rest, ok := strings.Cut(h, " ")
	if !ok || alg != Algorithm {
		return nil, fmt.Errorf("%w: unsupported algorithm", ErrMalformedHeader)
	}
	a := &Authorization{}
	var haveCred, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%w: field without '='", ErrMalformedHeader)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "Credential":
			ak, _, _ := strings.Cut(v, "/")
			if ak == "" {
				return nil, fmt.Errorf("%w: empty access key", ErrMalformedHeader)
			}
			a.AccessKey, haveCred = ak, true
		case "SignedHeaders":
			for _, s := range strings.Split(v, ";") {
				if s = strings.TrimSpace(s); s != "" {
					a.SignedHeaders = append(a.SignedHeaders, strings.ToLower(s))
				}
			}
		case "Signature":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) == 0 {
				return nil, fmt.Errorf("%w: signature is not hex", ErrMalformedHeader)
			}
			a.Signature, haveSig = sig, true
		}
	}
	if !haveCred || !haveSig {
		return nil, fmt.Errorf("%w: Credential and Signature are required", ErrMalformedHeader)
	}
	return a, nil
}

// Sign returns the lower-case hex HMAC-SHA1 of dateTime keyed by secret (what clients send).
func Sign(secret, dateTime string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(dateTime))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySignature compares sig with HMAC-SHA1(secret, dateTime) in constant time.
func VerifySignature(secret, dateTime string, sig []byte) bool {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(dateTime))
	return hmac.Equal(m.Sum(nil), sig)
}

// Real-world UTC offsets span -12 h to +14 h in steps of at least 15 minutes.
const (
	minZoneOffset  = -12 * time.Hour
	maxZoneOffset  = 14 * time.Hour
	zoneOffsetStep = 15 * time.Minute
)

// CheckDateTime accepts dt when it is within skew of now read either as UTC or as local time
// (go5 writes local time with a literal Z; see the package doc). With anyZone (the caller is a
// go5 client, whose stamp does not say which zone it was taken in) dt is also accepted when it
// differs from now by a real-world zone offset (a multiple of 15 minutes within -12 h..+14 h)
// give or take skew. skew <= 0 disables the check but the value must still parse.
func CheckDateTime(dt string, now time.Time, skew time.Duration, anyZone bool) error {
	if dt == "" {
		return ErrNoDateTime
	}
	asUTC, err := time.Parse(DateTimeLayout, dt)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadDateTime, dt)
	}
	if skew <= 0 {
		return nil
	}
	asLocal, err := time.ParseInLocation(DateTimeLayout, dt, now.Location())
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadDateTime, dt)
	}
	within := func(t time.Time) bool {
		d := now.Sub(t)
		return d <= skew && d >= -skew
	}
	if within(asUTC) || within(asLocal) {
		return nil
	}
	if anyZone {
		d := asUTC.Sub(now) // the client's zone offset plus its clock error
		off := min(max(d.Round(zoneOffsetStep), minZoneOffset), maxZoneOffset)
		if r := d - off; r <= skew && r >= -skew {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrStaleDateTime, dt)
}
