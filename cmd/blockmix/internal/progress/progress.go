// Package progress draws a byte counter as a bar on a terminal: the
// command line's renderer of mixer.Progress.
package progress

import (
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar renders a byte counter as a bar on a terminal. Its Add is safe for
// concurrent use; a nil *Bar does nothing.
type Bar struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// New returns a bar of total bytes called what on w when w is a terminal,
// else nil.
func New(w io.Writer, total int64, what string) *Bar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &Bar{bar: progressbar.NewOptions64(total,
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
func (p *Bar) Add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	_ = p.bar.Add64(n)
	p.mu.Unlock()
}

// Write counts p's bytes on the bar (the bar as an io.Writer, for a
// TeeReader or MultiWriter); it never fails.
func (p *Bar) Write(b []byte) (int, error) {
	p.Add(int64(len(b)))
	return len(b), nil
}

// Finish ends and clears the bar.
func (p *Bar) Finish() {
	if p == nil {
		return
	}
	_ = p.bar.Finish()
	_ = p.bar.Clear()
}
