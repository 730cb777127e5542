package main

import (
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress renders a byte counter as a bar on a terminal. Its Add is safe
// for concurrent use; a nil *progress does nothing.
type progress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// newProgress returns a bar on w when w is a terminal and bars are wanted,
// else nil.
func (e *env) newProgress(total int64, what string) *progress {
	f, ok := e.stderr.(*os.File)
	if e.noProgress || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionFullWidth(),
	)}
}

// Add implements mixer.Progress.
func (p *progress) Add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	_ = p.bar.Add64(n)
	p.mu.Unlock()
}

// Write counts p's bytes on the bar (the bar as an io.Writer, for a
// TeeReader or MultiWriter); it never fails.
func (p *progress) Write(b []byte) (int, error) {
	p.Add(int64(len(b)))
	return len(b), nil
}

func (p *progress) finish() {
	if p == nil {
		return
	}
	_ = p.bar.Finish()
	_ = p.bar.Clear()
}
