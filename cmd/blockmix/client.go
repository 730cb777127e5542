package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// daemonClient talks to the daemon that runs on the repo.
type daemonClient struct {
	base string
	hc   *http.Client
}

// daemon returns a client when a daemon answers on the repo's API address.
func (e *env) daemon(ctx context.Context) *daemonClient {
	u := e.apiURL()
	if u == "" {
		return nil
	}
	c := &daemonClient{base: u, hc: &http.Client{}}
	var id apiv1.IDInfo
	if err := c.getJSON(ctx, "/api/v1/id", &id); err != nil {
		return nil // a stale address from a daemon that died: work offline
	}
	return c
}

func (c *daemonClient) getJSON(ctx context.Context, path string, v any) error {
	return c.callJSON(ctx, http.MethodGet, path, v)
}

// callJSON sends a request without a body and decodes the JSON answer.
func (c *daemonClient) callJSON(ctx context.Context, method, path string, v any) error {
	resp, err := c.call(ctx, method, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// call sends a request without a body and returns the answer when its
// status is 2xx, else the daemon's error. The caller closes the body.
func (c *daemonClient) call(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeAnswer(resp, nil)
	}
	return resp, nil
}

// blocks calls fn with each block the daemon's store lists, in ID order.
// A listing cut short is an error.
func (c *daemonClient) blocks(ctx context.Context, fn func(apiv1.BlockInfo) error) error {
	resp, err := c.call(ctx, http.MethodGet, "/api/v1/blocks")
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

// block returns one block's bytes from the daemon's store.
func (c *daemonClient) block(ctx context.Context, id blocks.ID) ([]byte, error) {
	resp, err := c.call(ctx, http.MethodGet, "/api/v1/blocks/"+id.String())
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

func decodeAnswer(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		var e apiv1.ErrorBody
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return fmt.Errorf("daemon: %s", e.Error)
		}
		return fmt.Errorf("daemon: %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (c *daemonClient) put(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error) {
	q := url.Values{"name": {name}, "type": {typ}}
	if size >= 0 {
		q.Set("size", strconv.FormatInt(size, 10))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/put?"+q.Encode(), r)
	if err != nil {
		return apiv1.PutInfo{}, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return apiv1.PutInfo{}, fmt.Errorf("daemon: %w", err)
	}
	defer resp.Body.Close()
	var info apiv1.PutInfo
	return info, decodeAnswer(resp, &info)
}

// get streams the file into w; a cut stream is an error.
func (c *daemonClient) get(ctx context.Context, recipeText string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/get?"+url.Values{"recipe": {recipeText}}.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeAnswer(resp, nil)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fmt.Errorf("daemon: the file was cut after %d bytes: %w", n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("daemon: the file was cut after %d of %d bytes", n, resp.ContentLength)
	}
	return nil
}
