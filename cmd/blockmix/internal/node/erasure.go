package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/blocks/erasure"
	"github.com/blockmix/blockmix/mixer"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Erasure coding, as the node does it (see package erasure):
//
//   - A put with rs:K+M mixes the file as ever; before the descriptor's
//     root is mixed, every other block the file needs is cut into
//     stripes of K, each stripe gets M parity blocks (stored here, with a
//     foreign tag: they are no XOR mix and never serve as randomizers),
//     and the manifest goes into the store as an attachment whose recipe
//     sits in the root (recipe.Upload.Attach). The recipe is as long as
//     ever.
//   - Each stripe's K+M blocks go to K+M distinct other nodes, one copy
//     each (net.PlaceStripes), away from the nodes closest to their keys,
//     whose repair rounds would copy them to R. The root's tuple and the
//     manifest's blocks, which the stripes cannot protect, get
//     max(R, M+1) copies as usual.
//   - A get reads the manifest first and rebuilds a block that no node
//     gives (or that is slower than parityHedge) from the first K of its
//     stripe to arrive.
//   - The stripes are known only to whoever has the recipe: the nodes that
//     hold a stripe's blocks hold noise and cannot tell. So a stripe is
//     repaired by a node that has the file on its list (the uploader, or
//     a friend who got or pinned it), in its repair rounds, and by
//     `check --repair` on any node: a block no other node holds is
//     rebuilt from the survivors and given to a node that holds none of
//     its stripe.

// parityHedge is how long a get waits for a striped block before it
// also starts rebuilding it from its stripe.
const parityHedge = 3 * time.Second

// stripeBatch is how many stripes a put places at a time.
const stripeBatch = 8

// parityTag is the tag of a parity block: foreign (never a randomizer).
func parityTag() uint64 {
	return blocks.ForeignTag | rand.Uint64()&^(blocks.ForeignTag|blocks.NetworkTag)
}

// redundancyFor is what a put asked for (ctx) or else the node's default.
func (n *Node) redundancyFor(ctx context.Context) erasure.Redundancy {
	if r, ok := erasure.RedundancyFrom(ctx); ok {
		return r
	}
	return erasure.Redundancy{Replicas: n.cfg.Replicas, Scheme: n.cfg.Parity}
}

// metaReplicas is the copies of the blocks outside the stripes of a file
// kept with s: enough to survive the M nodes the stripes survive.
func (n *Node) metaReplicas(s erasure.Scheme) int { return max(n.cfg.Replicas, s.M+1) }

// parityPut is what a put's parityAttach made: the manifest, and the
// blocks of the attachment that holds it.
type parityPut struct {
	man  erasure.Manifest
	blob []blocks.ID
}

// parityAttach returns an Upload.Attach that protects the file's blocks
// with s: parity stored here, the manifest as the attachment. What it
// made is left in *pp.
func (n *Node) parityAttach(s erasure.Scheme, pp *parityPut) func(context.Context, *mixer.Mixer, []blocks.ID) (recipe.Recipe, []blocks.ID, error) {
	return func(ctx context.Context, m *mixer.Mixer, ids []blocks.ID) (recipe.Recipe, []blocks.ID, error) {
		mf, err := erasure.Build(ctx, n.st, ids, s, func(b blocks.Block) error {
			return n.st.PutBlock(ctx, b, parityTag())
		})
		if err != nil {
			return recipe.Recipe{}, nil, fmt.Errorf("parity: %w", err)
		}
		data, err := mf.Encode()
		if err != nil {
			return recipe.Recipe{}, nil, err
		}
		att, blobIDs, err := recipe.PutBlob(ctx, m, data)
		if err != nil {
			return recipe.Recipe{}, nil, fmt.Errorf("parity manifest: %w", err)
		}
		*pp = parityPut{man: mf, blob: blobIDs}
		return att, append(mf.ParityBlocks(), blobIDs...), nil
	}
}

