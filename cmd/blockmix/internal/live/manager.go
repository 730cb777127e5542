package live

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Folders is what live needs of folder recipes (the node implements it
// with the folder package).
type Folders interface {
	// PutFolder mixes the folder dir into the store and places it:
	// files unchanged since the last put are not mixed again.
	PutFolder(ctx context.Context, dir string) (Put, error)
	// Entries lists the files of a folder recipe.
	Entries(ctx context.Context, folder string) ([]Entry, error)
	// WriteFile rebuilds one entry's bytes into w, fetching blocks from
	// peers as needed, and checks them.
	WriteFile(ctx context.Context, e Entry, w io.Writer) error
}

// Put is what PutFolder made.
type Put struct {
	Recipe string // the folder recipe (text)
	Files  int    // the files in it
	Mixed  int    // the files mixed anew (the others were unchanged)
}

// Entry is one file of a folder version.
type Entry struct {
	// Path is the file's path in the folder, slash-separated and
	// relative; the sync refuses any that leaves the folder.
	Path string
	// Key names the file's bytes: two entries with the same key hold the
	// same bytes (the file recipe's payload).
	Key  string
	Size int64
	// Mode's permission bits (the owner may always read and write) and
	// ModTime, when set, are given to the file written.
	Mode    fs.FileMode
	ModTime time.Time
	// Recipe is the file's own recipe (text), for WriteFile.
	Recipe string
}

// Options tune a Manager. Zero fields take the defaults.
type Options struct {
	// Poll is how often a sync looks for a new version; 5 s.
	Poll time.Duration
	// Republish is how often a watch publishes its record again (DHT
	// records expire after 36 h); 4 h. A publish that failed is tried
	// again after Poll.
	Republish time.Duration
	// Watch tunes the folder watches.
	Watch WatchOptions
	// Timeout bounds one DHT publish or lookup; 1 min.
	Timeout time.Duration
	// Repo, if set, is the repo directory: no live folder may be in it
	// or hold it.
	Repo string
}

func (o Options) withDefaults() Options {
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Republish <= 0 {
		o.Republish = 4 * time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	o.Watch = o.Watch.withDefaults()
	return o
}

// Limits on what a state and a remote folder can make the node hold.
const (
	maxConflicts = 50
	// MaxFolders bounds the watches and syncs of one node.
	MaxFolders = 256
)

// fileState is what a sync remembers of a file it wrote: the version's
// key, and the local file's size and modification time right after the
// write (a difference later is a local change).
type fileState struct {
	Key   string `json:"key"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime"` // UnixNano
}

// job is one watch or sync, as kept in the state file.
type job struct {
	// LiveFolder is what the API tells of the job (its URL is made
	// afresh from the link).
	apiv1.LiveFolder
	// Seed is a watch's Ed25519 private key seed (the state file is 0600).
	Seed []byte `json:"seed,omitempty"`
	// Record is a watch's last signed record, republished as it is.
	Record     []byte               `json:"record,omitempty"`
	FileStates map[string]fileState `json:"file_states,omitempty"` // a sync's files

	link   Link               // parsed Link
	cancel context.CancelFunc // stops the running job
	done   chan struct{}      // closed when it has stopped
}

func (j *job) info() apiv1.LiveFolder {
	f := j.LiveFolder
	f.URL, f.Conflicts = j.link.URL(""), slices.Clone(j.Conflicts)
	return f
}

// infoOf is j.info() under the lock (j's job may be changing it).
func (m *Manager) infoOf(j *job) apiv1.LiveFolder {
	m.mu.Lock()
	defer m.mu.Unlock()
	return j.info()
}

// Manager runs a node's watches and syncs and keeps them in a state file,
// so that they continue after a restart. Its methods are safe for
// concurrent use.
type Manager struct {
	path string
	f    Folders
	v    routing.ValueStore
	log  *slog.Logger
	opt  Options

	mu   sync.Mutex
	jobs []*job
	ctx  context.Context // Run's; nil before Run
	wg   sync.WaitGroup
}

// New loads the state file at path (missing: no jobs; damaged: set aside
// with a warning). Nothing runs before Run.
func New(path string, f Folders, v routing.ValueStore, log *slog.Logger, o Options) (*Manager, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{path: path, f: f, v: v, log: log, opt: o.withDefaults()}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return m, nil
	case err != nil:
		return nil, fmt.Errorf("live folders: %w", err)
	}
	var st struct{ Jobs []*job }
	if err := json.Unmarshal(b, &st); err != nil {
		aside, aerr := atomicfile.SetAside(path)
		log.Warn("the live folders' state file is damaged: set aside, the watches and syncs start empty", slog.String("file", aside), slog.Any("err", errors.Join(err, aerr)))
		return m, nil
	}
	for _, j := range st.Jobs {
		l, sealed, err := Parse(j.Link)
		if err != nil || sealed != nil || j.Kind == "watch" && len(j.Seed) != ed25519.SeedSize {
			log.Warn("a live folder in the state file is damaged: dropped", slog.String("dir", j.Dir), slog.Any("err", err))
			continue
		}
		j.link = l
		m.jobs = append(m.jobs, j)
	}
	return m, nil
}

// saveLocked writes the state file (atomically, mode 0600: it holds the
// watches' private keys). m.mu is held.
func (m *Manager) saveLocked() error {
	b, err := json.MarshalIndent(struct{ Jobs []*job }{m.jobs}, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(m.path, b, 0o600); err != nil {
		return fmt.Errorf("save the live folders: %w", err)
	}
	return nil
}

// note changes j under the lock, for what need not outlive the process
// (a state, the time of a check) or is saved soon with more.
func (m *Manager) note(j *job, fn func(j *job)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(j)
}

// update changes j under the lock and saves the state; a save that fails
// is logged (the job goes on; the next save may work).
func (m *Manager) update(j *job, fn func(j *job)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(j)
	if err := m.saveLocked(); err != nil {
		m.log.Warn("live folders", slog.Any("err", err))
	}
}

// Run starts the jobs and every job added later, and returns when ctx
// ends and they have all stopped.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.ctx = ctx
	for _, j := range m.jobs {
		m.startLocked(j)
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	m.ctx = nil // no job starts from here on
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *Manager) startLocked(j *job) {
	if m.ctx == nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	j.cancel, j.done = cancel, make(chan struct{})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(j.done)
		if j.Kind == "watch" {
			m.runWatch(ctx, j)
		} else {
			m.runSync(ctx, j)
		}
	}()
}

// List returns the watched and followed folders.
func (m *Manager) List() []apiv1.LiveFolder {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]apiv1.LiveFolder, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j.info())
	}
	return out
}

