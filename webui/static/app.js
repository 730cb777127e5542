// blockmix's local web page: Get, Share, My files and Node. Plain
// JavaScript without libraries; it talks only to this node's JSON API
// under /api/v1/ and never to another site.

import { setupLive, loadLive, offerLink } from './live.js';

const $ = (id) => document.getElementById(id);

// el makes an element: el('a', {href: '/', class: 'x'}, 'text', child…).
// Attributes whose value is null, undefined or false are left out; true
// sets an empty attribute.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svgEl(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// ---------------------------------------------------------------- words

// human spells a byte count with a binary unit, as the command line does.
export function human(n) {
  n = Number(n) || 0;
  if (n < 1024) return `${Math.round(n)} B`;
  const units = 'KMGTPE';
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(1)} ${units[i]}iB`;
}

export function rate(n) { return `${human(n)}/s`; }

export function plural(n, thing) { return n === 1 ? `1 ${thing}` : `${n} ${thing}s`; }

export function copies(n) { return n === 1 ? '1 copy' : `${n} copies`; }

// duration spells a number of seconds: "4 s", "2 min 5 s", "1 h 3 min".
export function duration(s) {
  s = Math.max(0, Math.round(Number(s) || 0));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

// when spells a time as a date and a time of day, each kept on one line.
function when(t) {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  return el('time', { datetime: d.toISOString() },
    el('span', { class: 'nowrap' }, d.toLocaleDateString(undefined, { dateStyle: 'medium' })), ' ',
    el('span', { class: 'nowrap' }, d.toLocaleTimeString(undefined, { timeStyle: 'short' })));
}

// kind tells how the page can show a file: image, video, audio, pdf, text
// or null (save only). It follows what the node serves inline (images but
// SVG, audio, video, PDF, plain text). A file without a type is served as
// bytes to save; an image or a player still reads it, so its name's
// extension may make it one.
const EXT_KINDS = {
  png: 'image', jpg: 'image', jpeg: 'image', gif: 'image', webp: 'image', avif: 'image', bmp: 'image',
  mp4: 'video', webm: 'video', m4v: 'video', mov: 'video', ogv: 'video',
  mp3: 'audio', m4a: 'audio', ogg: 'audio', oga: 'audio', opus: 'audio', wav: 'audio', flac: 'audio', aac: 'audio',
};
export function kind(type, name) {
  const t = String(type || '').split(';')[0].trim().toLowerCase();
  if (t) {
    const top = t.split('/')[0];
    if (t === 'image/svg+xml') return null;
    if (top === 'image' || top === 'video' || top === 'audio') return top;
    if (t === 'application/pdf') return 'pdf';
    if (t === 'text/plain') return 'text';
    if (t !== 'application/octet-stream') return null;
  }
  const m = /\.([a-z0-9]+)$/i.exec(String(name || ''));
  return (m && EXT_KINDS[m[1].toLowerCase()]) || null;
}

const getURL = (recipe) => `/api/v1/get?recipe=${encodeURIComponent(recipe)}`;
const saveURL = (recipe) => `${getURL(recipe)}&download=1`;

// ---------------------------------------------------------------- API

class APIError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

// api calls one JSON endpoint and returns its answer (null for 204). An
// error answer becomes an APIError carrying the node's own words; no
// answer within timeout ms becomes an error too.
async function api(method, path, { timeout = 20000 } = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  let res;
  try {
    res = await fetch(path, { method, signal: ctl.signal, headers: { Accept: 'application/json' }, cache: 'no-store' });
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (!res.ok) {
      const words = (body && typeof body.error === 'string' && body.error) || text.trim() || res.statusText;
      throw new APIError(words || `the node answered ${res.status}`, res.status);
    }
    return body;
  } catch (e) {
    if (e instanceof APIError) throw e;
    if (e.name === 'AbortError') throw new Error(`the node did not answer within ${timeout / 1000} s`);
    throw new Error('cannot reach the node: is blockmix still running?');
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- error boxes

function showError(box, err) {
  const msg = err instanceof Error ? err.message : String(err);
  box.textContent = msg || 'something went wrong, and the node did not say what';
  box.hidden = false;
}

function clearError(box) {
  box.hidden = true;
  box.textContent = '';
}

// ---------------------------------------------------------------- copy

// copyText puts text on the clipboard, with the old execCommand way when
// the clipboard API is missing (a page not on localhost is not a secure
// context); the button says how it went.
async function copyText(text, button, field) {
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      ok = true;
    }
  } catch { /* fall back */ }
  if (!ok) {
    const ta = el('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.remove();
  }
  if (!ok && field) {
    field.focus();
    field.select();
  }
  if (button) {
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = ok ? 'Copied' : 'Press Ctrl+C';
    clearTimeout(button._timer);
    button._timer = setTimeout(() => { button.textContent = label; }, 1600);
  }
}

// copyButton makes a Copy button; name is its accessible name when the
// page has several (say what it copies: "Copy the recipe of a.png").
function copyButton(text, field, label = 'Copy', name = null) {
  const b = el('button', { type: 'button', class: 'copy', 'aria-label': name }, label);
  b.addEventListener('click', () => copyText(typeof text === 'function' ? text() : text, b, field));
  return b;
}

// ---------------------------------------------------------------- tabs

const TABS = ['get', 'share', 'files', 'node', 'live'];
let currentTab = 'get';

function selectTab(name, { focus = false, push = true } = {}) {
  if (!TABS.includes(name)) name = 'get';
  currentTab = name;
  for (const t of TABS) {
    const on = t === name;
    const tab = $(`tab-${t}`);
    tab.setAttribute('aria-selected', on ? 'true' : 'false');
    tab.tabIndex = on ? 0 : -1;
    $(`panel-${t}`).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (push) history.replaceState(null, '', `${location.pathname}${location.search}#${name}`);
  if (name === 'files') loadFiles();
  if (name === 'get') loadTransfers();
  if (name === 'share') loadShared();
  if (name === 'live') loadLive();
  scheduleNode();
}

function setupTabs() {
  for (const t of TABS) {
    const tab = $(`tab-${t}`);
    tab.addEventListener('click', () => selectTab(t));
    tab.addEventListener('keydown', (e) => {
      const i = TABS.indexOf(t);
      let j = null;
      if (e.key === 'ArrowRight') j = (i + 1) % TABS.length;
      else if (e.key === 'ArrowLeft') j = (i + TABS.length - 1) % TABS.length;
      else if (e.key === 'Home') j = 0;
      else if (e.key === 'End') j = TABS.length - 1;
      if (j === null) return;
      e.preventDefault();
      selectTab(TABS[j], { focus: true });
    });
  }
  window.addEventListener('hashchange', () => {
    const name = location.hash.slice(1);
    if (TABS.includes(name) && name !== currentTab) selectTab(name, { push: false });
  });
}

// ---------------------------------------------------------------- Get

const input = $('recipe-input');
const info = $('recipe-info');
const getError = $('get-error');
const getButton = $('get-button');
const playButton = $('play-button');
const transferBox = $('get-transfer');
const progress = $('get-progress');
const getStatus = $('get-status');
const saveLink = $('save-link');
const openButton = $('open-button');
const cancelGet = $('cancel-get');
const player = $('player');

// MAX_AT_ONCE bounds the recipes one paste may start.
const MAX_AT_ONCE = 20;

let inspectSeq = 0; // the newest recipe lookup; older answers are dropped
let inspectTimer = 0;
let current = null; // the transfer shown: {id, recipe, name, type, kind}
let folderText = ''; // the folder recipe whose tree is shown ('' when none)
let pollTimer = 0;

