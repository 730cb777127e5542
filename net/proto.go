package net

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// ErrPeerLied: a peer sent a block whose bytes do not match its ID, or a
// block nobody asked it for. Drop the stream and mark the peer down.
var ErrPeerLied = errors.New("peer sent a block that does not match its ID")

// Refusal is why a receiver refused a pushed block.
type Refusal struct {
	Code byte
	Text string
}

func (r *Refusal) Error() string { return fmt.Sprintf("refused (code %d): %s", r.Code, r.Text) }

// Sink takes pushed blocks. Accept stores a block from peer, or returns a
// *Refusal that says why not (any other error is sent as RefuseError).
// The Server hashed b's bytes against the ID they came with, once: the
// sink stores them without hashing again (blocks.BlockPutter). b's bytes
// are valid during the call only (the Server reuses its buffer): a sink
// that keeps them copies them. Streams from several peers call it at
// once.
type Sink interface {
	Accept(ctx context.Context, peer string, b blocks.Block) error
}

// DefaultIdle bounds the wait for each frame when the stream supports
// deadlines.
const DefaultIdle = 30 * time.Second

type deadliner interface{ SetDeadline(time.Time) error }

type readDeadliner interface{ SetReadDeadline(time.Time) error }

type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// arm sets the stream's deadline to the earlier of ctx's and now+idle.
func arm(ctx context.Context, rw any, idle time.Duration) {
	if d, ok := rw.(deadliner); ok {
		_ = d.SetDeadline(until(ctx, idle))
	}
}

// armRead and armWrite set one direction's deadline only (a server reads
// and writes a stream from two goroutines, each with its own deadline).
func armRead(ctx context.Context, rw any, idle time.Duration) {
	if d, ok := rw.(readDeadliner); ok {
		_ = d.SetReadDeadline(until(ctx, idle))
	} else {
		arm(ctx, rw, idle)
	}
}

func armWrite(ctx context.Context, rw any, idle time.Duration) {
	if d, ok := rw.(writeDeadliner); ok {
		_ = d.SetWriteDeadline(until(ctx, idle))
	} else {
		arm(ctx, rw, idle)
	}
}

// until is the earlier of ctx's deadline and now+idle.
func until(ctx context.Context, idle time.Duration) time.Time {
	t := time.Now().Add(idle)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	return t
}

// Flusher is a Sink that makes accepted blocks durable in groups: Accept
// stores a block, Flush returns once every block accepted before the call
// is durable. Serve answers a push with Accept only after a Flush that
// covers it, and pushes that arrive together share one Flush.
type Flusher interface {
	Flush(ctx context.Context) error
}

// maxAnswers bounds the answers queued behind a slow writer or Flush
// (the bytes of the blocks among them are bounded by the Server's Budget).
const maxAnswers = 64

// Server answers the block protocol's requests on streams: want-lists from
// Src (which verifies the blocks it returns), has-lists and prove-lists
// from Src, and pushes into Sink (nil refuses all). What the peers it
// serves can make it hold is bounded: blocks read for an answer and not
// yet written count against Budget, and a peer that reads nothing for
// WriteIdle is cut. Safe for concurrent use.
type Server struct {
	Src  blocks.Getter
	Sink Sink
	// Budget bounds the bytes of blocks queued for peers; nil: none
	// beyond maxAnswers per stream.
	Budget *Budget
	// WriteIdle: a stream whose peer accepts no bytes of an answer for
	// this long is reset (0: DefaultIdle), and Stalled, if set, is called
	// with the peer (the Service closes its connections: all its streams
	// go at once, not one WriteIdle after another).
	WriteIdle time.Duration
	Stalled   func(peer string)
	// Proofs, if set, paces the proofs computed for each peer (a block
	// read and hashed each, for an answer of 64 bytes). A proof of a
	// block the peer pushed on the same stream, and this node accepted,
	// is not paced, once per push: the peer paid for it with the block's
	// bytes, and the node hashed them once already to check them, so the
	// hashing a peer gets for free stays within twice what it sends
	// (a stream remembers its last maxUnpacedProofs pushes at most). A
	// put's placement proves a sample of each batch it pushed; paced,
	// those proofs held a put through a daemon to about 37 MB/s.
	Proofs *ProofRate
}

