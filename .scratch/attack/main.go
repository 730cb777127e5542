package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmix/blockmix/blocks"
	bmnet "github.com/blockmix/blockmix/net"
)

func main() {
	target := flag.String("target", "", "multiaddr/p2p")
	id := flag.String("block", "", "block id")
	pid := flag.Int("pid", 0, "daemon pid")
	dur := flag.Duration("for", 15*time.Second, "")
	flag.Parse()
	ai, err := peer.AddrInfoFromP2pAddr(ma.StringCast(*target))
	if err != nil {
		panic(err)
	}
	bid, err := blocks.ParseID(*id)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	want := make([]blocks.ID, 1024)
	for i := range want {
		want[i] = bid
	}
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			panic(err)
		}
		if err := h.Connect(ctx, *ai); err != nil {
			panic(err)
		}
		for s := 0; s < 64; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := h.NewStream(ctx, ai.ID, protocol.ID(bmnet.ProtocolID))
				if err != nil {
					return
				}
				for ctx.Err() == nil {
					if err := bmnet.WriteFrame(st, bmnet.Frame{Kind: bmnet.KindWant, IDs: want}); err != nil {
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
			}()
		}
	}
	go func() {
		for ctx.Err() == nil {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", *pid))
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") {
					fmt.Print(strings.Join(strings.Fields(l), " "), "  ")
				}
			}
			fmt.Println()
			time.Sleep(2 * time.Second)
		}
	}()
	wg.Wait()
}
