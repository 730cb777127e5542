package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/memtrim"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/putlog"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/testhook"
	"github.com/blockmix/blockmix/mixer"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Fetch rebuilds the whole file into this node: every block it needs is
// fetched and kept (whatever --cache says: the user asked for this file),
// the whole-file hash is checked, and the file joins the node's list, so
// that its blocks count as used and the node announces it.
func (n *Node) Fetch(ctx context.Context, rc recipe.Recipe, progress func(int64)) error {
	testhook.HoldFetch(ctx, rc.Name)
	if err := ctx.Err(); err != nil {
		return err
	}
	f := n.fetcher(ctx, rc)
	kept := func() error {
		if s := f.Stats(); s.KeepFailed > 0 {
			return fmt.Errorf("the file checked out, but %d of its blocks could not be kept here (is the disk full?)", s.KeepFailed)
		}
		return nil
	}
	g, err := n.striped(ctx, f, rc)
	if err == nil {
		err = Pin(ctx, n.st, g, rc, &recipe.Options{Workers: n.cfg.Profile.Workers, Progress: progressFunc(progress)}, kept)
	}
	n.keeper.Added(int(f.Stats().Kept), f.Stats().Bytes)
	if err != nil {
		return err
	}
	n.background(func(ctx context.Context) {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_ = n.net.ProvideFile(pctx, rc.Root[0])
	})
	return nil
}

// fileBlocks lists every block rc needs: from the node's list when the
// file is on it, else read from its descriptor (a few blocks, fetched as
// needed; never the file's data). A descriptor that cannot be read
// anywhere leaves its root tuple, whose copies then say the file is lost.
func (n *Node) fileBlocks(ctx context.Context, rc recipe.Recipe) ([]blocks.ID, error) {
	if f, err := n.st.File(ctx, rc.Key()); err == nil {
		return f.Blocks, nil
	} else if !errors.Is(err, blocks.ErrNotFound) {
		return nil, err
	}
	f := n.fetcher(ctx, rc)
	f.Keep = n.keepFetched
	r, err := recipe.Open(ctx, f, rc, recipe.Options{})
	var ids []blocks.ID
	if err == nil {
		ids, err = r.Blocks(ctx)
	}
	switch {
	case err == nil:
		return ids, nil
	case errors.Is(err, blocks.ErrNotFound) || errors.Is(err, blocks.ErrCorrupt):
		return append([]blocks.ID(nil), rc.Root...), nil
	}
	return nil, fmt.Errorf("read the descriptor of %s: %w", rc.Name, err)
}

// Health counts the reachable copies of each block of a file, on this
// node's list or not (a friend asks before fetching 40 GB): this node's
// own, and the k closest nodes' answers to a has-list (k = replicas + 2,
// so that a copy one place off still counts); and which nodes hold them.
func (n *Node) Health(ctx context.Context, rc recipe.Recipe) (apiv1.HealthInfo, error) {
	if h, ok, err := n.stripedHealth(ctx, rc, false); ok {
		return h, err
	}
	ids, err := n.fileBlocks(ctx, rc)
	if err != nil {
		return apiv1.HealthInfo{}, err
	}
	sets := n.net.HolderSets(ctx, ids, n.cfg.Replicas+2)
	counts, by := bmnet.Tally(sets)
	here := 0
	held := make([]bool, len(ids))
	for i, id := range ids {
		if ok, err := n.st.Has(ctx, id); err == nil && ok {
			counts[i]++
			here++
			held[i] = true
		}
	}
	h := apiv1.HealthInfo{Blocks: len(counts), Replicas: n.cfg.Replicas}
	if here > 0 {
		h.Holders = append(h.Holders, apiv1.HolderInfo{Peer: n.net.Host.ID().String(), Self: true, Blocks: here})
	}
	others := make([]apiv1.HolderInfo, 0, len(by))
	for p, c := range by {
		others = append(others, apiv1.HolderInfo{Peer: p.String(), Blocks: c})
	}
	sort.Slice(others, func(i, j int) bool {
		if others[i].Blocks != others[j].Blocks {
			return others[i].Blocks > others[j].Blocks
		}
		return others[i].Peer < others[j].Peer
	})
	h.Holders = append(h.Holders, others...)
	h.Count(counts)
	n.siteRisk(&h, sets, func(i int) bool { return held[i] })
	n.partnerRisk(&h, sets, func(i int) bool { return held[i] })
	h.Judge()
	return h, nil
}