// maxUnpacedProofs bounds the pushes of one stream remembered for an
// unpaced proof (see Server.Proofs): with 256 streams, about 1 MiB in all.
// A placement pushes a peer a batch of at most PlaceSlice blocks and asks
// for proofs of ProveSample of them; from a longer batch, the proofs of
// blocks pushed before its last maxUnpacedProofs are paced.
const maxUnpacedProofs = 64

// Serve answers the frames of one stream from peer until it ends: a
// want-list with a Block or DontHave frame for each distinct ID, then End;
// a has-list with Have or DontHave for each ID, then End; a prove-list
// with Proof or DontHave for each ID, then End; a push with Accept or
// Refuse. Pushes go to the Sink after they are checked against their IDs.
// Requests are read while earlier answers are written, in order; when the
// Sink is a Flusher, accepted pushes are answered after one Flush per
// group. Serve returns nil when the peer closes the stream between frames,
// and an error wrapping ErrBadFrame when it breaks the format.
func (s *Server) Serve(ctx context.Context, rw io.ReadWriter, peer string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan answer, maxAnswers)
	werr := make(chan error, 1)
	go func() {
		err := s.writeAnswers(ctx, rw, peer, answers)
		if err != nil {
			cancel() // a reader waiting for the budget stops
		}
		werr <- err
	}()
	rerr := s.readRequests(ctx, rw, peer, answers)
	close(answers)
	return errors.Join(rerr, <-werr)
}

// Serve answers one stream from src and sink with no budget (see
// Server.Serve).
func Serve(ctx context.Context, rw io.ReadWriter, peer string, src blocks.Getter, sink Sink) error {
	return (&Server{Src: src, Sink: sink}).Serve(ctx, rw, peer)
}

// answer is a queued frame and the budget its block holds.
type answer struct {
	Frame
	held int64
}

// blockCost is what a block is assumed to weigh in the budget before it
// is read, when the store cannot say (the largest class of the mixer).
const blockCost = 128 << 10

// readRequests reads frames from rw and queues their answers until the
// stream ends or breaks.
func (s *Server) readRequests(ctx context.Context, rw io.ReadWriter, peer string, answers chan<- answer) error {
	fr := newServerFrameReader(rw)
	// pushed are blocks accepted on this stream and not yet proven: a
	// proof of one is not paced (see Proofs), once.
	pushed := map[blocks.ID]bool{}
	for {
		armRead(ctx, rw, DefaultIdle)
		f, err := fr.ReadFrame()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // the writer failed: it says why
		}
		switch f.Kind {
		case KindWant:
			seen := make(map[blocks.ID]bool, len(f.IDs))
			for _, id := range f.IDs {
				if seen[id] {
					continue // one answer per ID and want-list
				}
				seen[id] = true
				a, err := s.block(ctx, peer, id)
				if err != nil {
					return nil // cancelled: the writer failed
				}
				answers <- a
			}
			answers <- answer{Frame: Frame{Kind: KindEnd}}
		case KindHas:
			for _, id := range f.IDs {
				if has(ctx, s.Src, id) {
					answers <- answer{Frame: Frame{Kind: KindHave, ID: id}}
				} else {
					answers <- answer{Frame: Frame{Kind: KindDontHave, ID: id}}
				}
			}
			answers <- answer{Frame: Frame{Kind: KindEnd}}
		case KindProve:
			for _, id := range f.IDs {
				if pushed[id] {
					delete(pushed, id)
				} else if s.Proofs != nil && s.Proofs.Wait(ctx, peer) != nil {
					return nil // cancelled: the writer failed
				}
				a := Frame{Kind: KindDontHave, ID: id}
				if b, err := s.Src.Get(ctx, id); err == nil {
					a = Frame{Kind: KindProof, ID: id, Proof: ProofOf(f.Nonce, b)}
				}
				answers <- answer{Frame: a}
			}
			answers <- answer{Frame: Frame{Kind: KindEnd}}
		case KindPush:
			ans := Frame{Kind: KindAccept, ID: f.ID}
			if r := accept(ctx, s.Sink, peer, f.ID, f.Data); r != nil {
				ans = Frame{Kind: KindRefuse, ID: f.ID, Reason: r.Code, Text: r.Text}
			} else {
				if len(pushed) >= maxUnpacedProofs {
					clear(pushed) // the latest pushes (a placement's batch) matter
				}
				pushed[f.ID] = true
			}
			answers <- answer{Frame: ans}
		default:
			return fmt.Errorf("%w: a server does not take kind %d", ErrBadFrame, f.Kind)
		}
	}
}

