package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// CodedError carries an explicit RocketMQ ResponseCode and remark across the broker. Feature
// packages may wrap their errors in it instead of adding rows to the table below.
type CodedError struct {
	Code   int32
	Remark string
}

func (e *CodedError) Error() string { return fmt.Sprintf("code %d: %s", e.Code, e.Remark) }

// Coded returns a *CodedError (convenience for handlers).
func Coded(code int32, format string, args ...any) error {
	return &CodedError{Code: code, Remark: fmt.Sprintf(format, args...)}
}

// Broker sentinel errors. Each maps to exactly one ResponseCode in errorTable.
var (
	ErrTopicNotExist      = errors.New("broker: topic not exist")
	ErrGroupNotExist      = errors.New("broker: subscription group not exist")
	ErrNoPermission       = errors.New("broker: no permission")
	ErrInvalidParameter   = errors.New("broker: invalid parameter")
	ErrMessageIllegal     = errors.New("broker: message illegal")
	ErrBusy               = errors.New("broker: busy")
	ErrServiceUnavailable = errors.New("broker: service not available")
	ErrConflict           = errors.New("broker: conflict with system resource")
)

// Remarks RocketMQ uses for the store failures clients and operators recognise.
const (
	remarkServiceNotAvailable = "service not available now. It may be caused by one of the following reasons: " +
		"the broker's disk is full [%s], messages are put to the slave, message store has been shut down, etc."
	remarkMessageIllegal = "the message is illegal, maybe msg body or properties length not matched. " +
		"msg body length limit %dB, msg properties length limit 32KB."
	remarkOverload        = "[OVERLOAD]system busy, start flow control for a while"
	remarkTimeoutInQueue  = "[TIMEOUT_CLEAN_QUEUE]broker busy, start flow control for a while, period in queue: %dms, size of queue: %d"
	remarkFlushDiskTimout = "flush disk timeout"
)

// errorRow maps one sentinel error (matched with errors.Is) to a ResponseCode.
type errorRow struct {
	err  error
	code int32
}

// errorTable is the one place Go errors become remoting ResponseCodes. Order matters only
// where one error wraps another; the first match wins. Feature owners add their rows here.
var errorTable = []errorRow{
	{store.ErrFlushTimeout, remoting.FlushDiskTimeout},
	{store.ErrDiskFull, remoting.ServiceNotAvailable},
	{store.ErrNotWritable, remoting.ServiceNotAvailable},
	{store.ErrClosed, remoting.ServiceNotAvailable},
	{store.ErrMessageTooLarge, remoting.MessageIllegal},
	{message.ErrPropertiesTooLarge, remoting.MessageIllegal},
	{message.ErrInvalidProperty, remoting.MessageIllegal},
	{message.ErrMalformedProperties, remoting.MessageIllegal},
	{message.ErrInvalidMessage, remoting.MessageIllegal}, // store.Put: bad topic name, queue id, oversize field
	{ErrTopicNotExist, remoting.TopicNotExist},
	{ErrGroupNotExist, remoting.SubscriptionGroupNotExist},
	{ErrNoPermission, remoting.NoPermission},
	{ErrInvalidParameter, remoting.InvalidParameter},
	{ErrConflict, remoting.InvalidParameter},
	{ErrMessageIllegal, remoting.MessageIllegal},
	{ErrBusy, remoting.SystemBusy},
	{ErrServiceUnavailable, remoting.ServiceNotAvailable},
	{remoting.ErrMissingField, remoting.InvalidParameter},
	{remoting.ErrBadField, remoting.InvalidParameter},
	{context.DeadlineExceeded, remoting.SystemBusy},
}

// ResponseFor maps err to a RocketMQ ResponseCode and remark: a *CodedError gives its own,
// otherwise the first errorTable row that errors.Is matches; anything else is SYSTEM_ERROR.
// A nil error is SUCCESS.
func ResponseFor(err error) (code int32, remark string) {
	if err == nil {
		return remoting.Success, ""
	}
	var ce *CodedError
	if errors.As(err, &ce) {
		return ce.Code, ce.Remark
	}
	for _, r := range errorTable {
		if errors.Is(err, r.err) {
			switch r.code {
			case remoting.ServiceNotAvailable:
				return r.code, fmt.Sprintf(remarkServiceNotAvailable, err.Error())
			case remoting.FlushDiskTimeout:
				return r.code, remarkFlushDiskTimout
			}
			return r.code, err.Error()
		}
	}
	return remoting.SystemError, err.Error()
}

// errorResponse builds a response command for err through ResponseFor.
func errorResponse(err error) *remoting.Command {
	code, remark := ResponseFor(err)
	return remoting.NewResponse(code, remark)
}

// respond builds a response with a formatted remark.
func respond(code int32, format string, args ...any) *remoting.Command {
	if len(args) == 0 {
		return remoting.NewResponse(code, format)
	}
	return remoting.NewResponse(code, fmt.Sprintf(format, args...))
}