// Repair gives each block of a file at least replicas holders among the
// other nodes closest to it: a block missing here is fetched first (a
// file at risk may have lost its holders, not its other copies). It
// answers the file's health afterwards.
func (n *Node) Repair(ctx context.Context, rc recipe.Recipe) (apiv1.HealthInfo, error) {
	if h, ok, err := n.stripedHealth(ctx, rc, true); ok {
		return h, err
	}
	ids, err := n.fileBlocks(ctx, rc)
	if err != nil {
		return apiv1.HealthInfo{}, err
	}
	fetch := n.fetcher(ctx, rc)
	sets := n.net.HolderSets(ctx, ids, n.cfg.Replicas+2)
	// A block whose copies stand in one site of two is handed off too
	// (HandOff adds one in another site).
	one := n.oneSite(sets, func(int) bool { return false })
	// And so is a block with no copy on a partner donor (HandOff gives
	// it to the closest).
	none := n.noPartner(sets, func(int) bool { return false })
	for i, id := range ids {
		if len(sets[i]) >= n.cfg.Replicas && !one[i] && !none[i] {
			continue
		}
		data, err := fetch.Get(ctx, id)
		if err != nil {
			continue // nowhere: health says lost
		}
		b, err := blocks.NewBlock(data)
		if err != nil || b.ID() != id {
			continue
		}
		_, _ = n.net.HandOff(ctx, b, n.cfg.Replicas)
	}
	return n.Health(ctx, rc)
}

// recordingGetter notes every block ID a rebuild asks for: the file's
// blocks, descriptor included.
type recordingGetter struct {
	g    *mixer.CachedGetter
	mu   sync.Mutex
	seen map[blocks.ID]bool
	list []blocks.ID
}

func (r *recordingGetter) note(id blocks.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[id] {
		r.seen[id] = true
		r.list = append(r.list, id)
	}
}

func (r *recordingGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	r.note(id)
	return r.g.Get(ctx, id)
}

// View implements mixer.Viewer.
func (r *recordingGetter) View(ctx context.Context, id blocks.ID) ([]byte, error) {
	r.note(id)
	return r.g.View(ctx, id)
}

func (r *recordingGetter) ids() []blocks.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]blocks.ID(nil), r.list...)
}

// progressFunc adapts a func to mixer.Progress.
type progressFunc func(n int64)

// Add implements mixer.Progress; a nil func does nothing.
func (f progressFunc) Add(n int64) {
	if f != nil {
		f(n)
	}
}

// Open rebuilds a file with blocks from the store and the network: the
// Fetcher asks the closest nodes, then the file's providers (looked up in
// the background), then everyone.
func (n *Node) Open(ctx context.Context, rc recipe.Recipe) (*recipe.Reader, error) {
	f := n.fetcher(ctx, rc)
	f.Keep = n.keepFetched
	g, err := n.striped(ctx, f, rc)
	if err != nil {
		return nil, err
	}
	return recipe.Open(ctx, mixer.NewCachedGetter(g, n.cfg.Profile.CacheBytes), rc, recipe.Options{Workers: n.cfg.Profile.Workers})
}

// keepFetched says whether a block fetched for a read may stay in the
// store: within --cache and the quota.
func (n *Node) keepFetched(_ blocks.ID, size int) bool { return n.keeper.Keep(n.cache.Load(), size) }

// fetcher returns a Fetcher for rc's blocks with the file's providers,
// looked up in the background until ctx ends, as hints.
func (n *Node) fetcher(ctx context.Context, rc recipe.Recipe) *bmnet.Fetcher {
	f := bmnet.NewFetcher(n.net, n.st)
	f.Near = n.cfg.Replicas
	f.Streams = n.cfg.Profile.Streams
	f.Observe = func(d time.Duration, size int) {
		n.m.BlocksFetched.Inc()
		n.m.BytesFetched.Add(float64(size))
		n.m.FetchSeconds.Observe(d.Seconds())
	}
	n.background(func(nctx context.Context) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(nctx, cancel)
		defer stop()
		for p := range n.net.FileProviders(ctx, rc.Root[0], 8) {
			f.Hint(p)
		}
	})
	return f
}

