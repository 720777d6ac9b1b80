package broker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker/txn"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func txnTestConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.TransactionTimeOut = 300 * time.Millisecond
	cfg.TransactionCheckInterval = 400 * time.Millisecond
	cfg.TransactionCheckMax = 3
	return cfg
}

type sentHalf struct {
	uniq            string
	commitLogOffset int64
	queueOffset     int64
	offsetMsgID     string
}

// sendHalf sends a prepared message the way go2's transactional producer does.
func sendHalf(t *testing.T, tb *testBroker, topic string, qid int32, group, body string) sentHalf {
	t.Helper()
	resp := tb.sendV2(topic, qid, body, map[string]string{
		message.PropertyTransactionPrepared: "true",
		message.PropertyProducerGroup:       group,
		message.PropertyUniqKey:             message.NewUniqID(),
	})
	if resp.Code != remoting.Success {
		t.Fatalf("send half: %d %q", resp.Code, resp.Remark)
	}
	_, off, err := message.ParseOffsetMsgID(resp.ExtString("msgId"))
	if err != nil {
		t.Fatalf("msgId %q: %v", resp.ExtString("msgId"), err)
	}
	qo, _ := strconv.ParseInt(resp.ExtString("queueOffset"), 10, 64)
	h := sentHalf{uniq: resp.ExtString("transactionId"), commitLogOffset: off, queueOffset: qo, offsetMsgID: resp.ExtString("msgId")}
	if h.uniq == "" {
		t.Fatal("send response without transactionId")
	}
	tb.settle()
	return h
}

func endTxn(tb *testBroker, h sentHalf, group string, cr int, fromCheck bool) *remoting.Command {
	return tb.invoke(remoting.EndTransaction, map[string]string{
		"producerGroup": group, "tranStateTableOffset": strconv.FormatInt(h.queueOffset, 10),
		"commitLogOffset": strconv.FormatInt(h.commitLogOffset, 10), "commitOrRollback": strconv.Itoa(cr),
		"fromTransactionCheck": strconv.FormatBool(fromCheck), "msgId": h.uniq, "transactionId": h.uniq,
	}, nil)
}

func pullAll(t *testing.T, tb *testBroker, topic string, qid int32) []*message.Ext {
	t.Helper()
	tb.settle()
	resp := tb.pull("CG", topic, qid, 0, 32, 0, 0, "*")
	if resp.Code != remoting.Success {
		return nil
	}
	return decodeBody(t, resp)
}

