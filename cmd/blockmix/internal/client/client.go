// Package client is the command line's side of the node's local API: a
// Client talks to the daemon that runs on a repo. Every call has a
// deadline for the daemon's first answer, so a hung daemon gives "the
// daemon does not answer" instead of a hung command.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Timeouts: a daemon that does not take a connection within Dial, or
// does not start to answer a question within Answer, does not answer.
// Work that takes as long as it takes (put, get, verify, gc, pin, repair)
// has no deadline but Dial.
const (
	Dial   = 5 * time.Second
	Answer = 30 * time.Second
)

// ErrNoAnswer: the daemon took the connection but did not answer in time.
var ErrNoAnswer = errors.New("the daemon does not answer")

// Client talks to the daemon that runs on a repo. Safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
	// stuck, when set, is the answer to every call: the daemon took the
	// connection but did not answer.
	stuck error
}

// New returns a Client when a daemon runs at url, else nil: nobody
// listening there (a stale address from a daemon that died) means working
// offline. A daemon that takes the connection but does not answer its
// /api/v1/id within Dial gives a Client whose every call fails at once
// with ErrNoAnswer: it holds the repo, so there is no working offline
// either.
func New(ctx context.Context, url string) *Client {
	if url == "" {
		return nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: Dial}).DialContext
	c := &Client{base: url, hc: &http.Client{Transport: tr}}
	pctx, cancel := context.WithTimeout(ctx, Dial)
	defer cancel()
	var id apiv1.IDInfo
	err := c.getJSON(pctx, "/api/v1/id", &id)
	switch {
	case err == nil:
		return c
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		c.stuck = fmt.Errorf("%w: the daemon at %s took the connection but gave no answer within %v (is it stopped or overloaded? 'systemctl status blockmix', or restart it)", ErrNoAnswer, url, Dial)
		return c
	}
	return nil
}

// ask bounds a question (not work) by Answer.
func ask(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, Answer)
}

// failed words a failed request: one that ran out of time says the daemon
// does not answer.
func failed(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("%w in time: %w", ErrNoAnswer, err)
	}
	return fmt.Errorf("daemon: %w", err)
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	return c.callJSON(ctx, http.MethodGet, path, v)
}

