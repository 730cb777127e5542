package webui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// ErrBusy: too many transfers run at once.
var ErrBusy = errors.New("too many transfers at once")

// keepFinished is how many finished transfers stay listed (and saved):
// the page cannot make the node keep more, however many it starts.
const keepFinished = 50

// maxStateFile bounds what is read back of Options.StateFile.
const maxStateFile = 1 << 20

// transfers runs and tracks the fetches of whole files into the node,
// and keeps the finished ones (puts too) in Options.StateFile.
type transfers struct {
	n    Node
	slot func() (release func(), ok bool) // a transfer slot, held while a fetch runs
	stop <-chan struct{}
	log  *slog.Logger
	fail func()
	wg   *sync.WaitGroup // the fetches' goroutines
	path string          // where the finished ones are kept; "": nowhere

	mu   sync.Mutex
	byID map[string]*transfer
}

type transfer struct {
	info   apiv1.TransferInfo // guarded by transfers.mu, but for the counters
	cancel context.CancelFunc // ends a running fetch
	// cancelled: the user cancelled it (DELETE), as opposed to a failure.
	cancelled bool
	bytes     atomic.Int64
	// peersAtStart is each connected peer's bytes in when it began.
	peersAtStart map[string]int64
	// marks are recent (time, bytes) points for the speed.
	marks []mark
}

type mark struct {
	t time.Time
	n int64
}

func newTransfers(n Node, slot func() (func(), bool), stop <-chan struct{}, log *slog.Logger, fail func(), wg *sync.WaitGroup, path string) *transfers {
	ts := &transfers{n: n, slot: slot, stop: stop, log: log, fail: fail, wg: wg, path: path, byID: map[string]*transfer{}}
	ts.load()
	return ts
}

// load reads the finished transfers kept in ts.path. A missing file is
// none; a damaged one is logged and ignored (it is only a history).
func (ts *transfers) load() {
	if ts.path == "" {
		return
	}
	// A save cut short (a crash) leaves its temporary file: only one
	// server runs on a repo, so any there now is such a leftover.
	if left, err := filepath.Glob(ts.path + ".tmp-*"); err == nil {
		for _, l := range left {
			_ = os.Remove(l)
		}
	}
	f, err := os.Open(ts.path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		ts.log.Warn("recent transfers not read", slog.String("file", ts.path), slog.Any("err", err))
		return
	}
	defer f.Close()
	var list []apiv1.TransferInfo
	if err := json.NewDecoder(io.LimitReader(f, maxStateFile)).Decode(&list); err != nil {
		ts.log.Warn("recent transfers not read (damaged: starting afresh)", slog.String("file", ts.path), slog.Any("err", err))
		return
	}
	for _, info := range list {
		if info.ID == "" || info.State == apiv1.TransferRunning {
			continue
		}
		t := &transfer{info: info}
		t.bytes.Store(info.BytesDone)
		ts.byID[info.ID] = t
	}
	ts.trim()
}

// save writes the finished transfers to ts.path (atomically: a temporary
// file renamed). Called with ts.mu held; a failure is logged.
func (ts *transfers) save() {
	if ts.path == "" {
		return
	}
	list := []apiv1.TransferInfo{}
	for _, t := range ts.byID {
		if t.info.State != apiv1.TransferRunning {
			info := t.info
			info.BytesDone = t.bytes.Load()
			list = append(list, info)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Started.After(list[j].Started) })
	b, err := json.Marshal(list)
	if err == nil {
		err = writeFileAtomic(ts.path, b)
	}
	if err != nil {
		ts.log.Warn("recent transfers not saved", slog.String("file", ts.path), slog.Any("err", err))
	}
}

// writeFileAtomic replaces path with b: a reader sees the old file or the
// new one, never half of one.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// forgetFinished drops the finished transfers of kind and key: one row
// per file. Called with ts.mu held.
func (ts *transfers) forgetFinished(kind, key string) {
	for id, t := range ts.byID {
		if t.info.State != apiv1.TransferRunning && t.info.Kind == kind && t.info.Key == key {
			delete(ts.byID, id)
		}
	}
}

