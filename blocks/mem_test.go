package blocks_test

import (
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/blocks/storetest"
)

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) blocks.Store { return blocks.NewMem() })
}
