package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Mode selects what Run does.
type Mode string

// Modes.
const (
	ModeProduce Mode = "produce" // senders only
	ModeConsume Mode = "consume" // receivers only (drain what is there / arrives)
	ModeE2E     Mode = "e2e"     // senders and receivers at once; end-to-end latency
)

// Config describes one benchmark run.
type Config struct {
	Mode        Mode
	Topic       string        // required
	Concurrency int           // sending goroutines (produce, e2e); default 16
	Consumers   int           // receiving goroutines (consume, e2e); default 4
	MessageSize int           // body bytes; default 1024
	Rate        float64       // total messages per second; 0 = as fast as possible
	Max         int64         // messages to send (produce, e2e) or receive (consume); 0 = no limit
	Duration    time.Duration // run time; 0 = until Max (one of Max and Duration is required)
	Batch       int32         // receive batch size; default 32
	// AckParallel is how many acknowledgements of one received batch are in flight at once
	// (each consumer waits for its batch's acks before the next receive). The go5 SDK's Ack
	// is one blocking RPC; acking a batch one by one makes the consumer wait a round trip
	// per message, which is what limits a consume run, not the server. Default 1
	// (sequential, as the SDK's examples do); the NATS comparison uses the batch size.
	AckParallel int
	Tag         string // tag of sent messages ("" = none)
	Keys        bool   // give every message a unique key (exercises the index)
	Groups      int    // spread sends over this many FIFO message groups; 0 = normal messages
	// Drain is how long e2e receivers keep going after the senders stop when not every sent
	// message has arrived yet, and how long a consume run waits with nothing arriving before
	// it ends; default 10 s.
	Drain            time.Duration
	Progress         io.Writer     // a live progress line goes here ("\r"-rewritten); nil = none
	ProgressInterval time.Duration // default 1 s
}