// Put mixes r into the store, syncs it, places every block the file needs
// on the replicas closest nodes and announces the file. It reads r a part
// at a time (a few blocks) holding no node-wide lock, and takes the
// node's lock only to mix a part it has read: a slow upload holds up no
// other put, gc or get. Each part's blocks are pushed while the next
// parts are mixed (at most a few slices of blocks ahead: see
// net.Placer), so the network's work overlaps the disk's. On error the
// blocks it stored are deleted again (copies already pushed stay with
// their holders, as unreferenced blocks).
func (n *Node) Put(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error) {
	note, err := putlog.Begin(n.repo.Path(repo.PutsDir), n.st)
	if err != nil {
		return apiv1.PutInfo{}, err
	}
	up := recipe.NewUpload(size, name, typ)
	up.Dir = n.repo.Path(repo.PutsDir)
	defer up.Close()
	// The part's new blocks go to the placer from memory, not read back,
	// in buffers it gives back once they are placed.
	var made []blocks.Block
	up.Stored = func(b blocks.Block) { made = append(made, cloneBlock(b)) }
	n.mu.Lock()
	n.uploads[up] = true
	if n.putting++; n.putting == 1 {
		n.gcPercent = memtrim.TightenForPut()
	}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.putting--; n.putting == 0 {
			n.gcPercent()
		}
	}()
	pctx, cancelPlace := context.WithCancel(ctx)
	defer cancelPlace()
	// Every block the file needs goes out, randomizers included: the
	// uploader may leave.
	red := n.redundancyFor(ctx)
	var placer *bmnet.Placer // nil for erasure coding: placeStriped places after the put
	var pp parityPut
	if red.Scheme.IsZero() {
		placer = n.net.NewPlacer(pctx, n.st, red.Replicas)
		placer.Release = releaseBlock
	} else {
		up.Attach = n.parityAttach(red.Scheme, &pp)
	}
	res, err := n.upload(ctx, up, r, name, placer, func() []blocks.Block { bs := made; made = nil; return bs })
	if err != nil {
		cancelPlace()
		_, _, _ = placer.Close()
		n.mu.Lock()
		delete(n.uploads, up)
		n.discard(ctx, up)
		n.mu.Unlock()
		note.End()
		return apiv1.PutInfo{}, err
	}
	err = n.st.Sync()
	note.End() // recorded and durable: the blocks are the file's
	if err != nil {
		cancelPlace()
		_, _, _ = placer.Close()
		return apiv1.PutInfo{}, fmt.Errorf("sync store: %w", err)
	}
	n.keeper.Added(res.NewBlocks, res.NewBytes)
	n.m.PutFiles.Inc()
	n.m.PutBytes.Add(float64(res.Recipe.Size))
	info := apiv1.PutInfo{
		Recipe: res.Recipe.String(), URL: res.Recipe.URL(""), Name: res.Recipe.Name, Size: res.Recipe.Size,
		Type: res.Recipe.Type, NewBytes: res.NewBytes, NewBlocks: res.NewBlocks, Blocks: res.NBlock, Replicas: red.Replicas,
		DataBlocks: res.Tuples, Redundancy: red.String(),
	}
	for _, st := range pp.man.Stripes { // the parity blocks are new too
		info.NewBlocks += len(st.Parity)
		info.NewBytes += int64(len(st.Parity) * st.Size)
	}
	// The same file shared before under the same name: keep the first
	// recipe and its one row in the list, and place that file's blocks.
	// (Under dedupMu: two puts of one file at once must not each find
	// the other and both go.)
	n.dedupMu.Lock()
	old, again := n.sharedBefore(ctx, res.Recipe)
	if again {
		// This put's blocks are forgotten: once they are, another put's
		// forget may delete them while they wait here to be placed
		// ("read block to place: block not found"). Their placement
		// stops first; a new one places the listed file's.
		cancelPlace()
		_, _, _ = placer.Close()
		n.forget(ctx, up, res)
	}
	n.dedupMu.Unlock()
	if again && placer != nil {
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		placer = n.net.NewPlacer(pctx, n.st, red.Replicas)
		placer.Release = releaseBlock
	}
	if again {
		info.Recipe, info.URL, info.NewBlocks, info.NewBytes, info.Blocks = old.Recipe, "", 0, 0, old.NBlock
		if orc, err := recipe.Parse(old.Recipe); err == nil {
			info.URL = orc.URL("")
		}
		info.SharedBefore = old.Added
	}
	// The data blocks went to the placer as they were mixed; now the
	// descriptor's, or, for a file shared before, that file's (placed
	// then: whatever is short now goes again).
	testhook.HoldPlacement(ctx, name)
	if again {
		// An error comes from Close.
		_ = n.st.FileBlocks(ctx, old.Key, func(ids []blocks.ID) error { return placer.Add(ids...) })
	} else {
		_ = placer.Add(up.TakeBlocks()...)
	}
	short, nodes, err := placer.Close()
	if !red.Scheme.IsZero() && ctx.Err() == nil && !again {
		info.Replicas = n.metaReplicas(red.Scheme)
		short, nodes, err = n.placeStriped(ctx, pp, res.Recipe.Root)
	}
	if ctx.Err() != nil && info.SharedBefore.IsZero() {
		// The uploader cancelled while the blocks went out: the file
		// leaves the list and its new blocks go, so that nothing stays
		// that nobody asked for (and no file shows "at risk").
		n.forget(ctx, up, res)
		return apiv1.PutInfo{}, fmt.Errorf("put %s cancelled while placing its blocks: %w", name, ctx.Err())
	}
	if err != nil && !errors.Is(err, bmnet.ErrUnderReplicated) {
		return info, err
	}
	info.Short, info.Nodes = &short, nodes
	if err != nil {
		info.Placement = err.Error()
		n.log.Warn("put: blocks short of copies", slog.String("name", info.Name), slog.Int("short", short), slog.Any("err", err))
	}
	n.log.Info("put", slog.String("name", info.Name), slog.Int64("size", info.Size), slog.Int("blocks", info.Blocks),
		slog.Int("new_blocks", info.NewBlocks), slog.Int("nodes", nodes))
	// While this node is up, it is one more place to get the whole file.
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = n.net.ProvideFile(actx, res.Recipe.Root[0])
	return info, nil
}

