package txn

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testState(t *testing.T) *state {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.TransactionTimeout = 6 * time.Second
	cfg.CheckInterval = 30 * time.Second
	cfg.CheckMax = 3
	cfg.ResolvedRetention = time.Minute
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return newState(&cfg)
}

func h(qo int64, storeMs int64) half {
	return half{QueueOffset: qo, CommitLogOffset: 1000 + qo*100, Group: "G", TxID: "ID", UniqKey: "ID", RealTopic: "T", StoreTime: storeMs}
}

func offsets(hs []half) []int64 {
	var out []int64
	for _, x := range hs {
		out = append(out, x.QueueOffset)
	}
	return out
}

func checkOffsets(cs []dueCheck) [][2]int64 {
	var out [][2]int64
	for _, c := range cs {
		out = append(out, [2]int64{c.QueueOffset, int64(c.check)})
	}
	return out
}

func TestStateCheckScheduleAndDiscard(t *testing.T) {
	s := testState(t)
	s.observeHalf(h(0, 0), false)
	s.observeHalf(h(1, 2000), false)
	s.halfNext = 2

	if w := s.due(5999); len(w.checks)+len(w.discards) != 0 {
		t.Fatalf("due before transactionTimeout: %+v", w)
	}
	// First check of each half once it is TransactionTimeout old.
	w := s.due(6000)
	if diff := cmp.Diff([][2]int64{{0, 1}}, checkOffsets(w.checks)); diff != "" {
		t.Fatalf("checks at 6s (-want +got):\n%s", diff)
	}
	w = s.due(8000)
	if diff := cmp.Diff([][2]int64{{1, 1}}, checkOffsets(w.checks)); diff != "" {
		t.Fatalf("checks at 8s (-want +got):\n%s", diff)
	}
	// Not again before CheckInterval.
	if w := s.due(35999); len(w.checks) != 0 {
		t.Fatalf("re-checked before the interval: %+v", w.checks)
	}
	w = s.due(36000)
	if diff := cmp.Diff([][2]int64{{0, 2}}, checkOffsets(w.checks)); diff != "" {
		t.Fatalf("second check (-want +got):\n%s", diff)
	}
	w = s.due(66000)
	if diff := cmp.Diff([][2]int64{{0, 3}, {1, 2}}, checkOffsets(w.checks)); diff != "" {
		t.Fatalf("third round (-want +got):\n%s", diff)
	}
	// After CheckMax (3) checks the next due time discards instead of checking.
	w = s.due(96000)
	if len(w.checks) != 1 || w.checks[0].QueueOffset != 1 {
		t.Fatalf("checks at 96s: %+v", w.checks)
	}
	if diff := cmp.Diff([]int64{0}, offsets(w.discards)); diff != "" {
		t.Fatalf("discards (-want +got):\n%s", diff)
	}
	if s.entries[0].phase != phaseResolving {
		t.Fatalf("discarded entry not claimed: %v", s.entries[0].phase)
	}
	// Claimed entries are not handed out twice.
	if w := s.due(200000); len(w.discards) != 1 || w.discards[0].QueueOffset != 1 {
		t.Fatalf("second discard round: %+v", w)
	}
}