func (c *Config) defaults() error {
	if c.Topic == "" {
		return errors.New("bench: topic is required")
	}
	switch c.Mode {
	case ModeProduce, ModeConsume, ModeE2E:
	default:
		return fmt.Errorf("bench: unknown mode %q", c.Mode)
	}
	if c.Max <= 0 && c.Duration <= 0 {
		return errors.New("bench: set a message count or a duration")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Consumers <= 0 {
		c.Consumers = 4
	}
	if c.MessageSize <= 0 {
		c.MessageSize = 1024
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	return nil
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func summarize(s *Snapshot) Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{Count: s.N, Mean: ms(s.Mean()), P50: ms(s.Quantile(0.50)), P90: ms(s.Quantile(0.90)),
		P99: ms(s.Quantile(0.99)), P999: ms(s.Quantile(0.999)), Max: ms(s.Max())}
}

// Result is the final summary of a run (the `--json` output of `rocketry bench`).
type Result struct {
	Mode        Mode    `json:"mode"`
	Topic       string  `json:"topic"`
	Concurrency int     `json:"concurrency"`
	Consumers   int     `json:"consumers,omitempty"`
	MessageSize int     `json:"message_size"`
	ElapsedSec  float64 `json:"elapsed_s"`

	Sent       int64   `json:"sent"`
	SendErrors int64   `json:"send_errors"`
	SendRate   float64 `json:"send_msgs_per_s"`
	SendMBps   float64 `json:"send_mb_per_s"`
	SendLat    Latency `json:"send_latency"`

	Received  int64   `json:"received"`
	AckErrors int64   `json:"ack_errors"`
	RecvRate  float64 `json:"recv_msgs_per_s"`
	RecvMBps  float64 `json:"recv_mb_per_s"`
	E2ELat    Latency `json:"e2e_latency"`

	FirstError string `json:"first_error,omitempty"`
}

// Body layout written by senders: magic "RKTB", send-start UnixNano (8 bytes), run id
// (8 bytes), filler. Receivers compute end-to-end latency from it and count only messages
// of their own run (e2e) .
const (
	bodyMagic  = "RKTB"
	bodyHeader = 4 + 8 + 8
)

type run struct {
	cfg   Config
	runID uint64
	start time.Time

	claimed  atomic.Int64 // messages claimed by senders
	sent     atomic.Int64
	sendErrs atomic.Int64
	sentB    atomic.Int64
	recv     atomic.Int64
	recvAsk  atomic.Int64 // consume with Max: messages asked for by receivers in flight plus received
	recvB    atomic.Int64
	ackErrs  atomic.Int64
	sendLat  Histogram
	e2eLat   Histogram
	sendIval Histogram // interval copies for the progress line
	e2eIval  Histogram

	sendersDone atomic.Bool
	lastRecv    atomic.Int64 // UnixNano of the last received message

	errOnce  sync.Once
	firstErr error
}

func (r *run) fail(err error) {
	r.errOnce.Do(func() { r.firstErr = err })
}

// Run executes one benchmark and returns its summary. s is required for produce and e2e,
// rc for consume and e2e. Run returns an error only when the run could not do anything
// useful (every send failing, bad config); partial failures are counted in the Result.
func Run(ctx context.Context, cfg Config, s Sender, rc Receiver) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Mode != ModeConsume && s == nil {
		return nil, errors.New("bench: a sender is required")
	}
	if cfg.Mode != ModeProduce && rc == nil {
		return nil, errors.New("bench: a receiver is required")
	}
	r := &run{cfg: cfg, runID: uint64(time.Now().UnixNano()), start: time.Now()}
	r.lastRecv.Store(r.start.UnixNano())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithTimeout(runCtx, cfg.Duration)
		defer c2()
	}

	var wg sync.WaitGroup
	var senders sync.WaitGroup
	if cfg.Mode != ModeConsume {
		for w := range cfg.Concurrency {
			senders.Add(1)
			go func() {
				defer senders.Done()
				r.sendLoop(runCtx, cancel, s, w)
			}()
		}
	}
	recvCtx, recvCancel := context.WithCancel(ctx)
	defer recvCancel()
	if cfg.Mode != ModeProduce {
		for range cfg.Consumers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.recvLoop(recvCtx, rc)
			}()
		}
	}
	progDone := make(chan struct{})
	progStop := make(chan struct{})
	if cfg.Progress != nil {
		go func() {
			defer close(progDone)
			r.progress(progStop)
		}()
	} else {
		close(progDone)
	}

	senders.Wait()
	r.sendersDone.Store(true)
	sendEnd := time.Now()
	if cfg.Mode != ModeProduce {
		r.waitReceivers(runCtx, ctx)
	}
	recvCancel()
	wg.Wait()
	close(progStop)
	<-progDone

	end := time.Now()
	res := r.result(sendEnd, end)
	if r.firstErr != nil {
		res.FirstError = r.firstErr.Error()
	}
	if cfg.Mode != ModeConsume && res.Sent == 0 && res.SendErrors > 0 {
		return res, fmt.Errorf("bench: every send failed: %w", r.firstErr)
	}
	return res, nil
}

// waitReceivers decides when receiving ends: e2e waits (bounded by Drain of silence) for
// every sent message; consume ends at Max, at Duration, or after Drain without messages.
func (r *run) waitReceivers(runCtx, parent context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if parent.Err() != nil {
			return
		}
		got := r.recv.Load()
		idle := time.Since(time.Unix(0, r.lastRecv.Load()))
		switch r.cfg.Mode {
		case ModeE2E:
			if got >= r.sent.Load() || idle > r.cfg.Drain {
				return
			}
		case ModeConsume:
			if (r.cfg.Max > 0 && got >= r.cfg.Max) || runCtx.Err() != nil || idle > r.cfg.Drain {
				return
			}
		}
		select {
		case <-t.C:
		case <-parent.Done():
			return
		}
	}
}

