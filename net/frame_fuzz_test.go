package net

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// FuzzReadFrame: any bytes decode into frames that re-encode to the same
// bytes, or fail with ErrBadFrame; nothing panics or allocates past the
// limits.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range []Frame{
		{Kind: KindWant, IDs: []blocks.ID{{1}, {2}}},
		{Kind: KindBlock, ID: blocks.ID{3}, Data: []byte("data")},
		{Kind: KindRefuse, ID: blocks.ID{4}, Reason: RefuseQuota, Text: "full"},
		{Kind: KindEnd},
		{Kind: KindProve, Nonce: [32]byte{5}, IDs: []blocks.ID{{6}}},
		{Kind: KindProof, ID: blocks.ID{7}, Proof: [32]byte{8}},
	} {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, fr); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewFrameReader(bytes.NewReader(in))
		var out bytes.Buffer
		for {
			got, err := fr.ReadFrame()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrBadFrame) {
					t.Fatalf("error %v does not wrap ErrBadFrame", err)
				}
				return
			}
			if err := WriteFrame(&out, got); err != nil {
				t.Fatalf("re-encode %+v: %v", got, err)
			}
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("frames re-encode to other bytes")
		}
	})
}
