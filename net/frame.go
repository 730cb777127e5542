// Package net will hold blockmix's network layer: the libp2p host, the DHT,
// placement, fetch and repair. So far it holds the block protocol itself,
// written against plain byte streams (a libp2p stream is one), so that it is
// tested without a network: the frames, a server that answers want-lists
// and pushes from a store, and a client that verifies every block it gets.
//
// Import it as bmnet; inside, the standard library's net is not needed.
package net

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/blockmix/blockmix/blocks"
)

// ProtocolID names the block protocol on libp2p. A change that old peers
// cannot read gets a new version.
const ProtocolID = "/blockmix/blocks/1.0.0"

// Frame kinds.
const (
	KindWant     byte = 1 // payload: n × 32-byte digests, 1 ≤ n ≤ MaxWant
	KindBlock    byte = 2 // payload: 32-byte digest, then the block's bytes
	KindDontHave byte = 3 // payload: 32-byte digest
	KindEnd      byte = 4 // payload: empty; ends the answer to one want-list
	KindPush     byte = 5 // payload: 32-byte digest, then the block's bytes
	KindAccept   byte = 6 // payload: 32-byte digest
	KindRefuse   byte = 7 // payload: 32-byte digest, reason code, reason text
	KindHas      byte = 8 // payload: like KindWant; asks which blocks the peer holds
	KindHave     byte = 9 // payload: 32-byte digest; answers KindHas
	// KindProve asks the peer to prove it holds blocks: payload a 32-byte
	// nonce, then 1..MaxProve digests. The answer is a KindProof or a
	// KindDontHave for each, then KindEnd.
	KindProve byte = 10
	KindProof byte = 11 // payload: 32-byte digest, then ProofOf(nonce, block)
)

// Hard limits. A frame is a uvarint length (of kind + payload), a kind byte
// and the payload; anything over these limits is refused before it is read.
const (
	MaxWant = 1024
	// MaxProve is small: every ID of a prove-list costs the prover a
	// block read and hash, and the answer is tiny, so a long one would let
	// a peer keep a node's disk busy for free.
	MaxProve      = 64
	MaxReasonText = 256
	MaxFrame      = 1 + 32 + blocks.MaxBlockSize
)

// Reason codes for KindRefuse.
const (
	RefuseQuota     byte = 1 // the receiver's quota would be passed
	RefuseTooLarge  byte = 2 // the block is over the receiver's limit
	RefuseNotWanted byte = 3 // the receiver does not take blocks from this peer
	RefuseCorrupt   byte = 4 // the bytes do not match the ID
	RefuseError     byte = 5 // the receiver failed (its disk, say)
)

// ErrBadFrame: a frame breaks the format or its limits. The peer that sent
// it is broken or hostile; drop the stream.
var ErrBadFrame = errors.New("bad frame")

// Frame is one decoded frame. Data aliases the reader's buffer only until
// the next ReadFrame.
type Frame struct {
	Kind   byte
	IDs    []blocks.ID // KindWant, KindHas
	ID     blocks.ID   // every other kind but KindEnd
	Nonce  [32]byte    // KindProve
	Proof  [32]byte    // KindProof
	Data   []byte      // KindBlock, KindPush
	Reason byte        // KindRefuse
	Text   string      // KindRefuse
}

// WriteFrame encodes f onto w.
func WriteFrame(w io.Writer, f Frame) error {
	var payload []byte
	switch f.Kind {
	case KindWant, KindHas:
		if len(f.IDs) == 0 || len(f.IDs) > MaxWant {
			return fmt.Errorf("want-list of %d IDs (1..%d)", len(f.IDs), MaxWant)
		}
		payload = make([]byte, 0, 32*len(f.IDs))
		for _, id := range f.IDs {
			payload = append(payload, id[:]...)
		}
	case KindBlock, KindPush:
		if len(f.Data) > blocks.MaxBlockSize {
			return fmt.Errorf("block of %d bytes: %w", len(f.Data), blocks.ErrTooLarge)
		}
		// The header, the ID and the block go out as they are: no copy
		// of the block (a put pushes every block R times).
		var hdr [binary.MaxVarintLen64 + 1 + 32]byte
		n := binary.PutUvarint(hdr[:], uint64(1+len(f.ID)+len(f.Data)))
		hdr[n] = f.Kind
		n += 1 + copy(hdr[n+1:], f.ID[:])
		if _, err := w.Write(hdr[:n]); err != nil {
			return err
		}
		_, err := w.Write(f.Data)
		return err
	case KindProve:
		if len(f.IDs) == 0 || len(f.IDs) > MaxProve {
			return fmt.Errorf("prove-list of %d IDs (1..%d)", len(f.IDs), MaxProve)
		}
		payload = make([]byte, 0, 32+32*len(f.IDs))
		payload = append(payload, f.Nonce[:]...)
		for _, id := range f.IDs {
			payload = append(payload, id[:]...)
		}
	case KindProof:
		payload = append(f.ID[:len(f.ID):len(f.ID)], f.Proof[:]...)
	case KindDontHave, KindAccept, KindHave:
		payload = f.ID[:]
	case KindRefuse:
		text := f.Text
		if len(text) > MaxReasonText {
			text = text[:MaxReasonText]
		}
		payload = append(append(f.ID[:len(f.ID):len(f.ID)], f.Reason), text...)
	case KindEnd:
	default:
		return fmt.Errorf("unknown frame kind %d", f.Kind)
	}
	var hdr [binary.MaxVarintLen64 + 1]byte
	n := binary.PutUvarint(hdr[:], uint64(1+len(payload)))
	hdr[n] = f.Kind
	if _, err := w.Write(hdr[:n+1]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// FrameReader decodes frames from a stream, reusing one buffer.
type FrameReader struct {
	r    *bufio.Reader
	buf  []byte
	keep int // the largest buffer kept between frames
	// lent is a frame buffer bigger than keep, from bigFrames: a server
	// reader's pushed block. It goes back at the next ReadFrame, before
	// that waits for the stream (an idle stream holds none).
	lent *[]byte
}

// bigFrames holds the buffers of frames bigger than a server reader keeps
// and at most pooledFrame long (pushed blocks): a donor taking a put's
// blocks reads one per block, and a fresh 128 KiB buffer for each made
// most of its garbage. A bigger frame gets a buffer of its own size.
var bigFrames = sync.Pool{New: func() any { b := make([]byte, pooledFrame); return &b }}

// pooledFrame is the longest frame read into a buffer of bigFrames: a
// pushed block of 128 KiB, the mixer's largest class.
const pooledFrame = 1 + 32 + 128<<10

// NewFrameReader reads frames from r, keeping a buffer for the largest
// frame between reads (a client reading many blocks).
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 64<<10), keep: MaxFrame}
}