// recipesIn finds the recipes in a paste: each word that is a blockmix:
// recipe or a /r/ link. With fewer than two, the whole text is the one
// recipe (the node finds it among other words).
export function recipesIn(text) {
  const words = String(text).split(/\s+/).filter((w) => /^[<(["']?(?:blockmix:|https?:\/\/[^\s/]+\/r\/)/i.test(w));
  return words.length > 1 ? words : [String(text).trim()];
}

// inspect asks the node what the recipe(s) in the box say and shows it.
// Its error goes to the error box unless quiet (when a get reports its
// own).
async function inspect({ quiet = false } = {}) {
  clearTimeout(inspectTimer);
  const text = input.value.trim();
  const seq = ++inspectSeq;
  if (!text) {
    info.replaceChildren();
    if (!quiet) clearError(getError);
    return;
  }
  const list = recipesIn(text);
  if (list.length > 1) {
    if (list.length > MAX_AT_ONCE) {
      info.replaceChildren();
      if (!quiet) showError(getError, `${list.length} recipes pasted: at most ${MAX_AT_ONCE} at once.`);
      return;
    }
    const answers = await Promise.allSettled(list.map((r) => api('GET', `/api/v1/recipe?recipe=${encodeURIComponent(r)}`)));
    if (seq !== inspectSeq) return;
    const ok = answers.filter((a) => a.status === 'fulfilled').map((a) => a.value);
    const bad = answers.length - ok.length;
    if (!quiet) clearError(getError);
    const line = el('p', { class: 'meta' }, el('strong', {}, `${list.length} recipes`), ': ',
      ok.map((ri) => `${ri.name || '(no name)'} (${human(ri.size)})`).join(', '),
      bad > 0 ? ` · ${bad} damaged or sealed: paste those one at a time` : '');
    info.replaceChildren(line);
    return;
  }
  try {
    const ri = await api('GET', `/api/v1/recipe?recipe=${encodeURIComponent(text)}`);
    if (seq !== inspectSeq) return;
    if (!quiet) clearError(getError);
    showRecipeInfo(ri);
  } catch (e) {
    if (seq !== inspectSeq) return;
    info.replaceChildren();
    if (String(e.message || '').startsWith('sealed:')) {
      askPassphrase(text);
      return;
    }
    if (!quiet) showError(getError, e);
  }
}

// askPassphrase shows a passphrase field for a sealed recipe; the node
// opens it (the passphrase goes to this machine's own node only) and the
// box then holds the plain recipe.
function askPassphrase(text) {
  clearError(getError);
  const field = el('input', { type: 'password', id: 'passphrase-input', autocomplete: 'off', 'aria-label': 'Passphrase' });
  const button = el('button', { type: 'button', id: 'unlock-button' }, 'Open');
  const unlock = async () => {
    const body = new URLSearchParams({ recipe: text, passphrase: field.value });
    try {
      const out = await postForm('/api/v1/unseal', body);
      input.value = out.recipe;
      showRecipeInfo(out);
      clearError(getError);
    } catch (err) {
      showError(getError, String(err.message).startsWith('wrong passphrase') ? 'Wrong passphrase: this is not the one the recipe was sealed with.' : err.message);
    }
  };
  button.addEventListener('click', unlock);
  field.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); unlock(); } });
  info.replaceChildren(el('p', { class: 'meta' }, 'This recipe is sealed with a passphrase: ', field, ' ', button));
  field.focus();
}

// postForm posts a form to the node and returns its JSON answer, or
// throws the node's own words.
async function postForm(path, body) {
  let res;
  try {
    res = await fetch(path, { method: 'POST', body, headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch {
    throw new Error('cannot reach the node: is blockmix still running?');
  }
  const out = await res.json().catch(() => null);
  if (!res.ok) throw new APIError((out && out.error) || res.statusText, res.status);
  return out;
}

function showRecipeInfo(ri) {
  folderText = '';
  if (ri.type === FOLDER_TYPE) {
    showFolder(ri, input.value.trim());
    return;
  }
  const parts = [el('strong', { class: 'name' }, ri.name || '(no name)'), human(ri.size)];
  if (ri.type) parts.push(ri.type);
  if (ri.blocks) parts.push(plural(ri.blocks, 'data block'));
  if (ri.local) parts.push('already on this node');
  if (ri.renamed) parts.push('name cleaned: the link\'s name held hidden or misleading characters');
  const line = el('p', { class: 'meta' });
  parts.forEach((p, i) => { if (i) line.append(' · '); line.append(p); });
  info.replaceChildren(line);
}

function inspectSoon(delay = 350) {
  clearTimeout(inspectTimer);
  inspectTimer = setTimeout(inspect, delay);
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = 0;
}

function resetTransfer() {
  stopPolling();
  current = null;
  transferBox.hidden = true;
  saveLink.hidden = true;
  openButton.hidden = true;
  playButton.hidden = true;
  cancelGet.hidden = true;
  progress.value = 0;
  getStatus.textContent = '';
  player.replaceChildren();
}

// startGet asks the node to fetch each file pasted, then follows the
// first; the list below follows them all.
async function startGet() {
  // A folder recipe shown as its tree: Get downloads the whole as a zip.
  const zipLink = document.getElementById('folder-zip');
  if (zipLink && folderText && folderText === input.value.trim()) {
    zipLink.click();
    return;
  }
  clearError(getError);
  const text = input.value.trim();
  if (!text) {
    showError(getError, 'Paste a recipe first: it starts with "blockmix:" or is a link with /r/ in it.');
    input.focus();
    return;
  }
  const list = recipesIn(text);
  if (list.length > MAX_AT_ONCE) {
    showError(getError, `${list.length} recipes pasted: at most ${MAX_AT_ONCE} at once.`);
    return;
  }
  resetTransfer();
  inspect({ quiet: true });
  getButton.disabled = true;
  getStatus.textContent = '';
  const started = [];
  const problems = [];
  for (const r of list) {
    try {
      started.push(await api('POST', `/api/v1/fetch?recipe=${encodeURIComponent(r)}`));
    } catch (e) {
      problems.push(list.length > 1 ? `${r.length > 48 ? `${r.slice(0, 48)}…` : r}: ${e.message}` : e.message);
    }
  }
  if (problems.length) showError(getError, problems.join('\n'));
  if (started.length) follow(started[0]);
  else getButton.disabled = false;
  loadTransfers();
}

// follow shows transfer t and polls it until it ends.
function follow(t) {
  stopPolling();
  player.replaceChildren();
  current = { id: t.id, recipe: t.recipe, name: t.name, type: t.type, kind: kind(t.type, t.name), failures: 0 };
  transferBox.hidden = false;
  transferBox.classList.remove('failed');
  saveLink.hidden = true;
  openButton.hidden = true;
  playButton.hidden = !(current.kind === 'video' || current.kind === 'audio');
  showTransfer(t);
}

function showTransfer(t) {
  if (!current || t.id !== current.id) return;
  const size = Number(t.size) || 0;
  const running = t.state === 'running';
  // Get stays off while its file comes; Cancel is there instead.
  getButton.disabled = running;
  cancelGet.hidden = !running;
  if (t.state === 'done') {
    progress.value = 1;
    const took = t.finished && t.started ? (Date.parse(t.finished) - Date.parse(t.started)) / 1000 : null;
    const parts = [`Done: ${t.name || 'the file'} (${human(size)}) is on this node`];
    if (took !== null && took >= 1) parts.push(`took ${duration(took)}`);
    if (t.peers > 0) parts.push(`from ${plural(t.peers, 'peer')}`);
    getStatus.textContent = parts.join(' · ');
    showDone(t);
    return;
  }
  progress.value = size > 0 ? Math.min(1, (Number(t.bytes_done) || 0) / size) : 0;
  getStatus.textContent = transferWords(t);
  transferBox.classList.toggle('failed', t.state === 'failed');
  if (t.state === 'failed' || t.state === 'cancelled') {
    playButton.hidden = true;
    if (t.state === 'failed') showError(getError, `Could not get ${t.name || 'the file'}: ${t.error || 'the transfer failed'}`);
    return;
  }
  pollTimer = setTimeout(poll, 300);
}

// transferWords: "blocks 3 of 320 · 12.3 MiB of 40.0 MiB · 25.0 MiB/s · 3 peers · 4 s left".
export function transferWords(t) {
  const parts = [
    `blocks ${t.blocks_done || 0} of ${t.blocks || 0}`,
    `${human(t.bytes_done)} of ${human(t.size)}`,
  ];
  if (t.state === 'failed') return `Stopped at ${parts.join(' · ')}`;
  if (t.state === 'cancelled') return `Cancelled at ${parts.join(' · ')}`;
  if (t.speed > 0) parts.push(rate(t.speed));
  if (t.peers > 0) parts.push(plural(t.peers, 'peer'));
  if (t.eta_seconds >= 0 && t.speed > 0) parts.push(`${duration(t.eta_seconds)} left`);
  return parts.join(' · ');
}

async function poll() {
  const c = current;
  if (!c) return;
  try {
    const t = await api('GET', `/api/v1/transfers/${encodeURIComponent(c.id)}`, { timeout: 10000 });
    if (current !== c) return;
    c.failures = 0;
    showTransfer(t);
  } catch (e) {
    if (current !== c) return;
    c.failures++;
    if ((e instanceof APIError && e.status === 404) || c.failures >= 10) {
      showError(getError, `Lost track of the transfer: ${e.message}`);
      getButton.disabled = false;
      cancelGet.hidden = true;
      return;
    }
    pollTimer = setTimeout(poll, 1000);
  }
}

// cancelTransfer asks the node to stop a get; the next poll shows it
// cancelled.
async function cancelTransfer(id, button) {
  if (button) button.disabled = true;
  try {
    await api('DELETE', `/api/v1/transfers/${encodeURIComponent(id)}`);
  } catch (e) {
    showError(getError, `Could not cancel: ${e.message}`);
  }
  loadTransfers();
}

function showDone(t) {
  saveLink.href = saveURL(t.recipe);
  saveLink.setAttribute('download', t.name || '');
  saveLink.hidden = false;
  const k = kind(t.type, t.name);
  openButton.hidden = !k;
  openButton.textContent = k === 'pdf' || k === 'text' ? 'Open in a new tab' : 'Open';
  playButton.hidden = true;
}

// show puts the file in the page: an image, a player, or a link to a new
// tab (PDF and text, which the browser shows better by itself).
function show(k, recipe, name, autoplay) {
  const src = getURL(recipe);
  const shown = player.firstElementChild;
  if (shown && shown.getAttribute('src') === src) return; // already playing or shown
  let media = null;
  if (k === 'image') {
    media = el('img', { src, alt: name || 'the file' });
  } else if (k === 'video' || k === 'audio') {
    media = el(k, { src, controls: true, preload: 'auto', autoplay: autoplay || null, playsinline: k === 'video' || null });
    media.setAttribute('aria-label', name || k);
    media.addEventListener('error', () => {
      showError(getError, `The browser cannot play ${name || 'this file'}: save it and open it with another program.`);
    });
  } else if (k === 'pdf' || k === 'text') {
    const w = window.open(src, '_blank');
    if (w) w.opener = null;
    media = el('p', {}, w ? 'Opened in a new tab. ' : 'Your browser blocked the new tab. ',
      el('a', { href: src, target: '_blank', rel: 'noopener noreferrer' }, `Open ${name || 'the file'} in a new tab`));
  }
  if (media) player.replaceChildren(media);
}

function setupGet() {
  // A paste is looked up at once; typing waits for a pause. Another
  // recipe in the box may be got while the last one still comes.
  input.addEventListener('input', (e) => {
    getButton.disabled = false;
    inspectSoon(e.inputType === 'insertFromPaste' ? 0 : 350);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!getButton.disabled) startGet();
    }
  });
  $('get-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!getButton.disabled) startGet();
  });
  playButton.addEventListener('click', () => {
    if (current) show(current.kind, current.recipe, current.name, true);
  });
  openButton.addEventListener('click', () => {
    if (current) show(kind(current.type, current.name), current.recipe, current.name, false);
  });
  cancelGet.addEventListener('click', () => { if (current) cancelTransfer(current.id, null); });
}

