// Package mixer cuts a stream into source blocks, mixes each with t−1
// randomizers into a stored block that looks like noise, and reverses it.
//
// A tuple is the t block IDs whose XOR gives back one source block: the
// stored block first, then its randomizers. Randomizers are blocks already in
// the store wherever the rules below allow; a fresh random block is made only
// when no allowed choice exists.
//
// Each block carries a 64-bit tag (blocks.Meta.Tag) that tracks its fresh
// random component: a fresh random block gets a random tag, a mixed block the
// XOR of its randomizers' tags (the source adds nothing). Two blocks whose
// XOR is free of fresh randomness have equal tags, so the mixer refuses every
// choice whose tag is zero or already held: no stored block, and no XOR of
// two stored blocks, is plaintext, and no two tuples share a randomizer set.
package mixer

import "fmt"

// Block classes: the sizes a block may have. A file uses one class for all
// its blocks.
//
//   - 128 KiB: the OFF size, for everything of 128 KiB and up.
//   - 16 KiB: files from 16 KiB up to 128 KiB waste at most one 16 KiB block.
//   - 1 KiB: small files and small descriptors cost 1 KiB per block, so a
//     1 KiB file adds about 2 KiB (its block and its descriptor) to a store.
//
// Three classes, eight and sixteen times apart, bound the padding waste to
// under 2× for any size while keeping few pools of randomizers: every class
// needs its own, and a thin pool means fresh random blocks.
const (
	Small  = 1 << 10
	Medium = 16 << 10
	Large  = 128 << 10
)

// Classes lists the block classes, smallest first.
var Classes = []int{Small, Medium, Large}

// ClassFor returns the class for a stream of n bytes: the largest class not
// above n, or Small when n is smaller than every class. n < 0 means unknown
// and gives Large.
func ClassFor(n int64) int {
	if n < 0 {
		return Large
	}
	c := Classes[0]
	for _, k := range Classes {
		if int64(k) <= n {
			c = k
		}
	}
	return c
}

// ValidClass reports an error unless c is one of Classes.
func ValidClass(c int) error {
	for _, k := range Classes {
		if c == k {
			return nil
		}
	}
	return fmt.Errorf("block class %d is not one of %v", c, Classes)
}

// Tuple sizes.
const (
	MinT     = 2
	MaxT     = 8
	DefaultT = 3
)

// ValidT reports an error unless MinT ≤ t ≤ MaxT.
func ValidT(t int) error {
	if t < MinT || t > MaxT {
		return fmt.Errorf("tuple size %d out of range %d..%d", t, MinT, MaxT)
	}
	return nil
}
