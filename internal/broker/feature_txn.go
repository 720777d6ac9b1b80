package broker

// Transactional messages: the adapter between the broker and internal/broker/txn.
//
//   - a PutHook takes over prepared messages (sysflag TransactionPrepared or TRAN_MSG=true,
//     see txn.IsPrepared) and stores them as half records in RMQ_SYS_TRANS_HALF_TOPIC;
//   - END_TRANSACTION (37) resolves them (txn.Service.End);
//   - the check-back scanner (txn.Service.Run) runs from featureStarts and delivers
//     CHECK_TRANSACTION_STATE through b.Clients.ProducerChannels (remoting producers that sent
//     HEART_BEAT with a producerDataSet, and in-process CheckSinks such as the local-mode
//     proxy registered with Clients.RegisterProducerSink).
//
// Recovery (txn.Service.Recover) runs in the featureInit, i.e. before the broker serves.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker/txn"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

func init() {
	featureInits = append(featureInits, initTxn)
	featureStarts = append(featureStarts, startTxn)
}

// txnServices holds each broker's transaction service (feature files add no Broker fields).
var txnServices sync.Map // *Broker -> *txn.Service

// Txn returns the broker's transaction service (nil before New finished).
func (b *Broker) Txn() *txn.Service {
	if v, ok := txnServices.Load(b); ok {
		return v.(*txn.Service)
	}
	return nil
}

// txnConfig maps broker.conf keys onto the service's config.
func (b *Broker) txnConfig() txn.Config {
	c := txn.DefaultConfig()
	c.Dir = filepath.Join(b.Cfg.DataDir, configDirName)
	c.TransactionTimeout = b.Cfg.TransactionTimeOut
	c.CheckInterval = b.Cfg.TransactionCheckInterval
	c.CheckMax = b.Cfg.TransactionCheckMax
	c.ScanInterval = min(c.ScanInterval, c.CheckInterval)
	c.OnEnd = func(realTopic string, o txn.Outcome, born time.Time) { // rocketmq_commit/rollback_messages_total
		if o == txn.OutcomeCommit || o == txn.OutcomeRollback {
			b.mnode.TransactionEnded(realTopic, o == txn.OutcomeCommit, time.Since(born))
		}
	}
	return c
}

func initTxn(b *Broker) error {
	log := &txn.StoreLog{
		Store:     b.Store,
		Direct:    b.PutMessageDirect,
		Full:      b.PutMessage,
		Recovered: b.Store.Stats().MaxPhysicalOffset,
	}
	svc, err := txn.New(b.txnConfig(), log, &txnSender{b: b}, b.Log)
	if err != nil {
		return fmt.Errorf("txn: %w", err)
	}
	if err := svc.Recover(b.Context()); err != nil {
		return fmt.Errorf("txn: recover: %w", err)
	}
	// RocketMQ's TopicConfigManager creates the transaction system topics at startup.
	for _, t := range []string{txn.HalfTopic, txn.OpTopic, txn.CheckMaxTopic} {
		if _, _, err := b.Topics.Ensure(NewTopicConfig(t, 1)); err != nil {
			return fmt.Errorf("txn: create %s: %w", t, err)
		}
	}
	txnServices.Store(b, svc)
	b.mnode.OnHalfMessages(func(emit func(metrics.TopicCount)) { // rocketmq_half_messages
		for topic, n := range svc.OpenByTopic() {
			emit(metrics.TopicCount{Topic: topic, Count: int64(n)})
		}
	})
	b.AddPutHook(func(ctx context.Context, m *message.Ext) (store.PutResult, bool, error) {
		if !txn.IsPrepared(m) {
			return store.PutResult{}, false, nil
		}
		res, err := b.PutMessageDirect(ctx, txn.ToHalf(m))
		return res, true, err
	})
	b.Handle(remoting.EndTransaction, b.handleEndTransaction)
	return nil
}

func startTxn(ctx context.Context, b *Broker) error {
	svc := b.Txn()
	if svc == nil {
		return errors.New("txn: service missing")
	}
	b.Go(func() {
		defer txnServices.Delete(b)
		if err := svc.Run(ctx); err != nil {
			b.Log.Warn("transaction scanner stopped", "err", err)
		}
	})
	return nil
}

// EndTransaction resolves a half message (what END_TRANSACTION does; the local-mode proxy
// calls it directly). Errors are *CodedError values ready for ResponseFor.
func (b *Broker) EndTransaction(ctx context.Context, req *txn.EndRequest) error {
	svc := b.Txn()
	if svc == nil {
		return Coded(remoting.ServiceNotAvailable, "transaction service not running")
	}
	return txnError(svc.End(ctx, req))
}