let transfersTimer = 0;
let transfersSeq = 0;

// loadTransfers lists the gets the node keeps under the Get tab, one row
// per file, and polls while one runs and the tab shows. After a reload,
// a get still running is followed again.
async function loadTransfers() {
  clearTimeout(transfersTimer);
  const seq = ++transfersSeq;
  let ts;
  try {
    ts = await api('GET', '/api/v1/transfers');
  } catch {
    return; // the main error box speaks for the Get tab
  }
  if (seq !== transfersSeq) return;
  const gets = (Array.isArray(ts) ? ts : []).filter((t) => (t.kind || 'get') === 'get');
  const recent = gets.slice(0, 20);
  $('recent').hidden = recent.length === 0;
  $('transfers-list').replaceChildren(...recent.map(transferRow));
  const running = gets.filter((t) => t.state === 'running');
  if (!current && running.length) {
    input.value = input.value || running[0].recipe;
    follow(running[0]);
  }
  if (running.length && currentTab === 'get') transfersTimer = setTimeout(loadTransfers, 700);
}

function transferRow(t) {
  const li = el('li', { class: `transfer-item state-${t.state}`, 'data-key': t.key },
    el('span', { class: 'name' }, t.name || '(no name)'), ' · ', human(t.size), ' · ');
  const label = t.name || 'the file';
  if (t.state === 'done') {
    li.append('done ', el('a', { href: saveURL(t.recipe), download: t.name || '', 'aria-label': `Save ${label}` }, 'Save'));
  } else if (t.state === 'running') {
    const pct = t.size > 0 ? Math.floor(100 * t.bytes_done / t.size) : 0;
    const show = el('button', { type: 'button', class: 'link' }, `${pct}% — show`);
    show.addEventListener('click', () => { input.value = t.recipe; inspect(); follow(t); });
    const cancel = el('button', { type: 'button', class: 'small cancel', 'aria-label': `Cancel getting ${label}` }, 'Cancel');
    cancel.addEventListener('click', () => cancelTransfer(t.id, cancel));
    li.append('running ', show, ' ', cancel,
      el('progress', { max: 1, value: t.size > 0 ? Math.min(1, t.bytes_done / t.size) : 0, 'aria-label': `${label}: ${pct}%` }));
  } else if (t.state === 'cancelled') {
    li.append('cancelled');
  } else {
    li.append(`failed: ${t.error || 'unknown error'}`);
  }
  return li;
}

// ---------------------------------------------------------------- Share

const dropZone = $('drop-zone');
const fileInput = $('file-input');
const shareError = $('share-error');
const shareResults = $('share-results');
const sharedList = $('shared-list');
const sharePass = $('share-passphrase');
const queue = [];
let uploading = false;
let resultSeq = 0;

function addFiles(files) {
  clearError(shareError);
  const passphrase = sharePass.value;
  for (const f of files) {
    const item = shareItem(f, passphrase);
    shareResults.prepend(item.li);
    queue.push(item);
  }
  pump();
}

// pump sends the queued files one after the other: each put is heavy on
// the disk, and the node bounds how many run at once.
async function pump() {
  if (uploading) return;
  uploading = true;
  try {
    while (queue.length) await upload(queue.shift());
  } finally {
    uploading = false;
  }
}

function shareItem(f, passphrase) {
  const id = `share-${++resultSeq}`;
  const bar = el('progress', { max: 1, value: 0, 'aria-labelledby': `${id}-status` });
  const status = el('p', { class: 'status', id: `${id}-status` }, 'waiting…');
  const cancel = el('button', { type: 'button', class: 'small', 'aria-label': `Cancel sharing ${f.name}` }, 'Cancel');
  const li = el('li', { class: 'share-result', id },
    el('h3', {}, el('span', { class: 'name' }, f.name), el('span', { class: 'size' }, ` · ${human(f.size)}`)),
    bar, el('div', { class: 'row' }, status, cancel));
  const item = { f, id, li, bar, status, cancel, xhr: null, cancelled: false, passphrase };
  cancel.addEventListener('click', () => {
    item.cancelled = true;
    if (item.xhr) item.xhr.abort();
    else {
      const i = queue.indexOf(item);
      if (i >= 0) queue.splice(i, 1);
      failed(item, 'cancelled');
    }
  });
  return item;
}

// uploadType is the type a file is shared with: the browser's, with
// charset=utf-8 added to plain text (the browser names none, and the
// page's own text is UTF-8).
export function uploadType(type) {
  const t = String(type || '');
  return /^text\/plain\s*$/i.test(t) ? 'text/plain; charset=utf-8' : t;
}

