package namesrv

import (
	"errors"

	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// Errors of the NameServer handlers. responseFor is the one table mapping them (and the
// remoting field errors) to RocketMQ response codes.
var (
	errCRCMismatch     = errors.New("crc32 not match")
	errConfigBlocked   = errors.New("Can not update config in black list.")
	errConfigReadOnly  = errors.New("config key is not remotely updatable")
	errDisabled        = errors.New("disable")
	errTopicNotExist   = errors.New("no topic route")
	errKVNotFound      = errors.New("no config item")
	errInvalidArgument = errors.New("invalid parameter")
)

// responseFor maps an error to its response: TOPIC_NOT_EXIST, QUERY_NOT_FOUND and
// NO_PERMISSION for the expected cases, SYSTEM_ERROR (as RocketMQ answers header and body
// decoding exceptions) for everything else. The remark is err's text.
func responseFor(err error) *remoting.Command {
	code := int32(remoting.SystemError)
	switch {
	case errors.Is(err, errTopicNotExist):
		code = remoting.TopicNotExist
	case errors.Is(err, errKVNotFound):
		code = remoting.QueryNotFound
	case errors.Is(err, errConfigBlocked), errors.Is(err, errConfigReadOnly):
		code = remoting.NoPermission
	case errors.Is(err, errInvalidArgument):
		code = remoting.InvalidParameter
	case errors.Is(err, remoting.ErrMissingField), errors.Is(err, remoting.ErrBadField),
		errors.Is(err, route.ErrBadRegisterBody), errors.Is(err, errCRCMismatch), errors.Is(err, errDisabled):
		code = remoting.SystemError
	}
	return remoting.NewResponse(code, err.Error())
}

// remarkError carries the exact remark RocketMQ sends while matching its kind with
// errors.Is.
type remarkError struct {
	kind   error
	remark string
}

func (e *remarkError) Error() string { return e.remark }
func (e *remarkError) Unwrap() error { return e.kind }

func withRemark(kind error, remark string) error { return &remarkError{kind, remark} }
