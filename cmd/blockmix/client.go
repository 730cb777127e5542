package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/blockmix/blockmix/webui"
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
	var id webui.IDInfo
	if err := c.getJSON(ctx, "/api/v1/id", &id); err != nil {
		return nil // a stale address from a daemon that died: work offline
	}
	return c
}

func (c *daemonClient) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeAnswer(resp, v)
}

func decodeAnswer(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		var e webui.ErrorBody
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return fmt.Errorf("daemon: %s", e.Error)
		}
		return fmt.Errorf("daemon: %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (c *daemonClient) put(ctx context.Context, r io.Reader, size int64, name, typ string) (webui.PutInfo, error) {
	q := url.Values{"name": {name}, "type": {typ}}
	if size >= 0 {
		q.Set("size", strconv.FormatInt(size, 10))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/put?"+q.Encode(), r)
	if err != nil {
		return webui.PutInfo{}, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return webui.PutInfo{}, fmt.Errorf("daemon: %w", err)
	}
	defer resp.Body.Close()
	var info webui.PutInfo
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