function upload(item) {
  return new Promise((resolve) => {
    if (item.cancelled) { resolve(); return; }
    const { f } = item;
    let q = `name=${encodeURIComponent(f.name)}&size=${f.size}`;
    if (f.type) q += `&type=${encodeURIComponent(uploadType(f.type))}`;
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open('POST', `/api/v1/put?${q}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    item.status.textContent = 'mixing and sending: 0%';
    xhr.upload.addEventListener('progress', (e) => {
      const total = e.lengthComputable ? e.total : f.size;
      if (total > 0) {
        item.bar.value = Math.min(1, e.loaded / total);
        item.status.textContent = `mixing and sending: ${Math.floor(100 * e.loaded / total)}%`;
      }
    });
    xhr.upload.addEventListener('load', () => {
      item.bar.removeAttribute('value'); // the browser draws a busy bar
      item.status.textContent = 'placing on other nodes…';
    });
    xhr.addEventListener('load', async () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && body && body.recipe) {
        await shared(item, body);
      } else {
        const words = (body && body.error) || xhr.responseText.trim() || `the node answered ${xhr.status} ${xhr.statusText}`;
        failed(item, words);
      }
      resolve();
    });
    xhr.addEventListener('error', () => {
      failed(item, 'the connection to the node broke while sending the file: the node stopped, or refused the file half-way (too large?)');
      resolve();
    });
    xhr.addEventListener('abort', () => { failed(item, 'cancelled: the file is not kept'); resolve(); });
    xhr.send(f);
  });
}

// placementWords says where the file's blocks went.
export function placementWords(p) {
  const short = p.blocks_short;
  if (short === undefined || short === null) {
    return 'kept on this node only: it was not placed on other nodes';
  }
  if (short > 0) {
    return p.placement || `${plural(short, 'block')} of ${p.blocks} have fewer than ${copies(p.replicas)} on other nodes`;
  }
  return `${copies(p.replicas || 0)} on ${plural(p.nodes || 0, 'node')}`;
}

// blocksWords says what the file is made of, counting data blocks as a
// get does, and what was stored for it.
export function blocksWords(p) {
  const all = Number(p.blocks) || 0;
  const data = Number(p.data_blocks) || 0;
  const head = data > 0 && data !== all
    ? `The file is ${plural(data, 'data block')}; with the blocks mixed into them and its descriptor it needs ${plural(all, 'block')}.`
    : `The file needs ${plural(all, 'block')}.`;
  if (p.shared_before) {
    return `${head} You shared this file before (${new Date(p.shared_before).toLocaleString()}): this is its recipe from then, and nothing new was stored.`;
  }
  const nw = Number(p.new_blocks) || 0;
  const stored = nw === all ? `All ${all} were stored for it (${human(p.new_bytes)}).`
    : `${plural(nw, 'new block')} (${human(p.new_bytes)}) ${nw === 1 ? 'was' : 'were'} stored for it; the other ${all - nw} ${all - nw === 1 ? 'was' : 'were'} already here.`;
  return `${head} ${all > 0 ? stored : ''}`.trim();
}

// shared turns a finished upload into its result card (sealed with the
// passphrase given, if any). The same file shared again replaces its
// earlier card.
async function shared(item, p) {
  let sealed = null;
  if (item.passphrase) {
    item.status.textContent = 'sealing the recipe with the passphrase…';
    try {
      sealed = await postForm('/api/v1/seal', new URLSearchParams({ recipe: p.recipe, passphrase: item.passphrase }));
    } catch (e) {
      failed(item, `shared, but not sealed: ${e.message}. The plain recipe is in My files.`);
      return;
    }
  }
  item.li.remove();
  const key = keyOf(p.recipe);
  for (const old of document.querySelectorAll('#share-results .share-result.done, #shared-list .share-result')) {
    if (old.dataset.key === key) old.remove();
  }
  shareResults.prepend(resultCard(p, sealed, `${item.id}-done`));
  if (currentTab === 'files') loadFiles();
}

// keyOf is a recipe's file key: its payload, lower-cased.
function keyOf(recipe) {
  const m = /^blockmix:([a-z2-7]+)/i.exec(String(recipe));
  return m ? m[1].toLowerCase() : '';
}

// resultCard shows a shared file: its recipe (or the sealed one) with
// Copy, its link with Copy and a QR code, where its blocks went, and what
// it is made of.
function resultCard(p, sealed, id) {
  const fieldID = `${id}-recipe`;
  const recipe = sealed ? sealed.recipe : p.recipe;
  const link = sealed ? sealed.url : p.url;
  const name = p.name || 'the file';
  const field = el('input', { type: 'text', class: 'recipe-text', id: fieldID, readonly: true, spellcheck: 'false' });
  field.value = recipe;
  field.addEventListener('focus', () => field.select());
  const li = el('li', { class: 'share-result done', id, 'data-key': keyOf(p.recipe) },
    el('h3', {}, el('span', { class: 'name' }, p.name || '(no name)'), el('span', { class: 'size' }, ` · ${human(p.size)}`)),
    el('label', { for: fieldID }, sealed ? 'Sealed recipe: whoever has it and the passphrase can get the file' : 'Recipe: whoever has it can get the file'),
    el('div', { class: 'row copyrow' }, field, copyButton(() => field.value, field, 'Copy', `Copy the recipe of ${name}`)));
  if (link) {
    const qrBox = el('div', { class: 'qr-box' });
    qrBox.hidden = true;
    const qrButton = el('button', { type: 'button', class: 'small qr-button', 'aria-expanded': 'false', 'aria-label': `QR code of the link to ${name}` }, 'QR code');
    qrButton.addEventListener('click', () => {
      const open = qrBox.hidden;
      qrBox.hidden = !open;
      qrButton.setAttribute('aria-expanded', String(open));
      if (open && !qrBox.firstChild) {
        qrBox.append(el('img', { class: 'qr', src: `/api/v1/qr?text=${encodeURIComponent(link)}`, alt: `QR code of the link to ${name}`, width: 220, height: 220 }),
          el('p', { class: 'hint' }, 'A phone on the same network opens it with its camera (it reaches this node only if the node listens beyond this computer).'));
      }
    });
    li.append(el('p', { class: 'link-line' }, 'Link: ', el('a', { class: 'recipe-link', href: link, target: '_blank', rel: 'noopener noreferrer' }, link), ' ',
      copyButton(link, null, 'Copy link', `Copy the link to ${name}`), ' ', qrButton), qrBox);
  }
  if (p.blocks_short !== undefined || p.replicas) {
    li.append(el('p', { class: `placement${p.blocks_short > 0 ? ' warn' : ''}` }, placementWords(p)));
  }
  if (p.new_blocks !== undefined) li.append(el('p', { class: 'hint blocks-words' }, blocksWords(p)));
  return li;
}

function failed(item, words) {
  item.bar.hidden = true;
  item.cancel.remove();
  item.li.classList.add('failed');
  const cancelled = words.startsWith('cancelled');
  item.status.textContent = cancelled ? words : 'failed';
  if (!cancelled) {
    item.li.append(el('p', { class: 'result-error' }, words));
    showError(shareError, `${item.f.name}: ${words}`);
  }
}

// loadShared lists the files shared before, as the node keeps them (the
// last ones, one per file): they survive a reload.
async function loadShared() {
  let ts;
  try {
    ts = await api('GET', '/api/v1/transfers');
  } catch (e) {
    showError(shareError, e);
    return;
  }
  const shownHere = new Set(Array.from(shareResults.querySelectorAll('.share-result.done')).map((li) => li.dataset.key));
  const puts = (Array.isArray(ts) ? ts : []).filter((t) => t.kind === 'put' && t.put && !shownHere.has(t.key));
  $('shared-before').hidden = puts.length === 0;
  sharedList.replaceChildren(...puts.map((t) => resultCard(t.put, null, `shared-${t.id}`)));
}

// ---------------------------------------------------------------- Folders

// FOLDER_TYPE is the media type of a folder recipe's listing.
const FOLDER_TYPE = 'application/x-blockmix-folder';
const FOLDER_PUTS = 4;

// shareFolder shares a tree as one folder recipe: each file with the put
// API (one request each, the node's usual limits), then the manifest of
// paths, modes, times, sizes and recipes, which the node makes into
// folder listings. entries are {path, file} (path below the folder,
// slash separated) and {path, dir: true} for folders (empty ones too).
export async function shareFolder(name, entries) {
  clearError(shareError);
  const id = `share-${++resultSeq}`;
  const files = entries.filter((e) => !e.dir);
  const total = files.reduce((n, e) => n + e.file.size, 0);
  const bar = el('progress', { max: 1, value: 0, 'aria-labelledby': `${id}-status` });
  const status = el('p', { class: 'status', id: `${id}-status` }, `sharing ${plural(files.length, 'file')}…`);
  const li = el('li', { class: 'share-result folder', id },
    el('h3', {}, el('span', { class: 'name' }, `${name}/`), el('span', { class: 'size' }, ` · ${plural(files.length, 'file')} · ${human(total)}`)),
    bar, el('div', { class: 'row' }, status));
  shareResults.prepend(li);
  const items = entries.filter((e) => e.dir).map((e) => ({ path: e.path, dir: true, mode: 0o755 }));
  let done = 0;
  let count = 0;
  let next = 0;
  // FOLDER_PUTS files go at once (the node runs 8 transfers at most):
  // their syncs and placements overlap.
  const worker = async () => {
    while (next < files.length) {
      const e = files[next++];
      let q = `name=${encodeURIComponent(e.file.name)}&size=${e.file.size}`;
      if (e.file.type) q += `&type=${encodeURIComponent(uploadType(e.file.type))}`;
      let p;
      try {
        p = await sendFile(`/api/v1/put?${q}`, e.file);
      } catch (err) {
        next = files.length; // the other workers stop too
        throw new Error(`${e.path}: ${err.message}`);
      }
      done += e.file.size;
      count++;
      bar.value = total > 0 ? done / total : count / files.length;
      status.textContent = `${count} of ${plural(files.length, 'file')} sent: ${e.path}`;
      items.push({ path: e.path, mode: 0o644, mtime: new Date(e.file.lastModified || 0).toISOString(), size: e.file.size, recipe: p.recipe });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(FOLDER_PUTS, files.length) }, worker));
    status.textContent = 'making the folder recipe…';
    const info = await sendJSON('/api/v1/folder', { name, items });
    li.remove();
    shareResults.prepend(folderCard(info, `${id}-done`));
    return info;
  } catch (err) {
    bar.hidden = true;
    li.classList.add('failed');
    status.textContent = 'failed';
    li.append(el('p', { class: 'result-error' }, err.message));
    showError(shareError, `${name}: ${err.message}`);
    throw err;
  }
}

// sendFile posts one file's bytes and returns the node's JSON answer.
async function sendFile(path, body) {
  let res;
  try {
    res = await fetch(path, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream', Accept: 'application/json' } });
  } catch {
    throw new Error('the connection to the node broke while sending a file');
  }
  return answerOf(res);
}

async function sendJSON(path, v) {
  let res;
  try {
    res = await fetch(path, { method: 'POST', body: JSON.stringify(v), headers: { 'Content-Type': 'application/json', Accept: 'application/json' } });
  } catch {
    throw new Error('the connection to the node broke');
  }
  return answerOf(res);
}

async function answerOf(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (!res.ok || !body) throw new Error((body && body.error) || `the node answered ${res.status} ${res.statusText}`);
  return body;
}

// folderCard shows a shared folder: its one recipe with Copy and its link.
function folderCard(p, id) {
  const fieldID = `${id}-recipe`;
  const field = el('input', { type: 'text', class: 'recipe-text', id: fieldID, readonly: true, spellcheck: 'false' });
  field.value = p.recipe;
  field.addEventListener('focus', () => field.select());
  const li = el('li', { class: 'share-result done folder', id, 'data-key': keyOf(p.recipe) },
    el('h3', {}, el('span', { class: 'name' }, `${p.name}/`), el('span', { class: 'size' }, ` · ${plural(p.files, 'file')} in ${plural(p.folders, 'folder')} · ${human(p.bytes)}`)),
    el('label', { for: fieldID }, 'Folder recipe: whoever has it can get the whole folder'),
    el('div', { class: 'row copyrow' }, field, copyButton(() => field.value, field, 'Copy', `Copy the recipe of ${p.name}`)));
  if (p.url) li.append(el('p', { class: 'link-line' }, 'Link: ', el('a', { class: 'recipe-link', href: p.url, target: '_blank', rel: 'noopener noreferrer' }, p.url)));
  const reused = Number(p.reused_files) || 0;
  li.append(el('p', { class: 'hint' }, `${human(p.new_bytes)} stored for it${reused ? `; ${plural(reused, 'file')} unchanged since an earlier share` : ''}.`));
  if (p.placement) li.append(el('p', { class: 'placement warn' }, p.placement));
  return li;
}

// filesOfInput turns a folder chosen with webkitdirectory into entries:
// the first element of each relative path is the folder's name.
export function filesOfInput(list) {
  let name = 'folder';
  const entries = [];
  for (const f of list) {
    const parts = String(f.webkitRelativePath || f.name).split('/');
    if (parts.length > 1) name = parts[0];
    entries.push({ path: parts.slice(parts.length > 1 ? 1 : 0).join('/'), file: f });
  }
  return { name, entries };
}

// entriesOfDrop walks a dropped folder (DataTransferItem entries):
// files and folders, empty ones too.
async function entriesOfDrop(root) {
  const entries = [];
  const walk = async (dir, prefix) => {
    const reader = dir.createReader();
    for (;;) {
      const batch = await new Promise((ok, bad) => reader.readEntries(ok, bad));
      if (!batch.length) break;
      for (const ent of batch) {
        const p = prefix + ent.name;
        if (ent.isDirectory) {
          entries.push({ path: p, dir: true });
          await walk(ent, `${p}/`);
        } else if (ent.isFile) {
          entries.push({ path: p, file: await new Promise((ok, bad) => ent.file(ok, bad)) });
        }
      }
    }
  };
  await walk(root, '');
  return entries;
}

// dropped shares what was dropped: folders each as one folder recipe,
// files one by one.
async function dropped(dt) {
  // The items are readable only now, before the first await.
  const dirs = [];
  const loose = [];
  for (const it of Array.from(dt.items || [])) {
    const en = it.webkitGetAsEntry ? it.webkitGetAsEntry() : null;
    if (en && en.isDirectory) dirs.push(en);
    else if (it.kind === 'file') loose.push(it.getAsFile());
  }
  if (!dirs.length) {
    if (dt.files.length) addFiles(Array.from(dt.files));
    return;
  }
  if (loose.length) addFiles(loose.filter(Boolean));
  for (const d of dirs) {
    try {
      await shareFolder(d.name, await entriesOfDrop(d));
    } catch { /* shown on its card */ }
  }
}

// showFolder shows a folder recipe's tree, read from its listings (no
// file is fetched), with Save per file and the whole as a zip.
async function showFolder(ri, text) {
  const seq = inspectSeq;
  let l;
  try {
    l = await api('GET', `/api/v1/folder?recipe=${encodeURIComponent(text)}&deep=1`);
  } catch (e) {
    if (seq === inspectSeq) showError(getError, e);
    return;
  }
  if (seq !== inspectSeq) return;
  folderText = text;
  const q = `recipe=${encodeURIComponent(text)}`;
  const files = l.entries.filter((e) => !e.dir);
  const bytes = files.reduce((n, e) => n + e.size, 0);
  const zip = el('a', { class: 'button primary', id: 'folder-zip', href: `/api/v1/folder/zip?${q}`, download: `${l.name || 'folder'}.zip` }, 'Download zip');
  const list = el('ul', { class: 'plain folder-tree', id: 'folder-tree' });
  for (const e of l.entries) {
    const depth = e.path.split('/').length - 1;
    const row = el('li', { class: e.dir ? 'dir' : 'file', style: `padding-left: ${depth * 1.2}em` },
      el('span', { class: 'name' }, e.dir ? `${e.name}/` : e.name));
    if (!e.dir) {
      row.append(' ', el('span', { class: 'size' }, human(e.size)), ' ',
        el('a', { class: 'button small save-file', href: `/api/v1/folder/file?${q}&path=${encodeURIComponent(e.path)}`, download: e.name, 'aria-label': `Save ${e.path}` }, 'Save'));
    }
    list.append(row);
  }
  info.replaceChildren(
    el('p', { class: 'meta' }, el('strong', { class: 'name' }, `${l.name || '(no name)'}/`), ` · folder · ${plural(files.length, 'file')} · ${human(bytes)}`),
    el('div', { class: 'row' }, zip), list);
}

function hasFiles(e) {
  return e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
}

function setupShare() {
  const folderInput = $('folder-input');
  folderInput.addEventListener('change', () => {
    if (folderInput.files && folderInput.files.length) {
      const { name, entries } = filesOfInput(Array.from(folderInput.files));
      shareFolder(name, entries).catch(() => { /* shown on its card */ });
    }
    folderInput.value = '';
  });
  fileInput.addEventListener('change', () => {
    if (fileInput.files && fileInput.files.length) addFiles(Array.from(fileInput.files));
    fileInput.value = '';
  });
  let depth = 0;
  dropZone.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    dropZone.classList.add('over');
  });
  dropZone.addEventListener('dragleave', () => {
    if (--depth <= 0) { depth = 0; dropZone.classList.remove('over'); }
  });
  dropZone.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  dropZone.addEventListener('drop', (e) => {
    e.preventDefault();
    e.stopPropagation();
    depth = 0;
    dropZone.classList.remove('over');
    dropped(e.dataTransfer);
  });
  // A file dropped elsewhere on the Share tab is shared too; on another
  // tab it is ignored rather than opened in place of this page.
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    if (currentTab === 'share') dropped(e.dataTransfer);
  });
}

// ---------------------------------------------------------------- My files

const filesError = $('files-error');
const filesSearch = $('files-search');
const filesSort = $('files-sort');
let filesSeq = 0;
let allFiles = [];

async function loadFiles() {
  const seq = ++filesSeq;
  let fs;
  try {
    fs = await api('GET', '/api/v1/files');
  } catch (e) {
    if (seq === filesSeq) showError(filesError, e);
    return;
  }
  if (seq !== filesSeq) return;
  clearError(filesError);
  allFiles = Array.isArray(fs) ? fs : [];
  renderFiles();
}

// sortFiles orders files by how: name, size, newest or oldest.
export function sortFiles(fs, how) {
  const by = {
    name: (a, b) => String(a.name || '').localeCompare(String(b.name || ''), undefined, { sensitivity: 'base', numeric: true }),
    size: (a, b) => (Number(b.size) || 0) - (Number(a.size) || 0),
    newest: (a, b) => Date.parse(b.added) - Date.parse(a.added),
    oldest: (a, b) => Date.parse(a.added) - Date.parse(b.added),
  }[how] || (() => 0);
  return [...fs].sort(by);
}

// renderFiles shows the files that match the search, in the order chosen.
function renderFiles() {
  const needle = filesSearch.value.trim().toLowerCase();
  const shown = sortFiles(allFiles.filter((f) => !needle || String(f.name || '').toLowerCase().includes(needle)), filesSort.value);
  $('files-empty').hidden = allFiles.length > 0;
  $('files-tools').hidden = allFiles.length === 0;
  $('files-none-match').hidden = allFiles.length === 0 || shown.length > 0;
  $('files-table').hidden = shown.length === 0;
  $('files-table').tBodies[0].replaceChildren(...shown.map(fileRow));
}

// healthShort is a health answer in a few words, for the table.
export function healthShort(h) {
  if (h.state === 'healthy') return `healthy: every block has ${h.min_copies}+ copies`;
  if (h.state === 'lost') return `lost: ${h.missing} of ${plural(h.blocks, 'block')} have no copy`;
  if (!(h.short > 0) && h.one_site > 0) return `at risk: every copy of ${h.one_site} of ${plural(h.blocks, 'block')} in one site`;
  if (!(h.short > 0) && h.no_partner > 0) return `at risk: ${h.no_partner} of ${plural(h.blocks, 'block')} with no copy on a partner group's donors`;
  const n = Math.max(h.short, 1);
  return `at risk: ${n} of ${plural(h.blocks, 'block')} below ${copies(h.replicas)}, fewest ${copies(h.min_copies)}`;
}

// holdersList names the nodes that hold the file's blocks.
function holdersList(h) {
  const hs = Array.isArray(h.holders) ? h.holders : [];
  if (!hs.length) return '';
  const short = (id) => (id.length > 16 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id);
  return el('span', { class: 'holders' }, ' Held by: ',
    ...hs.flatMap((x, i) => [i ? ', ' : '', x.self ? 'this node' : el('code', { title: x.peer }, short(x.peer)), ` (${x.blocks} of ${h.blocks})`]));
}

// checkFile asks the node how many copies a file's blocks have (or, with
// repair, gives them the missing ones first) and shows the answer in
// its row.
async function checkFile(f, row, { repair = false } = {}) {
  const { check, verdict, why, repairButton } = row;
  check.disabled = true;
  repairButton.disabled = true;
  verdict.className = 'verdict-text';
  verdict.textContent = repair ? 'pushing copies…' : 'counting copies…';
  why.hidden = true;
  try {
    const q = `recipe=${encodeURIComponent(f.recipe)}`;
    const h = repair ? await api('POST', `/api/v1/repair?${q}`, { timeout: 600000 }) : await api('GET', `/api/v1/health?${q}`, { timeout: 120000 });
    verdict.className = `verdict-text state-${h.state}`;
    verdict.textContent = healthShort(h);
    why.hidden = false;
    why.lastChild.replaceChildren(h.verdict, holdersList(h));
    repairButton.hidden = h.state !== 'at-risk';
  } catch (e) {
    verdict.className = 'verdict-text state-lost';
    verdict.textContent = e.message;
  } finally {
    check.disabled = false;
    repairButton.disabled = false;
    check.textContent = 'Check again';
  }
}

function fileRow(f) {
  const name = f.name || 'this file';
  const health = el('td', { 'data-label': 'Health', class: 'health' });
  const check = el('button', { type: 'button', class: 'small check', 'aria-label': `Check the health of ${name}` }, 'Check');
  const repairButton = el('button', { type: 'button', class: 'small repair', 'aria-label': `Repair ${name}: push the copies its blocks lack` }, 'Repair');
  repairButton.hidden = true;
  const verdict = el('span', { class: 'verdict-text', 'aria-live': 'polite' });
  const why = el('details', { class: 'why' }, el('summary', {}, 'Details'), el('p', {}));
  why.hidden = true;
  const row = { f, check, verdict, why, repairButton };
  check.addEventListener('click', () => checkFile(f, row));
  repairButton.addEventListener('click', () => checkFile(f, row, { repair: true }));
  health.append(el('div', { class: 'row' }, check, repairButton), verdict, why);

  const remove = el('button', { type: 'button', class: 'small danger remove', 'aria-label': `Remove ${name} from this node` }, 'Remove');
  remove.addEventListener('click', async () => {
    if (!window.confirm(`Remove “${name}” from this node?\n\nIts blocks stay until the space is needed. Anyone with the recipe can still get it from other nodes.`)) return;
    remove.disabled = true;
    try {
      await api('DELETE', `/api/v1/files/${encodeURIComponent(f.key)}`);
      clearError(filesError);
    } catch (e) {
      showError(filesError, `Could not remove ${name}: ${e.message}`);
    }
    loadFiles();
  });

  const recipeCode = el('code', { class: 'recipe-short', title: f.recipe }, f.recipe);
  const tr = el('tr', { 'data-key': f.key },
    el('td', { 'data-label': 'Name', class: 'name' }, ...nameParts(f.name || '(no name)')),
    el('td', { 'data-label': 'Size', class: 'num' }, human(f.size)),
    el('td', { 'data-label': 'Added', class: 'added' }, when(f.added)),
    el('td', { 'data-label': 'Recipe', class: 'recipe-cell' }, recipeCode, ' ', copyButton(f.recipe, null, 'Copy', `Copy the recipe of ${name}`)),
    health,
    el('td', { class: 'actions' }, el('div', { class: 'row' }, el('a', { class: 'button small', href: saveURL(f.recipe), download: f.name || '', 'aria-label': `Save ${name}` }, 'Save'), remove)),
  );
  tr._health = row;
  return tr;
}

// nameParts spells a file name with a break opportunity after each
// underscore ("IMG_20261202_0915.jpg" has no space to wrap at), so that a
// long name wraps between its parts, never inside one.
export function nameParts(name) {
  return String(name).split(/(?<=_)/).flatMap((p, i) => (i ? [el('wbr'), p] : [p]));
}

// checkAll checks the files shown, one after the other (each asks the
// network).
async function checkAll() {
  const button = $('files-check-all');
  button.disabled = true;
  try {
    for (const tr of Array.from($('files-table').tBodies[0].rows)) {
      if (tr._health) await checkFile(tr._health.f, tr._health);
    }
  } finally {
    button.disabled = false;
  }
}

function setupFiles() {
  $('files-refresh').addEventListener('click', loadFiles);
  $('files-check-all').addEventListener('click', checkAll);
  filesSearch.addEventListener('input', renderFiles);
  filesSort.addEventListener('change', renderFiles);
}

// ---------------------------------------------------------------- Node

const nodeError = $('node-error');
let nodeTimer = 0;
let nodeLoading = false;

// scheduleNode loads the Node tab when it is shown, then every 5 s while
// the browser shows the page.
function scheduleNode() {
  clearInterval(nodeTimer);
  nodeTimer = 0;
  if (currentTab !== 'node') {
    settingsShown = false;
    delete $('settings-form').dataset.loaded;
    return;
  }
  loadNode();
  loadSettings();
  nodeTimer = setInterval(() => { if (!document.hidden) loadNode(); }, 5000);
}

async function loadNode() {
  if (nodeLoading) return;
  nodeLoading = true;
  try {
    const [st, id, peers, bw, grp] = await Promise.allSettled([
      api('GET', '/api/v1/status'), api('GET', '/api/v1/id'), api('GET', '/api/v1/peers'), api('GET', '/api/v1/bandwidth'),
      api('GET', '/api/v1/group'),
    ]);
    if (grp.status === 'fulfilled') showGroup(grp.value);
    const bad = [st, id, peers, bw].find((r) => r.status === 'rejected');
    if (bad) showError(nodeError, bad.reason);
    else clearError(nodeError);
    if (st.status === 'fulfilled') showStatus(st.value);
    else {
      const v = $('node-verdict');
      v.className = 'verdict state-offline';
      v.textContent = `No answer from the node: ${st.reason.message}`;
    }
    if (id.status === 'fulfilled') showID(id.value);
    if (peers.status === 'fulfilled') showPeers(peers.value);
    if (bw.status === 'fulfilled') showBandwidth(bw.value);
  } finally {
    nodeLoading = false;
  }
}

// ACTIONS are the buttons the verdict offers, by the node's action names.
const ACTIONS = {
  'add-peer': ['Add a peer', () => { const f = $('peer-addr'); f.scrollIntoView({ block: 'center' }); f.focus(); }],
  gc: ['Free cached blocks now', () => nodeAction('POST', '/api/v1/gc', 'Freeing cached blocks…', (g) => `Freed ${plural(g.evicted_blocks, 'block')} (${human(g.evicted_bytes)}).`)],
  verify: ['Check the whole store', () => nodeAction('POST', '/api/v1/verify', 'Re-reading every block…', (v) => `Checked ${plural(v.checked, 'block')}; ${plural(v.quarantined.length, 'corrupt block')} taken out of service.`)],
};

// nodeAction runs one of the verdict's actions and says how it went.
async function nodeAction(method, path, busy, done) {
  const m = $('node-action-message');
  m.hidden = false;
  m.textContent = busy;
  try {
    m.textContent = done(await api(method, path, { timeout: 600000 }));
  } catch (e) {
    m.textContent = `It did not work: ${e.message}`;
  }
  loadNode();
}

function showStatus(s) {
  const v = $('node-verdict');
  v.className = `verdict state-${s.state}`;
  // The summary without command lines; the buttons do what they said.
  v.textContent = s.summary || s.verdict;
  const acts = Array.isArray(s.actions) ? s.actions.filter((a) => ACTIONS[a]) : [];
  $('node-actions').hidden = acts.length === 0;
  $('node-actions').replaceChildren(...acts.map((a) => {
    const b = el('button', { type: 'button', class: 'small', 'data-action': a }, ACTIONS[a][0]);
    b.addEventListener('click', ACTIONS[a][1]);
    return b;
  }));
  $('node-uptime').textContent = s.uptime_seconds > 0 ? duration(s.uptime_seconds) : '—';
  $('node-peers').textContent = `${plural(s.peers, 'peer')} connected, ${s.routing_table} known to the routing table; ${copies(s.replicas)} of each block wanted on other nodes`;
  $('node-site').textContent = siteWords(s);
  $('node-partners').textContent = partnerWords(s);
  const r = s.reach || {};
  $('node-reach').textContent = r.words ? (r.advice ? `${r.words}. To do: ${r.advice}.` : r.words) : '—';
  $('node-traffic').textContent = `${human(s.bytes_in)} in, ${human(s.bytes_out)} out since the start · now ${rate(s.rate_in)} in, ${rate(s.rate_out)} out`;
  const st = s.store || {};
  const facts = [
    ['Blocks', `${st.blocks} (${human(st.bytes)})`],
    ['Files', `${st.files} (${human(st.file_bytes)})`],
    ['Shared blocks', `${st.shared_blocks}${st.blocks > 0 ? ` (${Math.round(100 * st.shared_blocks / st.blocks)}% serve two or more files)` : ''}`],
    ['Overhead', st.file_bytes > 0 ? `${Number(st.overhead).toFixed(2)}× (the blocks of your files per file byte)` : '—'],
  ];
  if (st.other_bytes > 0) facts.push(['Held for others', `${human(st.other_bytes)} (blocks of other nodes and cached blocks)`]);
  if (st.disk_bytes > 0) facts.push(['On disk', human(st.disk_bytes)]);
  facts.push(['Quarantined', st.quarantined > 0 ? plural(st.quarantined, 'corrupt block') : 'none', st.quarantined > 0 ? 'bad' : '']);
  // A quota, when the node reports one (any field named like it).
  for (const src of [st, s]) {
    for (const [k, val] of Object.entries(src)) {
      if (!/quota/i.test(k) || val === null || typeof val === 'object') continue;
      const label = k.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
      facts.push([label, typeof val === 'number' ? (val > 0 ? human(val) : 'none') : String(val)]);
    }
  }
  $('node-store').replaceChildren(...facts.flatMap(([k, val, cls]) => [el('dt', {}, k), el('dd', { class: cls || null }, val)]));
}

// siteWords: "east · known sites: east (3 nodes), west (2 nodes); each block's copies go to two of them".
function siteWords(s) {
  const sites = Array.isArray(s.sites) ? s.sites : [];
  const known = sites.map((x) => `${x.site} (${plural(x.nodes, 'node')})`).join(', ');
  let w = s.site || 'none (the daemon\'s --site names it)';
  if (sites.length > 0) w += ` · known sites: ${known}`;
  if (sites.length >= 2) w += '; each block\'s copies go to two of them';
  return w;
}

// partnerWords: "b-club (2 nodes); 1 copy of each block goes to them", and
// for a pooled node the group of the donor that runs it.
function partnerWords(s) {
  const ps = Array.isArray(s.partners) ? s.partners : [];
  let w = ps.length > 0 ? ps.map((x) => `${x.home} (${plural(x.nodes, 'node')})`).join(', ') : 'none known';
  const c = s.partner_copies || 0;
  if (c > 0) w += `; ${copies(c)} of each block ${c === 1 ? 'goes' : 'go'} to them`;
  if (s.home) w += ` · this node is one: its donor is at home in ${s.home}`;
  return w;
}

function showID(id) {
  $('node-id').textContent = id.id || '—';
  const addrs = Array.isArray(id.addrs) ? id.addrs : [];
  $('node-addrs').replaceChildren(...(addrs.length ? addrs.map((a, i) => el('li', { class: 'copyable' }, el('code', {}, a), ' ', copyButton(a, null, 'Copy', `Copy address ${i + 1}`))) : [el('li', {}, 'none yet')]));
}

function showPeers(ps) {
  ps = Array.isArray(ps) ? ps : [];
  $('peers-empty').hidden = ps.length > 0;
  $('peers-table').hidden = ps.length === 0;
  const short = (id) => (id.length > 16 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id);
  $('peers-table').tBodies[0].replaceChildren(...ps.map((p) => el('tr', {},
    el('td', {}, el('code', { title: p.id }, short(p.id || ''))),
    el('td', { class: 'addr' }, p.addr || '—'),
    el('td', { class: 'num' }, p.latency_ms > 0 ? `${Math.round(p.latency_ms)} ms` : '—'),
    el('td', { class: 'num' }, `${Math.round(100 * (Number(p.reliability) || 0))}%`),
    el('td', { class: 'num' }, human(p.bytes_in)),
    el('td', { class: 'num' }, human(p.bytes_out)),
    el('td', { class: `num${p.lies > 0 ? ' bad' : ''}` }, String(p.lies || 0)),
    el('td', { class: 'site' }, p.site || '—'),
  )));
}

// setupNodeControls wires the Node tab's forms: add a peer, settings.
function setupNodeControls() {
  $('peer-add-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const m = $('peer-add-message');
    const addr = $('peer-addr').value.trim();
    const remember = $('peer-remember').checked;
    m.hidden = false;
    m.className = 'info';
    m.textContent = 'Reaching the node…';
    try {
      const c = await api('POST', `/api/v1/peers/connect?addr=${encodeURIComponent(addr)}${remember ? '&remember=1' : ''}`, { timeout: 60000 });
      m.textContent = `Connected to ${c.id}${c.remembered ? '; this node joins through it at every start' : ''}.`;
      $('peer-addr').value = '';
    } catch (err) {
      m.className = 'info bad';
      m.textContent = `Could not connect: ${err.message}`;
    }
    loadNode();
  });
  $('settings-form').addEventListener('input', () => { settingsDirty = true; });
  $('settings-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const m = $('settings-message');
    const body = {
      replicas: Number($('set-replicas').value), cache: $('set-cache').value.trim(), donor: $('set-donor').checked,
      quota: $('set-quota').value.trim(), profile: $('set-profile').value, repair_interval: $('set-repair').value.trim(),
    };
    m.hidden = false;
    m.className = 'info';
    m.textContent = 'Saving…';
    try {
      const res = await fetch('/api/v1/settings', {
        method: 'PUT', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, cache: 'no-store',
      });
      const out = await res.json().catch(() => null);
      if (!res.ok) throw new Error((out && out.error) || res.statusText);
      showSettings(out);
      settingsDirty = false;
      const parts = ['Saved to config.json.'];
      if (out.applied && out.applied.length) parts.push(`Applied now: ${out.applied.join(', ')}.`);
      if (out.restart && out.restart.length) parts.push(`Applies when the node next starts: ${out.restart.join(', ')}.`);
      m.textContent = parts.join(' ');
    } catch (err) {
      m.className = 'info bad';
      m.textContent = `Not saved: ${err.message}`;
    }
  });
}

let settingsShown = false;
let settingsDirty = false; // the user changed a field since the form was filled

// loadSettings fills the settings form once per visit of the tab (not at
// every refresh, and never over what the user is typing); the form is
// marked data-loaded once filled.
async function loadSettings() {
  if (settingsShown) return;
  try {
    const s = await api('GET', '/api/v1/settings');
    if (!settingsDirty) showSettings(s);
    settingsShown = true;
    $('settings-form').dataset.loaded = '1';
  } catch (e) {
    const m = $('settings-message');
    m.hidden = false;
    m.textContent = `Settings not read: ${e.message}`;
  }
}

function showSettings(s) {
  $('set-replicas').value = s.replicas;
  $('set-cache').value = s.cache || '';
  $('set-donor').checked = !!s.donor;
  $('set-quota').value = s.quota || '';
  $('set-profile').value = s.profile || 'default';
  $('set-repair').value = s.repair_interval || '';
}

// showGroup says which private group the node is in, with its invite, or
// offers to make or join one.
function showGroup(g) {
  g = g || {};
  const inGroup = !!g.name;
  $('group-state').textContent = !inGroup
    ? 'None: this node talks to any blockmix node it meets.'
    : g.active
      ? `${g.name}: a private group; this node talks only to nodes with its key (over TCP).`
      : `${g.name}: ${g.message || 'restart the daemon to work in the group'}.`;
  const inv = $('group-invite');
  inv.hidden = !g.invite;
  if (g.invite) {
    inv.replaceChildren(el('span', {}, 'Invite (a secret: whoever has it is in the group): '), el('code', {}, g.invite), ' ', copyButton(g.invite, null, 'Copy', 'Copy the invite'));
  }
  $('group-create-form').hidden = inGroup;
  $('group-join-form').hidden = inGroup;
}

function groupMessage(text) {
  const m = $('group-message');
  m.hidden = !text;
  m.textContent = text || '';
}

function setupGroup() {
  $('group-create-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const g = await api('POST', `/api/v1/group/create?name=${encodeURIComponent($('group-name').value)}`);
      groupMessage(g.message);
      loadNode();
    } catch (err) {
      groupMessage(`Could not make the group: ${err.message}`);
    }
  });
  $('group-join-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    groupMessage('Reaching the group…');
    try {
      const g = await api('POST', `/api/v1/group/join?invite=${encodeURIComponent($('group-join-text').value)}`);
      groupMessage(g.message);
      loadNode();
    } catch (err) {
      groupMessage(`Could not join: ${err.message}`);
    }
  });
}

