package blocks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors a caller must tell apart. Implementations wrap them with
// context; test with errors.Is.
var (
	// ErrNotFound: the store does not hold the block (or the file).
	ErrNotFound = errors.New("block not found")
	// ErrCorrupt: bytes do not hash to the ID they are filed under.
	ErrCorrupt = errors.New("block is corrupt: its bytes do not match its ID")
	// ErrTooLarge: a block is larger than MaxBlockSize.
	ErrTooLarge = errors.New("block too large")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
)

// MaxBlockSize is the largest block any store accepts.
const MaxBlockSize = 1 << 20

// Check is the one place that verifies a block: it returns an error wrapping
// ErrCorrupt when data does not hash to id, and ErrTooLarge when it is over
// MaxBlockSize. Every store calls it on every write (but PutBlock, whose
// Block was hashed when it was made), on a read that has no checksum of the
// store's own to check (Mem; a Disk record of format 1), and in
// GetVerified.
func Check(id ID, data []byte) error {
	if len(data) > MaxBlockSize {
		return fmt.Errorf("block %s: %d bytes: %w", id, len(data), ErrTooLarge)
	}
	if Sum(data) != id {
		return fmt.Errorf("block %s: %w", id, ErrCorrupt)
	}
	return nil
}

// Meta is what a store keeps beside a block's bytes.
type Meta struct {
	Size int // length of the block in bytes
	// Tag is an opaque label chosen by whoever put the block; the store only
	// keeps it and answers HasTag. (The mixer uses it to track each block's
	// fresh random component.)
	Tag  uint64
	Refs int    // number of files (see FileRecord) that use the block
	Seq  uint64 // order of arrival: larger is newer; unique within a store
}

// Getter reads blocks. Get returns the block's bytes, or an error wrapping
// ErrNotFound or ErrCorrupt. The bytes are checked before they are
// returned, by a means that depends on where they come from: bytes from a
// peer are hashed against id (Check); a Disk checks a local read with the
// CRC32C its record carries, which catches damage on the disk, not a
// forgery: the bytes were hashed when they were put, and the CRC shows they
// are still those (see Disk.Get). Either way, damaged bytes are an error
// wrapping ErrCorrupt, never data. Where the bytes must be proved against
// id afresh (a scrub, verify), read them with GetVerified. The caller may
// keep and modify the returned slice.
type Getter interface {
	Get(ctx context.Context, id ID) ([]byte, error)
}

// ReadSlack is the room beyond a block's size that a GetInto needs in its
// buffer to read the block without allocating (a Disk reads the record's
// header there too).
const ReadSlack = 64

// IntoGetter is a Getter that can read a block into storage the caller
// owns, for readers that stream many blocks and reuse a few buffers.
// GetInto follows Get's contract; the bytes it returns are in buf when
// cap(buf) is at least the block's size plus ReadSlack, else maybe in a new
// array. The caller may modify them.
type IntoGetter interface {
	GetInto(ctx context.Context, id ID, buf []byte) ([]byte, error)
}

// GetInto reads id from g into buf with g's GetInto when g is an
// IntoGetter, else with Get (the bytes are then not in buf).
func GetInto(ctx context.Context, g Getter, id ID, buf []byte) ([]byte, error) {
	if ig, ok := g.(IntoGetter); ok {
		return ig.GetInto(ctx, id, buf)
	}
	return g.Get(ctx, id)
}

// Prefetcher is a Getter that can be told which blocks are wanted soon, so
// that it starts reading them before the Gets come (a Disk asks the OS to
// read their records into its page cache). A hint: blocks it does not hold
// are skipped, and it returns before the reads end.
type Prefetcher interface {
	Prefetch(ctx context.Context, ids []ID)
}

// Verifier is a Getter that can also hash what it reads: GetVerified
// follows Get's contract, and the bytes it returns hash to id (an error
// wrapping ErrCorrupt otherwise), whatever Get checks.
type Verifier interface {
	GetVerified(ctx context.Context, id ID) ([]byte, error)
}