// forget takes a just-recorded put's file off the list again and deletes
// the blocks the put stored that nothing else uses: its data blocks
// (up.New) and its descriptor's, told from older blocks it mixed with by
// their arrival order. Blocks held for other nodes, used by a file or by
// a running put stay. The keeper then counts the store again.
func (n *Node) forget(ctx context.Context, up *recipe.Upload, res recipe.PutResult) {
	ctx = context.WithoutCancel(ctx)
	var listed []blocks.ID // rare: a put that is not kept
	_ = n.st.FileBlocks(ctx, res.Recipe.Key(), func(ids []blocks.ID) error { listed = append(listed, ids...); return nil })
	if err := n.st.RemoveFile(ctx, res.Recipe.Key()); err != nil {
		n.log.Warn("put: file not taken off the list", slog.String("name", res.Recipe.Name), slog.Any("err", err))
		return
	}
	n.likes.forgotten(res.Recipe)
	n.mu.Lock()
	since := ^uint64(0)
	for _, id := range up.New() {
		if m, err := n.st.Stat(ctx, id); err == nil {
			since = min(since, m.Seq)
		}
	}
	busy := n.uploadBlocks()
	var gone []blocks.ID
	for _, id := range blocks.Dedup(append(append([]blocks.ID(nil), up.New()...), listed...)) {
		m, err := n.st.Stat(ctx, id)
		if err != nil || busy[id] || m.Refs > 0 || m.Seq < since || blocks.HeldForNetwork(m.Tag) {
			continue
		}
		gone = append(gone, id)
	}
	mixer.Discard(ctx, n.st, gone)
	if len(gone) > 0 {
		n.mixer = nil
	}
	n.mu.Unlock()
	if err := n.keeper.Count(ctx); err != nil {
		n.log.Warn("put: store not counted again", slog.Any("err", err))
	}
}

// sharedBefore finds a file on the list, other than rc's, with the same
// name, type, size and whole-file hash as rc (read from the descriptors
// in the local store; nothing is fetched).
func (n *Node) sharedBefore(ctx context.Context, rc recipe.Recipe) (blocks.FileRecord, bool) {
	fs, err := n.filesLike(ctx, rc)
	if err != nil {
		return blocks.FileRecord{}, false
	}
	var sum *[32]byte
	for _, f := range fs {
		if f.Key == rc.Key() || f.Size != rc.Size || f.Name != rc.Name || f.Type != rc.Type {
			continue
		}
		if sum == nil {
			r, err := recipe.Open(ctx, n.st, rc, recipe.Options{})
			if err != nil {
				return blocks.FileRecord{}, false
			}
			s := r.SHA256()
			sum = &s
		}
		orc, err := recipe.Parse(f.Recipe)
		if err != nil {
			continue
		}
		r, err := recipe.Open(ctx, n.st, orc, recipe.Options{})
		if err != nil || r.SHA256() != *sum {
			continue
		}
		return f, true
	}
	return blocks.FileRecord{}, false
}

