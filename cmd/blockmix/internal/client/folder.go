package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/folder"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// PutFolder sends a manifest of files put already; the daemon makes the
// folder recipe (POST /api/v1/folder).
func (c *Client) PutFolder(ctx context.Context, m apiv1.FolderManifest) (apiv1.FolderInfo, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	resp, err := c.call(ctx, http.MethodPost, "/api/v1/folder", bytes.NewReader(b))
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	defer resp.Body.Close()
	var info apiv1.FolderInfo
	return info, json.NewDecoder(resp.Body).Decode(&info)
}

// ListFolder returns the entries of the folder rc (GET /api/v1/folder),
// decoded again from their recipes.
func (c *Client) ListFolder(ctx context.Context, rc recipe.Recipe) ([]recipe.Entry, error) {
	l, err := c.Folder(ctx, rc, "", false)
	if err != nil {
		return nil, err
	}
	return folder.Entries(l)
}

// Folder is GET /api/v1/folder: the entries of the folder at path p
// below rc ("" for rc itself), with deep those of the whole tree.
func (c *Client) Folder(ctx context.Context, rc recipe.Recipe, p string, deep bool) (apiv1.FolderList, error) {
	q := url.Values{"recipe": {rc.String()}}
	if p != "" {
		q.Set("path", p)
	}
	if deep {
		q.Set("deep", "1")
	}
	var l apiv1.FolderList
	err := c.getJSON(ctx, "/api/v1/folder?"+q.Encode(), &l)
	return l, badFolder(err)
}

// badFolder keeps the daemon's "bad folder listing" an error that wraps
// recipe.ErrBadFolder, as it is offline (the command line exits 2).
func badFolder(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, recipe.ErrBadFolder.Error()); ok && !errors.Is(err, recipe.ErrBadFolder) {
		return fmt.Errorf("daemon: %w%s", recipe.ErrBadFolder, rest)
	}
	return err
}

// FolderTarget is a folder.Target through the daemon: each file goes
// through POST /api/v1/put, the manifest through POST /api/v1/folder.
// It asks once which files the daemon holds.
func (c *Client) FolderTarget(ctx context.Context) (folder.Target, error) {
	fs, err := c.Files(ctx)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for _, f := range fs {
		keys[f.Key] = true
	}
	return folder.Funcs{
		HasFunc:   func(_ context.Context, rc recipe.Recipe) (bool, error) { return keys[rc.Key()], nil },
		Put:       c.Put,
		BuildFunc: c.PutFolder,
	}, nil
}

// FolderSource is a folder.Source through the daemon.
func (c *Client) FolderSource() folder.Source {
	return folder.SourceFuncs{ListFunc: c.ListFolder, FetchFunc: func(ctx context.Context, rc recipe.Recipe, w io.Writer) error {
		return c.Get(ctx, rc.String(), w)
	}}
}
