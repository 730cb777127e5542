package live

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
)

// saveEvery is how often a sync pass saves what it wrote so far.
const saveEvery = 2 * time.Second

// runSync follows j's link: every Poll it looks up the newest record and,
// when it is newer than the version synced last (or the last pass did not
// finish), brings the folder to it. Each lookup also keeps the link
// alive: kad-dht puts the newest record back on the closest nodes that
// lacked it (an expired or a new holder), so a link keeps its version
// while anyone follows it, publisher or not.
func (m *Manager) runSync(ctx context.Context, j *job) {
	pending := true // a pass that did not finish is tried again
	every(ctx, func() time.Duration { return m.opt.Poll }, nil, func(bool) {
		rec, payload, err := m.lookup(ctx, j.link)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if err != nil {
			state := "error"
			if errors.Is(err, ErrNoVersion) {
				state = "waiting"
			}
			m.note(j, func(j *job) { j.State, j.Message, j.Checked = state, err.Error(), now })
			return
		}
		if rec.Seq < j.Seq || rec.Seq == j.Seq && !pending {
			m.note(j, func(j *job) { j.Checked = now })
			return
		}
		pending = !m.apply(ctx, j, rec, string(payload))
	})
}

// apply brings j's folder to one version: it fetches the files whose key
// differs from the last version's (or that are missing here), writes each
// beside its final name and renames it there, and removes the files the
// version no longer has. A local file that changed since the last sync is
// never lost: when the version changes it too, the local one is renamed
// to "name (conflict DATE TIME).ext" beside it; when the version drops
// it, it stays. It reports whether every file was done.
func (m *Manager) apply(ctx context.Context, j *job, rec Record, folder string) bool {
	m.note(j, func(j *job) { j.State, j.Message = "working", fmt.Sprintf("syncing version %d", rec.Seq) })
	fail := func(err error) bool {
		if ctx.Err() == nil {
			m.update(j, func(j *job) { j.State, j.Message, j.Checked = "error", err.Error(), time.Now() })
			m.log.Warn("live folder: sync failed", slog.String("dir", j.Dir), slog.Uint64("seq", rec.Seq), slog.Any("err", err))
		}
		return false
	}
	entries, err := m.f.Entries(ctx, folder)
	if err != nil {
		return fail(fmt.Errorf("read version %d: %w", rec.Seq, err))
	}
	// The version's paths first: what it dropped goes before anything is
	// written (a file may have become a folder, or the reverse).
	seen := map[string]bool{}
	var take []Entry
	for _, e := range entries {
		rel, err := cleanRel(e.Path)
		if err != nil {
			m.log.Warn("live folder: a file of the version is refused", slog.String("dir", j.Dir), slog.Any("err", err))
			continue
		}
		if !seen[rel] {
			seen[rel] = true
			take = append(take, e)
		}
	}
	var conflicts, kept []string
	for rel, last := range j.FileStates {
		if seen[rel] {
			continue
		}
		dest := filepath.Join(j.Dir, filepath.FromSlash(rel))
		if fi, err := os.Lstat(dest); err == nil {
			if !same(fi, last) {
				kept = append(kept, rel)
				m.log.Warn("live folder: a file the version dropped was changed here: kept", slog.String("dir", j.Dir), slog.String("file", rel))
			} else if err := os.Remove(dest); err != nil {
				return fail(err)
			} else {
				removeEmptyParents(j.Dir, dest)
			}
		}
		m.note(j, func(j *job) { delete(j.FileStates, rel) })
	}
	fetched, saved := 0, time.Now()
	for _, e := range take {
		rel := e.Path
		dest := filepath.Join(j.Dir, filepath.FromSlash(rel))
		last, had := j.FileStates[rel]
		local, lerr := os.Lstat(dest)
		changed := lerr == nil && (!had || !same(local, last))
		if had && last.Key == e.Key && lerr == nil {
			continue // the same version here; a local change of it stays
		}
		if err := safeParents(j.Dir, rel); err != nil {
			m.log.Warn("live folder: a file of the version is refused", slog.String("dir", j.Dir), slog.Any("err", err))
			continue
		}
		conflict, fs, err := m.writeFile(ctx, e, dest, changed)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", rel, err))
		}
		fetched++
		if conflict != "" {
			c, _ := filepath.Rel(j.Dir, conflict)
			conflicts = append(conflicts, filepath.ToSlash(c))
			m.log.Warn("live folder: a local change was kept beside the new version", slog.String("dir", j.Dir), slog.String("file", rel), slog.String("kept_as", c))
		}
		m.note(j, func(j *job) { j.FileStates[rel] = fs })
		if time.Since(saved) > saveEvery {
			// A crash loses at most saveEvery of this memory: those files
			// are then compared byte for byte, not taken for conflicts.
			m.update(j, func(*job) {})
			saved = time.Now()
		}
	}
	m.update(j, func(j *job) {
		j.Seq, j.Recipe, j.Version, j.Checked, j.Files = rec.Seq, folder, rec.Time, time.Now(), len(seen)
		j.State, j.Message = "ok", ""
		if len(conflicts) > 0 {
			j.Conflicts = append(j.Conflicts, conflicts...)
			j.Conflicts = j.Conflicts[max(0, len(j.Conflicts)-maxConflicts):]
			j.State = "conflict"
			j.Message = fmt.Sprintf("version %d: %d local change(s) kept beside the new version: %s", rec.Seq, len(conflicts), strings.Join(conflicts, ", "))
		}
		if len(kept) > 0 {
			j.Message = strings.TrimSpace(j.Message + fmt.Sprintf(" version %d dropped %d file(s) changed here; kept: %s", rec.Seq, len(kept), strings.Join(kept, ", ")))
		}
	})
	m.log.Info("live folder: synced", slog.String("dir", j.Dir), slog.Uint64("seq", rec.Seq), slog.Int("fetched", fetched), slog.Int("conflicts", len(conflicts)))
	return true
}

