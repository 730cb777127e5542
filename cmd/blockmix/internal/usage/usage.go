// Package usage marks errors that are the user's bad input (a flag, an
// argument, a config key), so that the command line can exit with code 2
// for them and 1 for everything else.
package usage

import (
	"errors"
	"fmt"
)

// Error is bad input from the user.
type Error struct{ Err error }

func (e Error) Error() string { return e.Err.Error() }
func (e Error) Unwrap() error { return e.Err }

// BadInput marks the error as the request's fault for the local API
// (webui.BadInput): it answers 400.
func (e Error) BadInput() bool { return true }

// Errorf returns an Error formatted as fmt.Errorf does (%w wraps).
func Errorf(format string, a ...any) error { return Error{fmt.Errorf(format, a...)} }

// Is reports whether err is, or wraps, bad input.
func Is(err error) bool {
	var e Error
	return errors.As(err, &e)
}