func TestTxnCommitRollbackOverRemoting(t *testing.T) {
	tb := startBroker(t, txnTestConfig(t))
	tb.mustSend("TT", 0, "create", nil) // topic exists
	base := len(pullAll(t, tb, "TT", 1))

	c := sendHalf(t, tb, "TT", 1, "PG", "commit-me")
	r := sendHalf(t, tb, "TT", 1, "PG", "roll-me-back")
	if got := len(pullAll(t, tb, "TT", 1)); got != base {
		t.Fatalf("half messages visible: %d", got-base)
	}
	// Apache's remark alone (QA R10S-3: the detail was appended and repeated the text).
	if resp := endTxn(tb, c, "WRONG", 8, false); resp.Code != remoting.SystemError || resp.Remark != "The producer group wrong" {
		t.Fatalf("wrong group: %d %q", resp.Code, resp.Remark)
	}
	bad := c
	bad.queueOffset++
	if resp := endTxn(tb, bad, "PG", 8, false); resp.Code != remoting.SystemError {
		t.Fatalf("wrong tranStateTableOffset: %d %q", resp.Code, resp.Remark)
	}
	if resp := endTxn(tb, c, "PG", 8, false); resp.Code != remoting.Success {
		t.Fatalf("commit: %d %q", resp.Code, resp.Remark)
	}
	if resp := endTxn(tb, r, "PG", 12, false); resp.Code != remoting.Success {
		t.Fatalf("rollback: %d %q", resp.Code, resp.Remark)
	}
	if resp := endTxn(tb, c, "PG", 12, true); resp.Code != remoting.TransactionFailed {
		t.Fatalf("rollback after commit: %d %q", resp.Code, resp.Remark)
	}
	if resp := endTxn(tb, c, "PG", 8, true); resp.Code != remoting.Success {
		t.Fatalf("duplicate commit: %d %q", resp.Code, resp.Remark)
	}
	msgs := pullAll(t, tb, "TT", 1)
	if len(msgs) != 1 {
		t.Fatalf("visible after commit+rollback: %d", len(msgs))
	}
	m := msgs[0]
	if string(m.Body) != "commit-me" || m.UniqKey() != c.uniq || m.Property(message.PropertyTransactionPrepared) != "true" ||
		message.TransactionType(m.SysFlag) != message.SysFlagTransactionCommit || m.PreparedTransactionOffset != c.commitLogOffset {
		t.Fatalf("committed message %+v", m)
	}
	// A oneway-flagged END_TRANSACTION is processed and not answered.
	u := sendHalf(t, tb, "TT", 1, "PG", "oneway")
	req := remoting.NewRequest(remoting.EndTransaction, map[string]string{
		"producerGroup": "PG", "tranStateTableOffset": strconv.FormatInt(u.queueOffset, 10),
		"commitLogOffset": strconv.FormatInt(u.commitLogOffset, 10), "commitOrRollback": "8",
		"fromTransactionCheck": "false",
	}, nil)
	req.MarkOneway()
	if err := tb.cli.InvokeOneway(context.Background(), tb.ListenAddr().String(), req); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "oneway commit visible", func() bool { return len(pullAll(t, tb, "TT", 1)) == 2 })
	if st := tb.Txn().Stats(); st.Commits != 2 || st.Rollbacks != 1 || st.Open != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Clients may not send to the half topic themselves.
	if resp := tb.sendV2(txn.HalfTopic, 0, "x", nil); resp.Code != remoting.NoPermission {
		t.Fatalf("send to half topic: %d", resp.Code)
	}
}

// checkRecorder is an in-process producer (what the local-mode proxy registers).
type checkRecorder struct {
	mu   sync.Mutex
	reqs []CheckRequest
}

func (r *checkRecorder) CheckTransaction(_ context.Context, req CheckRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return nil
}

