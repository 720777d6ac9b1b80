package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

// This file is the one table mapping internal and broker errors to apache.rocketmq.v2.Code
// (ARCHITECTURE.md: one mapping table per protocol edge). Business errors always travel in
// the response Status with gRPC OK.

// CodeMessageBodyEmpty is MESSAGE_BODY_EMPTY (41302), newer than the v5.1.2 stubs' enum; proto3
// enums are open, so clients receive the number.
const CodeMessageBodyEmpty pb.Code = 41302

// Remoting response codes (RocketMQ ResponseCode) the table knows.
const (
	rcSuccess                   = 0
	rcSystemError               = 1
	rcSystemBusy                = 2
	rcRequestCodeNotSupported   = 3
	rcTransactionFailed         = 4
	rcFlushDiskTimeout          = 10
	rcSlaveNotAvailable         = 11
	rcFlushSlaveTimeout         = 12
	rcMessageIllegal            = 13
	rcServiceNotAvailable       = 14
	rcVersionNotSupported       = 15
	rcNoPermission              = 16
	rcTopicNotExist             = 17
	rcPullNotFound              = 19
	rcSubscriptionParseFailed   = 23
	rcSubscriptionNotExist      = 24
	rcSubscriptionGroupNotExist = 26
	rcInvalidParameter          = 29
	rcNoMessage                 = 208
	rcPollingFull               = 209
	rcPollingTimeout            = 210
	rcFlowControl               = 215
	rcIllegalOperation          = 604
)

// brokerCodes maps remoting ResponseCode -> gRPC Code. Anything absent maps to
// INTERNAL_SERVER_ERROR (as the Java proxy's ResponseBuilder does).
var brokerCodes = map[int]pb.Code{
	rcSuccess:                   pb.Code_OK,
	rcSystemError:               pb.Code_INTERNAL_SERVER_ERROR,
	rcSystemBusy:                pb.Code_TOO_MANY_REQUESTS,
	rcRequestCodeNotSupported:   pb.Code_NOT_IMPLEMENTED,
	rcTransactionFailed:         pb.Code_INTERNAL_SERVER_ERROR,
	rcFlushDiskTimeout:          pb.Code_MASTER_PERSISTENCE_TIMEOUT,
	rcSlaveNotAvailable:         pb.Code_HA_NOT_AVAILABLE,
	rcFlushSlaveTimeout:         pb.Code_SLAVE_PERSISTENCE_TIMEOUT,
	rcMessageIllegal:            pb.Code_BAD_REQUEST,
	rcServiceNotAvailable:       pb.Code_INTERNAL_SERVER_ERROR,
	rcVersionNotSupported:       pb.Code_VERSION_UNSUPPORTED,
	rcNoPermission:              pb.Code_FORBIDDEN,
	rcTopicNotExist:             pb.Code_TOPIC_NOT_FOUND,
	rcPullNotFound:              pb.Code_MESSAGE_NOT_FOUND,
	rcSubscriptionParseFailed:   pb.Code_ILLEGAL_FILTER_EXPRESSION,
	rcSubscriptionNotExist:      pb.Code_CONSUMER_GROUP_NOT_FOUND,
	rcSubscriptionGroupNotExist: pb.Code_CONSUMER_GROUP_NOT_FOUND,
	rcInvalidParameter:          pb.Code_BAD_REQUEST,
	rcNoMessage:                 pb.Code_INVALID_RECEIPT_HANDLE,
	rcPollingFull:               pb.Code_TOO_MANY_REQUESTS,
	rcPollingTimeout:            pb.Code_MESSAGE_NOT_FOUND,
	rcFlowControl:               pb.Code_TOO_MANY_REQUESTS,
	rcIllegalOperation:          pb.Code_FORBIDDEN,
}

// timerIllegalRemark starts the broker's MESSAGE_ILLEGAL remark for a delay beyond its maximum.
const timerIllegalRemark = "timer message illegal"