func TestStateImmunityDelaysFirstCheck(t *testing.T) {
	s := testState(t)
	x := h(0, 0)
	x.Immunity = 20 * time.Second
	s.observeHalf(x, false)
	y := h(1, 0)
	y.Immunity = 2 * time.Second // below transactionTimeout: the immunity still rules (Apache getImmunityTime, QA R4X-9)
	s.observeHalf(y, false)
	if w := s.due(1999); len(w.checks) != 0 {
		t.Fatalf("checked before any immunity ended: %+v", w.checks)
	}
	w := s.due(2000)
	if diff := cmp.Diff([][2]int64{{1, 1}}, checkOffsets(w.checks)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	found := false
	for _, c := range s.due(20000).checks {
		found = found || c.QueueOffset == 0
	}
	if !found {
		t.Fatal("immune half not checked at 20s")
	}
}

func TestStateClaimLifecycle(t *testing.T) {
	s := testState(t)
	s.observeHalf(h(0, 0), false)
	s.halfNext = 1

	if r, _, _ := s.claim(h(0, 0), false); r != claimed {
		t.Fatalf("claim pending = %v", r)
	}
	if r, _, _ := s.claim(h(0, 0), false); r != claimBusy {
		t.Fatalf("second claim = %v, want busy", r)
	}
	if w := s.due(1 << 40); len(w.checks)+len(w.discards)+len(w.verifies) != 0 {
		t.Fatalf("resolving entry handed to the scanner: %+v", w)
	}
	s.finish(0, OutcomeCommit, 10)
	if r, o, _ := s.claim(h(0, 0), false); r != claimDone || o != OutcomeCommit {
		t.Fatalf("claim resolved = %v %v", r, o)
	}
	// The op record read back turns it into a tombstone that still answers duplicates.
	s.observeOp(0, OutcomeCommit, 20)
	if _, ok := s.entries[0]; ok {
		t.Fatal("entry kept after its op record")
	}
	if r, o, _ := s.claim(h(0, 0), false); r != claimDone || o != OutcomeCommit {
		t.Fatalf("claim tombstone = %v %v", r, o)
	}
	// Tombstones are pruned after the retention, then the offset is "old".
	s.prune(20 + time.Minute.Milliseconds() - 1)
	if _, ok := s.tombs[0]; !ok {
		t.Fatal("pruned too early")
	}
	s.prune(20 + time.Minute.Milliseconds())
	if r, _, _ := s.claim(h(0, 0), false); r != claimOld {
		t.Fatalf("claim after prune = %v, want old", r)
	}
	// A re-read of the half record must not resurrect it... unless the cursor was not past it;
	// here it is past it, so observeHalf is never called again for offset 0 by the service.
}

func TestStateClaimBeforeQueueRead(t *testing.T) {
	s := testState(t)
	// END_TRANSACTION arrives before the scanner read the half: the entry is created claimed.
	if r, _, _ := s.claim(h(5, 0), false); r != claimed {
		t.Fatalf("claim unseen = %v", r)
	}
	s.finish(5, OutcomeRollback, 1)
	// The scanner now reads the half: it is known, nothing changes.
	s.observeHalf(h(5, 0), false)
	if e := s.entries[5]; e.phase != phaseResolved || e.outcome != OutcomeRollback {
		t.Fatalf("entry after observe = %+v", e)
	}
	s.halfNext = 6
	s.observeOp(5, OutcomeRollback, 2)
	if len(s.entries) != 0 {
		t.Fatalf("entries left: %v", s.entries)
	}
	s.observeHalf(h(5, 0), false) // tombstoned: ignored
	if len(s.entries) != 0 {
		t.Fatal("tombstoned half resurrected")
	}
}

func TestStateOpSeenWhileResolving(t *testing.T) {
	s := testState(t)
	s.observeHalf(h(0, 0), false)
	if r, _, _ := s.claim(h(0, 0), false); r != claimed {
		t.Fatal(r)
	}
	s.observeOp(0, OutcomeCommit, 5)
	if e := s.entries[0]; e == nil || !e.opSeen {
		t.Fatalf("op lost while resolving: %+v", e)
	}
	s.finish(0, OutcomeCommit, 6)
	if _, ok := s.entries[0]; ok {
		t.Fatal("finished entry with a seen op must become a tombstone")
	}
	if s.tombs[0].outcome != OutcomeCommit {
		t.Fatalf("tomb = %+v", s.tombs[0])
	}
}

func TestStateUnverifiedIsVerifiedBeforeChecking(t *testing.T) {
	s := testState(t)
	s.observeHalf(h(0, 0), true)
	w := s.due(6000)
	if len(w.checks) != 0 || len(w.verifies) != 1 {
		t.Fatalf("unverified due: %+v", w)
	}
	if r, _, _ := s.claim(h(0, 0), false); r != claimBusy {
		t.Fatalf("verifying entry claimable: %v", r)
	}
	s.verified(0)
	w = s.due(6000)
	if diff := cmp.Diff([][2]int64{{0, 1}}, checkOffsets(w.checks)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// An ambiguous commit failure marks it unverified again.
	if r, _, unv := s.claim(h(0, 0), false); r != claimed || unv {
		t.Fatalf("claim = %v unverified=%v", r, unv)
	}
	s.abort(0, true)
	if r, _, unv := s.claim(h(0, 0), false); r != claimed || !unv {
		t.Fatalf("claim after ambiguous abort = %v unverified=%v", r, unv)
	}
}

func TestStateOpsHandedOutOnceAndRetried(t *testing.T) {
	s := testState(t)
	s.observeHalf(h(0, 0), false)
	s.observeHalf(h(1, 0), false)
	s.claim(h(0, 0), false)
	s.finish(0, OutcomeRollback, 1000)
	s.claim(h(1, 0), false)
	s.finish(1, OutcomeCommit, 1000)
	w := s.due(1000)
	if diff := cmp.Diff([]opItem{{0, OutcomeRollback}, {1, OutcomeCommit}}, w.ops, cmp.AllowUnexported(opItem{})); diff != "" {
		t.Fatalf("ops (-want +got):\n%s", diff)
	}
	if w := s.due(2000); len(w.ops) != 0 {
		t.Fatalf("queued ops handed out twice: %+v", w.ops)
	}
	s.opWritten(0, true)
	s.opWritten(1, false) // append failed: retried next round
	if w := s.due(3000); len(w.ops) != 1 || w.ops[0].queueOffset != 1 {
		t.Fatalf("retry round: %+v", w.ops)
	}
	s.opWritten(1, true)
	if w := s.due(1 << 40); len(w.ops) != 0 {
		t.Fatal("op handed out after it was written")
	}
}

func TestStateSnapshot(t *testing.T) {
	s := testState(t)
	for i := int64(0); i < 4; i++ {
		s.observeHalf(h(i, 0), false)
	}
	s.halfNext, s.opNext = 3, 7 // offset 3 was added by a claim ahead of the reader
	s.due(6000)                 // one check each
	s.claim(h(1, 0), false)
	s.finish(1, OutcomeCommit, 1) // resolved, op not read back yet: still open durably
	s.observeOp(2, OutcomeRollback, 1)
	got := s.snapshot()
	want := checkpoint{Version: checkpointVersion, HalfNext: 3, OpNext: 7, Open: []openHalf{
		{QueueOffset: 0, CommitLogOffset: 1000, Checks: 1},
		{QueueOffset: 1, CommitLogOffset: 1100, Checks: 1},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("snapshot (-want +got):\n%s", diff)
	}
	b, err := encodeCheckpoint(got)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, back); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	// Once its op record is appended a resolved half leaves the checkpoint.
	s.opWritten(1, true)
	if got := s.snapshot(); len(got.Open) != 1 || got.Open[0].QueueOffset != 0 {
		t.Fatalf("snapshot after op written: %+v", got.Open)
	}
}

func TestStateCheckMaxZeroDiscardsAtFirstDue(t *testing.T) {
	s := testState(t)
	s.checkMax = 0
	s.observeHalf(h(0, 0), false)
	w := s.due(6000)
	if len(w.checks) != 0 || len(w.discards) != 1 {
		t.Fatalf("%+v", w)
	}
}
