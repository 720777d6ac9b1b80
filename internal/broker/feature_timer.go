package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker/timer"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// Timer (delay) messages: TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS and the 4.x
// DELAY levels (docs/timer.md). A put hook moves such messages to the timer topic; the
// timer.Service re-puts them to their real topic when due through PutMessageDirect.

func init() {
	featureInits = append(featureInits, initTimer)
	featureStarts = append(featureStarts, startTimer)
}

// timerDirName is the timer state directory inside the broker's data dir.
const timerDirName = "timer"

// timerFeature is the broker's timer service and its lifecycle state.
type timerFeature struct {
	svc *timer.Service

	levels atomic.Pointer[timerLevels] // parsed messageDelayLevel of the live config

	mu      sync.Mutex
	closed  bool          // the broker is closing; Run must not start
	started bool          // Run was started
	runDone chan struct{} // closed when Run returned
}

// timerLevels caches the parse of one messageDelayLevel string.
type timerLevels struct {
	src    string
	levels timer.Levels
}

// levelsFor returns the parsed levels of s (validated by Config.Validate and
// UPDATE_BROKER_CONFIG; an unparsable value keeps the previous table).
func (f *timerFeature) levelsFor(s string) timer.Levels {
	if c := f.levels.Load(); c != nil && c.src == s {
		return c.levels
	}
	l, err := timer.ParseLevels(s)
	if err != nil {
		if c := f.levels.Load(); c != nil {
			return c.levels
		}
		l, _ = timer.ParseLevels(timer.DefaultDelayLevels)
	}
	f.levels.Store(&timerLevels{src: s, levels: l})
	return l
}

// timerFeatures maps each Broker to its timer feature (the Broker struct belongs to the core).
var timerFeatures sync.Map // *Broker -> *timerFeature

// TimerService returns the broker's timer service (nil before New finished).
func (b *Broker) TimerService() *timer.Service {
	if f, ok := timerFeatures.Load(b); ok {
		return f.(*timerFeature).svc
	}
	return nil
}

// timerConfig derives the timer configuration from the broker's.
func (b *Broker) timerConfig() timer.Config {
	cfg := timer.DefaultConfig()
	cfg.Dir = filepath.Join(b.Cfg.DataDir, timerDirName)
	cfg.MaxDelay = time.Duration(b.Cfg.TimerMaxDelaySec) * time.Second
	cfg.DelayLevels = b.Cfg.MessageDelayLevel
	return cfg
}

func initTimer(b *Broker) error {
	if _, _, err := b.Topics.Ensure(NewTopicConfig(timer.Topic, 1)); err != nil {
		return fmt.Errorf("timer: %w", err)
	}
	queueCount := func(topic string) int {
		if tc, ok := b.Topics.Get(topic); ok {
			return int(tc.WriteQueueNums)
		}
		return 0
	}
	// Due messages are re-put without hooks (PutMessageDirect's path), a chunk per append.
	deliver := func(ctx context.Context, ms []*message.Ext) error {
		for _, m := range ms {
			if !m.StoreHost.IsValid() {
				m.StoreHost = b.StoreHost()
			}
		}
		_, err := b.Store.PutBatch(ctx, ms)
		if err == nil || errors.Is(err, store.ErrFlushTimeout) {
			for _, m := range ms { // rocketmq_timer_dequeue_total
				b.mnode.TimerDequeued(m.Topic, 1)
			}
		}
		if errors.Is(err, store.ErrFlushTimeout) {
			return nil // appended; retrying would deliver it twice
		}
		return err
	}
	src := timer.StoreSource(b.Store, b.Cfg.MappedFileSizeCommitLog)
	svc, err := timer.New(b.timerConfig(), src, deliver, queueCount, b.Log)
	if err != nil {
		return fmt.Errorf("timer: %w", err)
	}
	f := &timerFeature{svc: svc, runDone: make(chan struct{})}
	b.mnode.OnTimingMessages(func(emit func(metrics.TopicCount)) { // rocketmq_timing_messages
		svc.PendingByTopic(func(topic string, n int64) { emit(metrics.TopicCount{Topic: topic, Count: n}) })
	})
	b.mnode.OnTimer(func() metrics.TimerStat { // rocketmq_timer_{enqueue_lag,enqueue_latency,dequeue_latency}
		st, now := svc.Stats(), time.Now()
		var out metrics.TimerStat
		if lag := b.Store.MaxOffset(timer.Topic, 0) - st.IngestOffset; lag > 0 {
			out.EnqueueLag = lag
			if ts, err := b.Store.MessageStoreTime(timer.Topic, 0, st.IngestOffset); err == nil {
				out.EnqueueLatency = max(now.Sub(time.UnixMilli(ts)), 0)
			}
		}
		if st.OldestDue > 0 {
			out.DequeueLatency = max(now.Sub(time.UnixMilli(st.OldestDue)), 0)
		}
		return out
	})
	timerFeatures.Store(b, f)
	b.Store.OnDispatch(func(ev store.DispatchEvent) {
		if ev.Topic == timer.Topic {
			svc.Notify()
		}
	})
	b.AddPutHook(b.timerPutHook)
	b.Handle(remoting.RecallMessage, b.handleRecallMessage)
	// Closed with the broker, after Run's final checkpoint (the store closes after b.Go
	// goroutines end), and also when Run is never called.
	b.Go(func() {
		<-b.Context().Done()
		f.mu.Lock()
		f.closed = true
		started := f.started
		f.mu.Unlock()
		if started {
			<-f.runDone
		}
		if err := svc.Close(); err != nil {
			b.Log.Warn("timer: close", "err", err)
		}
		timerFeatures.Delete(b)
	})
	return nil
}

