package proxy

import (
	"fmt"
	"strconv"
	"strings"
)

// The proxy wraps the broker's opaque receipt handle and transaction id into envelopes that
// tell it which broker to talk to. Clients treat both as opaque strings. Fields are separated
// by single spaces; broker names, handles (URL-safe) and broker transaction ids never contain
// spaces, and the last field takes the rest of the string.

const (
	handleVersion = "h1"
	txnVersion    = "t1"
)

// encodeHandle returns the client-facing receipt handle.
func encodeHandle(h Handle) string {
	return fmt.Sprintf("%s %s %d %d %d %s", handleVersion, h.Broker, h.QueueID, h.QueueOffset, h.CommitLogOffset, h.Raw)
}

// decodeHandle parses a client-facing receipt handle.
func decodeHandle(s string) (Handle, error) {
	f := strings.SplitN(s, " ", 6)
	if len(f) != 6 || f[0] != handleVersion || f[1] == "" || f[5] == "" {
		return Handle{}, ErrHandleInvalid
	}
	qid, err1 := strconv.ParseInt(f[2], 10, 32)
	qoff, err2 := strconv.ParseInt(f[3], 10, 64)
	cl, err3 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Handle{}, ErrHandleInvalid
	}
	return Handle{Broker: f[1], QueueID: int32(qid), QueueOffset: qoff, CommitLogOffset: cl, Raw: f[5]}, nil
}

// txnRef names a half message on a broker.
type txnRef struct {
	Broker               string
	CommitLogOffset      int64
	TranStateTableOffset int64
	TransactionID        string // broker transaction id; may be empty
}

func encodeTxnID(t txnRef) string {
	return fmt.Sprintf("%s %s %d %d %s", txnVersion, t.Broker, t.CommitLogOffset, t.TranStateTableOffset, t.TransactionID)
}

func decodeTxnID(s string) (txnRef, error) {
	f := strings.SplitN(s, " ", 5)
	if len(f) != 5 || f[0] != txnVersion || f[1] == "" {
		return txnRef{}, fmt.Errorf("malformed transaction id")
	}
	cl, err1 := strconv.ParseInt(f[2], 10, 64)
	ts, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || cl < 0 || ts < 0 {
		return txnRef{}, fmt.Errorf("malformed transaction id")
	}
	return txnRef{Broker: f[1], CommitLogOffset: cl, TranStateTableOffset: ts, TransactionID: f[4]}, nil
}