// block reads id for peer within the budget: the answer holds the bytes
// it counted, or is a DontHave (missing or corrupt here: either way not
// ours to give). It fails only when ctx ends while it waits.
func (s *Server) block(ctx context.Context, peer string, id blocks.ID) (answer, error) {
	cost := int64(blockCost)
	if st, ok := s.Src.(blocks.Stater); ok {
		m, err := st.Stat(ctx, id)
		if err != nil {
			return answer{Frame: Frame{Kind: KindDontHave, ID: id}}, nil
		}
		cost = int64(m.Size)
	}
	if s.Budget != nil {
		if err := s.Budget.Acquire(ctx, peer, cost); err != nil {
			return answer{}, err
		}
	}
	b, err := s.Src.Get(ctx, id)
	if err != nil {
		s.release(peer, cost)
		return answer{Frame: Frame{Kind: KindDontHave, ID: id}}, nil
	}
	return answer{Frame: Frame{Kind: KindBlock, ID: id, Data: b}, held: cost}, nil
}

func (s *Server) release(peer string, n int64) {
	if s.Budget != nil && n > 0 {
		s.Budget.Release(peer, n)
	}
}

// has reports whether src holds id: by its Has when it is a blocks.Haver,
// else by reading it.
func has(ctx context.Context, src blocks.Getter, id blocks.ID) bool {
	if h, ok := src.(blocks.Haver); ok {
		ok, err := h.Has(ctx, id)
		return err == nil && ok
	}
	_, err := src.Get(ctx, id)
	return err == nil
}

// writeAnswers writes the queued answers in order, each group after one
// Flush of the sink when it holds accepted pushes, and gives back each
// block's budget once it is written. After a write error (a peer that
// reads nothing for WriteIdle among them) it breaks the stream, so the
// reader stops, and drains the queue.
func (s *Server) writeAnswers(ctx context.Context, rw io.ReadWriter, peer string, answers <-chan answer) error {
	fl, _ := s.Sink.(Flusher)
	idle := s.WriteIdle
	if idle <= 0 {
		idle = DefaultIdle
	}
	w := bufio.NewWriterSize(rw, 32<<10)
	var err error
	for a := range answers {
		if err != nil {
			s.release(peer, a.held)
			continue
		}
		group := []answer{a}
	more:
		for len(group) < maxAnswers {
			select {
			case g, ok := <-answers:
				if !ok {
					break more
				}
				group = append(group, g)
			default:
				break more
			}
		}
		if fl != nil && hasAccept(group) {
			if ferr := fl.Flush(ctx); ferr != nil {
				for i, g := range group {
					if g.Kind == KindAccept {
						group[i].Frame = Frame{Kind: KindRefuse, ID: g.ID, Reason: RefuseError, Text: "could not store it: " + ferr.Error()}
					}
				}
			}
		}
		for _, g := range group {
			if err == nil {
				armWrite(ctx, rw, idle)
				err = WriteFrame(w, g.Frame)
			}
			s.release(peer, g.held)
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			if isTimeout(err) && s.Stalled != nil {
				s.Stalled(peer)
			}
			err = fmt.Errorf("answer: %w", err)
			breakStream(rw)
		}
	}
	return err
}

