// The Live folders tab: folders this node publishes under a live link
// (watch) and folders it keeps equal to one (sync), with their last
// version and state. It talks only to /api/v1/live/…; the helpers come
// from app.js (setupLive).

let h = null; // {$, el, api, showError, copyText}
let timer = null;

// send posts a JSON body and returns the JSON answer, or throws with the
// node's own words.
async function send(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method, body: body ? JSON.stringify(body) : undefined, cache: 'no-store',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
    });
  } catch {
    throw new Error('cannot reach the node: is blockmix still running?');
  }
  const text = await res.text();
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) throw new Error((v && v.error) || text.trim() || `the node answered ${res.status}`);
  return v;
}

const STATES = {
  ok: 'up to date',
  working: 'working',
  waiting: 'waiting',
  conflict: 'conflict: local changes kept',
  error: 'error',
};

function when(t) {
  if (!t || t.startsWith('0001-')) return '–';
  return new Date(t).toLocaleString();
}

function row(f) {
  const { el } = h;
  const stop = el('button', { type: 'button', class: 'live-stop' }, f.kind === 'watch' ? 'Stop publishing' : 'Stop syncing');
  stop.addEventListener('click', async () => {
    stop.disabled = true;
    try {
      await send('DELETE', `/api/v1/live/${f.kind}?id=${encodeURIComponent(f.id)}`);
      loadLive();
    } catch (e) {
      h.showError(h.$('live-error'), e);
      stop.disabled = false;
    }
  });
  const link = el('code', { class: 'live-link' }, f.sealed || f.link);
  const copy = el('button', { type: 'button' }, 'Copy link');
  copy.addEventListener('click', () => h.copyText(f.sealed || f.link, copy));
  const state = el('td', { class: `live-state state-${f.state}`, 'data-label': 'State' }, STATES[f.state] || f.state);
  if (f.message) state.append(el('br'), el('span', { class: 'hint' }, f.message));
  if (f.conflicts && f.conflicts.length) {
    state.append(el('br'), el('span', { class: 'hint' }, `kept: ${f.conflicts.slice(-5).join(', ')}`));
  }
  return el('tr', { 'data-id': f.id },
    el('td', { 'data-label': 'Kind' }, f.kind === 'watch' ? 'published' : 'synced'),
    el('td', { 'data-label': 'Folder' }, f.dir),
    el('td', { class: 'num', 'data-label': 'Version' }, f.seq ? String(f.seq) : '–'),
    el('td', { 'data-label': 'When' }, when(f.version)),
    el('td', { class: 'num', 'data-label': 'Files' }, f.changed ? `${f.files} (${f.changed} new)` : String(f.files)),
    state,
    el('td', { 'data-label': 'Link' }, link, ' ', copy),
    el('td', {}, stop));
}

// loadLive shows the live folders, and again every 3 s while the tab is
// shown.
export async function loadLive() {
  clearTimeout(timer);
  const box = h.$('live-error');
  try {
    const v = await h.api('GET', '/api/v1/live');
    const body = h.$('live-table').tBodies[0];
    body.replaceChildren(...v.folders.map(row));
    h.$('live-empty').hidden = v.folders.length > 0;
    h.$('live-table').hidden = v.folders.length === 0;
    box.hidden = true;
  } catch (e) {
    h.showError(box, e);
  }
  if (!h.$('panel-live').hidden) timer = setTimeout(loadLive, 3000);
}

// offerLink fills the sync form with a live link opened as /l/…: nothing
// is synced until the user picks a folder and presses Sync (any web site
// can send a browser to such a link).
export function offerLink(url) {
  h.$('sync-link').value = url;
  h.$('sync-status').textContent = 'A live folder link: choose a folder on this computer and press Sync to keep it equal to it.';
  h.$('sync-dir').focus();
}

export function setupLive(helpers) {
  h = helpers;
  const { $ } = h;
  // Each form posts its fields and says what the node answered.
  const form = (name, path, fields, said) => {
    $(`${name}-form`).addEventListener('submit', async (e) => {
      e.preventDefault();
      const status = $(`${name}-status`);
      $(`${name}-error`).hidden = true;
      status.textContent = 'Starting…';
      try {
        const f = await send('POST', path, fields());
        status.textContent = said(f);
        $(`${name}-passphrase`).value = '';
        loadLive();
      } catch (err) {
        status.textContent = '';
        h.showError($(`${name}-error`), err);
      }
    });
  };
  form('watch', '/api/v1/live/watch', () => ({ dir: $('watch-dir').value.trim(), passphrase: $('watch-passphrase').value }),
    (f) => `Publishing ${f.dir} under ${f.sealed || f.link}`);
  form('sync', '/api/v1/live/sync',
    () => ({ link: $('sync-link').value.trim(), dir: $('sync-dir').value.trim(), passphrase: $('sync-passphrase').value, force: $('sync-force').checked }),
    (f) => `Syncing ${f.dir}`);
}