// upload reads r a part at a time, without the node's lock, and mixes
// each part under it, handing the part's blocks to placer outside the
// lock (it waits while the network is behind): made returns the new
// blocks up.Stored collected since its last call. Then it writes the
// descriptor and records the file. A recorded upload leaves n.uploads:
// its blocks are the file's.
func (n *Node) upload(ctx context.Context, up *recipe.Upload, r io.Reader, name string, placer *bmnet.Placer, made func() []blocks.Block) (recipe.PutResult, error) {
	buf := make([]byte, up.PartSize())
	for last := false; !last; {
		k, err := io.ReadFull(r, buf)
		last = err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return recipe.PutResult{}, fmt.Errorf("mix %s: read source: %w", name, err)
		}
		var ids []blocks.ID
		var bs []blocks.Block
		if err := n.withMixer(func(m *mixer.Mixer) error {
			err := up.Add(ctx, m, buf[:k], last, nil)
			ids, bs = up.TakeBlocks(), made()
			return err
		}); err != nil {
			return recipe.PutResult{}, err
		}
		// A placement that failed does not stop the put: the file is
		// still recorded here, and Close tells why its copies are missing.
		// The new blocks first, from memory: their IDs then come again.
		_ = placer.AddBlocks(bs...)
		_ = placer.Add(ids...)
	}
	var res recipe.PutResult
	err := n.withMixer(func(m *mixer.Mixer) (err error) {
		if res, err = up.Finish(ctx, m, n.st); err == nil {
			n.likes.recorded(res.Recipe)
			delete(n.uploads, up)
			if len(n.uploads) == 0 {
				// The last put for now: the Mixer's cache and its
				// session's choices (which grow with every block mixed)
				// go; the next put's Mixer reads the store as it is then.
				n.mixer = nil
			}
		}
		return err
	})
	return res, err
}

// blockBufs holds buffers for copies of a put's new 128 KiB blocks on
// their way to the placer: one 128 KiB allocation per block stored made
// much of a networked put's garbage.
var blockBufs = sync.Pool{New: func() any { b := make([]byte, mixer.Large); return &b }}

// cloneBlock copies b, a 128 KiB block into a buffer of blockBufs,
// any other with Clone.
func cloneBlock(b blocks.Block) blocks.Block {
	if len(b.Data()) != mixer.Large {
		return b.Clone()
	}
	return b.CloneInto(*blockBufs.Get().(*[]byte))
}

// releaseBlock gives a block copied by cloneBlock back to blockBufs once
// nothing reads it any more.
func releaseBlock(b blocks.Block) {
	if buf := b.Data(); cap(buf) == mixer.Large {
		buf = buf[:0]
		blockBufs.Put(&buf)
	}
}

// putCacheBytes bounds the randomizer bytes the node's Mixer caches: the
// popular randomizers (a few MiB) stay in memory, within a put's budget.
const putCacheBytes = 8 << 20

// withMixer runs fn with the node's Mixer, made when there is none, under
// the node's lock. A failure drops the Mixer: a failed mix leaves it
// unusable.
func (n *Node) withMixer(fn func(*mixer.Mixer) error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mixer == nil {
		m, err := mixer.New(n.st, mixer.Options{CacheBytes: putCacheBytes})
		if err != nil {
			return err
		}
		n.mixer = m
	}
	if err := fn(n.mixer); err != nil {
		n.mixer = nil
		return err
	}
	return nil
}

// uploadBlocks returns every block the running uploads use: unreferenced
// until their files are recorded, yet not to be deleted. Called with n.mu
// held.
func (n *Node) uploadBlocks() map[blocks.ID]bool {
	busy := map[blocks.ID]bool{}
	for up := range n.uploads {
		up.Used(func(id blocks.ID) { busy[id] = true })
	}
	return busy
}

// discard deletes the blocks a failed upload stored, but for those that
// are not its alone any more: used by another running upload, or by a
// file recorded meanwhile (both may have picked them as randomizers). The
// Mixer goes too: its pools name the deleted blocks. Called with n.mu
// held and up out of n.uploads.
func (n *Node) discard(ctx context.Context, up *recipe.Upload) {
	ctx = context.WithoutCancel(ctx)
	busy := n.uploadBlocks()
	var gone []blocks.ID
	for _, id := range up.New() {
		if busy[id] {
			continue
		}
		if m, err := n.st.Stat(ctx, id); err != nil || m.Refs > 0 {
			continue
		}
		gone = append(gone, id)
	}
	mixer.Discard(ctx, n.st, gone)
	if len(gone) > 0 {
		n.mixer = nil
	}
}