func hasAccept(as []answer) bool {
	for _, f := range as {
		if f.Kind == KindAccept {
			return true
		}
	}
	return false
}

// breakStream resets (or else closes) rw so that a blocked read returns.
func breakStream(rw io.ReadWriter) {
	switch s := rw.(type) {
	case interface{ Reset() error }:
		_ = s.Reset()
	case io.Closer:
		_ = s.Close()
	}
}

// accept hashes a pushed block's bytes (the one time they are hashed on
// this node: the sink stores the Block as it is) and hands it to sink.
func accept(ctx context.Context, sink Sink, peer string, id blocks.ID, data []byte) *Refusal {
	b, err := blocks.NewBlock(data)
	if err != nil {
		return &Refusal{RefuseTooLarge, err.Error()}
	}
	if b.ID() != id {
		return &Refusal{RefuseCorrupt, "the bytes do not match the ID"}
	}
	if sink == nil {
		return &Refusal{RefuseNotWanted, "this node takes no pushed blocks"}
	}
	err = sink.Accept(ctx, peer, b)
	var r *Refusal
	switch {
	case err == nil:
		return nil
	case errors.As(err, &r):
		return r
	default:
		return &Refusal{RefuseError, err.Error()}
	}
}

// isTimeout reports whether err is a deadline passing (os's, or a
// transport's own error with Timeout()).
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// ctxErr says a stream timeout is the context's deadline when it is.
func ctxErr(ctx context.Context, err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// Fetch sends one want-list on rw and reads the answer: got is called for
// each block, in the order they come, after it was checked against its ID
// (its bytes are valid during the call only: Clone the Block to keep it);
// the IDs the peer does not have are returned. A block that does not match
// its ID, or that was not asked for, ends Fetch with an error wrapping
// ErrPeerLied. ctx's deadline (and DefaultIdle per frame) bounds every
// read when rw supports deadlines, so a stalled peer cannot hang it.
func Fetch(ctx context.Context, rw io.ReadWriter, ids []blocks.ID, got func(blocks.Block) error) ([]blocks.ID, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > MaxWant {
		return nil, fmt.Errorf("want-list of %d IDs, at most %d", len(ids), MaxWant)
	}
	arm(ctx, rw, DefaultIdle)
	if err := WriteFrame(rw, Frame{Kind: KindWant, IDs: ids}); err != nil {
		return nil, fmt.Errorf("send want-list: %w", err)
	}
	pending := make(map[blocks.ID]bool, len(ids))
	for _, id := range ids {
		pending[id] = true
	}
	var missing []blocks.ID
	fr := NewFrameReader(rw)
	for {
		if err := ctx.Err(); err != nil {
			return missing, err
		}
		arm(ctx, rw, DefaultIdle)
		f, err := fr.ReadFrame()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return missing, fmt.Errorf("read answer: %w", ctxErr(ctx, err))
		}
		switch f.Kind {
		case KindBlock:
			if !pending[f.ID] {
				return missing, fmt.Errorf("%w: block %s was not asked for", ErrPeerLied, f.ID)
			}
			b, err := blocks.NewBlock(f.Data)
			if err != nil {
				return missing, fmt.Errorf("%w: %v", ErrPeerLied, err)
			}
			if b.ID() != f.ID {
				return missing, fmt.Errorf("%w: %s came as %s", ErrPeerLied, f.ID, b.ID())
			}
			delete(pending, f.ID)
			if err := got(b); err != nil {
				return missing, err
			}
		case KindDontHave:
			if !pending[f.ID] {
				return missing, fmt.Errorf("%w: don't-have for %s, not asked for", ErrBadFrame, f.ID)
			}
			delete(pending, f.ID)
			missing = append(missing, f.ID)
		case KindEnd:
			if len(pending) != 0 {
				return missing, fmt.Errorf("%w: the answer ended with %d IDs unanswered", ErrBadFrame, len(pending))
			}
			return missing, nil
		default:
			return missing, fmt.Errorf("%w: kind %d in an answer to a want-list", ErrBadFrame, f.Kind)
		}
	}
}

