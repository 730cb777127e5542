package net

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"

	"github.com/blockmix/blockmix/blocks"
)

// A peer's word that it holds a block (a Have, an Accept) is a claim; a
// proof is an answer that needs the block's bytes: the hash of a fresh
// nonce and the block. The nonce is new for every question, so an answer
// cannot be kept from earlier; only a peer that can read the block when
// asked can give it.

// ProofOf is the proof of holding data for nonce: sha2-256(nonce ‖ data).
func ProofOf(nonce [32]byte, data []byte) [32]byte {
	h := sha256.New()
	h.Write(nonce[:])
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// NewNonce returns a fresh random nonce.
func NewNonce() [32]byte {
	var n [32]byte
	_, _ = rand.Read(n[:]) // crypto/rand.Read never fails (Go 1.24)
	return n
}

// Prove sends one prove-list on rw for bs, whose bytes this side holds,
// and reports for each whether the peer proved it holds it (a DontHave or
// a wrong proof: false). A broken answer is an error wrapping ErrBadFrame.
func Prove(ctx context.Context, rw io.ReadWriter, bs []blocks.Block) ([]bool, error) {
	out := make([]bool, len(bs))
	if len(bs) == 0 {
		return out, nil
	}
	nonce := NewNonce()
	ids := make([]blocks.ID, len(bs))
	for i, b := range bs {
		ids[i] = b.ID()
	}
	answers, err := askEach(ctx, rw, Frame{Kind: KindProve, Nonce: nonce, IDs: ids}, "prove", KindProof)
	if err != nil {
		return nil, err
	}
	for i, f := range answers {
		out[i] = f.Kind == KindProof && f.Proof == ProofOf(nonce, bs[i].Data())
	}
	return out, nil
}
