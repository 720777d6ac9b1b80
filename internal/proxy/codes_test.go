package proxy

import (
	"context"
	"fmt"
	"testing"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

func TestCodeTable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want pb.Code
	}{
		{nil, pb.Code_OK},
		{fmt.Errorf("x: %w", ErrTopicNotFound), pb.Code_TOPIC_NOT_FOUND},
		{ErrGroupNotFound, pb.Code_CONSUMER_GROUP_NOT_FOUND},
		{ErrHandleInvalid, pb.Code_INVALID_RECEIPT_HANDLE},
		{ErrHandleExpired, pb.Code_INVALID_RECEIPT_HANDLE},
		{ErrBusy, pb.Code_TOO_MANY_REQUESTS},
		{ErrTimeout, pb.Code_PROXY_TIMEOUT},
		{context.DeadlineExceeded, pb.Code_PROXY_TIMEOUT},
		{ErrNoPermission, pb.Code_FORBIDDEN},
		{&BrokerError{Code: rcSystemBusy}, pb.Code_TOO_MANY_REQUESTS},
		{fmt.Errorf("wrapped: %w", &BrokerError{Code: rcTopicNotExist}), pb.Code_TOPIC_NOT_FOUND},
		{&BrokerError{Code: rcSubscriptionGroupNotExist}, pb.Code_CONSUMER_GROUP_NOT_FOUND},
		{&BrokerError{Code: rcRequestCodeNotSupported}, pb.Code_NOT_IMPLEMENTED},
		{&BrokerError{Code: rcFlushDiskTimeout}, pb.Code_MASTER_PERSISTENCE_TIMEOUT},
		{&BrokerError{Code: rcNoMessage}, pb.Code_INVALID_RECEIPT_HANDLE},
		{&BrokerError{Code: rcPollingTimeout}, pb.Code_MESSAGE_NOT_FOUND},
		{&BrokerError{Code: 9999}, pb.Code_INTERNAL_SERVER_ERROR},
		{&BrokerError{Code: rcMessageIllegal, Remark: "timer message illegal, the delay time should not be bigger than the max delay 259200000ms"}, pb.Code_ILLEGAL_DELIVERY_TIME},
		{&BrokerError{Code: rcMessageIllegal, Remark: "the message is illegal"}, pb.Code_BAD_REQUEST},
		{&BrokerError{Code: rcInvalidParameter, Remark: "invalid parameter: invisibleTime 2000ms not in 10000..43200000ms"}, pb.Code_ILLEGAL_INVISIBLE_TIME},
		{statusErrorf(pb.Code_ILLEGAL_TOPIC, "x"), pb.Code_ILLEGAL_TOPIC},
		{fmt.Errorf("plain"), pb.Code_INTERNAL_SERVER_ERROR},
	} {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if got := toStatus(tc.err).GetCode(); got != tc.want {
			t.Errorf("toStatus(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	for s, want := range map[SendStatus]pb.Code{
		SendOK: pb.Code_OK, SendFlushDiskTimeout: pb.Code_MASTER_PERSISTENCE_TIMEOUT,
		SendFlushSlaveTimeout: pb.Code_SLAVE_PERSISTENCE_TIMEOUT, SendSlaveNotAvailable: pb.Code_HA_NOT_AVAILABLE,
	} {
		if got := sendStatusCode(s); got != want {
			t.Errorf("sendStatusCode(%d) = %v, want %v", s, got, want)
		}
	}
	// Every mapped broker code maps to a defined, non-OK code except SUCCESS.
	for rc, c := range brokerCodes {
		if (rc == rcSuccess) != (c == pb.Code_OK) {
			t.Errorf("broker code %d -> %v", rc, c)
		}
		if _, ok := pb.Code_name[int32(c)]; !ok {
			t.Errorf("broker code %d maps to undefined %d", rc, c)
		}
	}
}

func TestHandleAndTxnIDRoundTrip(t *testing.T) {
	h := Handle{Broker: "broker-a", QueueID: 3, QueueOffset: 42, CommitLogOffset: 1 << 40, Raw: "abc_DEF-123"}
	got, err := decodeHandle(encodeHandle(h))
	if err != nil || got != h {
		t.Fatalf("handle round trip = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "h1", "h1 b 1 2 3", "h2 b 1 2 3 raw", "h1 b x 2 3 raw", "h1  1 2 3 raw"} {
		if _, err := decodeHandle(bad); err != ErrHandleInvalid {
			t.Errorf("decodeHandle(%q) err = %v", bad, err)
		}
	}
	ref := txnRef{Broker: "broker-a", CommitLogOffset: 99, TranStateTableOffset: 7, TransactionID: "01ABC"}
	back, err := decodeTxnID(encodeTxnID(ref))
	if err != nil || back != ref {
		t.Fatalf("txn id round trip = %+v, %v", back, err)
	}
	for _, bad := range []string{"", "t1 b 1", "t1 b -1 2 x", "x1 b 1 2 x"} {
		if _, err := decodeTxnID(bad); err == nil {
			t.Errorf("decodeTxnID(%q) accepted", bad)
		}
	}
}