// niceMax rounds a rate up to a round number in the unit human() will
// spell it with: 1, 2 or 5 times a power of ten KiB/s, MiB/s….
export function niceMax(v) {
  if (!(v > 0)) return 1024;
  let unit = 1;
  while (v / unit >= 1000 && unit < 1024 ** 5) unit *= 1024;
  const x = v / unit;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p * unit;
  return 10 * p * unit;
}

// showBandwidth draws the last hour of traffic, in and out, as two line
// graphs in SVG.
function showBandwidth(bw) {
  const samples = (bw && Array.isArray(bw.samples) ? bw.samples : [])
    .map((s) => ({ t: Date.parse(s.t), in: Number(s.in) || 0, out: Number(s.out) || 0 }))
    .filter((s) => !Number.isNaN(s.t));
  const box = $('bandwidth-graph');
  if (samples.length === 0) {
    box.replaceChildren(el('p', { class: 'info' }, 'No traffic recorded yet.'));
    return;
  }
  const end = samples[samples.length - 1].t;
  const span = 3600 * 1000;
  box.replaceChildren(graph('In', 'received from peers', samples, 'in', end, span), graph('Out', 'sent to peers', samples, 'out', end, span));
}

function graph(title, what, samples, key, end, span) {
  const W = 600;
  const H = 120;
  const start = end - span;
  const shown = samples.filter((s) => s.t >= start);
  const peak = Math.max(0, ...shown.map((s) => s[key]));
  const top = niceMax(peak);
  const now = shown.length ? shown[shown.length - 1][key] : 0;
  const pt = (s) => `${(((s.t - start) / span) * W).toFixed(1)},${(H - (s[key] / top) * (H - 2)).toFixed(1)}`;
  const svg = svgEl('svg', {
    viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: `graph graph-${key}`, role: 'img',
    'aria-label': `${title}: ${what}, now ${rate(now)}, peak ${rate(peak)} in the last hour`,
  });
  for (const f of [0.25, 0.5, 0.75]) {
    svg.append(svgEl('line', { x1: 0, x2: W, y1: H * f, y2: H * f, class: 'grid', 'vector-effect': 'non-scaling-stroke' }));
  }
  if (shown.length) {
    const pts = shown.map(pt);
    const first = pts[0].split(',')[0];
    const last = pts[pts.length - 1].split(',')[0];
    svg.append(svgEl('path', { d: `M${first},${H} L${pts.join(' L')} L${last},${H} Z`, class: 'area' }));
    svg.append(svgEl('polyline', { points: pts.join(' '), class: 'line', 'vector-effect': 'non-scaling-stroke' }));
  }
  return el('figure', { class: 'graph-box' },
    el('figcaption', {}, el('strong', {}, title), ` (${what}) · now ${rate(now)} · peak ${rate(peak)}`),
    el('div', { class: 'plot' }, el('span', { class: 'axis top' }, rate(top)), svg, el('span', { class: 'axis left' }, '1 h ago'), el('span', { class: 'axis right' }, 'now')),
  );
}

