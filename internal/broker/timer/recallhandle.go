package timer

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// ErrRecallHandle reports a recall handle that does not decode.
var ErrRecallHandle = errors.New("recall handle is invalid")

// RecallHandle names a pending timer message so its producer can recall it (gRPC
// RecallMessage, remoting RECALL_MESSAGE). It is RocketMQ's v1 layout, so handles minted by
// either side are understood by the other: base64url (with padding) of
// "v1 <topic> <brokerName> <due ms> <message id>".
type RecallHandle struct {
	Topic  string
	Broker string
	DueMs  int64
	MsgID  string
}

// Encode returns the handle's text.
func (h RecallHandle) Encode() string {
	raw := strings.Join([]string{"v1", h.Topic, h.Broker, strconv.FormatInt(h.DueMs, 10), h.MsgID}, " ")
	return base64.URLEncoding.EncodeToString([]byte(raw))
}

// maxRecallHandle bounds what DecodeRecallHandle accepts (topic and broker names are short).
const maxRecallHandle = 2048

// DecodeRecallHandle parses a handle made by Encode (or by RocketMQ). Extra space-separated
// fields after the fifth are ignored, as RocketMQ does; a due time that is not a number
// decodes as -1 (the caller refuses it as a time in the past, as RocketMQ).
func DecodeRecallHandle(text string) (RecallHandle, error) {
	if text == "" || len(text) > maxRecallHandle {
		return RecallHandle{}, ErrRecallHandle
	}
	raw, err := base64.URLEncoding.DecodeString(text)
	if err != nil {
		if raw, err = base64.RawURLEncoding.DecodeString(text); err != nil {
			return RecallHandle{}, ErrRecallHandle
		}
	}
	f := strings.Split(string(raw), " ")
	if len(f) < 5 || f[0] != "v1" || f[1] == "" || f[4] == "" {
		return RecallHandle{}, ErrRecallHandle
	}
	due, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		due = -1
	}
	return RecallHandle{Topic: f[1], Broker: f[2], DueMs: due, MsgID: f[4]}, nil
}