// Pin rebuilds rc from g (checking the whole file), makes st durable, and
// records the file with every block it used once kept (if not nil) says
// every block is in the store; a file already recorded keeps its record
// (its name as first given). opt may be nil.
func Pin(ctx context.Context, st *blocks.Disk, g blocks.Getter, rc recipe.Recipe, opt *recipe.Options, kept func() error) error {
	o := recipe.Options{}
	if opt != nil {
		o = *opt
	}
	rec := &recordingGetter{g: mixer.NewCachedGetter(g, 32<<20), seen: map[blocks.ID]bool{}}
	r, err := recipe.Open(ctx, rec, rc, o)
	if err != nil {
		return err
	}
	if _, err := r.WriteTo(io.Discard); err != nil {
		return err
	}
	if kept != nil {
		if err := kept(); err != nil {
			return err
		}
	}
	if err := st.Sync(); err != nil {
		return fmt.Errorf("sync store: %w", err)
	}
	// A file already on the list keeps its record: the same recipe
	// spelt in capitals (base32 reads either) must not rename it.
	if _, err := st.Record(ctx, rc.Key()); err == nil {
		return nil
	}
	if err := st.AddFile(ctx, blocks.FileRecord{
		Key: rc.Key(), Name: rc.Name, Size: rc.Size, Type: rc.Type,
		Recipe: rc.String(), Added: time.Now().UTC(), Blocks: rec.ids(),
	}); err != nil {
		return fmt.Errorf("record file: %w", err)
	}
	return nil
}

// Verifiable is what VerifyStore needs of a store.
type Verifiable interface {
	blocks.Getter
	blocks.Resumable
	Stats(ctx context.Context) (blocks.Stats, error)
	Quarantine(ctx context.Context, id blocks.ID, reason string) error
	Sync() error
}

// VerifyStore re-hashes every block of st, quarantines the ones whose
// bytes do not match their ID, and syncs st. It walks the index a page at
// a time; a verify that stopped part way (interrupted, killed) is
// continued where it stopped, and ResumedAt says how much of the store the
// earlier one had checked. onTotal (nil: none) gets the bytes to check
// first (estimated from the store's counters when resuming) and returns
// what counts the bytes read. Corrupt blocks are listed in the answer, not
// returned as an error. Quarantined is never nil.
func VerifyStore(ctx context.Context, st Verifiable, onTotal func(total int64) mixer.Progress) (apiv1.VerifyInfo, error) {
	stats, err := st.Stats(ctx)
	if err != nil {
		return apiv1.VerifyInfo{}, fmt.Errorf("verify: %w", err)
	}
	from, err := blocks.NextPass(st, "verify")
	if err != nil {
		return apiv1.VerifyInfo{}, fmt.Errorf("verify: %w", err)
	}
	out := apiv1.VerifyInfo{Quarantined: []blocks.ID{}, ResumedAt: blocks.Fraction(from)}
	var bar mixer.Progress = progressFunc(nil)
	if onTotal != nil {
		bar = onTotal(int64(float64(stats.Bytes) * (1 - out.ResumedAt)))
	}
	_, err = blocks.Walk(ctx, st, "verify", 1024, func(ids []blocks.ID, _ []blocks.Meta) error {
		for _, id := range ids {
			b, err := blocks.GetVerified(ctx, st, id)
			switch {
			case errors.Is(err, blocks.ErrCorrupt), errors.Is(err, blocks.ErrTooLarge):
				if qerr := st.Quarantine(ctx, id, err.Error()); qerr != nil {
					return fmt.Errorf("quarantine %s: %w", id, qerr)
				}
				out.Quarantined = append(out.Quarantined, id)
			case errors.Is(err, blocks.ErrNotFound) && ctx.Err() == nil:
				// Deleted or quarantined since the listing (a daemon serves
				// and verifies at the same time): nothing to check.
				continue
			case err != nil:
				return fmt.Errorf("read %s: %w", id, err)
			}
			out.Checked++
			out.Bytes += int64(len(b))
			bar.Add(int64(len(b)))
		}
		return nil
	})
	if err != nil {
		// The mark stays before the page that failed: the next verify
		// continues there, once the marks are durable.
		_ = st.Sync()
		return out, err
	}
	if err := st.Sync(); err != nil {
		return out, fmt.Errorf("sync store: %w", err)
	}
	return out, nil
}
