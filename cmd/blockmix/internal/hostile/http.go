package hostile

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// UnsealResult is what UnsealFlood measured.
type UnsealResult struct {
	Status  map[int]int   // answers by HTTP status
	Errors  int           // requests that got no answer
	Slowest time.Duration // the longest a request waited for its answer
}

// UnsealFlood sends n POST /api/v1/unseal at once to the API at base (a
// form of sealed and passphrase, as the web page sends it): each makes the
// node derive a key with Argon2id. It returns once every request was
// answered or failed.
func UnsealFlood(ctx context.Context, base, sealed, passphrase string, n int) UnsealResult {
	r := UnsealResult{Status: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	form := url.Values{"recipe": {sealed}, "passphrase": {passphrase}}.Encode()
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/unseal", strings.NewReader(form))
			if err != nil {
				panic(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			<-start
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			r.Slowest = max(r.Slowest, d)
			if err != nil {
				r.Errors++
				return
			}
			r.Status[resp.StatusCode]++
		}()
	}
	close(start)
	wg.Wait()
	return r
}

// SlowUpload is a POST /api/v1/put whose body trickles in, one byte per
// interval, until Stop.
type SlowUpload struct {
	sent   atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
	status int
	err    error
}

// StartSlowUpload begins the upload to the API at base: a file named name
// of unknown size, one byte every interval.
func StartSlowUpload(ctx context.Context, base, name string, interval time.Duration) *SlowUpload {
	ctx, cancel := context.WithCancel(ctx)
	u := &SlowUpload{cancel: cancel, done: make(chan struct{})}
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			// Write blocks until the HTTP client took the byte: sent counts
			// what went to the connection.
			if _, err := pw.Write([]byte{'x'}); err != nil {
				return
			}
			u.sent.Add(1)
			select {
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			case <-t.C:
			}
		}
	}()
	go func() {
		defer close(u.done)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/put?name="+url.QueryEscape(name), pr)
		if err != nil {
			u.err = err
			return
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			u.err = err
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		u.status = resp.StatusCode
		if resp.StatusCode != http.StatusOK {
			u.err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}()
	return u
}

// Sent is how many bytes of the body went out so far.
func (u *SlowUpload) Sent() int64 { return u.sent.Load() }

// Ended reports whether the request already ended (the node answered or
// cut it), with its error.
func (u *SlowUpload) Ended() (bool, error) {
	select {
	case <-u.done:
		return true, u.err
	default:
		return false, nil
	}
}

// Stop abandons the upload and waits for the request to end.
func (u *SlowUpload) Stop() {
	u.cancel()
	<-u.done
}
