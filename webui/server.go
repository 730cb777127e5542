package webui

import (
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Options tune a Server.
type Options struct {
	// Hosts are the extra host names (without port) the server answers to
	// besides loopback addresses and "localhost": the address it is bound
	// to when that is not loopback. Any other Host header is refused (DNS
	// rebinding).
	Hosts []string
	// MaxUpload bounds one uploaded file; 0 means 64 GiB.
	MaxUpload int64
	// MaxTransfers bounds the transfers running at once: puts, gets,
	// fetches, pins and repairs; 0 means 8. More are refused with 503 and
	// a message.
	MaxTransfers int
	// Stall cuts a request whose body sends no byte for this long, and an
	// answer the client reads no byte of for this long; 0 means 30 s. A
	// long upload or download that keeps moving is never cut.
	Stall time.Duration
	// MaxUnseals bounds the passphrases checked at once (each takes
	// Argon2id's 64 MiB); 0 means 2. A request waits up to UnsealWait
	// (0: 5 s) for its turn, then gets 503.
	MaxUnseals int
	UnsealWait time.Duration
	// SampleEvery is the bandwidth history's interval; 0 means 10 s.
	SampleEvery time.Duration
	// Log gets one line per failed transfer (a get cut halfway, a fetch
	// that failed) with the reason; nil means slog.Default().
	Log *slog.Logger
	// Failed, if set, is called once per failed transfer (for metrics).
	Failed func()
	// StateFile, if set, is where the finished transfers and puts are
	// kept (the last 50), so that the page shows them after a reload and
	// after a restart of the node.
	StateFile string
	// Live, if set, serves the live folders' API (see liveRoutes).
	Live Live
}

// Server serves a node's API and web page. Close it to stop its
// background work (transfers, the bandwidth history).
type Server struct {
	n    Node
	opt  Options
	h    http.Handler
	stop chan struct{}
	wg   sync.WaitGroup // the background work
	once sync.Once

	transfers *transfers
	history   *history
	// slots holds one token per transfer running (see
	// Options.MaxTransfers), whether it answers a request or runs in the
	// background (a fetch).
	slots   chan struct{}
	unseals chan struct{} // one token per passphrase being checked
}

// Running counts the transfers running now: puts, gets being streamed,
// pins, repairs and fetches into the node.
func (s *Server) Running() int { return len(s.slots) }

// slot takes a transfer slot without waiting. It returns the func that
// gives it back, or false when MaxTransfers run.
func (s *Server) slot() (release func(), ok bool) {
	select {
	case s.slots <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-s.slots }) }, true
	default:
		return nil, false
	}
}

// New returns a Server for n.
func New(n Node, opt Options) *Server {
	if opt.MaxUpload <= 0 {
		opt.MaxUpload = 64 << 30
	}
	if opt.MaxTransfers <= 0 {
		opt.MaxTransfers = 8
	}
	if opt.Stall <= 0 {
		opt.Stall = 30 * time.Second
	}
	if opt.MaxUnseals <= 0 {
		opt.MaxUnseals = 2
	}
	if opt.UnsealWait <= 0 {
		opt.UnsealWait = 5 * time.Second
	}
	if opt.SampleEvery <= 0 {
		opt.SampleEvery = 10 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Failed == nil {
		opt.Failed = func() {}
	}
	s := &Server{n: n, opt: opt, stop: make(chan struct{}), history: &history{every: opt.SampleEvery},
		slots: make(chan struct{}, opt.MaxTransfers), unseals: make(chan struct{}, opt.MaxUnseals)}
	s.transfers = newTransfers(n, s.slot, s.stop, opt.Log, opt.Failed, &s.wg, opt.StateFile)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.history.run(n, s.stop)
	}()
	mux := http.NewServeMux()
	s.apiRoutes(mux)
	s.liveRoutes(mux)
	s.pageRoutes(mux)
	s.h = s.guard(mux)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// Close stops the background work (fetches running for the page, the
// bandwidth history) and waits for it to end.
func (s *Server) Close() {
	s.once.Do(func() {
		// Under the transfers' lock: no fetch starts after the stop.
		s.transfers.mu.Lock()
		close(s.stop)
		s.transfers.mu.Unlock()
	})
	s.wg.Wait()
}

// API returns a Server for n with default options, as an http.Handler.
func API(n Node) http.Handler { return New(n, Options{}) }
