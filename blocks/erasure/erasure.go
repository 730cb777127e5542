// Package erasure adds Reed-Solomon parity to a file's blocks: the
// blocks are cut into stripes of K blocks of one size, each stripe gets M
// parity blocks (github.com/klauspost/reedsolomon), and any K of a
// stripe's K+M blocks give back the others. A Manifest lists the stripes;
// a Getter rebuilds a block that cannot be fetched from the rest of its
// stripe. Parity blocks are blocks like the others: content-addressed,
// verified, and as random-looking as the noise they are computed from.
//
// The package imports blocks only; where a manifest is kept and where
// the blocks go is the caller's business.
package erasure

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds of a scheme: K data blocks and M parity blocks per stripe.
// K = 1 would be replication (use r:N); K+M stays small so that a stripe
// fits on the nodes of a small group.
const (
	MinK = 2
	MaxK = 16
	MinM = 1
	MaxM = 8
)

// Scheme is K+M: K data blocks, M parity blocks per stripe. The zero
// Scheme means no parity (replication).
type Scheme struct{ K, M int }

// IsZero reports whether s is no parity at all.
func (s Scheme) IsZero() bool { return s.K == 0 && s.M == 0 }

// Valid returns an error saying what is wrong with s, or nil.
func (s Scheme) Valid() error {
	switch {
	case s.K < MinK || s.K > MaxK:
		return fmt.Errorf("%w: K = %d data blocks per stripe; K must be %d to %d (K = 1 is replication: say r:N)", ErrBadRedundancy, s.K, MinK, MaxK)
	case s.M < MinM || s.M > MaxM:
		return fmt.Errorf("%w: M = %d parity blocks per stripe; M must be %d to %d", ErrBadRedundancy, s.M, MinM, MaxM)
	}
	return nil
}

func (s Scheme) String() string { return fmt.Sprintf("rs:%d+%d", s.K, s.M) }

// ErrBadRedundancy: a redundancy setting does not parse or is out of
// bounds.
var ErrBadRedundancy = errors.New("bad redundancy")

// Redundancy is how a put keeps a file: Replicas copies of every block
// (Scheme zero), or Reed-Solomon stripes (Scheme set; Replicas is then
// the copies of the few blocks outside the stripes: the descriptor's root
// and the manifest).
type Redundancy struct {
	Replicas int
	Scheme   Scheme
}

// String spells r as ParseRedundancy reads it.
func (r Redundancy) String() string {
	if r.Scheme.IsZero() {
		return "r:" + strconv.Itoa(r.Replicas)
	}
	return r.Scheme.String()
}

// MaxReplicas bounds r:N (as the settings do).
const MaxReplicas = 16

// ParseRedundancy reads "r:N" (N copies of every block, 1..16; a bare
// "N" too) or "rs:K+M" (Reed-Solomon, K data and M parity blocks per
// stripe). For rs, Replicas is set to M+1, enough for the root and the
// manifest to survive the M lost nodes the stripes survive; a caller may
// raise it. Errors wrap ErrBadRedundancy and say what is accepted.
func ParseRedundancy(s string) (Redundancy, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	usage := func(why string) error {
		return fmt.Errorf("%w: %q %s; say r:N (N copies of every block, e.g. r:3) or rs:K+M (Reed-Solomon: K data and M parity blocks per stripe on K+M nodes, e.g. rs:4+2)", ErrBadRedundancy, s, why)
	}
	switch {
	case strings.HasPrefix(t, "rs:"):
		k, m, ok := strings.Cut(t[3:], "+")
		if !ok {
			return Redundancy{}, usage("has no +")
		}
		K, err1 := strconv.Atoi(k)
		M, err2 := strconv.Atoi(m)
		if err1 != nil || err2 != nil {
			return Redundancy{}, usage("is not two numbers")
		}
		sc := Scheme{K: K, M: M}
		if err := sc.Valid(); err != nil {
			return Redundancy{}, err
		}
		return Redundancy{Replicas: M + 1, Scheme: sc}, nil
	case strings.HasPrefix(t, "r:"):
		t = t[2:]
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return Redundancy{}, usage("is not a redundancy")
	}
	if n < 1 || n > MaxReplicas {
		return Redundancy{}, fmt.Errorf("%w: r:%d; copies must be 1 to %d", ErrBadRedundancy, n, MaxReplicas)
	}
	return Redundancy{Replicas: n}, nil
}

type redundancyKey struct{}

// WithRedundancy returns ctx carrying a put's redundancy: how an API
// request asks the node's Put for something other than the node's
// default without changing the Put method every implementation has.
func WithRedundancy(ctx context.Context, r Redundancy) context.Context {
	return context.WithValue(ctx, redundancyKey{}, r)
}

// RedundancyFrom returns the redundancy ctx carries, if any.
func RedundancyFrom(ctx context.Context) (Redundancy, bool) {
	r, ok := ctx.Value(redundancyKey{}).(Redundancy)
	return r, ok
}
