package txn

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rocketry-mq/rocketry/internal/message"
)

// backends lists the Log implementations every scenario runs against; store_test.go adds the
// real store.
var backends = []func() backend{memBackend}

func forEachBackend(t *testing.T, f func(t *testing.T, be backend)) {
	for _, mk := range backends {
		be := mk()
		t.Run(be.name, func(t *testing.T) { f(t, be) })
	}
}

func TestCommitVisibleOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 2, "PG", map[string]string{message.PropertyKeys: "k1"})
		if got := e.queue("T", 2); len(got) != 0 {
			t.Fatalf("half message visible before commit: %d", len(got))
		}
		if got := e.queue(HalfTopic, 0); len(got) != 1 {
			t.Fatalf("half queue has %d records", len(got))
		}
		if err := e.end(p, "PG", ResolutionCommit, false); err != nil {
			t.Fatal(err)
		}
		got := e.queue("T", 2)
		if len(got) != 1 {
			t.Fatalf("committed: %d messages in T/2", len(got))
		}
		m := got[0]
		if m.UniqKey() != p.uniq || string(m.Body) != string(p.body) {
			t.Fatalf("committed message uniq=%q body=%q", m.UniqKey(), m.Body)
		}
		if message.TransactionType(m.SysFlag) != message.SysFlagTransactionCommit {
			t.Fatalf("sysflag %#x, want commit type", m.SysFlag)
		}
		if m.Property(message.PropertyTransactionPrepared) != "true" {
			t.Fatal("TRAN_MSG dropped on commit")
		}
		for _, k := range []string{message.PropertyRealTopic, message.PropertyRealQueueID} {
			if v, ok := m.Properties[k]; ok {
				t.Fatalf("committed message keeps %s=%q", k, v)
			}
		}
		if m.PreparedTransactionOffset != p.CommitLogOffset || m.Property(message.PropertyKeys) != "k1" || m.Tags() != "TagA" {
			t.Fatalf("committed message: preparedTxOffset=%d props=%v", m.PreparedTransactionOffset, m.Properties)
		}
		if ops := e.queue(OpTopic, 0); len(ops) != 0 {
			t.Fatalf("op record written by END_TRANSACTION itself: %d", len(ops))
		}
		e.scan() // the scanner appends op records in batches
		ops := e.queue(OpTopic, 0)
		if len(ops) != 1 || string(ops[0].Body) != strconv.FormatInt(p.QueueOffset, 10) || ops[0].Tags() != OpTag ||
			ops[0].Property(PropertyOutcome) != "commit" {
			t.Fatalf("op records: %d %+v", len(ops), ops)
		}
		// Duplicates (a retried END_TRANSACTION, a late check answer) put nothing.
		if err := e.end(p, "PG", ResolutionCommit, true); err != nil {
			t.Fatalf("duplicate commit: %v", err)
		}
		if err := e.end(p, "PG", ResolutionRollback, true); !errors.Is(err, ErrAlreadyResolved) {
			t.Fatalf("rollback after commit: %v", err)
		}
		e.clock.advance(time.Hour)
		e.scan()
		e.scan()
		if c := e.takeChecks(); len(c) != 0 {
			t.Fatalf("committed transaction checked back: %d", len(c))
		}
		if got := e.queue("T", 2); len(got) != 1 {
			t.Fatalf("after duplicates: %d messages", len(got))
		}
		// After a clean restart the outcome is still known.
		e.crash()
		if err := e.end(p, "PG", ResolutionCommit, true); err != nil {
			t.Fatalf("commit after restart: %v", err)
		}
		if got := e.queue("T", 2); len(got) != 1 {
			t.Fatalf("after restart: %d messages", len(got))
		}
		if st := e.svc.Stats(); st.Open != 0 {
			t.Fatalf("open after restart: %+v", st)
		}
	})
}