// GetVerified reads id from g with its bytes hashed against id: with g's
// GetVerified when g is a Verifier, else with Get and then Check. It
// returns an error wrapping ErrCorrupt when they do not match.
func GetVerified(ctx context.Context, g Getter, id ID) ([]byte, error) {
	if v, ok := g.(Verifier); ok {
		return v.GetVerified(ctx, id)
	}
	data, err := g.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := Check(id, data); err != nil {
		return nil, err
	}
	return data, nil
}

// Putter writes blocks. Put checks data against id (ErrCorrupt otherwise);
// putting a block the store already holds is a no-op that keeps the first
// tag. A block is durable only after Sync.
type Putter interface {
	Put(ctx context.Context, id ID, data []byte, tag uint64) error
}

// Haver answers whether a block is held, without reading it.
type Haver interface {
	Has(ctx context.Context, id ID) (bool, error)
}

// Stater returns a block's Meta, or an error wrapping ErrNotFound.
type Stater interface {
	Stat(ctx context.Context, id ID) (Meta, error)
}

// Deleter removes a block. Deleting a missing block is not an error.
type Deleter interface {
	Delete(ctx context.Context, id ID) error
}

// Enumerator calls fn for every block in ascending ID order until fn returns
// an error, which Enumerate then returns. fn must not call back into the
// store's write methods.
type Enumerator interface {
	Enumerate(ctx context.Context, fn func(id ID, m Meta) error) error
}

// ForeignTag is the tag bit of blocks whose origin the node does not know:
// fetched from or pushed by a peer. How such blocks relate to each other
// (which of them XOR to someone's file) is unknown here, so the mixer
// never picks them as randomizers; the tags it gives its own blocks never
// have this bit.
const ForeignTag uint64 = 1 << 63

// NetworkTag, together with ForeignTag, marks a block held for the
// network: a peer pushed it here to be kept (placement or repair), unlike a
// block fetched for a file, which is only cached. The store keeps it like
// any tag, so the mark lasts across restarts and compactions. (The mixer's
// own tags may have this bit; only with ForeignTag does it mean this.)
const NetworkTag uint64 = 1 << 62

// HeldForNetwork reports whether a block tagged tag is held for the
// network (see NetworkTag).
func HeldForNetwork(tag uint64) bool {
	return tag&(ForeignTag|NetworkTag) == ForeignTag|NetworkTag
}

// pusherShift and pusherMask place a pusher's fingerprint in a push tag.
const (
	pusherShift = 30
	pusherMask  = 1<<32 - 1
)

// PusherPrint is the 32-bit fingerprint of a pusher's name that PushTag
// keeps in a block's tag (FNV-1a): enough to find the pusher again among
// the few peers an account book knows.
func PusherPrint(pusher string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(pusher); i++ {
		h ^= uint32(pusher[i])
		h *= 16777619
	}
	return h
}

// PushTag is the tag of a block pusher pushed here to be held for the
// network: ForeignTag|NetworkTag, the pusher's fingerprint (PusherPrint)
// in bits 30–61 and random in the low 30 bits (from random), the lowest
// one set so that it is never zero.
func PushTag(pusher string, random uint64) uint64 {
	return ForeignTag | NetworkTag | uint64(PusherPrint(pusher))<<pusherShift | random&(1<<pusherShift-1) | 1
}

// Pusher returns the fingerprint of the peer that pushed a block tagged
// tag, and false when tag is not a push tag (see PushTag).
func Pusher(tag uint64) (uint32, bool) {
	if !HeldForNetwork(tag) {
		return 0, false
	}
	return uint32(tag >> pusherShift & pusherMask), true
}

// TagIndex answers whether any held block carries tag. A store may
// answer true for a tag no block carries any more (a Disk, after a crash),
// never false for one that a held block carries.
type TagIndex interface {
	HasTag(ctx context.Context, tag uint64) (bool, error)
}