func (r *run) sendLoop(ctx context.Context, cancel context.CancelFunc, s Sender, worker int) {
	cfg := r.cfg
	body := make([]byte, cfg.MessageSize)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for ctx.Err() == nil {
		i := r.claimed.Add(1) - 1
		if cfg.Max > 0 && i >= cfg.Max {
			return
		}
		if interval > 0 {
			due := r.start.Add(time.Duration(i) * interval)
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		}
		m := &Message{Topic: cfg.Topic, Tag: cfg.Tag}
		if cfg.Keys {
			m.Keys = []string{strconv.FormatUint(r.runID, 36) + "-" + strconv.FormatInt(i, 10)}
		}
		if cfg.Groups > 0 {
			m.MessageGroup = "g" + strconv.Itoa(int(i%int64(cfg.Groups)))
		}
		b := body
		t0 := time.Now()
		if len(b) >= bodyHeader {
			b = append([]byte(nil), body...) // the SDK may keep the slice until the call returns; copies are per message
			copy(b, bodyMagic)
			binary.BigEndian.PutUint64(b[4:], uint64(t0.UnixNano()))
			binary.BigEndian.PutUint64(b[12:], r.runID)
		}
		m.Body = b
		_, err := s.Send(ctx, m)
		d := time.Since(t0)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.sendErrs.Add(1)
			r.fail(err)
			if r.sent.Load() == 0 && r.sendErrs.Load() >= 10 {
				cancel() // nothing works: stop early
				return
			}
			continue
		}
		r.sent.Add(1)
		r.sentB.Add(int64(len(b)))
		r.sendLat.Record(d)
		r.sendIval.Record(d)
	}
}