func TestRollbackInvisible(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 0, "PG", nil)
		if err := e.end(p, "PG", ResolutionRollback, false); err != nil {
			t.Fatal(err)
		}
		e.scan()
		if ops := e.queue(OpTopic, 0); len(ops) != 1 || ops[0].Property(PropertyOutcome) != "rollback" {
			t.Fatalf("op records: %+v", ops)
		}
		if err := e.end(p, "PG", ResolutionCommit, true); !errors.Is(err, ErrAlreadyResolved) {
			t.Fatalf("commit after rollback: %v", err)
		}
		if err := e.end(p, "PG", ResolutionRollback, true); err != nil {
			t.Fatalf("duplicate rollback: %v", err)
		}
		e.clock.advance(time.Hour)
		e.scan()
		if got := e.queue("T", 0); len(got) != 0 {
			t.Fatalf("rolled back message visible: %d", len(got))
		}
		if c := e.takeChecks(); len(c) != 0 {
			t.Fatalf("rolled back transaction checked: %d", len(c))
		}
		if st := e.svc.Stats(); st.Rollbacks != 1 || st.Open != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestOnEndAndOpenByTopic(t *testing.T) {
	var mu sync.Mutex
	ended := map[string]int{}
	e := newEnv(t, memBackend(), func(c *Config) {
		c.OnEnd = func(topic string, o Outcome, born time.Time) {
			mu.Lock()
			ended[topic+"/"+o.String()]++
			if born.UnixMilli() <= 0 || born.After(time.Now()) {
				ended["bad born time "+born.String()]++
			}
			mu.Unlock()
		}
	})
	a := e.sendHalf("A", 0, "PG", nil)
	b := e.sendHalf("B", 0, "PG", nil)
	e.sendHalf("B", 1, "PG", nil)
	e.scan()
	if diff := cmp.Diff(map[string]int{"A": 1, "B": 2}, e.svc.OpenByTopic()); diff != "" {
		t.Fatalf("open (-want +got):\n%s", diff)
	}
	if err := e.end(a, "PG", ResolutionCommit, false); err != nil {
		t.Fatal(err)
	}
	if err := e.end(b, "PG", ResolutionRollback, false); err != nil {
		t.Fatal(err)
	}
	_ = e.end(a, "PG", ResolutionCommit, true) // duplicate: not counted again
	if diff := cmp.Diff(map[string]int{"B": 1}, e.svc.OpenByTopic()); diff != "" {
		t.Fatalf("open after ends (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(map[string]int{"A/commit": 1, "B/rollback": 1}, ended); diff != "" {
		t.Fatalf("OnEnd (-want +got):\n%s", diff)
	}
}

func TestUnknownStaysPendingAndIsCheckedBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 1, "PG", nil)
		if err := e.end(p, "PG", ResolutionUnknown, false); err != nil {
			t.Fatal(err)
		}
		e.scan()
		if c := e.takeChecks(); len(c) != 0 {
			t.Fatalf("checked before transactionTimeout: %d", len(c))
		}
		if st := e.svc.Stats(); st.Open != 1 {
			t.Fatalf("open = %d", st.Open)
		}
		e.clock.advance(e.cfg.TransactionTimeout + time.Second)
		e.scan()
		c := e.takeChecks()
		if len(c) != 1 {
			t.Fatalf("checks = %d, want 1", len(c))
		}
		chk := c[0]
		if chk.ProducerGroup != "PG" || chk.CommitLogOffset != p.CommitLogOffset || chk.TranStateTableOffset != p.QueueOffset ||
			chk.MsgID != p.uniq || chk.TransactionID != p.uniq {
			t.Fatalf("check header %+v", chk)
		}
		if _, off, err := message.ParseOffsetMsgID(chk.OffsetMsgID); err != nil || off != p.CommitLogOffset {
			t.Fatalf("offsetMsgId %q -> %d, %v", chk.OffsetMsgID, off, err)
		}
		m := chk.Message
		if m.Topic != "T" || m.QueueID != 1 || m.Property(message.PropertyProducerGroup) != "PG" || m.UniqKey() != p.uniq ||
			string(m.Body) != string(p.body) || m.CommitLogOffset != p.CommitLogOffset || m.QueueOffset != p.QueueOffset {
			t.Fatalf("check message %+v", m)
		}
		if got := m.Property(message.PropertyTransactionCheckTimes); got != "1" {
			t.Fatalf("first check TRANSACTION_CHECK_TIMES = %q, want 1", got)
		}
		// The body a remoting sender encodes decodes back the way go2 reads it.
		rec, err := message.AppendRecord(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := message.DecodeRecord(rec, true)
		if err != nil || back.Property(message.PropertyProducerGroup) != "PG" || back.Topic != "T" {
			t.Fatalf("re-encoded check body: %v %+v", err, back)
		}
		// Not again before the interval, then again.
		e.clock.advance(e.cfg.CheckInterval - time.Second)
		e.scan()
		if c := e.takeChecks(); len(c) != 0 {
			t.Fatalf("re-checked before interval: %d", len(c))
		}
		e.clock.advance(time.Second)
		e.scan()
		if c := e.takeChecks(); len(c) != 1 || c[0].Message.Property(message.PropertyTransactionCheckTimes) != "2" {
			t.Fatalf("second check: %d (TRANSACTION_CHECK_TIMES of the first: %q, want 2)", len(c), func() string {
				if len(c) == 0 {
					return ""
				}
				return c[0].Message.Property(message.PropertyTransactionCheckTimes)
			}())
		}
		// The producer answers commit from the check.
		if err := e.svc.End(context.Background(), &EndRequest{ProducerGroup: "PG", TranStateTableOffset: chk.TranStateTableOffset,
			CommitLogOffset: chk.CommitLogOffset, Resolution: ResolutionCommit, FromCheck: true, MsgID: chk.MsgID, TransactionID: chk.TransactionID}); err != nil {
			t.Fatal(err)
		}
		if got := e.queue("T", 1); len(got) != 1 {
			t.Fatalf("committed after check: %d", len(got))
		}
	})
}

func TestEndValidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 0, "PG", nil)
		normal, err := e.fl.PutDirect(context.Background(), &message.Ext{Message: message.Message{Topic: "T", Body: []byte("x")}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		cases := []struct {
			name string
			req  EndRequest
			want error
		}{
			{"wrong group", EndRequest{ProducerGroup: "OTHER", TranStateTableOffset: p.QueueOffset, CommitLogOffset: p.CommitLogOffset, Resolution: ResolutionCommit}, ErrProducerGroupMismatch},
			{"wrong queue offset", EndRequest{ProducerGroup: "PG", TranStateTableOffset: p.QueueOffset + 1, CommitLogOffset: p.CommitLogOffset, Resolution: ResolutionCommit}, ErrOffsetMismatch},
			{"wrong transaction id", EndRequest{ProducerGroup: "PG", TranStateTableOffset: p.QueueOffset, CommitLogOffset: p.CommitLogOffset, Resolution: ResolutionCommit, TransactionID: "NOPE"}, ErrTransactionIDMismatch},
			{"not a half message", EndRequest{ProducerGroup: "PG", TranStateTableOffset: normal.QueueOffset, CommitLogOffset: normal.CommitLogOffset, Resolution: ResolutionCommit}, ErrHalfNotFound},
			{"no record", EndRequest{ProducerGroup: "PG", TranStateTableOffset: 0, CommitLogOffset: 1 << 40, Resolution: ResolutionCommit}, ErrHalfNotFound},
			{"bad resolution", EndRequest{ProducerGroup: "PG", TranStateTableOffset: p.QueueOffset, CommitLogOffset: p.CommitLogOffset, Resolution: 4}, ErrBadResolution},
		}
		for _, c := range cases {
			if err := e.svc.End(ctx, &c.req); !errors.Is(err, c.want) {
				t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			}
		}
		if got := e.queue("T", 0); len(got) != 1 { // only the normal message
			t.Fatalf("a rejected END_TRANSACTION put something: %d", len(got))
		}
		// The half is untouched: a valid commit still works.
		if err := e.end(p, "PG", ResolutionCommit, false); err != nil {
			t.Fatal(err)
		}
	})
}

func TestImmunityRejectsLateProducerEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 0, "PG", map[string]string{message.PropertyCheckImmunityTimeInSeconds: "10"})
		e.clock.advance(11 * time.Second)
		if err := e.end(p, "PG", ResolutionCommit, false); !errors.Is(err, ErrImmunityExpired) {
			t.Fatalf("late producer commit: %v", err)
		}
		if err := e.end(p, "PG", ResolutionCommit, true); err != nil { // from a check: accepted
			t.Fatal(err)
		}
		// An immunity shorter than transactionTimeOut (6 s) is the limit itself (R4X-9).
		q := e.sendHalf("T", 0, "PG", map[string]string{message.PropertyCheckImmunityTimeInSeconds: "2"})
		e.clock.advance(3 * time.Second)
		if err := e.end(q, "PG", ResolutionCommit, false); !errors.Is(err, ErrImmunityExpired) {
			t.Fatalf("producer commit after a 2 s immunity: %v", err)
		}
	})
}

func TestConcurrentCommitsPutOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 0, "PG", nil)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- e.end(p, "PG", ResolutionCommit, true)
			}()
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrResolving):
			default:
				t.Fatalf("concurrent commit: %v", err)
			}
		}
		if ok == 0 {
			t.Fatal("no commit succeeded")
		}
		if got := e.queue("T", 0); len(got) != 1 {
			t.Fatalf("%d committed copies", len(got))
		}
	})
}

func TestMaxChecksMovesToCheckMaxTopic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, func(c *Config) { c.CheckMax = 2 })
		p := e.sendHalf("T", 3, "PG", nil)
		e.noProd = true // checks count even with no producer online, as in RocketMQ
		e.clock.advance(e.cfg.TransactionTimeout + time.Second)
		e.scan()
		e.clock.advance(e.cfg.CheckInterval)
		e.scan()
		if st := e.svc.Stats(); st.Checks != 2 || st.Discards != 0 {
			t.Fatalf("after 2 rounds: %+v", st)
		}
		e.clock.advance(e.cfg.CheckInterval)
		e.scan()
		got := e.queue(CheckMaxTopic, 0)
		if len(got) != 1 || got[0].UniqKey() != p.uniq || got[0].Property(message.PropertyRealTopic) != "T" {
			t.Fatalf("%s: %+v", CheckMaxTopic, got)
		}
		if st := e.svc.Stats(); st.Discards != 1 || st.Open != 0 {
			t.Fatalf("stats %+v", st)
		}
		e.clock.advance(10 * e.cfg.CheckInterval)
		e.scan()
		e.scan()
		if st := e.svc.Stats(); st.Checks != 2 || st.Discards != 1 {
			t.Fatalf("after discard: %+v", st)
		}
		if got := e.queue("T", 3); len(got) != 0 {
			t.Fatalf("discarded message visible: %d", len(got))
		}
		if err := e.end(p, "PG", ResolutionRollback, true); err != nil {
			t.Fatalf("rollback after discard: %v", err)
		}
		// A restart does not bring it back.
		e.crash()
		e.clock.advance(10 * e.cfg.CheckInterval)
		e.scan()
		if st := e.svc.Stats(); st.Open != 0 || st.Discards != 0 {
			t.Fatalf("after restart: %+v", st)
		}
		if got := e.queue("T", 3); len(got) != 0 {
			t.Fatalf("discarded message visible after restart: %d", len(got))
		}
	})
}