// BadInput is an error that is the request's fault (a folder that is not
// one, a damaged link): the API answers it with 400.
type BadInput struct{ error }

// BadInput implements webui.BadInput.
func (BadInput) BadInput() bool { return true }

func (e BadInput) Unwrap() error { return e.error }

func bad(format string, a ...any) error { return BadInput{fmt.Errorf(format, a...)} }

// absDir checks that dir is an absolute path to a folder (made when
// create is set and it is missing), neither inside the repo nor holding
// it: a watch of a folder that holds the repo would see each of its own
// puts as a change, forever.
func (m *Manager) absDir(dir string, create bool) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", bad("%q is not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	if r := m.opt.Repo; r != "" {
		real := func(p string) string {
			if e, err := filepath.EvalSymlinks(p); err == nil {
				return e
			}
			return filepath.Clean(p)
		}
		d, rr := real(dir), real(r)
		if within(d, rr) || within(rr, d) {
			return "", bad("%s and the repo (%s) overlap: a live folder must be outside the repo and not hold it", dir, r)
		}
	}
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", bad("cannot make the folder: %w", err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", bad("cannot read the folder: %w", err)
	}
	if !fi.IsDir() {
		return "", bad("%s is not a folder", dir)
	}
	return dir, nil
}

// within reports whether p is dir or below it (clean absolute paths).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// Watch starts publishing dir under a new live link (or returns the
// running watch of dir, sealed anew when a passphrase is given): the
// first version is put in the background; the answer's State says how
// far it got. A passphrase seals the link (Sealed).
func (m *Manager) Watch(dir string, passphrase []byte) (apiv1.LiveFolder, error) {
	dir, err := m.absDir(dir, false)
	if err != nil {
		return apiv1.LiveFolder{}, err
	}
	m.mu.Lock()
	j := m.findLocked("watch", dir)
	synced := m.findLocked("sync", dir) != nil
	m.mu.Unlock()
	if synced {
		return apiv1.LiveFolder{}, bad("%s is synced from a live link on this node: a folder cannot be both followed and published", dir)
	}
	if j == nil {
		priv, l, err := NewLink()
		if err != nil {
			return apiv1.LiveFolder{}, err
		}
		sum := sha256.Sum256(l.Pub)
		j = &job{LiveFolder: apiv1.LiveFolder{ID: "w-" + hex.EncodeToString(sum[:5]), Kind: "watch", Dir: dir, Link: l.String(),
			State: "working", Message: "putting the first version"}, Seed: priv.Seed(), link: l}
		if j, err = m.add(j); err != nil {
			return apiv1.LiveFolder{}, err
		}
	}
	info := m.infoOf(j)
	if len(passphrase) > 0 {
		s, err := j.link.Seal(passphrase)
		if err != nil {
			return apiv1.LiveFolder{}, err
		}
		m.update(j, func(j *job) { j.Sealed = s.String() })
		info.Sealed = s.String()
	}
	return info, nil
}