// recordPut keeps a finished put's answer among the transfers, in place of
// an earlier put of the same file.
func (ts *transfers) recordPut(p apiv1.PutInfo, started time.Time) {
	rc, err := recipe.Parse(p.Recipe)
	if err != nil {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.forgetFinished(apiv1.TransferPut, rc.Key())
	cls := mixer.ClassFor(rc.Size)
	t := &transfer{info: apiv1.TransferInfo{
		ID: newTransferID(), Kind: apiv1.TransferPut, Recipe: p.Recipe, Key: rc.Key(), Name: p.Name, Size: p.Size, Type: p.Type,
		State: apiv1.TransferDone, Blocks: dataBlocks(rc.Size, cls), BlocksDone: dataBlocks(rc.Size, cls), BytesDone: p.Size,
		Started: started.UTC(), Finished: time.Now().UTC(), Put: &p,
	}}
	t.bytes.Store(p.Size)
	ts.byID[t.info.ID] = t
	ts.trim()
	ts.save()
}

// cancel ends a running transfer (it turns cancelled) or forgets a
// finished one. It reports false for an unknown id.
func (ts *transfers) cancel(id string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.byID[id]
	if !ok {
		return false
	}
	if t.info.State == apiv1.TransferRunning {
		t.cancelled = true
		t.cancel()
		return true
	}
	delete(ts.byID, id)
	ts.save()
	return true
}

func newTransferID() string {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// start begins fetching rc, or returns the running transfer of the same
// file. It returns ErrBusy when no transfer slot is free. A file already
// on the node's list keeps its name and recipe as listed (a recipe spelt
// in capitals names it in capitals).
func (ts *transfers) start(ctx context.Context, rc recipe.Recipe) (apiv1.TransferInfo, error) {
	if fs, err := ts.n.Store().Files(ctx); err == nil {
		for _, f := range fs {
			if f.Key != rc.Key() {
				continue
			}
			if listed, err := recipe.Parse(f.Recipe); err == nil && listed.Key() == rc.Key() {
				rc = listed
			}
		}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	select {
	case <-ts.stop:
		return apiv1.TransferInfo{}, ErrBusy // the server is closing
	default:
	}
	for _, t := range ts.byID {
		if t.info.State == apiv1.TransferRunning && t.info.Key == rc.Key() {
			return ts.snapshot(t), nil
		}
	}
	release, ok := ts.slot()
	if !ok {
		return apiv1.TransferInfo{}, ErrBusy
	}
	cls := mixer.ClassFor(rc.Size)
	t := &transfer{
		info: apiv1.TransferInfo{
			ID: newTransferID(), Kind: apiv1.TransferGet, Recipe: rc.String(), Key: rc.Key(), Name: rc.Name, Size: rc.Size, Type: rc.Type,
			State: apiv1.TransferRunning, Blocks: dataBlocks(rc.Size, cls), Started: time.Now().UTC(), ETASeconds: -1,
		},
		peersAtStart: map[string]int64{},
	}
	for _, p := range ts.n.Peers() {
		t.peersAtStart[p.ID] = p.BytesIn
	}
	ts.forgetFinished(apiv1.TransferGet, rc.Key())
	ts.byID[t.info.ID] = t
	ts.trim()
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	ts.wg.Add(2)
	go func() {
		defer ts.wg.Done()
		select {
		case <-ts.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer ts.wg.Done()
		defer release()
		defer cancel()
		err := ts.n.Fetch(ctx, rc, func(n int64) { t.bytes.Add(n) })
		ts.mu.Lock()
		defer ts.mu.Unlock()
		t.info.Finished = time.Now().UTC()
		t.info.BytesDone = t.bytes.Load()
		t.info.Peers = ts.peersSince(t)
		defer ts.save()
		if t.cancelled {
			t.info.State = apiv1.TransferCancelled
			return
		}
		if err != nil {
			t.info.State, t.info.Error = apiv1.TransferFailed, err.Error()
			ts.fail()
			ts.log.Warn("fetch failed", slog.String("name", rc.Name), slog.Int64("size", rc.Size),
				slog.Int64("bytes", t.bytes.Load()), slog.Any("err", err))
		} else {
			t.info.State = apiv1.TransferDone
		}
	}()
	return ts.snapshot(t), nil
}

// dataBlocks is the number of data blocks (tuples) of a file.
func dataBlocks(size int64, class int) int64 {
	if size == 0 {
		return 1
	}
	return (size + int64(class) - 1) / int64(class)
}

// trim drops the oldest finished transfers past keepFinished. Called with
// ts.mu held.
func (ts *transfers) trim() {
	var done []*transfer
	for _, t := range ts.byID {
		if t.info.State != apiv1.TransferRunning {
			done = append(done, t)
		}
	}
	if len(done) <= keepFinished {
		return
	}
	sort.Slice(done, func(i, j int) bool { return done[i].info.Started.Before(done[j].info.Started) })
	for _, t := range done[:len(done)-keepFinished] {
		delete(ts.byID, t.info.ID)
	}
}

// get returns one transfer's state.
func (ts *transfers) get(id string) (apiv1.TransferInfo, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.byID[id]
	if !ok {
		return apiv1.TransferInfo{}, false
	}
	return ts.snapshot(t), true
}

// list returns every transfer, newest first.
func (ts *transfers) list() []apiv1.TransferInfo {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := []apiv1.TransferInfo{}
	for _, t := range ts.byID {
		out = append(out, ts.snapshot(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out
}

// snapshot fills in the live figures. Called with ts.mu held.
func (ts *transfers) snapshot(t *transfer) apiv1.TransferInfo {
	info := t.info
	info.BytesDone = t.bytes.Load()
	cls := int64(mixer.ClassFor(info.Size))
	info.BlocksDone = min(info.Blocks, (info.BytesDone+cls-1)/cls)
	if info.State == apiv1.TransferDone {
		info.BlocksDone = info.Blocks
	}
	now := time.Now()
	t.marks = append(t.marks, mark{now, info.BytesDone})
	for len(t.marks) > 2 && now.Sub(t.marks[1].t) > 3*time.Second {
		t.marks = t.marks[1:]
	}
	end := now
	if !info.Finished.IsZero() {
		end = info.Finished
	}
	if first := t.marks[0]; info.State == apiv1.TransferRunning && now.Sub(first.t) > 200*time.Millisecond {
		info.Speed = float64(info.BytesDone-first.n) / now.Sub(first.t).Seconds()
	} else if d := end.Sub(info.Started); d > 0 {
		info.Speed = float64(info.BytesDone) / d.Seconds()
	}
	switch {
	case info.State != apiv1.TransferRunning:
		info.ETASeconds = 0
	case info.Speed > 0:
		info.ETASeconds = float64(info.Size-info.BytesDone) / info.Speed
	}
	if info.State == apiv1.TransferRunning {
		info.Peers = ts.peersSince(t)
	}
	return info
}

// peersSince counts the connected peers that sent this node bytes since t
// began.
func (ts *transfers) peersSince(t *transfer) int {
	n := 0
	for _, p := range ts.n.Peers() {
		if p.BytesIn > t.peersAtStart[p.ID] {
			n++
		}
	}
	return n
}
