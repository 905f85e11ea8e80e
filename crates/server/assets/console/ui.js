// DOM helpers. Text always goes in as text (never as HTML), so nothing the
// API returns can run as script.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function badge(text, cls) {
  return h('span', { class: `badge ${cls ?? String(text).toLowerCase().replace(/\s+/g, '_')}` }, text);
}

export function empty(text) {
  return h('p', { class: 'empty' }, text);
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(undefined, {
  day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit',
});

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? timeFormat.format(d) : dateFormat.format(d);
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  const hours = Math.floor(s / 3600);
  return `${hours}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function fmtAgo(iso) {
  if (!iso) return '—';
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (seconds < 5) return 'just now';
  return `${fmtDuration(seconds)} ago`;
}

export function fmtNumber(n) {
  if (n === null || n === undefined) return '—';
  return Number(n).toLocaleString();
}

// A countdown element to `iso`, kept ticking by `tickCountdowns`.
export function countdown(iso) {
  const el = h('span', { class: 'countdown', dataset: { at: iso } });
  renderCountdown(el);
  return el;
}

function renderCountdown(el) {
  const left = (new Date(el.dataset.at).getTime() - Date.now()) / 1000;
  el.textContent = left > 0 ? `in ${fmtDuration(left)}` : 'due now';
  el.classList.toggle('due', left <= 0);
}

export function tickCountdowns() {
  document.querySelectorAll('.countdown[data-at]').forEach(renderCountdown);
}

export function toast(message, bad) {
  const box = document.getElementById('toasts');
  const el = h('div', { class: bad ? 'toast bad' : 'toast' }, message);
  box.append(el);
  setTimeout(() => el.remove(), bad ? 7000 : 3500);
}

// A button that runs `action` (async) once, disabled while it runs; errors
// are shown. `confirm`: the first click arms it ("Confirm?") for a few
// seconds, the second runs it — no blocking dialog.
export function actionButton(label, action, { cls, confirm, title, name } = {}) {
  const button = h('button', { type: 'button', class: cls, title, 'data-action': name ?? label.toLowerCase() }, label);
  let armed = null;
  button.addEventListener('click', async () => {
    if (confirm && !armed) {
      button.classList.add('armed');
      button.textContent = confirm;
      armed = setTimeout(() => {
        armed = null;
        button.classList.remove('armed');
        button.textContent = label;
      }, 4000);
      return;
    }
    if (armed) clearTimeout(armed);
    armed = null;
    button.classList.remove('armed');
    button.disabled = true;
    button.textContent = `${label}…`;
    try {
      await action();
    } catch (e) {
      toast(e.message || String(e), true);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  });
  return button;
}

// Calls `fn` at most once per `ms`, after the last call.
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

// A table; `rows` are arrays of cells (a cell is a node, text, or
// `{value, class}`); `labels` name the columns (and the cells on phones).
export function table(labels, rows, { numeric = [], cls = 'stack' } = {}) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: cls },
      h('thead', {}, h('tr', {}, labels.map((l, i) => h('th', { class: numeric.includes(i) ? 'num' : null }, l)))),
      h(
        'tbody',
        {},
        rows.map((row) => {
          const tr = h('tr', row.attrs || {});
          (row.cells || row).forEach((cell, i) => {
            const plain = cell === null || cell === undefined || typeof cell !== 'object' || cell instanceof Node;
            const value = plain ? cell : cell.value;
            const classes = [numeric.includes(i) ? 'num' : null, plain ? null : cell.class].filter(Boolean).join(' ');
            tr.append(h('td', { class: classes || null, 'data-label': labels[i] }, value ?? '—'));
          });
          return tr;
        }),
      ),
    ),
  );
}
