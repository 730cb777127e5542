package live

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"strconv"
	"time"
)

// runWatch publishes j's folder: a version at start, one after each burst
// of changes (only when the folder's recipe changed), the record again
// every Republish, and again after Poll while a put or a publish fails or
// the folder cannot be watched.
func (m *Manager) runWatch(ctx context.Context, j *job) {
	priv := ed25519.NewKeyFromSeed(j.Seed)
	kick := make(chan struct{}, 1)
	poke := func([]string) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	var watching chan error // nil: no watch running
	ok := false
	changed := true // the folder may have changed while the node was off
	next := func() time.Duration {
		if !ok {
			return m.opt.Poll
		}
		return m.opt.Republish
	}
	every(ctx, next, kick, func(kicked bool) {
		if watching != nil {
			select {
			case err := <-watching:
				watching = nil
				if err == nil { // ctx ended
					return
				}
				m.update(j, func(j *job) { j.State, j.Message = "error", "cannot watch the folder: "+err.Error() })
				m.log.Warn("live folder: cannot watch", slog.String("dir", j.Dir), slog.Any("err", err))
			default:
			}
		}
		if watching == nil {
			// The watch is in place before the folder is read, so a
			// change made meanwhile is seen by one or the other.
			tw, err := NewTreeWatch(j.Dir, m.opt.Watch)
			if err != nil {
				ok = false
				m.update(j, func(j *job) { j.State, j.Message = "error", "cannot watch the folder: "+err.Error() })
				m.log.Warn("live folder: cannot watch", slog.String("dir", j.Dir), slog.Any("err", err))
				return
			}
			watching = make(chan error, 1)
			go func(ch chan error) { ch <- tw.Run(ctx, poke) }(watching)
			changed = true
		}
		ok = false
		if changed || kicked {
			if !m.putVersion(ctx, j, priv) {
				changed = true
				return
			}
			changed = false
		}
		ok = m.publish(ctx, j)
	})
}

// putVersion puts the folder and, when its recipe changed, signs the next
// version. It reports false when the put failed (said in j's state).
func (m *Manager) putVersion(ctx context.Context, j *job, priv ed25519.PrivateKey) bool {
	m.note(j, func(j *job) { j.State, j.Message = "working", "putting the folder" })
	start := time.Now()
	put, err := m.f.PutFolder(ctx, j.Dir)
	if err != nil {
		if ctx.Err() == nil {
			m.update(j, func(j *job) { j.State, j.Message = "error", "put the folder: "+err.Error() })
			m.log.Warn("live folder: put failed", slog.String("dir", j.Dir), slog.Any("err", err))
		}
		return false
	}
	if put.Recipe == j.Recipe && j.Record != nil {
		return true
	}
	now := time.Now()
	rec, err := Sign(priv, j.link, j.Seq+1, now, []byte(put.Recipe))
	if err != nil {
		m.update(j, func(j *job) { j.State, j.Message = "error", err.Error() })
		return false
	}
	m.update(j, func(j *job) {
		j.Seq, j.Recipe, j.Record, j.Version, j.Files, j.Changed = rec.Seq, put.Recipe, rec.Bytes(), now, put.Files, put.Mixed
	})
	m.log.Info("live folder: new version", slog.String("dir", j.Dir), slog.Uint64("seq", rec.Seq), slog.Int("files", put.Files),
		slog.Int("mixed", put.Mixed), slog.Duration("took", time.Since(start)))
	return true
}

// publish puts j's last record into the DHT; it reports whether that
// reached other nodes.
func (m *Manager) publish(ctx context.Context, j *job) bool {
	if j.Record == nil {
		return false
	}
	err := m.put(ctx, j.Record, j.link)
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		m.note(j, func(j *job) {
			j.State, j.Message = "waiting", "version "+strconv.FormatUint(j.Seq, 10)+" is not published yet (no other node reached): "+err.Error()
		})
		return false
	}
	m.note(j, func(j *job) { j.State, j.Message, j.Checked = "ok", "", time.Now() })
	return true
}

// put puts a record of link into the DHT, within Timeout.
func (m *Manager) put(ctx context.Context, record []byte, l Link) error {
	ctx, cancel := context.WithTimeout(ctx, m.opt.Timeout)
	defer cancel()
	return m.v.PutValue(ctx, DHTKey(l.Pub), record)
}