// newServerFrameReader reads requests from r with small buffers: a stream
// kept open and idle by a peer holds a few KiB, not a block. A frame
// larger than a want-list (a pushed block) gets its own buffer, dropped
// after use.
func newServerFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 4<<10), keep: 1 + 32 + 32*MaxWant}
}

// ReadFrame returns the next frame. io.EOF means the stream ended cleanly
// between frames; a frame cut short or breaking the limits is an error
// wrapping ErrBadFrame (or the stream's own error).
func (fr *FrameReader) ReadFrame() (Frame, error) {
	if fr.lent != nil {
		bigFrames.Put(fr.lent)
		fr.lent = nil
	}
	n, err := readLength(fr.r)
	switch {
	case err == io.EOF:
		return Frame{}, io.EOF
	case errors.Is(err, ErrBadFrame):
		return Frame{}, err
	case err != nil:
		return Frame{}, fmt.Errorf("read frame: %w", err)
	}
	if n < 1 || n > MaxFrame {
		return Frame{}, fmt.Errorf("%w: length %d (1..%d)", ErrBadFrame, n, MaxFrame)
	}
	var b []byte
	switch {
	case cap(fr.buf) >= int(n):
		b = fr.buf[:n]
	case int(n) <= fr.keep:
		fr.buf = make([]byte, n)
		b = fr.buf
	case n <= pooledFrame:
		fr.lent = bigFrames.Get().(*[]byte)
		b = (*fr.lent)[:n]
	default:
		b = make([]byte, n)
	}
	if _, err := io.ReadFull(fr.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Frame{}, fmt.Errorf("%w: %d-byte frame cut short", ErrBadFrame, n)
		}
		return Frame{}, fmt.Errorf("read frame: %w", err)
	}
	return decodeFrame(b[0], b[1:])
}

// readLength reads a frame's length: a minimal uvarint of at most 3 bytes
// (MaxFrame fits in 21 bits). io.EOF only before its first byte.
func readLength(r io.ByteReader) (uint64, error) {
	var x uint64
	for i := 0; i < 3; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				return 0, fmt.Errorf("%w: cut short in its length", ErrBadFrame)
			}
			return 0, err
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i > 0 && c == 0 {
				return 0, fmt.Errorf("%w: length not in its shortest form", ErrBadFrame)
			}
			return x, nil
		}
	}
	return 0, fmt.Errorf("%w: length over %d bytes", ErrBadFrame, MaxFrame)
}

func decodeFrame(kind byte, p []byte) (Frame, error) {
	bad := func(format string, a ...any) (Frame, error) {
		return Frame{}, fmt.Errorf("%w: kind %d: %s", ErrBadFrame, kind, fmt.Sprintf(format, a...))
	}
	f := Frame{Kind: kind}
	switch kind {
	case KindWant, KindHas:
		if len(p) == 0 || len(p)%32 != 0 || len(p)/32 > MaxWant {
			return bad("want-list of %d bytes", len(p))
		}
		f.IDs = make([]blocks.ID, len(p)/32)
		for i := range f.IDs {
			copy(f.IDs[i][:], p[32*i:])
		}
	case KindBlock, KindPush:
		if len(p) < 32 {
			return bad("%d bytes", len(p))
		}
		copy(f.ID[:], p)
		f.Data = p[32:]
	case KindProve:
		if len(p) < 64 || len(p)%32 != 0 || len(p)/32-1 > MaxProve {
			return bad("prove-list of %d bytes", len(p))
		}
		copy(f.Nonce[:], p)
		f.IDs = make([]blocks.ID, len(p)/32-1)
		for i := range f.IDs {
			copy(f.IDs[i][:], p[32+32*i:])
		}
	case KindProof:
		if len(p) != 64 {
			return bad("%d bytes", len(p))
		}
		copy(f.ID[:], p)
		copy(f.Proof[:], p[32:])
	case KindDontHave, KindAccept, KindHave:
		if len(p) != 32 {
			return bad("%d bytes", len(p))
		}
		copy(f.ID[:], p)
	case KindRefuse:
		if len(p) < 33 || len(p) > 33+MaxReasonText {
			return bad("%d bytes", len(p))
		}
		copy(f.ID[:], p)
		f.Reason = p[32]
		f.Text = string(p[33:])
	case KindEnd:
		if len(p) != 0 {
			return bad("%d bytes", len(p))
		}
	default:
		return bad("unknown kind")
	}
	return f, nil
}