// handleEndTransaction serves END_TRANSACTION (37). go2 sends it oneway without setting the
// oneway flag, so the broker answers anyway; a request flagged oneway gets no answer (the
// remoting layer drops it).
func (b *Broker) handleEndTransaction(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	r, err := parseEndTransaction(req)
	if err != nil {
		return errorResponse(err)
	}
	if err := b.EndTransaction(ctx, r); err != nil {
		code, remark := ResponseFor(err)
		if code == remoting.SystemError || code == remoting.TransactionFailed {
			b.Log.Warn("END_TRANSACTION refused", "from", remoteAddr(c), "group", r.ProducerGroup,
				"commitLogOffset", r.CommitLogOffset, "resolution", r.Resolution, "err", err)
		}
		return remoting.NewResponse(code, remark)
	}
	return remoting.NewResponse(remoting.Success, "")
}

// parseEndTransaction decodes the EndTransactionRequestHeader ext fields (reference B.2):
// producerGroup, tranStateTableOffset, commitLogOffset, commitOrRollback (0/8/12),
// fromTransactionCheck, msgId, transactionId.
func parseEndTransaction(req *remoting.Command) (*txn.EndRequest, error) {
	group, err := req.ExtRequired("producerGroup")
	if err != nil {
		return nil, err
	}
	tso, err := req.ExtInt64("tranStateTableOffset")
	if err != nil {
		return nil, err
	}
	clo, err := req.ExtInt64("commitLogOffset")
	if err != nil {
		return nil, err
	}
	cr, err := req.ExtInt32("commitOrRollback")
	if err != nil {
		return nil, err
	}
	return &txn.EndRequest{
		ProducerGroup:        group,
		TranStateTableOffset: tso,
		CommitLogOffset:      clo,
		Resolution:           txn.Resolution(cr),
		FromCheck:            req.ExtBoolOr("fromTransactionCheck", false),
		MsgID:                req.ExtString("msgId"),
		TransactionID:        req.ExtString("transactionId"),
	}, nil
}

// txnError maps txn's errors to RocketMQ codes and remarks (EndTransactionProcessor's
// remarks where it has one); other errors (store failures) go through errorTable.
func txnError(err error) error {
	if err == nil {
		return nil
	}
	rows := []struct {
		err    error
		code   int32
		remark string
	}{
		{txn.ErrHalfNotFound, remoting.SystemError, "Find prepared transaction message failed"},
		{txn.ErrProducerGroupMismatch, remoting.SystemError, "The producer group wrong"},
		{txn.ErrOffsetMismatch, remoting.SystemError, "The transaction state table offset wrong"},
		{txn.ErrTransactionIDMismatch, remoting.SystemError, "The transaction id wrong"},
		{txn.ErrAlreadyResolved, remoting.TransactionFailed, ""},
		{txn.ErrResolving, remoting.SystemBusy, ""},
		{txn.ErrNotReady, remoting.SystemBusy, ""},
		{txn.ErrImmunityExpired, remoting.IllegalOperation, ""},
		{txn.ErrBadResolution, remoting.InvalidParameter, ""},
	}
	for _, r := range rows {
		if errors.Is(err, r.err) {
			// Apache's fixed remark alone where it has one: the detail (offsets, names) is for
			// the broker's log (handleEndTransaction logs it), and the chain repeated the text
			// (QA R10S-3).
			remark := r.remark
			if remark == "" {
				remark = err.Error()
			}
			return &txnCodedError{coded: &CodedError{Code: r.code, Remark: remark}, cause: err}
		}
	}
	return err
}

// txnCodedError carries the response code (errors.As *CodedError) and keeps the txn sentinel
// visible to errors.Is (the local-mode proxy maps it).
type txnCodedError struct {
	coded *CodedError
	cause error
}

func (e *txnCodedError) Error() string   { return e.coded.Remark }
func (e *txnCodedError) Unwrap() []error { return []error{e.coded, e.cause} }

// txnSender delivers check-backs to one live producer of the group, rotating among them and
// falling back to the next when one fails.
type txnSender struct {
	b  *Broker
	rr atomic.Uint64
}

func (s *txnSender) SendCheck(ctx context.Context, c *txn.Check) error {
	chans := s.b.Clients.ProducerChannels(c.ProducerGroup)
	if len(chans) == 0 {
		return fmt.Errorf("%w %s", txn.ErrNoProducer, c.ProducerGroup)
	}
	req := CheckRequest{
		TranStateTableOffset: c.TranStateTableOffset,
		CommitLogOffset:      c.CommitLogOffset,
		MsgID:                c.MsgID,
		TransactionID:        c.TransactionID,
		OffsetMsgID:          c.OffsetMsgID,
		Message:              c.Message,
	}
	start := int(s.rr.Add(1))
	var errs []error
	for i := range chans {
		p := chans[(start+i)%len(chans)]
		err := p.CheckTransactionState(ctx, req)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("producer %s: %w", p.ClientID, err))
	}
	return errors.Join(errs...)
}
