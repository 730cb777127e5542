// Package netlab builds a small internet out of Linux network namespaces
// for tests: one namespace whose bridge is "the internet", public hosts on
// it, and homes behind routers that masquerade (nftables) and limit their
// uplink (tbf), each with hosts on its own LAN. Programs run in a host's
// namespace with Host.Wrap.
//
// Every name a Lab makes is unique to it, and t.Cleanup removes all of it
// (the namespaces, and with them their links and rules). Making a Lab
// fails the test when namespaces cannot be made (it needs root, ip from
// iproute2, nft and tc): a lab test never skips. Every address lives in
// the Lab's namespaces: the internet is 198.18.0.0/15 (RFC 2544's range
// for test labs), home N's LAN is 10.N.0.0/24.
package netlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Internet is the address range of the lab's internet. Daemons in a lab
// are told to count it as public (BLOCKMIX_LAB_INTERNET).
const Internet = "198.18.0.0/15"

// Lab is one test's internet.
type Lab struct {
	t      testing.TB
	id     string // unique prefix of every name
	inet   string // the internet's namespace
	mu     sync.Mutex
	nss    []string
	public int // public hosts made
	homes  int
}

// Host is a machine in the lab: a namespace with one link.
type Host struct {
	Name string // for messages
	NS   string // its network namespace
	IP   string // its address
}

// Home is a router with a LAN behind it.
type Home struct {
	lab    *Lab
	n      int // 1.., its LAN is 10.n.0.0/24
	Router *Host
	hosts  int
}

// run runs a command and fails the test on error.
func (l *Lab) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// nsRun runs a command in namespace ns.
func (l *Lab) nsRun(ns string, args ...string) {
	l.t.Helper()
	l.run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// bridge makes a bridge named name in namespace ns and brings it up. Its
// frames do not go through the namespace's IP firewall: when the kernel
// has br_netfilter loaded (Docker loads it), bridged frames would meet the
// router's forward chain, whose policy drops them, and hosts on one LAN
// would not see each other's multicast (mDNS). The switch is per
// namespace; without br_netfilter it does not exist and there is nothing
// to turn off.
func (l *Lab) bridge(ns, name string) {
	l.t.Helper()
	l.nsRun(ns, "ip", "link", "add", "name", name, "type", "bridge")
	l.nsRun(ns, "sh", "-c", `for k in bridge-nf-call-iptables bridge-nf-call-ip6tables bridge-nf-call-arptables; do
	f=/proc/sys/net/bridge/$k; if [ -e "$f" ]; then echo 0 > "$f" || exit 1; fi
done`)
}

// New makes an empty internet: a namespace with a bridge. The test fails
// when it cannot be made.
func New(t testing.TB) *Lab {
	t.Helper()
	for _, tool := range []string{"ip", "nft", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("netlab needs %s (iproute2, nftables; .ci/deps installs them): %v", tool, err)
		}
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := &Lab{t: t, id: "bm" + hex.EncodeToString(b[:])}
	t.Cleanup(l.close)
	l.inet = l.ns("inet")
	l.bridge(l.inet, "inet0")
	l.nsRun(l.inet, "ip", "link", "set", "inet0", "up")
	return l
}

// ns makes a namespace with its loopback up.
func (l *Lab) ns(name string) string {
	l.t.Helper()
	ns := l.id + "-" + name
	l.run("ip", "netns", "add", ns)
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()
	l.nsRun(ns, "ip", "link", "set", "lo", "up")
	return ns
}

// close removes every namespace the lab made (their links and rules go
// with them). The processes in them must have ended.
func (l *Lab) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.nss) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", l.nss[i]).CombinedOutput(); err != nil {
			l.t.Errorf("netlab: remove namespace %s: %v\n%s", l.nss[i], err, out)
		}
	}
	l.nss = nil
}

// link joins namespace ns to the bridge br of namespace brNS by a veth
// pair: ifname in ns, a port of the bridge on the other side; it sets
// addr (CIDR) on ifname and brings both up.
func (l *Lab) link(ns, ifname, brNS, br, port, addr string) {
	l.t.Helper()
	l.run("ip", "-n", ns, "link", "add", "name", ifname, "type", "veth", "peer", "name", port, "netns", brNS)
	l.nsRun(brNS, "ip", "link", "set", port, "master", br)
	l.nsRun(brNS, "ip", "link", "set", port, "up")
	l.nsRun(ns, "ip", "addr", "add", addr, "dev", ifname)
	l.nsRun(ns, "ip", "link", "set", ifname, "up")
}

// Public adds a host with a public address on the internet.
func (l *Lab) Public(name string) *Host {
	l.t.Helper()
	l.mu.Lock()
	l.public++
	n := l.public
	l.mu.Unlock()
	h := &Host{Name: name, NS: l.ns(fmt.Sprintf("p%d", n)), IP: fmt.Sprintf("198.18.0.%d", n+1)}
	l.link(h.NS, "eth0", l.inet, "inet0", fmt.Sprintf("p%d", n), h.IP+"/15")
	return h
}

