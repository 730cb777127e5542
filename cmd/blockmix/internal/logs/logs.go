// Package logs makes the daemon's logger: log/slog, text or JSON, at a
// level the operator chooses. Text reads well in journalctl; JSON parses.
package logs

import (
	"io"
	"log/slog"
	"strings"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
)

// New returns a logger writing to w at level ("debug", "info", "warn" or
// "error") in format ("text" or "json"). Bad names are usage errors.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usage.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opt := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opt)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opt)), nil
	}
	return nil, usage.Errorf("--log-format %q: want text or json", format)
}

// Discard is a logger that writes nothing, for tests and offline commands.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
