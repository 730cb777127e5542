package blocks_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// helloCID is the ID of the 5 bytes "hello", computed apart from this code:
// sha256("hello") = 2cf24dba…938b9824 (sha256sum), prefixed with the CIDv1
// header 0x01 (version) 0x55 (raw) 0x12 (sha2-256) 0x20 (32 bytes), in
// lower-case unpadded base32 after the multibase prefix "b".
const (
	helloCID    = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
	helloSHA256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
)

func TestIDKnownAnswer(t *testing.T) {
	id := blocks.Sum([]byte("hello"))
	if got := id.String(); got != helloCID {
		t.Fatalf("String() = %s, want %s", got, helloCID)
	}
	if got := id.Short(); got != helloSHA256[:12] {
		t.Fatalf("Short() = %s, want %s", got, helloSHA256[:12])
	}
	parsed, err := blocks.ParseID(helloCID)
	if err != nil || parsed != id {
		t.Fatalf("ParseID(%s) = %s, %v", helloCID, parsed, err)
	}
	// The same CID in base58btc is accepted too.
	parsed, err = blocks.ParseID("zb2rhZfjRh2FHHB2RkHVEvL2vJnCTcu7kwRqgVsf9gpkLgteo")
	if err != nil || parsed != id {
		t.Fatalf("ParseID(base58btc) = %s, %v", parsed, err)
	}
	if err := blocks.Check(id, []byte("hello")); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := blocks.Check(id, []byte("hellO")); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("Check of other bytes: %v, want ErrCorrupt", err)
	}
}

func TestIDRoundTrip(t *testing.T) {
	for _, data := range []string{"", "a", "hello", strings.Repeat("x", 1<<17)} {
		id := blocks.Sum([]byte(data))
		if id.IsZero() {
			t.Fatal("IsZero of a real ID")
		}
		got, err := blocks.ParseID(id.String())
		if err != nil || got != id {
			t.Fatalf("ParseID(String()) = %v, %v; want %v", got, err, id)
		}
		fc, err := blocks.FromCID(id.CID())
		if err != nil || fc != id {
			t.Fatalf("FromCID(CID()) = %v, %v", fc, err)
		}
	}
	if !(blocks.ID{}).IsZero() {
		t.Fatal("IsZero of the zero ID = false")
	}
}

func TestIDRejects(t *testing.T) {
	data := []byte("hello")
	sha256, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	sha512, err := mh.Sum(data, mh.SHA2_512, -1)
	if err != nil {
		t.Fatal(err)
	}
	short, err := mh.Encode(make([]byte, 20), mh.SHA2_256) // a truncated sha2-256
	if err != nil {
		t.Fatal(err)
	}
	identity, err := mh.Sum(data, mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"CIDv0":          cid.NewCidV0(sha256).String(),
		"dag-pb":         cid.NewCidV1(cid.DagProtobuf, sha256).String(),
		"dag-cbor":       cid.NewCidV1(cid.DagCBOR, sha256).String(),
		"sha2-512":       cid.NewCidV1(cid.Raw, sha512).String(),
		"short sha2-256": cid.NewCidV1(cid.Raw, short).String(),
		"identity":       cid.NewCidV1(cid.Raw, identity).String(),
		"empty":          "",
		"garbage":        "not a cid",
		"truncated":      helloCID[:len(helloCID)-3],
		"typo":           "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4ye1",
	} {
		if id, err := blocks.ParseID(s); !errors.Is(err, blocks.ErrBadID) {
			t.Errorf("ParseID(%s %q) = %v, %v; want ErrBadID", name, s, id, err)
		}
	}
	if _, err := blocks.FromCID(cid.NewCidV0(sha256)); !errors.Is(err, blocks.ErrBadID) {
		t.Errorf("FromCID(CIDv0): %v, want ErrBadID", err)
	}
}

func TestIDJSON(t *testing.T) {
	type doc struct {
		ID  blocks.ID            `json:"id"`
		IDs []blocks.ID          `json:"ids"`
		Map map[blocks.ID]string `json:"map"`
	}
	id := blocks.Sum([]byte("hello"))
	other := blocks.Sum([]byte("world"))
	in := doc{ID: id, IDs: []blocks.ID{id, other}, Map: map[blocks.ID]string{id: "h"}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"` + helloCID + `","ids":["` + helloCID + `","` + other.String() + `"],"map":{"` + helloCID + `":"h"}}`
	if string(b) != want {
		t.Fatalf("Marshal = %s\nwant      %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != id || len(out.IDs) != 2 || out.IDs[1] != other || out.Map[id] != "h" {
		t.Fatalf("Unmarshal = %+v", out)
	}
	if err := json.Unmarshal([]byte(`{"id":"QmRN6wdp1S2A5EtjW9A3M1vKSBuQQGcgvuhoMUoEz4iiT5"}`), &out); !errors.Is(err, blocks.ErrBadID) {
		t.Fatalf("Unmarshal of a CIDv0: %v, want ErrBadID", err)
	}
}
