package proxy

import (
	"strings"
	"testing"
)

// FuzzDecodeHandle: client-supplied receipt handles never panic, and whatever decodes
// re-encodes to an equivalent handle.
func FuzzDecodeHandle(f *testing.F) {
	f.Add(encodeHandle(Handle{Broker: "broker-a", QueueID: 1, QueueOffset: 2, CommitLogOffset: 3, Raw: "raw_HANDLE-1"}))
	f.Add("h1 b -1 -2 -3 x y z")
	f.Add("h1    ")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := decodeHandle(s)
		if err != nil {
			return
		}
		if h.Broker == "" || h.Raw == "" || strings.Contains(h.Broker, " ") {
			t.Fatalf("accepted %q as %+v", s, h)
		}
		back, err := decodeHandle(encodeHandle(h))
		if err != nil || back != h {
			t.Fatalf("re-encode of %+v: %+v, %v", h, back, err)
		}
	})
}

// FuzzDecodeTxnID: client-supplied transaction ids never panic and round-trip.
func FuzzDecodeTxnID(f *testing.F) {
	f.Add(encodeTxnID(txnRef{Broker: "broker-a", CommitLogOffset: 10, TranStateTableOffset: 2, TransactionID: "01AB"}))
	f.Add("t1 b 1 2 ")
	f.Add("t1 b 99999999999999999999 1 x")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := decodeTxnID(s)
		if err != nil {
			return
		}
		if r.Broker == "" || r.CommitLogOffset < 0 || r.TranStateTableOffset < 0 {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		back, err := decodeTxnID(encodeTxnID(r))
		if err != nil || back != r {
			t.Fatalf("re-encode of %+v: %+v, %v", r, back, err)
		}
	})
}