func (r *run) recvLoop(ctx context.Context, rc Receiver) {
	for ctx.Err() == nil {
		batch := r.cfg.Batch
		claim := int64(0)
		if r.cfg.Mode == ModeConsume && r.cfg.Max > 0 {
			// Concurrent receivers share the budget: each asks only for what no other one
			// has asked for yet, so a run receives exactly Max (QA R5C-9: -n 1 with 4
			// receivers received 4). Asks that come back short are returned.
			if r.recv.Load() >= r.cfg.Max {
				return
			}
			asked := r.recvAsk.Load()
			left := r.cfg.Max - asked
			if left <= 0 {
				select { // the rest is asked for by others: wait for them or the end
				case <-ctx.Done():
					return
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			claim = min(int64(batch), left)
			if !r.recvAsk.CompareAndSwap(asked, asked+claim) {
				continue
			}
			batch = int32(claim)
		}
		msgs, err := rc.Receive(ctx, batch)
		if claim > 0 {
			r.recvAsk.Add(int64(len(msgs)) - claim)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.fail(err)
			select { // back off briefly on errors (server restarting, no route yet)
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		now := time.Now()
		var (
			par chan struct{} // bounds the acks in flight; nil = ack one by one
			wg  sync.WaitGroup
		)
		if r.cfg.AckParallel > 1 {
			par = make(chan struct{}, r.cfg.AckParallel)
		}
		for _, m := range msgs {
			ours := true
			var lat time.Duration
			if len(m.Body) >= bodyHeader && string(m.Body[:4]) == bodyMagic {
				lat = now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(m.Body[4:]))))
				ours = binary.BigEndian.Uint64(m.Body[12:]) == r.runID
			} else if !m.BornTimestamp.IsZero() {
				lat = now.Sub(m.BornTimestamp)
			}
			if par == nil {
				r.ack(ctx, rc, m)
				if ctx.Err() != nil {
					return
				}
			} else {
				par <- struct{}{}
				wg.Add(1)
				go func(m *Received) {
					defer wg.Done()
					r.ack(ctx, rc, m)
					<-par
				}(m)
			}
			if r.cfg.Mode == ModeE2E && !ours {
				continue // left over from an earlier run: acked, not counted
			}
			r.recv.Add(1)
			r.recvB.Add(int64(len(m.Body)))
			r.lastRecv.Store(now.UnixNano())
			if lat > 0 {
				r.e2eLat.Record(lat)
				r.e2eIval.Record(lat)
			}
		}
		wg.Wait()
	}
}

// ack acknowledges m, counting a failure.
func (r *run) ack(ctx context.Context, rc Receiver, m *Received) {
	if err := rc.Ack(ctx, m); err != nil {
		if ctx.Err() != nil {
			return
		}
		r.ackErrs.Add(1)
		r.fail(err)
	}
}

func (r *run) result(sendEnd, end time.Time) *Result {
	cfg := r.cfg
	res := &Result{Mode: cfg.Mode, Topic: cfg.Topic, MessageSize: cfg.MessageSize,
		Sent: r.sent.Load(), SendErrors: r.sendErrs.Load(), Received: r.recv.Load(), AckErrors: r.ackErrs.Load()}
	if cfg.Mode == ModeConsume {
		// consume sends nothing: report the mean size of what it received (QA R7H-13).
		res.MessageSize = 0
		if res.Received > 0 {
			res.MessageSize = int(r.recvB.Load() / res.Received)
		}
	}
	elapsed := end.Sub(r.start)
	res.ElapsedSec = elapsed.Seconds()
	if cfg.Mode != ModeConsume {
		res.Concurrency = cfg.Concurrency
		sec := sendEnd.Sub(r.start).Seconds()
		res.SendRate = float64(res.Sent) / sec
		res.SendMBps = float64(r.sentB.Load()) / sec / 1e6
		res.SendLat = summarize(r.sendLat.Snapshot(false))
	}
	if cfg.Mode != ModeProduce {
		res.Consumers = cfg.Consumers
		sec := elapsed.Seconds()
		if cfg.Mode == ModeConsume {
			// do not charge the final idle wait to the consumer's rate
			if last := time.Unix(0, r.lastRecv.Load()); last.After(r.start) && res.Received > 0 {
				sec = last.Sub(r.start).Seconds()
			}
		}
		res.RecvRate = float64(res.Received) / sec
		res.RecvMBps = float64(r.recvB.Load()) / sec / 1e6
		res.E2ELat = summarize(r.e2eLat.Snapshot(false))
	}
	return res
}

// progress prints one line per interval until stop closes, then ends the line.
func (r *run) progress(stop <-chan struct{}) {
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	lastSent, lastSentB, lastRecv, lastRecvB := int64(0), int64(0), int64(0), int64(0)
	last := r.start
	for {
		select {
		case <-stop:
			fmt.Fprint(r.cfg.Progress, "\n")
			return
		case now := <-t.C:
			sec := now.Sub(last).Seconds()
			last = now
			line := fmt.Sprintf("\r[%5.0fs]", now.Sub(r.start).Seconds())
			if r.cfg.Mode != ModeConsume {
				s, sb := r.sent.Load(), r.sentB.Load()
				snap := r.sendIval.Snapshot(true)
				line += fmt.Sprintf(" sent %d (%.0f msg/s, %.2f MB/s, p50 %s, p99 %s)", s,
					float64(s-lastSent)/sec, float64(sb-lastSentB)/sec/1e6, fmtDur(snap.Quantile(0.5)), fmtDur(snap.Quantile(0.99)))
				lastSent, lastSentB = s, sb
			}
			if r.cfg.Mode != ModeProduce {
				c, cb := r.recv.Load(), r.recvB.Load()
				snap := r.e2eIval.Snapshot(true)
				line += fmt.Sprintf(" recv %d (%.0f msg/s, %.2f MB/s, e2e p50 %s, p99 %s)", c,
					float64(c-lastRecv)/sec, float64(cb-lastRecvB)/sec/1e6, fmtDur(snap.Quantile(0.5)), fmtDur(snap.Quantile(0.99)))
				lastRecv, lastRecvB = c, cb
			}
			if e := r.sendErrs.Load() + r.ackErrs.Load(); e > 0 {
				line += fmt.Sprintf(" errors %d", e)
			}
			fmt.Fprint(r.cfg.Progress, line+"\033[K")
		}
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}

// WriteText writes the human-readable summary.
func (res *Result) WriteText(w io.Writer) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	size := "%d-byte"
	if res.Mode == ModeConsume {
		size = "%d-byte (mean received)"
	}
	p("mode %s, topic %s, "+size+" messages, %.2fs\n", res.Mode, res.Topic, res.MessageSize, res.ElapsedSec)
	lat := func(name string, l Latency) {
		p("  %-8s p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms  mean %.3fms\n", name, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	}
	if res.Mode != ModeConsume {
		p("sent      %d messages (%d errors) with %d senders: %.0f msg/s, %.2f MB/s\n", res.Sent, res.SendErrors, res.Concurrency, res.SendRate, res.SendMBps)
		lat("send", res.SendLat)
	}
	if res.Mode != ModeProduce {
		p("received  %d messages (%d ack errors) with %d consumers: %.0f msg/s, %.2f MB/s\n", res.Received, res.AckErrors, res.Consumers, res.RecvRate, res.RecvMBps)
		lat("e2e", res.E2ELat)
	}
	if res.FirstError != "" {
		p("first error: %s\n", res.FirstError)
	}
	return err
}
