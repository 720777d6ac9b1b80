package timer

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// DefaultDelayLevels is RocketMQ's messageDelayLevel default: level n (1-based) is the n-th
// duration.
const DefaultDelayLevels = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// ErrInvalidLevels is returned by ParseLevels.
var ErrInvalidLevels = errors.New("timer: invalid messageDelayLevel")

// Levels is a parsed messageDelayLevel table; Levels[i] is the delay of level i+1.
type Levels []time.Duration

// ParseLevels parses RocketMQ's messageDelayLevel syntax: space-separated numbers each followed
// by one unit letter s, m, h or d (for example "1s 5s 1m 2h").
func ParseLevels(s string) (Levels, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidLevels)
	}
	out := make(Levels, 0, len(fields))
	for _, f := range fields {
		var unit time.Duration
		switch f[len(f)-1] {
		case 's':
			unit = time.Second
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		default:
			return nil, fmt.Errorf("%w: %q has no unit s, m, h or d", ErrInvalidLevels, f)
		}
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 32)
		if err != nil || n <= 0 || n > int64(math.MaxInt64/unit) {
			return nil, fmt.Errorf("%w: %q is not a positive number of units", ErrInvalidLevels, f)
		}
		out = append(out, time.Duration(n)*unit)
	}
	return out, nil
}

// Max is the highest level.
func (l Levels) Max() int { return len(l) }

// Delay returns the delay of level n, clamping n > Max to Max like RocketMQ; ok is false for
// n <= 0 (no delay).
func (l Levels) Delay(n int) (d time.Duration, ok bool) {
	if n <= 0 || len(l) == 0 {
		return 0, false
	}
	if n > len(l) {
		n = len(l)
	}
	return l[n-1], true
}