// placeStriped places an erasure-coded file's blocks: each stripe on
// distinct nodes; the blocks a reader needs before it knows the stripes
// (the root's tuple and the manifest's blocks, some of which may be in
// stripes too: randomizers) on metaReplicas nodes each, as any block.
// It answers as Placer.Close does: the blocks short of a holder, the
// nodes that took blocks, and an error wrapping ErrUnderReplicated (and
// ErrStripeShort for the stripes) when some block is short.
func (n *Node) placeStriped(ctx context.Context, pp parityPut, root []blocks.ID) (short, nodes int, err error) {
	man := pp.man
	holders := map[peer.ID]bool{}
	var stripeErr error
	for start := 0; start < len(man.Stripes); start += stripeBatch {
		var batch [][]blocks.Block
		for _, st := range man.Stripes[start:min(start+stripeBatch, len(man.Stripes))] {
			var bs []blocks.Block
			for _, id := range st.Shards() {
				b, err := blocks.GetBlock(ctx, n.st, id)
				if err != nil {
					return 0, 0, fmt.Errorf("read a block to place: %w", err)
				}
				bs = append(bs, b)
			}
			batch = append(batch, bs)
		}
		pls, err := n.net.PlaceStripes(ctx, batch, n.cfg.Replicas, nil)
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		if err != nil && stripeErr == nil {
			stripeErr = err
		}
		for _, s := range pls {
			for _, pl := range s {
				if len(pl.Holders) == 0 {
					short++
				}
				for _, p := range pl.Holders {
					holders[p] = true
				}
			}
		}
	}
	rest := blocks.Dedup(append(append([]blocks.ID(nil), root...), pp.blob...))
	metaShort, _, metaErr := n.net.PlaceAll(ctx, n.st, rest, n.metaReplicas(man.Scheme), nil)
	if metaErr != nil && !errors.Is(metaErr, bmnet.ErrUnderReplicated) {
		return 0, 0, metaErr
	}
	short += metaShort
	switch {
	case stripeErr != nil && metaErr != nil:
		err = fmt.Errorf("%w; %w", stripeErr, metaErr)
	case stripeErr != nil:
		err = fmt.Errorf("%w: %w", bmnet.ErrUnderReplicated, stripeErr)
	default:
		err = metaErr
	}
	return short, len(holders), err
}