// Sync starts keeping dir equal to the latest version of the live link
// in text (a sealed one opens with passphrase). dir is made when missing;
// one that holds anything is refused (a BadInput) unless force is set:
// then its files are local changes to the first version (kept beside it
// when they differ).
func (m *Manager) Sync(text, dir string, passphrase []byte, force bool) (apiv1.LiveFolder, error) {
	l, err := OpenLink(text, passphrase)
	if err != nil {
		return apiv1.LiveFolder{}, err
	}
	if dir, err = m.absDir(dir, true); err != nil {
		return apiv1.LiveFolder{}, err
	}
	m.mu.Lock()
	j := m.findLocked("sync", dir)
	m.mu.Unlock()
	if j == nil && !force {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
			return apiv1.LiveFolder{}, bad("%s is not empty: a sync into it would keep its files beside the version's; give force (--force) to sync into it all the same", dir)
		}
	}
	m.mu.Lock()
	if j := m.findLocked("sync", dir); j != nil {
		m.mu.Unlock()
		if !j.link.Equal(l) {
			return apiv1.LiveFolder{}, bad("%s already follows another live link (unsync it first)", dir)
		}
		return m.infoOf(j), nil
	}
	for _, o := range m.jobs {
		if o.Kind == "watch" && o.Dir == dir {
			m.mu.Unlock()
			return apiv1.LiveFolder{}, bad("%s is watched by this node: a folder cannot be both published and followed", dir)
		}
	}
	m.mu.Unlock()
	sum := sha256.Sum256([]byte(l.String() + "\x00" + dir))
	j = &job{LiveFolder: apiv1.LiveFolder{ID: "s-" + hex.EncodeToString(sum[:5]), Kind: "sync", Dir: dir, Link: l.String(), State: "waiting",
		Message: "looking for the first version"}, FileStates: map[string]fileState{}, link: l}
	if j, err = m.add(j); err != nil {
		return apiv1.LiveFolder{}, err
	}
	return m.infoOf(j), nil
}