func (r *checkRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func TestTxnCheckBackToLocalSinkAndCheckMax(t *testing.T) {
	tb := startBroker(t, txnTestConfig(t))
	tb.mustSend("TT", 0, "create", nil)
	sink := &checkRecorder{}
	tb.Clients.RegisterProducerSink("PG", ClientChannel{ClientID: "local-proxy"}, sink)

	h := sendHalf(t, tb, "TT", 2, "PG", "unknown")
	if resp := endTxn(tb, h, "PG", 0, false); resp.Code != remoting.Success {
		t.Fatalf("unknown: %d %q", resp.Code, resp.Remark)
	}
	waitFor(t, 10*time.Second, "first check-back", func() bool { return sink.count() >= 1 })
	sink.mu.Lock()
	req := sink.reqs[0]
	sink.mu.Unlock()
	if req.CommitLogOffset != h.commitLogOffset || req.TranStateTableOffset != h.queueOffset || req.TransactionID != h.uniq ||
		req.MsgID != h.uniq || req.OffsetMsgID != h.offsetMsgID {
		t.Fatalf("check request %+v, sent %+v", req, h)
	}
	if m := req.Message; m.Topic != "TT" || m.QueueID != 2 || m.Property(message.PropertyProducerGroup) != "PG" || string(m.Body) != "unknown" {
		t.Fatalf("check message %+v", m)
	}
	// Nobody answers: after transactionCheckMax (3) checks it moves to TRANS_CHECK_MAX_TIME_TOPIC.
	waitFor(t, 15*time.Second, "discard", func() bool { return len(pullAll(t, tb, txn.CheckMaxTopic, 0)) == 1 })
	if n := sink.count(); n != 3 {
		t.Fatalf("checks sent = %d, want 3", n)
	}
	if got := pullAll(t, tb, "TT", 2); len(got) != 0 {
		t.Fatalf("discarded message visible: %d", len(got))
	}
}

// TestTxnCheckBackOverRemotingResolvesCommit runs with the message index on and off: the
// crash-window lookup of committed copies must not block a commit when the index is disabled
// (QA R10Q-8).
func TestTxnCheckBackOverRemotingResolvesCommit(t *testing.T) {
	for _, index := range []bool{true, false} {
		t.Run(map[bool]string{true: "index", false: "no-index"}[index], func(t *testing.T) {
			cfg := txnTestConfig(t)
			cfg.MessageIndexEnable = index
			testTxnCheckBackResolvesCommit(t, cfg)
		})
	}
}

func testTxnCheckBackResolvesCommit(t *testing.T, cfg Config) {
	tb := startBroker(t, cfg)
	tb.mustSend("TT", 0, "create", nil)
	addr := tb.ListenAddr().String()

	// A remoting producer: heartbeats as group PG and answers checks with a commit, as go2
	// does (oneway END_TRANSACTION with fromTransactionCheck=true).
	prod := remoting.NewClient(remoting.DefaultClientConfig(), testLogger(t))
	defer prod.Close()
	checks := make(chan *remoting.Command, 8)
	prod.Handle(remoting.CheckTransactionState, func(_ context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
		checks <- req
		return nil
	})
	hb := remoting.NewRequest(remoting.HeartBeat, nil, []byte(`{"clientID":"p1","producerDataSet":[{"groupName":"PG"}],"consumerDataSet":[]}`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := prod.Invoke(ctx, addr, hb); err != nil || resp.Code != remoting.Success {
		t.Fatalf("heartbeat: %v %v", resp, err)
	}

	h := sendHalf(t, tb, "TT", 3, "PG", "checked")
	var req *remoting.Command
	select {
	case req = <-checks:
	case <-ctx.Done():
		t.Fatal("no CHECK_TRANSACTION_STATE received")
	}
	if req.ExtString("commitLogOffset") != strconv.FormatInt(h.commitLogOffset, 10) ||
		req.ExtString("tranStateTableOffset") != strconv.FormatInt(h.queueOffset, 10) ||
		req.ExtString("transactionId") != h.uniq || req.ExtString("msgId") != h.uniq || req.ExtString("offsetMsgId") != h.offsetMsgID {
		t.Fatalf("check ext %v, sent %+v", req.ExtFields, h)
	}
	msgs, err := message.DecodeRecords(req.Body)
	if err != nil || len(msgs) != 1 || msgs[0].Topic != "TT" || msgs[0].Property(message.PropertyProducerGroup) != "PG" {
		t.Fatalf("check body: %v %+v", err, msgs)
	}
	end := remoting.NewRequest(remoting.EndTransaction, map[string]string{
		"producerGroup": "PG", "tranStateTableOffset": req.ExtString("tranStateTableOffset"),
		"commitLogOffset": req.ExtString("commitLogOffset"), "commitOrRollback": "8",
		"fromTransactionCheck": "true", "msgId": req.ExtString("msgId"), "transactionId": req.ExtString("transactionId"),
	}, nil)
	if err := prod.InvokeOneway(ctx, addr, end); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "commit from check visible", func() bool { return len(pullAll(t, tb, "TT", 3)) == 1 })
}

func TestTxnRestartKeepsPendingAndCommitted(t *testing.T) {
	cfg := txnTestConfig(t)
	cfg.TransactionTimeOut = time.Hour // no check-backs before the restart
	tb := startBroker(t, cfg)
	tb.mustSend("TT", 0, "create", nil)
	c := sendHalf(t, tb, "TT", 0, "PG", "committed")
	p := sendHalf(t, tb, "TT", 0, "PG", "pending")
	if resp := endTxn(tb, c, "PG", 8, false); resp.Code != remoting.Success {
		t.Fatalf("commit: %d %q", resp.Code, resp.Remark)
	}
	tb.stop()

	cfg.TransactionTimeOut = 300 * time.Millisecond
	tb2 := startBroker(t, cfg)
	sink := &checkRecorder{}
	tb2.Clients.RegisterProducerSink("PG", ClientChannel{ClientID: "local"}, sink)
	waitFor(t, 10*time.Second, "pending checked after restart", func() bool { return sink.count() >= 1 })
	sink.mu.Lock()
	for _, r := range sink.reqs {
		if r.CommitLogOffset != p.commitLogOffset {
			t.Errorf("check for %d, only %d is pending", r.CommitLogOffset, p.commitLogOffset)
		}
	}
	sink.mu.Unlock()
	if resp := endTxn(tb2, p, "PG", 8, true); resp.Code != remoting.Success {
		t.Fatalf("commit after restart: %d %q", resp.Code, resp.Remark)
	}
	msgs := pullAll(t, tb2, "TT", 0)
	bodies := map[string]int{}
	for _, m := range msgs {
		bodies[string(m.Body)]++
	}
	if bodies["committed"] != 1 || bodies["pending"] != 1 {
		t.Fatalf("after restart: %v", bodies)
	}
	if err := tb2.EndTransaction(context.Background(), &txn.EndRequest{ProducerGroup: "PG", TranStateTableOffset: c.queueOffset,
		CommitLogOffset: c.commitLogOffset, Resolution: txn.ResolutionRollback, FromCheck: true}); !errors.Is(err, txn.ErrAlreadyResolved) {
		t.Fatalf("rollback of committed via Go API: %v", err)
	}
}

func TestTxnCommittedDelayedMessageGoesThroughTimer(t *testing.T) {
	tb := startBroker(t, txnTestConfig(t))
	tb.mustSend("TT", 0, "create", nil)
	resp := tb.sendV2("TT", 1, "delayed", map[string]string{
		message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "PG",
		message.PropertyDelayLevel: "1", // 1s
	})
	if resp.Code != remoting.Success {
		t.Fatalf("send: %d %q", resp.Code, resp.Remark)
	}
	_, off, _ := message.ParseOffsetMsgID(resp.ExtString("msgId"))
	qo, _ := strconv.ParseInt(resp.ExtString("queueOffset"), 10, 64)
	h := sentHalf{uniq: resp.ExtString("transactionId"), commitLogOffset: off, queueOffset: qo}
	tb.settle()
	if got := pullAll(t, tb, txn.HalfTopic, 0); len(got) != 1 {
		t.Fatalf("half topic holds %d (the timer must not take a prepared message)", len(got))
	}
	start := time.Now()
	if resp := endTxn(tb, h, "PG", 8, false); resp.Code != remoting.Success {
		t.Fatalf("commit: %d %q", resp.Code, resp.Remark)
	}
	if got := pullAll(t, tb, "TT", 1); len(got) != 0 {
		t.Fatalf("delayed commit visible at once: %d", len(got))
	}
	waitFor(t, 15*time.Second, "delayed commit delivered", func() bool { return len(pullAll(t, tb, "TT", 1)) == 1 })
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("delivered after %v, before its 1s delay", d)
	}
	// Exactly one timer record was written (a duplicate commit would have written two).
	if timers := pullAll(t, tb, message.TopicTimer, 0); len(timers) != 1 {
		t.Fatalf("timer records: %d", len(timers))
	}
	got := pullAll(t, tb, "TT", 1)
	if len(got) != 1 || got[0].UniqKey() != h.uniq || string(got[0].Body) != "delayed" {
		t.Fatalf("delivered %d, %+v", len(got), got)
	}
}
