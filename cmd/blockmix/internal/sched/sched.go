// Package sched runs a node's background rounds: on an interval or when
// woken, and paced to a byte rate.
package sched

import (
	"context"
	"time"
)

// Every calls fn each interval, and also whenever wake fires (nil: only on
// the interval), until ctx ends. interval <= 0: never.
func Every(ctx context.Context, interval time.Duration, wake <-chan struct{}, fn func()) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		fn()
	}
}

// Pace sleeps as long as n bytes take at rate bytes per second (0: not
// at all), or until ctx ends.
func Pace(ctx context.Context, rate int64, n int) {
	if rate <= 0 {
		return
	}
	select {
	case <-time.After(time.Duration(int64(n) * int64(time.Second) / rate)):
	case <-ctx.Done():
	}
}