// TestCommitAfterDiscardDelivers (QA R11B-5): a producer that commits after the checker gave
// up on its half (a slow local transaction) still gets its message delivered, once, as on
// Apache, where the broker finds the half by its offset; a repeated commit puts nothing.
func TestCommitAfterDiscardDelivers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, func(c *Config) { c.CheckMax = 1 })
		p := e.sendHalf("T", 2, "PG", nil)
		e.noProd = true
		e.clock.advance(e.cfg.TransactionTimeout + time.Second)
		e.scan() // check 1
		e.clock.advance(e.cfg.CheckInterval)
		e.scan() // discard
		if st := e.svc.Stats(); st.Discards != 1 {
			t.Fatalf("not discarded: %+v", st)
		}
		for i := 0; i < 2; i++ {
			if err := e.end(p, "PG", ResolutionCommit, false); err != nil {
				t.Fatalf("commit %d after discard: %v", i+1, err)
			}
		}
		got := e.queue("T", 2)
		if len(got) != 1 || got[0].UniqKey() != p.uniq {
			t.Fatalf("committed copies after a late commit: %+v", got)
		}
		if st := e.svc.Stats(); st.Commits != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestRestartCommittedBeforeCrashDeliveredOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 0, "PG", nil)
		e.scan() // the scanner knows the half; the checkpoint lists it as open
		// Crash window: the committed message lands, the op record does not.
		e.fl.mu.Lock()
		e.fl.failOp = true
		e.fl.mu.Unlock()
		if err := e.end(p, "PG", ResolutionCommit, false); err != nil {
			t.Fatal(err)
		}
		e.scan() // the op append fails
		if ops := e.queue(OpTopic, 0); len(ops) != 0 {
			t.Fatalf("op written despite the fault: %d", len(ops))
		}
		e.crash()
		if st := e.svc.Stats(); st.Open != 1 {
			t.Fatalf("open after crash = %d, want 1 (the op is missing)", st.Open)
		}
		e.clock.advance(time.Hour)
		e.scan()
		if c := e.takeChecks(); len(c) != 0 {
			t.Fatalf("committed-before-crash half was checked back: %d", len(c))
		}
		if st := e.svc.Stats(); st.Recovered != 1 || st.Open != 0 {
			t.Fatalf("stats %+v", st)
		}
		if ops := e.queue(OpTopic, 0); len(ops) != 1 || ops[0].Property(PropertyOutcome) != "commit" {
			t.Fatalf("repaired op: %+v", ops)
		}
		// A late commit answer changes nothing.
		if err := e.end(p, "PG", ResolutionCommit, true); err != nil {
			t.Fatal(err)
		}
		if got := e.queue("T", 0); len(got) != 1 {
			t.Fatalf("delivered %d times", len(got))
		}
	})
}

func TestRestartCommitAnsweredBeforeVerification(t *testing.T) {
	// Same crash window, but the producer's check answer reaches the restarted broker before
	// the scanner verified the half: End itself must find the committed copy.
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 0, "PG", nil)
		e.fl.mu.Lock()
		e.fl.failOp = true
		e.fl.mu.Unlock()
		if err := e.end(p, "PG", ResolutionCommit, false); err != nil {
			t.Fatal(err)
		}
		e.crash()
		if err := e.end(p, "PG", ResolutionCommit, true); err != nil {
			t.Fatal(err)
		}
		if got := e.queue("T", 0); len(got) != 1 {
			t.Fatalf("delivered %d times", len(got))
		}
		if err := e.end(p, "PG", ResolutionRollback, true); !errors.Is(err, ErrAlreadyResolved) {
			t.Fatalf("rollback of a committed transaction: %v", err)
		}
	})
}

func TestAmbiguousCommitFailureNotDuplicated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 0, "PG", nil)
		e.fl.mu.Lock()
		e.fl.commitErr, e.fl.appended = errInjected, true // appended, but reported as failed
		e.fl.mu.Unlock()
		if err := e.end(p, "PG", ResolutionCommit, false); !errors.Is(err, errInjected) {
			t.Fatalf("commit: %v", err)
		}
		e.fl.mu.Lock()
		e.fl.commitErr = nil
		e.fl.mu.Unlock()
		settle(t, e.fl.Log)
		if err := e.end(p, "PG", ResolutionCommit, false); err != nil {
			t.Fatal(err)
		}
		if got := e.queue("T", 0); len(got) != 1 {
			t.Fatalf("delivered %d times", len(got))
		}
	})
}

