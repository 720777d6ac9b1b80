package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// The error table is the broker's only edge to remoting ResponseCodes.
func TestResponseForTable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int32
	}{
		{nil, remoting.Success},
		{fmt.Errorf("put: %w", store.ErrFlushTimeout), remoting.FlushDiskTimeout},
		{fmt.Errorf("put: %w", store.ErrDiskFull), remoting.ServiceNotAvailable},
		{store.ErrNotWritable, remoting.ServiceNotAvailable},
		{store.ErrMessageTooLarge, remoting.MessageIllegal},
		{fmt.Errorf("put: %w", message.ErrInvalidMessage), remoting.MessageIllegal},
		{message.ErrPropertiesTooLarge, remoting.MessageIllegal},
		{ErrTopicNotExist, remoting.TopicNotExist},
		{ErrNoPermission, remoting.NoPermission},
		{ErrBusy, remoting.SystemBusy},
		{context.DeadlineExceeded, remoting.SystemBusy},
		{Coded(remoting.PullOffsetMoved, "moved"), remoting.PullOffsetMoved},
		{errors.New("boom"), remoting.SystemError}, // unmapped errors fall back to SYSTEM_ERROR
	} {
		code, remark := ResponseFor(tc.err)
		if code != tc.code {
			t.Errorf("ResponseFor(%v) = %d %q, want %d", tc.err, code, remark, tc.code)
		}
		if tc.err != nil && remark == "" {
			t.Errorf("ResponseFor(%v): empty remark", tc.err)
		}
	}
}
