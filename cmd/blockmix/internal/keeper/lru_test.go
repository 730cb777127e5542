package keeper

import (
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

func TestLRU(t *testing.T) {
	id := func(b byte) blocks.ID { return blocks.ID{b} }
	cs := []candidate{
		{id: id(1), used: 300, seq: 1},
		{id: id(2), used: 0, seq: 9},
		{id: id(3), used: 100, seq: 5},
		{id: id(4), used: 0, seq: 2},
	}
	lru(cs)
	var got []byte
	for _, c := range cs {
		got = append(got, c.id[0])
	}
	// Never used in this run first, oldest arrival first; then by last use.
	if string(got) != string([]byte{4, 2, 3, 1}) {
		t.Fatalf("lru order %v, want [4 2 3 1]", got)
	}
}