func TestRestartPendingIsCheckedWithItsCount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, func(c *Config) { c.CheckMax = 2 })
		p := e.sendHalf("T", 0, "PG", nil)
		e.clock.advance(e.cfg.TransactionTimeout + time.Second)
		e.scan()
		if c := e.takeChecks(); len(c) != 1 {
			t.Fatalf("checks before crash: %d", len(c))
		}
		// A second half sent just before the crash, never seen by the scanner.
		q := e.sendHalf("T", 1, "PG", nil)
		e.crash()
		if st := e.svc.Stats(); st.Open != 2 {
			t.Fatalf("open after restart = %d", st.Open)
		}
		e.clock.advance(e.cfg.CheckInterval)
		e.scan() // verification round: no committed copies found
		e.scan()
		got := map[int64]bool{}
		for _, c := range e.takeChecks() {
			got[c.CommitLogOffset] = true
		}
		if !got[p.CommitLogOffset] || !got[q.CommitLogOffset] {
			t.Fatalf("checks after restart cover %v, want both halves", got)
		}
		// p was checked twice (once per incarnation): CheckMax=2 -> next due discards it.
		e.clock.advance(e.cfg.CheckInterval)
		e.scan()
		if dis := e.queue(CheckMaxTopic, 0); len(dis) != 1 || dis[0].UniqKey() != p.uniq {
			t.Fatalf("discarded: %+v", dis)
		}
		// q answers rollback.
		if err := e.end(q, "PG", ResolutionRollback, true); err != nil {
			t.Fatal(err)
		}
		if st := e.svc.Stats(); st.Open != 0 {
			t.Fatalf("open = %d", st.Open)
		}
	})
}

func TestBadCheckpointRescans(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 0, "PG", nil)
		e.scan()
		e.closer()
		e.closer = nil
		if err := os.WriteFile(filepath.Join(e.cfg.Dir, CheckpointFile), []byte("{not json"), 0o644); err != nil {
			t.Fatal(err)
		}
		e.start()
		if st := e.svc.Stats(); st.Open != 1 {
			t.Fatalf("open after rescan = %d", st.Open)
		}
		if err := e.end(p, "PG", ResolutionCommit, true); err != nil {
			t.Fatal(err)
		}
	})
}

func TestManyTransactionsMixed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		const n = 60
		var ps []prepared
		for i := range n {
			ps = append(ps, e.sendHalf("T", int32(i%4), "PG", nil))
		}
		var wg sync.WaitGroup
		for i, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := []Resolution{ResolutionCommit, ResolutionRollback, ResolutionUnknown}[i%3]
				if err := e.end(p, "PG", r, false); err != nil {
					t.Errorf("end %d: %v", i, err)
				}
			}()
			if i%7 == 0 {
				e.scan() // the scanner runs concurrently with END_TRANSACTIONs
			}
		}
		wg.Wait()
		e.scan()
		total := 0
		for q := int32(0); q < 4; q++ {
			total += len(e.queue("T", q))
		}
		if total != n/3 {
			t.Fatalf("visible %d, want %d", total, n/3)
		}
		if st := e.svc.Stats(); st.Open != n/3 {
			t.Fatalf("open %d, want %d", st.Open, n/3)
		}
		e.crash()
		if st := e.svc.Stats(); st.Open != n/3 {
			t.Fatalf("open after restart %d, want %d", st.Open, n/3)
		}
		e.clock.advance(time.Minute)
		e.scan()
		e.scan()
		if c := e.takeChecks(); len(c) != n/3 {
			t.Fatalf("checks after restart: %d, want %d", len(c), n/3)
		}
	})
}