// callJSON sends a request without a body and decodes the JSON answer.
func (c *Client) callJSON(ctx context.Context, method, path string, v any) error {
	resp, err := c.call(ctx, method, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// call sends a request with body (nil: none) and returns the answer when
// its status is 2xx, else the daemon's error. The caller closes the body.
func (c *Client) call(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	if c.stuck != nil {
		return nil, c.stuck
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, failed(ctx, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, answerError(resp)
	}
	return resp, nil
}

// Blocks calls fn with each block the daemon's store lists, in ID order.
// A listing cut short is an error.
func (c *Client) Blocks(ctx context.Context, fn func(apiv1.BlockInfo) error) error {
	resp, err := c.call(ctx, http.MethodGet, "/api/v1/blocks", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	d := json.NewDecoder(resp.Body)
	for {
		var b apiv1.BlockInfo
		err := d.Decode(&b)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("daemon: the block list was cut: %w", err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
}

// Block returns one block's bytes from the daemon's store.
func (c *Client) Block(ctx context.Context, id blocks.ID) ([]byte, error) {
	resp, err := c.call(ctx, http.MethodGet, "/api/v1/blocks/"+id.String(), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("daemon: block %s was cut: %w", id, err)
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return nil, fmt.Errorf("daemon: block %s was cut after %d of %d bytes", id, len(b), resp.ContentLength)
	}
	return b, blocks.Check(id, b)
}

// answerError is the daemon's error answer in plain words.
func answerError(resp *http.Response) error {
	var e apiv1.ErrorBody
	if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
		return StatusError{resp.StatusCode, e.Error}
	}
	return StatusError{resp.StatusCode, resp.Status}
}

// StatusError is the daemon's refusal of a request: its HTTP status and
// its words.
type StatusError struct {
	Status int
	Msg    string
}

func (e StatusError) Error() string { return "daemon: " + e.Msg }

// Put sends a file to the daemon, which mixes, stores and places it.
func (c *Client) Put(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error) {
	return c.PutWith(ctx, r, size, name, typ, "")
}

// PutWith is Put with a redundancy ("r:3", "rs:4+2"; "" for the
// daemon's default).
func (c *Client) PutWith(ctx context.Context, r io.Reader, size int64, name, typ, redundancy string) (apiv1.PutInfo, error) {
	q := url.Values{"name": {name}, "type": {typ}}
	if redundancy != "" {
		q.Set("redundancy", redundancy)
	}
	if size >= 0 {
		q.Set("size", strconv.FormatInt(size, 10))
	}
	resp, err := c.call(ctx, http.MethodPost, "/api/v1/put?"+q.Encode(), r)
	if err != nil {
		return apiv1.PutInfo{}, err
	}
	defer resp.Body.Close()
	var info apiv1.PutInfo
	return info, json.NewDecoder(resp.Body).Decode(&info)
}

// Get streams the file into w; a cut stream is an error.
func (c *Client) Get(ctx context.Context, recipeText string, w io.Writer) error {
	resp, err := c.call(ctx, http.MethodGet, "/api/v1/get?"+url.Values{"recipe": {recipeText}, "trailer": {"1"}}.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fmt.Errorf("daemon: the file was cut after %d bytes: %w", n, err)
	}
	if msg := resp.Trailer.Get(webui.ErrorTrailer); msg != "" {
		return fmt.Errorf("daemon: the file stopped after %d bytes: %s", n, msg)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("daemon: the file was cut after %d of %d bytes", n, resp.ContentLength)
	}
	return nil
}

// Question asks GET path (a question, bounded by Answer) and decodes the
// JSON answer into v.
func (c *Client) Question(ctx context.Context, path string, v any) error {
	ctx, cancel := ask(ctx)
	defer cancel()
	return c.getJSON(ctx, path, v)
}

// Work sends method path (work that takes as long as it takes) and
// decodes the JSON answer into v (nil: none).
func (c *Client) Work(ctx context.Context, method, path string, v any) error {
	if v == nil {
		resp, err := c.call(ctx, method, path, nil)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	return c.callJSON(ctx, method, path, v)
}

// ID is the daemon's peer ID and addresses.
func (c *Client) ID(ctx context.Context) (apiv1.IDInfo, error) {
	var v apiv1.IDInfo
	return v, c.Question(ctx, "/api/v1/id", &v)
}

// Status sums up the node.
func (c *Client) Status(ctx context.Context) (apiv1.StatusInfo, error) {
	var v apiv1.StatusInfo
	return v, c.Question(ctx, "/api/v1/status", &v)
}

// Files lists the files on the node's list.
func (c *Client) Files(ctx context.Context) ([]blocks.FileRecord, error) {
	var v []blocks.FileRecord
	return v, c.Question(ctx, "/api/v1/files", &v)
}

// Verify re-hashes every block of the node's store.
func (c *Client) Verify(ctx context.Context) (apiv1.VerifyInfo, error) {
	var v apiv1.VerifyInfo
	return v, c.Work(ctx, http.MethodPost, "/api/v1/verify", &v)
}

// Pin fetches what is missing of rc and puts it on the node's list.
func (c *Client) Pin(ctx context.Context, rc recipe.Recipe) error {
	var v apiv1.RecipeInfo
	return c.Work(ctx, http.MethodPost, "/api/v1/pin?"+url.Values{"recipe": {rc.String()}}.Encode(), &v)
}

// Unpin takes rc off the node's list.
func (c *Client) Unpin(ctx context.Context, rc recipe.Recipe) error {
	return c.Work(ctx, http.MethodDelete, "/api/v1/files/"+url.PathEscape(rc.Key()), nil)
}
