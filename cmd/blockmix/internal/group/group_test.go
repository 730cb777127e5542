package group

import (
	"bytes"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
)

// TestInviteRoundTrip: an invite carries its group's name, key and
// address; a damaged one is bad input.
func TestInviteRoundTrip(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	addr := "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	inv := Invite("friends", key, addr)
	name, k, ai, err := ParseInvite("here: " + inv + " (keep it secret)")
	if err != nil || name != "friends" || !bytes.Equal(k, key) || ai.ID.String() != "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf" {
		t.Fatalf("ParseInvite: %q %x %v %v", name, k, ai, err)
	}
	for _, bad := range []string{"garbage", inv[:40], "blockmix-invite:zzzz"} {
		if _, _, _, err := ParseInvite(bad); !usage.Is(err) {
			t.Errorf("ParseInvite(%q): %v, want a usage error", bad, err)
		}
	}
}

// TestInviteNameFromStrangers: a terminal escape or an invisible
// character in an invite's group name never reaches a screen or the repo.
func TestInviteNameFromStrangers(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	addr := "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	name, _, _, err := ParseInvite(Invite("ev\x1b[2J\x1b]0;pwned\x07il\u202e", key, addr))
	if err != nil || strings.ContainsAny(name, "\x1b\x07\u202e") || name != "ev[2J]0;pwnedil" {
		t.Fatalf("name %q, %v", name, err)
	}
	if _, _, _, err := ParseInvite(Invite("\x1b\u200b", key, addr)); !usage.Is(err) {
		t.Fatalf("an invite whose name is only escapes: %v", err)
	}
}

// TestJoinRefusesAnotherGroup: a node in a group does not silently trade
// it for the group of an invite; nothing is stored.
func TestJoinRefusesAnotherGroup(t *testing.T) {
	r := repo.Repo{Dir: t.TempDir()}
	if _, err := Create(r, "ours"); err != nil {
		t.Fatal(err)
	}
	before, _, _ := r.Group()
	other := Invite("theirs", bytes.Repeat([]byte{1}, 32), "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
	_, _, err := Join(t.Context(), r, other)
	if !usage.Is(err) || !strings.Contains(err.Error(), "group ours already") {
		t.Fatalf("join of another group: %v", err)
	}
	if after, _, _ := r.Group(); after != before {
		t.Fatalf("the group changed: %+v -> %+v", before, after)
	}
}