// FileRecord is a file the store knows: one that was put or fetched here.
// Its Blocks are every distinct block needed to rebuild it; each of them has
// its Refs counted once for this file.
type FileRecord struct {
	Key    string    `json:"key"` // unique: the recipe payload
	Name   string    `json:"name"`
	Size   int64     `json:"size"`
	Type   string    `json:"type,omitempty"`
	Recipe string    `json:"recipe"`
	Added  time.Time `json:"added"`
	Blocks []ID      `json:"-"`
	NBlock int       `json:"blocks"` // len(Blocks), filled in by Files
}

// Filer records which files use which blocks (the reference counts).
type Filer interface {
	// AddFile records f and counts one reference on each of f.Blocks
	// (duplicates are counted once). Adding a Key that exists replaces the
	// record's name and recipe but counts no new references.
	AddFile(ctx context.Context, f FileRecord) error
	// AddFileList is AddFile with f's block list given in parts, so that
	// neither the caller nor the store holds it whole: list calls add with
	// each part in turn (add keeps nothing of a part once it returns) and
	// returns the first error add returned, or its own. f.Blocks is
	// ignored. For a Key that exists, list is not called. It returns how
	// many distinct blocks the file's list holds. On error nothing is
	// recorded and no reference changes.
	AddFileList(ctx context.Context, f FileRecord, list func(add func([]ID) error) error) (int, error)
	// FileBlocks calls fn with the block list of key in parts, in the
	// order they were added (fn may keep nothing of a part once it
	// returns), and returns fn's first error. It returns an error
	// wrapping ErrNotFound for an unknown key.
	FileBlocks(ctx context.Context, key string, fn func([]ID) error) error
	// RemoveFile forgets the file and drops its references; blocks stay.
	// It returns an error wrapping ErrNotFound for an unknown key.
	RemoveFile(ctx context.Context, key string) error
	// Files lists the known files, oldest first, without Blocks.
	Files(ctx context.Context) ([]FileRecord, error)
	// File returns one file with its Blocks, or ErrNotFound.
	File(ctx context.Context, key string) (FileRecord, error)
	// Record is File without Blocks (NBlock says how many): it does not
	// read the list.
	Record(ctx context.Context, key string) (FileRecord, error)
}

// Stats sums up a store.
type Stats struct {
	Blocks       int   `json:"blocks"`
	Bytes        int64 `json:"bytes"`
	Files        int   `json:"files"`
	FileBytes    int64 `json:"file_bytes"`
	SharedBlocks int   `json:"shared_blocks"` // blocks used by two or more files
	Quarantined  int   `json:"quarantined"`
	// HeldBlocks and HeldBytes count the blocks held for the network (see
	// HeldForNetwork): a donor's, or a node's share of other people's.
	HeldBlocks int   `json:"held_blocks"`
	HeldBytes  int64 `json:"held_bytes"`
	// UsedBlocks and UsedBytes count the blocks the recorded files use
	// (Refs ≥ 1).
	UsedBlocks int   `json:"used_blocks"`
	UsedBytes  int64 `json:"used_bytes"`
	// DiskBytes is what the store occupies on disk (0 for memory).
	DiskBytes int64 `json:"disk_bytes"`
}

// Overhead is Bytes / FileBytes (0 when no file is recorded).
func (s Stats) Overhead() float64 {
	if s.FileBytes == 0 {
		return 0
	}
	return float64(s.Bytes) / float64(s.FileBytes)
}

// Store is a whole block store. Implementations are safe for concurrent use.
type Store interface {
	Getter
	Putter
	Haver
	Stater
	Deleter
	Enumerator
	TagIndex
	Filer
	// Quarantine moves a block out of service (it is no longer returned by
	// Get, Has or Enumerate) and records why. Putting the block again (a
	// good copy, from a peer) takes it off the quarantine list.
	Quarantine(ctx context.Context, id ID, reason string) error
	// Stats sums the store up.
	Stats(ctx context.Context) (Stats, error)
	// Sync makes every completed Put, AddFile and Delete durable.
	Sync() error
	Close() error
}