// Rate is a link's speed in bits per second; 0: unlimited.
type Rate int64

// Mbit is one megabit per second.
const Mbit Rate = 1_000_000

// Home adds a router on the internet with a LAN (10.N.0.0/24) behind it:
// it masquerades the LAN's traffic, lets in only answers to it (a packet
// from outside that answers nothing is dropped, as home routers do: it
// reaches neither the LAN nor the router), and sends at most uplink
// to the internet (tbf; 0: unlimited).
func (l *Lab) Home(name string, uplink Rate) *Home {
	l.t.Helper()
	return l.home(name, uplink, "masquerade")
}

// SymmetricHome is Home behind a router that maps every connection to a
// random port (a symmetric NAT, as some carrier-grade NATs are): the
// address one peer sees is of no use to another, so hole punching fails.
func (l *Lab) SymmetricHome(name string, uplink Rate) *Home {
	l.t.Helper()
	return l.home(name, uplink, "masquerade random")
}

func (l *Lab) home(name string, uplink Rate, masq string) *Home {
	l.t.Helper()
	l.mu.Lock()
	l.homes++
	n := l.homes
	l.mu.Unlock()
	ns := l.ns(fmt.Sprintf("h%d", n))
	r := &Host{Name: name + " router", NS: ns, IP: fmt.Sprintf("198.19.0.%d", n+1)}
	l.link(ns, "wan", l.inet, "inet0", fmt.Sprintf("h%d", n), r.IP+"/15")
	l.bridge(ns, "lan")
	l.nsRun(ns, "ip", "addr", "add", fmt.Sprintf("10.%d.0.1/24", n), "dev", "lan")
	l.nsRun(ns, "ip", "link", "set", "lan", "up")
	l.nsRun(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	rules := `table ip nat {
	chain post { type nat hook postrouting priority srcnat; oifname "wan" ` + masq + `; }
}
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" drop
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct status dnat accept
		iifname "lan" accept
	}
}
`
	c := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	c.Stdin = strings.NewReader(rules)
	if out, err := c.CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: nft in %s: %v\n%s", ns, err, out)
	}
	if uplink > 0 {
		l.Shape(r, "wan", uplink)
	}
	return &Home{lab: l, n: n, Router: r}
}

// Shape limits what h sends on its interface ifname to rate (tbf), and
// replaces an earlier limit.
func (l *Lab) Shape(h *Host, ifname string, rate Rate) {
	l.t.Helper()
	// A burst of at least one timer tick's worth of bytes, and a queue of
	// 100 ms: enough for TCP to fill the link.
	burst := max(int64(rate)/8/250, 32<<10)
	c := exec.Command("ip", "netns", "exec", h.NS, "tc", "qdisc", "replace", "dev", ifname, "root", "tbf",
		"rate", fmt.Sprintf("%dbit", int64(rate)), "burst", fmt.Sprint(burst), "latency", "100ms")
	if out, err := c.CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: tc in %s: %v\n%s", h.NS, err, out)
	}
}

// Forward forwards TCP port on the home router's public address to the
// same port of host, a host of its LAN (as a person does by hand in the
// router's settings).
func (l *Lab) Forward(h *Home, port int, host *Host) {
	l.t.Helper()
	rule := fmt.Sprintf(`table ip nat {
	chain pre { type nat hook prerouting priority dstnat; iifname "wan" tcp dport %d dnat to %s:%d; }
}
`, port, host.IP, port)
	c := exec.Command("ip", "netns", "exec", h.Router.NS, "nft", "-f", "-")
	c.Stdin = strings.NewReader(rule)
	if out, err := c.CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: forward port %d in %s: %v\n%s", port, h.Router.NS, err, out)
	}
}

// Host adds a host to the home's LAN (10.N.0.M, its router the gateway).
func (h *Home) Host(name string) *Host {
	l := h.lab
	l.t.Helper()
	l.mu.Lock()
	h.hosts++
	m := h.hosts
	l.mu.Unlock()
	host := &Host{Name: name, NS: l.ns(fmt.Sprintf("h%dl%d", h.n, m)), IP: fmt.Sprintf("10.%d.0.%d", h.n, m+1)}
	l.link(host.NS, "eth0", h.Router.NS, "lan", fmt.Sprintf("l%d", m), host.IP+"/24")
	l.nsRun(host.NS, "ip", "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", h.n))
	return host
}

// Wrap makes c run in h's namespace (through ip netns exec). Call it
// before c starts.
func (h *Host) Wrap(c *exec.Cmd) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		ip = "ip"
	}
	c.Args = append([]string{"ip", "netns", "exec", h.NS}, append([]string{c.Path}, c.Args[1:]...)...)
	c.Path = ip
	c.Err = nil
}

// Run runs a command in h's namespace and returns its output.
func (h *Host) Run(args ...string) (string, error) {
	c := exec.Command(args[0], args[1:]...)
	h.Wrap(c)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}