// sentinelCodes maps the Backend sentinels -> gRPC Code.
var sentinelCodes = []struct {
	err  error
	code pb.Code
}{
	{ErrTopicNotFound, pb.Code_TOPIC_NOT_FOUND},
	{ErrGroupNotFound, pb.Code_CONSUMER_GROUP_NOT_FOUND},
	{ErrBrokerNotFound, pb.Code_NOT_FOUND},
	{ErrHandleInvalid, pb.Code_INVALID_RECEIPT_HANDLE},
	{ErrHandleExpired, pb.Code_INVALID_RECEIPT_HANDLE},
	{ErrBusy, pb.Code_TOO_MANY_REQUESTS},
	{ErrTimeout, pb.Code_PROXY_TIMEOUT},
	{ErrNoPermission, pb.Code_FORBIDDEN},
	{ErrUnavailable, pb.Code_INTERNAL_SERVER_ERROR},
	{context.DeadlineExceeded, pb.Code_PROXY_TIMEOUT},
	{context.Canceled, pb.Code_REQUEST_TIMEOUT},
}

// StatusError is a proxy-level error carrying its gRPC code; validation and auth produce it.
type StatusError struct {
	Code    pb.Code
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// statusErrorf builds a *StatusError.
func statusErrorf(code pb.Code, format string, args ...any) *StatusError {
	return &StatusError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf maps any error to its gRPC code (nil -> OK).
func CodeOf(err error) pb.Code {
	if err == nil {
		return pb.Code_OK
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	var be *BrokerError
	if errors.As(err, &be) {
		return be.grpcCode()
	}
	for _, s := range sentinelCodes {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	return pb.Code_INTERNAL_SERVER_ERROR
}

// grpcCode maps a broker error: its response code, refined by the remark where one remoting
// code covers several gRPC codes.
func (e *BrokerError) grpcCode() pb.Code {
	if e.Code == rcMessageIllegal && strings.HasPrefix(e.Remark, timerIllegalRemark) {
		// The broker's timer refuses a delivery time beyond timerMaxDelaySec with
		// MESSAGE_ILLEGAL; gRPC clients expect the specific code.
		return pb.Code_ILLEGAL_DELIVERY_TIME
	}
	if e.Code == rcInvalidParameter && strings.Contains(e.Remark, "invisibleTime") {
		// The broker's pop bounds (popMinInvisibleTime..12h) may be narrower than the proxy's.
		return pb.Code_ILLEGAL_INVISIBLE_TIME
	}
	return BrokerCode(e.Code)
}

// BrokerCode maps one remoting response code.
func BrokerCode(rc int) pb.Code {
	if c, ok := brokerCodes[rc]; ok {
		return c
	}
	return pb.Code_INTERNAL_SERVER_ERROR
}

// toStatus converts err to a response Status (nil -> OK). The message is the error text; broker
// remarks and sentinel texts never contain secrets.
func toStatus(err error) *pb.Status {
	if err == nil {
		return okStatus()
	}
	var se *StatusError
	if errors.As(err, &se) {
		return &pb.Status{Code: se.Code, Message: se.Message}
	}
	var be *BrokerError
	if errors.As(err, &be) {
		return &pb.Status{Code: be.grpcCode(), Message: statusMessage(be.Remark)}
	}
	return &pb.Status{Code: CodeOf(err), Message: statusMessage(err.Error())}
}

// internalPrefixes are the package prefixes of backend errors ("cluster: ", "broker: ",
// ...): they mean nothing to a client and are dropped from status messages wherever a
// wrapped error puts them (QA R9M-4).
var internalPrefixes = map[string]bool{"cluster": true, "local": true, "txn": true, "pop": true, "broker": true, "remoting": true}

// statusMessage turns a wrapped Go error text into the one sentence a client shows: internal
// package prefixes dropped and a ": "-separated part that repeats the one before it removed
// ("receipt handle is expired: receipt handle is expired: x" -> "receipt handle is expired:
// x"). A message that is nothing but a prefix is kept.
func statusMessage(msg string) string {
	parts := strings.Split(msg, ": ")
	out := make([]string, 0, len(parts))
	for i, p := range parts {
		if internalPrefixes[p] && i < len(parts)-1 {
			continue
		}
		if len(out) > 0 && out[len(out)-1] == p {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

func okStatus() *pb.Status { return &pb.Status{Code: pb.Code_OK, Message: "OK"} }

// sendStatusCode maps a stored send's status (Java SendMessageActivity).
func sendStatusCode(s SendStatus) pb.Code {
	switch s {
	case SendFlushDiskTimeout:
		return pb.Code_MASTER_PERSISTENCE_TIMEOUT
	case SendFlushSlaveTimeout:
		return pb.Code_SLAVE_PERSISTENCE_TIMEOUT
	case SendSlaveNotAvailable:
		return pb.Code_HA_NOT_AVAILABLE
	default:
		return pb.Code_OK
	}
}
