package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Live lists the daemon's watched and followed folders.
func (c *Client) Live(ctx context.Context) ([]apiv1.LiveFolder, error) {
	var v apiv1.LiveInfo
	return v.Folders, c.Question(ctx, "/api/v1/live", &v)
}

// liveCall posts req as JSON to path and decodes the answer into v. A
// refusal for bad input (400, or 403 for a wrong passphrase) is a
// usage.Error: the command exits with code 2.
func (c *Client) liveCall(ctx context.Context, path string, req apiv1.LiveRequest, v any) error {
	ctx, cancel := ask(ctx)
	defer cancel()
	b, _ := json.Marshal(req)
	resp, err := c.call(ctx, http.MethodPost, path, bytes.NewReader(b))
	if err != nil {
		return refusal(err)
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// refusal makes the daemon's refusal for bad input (400, or 403 for a
// wrong passphrase) a usage.Error.
func refusal(err error) error {
	if se := (StatusError{}); errors.As(err, &se) && (se.Status == http.StatusBadRequest || se.Status == http.StatusForbidden) {
		return usage.Error{Err: err}
	}
	return err
}

// Watch starts publishing dir (absolute) under a live link.
func (c *Client) Watch(ctx context.Context, dir string, passphrase []byte) (apiv1.LiveFolder, error) {
	var v apiv1.LiveFolder
	return v, c.liveCall(ctx, "/api/v1/live/watch", apiv1.LiveRequest{Dir: dir, Passphrase: string(passphrase)}, &v)
}

// Sync starts keeping dir (absolute) equal to link's latest version.
func (c *Client) Sync(ctx context.Context, link, dir string, passphrase []byte, force bool) (apiv1.LiveFolder, error) {
	var v apiv1.LiveFolder
	return v, c.liveCall(ctx, "/api/v1/live/sync", apiv1.LiveRequest{Link: link, Dir: dir, Passphrase: string(passphrase), Force: force}, &v)
}

// Resolve finds link's latest version.
func (c *Client) Resolve(ctx context.Context, link string, passphrase []byte) (apiv1.LiveVersion, error) {
	var v apiv1.LiveVersion
	return v, c.liveCall(ctx, "/api/v1/live/resolve", apiv1.LiveRequest{Link: link, Passphrase: string(passphrase)}, &v)
}

// Unlive stops the watch or sync (kind) whose ID or folder is idOrDir.
func (c *Client) Unlive(ctx context.Context, kind, idOrDir string) (apiv1.LiveFolder, error) {
	var v apiv1.LiveFolder
	ctx, cancel := ask(ctx)
	defer cancel()
	return v, refusal(c.callJSON(ctx, http.MethodDelete, "/api/v1/live/"+kind+"?id="+url.QueryEscape(idOrDir), &v))
}