// openStriped opens rc through g and reads its parity manifest, if it has
// one. The manifest's size is bounded by the file's before a byte of it
// is fetched, and it is checked as it decodes (erasure.DecodeManifest);
// its bytes are checked against the attachment's whole-file hash.
func openStriped(ctx context.Context, g blocks.Getter, rc recipe.Recipe) (*recipe.Reader, erasure.Manifest, bool, error) {
	r, err := recipe.Open(ctx, g, rc, recipe.Options{})
	if err != nil {
		return nil, erasure.Manifest{}, false, err
	}
	att, ok := r.Attachment()
	if !ok {
		return r, erasure.Manifest{}, false, nil
	}
	bound := r.BlocksBound()
	if max := erasure.MaxBytes(bound); att.Size > max {
		return r, erasure.Manifest{}, false, fmt.Errorf("%w: %d bytes, a file of this size has at most %d", erasure.ErrBadManifest, att.Size, max)
	}
	ar, err := recipe.Open(ctx, g, att, recipe.Options{})
	if err != nil {
		return r, erasure.Manifest{}, false, fmt.Errorf("parity manifest: %w", err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, ar); err != nil {
		return r, erasure.Manifest{}, false, fmt.Errorf("parity manifest: %w", err)
	}
	man, err := erasure.DecodeManifest(buf.Bytes(), int(min(bound, 1<<30))+3)
	if err != nil {
		return r, erasure.Manifest{}, false, err
	}
	return r, man, true, nil
}

// striped returns g, or, when rc has a parity manifest, a getter that
// rebuilds what g cannot give from the stripes. A manifest that cannot be
// read leaves g (the file may still come whole) and a warning. It reads
// the descriptor's root once more than the get itself does (three
// blocks, usually local or cached by then). A root that cannot be read is
// the get's error: asking again would only hide why (a peer that failed
// is not asked twice, so the second error would lose the first's reason).
func (n *Node) striped(ctx context.Context, g blocks.Getter, rc recipe.Recipe) (blocks.Getter, error) {
	r, man, ok, err := openStriped(ctx, g, rc)
	if err != nil && r == nil {
		return nil, err
	}
	if err != nil {
		n.log.Warn("parity manifest not read: blocks lost everywhere cannot be rebuilt", slog.String("name", rc.Name), slog.Any("err", err))
	}
	if !ok {
		return g, nil
	}
	eg := erasure.NewGetter(g, man)
	eg.Hedge = parityHedge
	return eg, nil
}

// stripeHealth fills h's stripe fields for a file with a manifest: each
// block's holders among the other nodes (every known node is asked: the
// stripes sit away from their keys), the stripes missing blocks, and how
// many more nodes every stripe can lose. This node counts only for the
// blocks it holds for the network (pushed to it): a copy the uploader or
// a reader keeps for itself is no holder (the question is whether the
// network keeps the file without it). It returns the holders of each
// stripe's blocks, for repair.
func (n *Node) stripeHealth(ctx context.Context, man erasure.Manifest, h *apiv1.HealthInfo) [][][]peer.ID {
	ids := man.Blocks()
	hs := n.net.HoldersOf(ctx, ids)
	by := make(map[blocks.ID][]peer.ID, len(ids))
	for i, id := range ids {
		by[id] = hs[i]
		if n.heldHere(ctx, id) {
			by[id] = append(by[id], n.net.Host.ID())
		}
	}
	h.Parity = man.Scheme.String()
	h.Stripes = len(man.Stripes)
	h.StripesCanLose = -2 // none yet
	out := make([][][]peer.ID, len(man.Stripes))
	for si, st := range man.Stripes {
		shards := st.Shards()
		names := make([][]string, len(shards))
		out[si] = make([][]peer.ID, len(shards))
		missing := 0
		for i, id := range shards {
			out[si][i] = by[id]
			for _, p := range by[id] {
				names[i] = append(names[i], p.String())
			}
			if len(by[id]) == 0 {
				missing++
			}
		}
		if missing > 0 {
			h.StripesShort++
		}
		c := erasure.CanLose(names, man.K-len(st.Data), man.K)
		if h.StripesCanLose == -2 || c < h.StripesCanLose {
			h.StripesCanLose = c
		}
	}
	return out
}

// repairStripes rebuilds every block of man's stripes that no other node
// holds (from this node's copy, or from the first K of its stripe to
// arrive) and gives it to a node that is the only holder of no block of
// its stripe (or, when the network has too few nodes, to any). A node
// that alone holds two blocks of a stripe (placed there while the network
// was short of nodes) gets one of them copied to a node that holds none,
// once there is one. It returns how many blocks it placed.
func (n *Node) repairStripes(ctx context.Context, g blocks.Getter, man erasure.Manifest) (int, error) {
	var h apiv1.HealthInfo
	holders := n.stripeHealth(ctx, man, &h)
	var batch [][]blocks.Block
	var taken []map[peer.ID]bool
	placed := 0
	var firstErr error
	flush := func() {
		if len(batch) == 0 {
			return
		}
		pls, err := n.net.PlaceStripes(ctx, batch, n.cfg.Replicas, taken)
		// When the network has too few nodes for a stripe to have each
		// block on its own, a block no free node took goes to a node
		// that holds another of its stripe: better than nowhere (the
		// stripe then survives fewer nodes, and health says so). With
		// nodes enough, a node that failed now is tried again next round.
		others := n.net.Others()
		var again [][]blocks.Block
		for si, s := range pls {
			var left []blocks.Block
			for bi, pl := range s {
				if len(pl.Holders) > 0 {
					placed++
				} else if len(taken[si])+len(s) > others {
					left = append(left, batch[si][bi])
				}
			}
			if len(left) > 0 {
				again = append(again, left)
			}
		}
		if len(again) > 0 && ctx.Err() == nil {
			var pls2 [][]bmnet.Placement
			pls2, err = n.net.PlaceStripes(ctx, again, n.cfg.Replicas, nil)
			for _, s := range pls2 {
				for _, pl := range s {
					if len(pl.Holders) > 0 {
						placed++
					}
				}
			}
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		batch, taken = nil, nil
	}
	others := n.net.Others()
	for si, st := range man.Stripes {
		var lost []blocks.Block
		have := map[peer.ID]bool{}
		// sole counts the blocks of the stripe each node alone holds. A
		// node alone holding two (a repair placed one there while the
		// network was short of nodes) makes the stripe lose two blocks
		// with it: while a node holds none of the stripe, one of the two
		// is copied there.
		sole := map[peer.ID]int{}
		for i := range st.Shards() {
			if len(holders[si][i]) == 1 {
				sole[holders[si][i][0]]++
			}
		}
		free := others - len(sole)
		for i, id := range st.Shards() {
			// A node is taken when it is the only holder of a block of
			// the stripe; one holding a block that others hold too (a
			// copy a holder's repair made) loses nothing alone.
			if len(holders[si][i]) == 1 {
				p := holders[si][i][0]
				have[p] = true
				if sole[p] < 2 || free <= len(lost) {
					continue
				}
				sole[p]-- // this one moves out; the node keeps its others
			} else if len(holders[si][i]) > 0 {
				continue
			}
			data, err := g.Get(ctx, id) // local first, else fetched or rebuilt from the stripe
			if err != nil {
				if ctx.Err() != nil {
					return placed, ctx.Err()
				}
				if firstErr == nil {
					firstErr = fmt.Errorf("rebuild block %s: %w", id.Short(), err)
				}
				continue
			}
			b, err := blocks.NewBlock(data)
			if err != nil || b.ID() != id {
				continue
			}
			lost = append(lost, b)
		}
		if len(lost) == 0 {
			// Nothing missing, yet the stripe may survive fewer than M
			// lost nodes: holders' copies can leave its blocks on nodes
			// that hold others of it too. Those get a copy on a node
			// that holds none of the stripe.
			lost, have = spreadStripe(ctx, g, man, st, holders[si], others)
		}
		if len(lost) > 0 {
			batch = append(batch, lost)
			taken = append(taken, have)
		}
		if len(batch) == stripeBatch {
			flush()
		}
	}
	flush()
	return placed, firstErr
}

// spreadStripe picks, for a stripe whose every block has a holder, the
// blocks to copy so that the stripe can lose M nodes again: while it can
// lose fewer (erasure.CanLose) and the network has a node that holds
// none of the stripe, a block whose every holder holds another block of
// the stripe too is read (local first, else fetched or rebuilt) and
// counted as held by one more such node. It returns those blocks and the
// nodes that hold any of the stripe (placement must avoid them); none
// when the stripe can lose M nodes already.
func spreadStripe(ctx context.Context, g blocks.Getter, man erasure.Manifest, st erasure.Stripe, holders [][]peer.ID, others int) ([]blocks.Block, map[peer.ID]bool) {
	shards := st.Shards()
	names := make([][]string, len(shards))
	count := map[peer.ID]int{} // blocks of the stripe each node holds
	for i := range shards {
		for _, p := range holders[i] {
			names[i] = append(names[i], p.String())
			count[p]++
		}
	}
	zeros := man.K - len(st.Data)
	if erasure.CanLose(names, zeros, man.K) >= man.M {
		return nil, nil
	}
	var out []blocks.Block
	free := others - len(count)
	for i, id := range shards {
		if free == 0 || erasure.CanLose(names, zeros, man.K) >= man.M {
			break
		}
		shared := len(holders[i]) > 0
		for _, p := range holders[i] {
			shared = shared && count[p] > 1
		}
		if !shared {
			continue
		}
		data, err := g.Get(ctx, id)
		if err != nil {
			continue
		}
		b, err := blocks.NewBlock(data)
		if err != nil || b.ID() != id {
			continue
		}
		out = append(out, b)
		names[i] = append(names[i], fmt.Sprintf("new node %d", len(out)))
		free--
	}
	if len(out) == 0 {
		return nil, nil
	}
	have := make(map[peer.ID]bool, len(count))
	for p := range count {
		have[p] = true
	}
	return out, have
}

// repairParity runs repairStripes for each file on the node's list that
// has a parity manifest: the repair of stripes, which only a node with
// the recipe can do. It logs what it did.
func (n *Node) repairParity(ctx context.Context) {
	fs, err := n.st.Files(ctx)
	if err != nil {
		return
	}
	for _, f := range fs {
		if ctx.Err() != nil {
			return
		}
		rc, err := recipe.Parse(f.Recipe)
		if err != nil {
			continue
		}
		fetch := n.fetcher(ctx, rc)
		_, man, ok, err := openStriped(ctx, fetch, rc)
		if err != nil || !ok {
			continue
		}
		eg := erasure.NewGetter(fetch, man)
		placed, err := n.repairStripes(ctx, eg, man)
		if placed > 0 || err != nil {
			n.log.Info("parity repair", slog.String("name", rc.Name), slog.Int("placed", placed), slog.Int64("rebuilt", eg.Rebuilt()), slog.Any("err", err))
		}
	}
}

// stripedHealth answers Health for a file with a parity manifest (ok
// false: rc has none, use the plain count). The blocks read before the
// stripes are known (root, manifest) are counted as Health counts blocks,
// against metaReplicas, this node's copy included (as Health counts:
// the other holders' repair rounds count it too). With repair, the stripes are repaired first
// (repairStripes) and those blocks handed to metaReplicas nodes.
func (n *Node) stripedHealth(ctx context.Context, rc recipe.Recipe, repair bool) (apiv1.HealthInfo, bool, error) {
	fetch := n.fetcher(ctx, rc)
	r, man, ok, err := openStriped(ctx, fetch, rc)
	if err != nil && r != nil {
		return apiv1.HealthInfo{}, false, nil // the plain count says what it can
	}
	if !ok {
		return apiv1.HealthInfo{}, false, nil
	}
	meta, err := n.metaBlocks(ctx, fetch, r)
	if err != nil {
		return apiv1.HealthInfo{}, true, err
	}
	want := n.metaReplicas(man.Scheme)
	if repair {
		if _, err := n.repairStripes(ctx, erasure.NewGetter(fetch, man), man); err != nil {
			n.log.Warn("parity repair", slog.String("name", rc.Name), slog.Any("err", err))
		}
		counts := n.net.Copies(ctx, meta, want+2)
		for i, id := range meta {
			if counts[i] >= want {
				continue
			}
			if b, err := blocks.GetBlock(ctx, fetch, id); err == nil {
				_, _ = n.net.HandOff(ctx, b, want)
			}
		}
	}
	counts, _ := n.net.Holders(ctx, meta, want+2)
	for i, id := range meta {
		if ok, err := n.st.Has(ctx, id); err == nil && ok {
			counts[i]++ // as Health counts: the other holders count this copy too
		}
	}
	h := apiv1.HealthInfo{Blocks: len(meta), Replicas: want}
	h.Count(counts)
	n.stripeHealth(ctx, man, &h)
	h.Judge()
	return h, true, nil
}

// metaBlocks lists the blocks a reader of a striped file needs before it
// knows the stripes: the descriptor root's tuple and the manifest's
// blocks (some may be in stripes too).
func (n *Node) metaBlocks(ctx context.Context, g blocks.Getter, r *recipe.Reader) ([]blocks.ID, error) {
	att, _ := r.Attachment()
	ar, err := recipe.Open(ctx, g, att, recipe.Options{})
	if err != nil {
		return nil, err
	}
	more, err := ar.Blocks(ctx)
	if err != nil {
		return nil, err
	}
	return blocks.Dedup(append(append([]blocks.ID(nil), r.Root()...), more...)), nil
}

// heldHere reports whether this node holds id for the network (a peer
// pushed it here to keep).
func (n *Node) heldHere(ctx context.Context, id blocks.ID) bool {
	m, err := n.st.Stat(ctx, id)
	return err == nil && blocks.HeldForNetwork(m.Tag)
}
