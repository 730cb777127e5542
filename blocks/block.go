package blocks

import (
	"context"
	"fmt"
)

// Block is a block's bytes together with the ID this package computed from
// them: holding a Block is proof that they match, so a store may take it
// without hashing again (the mixer has just hashed every block it makes).
// NewBlock and Check are the only two places that hash block bytes.
//
// The bytes must not be modified while the Block is in use.
type Block struct {
	id   ID
	data []byte
}

// NewBlock hashes data into a Block. It returns an error wrapping
// ErrTooLarge for data over MaxBlockSize.
func NewBlock(data []byte) (Block, error) {
	if len(data) > MaxBlockSize {
		return Block{}, fmt.Errorf("block of %d bytes: %w", len(data), ErrTooLarge)
	}
	return Block{id: Sum(data), data: data}, nil
}

// ID returns the block's ID.
func (b Block) ID() ID { return b.id }

// Data returns the block's bytes; do not modify them.
func (b Block) Data() []byte { return b.data }

// Clone returns the Block with its own copy of the bytes.
func (b Block) Clone() Block { return Block{id: b.id, data: append([]byte(nil), b.data...)} }

// CloneInto returns the Block with its bytes copied into buf, whose
// capacity must hold them (a buffer of a pool, say).
func (b Block) CloneInto(buf []byte) Block {
	return Block{id: b.id, data: append(buf[:0], b.data...)}
}

// BlockPutter stores a Block without hashing it again. Otherwise it follows
// Putter's contract.
type BlockPutter interface {
	PutBlock(ctx context.Context, b Block, tag uint64) error
}

// GetBlock reads id from g as a Block, without hashing again: the Getter
// checked the bytes (its contract; for a Disk, the CRC of a record whose
// bytes were hashed when they were put). Use GetVerified and NewBlock where
// they must be hashed afresh.
func GetBlock(ctx context.Context, g Getter, id ID) (Block, error) {
	data, err := g.Get(ctx, id)
	if err != nil {
		return Block{}, err
	}
	return Block{id: id, data: data}, nil
}
