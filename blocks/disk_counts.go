package blocks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// What the index keeps so that no request walks it whole (format 2):
//
//   - counters (keyCounts): the numbers Stats reports, updated in the same
//     batch as the entries they count, so that a crash keeps them in step
//     (goleveldb applies a batch whole or not at all);
//
//   - candidate keys: the mixer's randomizer candidates, own blocks (no
//     ForeignTag) that files use, in the two orders the picker reads them:
//
//     u size(4) seq(8)              → id(32) tag(8): used by one file, oldest first
//     s size(4) ^refs(8) seq(8)     → id(32) tag(8): used by two or more, most used first
//
// Every change of a block's entry goes through setEntry, which keeps both.
const (
	prefixUnder  = 'u'
	prefixShared = 's'
)

// counts are the store's running totals (see Stats).
type counts struct {
	Blocks, Shared, Files, Quarantined, Held, Used int64
	Bytes, FileBytes, HeldBytes, UsedBytes         int64
}

// keyCounts holds counts, encoded by encode.
var keyCounts = []byte("ccounts")

func (c counts) encode() []byte {
	b := make([]byte, 0, 8*binary.MaxVarintLen64)
	for _, v := range c.fields() {
		b = binary.AppendVarint(b, *v)
	}
	return b
}

func (c *counts) fields() []*int64 {
	return []*int64{&c.Blocks, &c.Shared, &c.Files, &c.Quarantined, &c.Held, &c.Bytes, &c.FileBytes, &c.HeldBytes, &c.Used, &c.UsedBytes}
}

func decodeCounts(b []byte) (counts, error) {
	var c counts
	for _, f := range c.fields() {
		v, n := binary.Varint(b)
		if n <= 0 || v < 0 {
			return counts{}, fmt.Errorf("counters %x: %w", b, errIndex)
		}
		*f, b = v, b[n:]
	}
	if len(b) != 0 {
		return counts{}, fmt.Errorf("counters: %d bytes too many: %w", len(b), errIndex)
	}
	return c, nil
}

// add counts e (sign +1) or takes it off (sign −1).
func (c *counts) add(e entry, sign int64) {
	c.Blocks += sign
	c.Bytes += sign * int64(e.Len)
	if e.Refs >= 1 {
		c.Used += sign
		c.UsedBytes += sign * int64(e.Len)
	}
	if e.Refs >= 2 {
		c.Shared += sign
	}
	if HeldForNetwork(e.Tag) {
		c.Held += sign
		c.HeldBytes += sign * int64(e.Len)
	}
}

// candidateKey returns e's candidate key and value for block id, or nil
// when e is no candidate (a foreign block, or one no file uses).
func candidateKey(id ID, e entry) (key, val []byte) {
	if e.Tag&ForeignTag != 0 || e.Refs < 1 {
		return nil, nil
	}
	if e.Refs == 1 {
		key = binary.BigEndian.AppendUint32([]byte{prefixUnder}, uint32(e.Len))
	} else {
		key = binary.BigEndian.AppendUint32([]byte{prefixShared}, uint32(e.Len))
		key = binary.BigEndian.AppendUint64(key, ^uint64(e.Refs))
	}
	key = binary.BigEndian.AppendUint64(key, e.Seq)
	val = binary.BigEndian.AppendUint64(append(make([]byte, 0, len(id)+8), id[:]...), e.Tag)
	return key, val
}

// batch starts a batch of index changes: the counters it changes are
// written with it by write. The caller holds idxMu.
func (s *Disk) batch() *leveldb.Batch {
	s.pend = s.cnt
	s.dropTags = s.dropTags[:0]
	return new(leveldb.Batch)
}

// dropHasTags deletes the h key of each tag whose t key the batch just
// written deleted, unless another block still carries the tag. It runs
// after that batch is committed, under the same idxMu, so no t key of
// the tag can come between the look and the delete. It only keeps the h
// keys few: one left behind (an error here, a crash, a batch written
// elsewhere) costs HasTag a walk of the t keys, never a wrong answer.
func (s *Disk) dropHasTags() {
	if len(s.dropTags) == 0 {
		return
	}
	b := new(leveldb.Batch)
	var freed []uint64
	for _, tag := range s.dropTags {
		if held, err := s.scanTag(tag); err != nil || held {
			continue
		}
		b.Delete(hasTagKey(tag))
		freed = append(freed, tag)
	}
	s.dropTags = s.dropTags[:0]
	if b.Len() == 0 {
		return
	}
	s.unflushed += int64(len(b.Dump()))
	if err := s.db.Write(b, nil); err == nil {
		s.metaDirty = true
	}
	s.forgetTags(freed)
}

// setEntry records in b that id's entry changes from was to now (nil:
// absent), with its tag keys, its candidate key and the counters. The
// caller holds idxMu and got b from batch.
func (s *Disk) setEntry(b *leveldb.Batch, id ID, was, now *entry) {
	var oldKey, newKey, newVal []byte
	if was != nil {
		s.pend.add(*was, -1)
		oldKey, _ = candidateKey(id, *was)
		if now == nil || now.Tag != was.Tag {
			b.Delete(tagKey(was.Tag, id))
			s.dropTags = append(s.dropTags, was.Tag)
		}
	}
	if now != nil {
		s.pend.add(*now, +1)
		newKey, newVal = candidateKey(id, *now)
		b.Put(blockKey(id), now.encode())
		if was == nil || now.Tag != was.Tag {
			b.Put(tagKey(now.Tag, id), nil)
			b.Put(hasTagKey(now.Tag), nil)
		}
	} else {
		b.Delete(blockKey(id))
	}
	if oldKey != nil && string(oldKey) != string(newKey) {
		b.Delete(oldKey)
	}
	if newKey != nil {
		b.Put(newKey, newVal)
	}
}