// OpenLink parses a live link, opening a sealed one with passphrase.
// Errors are BadInput (a damaged link, a missing or wrong passphrase).
func OpenLink(text string, passphrase []byte) (Link, error) {
	l, sealed, err := Parse(text)
	if err != nil {
		return Link{}, BadInput{err}
	}
	if sealed != nil {
		if len(passphrase) == 0 {
			return Link{}, bad("the live link is sealed: give its passphrase")
		}
		if l, err = sealed.Open(passphrase); err != nil {
			return Link{}, BadInput{err}
		}
	}
	return l, nil
}

func (m *Manager) findLocked(kind, dir string) *job {
	for _, j := range m.jobs {
		if j.Kind == kind && j.Dir == dir {
			return j
		}
	}
	return nil
}

// add saves and starts j, unless a job of its kind on its folder came
// meanwhile (two requests at once): then it returns that one.
func (m *Manager) add(j *job) (*job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.findLocked(j.Kind, j.Dir); o != nil {
		return o, nil
	}
	if len(m.jobs) >= MaxFolders {
		return nil, bad("this node already has %d live folders, the most it keeps", MaxFolders)
	}
	m.jobs = append(m.jobs, j)
	if err := m.saveLocked(); err != nil {
		m.jobs = m.jobs[:len(m.jobs)-1]
		return nil, err
	}
	m.startLocked(j)
	return j, nil
}

// Remove stops the watch or sync whose ID or folder is idOrDir, and
// forgets it (nothing in the folder is touched; a watch's link stops
// getting versions). An unknown one is a BadInput error.
func (m *Manager) Remove(kind, idOrDir string) (apiv1.LiveFolder, error) {
	m.mu.Lock()
	i := slices.IndexFunc(m.jobs, func(j *job) bool {
		return j.Kind == kind && (j.ID == idOrDir || j.Dir == filepath.Clean(idOrDir))
	})
	if i < 0 {
		m.mu.Unlock()
		return apiv1.LiveFolder{}, bad("no %s of %q on this node", kind, idOrDir)
	}
	j := m.jobs[i]
	m.jobs = slices.Delete(m.jobs, i, i+1)
	err := m.saveLocked()
	m.mu.Unlock()
	if j.cancel != nil {
		j.cancel()
		<-j.done
	}
	return m.infoOf(j), err
}

// Resolve looks up the latest version of a live link in the DHT.
func (m *Manager) Resolve(ctx context.Context, text string, passphrase []byte) (apiv1.LiveVersion, error) {
	l, err := OpenLink(text, passphrase)
	if err != nil {
		return apiv1.LiveVersion{}, err
	}
	rec, payload, err := m.lookup(ctx, l)
	if err != nil {
		return apiv1.LiveVersion{}, err
	}
	return apiv1.LiveVersion{Link: l.String(), Seq: rec.Seq, Recipe: string(payload), Version: rec.Time}, nil
}

// ErrNoVersion: the DHT has no record of the link (not published yet, or
// its publisher has been gone for longer than records live).
var ErrNoVersion = errors.New("no version of this live folder found")

// lookup finds the link's newest record in the DHT and opens it.
func (m *Manager) lookup(ctx context.Context, l Link) (Record, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opt.Timeout)
	defer cancel()
	b, err := m.v.GetValue(ctx, DHTKey(l.Pub))
	if err != nil {
		if errors.Is(err, routing.ErrNotFound) {
			return Record{}, nil, ErrNoVersion
		}
		return Record{}, nil, fmt.Errorf("%w: %w", ErrNoVersion, err)
	}
	rec, err := ParseRecord(b)
	if err != nil {
		return Record{}, nil, err
	}
	payload, err := rec.Open(l)
	if err != nil {
		return Record{}, nil, err
	}
	return rec, payload, nil
}

// every calls fn now and then each time d passes or kick fires (then
// with kicked set), until ctx ends.
func every(ctx context.Context, d func() time.Duration, kick <-chan struct{}, fn func(kicked bool)) {
	kicked := false
	for ctx.Err() == nil {
		fn(kicked)
		t := time.NewTimer(d())
		select {
		case <-ctx.Done():
		case <-kick:
			kicked = true
		case <-t.C:
			kicked = false
		}
		t.Stop()
	}
}