// Has sends one has-list on rw and returns, for each ID, whether the peer
// says it holds the block. A peer's word is not proof: fetches verify.
func Has(ctx context.Context, rw io.ReadWriter, ids []blocks.ID) ([]bool, error) {
	out := make([]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	answers, err := askEach(ctx, rw, Frame{Kind: KindHas, IDs: ids}, "has", KindHave)
	if err != nil {
		return nil, err
	}
	for i, f := range answers {
		out[i] = f.Kind == KindHave
	}
	return out, nil
}

// askEach sends req, a list of IDs (a has-list, a prove-list), and reads
// its answer: for each ID in order a frame of kind yes or a DontHave, then
// End. Anything else is an error wrapping ErrBadFrame.
func askEach(ctx context.Context, rw io.ReadWriter, req Frame, what string, yes byte) ([]Frame, error) {
	if len(req.IDs) > MaxWant {
		return nil, fmt.Errorf("%s-list of %d IDs, at most %d", what, len(req.IDs), MaxWant)
	}
	arm(ctx, rw, DefaultIdle)
	if err := WriteFrame(rw, req); err != nil {
		return nil, fmt.Errorf("send %s-list: %w", what, err)
	}
	out := make([]Frame, len(req.IDs))
	fr := NewFrameReader(rw)
	for i, id := range req.IDs {
		arm(ctx, rw, DefaultIdle)
		f, err := fr.ReadFrame()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read %s answer: %w", what, ctxErr(ctx, err))
		}
		if f.ID != id || (f.Kind != yes && f.Kind != KindDontHave) {
			return nil, fmt.Errorf("%w: kind %d for %s in answer %d to a %s-list (%s)", ErrBadFrame, f.Kind, f.ID, i, what, id)
		}
		out[i] = f
	}
	arm(ctx, rw, DefaultIdle)
	if f, err := fr.ReadFrame(); err != nil || f.Kind != KindEnd {
		return nil, fmt.Errorf("%w: a %s answer without its end (%v)", ErrBadFrame, what, err)
	}
	return out, nil
}

// Push sends blocks on rw and returns, for each, nil if the peer accepted
// it or its *Refusal. The pushes are pipelined: a writer sends while the
// answers are read, in order. The error is for the stream as a whole; after
// one, close or reset rw, which also ends the writer.
func Push(ctx context.Context, rw io.ReadWriter, bs []blocks.Block) ([]error, error) {
	out := make([]error, len(bs))
	if len(bs) == 0 {
		return out, nil
	}
	arm(ctx, rw, DefaultIdle)
	werr := make(chan error, 1)
	go func() {
		// A block frame bigger than the buffer goes out in two writes of
		// about half a block: the buffer need not hold a whole one (a put
		// has R·placeSlices pushes in flight).
		w := bufio.NewWriterSize(rw, 64<<10)
		for _, b := range bs {
			if err := WriteFrame(w, Frame{Kind: KindPush, ID: b.ID(), Data: b.Data()}); err != nil {
				werr <- err
				return
			}
		}
		werr <- w.Flush()
	}()
	fr := NewFrameReader(rw)
	for i, b := range bs {
		arm(ctx, rw, DefaultIdle)
		f, err := fr.ReadFrame()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return out, fmt.Errorf("read push answer: %w", ctxErr(ctx, err))
		}
		if f.ID != b.ID() {
			return out, fmt.Errorf("%w: answer for %s to a push of %s", ErrBadFrame, f.ID, b.ID())
		}
		switch f.Kind {
		case KindAccept:
		case KindRefuse:
			out[i] = &Refusal{Code: f.Reason, Text: f.Text}
		default:
			return out, fmt.Errorf("%w: kind %d in an answer to a push", ErrBadFrame, f.Kind)
		}
	}
	if err := <-werr; err != nil {
		return out, fmt.Errorf("push: %w", err)
	}
	return out, nil
}