// loadCounts reads the counters, or counts them with one walk of the
// index when they are missing (a store cut short before its first write)
// or do not decode.
func (s *Disk) loadCounts() error {
	v, err := s.db.Get(keyCounts, nil)
	switch {
	case err == nil:
		if c, err := decodeCounts(v); err == nil {
			s.setCounts(c)
			return nil
		}
		// Damaged, or of another shape: counted again below.
	case !errors.Is(err, leveldb.ErrNotFound):
		return fmt.Errorf("read counters: %w", err)
	}
	return s.recountAll(keysLeave)
}

// How recountAll treats the candidate keys.
const (
	keysLeave  = iota // only count
	keysWrite         // write every one, and every tag's h key (an upgrade from format 1 or 2)
	keysRepair        // add the missing ones and delete the stale ones, add missing tag keys (after a recovery)
)

// recountAll sets the counters from a walk of the whole index and, on a
// writable store, writes them; keys says what it does with the candidate
// keys. OpenDisk runs it with keysWrite once on a store of format 1 or 2
// (the format marker is written after it, so a store cut short is walked
// again at its next open), and with keysRepair after a recovery: goleveldb
// may have lost a batch of its journal and kept a later one, so an entry
// and its candidate key, or its tag keys, may have lost step.
func (s *Disk) recountAll(keys int) error {
	if s.readOnly {
		keys = keysLeave
	}
	var c counts
	b := new(leveldb.Batch)
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		s.unflushed += int64(len(b.Dump()))
		err := s.db.Write(b, nil)
		b.Reset()
		if err != nil {
			return fmt.Errorf("write index: %w", err)
		}
		return nil
	}
	err := s.walkPrefix(prefixBlock, func(k, v []byte) error {
		id, err := blockKeyID(k)
		if err != nil {
			return err
		}
		e, err := decodeEntry(v)
		if err != nil {
			return fmt.Errorf("block %s: %w", id, err)
		}
		c.add(e, +1)
		if keys == keysLeave {
			return nil
		}
		// The tag keys: the entry is the truth (see hasTagKey).
		for _, tk := range [][]byte{tagKey(e.Tag, id), hasTagKey(e.Tag)} {
			if keys == keysRepair {
				if ok, err := s.db.Has(tk, nil); err != nil {
					return fmt.Errorf("read index: %w", err)
				} else if ok {
					continue
				}
			}
			b.Put(tk, nil)
		}
		if key, val := candidateKey(id, e); key != nil {
			if keys == keysRepair {
				if have, err := s.db.Get(key, nil); err == nil && string(have) == string(val) {
					key = nil
				}
			}
			if key != nil {
				b.Put(key, val)
			}
		}
		if b.Len() >= 4096 {
			return flush()
		}
		return nil
	})
	if err == nil && keys == keysRepair {
		err = s.dropStaleCandidates(b)
	}
	if err == nil {
		err = s.walkPrefix(prefixFile, func(k, v []byte) error {
			f, err := decodeFile(k, v)
			c.Files++
			c.FileBytes += f.Size
			return err
		})
	}
	if err == nil {
		err = s.walkPrefix(prefixQuar, func(_, _ []byte) error { c.Quarantined++; return nil })
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("count the index: %w", err)
	}
	s.setCounts(c)
	if !s.readOnly {
		if err := s.db.Put(keyCounts, c.encode(), nil); err != nil {
			return fmt.Errorf("write counters: %w", err)
		}
	}
	return nil
}

// dropStaleCandidates deletes, in b, every candidate key that its block's
// entry does not make.
func (s *Disk) dropStaleCandidates(b *leveldb.Batch) error {
	for _, p := range []byte{prefixUnder, prefixShared} {
		err := s.walkPrefix(p, func(k, v []byte) error {
			if len(v) == len(ID{})+8 {
				id := ID(v[:len(ID{})])
				e, err := s.entry(id)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				if want, _ := candidateKey(id, e); err == nil && string(want) == string(k) {
					return nil
				}
			}
			b.Delete(append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// walkPrefix calls fn with every key and value under prefix.
func (s *Disk) walkPrefix(prefix byte, fn func(k, v []byte) error) error {
	it := s.db.NewIterator(util.BytesPrefix([]byte{prefix}), nil)
	defer it.Release()
	for it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	return nil
}

// UnderShared implements Candidates.
func (s *Disk) UnderShared(ctx context.Context, size int, after uint64, fn func(ID, Meta) bool) error {
	if after == ^uint64(0) {
		return nil
	}
	start := binary.BigEndian.AppendUint32([]byte{prefixUnder}, uint32(size))
	r := util.BytesPrefix(start)
	r.Start = binary.BigEndian.AppendUint64(start, after+1)
	return s.candidates(ctx, r, fn)
}

// Shared implements Candidates.
func (s *Disk) Shared(ctx context.Context, size int, fn func(ID, Meta) bool) error {
	return s.candidates(ctx, util.BytesPrefix(binary.BigEndian.AppendUint32([]byte{prefixShared}, uint32(size))), fn)
}

// candidates calls fn with the blocks whose candidate keys are in r, in
// key order, each checked against its entry (a candidate key that does
// not match its block's entry is skipped), until fn returns false.
func (s *Disk) candidates(ctx context.Context, r *util.Range, fn func(ID, Meta) bool) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	it := s.db.NewIterator(r, nil)
	defer it.Release()
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		v := it.Value()
		if len(v) != len(ID{})+8 {
			continue
		}
		id := ID(v[:len(ID{})])
		e, err := s.entry(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if k, _ := candidateKey(id, e); string(k) != string(it.Key()) {
			continue
		}
		if !fn(id, e.meta()) {
			return nil
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("randomizer candidates: read index: %w", err)
	}
	return nil
}