func startTimer(ctx context.Context, b *Broker) error {
	v, ok := timerFeatures.Load(b)
	if !ok {
		return errors.New("timer: not initialised")
	}
	f := v.(*timerFeature)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.started = true
	b.Go(func() {
		defer close(f.runDone)
		if err := f.svc.Run(ctx); err != nil {
			b.Log.Error("timer: final checkpoint", "err", err)
		}
	})
	return nil
}

// timerPutHook takes over messages that must wait: it stores a copy rewritten into a timer
// record (m itself is left as the caller gave it). Illegal timer properties fail the put with
// MESSAGE_ILLEGAL and RocketMQ's remark; errors.Is(err, timer.ErrIllegal) stays true for the
// local-mode proxy (ILLEGAL_DELIVERY_TIME).
func (b *Broker) timerPutHook(ctx context.Context, m *message.Ext) (store.PutResult, bool, error) {
	f, ok := timerFeatures.Load(b)
	if !ok {
		return store.PutResult{}, false, nil
	}
	if !timer.HasTimerProperty(m.Properties) {
		return store.PutResult{}, false, nil // the common case: no copy of the message
	}
	tf := f.(*timerFeature)
	c := *m
	c.Properties = maps.Clone(m.Properties)
	// The live config: UPDATE_BROKER_CONFIG may change timerMaxDelaySec / messageDelayLevel.
	live := b.live()
	taken, err := timer.Intercept(&c, time.Now(), time.Duration(live.TimerMaxDelaySec)*time.Second,
		tf.levelsFor(live.MessageDelayLevel))
	if err != nil {
		return store.PutResult{}, true, &timerPutError{err: err}
	}
	if !taken {
		return store.PutResult{}, false, nil
	}
	res, err := b.PutMessageDirect(ctx, &c)
	tf.svc.Notify()
	if err == nil || errors.Is(err, store.ErrFlushTimeout) {
		due, _ := strconv.ParseInt(c.Properties[message.PropertyTimerOutMS], 10, 64)
		if _, level := c.Properties[message.PropertyDelayLevel]; !level {
			reportTimerDue(ctx, due) // a timestamp delay: the send answers a recall handle
		}
	}
	if err == nil {
		// rocketmq_timer_enqueue_total and rocketmq_delay_message_latency (the delay asked
		// for, due time minus birth, as RocketMQ's timerMessageSetLatency).
		due, _ := strconv.ParseInt(c.Properties[message.PropertyTimerOutMS], 10, 64)
		b.mnode.TimerEnqueued(m.Topic, time.Duration(due-m.BornTimestamp)*time.Millisecond)
	}
	return res, true, err
}

// timerPutError maps a rejected timer message to MESSAGE_ILLEGAL through ResponseFor (it is
// a *CodedError for errors.As) while keeping the timer sentinel reachable through Unwrap.
type timerPutError struct{ err error }

func (e *timerPutError) Error() string { return e.err.Error() }
func (e *timerPutError) Unwrap() error { return e.err }
func (e *timerPutError) As(target any) bool {
	if p, ok := target.(**CodedError); ok {
		*p = &CodedError{Code: remoting.MessageIllegal, Remark: e.err.Error()}
		return true
	}
	return false
}
