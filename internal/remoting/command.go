package remoting

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
)

// Flag bits of Command.Flag (RemotingCommand RPC_TYPE and RPC_ONEWAY).
const (
	FlagResponse = 1 << 0 // set on responses
	FlagOneway   = 1 << 1 // set on requests that expect no response
)

// Command is one remoting frame: a request or a response. ExtFields values are always
// strings on the wire (numbers formatted in base 10).
//
// Body is written after the header; BodyParts are extra body pieces written after Body
// without copying (net.Buffers / writev), e.g. slices of store segments in pull responses.
// Decoded commands never use BodyParts. A Command handed to a send path must not be
// modified until the call returns (Invoke) or, for handler responses, ever again.
//
// OnWritten, when set on a command handed to a send path (Conn.Send, Invoke,
// InvokeOneway, or a handler's response), is called exactly once, after the frame has been
// written to the socket or dropped: the connection closed with the frame still queued, the
// write failed, the encoding failed, or (responses) the request was oneway. It is called
// without any remoting lock held, possibly on another goroutine than the sender's. When it
// runs, remoting no longer references Body or BodyParts and never will again, so the
// owner of that memory (e.g. a store segment) may reclaim it. It is never retained after
// the call. It must not block for long: it may run on the connection's writer path.
type Command struct {
	Code      int32
	Language  string
	Version   int32
	Opaque    int32
	Flag      int32
	Remark    string
	ExtFields map[string]string
	Body      []byte
	BodyParts [][]byte
	OnWritten func()
}

// written calls and clears OnWritten (for the paths that never queue the frame).
func (c *Command) written() {
	if f := c.OnWritten; f != nil {
		c.OnWritten = nil
		f()
	}
}

var requestOpaque atomic.Int32

// NextOpaque returns a process-wide increasing request id (wraps around at MaxInt32).
func NextOpaque() int32 { return requestOpaque.Add(1) }

// NewRequest returns a request command with a fresh opaque, language GO and Version.
func NewRequest(code int32, ext map[string]string, body []byte) *Command {
	return &Command{Code: code, Language: LanguageGo, Version: Version, Opaque: NextOpaque(), ExtFields: ext, Body: body}
}

// NewResponse returns a response command; the server fills in the opaque of the request
// it answers and sets FlagResponse.
func NewResponse(code int32, remark string) *Command {
	return &Command{Code: code, Language: LanguageGo, Version: Version, Remark: remark, Flag: FlagResponse}
}

// IsResponse reports whether the response flag bit is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether the oneway flag bit is set.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// MarkResponse sets the response flag bit.
func (c *Command) MarkResponse() { c.Flag |= FlagResponse }

// MarkOneway sets the oneway flag bit.
func (c *Command) MarkOneway() { c.Flag |= FlagOneway }

// BodyLen is the total body length: Body plus every BodyParts piece.
func (c *Command) BodyLen() int {
	n := len(c.Body)
	for _, p := range c.BodyParts {
		n += len(p)
	}
	return n
}

// SetExt sets one extension field, allocating the map when needed.
func (c *Command) SetExt(k, v string) {
	if c.ExtFields == nil {
		c.ExtFields = make(map[string]string, 4)
	}
	c.ExtFields[k] = v
}

// SetExtInt64 sets an extension field to a base-10 integer.
func (c *Command) SetExtInt64(k string, v int64) { c.SetExt(k, strconv.FormatInt(v, 10)) }

// ExtString returns an extension field ("" when absent).
func (c *Command) ExtString(k string) string { return c.ExtFields[k] }

// ErrMissingField is wrapped by errors about absent required extension fields.
var ErrMissingField = errors.New("remoting: missing required field")

// ErrBadField is wrapped by errors about extension fields that do not parse.
var ErrBadField = errors.New("remoting: bad field")

// ExtRequired returns the value of a required extension field, or an error wrapping
// ErrMissingField that names it when the field is absent or empty.
func (c *Command) ExtRequired(k string) (string, error) {
	v, ok := c.ExtFields[k]
	if !ok || v == "" {
		return "", fmt.Errorf("%w: %s", ErrMissingField, k)
	}
	return v, nil
}

// ExtInt64 parses a base-10 int64 extension field; absent fields are ErrMissingField.
func (c *Command) ExtInt64(k string) (int64, error) {
	v, err := c.ExtRequired(k)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not an integer", ErrBadField, k, v)
	}
	return n, nil
}

// ExtInt32 parses a base-10 int32 extension field; absent fields are ErrMissingField.
func (c *Command) ExtInt32(k string) (int32, error) {
	v, err := c.ExtRequired(k)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not a 32-bit integer", ErrBadField, k, v)
	}
	return int32(n), nil
}

// ExtBool parses a boolean extension field ("true"/"false", case-insensitive as Java's
// Boolean.parseBoolean, so anything but "true" is false); absent fields are ErrMissingField.
func (c *Command) ExtBool(k string) (bool, error) {
	v, err := c.ExtRequired(k)
	if err != nil {
		return false, err
	}
	return len(v) == 4 && (v[0]|0x20) == 't' && (v[1]|0x20) == 'r' && (v[2]|0x20) == 'u' && (v[3]|0x20) == 'e', nil
}

// ExtInt64Or returns the parsed field, or def when absent or unparsable.
func (c *Command) ExtInt64Or(k string, def int64) int64 {
	n, err := c.ExtInt64(k)
	if err != nil {
		return def
	}
	return n
}

// ExtBoolOr returns the parsed field, or def when absent.
func (c *Command) ExtBoolOr(k string, def bool) bool {
	b, err := c.ExtBool(k)
	if err != nil {
		return def
	}
	return b
}

// String formats the command for logs (never the body).
func (c *Command) String() string {
	return fmt.Sprintf("code=%d opaque=%d flag=%d remark=%q ext=%v body=%dB", c.Code, c.Opaque, c.Flag, c.Remark, c.ExtFields, c.BodyLen())
}

// ResponseError is a response whose code is not the one the caller expected.
type ResponseError struct {
	Code   int32
	Remark string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("remoting: response code %d: %s", e.Code, e.Remark)
}

// ExpectSuccess returns nil when c's code is Success, otherwise a *ResponseError.
func (c *Command) ExpectSuccess() error {
	if c.Code == Success {
		return nil
	}
	return &ResponseError{Code: c.Code, Remark: c.Remark}
}
