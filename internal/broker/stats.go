package broker

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// statWindow is how many one-second samples the rate sampler keeps (the longest window).
const statWindow = 60

// brokerStats counts messages stored and delivered (RocketMQ BrokerStats: msgPutTotal*,
// msgGetTotal*, putTps, getTransferedTps). Counting is one atomic add per request; rates come
// from per-second samples taken by the sampler goroutine.
type brokerStats struct {
	put atomic.Int64 // messages stored through the send/put paths
	got atomic.Int64 // messages returned by pulls

	mu           sync.Mutex
	samples      [statWindow + 1][2]int64 // ring of (put, got) totals, one per second
	n, next      int                      // samples taken (capped), next slot
	day          int                      // day of year of the morning totals
	morningPut   int64                    // totals at local midnight
	morningGot   int64
	lastSampleAt time.Time

	// groups holds the per-(group, topic) delivery counters behind GET_CONSUME_STATS'
	// consumeTps (RocketMQ's GROUP_GET_NUMS per-minute TPS).
	groups sync.Map // groupTopic -> *groupRate
	ticks  int      // mu: samples taken, for the 10 s group sampling
}

// groupTopic keys brokerStats.groups.
type groupTopic struct{ group, topic string }

// groupRateSlots is how many 10 s samples a group keeps: one minute plus the current one.
const groupRateSlots = 7

// groupRate counts one group's deliveries of one topic and keeps 10 s samples of the total
// (sampled under brokerStats.mu).
type groupRate struct {
	total   atomic.Int64
	samples [groupRateSlots]int64
	n, next int
}

// delivered records n messages delivered to group from topic (pull or pop).
func (s *brokerStats) delivered(group, topic string, n int) {
	s.got.Add(int64(n))
	key := groupTopic{group, topic}
	v, ok := s.groups.Load(key)
	if !ok {
		// Seeded with a zero sample: the group's first deliveries count in its first
		// window (the first sample taken would otherwise be their baseline, QA R10X-2).
		v, _ = s.groups.LoadOrStore(key, &groupRate{n: 1, next: 1})
	}
	v.(*groupRate).total.Add(int64(n))
}

// groupTps returns the messages/s group received from topic over the last minute (or what
// has been sampled so far); topic "" sums every topic of the group.
func (s *brokerStats) groupTps(group, topic string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum float64
	s.groups.Range(func(k, v any) bool {
		key := k.(groupTopic)
		if key.group != group || (topic != "" && key.topic != topic) {
			return true
		}
		r := v.(*groupRate)
		if r.n < 2 {
			return true
		}
		w := r.n - 1
		last := (r.next - 1 + groupRateSlots) % groupRateSlots
		first := (last - w + groupRateSlots) % groupRateSlots
		sum += float64(r.samples[last]-r.samples[first]) / float64(10*w)
		return true
	})
	return sum
}

// sample records the current totals; called once a second.
func (s *brokerStats) sample(now time.Time) {
	p, g := s.put.Load(), s.got.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples[s.next] = [2]int64{p, g}
	s.next = (s.next + 1) % len(s.samples)
	if s.n < len(s.samples) {
		s.n++
	}
	if yd := now.YearDay(); yd != s.day {
		s.day, s.morningPut, s.morningGot = yd, p, g
	}
	s.lastSampleAt = now
	if s.ticks%10 == 0 {
		s.groups.Range(func(_, v any) bool {
			r := v.(*groupRate)
			r.samples[r.next] = r.total.Load()
			r.next = (r.next + 1) % groupRateSlots
			if r.n < groupRateSlots {
				r.n++
			}
			return true
		})
	}
	s.ticks++
}

// rate returns messages/s of counter i (0 put, 1 got) over the last window seconds (or what
// has been sampled so far).
func (s *brokerStats) rateLocked(i, window int) float64 {
	if s.n < 2 {
		return 0
	}
	w := min(window, s.n-1)
	last := (s.next - 1 + len(s.samples)) % len(s.samples)
	first := (last - w + len(s.samples)) % len(s.samples)
	return float64(s.samples[last][i]-s.samples[first][i]) / float64(w)
}

// runtimeInfo renders RocketMQ's keys: putTps / getTransferedTps as "10s 60s" rates, and the
// today totals.
func (s *brokerStats) runtimeInfo() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	return map[string]string{
		"putTps":                  fmt.Sprintf("%.2f %.2f", s.rateLocked(0, 10), s.rateLocked(0, 60)),
		"getTransferedTps":        fmt.Sprintf("%.2f %.2f", s.rateLocked(1, 10), s.rateLocked(1, 60)),
		"msgPutTotalTodayNow":     i64(s.put.Load()),
		"msgGetTotalTodayNow":     i64(s.got.Load()),
		"msgPutTotalTodayMorning": i64(s.morningPut),
		"msgGetTotalTodayMorning": i64(s.morningGot),
	}
}

// statsLoop samples the counters every second until ctx ends.
func (b *Broker) statsLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	b.stats.sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.stats.sample(now)
		}
	}
}