// removeEmptyParents removes the folders between dest and root that are
// left empty.
func removeEmptyParents(root, dest string) {
	for d := filepath.Dir(dest); d != root && strings.HasPrefix(d, root+string(filepath.Separator)); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			return
		}
	}
}

// same reports whether the local file is as the sync left it.
func same(fi fs.FileInfo, last fileState) bool {
	return fi.Mode().IsRegular() && fi.Size() == last.Size && fi.ModTime().UnixNano() == last.MTime
}

// writeFile writes e's bytes beside dest, then renames them over it. When
// changed (the local file is not as the last sync left it) and the bytes
// differ, the local file is first renamed to a conflict name, which
// writeFile returns.
func (m *Manager) writeFile(ctx context.Context, e Entry, dest string, changed bool) (conflict string, st fileState, err error) {
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", st, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+atomicfile.PartialMarker+"*")
	if err != nil {
		return "", st, err
	}
	defer os.Remove(tmp.Name())
	err = m.f.WriteFile(ctx, e, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", st, err
	}
	perm := e.Mode.Perm() | 0o600
	if e.Mode.Perm() == 0 {
		perm = 0o644
	}
	if err := os.Chmod(tmp.Name(), perm); err != nil {
		return "", st, err
	}
	if !e.ModTime.IsZero() {
		if err := os.Chtimes(tmp.Name(), time.Time{}, e.ModTime); err != nil {
			return "", st, err
		}
	}
	if changed && !sameBytes(tmp.Name(), dest) {
		conflict = conflictName(dest, time.Now())
		if err := os.Rename(dest, conflict); err != nil {
			return "", st, fmt.Errorf("keep the local change: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return conflict, st, err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return conflict, st, err
	}
	fi, err := os.Lstat(dest)
	if err != nil {
		return conflict, st, err
	}
	return conflict, fileState{Key: e.Key, Size: fi.Size(), MTime: fi.ModTime().UnixNano()}, nil
}

// sameBytes reports whether files a and b hold the same bytes.
func sameBytes(a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		return false
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	sa, _ := fa.Stat()
	sb, _ := fb.Stat()
	if sa == nil || sb == nil || sa.Size() != sb.Size() || !sb.Mode().IsRegular() {
		return false
	}
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := fa.Read(ba)
		nb, eb := fb.Read(bb[:na])
		if nb != na || string(ba[:na]) != string(bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return ea != nil && na == 0
		}
	}
}

// conflictName is "name (conflict 2026-12-02 0712).ext" beside path, with
// " 2", " 3"… added when that is taken.
func conflictName(p string, at time.Time) string {
	ext := filepath.Ext(p)
	base := strings.TrimSuffix(p, ext)
	stamp := at.Format("2006-01-02 1504")
	for i := 1; ; i++ {
		n := base + " (conflict " + stamp + ")" + ext
		if i > 1 {
			n = base + " (conflict " + stamp + " " + strconv.Itoa(i) + ")" + ext
		}
		if _, err := os.Lstat(n); errors.Is(err, os.ErrNotExist) {
			return n
		}
	}
}

// cleanRel checks a path from a folder version (a stranger's): relative,
// slash-separated, clean, within the folder, no part that is empty, "."
// or "..", none with a backslash or NUL, not one of atomicfile's
// temporary names.
func cleanRel(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.ContainsAny(p, "\\\x00") {
		return "", fmt.Errorf("unsafe path %q", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." || strings.Contains(part, atomicfile.PartialMarker) {
			return "", fmt.Errorf("unsafe path %q", p)
		}
	}
	return p, nil
}

// safeParents refuses a path whose folders inside root exist as anything
// but folders (a symbolic link could lead the write out of root).
func safeParents(root, rel string) error {
	parts := strings.Split(rel, "/")
	p := root
	for _, part := range parts[:len(parts)-1] {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: %s is not a folder here (a link or a file): refused", rel, p)
		}
	}
	return nil
}
