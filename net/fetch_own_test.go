package net

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// TestFetcherWaitersOwnTheirBytes: many callers wait for one block that a
// slow peer serves; each one overwrites its bytes as soon as it has checked
// them, as mixer.Unmix does when it XORs in place. No caller may see bytes
// that another one is writing: every caller must get the block intact.
func TestFetcherWaitersOwnTheirBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const rounds, waiters = 4, 48
	st := blocks.NewMem()
	rng := rand.NewChaCha8([32]byte{42})
	var ids []blocks.ID
	for i := 0; i < rounds; i++ {
		d := make([]byte, blocks.MaxBlockSize)
		rng.Read(d)
		b, err := blocks.NewBlock(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutBlock(ctx, b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
	}
	// The peer answers after every waiter has queued on the one request.
	client, local, _ := startServers(t, ctx, []blocks.Getter{slowGetter{st, 300 * time.Millisecond}})
	f := NewFetcher(client, local)
	f.Keep = func(blocks.ID, int) bool { return false } // every round goes to the peer

	for round, id := range ids {
		var wg sync.WaitGroup
		errs := make(chan error, waiters)
		for w := 0; w < waiters; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := f.Get(ctx, id)
				if err == nil {
					err = blocks.Check(id, b)
				}
				for i := range b {
					b[i] ^= 0xa5 // the caller owns b: scribble on it at once
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		bad := 0
		var first error
		for err := range errs {
			if err != nil {
				bad++
				first = err
			}
		}
		if bad > 0 {
			t.Fatalf("round %d: %d of %d waiters got damaged bytes: %v", round, bad, waiters, first)
		}
	}
	if got := f.Stats().Blocks; got > int64(2*rounds) {
		t.Errorf("%d blocks fetched for %d rounds: concurrent Gets of one ID should share one request", got, rounds)
	}
}

// TestFetcherReadRepair: a block whose local copy rotted is quarantined,
// fetched from a peer that holds a good copy, put back (off the
// quarantine list, whatever Keep says) and served; one that no peer holds
// is an error that says it is lost to corruption, not a missing block.
func TestFetcherReadRepair(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids, st := someBlocks(t, 4)
	client, local, _ := startServers(t, ctx, []blocks.Getter{st})
	for _, id := range ids[:2] {
		b, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := local.Put(ctx, id, b, 5); err != nil {
			t.Fatal(err)
		}
		local.Corrupt(id)
	}
	if err := st.Delete(ctx, ids[1]); err != nil { // nobody else has it now
		t.Fatal(err)
	}
	f := NewFetcher(client, local)
	f.Keep = func(blocks.ID, int) bool { return false }

	b, err := f.Get(ctx, ids[0])
	if err != nil || blocks.Check(ids[0], b) != nil {
		t.Fatalf("Get of a rotten block a peer holds: %v", err)
	}
	if got, err := local.Get(ctx, ids[0]); err != nil || blocks.Check(ids[0], got) != nil {
		t.Fatalf("the good copy is not back in the store: %v", err)
	}
	_, err = f.Get(ctx, ids[1])
	if !errors.Is(err, blocks.ErrCorrupt) || !errors.Is(err, blocks.ErrNotFound) || !strings.Contains(err.Error(), "lost") || !strings.Contains(err.Error(), ids[1].String()) {
		t.Fatalf("Get of a rotten block nobody else holds: %v", err)
	}
	if st, _ := local.Stats(ctx); st.Quarantined != 1 {
		t.Fatalf("%d blocks quarantined, want 1 (the lost one)", st.Quarantined)
	}
}

// TestFetcherGetInto: a block the local store holds is read into the
// caller's buffer (the store is a Disk, an IntoGetter); one only a peer
// holds comes from the peer; one nobody holds is not found.
func TestFetcherGetInto(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	disk, err := blocks.OpenDisk(t.TempDir(), blocks.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	remote := blocks.NewMem()
	rng := rand.NewChaCha8([32]byte{9})
	var bs []blocks.Block
	for range 3 {
		d := make([]byte, 16<<10)
		rng.Read(d)
		b, err := blocks.NewBlock(d)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	local, there, nowhere := bs[0], bs[1], bs[2]
	if err := disk.PutBlock(ctx, local, 1); err != nil {
		t.Fatal(err)
	}
	if err := remote.PutBlock(ctx, there, 2); err != nil {
		t.Fatal(err)
	}
	client, err := NewNode(Config{}, disk, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := NewNode(Config{}, remote, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	connect(t, ctx, client, server)
	f := NewFetcher(client, disk)
	f.Keep = func(blocks.ID, int) bool { return false }
	buf := make([]byte, 16<<10+blocks.ReadSlack)
	// In buf: a slice of buf's array (the record's header sits before it).
	inBuf := func(b []byte) bool {
		return cap(b) > 0 && &b[:cap(b)][cap(b)-1] == &buf[len(buf)-1]
	}
	got, err := f.GetInto(ctx, local.ID(), buf)
	if err != nil || !bytes.Equal(got, local.Data()) || !inBuf(got) {
		t.Fatalf("local block: %v, equal %v, in the buffer %v", err, bytes.Equal(got, local.Data()), inBuf(got))
	}
	if got, err := f.GetInto(ctx, there.ID(), buf); err != nil || !bytes.Equal(got, there.Data()) {
		t.Fatalf("a peer's block: %v, equal %v", err, bytes.Equal(got, there.Data()))
	}
	if _, err := f.GetInto(ctx, nowhere.ID(), buf); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("a block nobody holds: %v, want ErrNotFound", err)
	}
}