func TestRunStopsOnCancel(t *testing.T) {
	e := newEnv(t, memBackend(), func(c *Config) { c.ScanInterval = time.Millisecond })
	e.sendHalf("T", 0, "PG", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	deadline := time.After(5 * time.Second)
	for e.svc.Stats().Open != 1 {
		select {
		case <-deadline:
			t.Fatal("scanner never read the half queue")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, CheckpointFile)); err != nil {
		t.Fatalf("no checkpoint after Run: %v", err)
	}
}

func TestDuplicateHalfFromSendRetryCommittedOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		uniq := message.NewUniqID()
		// The producer's first attempt timed out but was stored; the retry stored it again.
		first := e.sendHalf("T", 0, "PG", map[string]string{message.PropertyUniqKey: uniq})
		second := e.sendHalf("T", 1, "PG", map[string]string{message.PropertyUniqKey: uniq})
		if err := e.end(second, "PG", ResolutionCommit, false); err != nil {
			t.Fatal(err)
		}
		e.clock.advance(e.cfg.TransactionTimeout + time.Second)
		e.scan()
		c := e.takeChecks()
		if len(c) != 1 || c[0].CommitLogOffset != first.CommitLogOffset {
			t.Fatalf("checks %+v, want one for the orphan", c)
		}
		// The producer looks its transaction up by id and answers commit.
		if err := e.end(first, "PG", ResolutionCommit, true); err != nil {
			t.Fatal(err)
		}
		n := len(e.queue("T", 0)) + len(e.queue("T", 1))
		if n != 1 {
			t.Fatalf("message delivered %d times", n)
		}
		if st := e.svc.Stats(); st.Open != 0 || st.Commits != 1 || st.Recovered != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// timerLog routes committed messages to the timer topic, as the broker's timer hook does for
// a committed message carrying a delay.
type timerLog struct{ *faultLog }

func (l timerLog) PutCommitted(ctx context.Context, m *message.Ext) (Placement, error) {
	c := *m
	c.Properties = maps.Clone(m.Properties)
	c.SetProperty(message.PropertyRealTopic, m.Topic)
	c.SetProperty(message.PropertyRealQueueID, strconv.Itoa(int(m.QueueID)))
	c.Topic, c.QueueID = message.TopicTimer, 0
	return l.faultLog.PutCommitted(ctx, &c)
}

func TestRestartCommittedDelayedMessageNotDuplicated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, nil)
		p := e.sendHalf("T", 0, "PG", map[string]string{message.PropertyDelayLevel: "3"})
		// Swap in a service whose commits land in the timer topic.
		svc, err := New(e.cfg, timerLog{e.fl}, CheckSenderFunc(e.send), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.svc = svc
		e.fl.mu.Lock()
		e.fl.failOp = true
		e.fl.mu.Unlock()
		if err := e.end(p, "PG", ResolutionCommit, false); err != nil {
			t.Fatal(err)
		}
		if n := len(e.queue(message.TopicTimer, 0)); n != 1 {
			t.Fatalf("timer topic holds %d", n)
		}
		e.crash()
		e.clock.advance(time.Hour)
		e.scan()
		if c := e.takeChecks(); len(c) != 0 {
			t.Fatalf("committed delayed message checked back: %d", len(c))
		}
		if st := e.svc.Stats(); st.Recovered != 1 || st.Open != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestRunWritesPendingOpsOnShutdown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, func(c *Config) { c.ScanInterval = time.Hour })
		ps := []prepared{e.sendHalf("T", 0, "PG", nil), e.sendHalf("T", 0, "PG", nil), e.sendHalf("T", 0, "PG", nil)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.svc.Run(ctx) }()
		for i, p := range ps {
			if err := e.end(p, "PG", []Resolution{ResolutionCommit, ResolutionRollback, ResolutionCommit}[i], false); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		ops := e.queue(OpTopic, 0)
		if len(ops) != 2 { // one record per outcome
			t.Fatalf("op records on shutdown: %d", len(ops))
		}
		e.crash()
		if st := e.svc.Stats(); st.Open != 0 {
			t.Fatalf("open after clean shutdown: %d", st.Open)
		}
	})
}

func TestHalfRemovedByRetentionIsForgotten(t *testing.T) {
	e := newEnv(t, memBackend(), nil)
	p := e.sendHalf("T", 0, "PG", nil)
	e.scan()
	e.fl.Log.(*memLog).remove(p.CommitLogOffset)
	e.clock.advance(time.Minute)
	e.scan()
	if c := e.takeChecks(); len(c) != 0 {
		t.Fatalf("checks for a removed half: %d", len(c))
	}
	if st := e.svc.Stats(); st.Open != 0 {
		t.Fatalf("open = %d", st.Open)
	}
	if err := e.end(p, "PG", ResolutionCommit, true); !errors.Is(err, ErrHalfNotFound) {
		t.Fatalf("commit of a removed half: %v", err)
	}
	e.crash()
	if st := e.svc.Stats(); st.Open != 0 {
		t.Fatalf("open after restart = %d", st.Open)
	}
}