// ---------------------------------------------------------------- start

function start() {
  setupTabs();
  setupGet();
  setupShare();
  setupGroup();
  setupFiles();
  setupNodeControls();
  setupLive({ $, el, api, showError, copyText });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && currentTab === 'node') loadNode();
  });
  for (const b of document.querySelectorAll('button[data-copy-from]')) {
    b.addEventListener('click', () => copyText($(b.dataset.copyFrom).textContent, b));
  }

  // /r/<payload>/<name>: a recipe link. Fill the box with it and say what
  // it is (name, size, type, whether it is here already), but fetch
  // nothing until the user presses Get: any web site can send a browser
  // to such a link, and the node must not fetch, keep or announce what a
  // stranger chose.
  if (location.pathname.startsWith('/r/') && location.pathname.length > 3) {
    input.value = location.origin + location.pathname;
    selectTab('get', { push: false });
    getStatus.textContent = 'Press Get to fetch this file to your node.';
    inspect();
    getButton.focus();
    return;
  }
  // /l/<payload>: a live folder link; offered, never followed unasked.
  if (location.pathname.startsWith('/l/') && location.pathname.length > 3) {
    selectTab('live', { push: false });
    offerLink(location.origin + location.pathname);
    return;
  }
  selectTab(location.hash.slice(1) || 'get', { push: false });
}

start();
