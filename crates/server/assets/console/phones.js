// The sandbox's virtual phones: every demo vendor, rider and customer (and
// the admin and the order desk) as a phone. The page holds each phone in
// the Exotel simulator (`/_sim/exotel/phones/{n}/hold`), so calls to them
// ring here; it polls the simulators' control endpoints and acts through
// them. Nothing here talks to the service other than through `/_sim/`,
// except the live feed (`/comms/events/stream`): a timeline event there
// wakes the poll at once, the 500 ms poll being the fallback.
'use strict';

const POLL_MS = 500;
const INBOX_EVERY = 4; // polls between two WhatsApp / push refreshes

// ---- API: one function for every request --------------------------------

const auth = { mode: null, key: null, csrf: null };

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function errorMessage(data, status) {
  if (data && typeof data.error === 'string') return data.error;
  if (data && data.error && data.error.message) return data.error.message;
  return `HTTP ${status}`;
}

// The console session (cookie + X-CSRF-Token) when there is one, else the
// API key typed into the page (X-API-Key).
async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth.mode === 'key') headers['X-API-Key'] = auth.key;
  if (auth.mode === 'session' && method !== 'GET') headers['X-CSRF-Token'] = auth.csrf;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, errorMessage(data, res.status));
  return data;
}

const enc = (number) => encodeURIComponent(number);
const phoneApi = {
  hold: (n) => api('POST', `/_sim/exotel/phones/${enc(n)}/hold`),
  release: (n) => api('DELETE', `/_sim/exotel/phones/${enc(n)}/hold`),
  held: () => api('GET', '/_sim/exotel/phones'),
  act: (n, action) => api('POST', `/_sim/exotel/phones/${enc(n)}/${action}`),
  keys: (n, digits) => api('POST', `/_sim/exotel/phones/${enc(n)}/keys`, { digits }),
  say: (n, text, language) => api('POST', `/_sim/exotel/phones/${enc(n)}/say`, { text, language }),
  audio: (n, pcm, rate) => api('POST', `/_sim/exotel/phones/${enc(n)}/audio`, { pcm, sample_rate: rate }),
  dial: (from, to) => api('POST', '/_sim/exotel/incoming', { from, to }),
  whatsapp: () => api('GET', '/_sim/whatsapp/messages'),
  reply: (messageId, index) => api('POST', '/_sim/whatsapp/reply', { message_id: messageId, index }),
  pushes: () => api('GET', '/_sim/push/deliveries'),
};

// ---- small DOM helpers ---------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) node.append(c);
  }
  return node;
}

const $ = (sel) => document.querySelector(sel);

function status(text, bad) {
  const node = $('#status');
  node.textContent = text || '';
  node.classList.toggle('error', !!bad);
}

function secondsLeft(until, now) {
  if (!until || !now) return null;
  return Math.max(0, Math.round((Date.parse(until) - Date.parse(now)) / 1000));
}

// ---- sound: the ring, and prompts read aloud -----------------------------

let audioCtx = null;
let lastRing = 0;

function unlockAudio() {
  if (!audioCtx && window.AudioContext) {
    try { audioCtx = new AudioContext(); } catch (_) { audioCtx = null; }
  }
}

function ringTone() {
  if (!audioCtx || !$('#sound').checked) return;
  const now = Date.now();
  if (now - lastRing < 2000) return;
  lastRing = now;
  for (const start of [0, 0.45]) {
    const osc = audioCtx.createOscillator();
    const gain = audioCtx.createGain();
    osc.frequency.value = 440;
    gain.gain.value = 0.08;
    osc.connect(gain).connect(audioCtx.destination);
    osc.start(audioCtx.currentTime + start);
    osc.stop(audioCtx.currentTime + start + 0.35);
  }
}

function hear(prompt) {
  if (!$('#sound').checked) return;
  if (prompt.audio_urls && prompt.audio_urls.length) {
    const queue = [...prompt.audio_urls];
    const next = () => {
      const url = queue.shift();
      if (!url) return;
      const a = new Audio(url);
      a.addEventListener('ended', next);
      a.play().catch(() => {});
    };
    next();
  } else if (prompt.text && window.speechSynthesis) {
    const u = new SpeechSynthesisUtterance(prompt.text);
    window.speechSynthesis.speak(u);
  }
}

// ---- the microphone: 16-bit mono PCM at the stream's 8 kHz ---------------

const RATE = 8000;

async function record() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  let ctx;
  try { ctx = new AudioContext({ sampleRate: RATE }); } catch (_) { ctx = new AudioContext(); }
  const source = ctx.createMediaStreamSource(stream);
  const proc = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  proc.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  source.connect(proc);
  proc.connect(ctx.destination);
  return {
    async stop() {
      proc.disconnect();
      source.disconnect();
      stream.getTracks().forEach((t) => t.stop());
      const rate = ctx.sampleRate;
      await ctx.close();
      const total = chunks.reduce((n, c) => n + c.length, 0);
      const bytes = new Uint8Array(total * 2);
      const view = new DataView(bytes.buffer);
      let i = 0;
      for (const c of chunks) {
        for (const s of c) {
          view.setInt16(i, Math.max(-1, Math.min(1, s)) * 0x7fff, true);
          i += 2;
        }
      }
      let bin = '';
      for (let j = 0; j < bytes.length; j += 0x8000) bin += String.fromCharCode(...bytes.subarray(j, j + 0x8000));
      return { pcm: btoa(bin), rate };
    },
  };
}

// ---- the phones ----------------------------------------------------------

const state = {
  directory: [],
  exophones: [],
  cards: new Map(), // number -> card
  views: new Map(), // number -> phone view from the simulator
  messages: [],
  pushes: [],
  ticks: 0,
  waking: false, // a poll woken by the live feed is on its way
  whatsapp: false,
  push: false,
};

const PURPOSE = {
  incoming: 'Call to order',
  missed_call: 'Give a missed call',
  masking: 'Call the masked number',
};

async function run(label, fn) {
  try {
    status('');
    await fn();
    await poll(true);
  } catch (e) {
    status(`${label}: ${e.message}`, true);
  }
}

function makeCard(entry) {
  const n = entry.number;
  const screen = el('div', { class: 'screen' }, el('span', { class: 'state', text: 'Idle' }));
  const answer = el('button', { type: 'button', class: 'good answer', hidden: true, text: 'Answer',
    onclick: () => run('Answer', () => phoneApi.act(n, 'answer')) });
  const reject = el('button', { type: 'button', class: 'bad reject', hidden: true, text: 'Reject',
    onclick: () => run('Reject', () => phoneApi.act(n, 'reject')) });
  const hangup = el('button', { type: 'button', class: 'bad hangup', hidden: true, text: 'Hang up',
    onclick: () => run('Hang up', () => phoneApi.act(n, 'hangup')) });
  const keypad = el('div', { class: 'keypad', hidden: true },
    ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'].map((k) =>
      el('button', { type: 'button', class: 'key', 'data-key': k, text: k,
        onclick: () => run(`Key ${k}`, () => phoneApi.keys(n, k)) })));
  const words = el('input', { type: 'text', class: 'words', placeholder: 'Say something to the bot',
    'aria-label': 'Words to say' });
  let recording = null;
  const mic = el('button', { type: 'button', class: 'rec', text: 'Speak (mic)' });
  mic.addEventListener('click', async () => {
    if (recording) {
      const r = recording;
      recording = null;
      mic.classList.remove('on');
      mic.textContent = 'Speak (mic)';
      const { pcm, rate } = await r.stop();
      await run('Microphone', () => phoneApi.audio(n, pcm, rate));
    } else {
      try {
        recording = await record();
        mic.classList.add('on');
        mic.textContent = 'Stop and send';
      } catch (e) {
        status(`Microphone: ${e.message}`, true);
      }
    }
  });
  const speak = el('form', { class: 'speak', hidden: true,
    onsubmit: (e) => {
      e.preventDefault();
      const text = words.value.trim();
      if (!text) return;
      words.value = '';
      run('Say', () => phoneApi.say(n, text, entry.language === 'en' ? 'en' : undefined));
    } }, words, el('button', { type: 'submit', text: 'Say' }), mic);
  const dial = entry.role === 'customer'
    ? el('div', { class: 'dial' }, state.exophones.map((x) =>
      el('button', { type: 'button', class: `dial-${x.purpose}`, title: x.number,
        text: PURPOSE[x.purpose] || `Call ${x.flow_id}`,
        onclick: () => run('Call', () => phoneApi.dial(n, x.number)) })))
    : null;
  const inbox = el('div', { class: 'inbox' });
  const node = el('article', { class: 'phone', 'data-number': n, 'data-role': entry.role },
    el('header', {},
      el('span', { class: 'name', text: entry.name }),
      el('span', { class: `badge ${entry.role}`, text: entry.role.replace('_', ' ') }),
      el('span', { class: 'number', text: n })),
    screen, el('div', { class: 'actions' }, answer, reject, hangup), keypad, speak, dial, inbox);
  return { entry, node, screen, answer, reject, hangup, keypad, speak, inbox, shown: '', heard: 0, inboxKey: '' };
}

function renderScreen(card, view) {
  const call = view && view.call;
  const last = view && view.last;
  const parts = [];
  if (!view || !view.held) {
    parts.push(el('span', { class: 'state', text: 'Not held (the simulator answers for it)' }));
  } else if (call && call.status === 'ringing' && call.role === 'callee') {
    const left = secondsLeft(call.rings_until, view.now);
    parts.push(el('span', { class: 'state', text: 'Ringing' }), ' ',
      el('span', { class: 'who', text: call.other_number }),
      left === null ? '' : el('span', { class: 'countdown', text: ` · rings out in ${left}s` }));
  } else if (call && call.status === 'ringing') {
    parts.push(el('span', { class: 'state', text: `Calling ${call.other_number}…` }));
  } else if (call) {
    const what = call.stream_sid ? 'Talking to the voice bot' : 'On a call';
    parts.push(el('span', { class: 'state', text: what }), ' ',
      el('span', { class: 'who', text: call.role === 'caller' ? `to ${call.other_number}` : `from ${call.other_number}` }));
  } else if (last) {
    parts.push(el('span', { class: 'state', text: 'Idle' }), ' ',
      el('span', { class: 'who', text: `last call: ${last.status}` }));
  } else {
    parts.push(el('span', { class: 'state', text: 'Idle' }));
  }
  const prompts = (call && call.prompts) || [];
  if (prompts.length) {
    parts.push(el('ul', { class: 'prompts' }, prompts.map((p) => el('li', { class: 'prompt', 'data-kind': p.kind },
      el('span', { class: 'kind', text: p.kind }),
      p.text || '',
      (p.audio_urls || []).map((url, i) => el('button', { type: 'button', text: `▶ audio ${i + 1}`,
        onclick: () => new Audio(url).play().catch(() => {}) }))))));
  }
  if (call && call.listening) {
    const l = call.listening;
    const left = secondsLeft(l.until, view.now);
    parts.push(el('div', { class: 'listening',
      text: `Listening for keys${l.pressed ? ` (pressed ${l.pressed})` : ''}${left === null ? '' : ` · ${left}s`}` }));
  }
  card.screen.replaceChildren(...parts);
}

function update(card, view) {
  const call = view && view.call;
  const ringing = !!(call && call.status === 'ringing' && call.role === 'callee');
  const active = !!call && !ringing;
  card.node.classList.toggle('ringing', ringing);
  card.node.classList.toggle('active', active);
  card.node.style.order = ringing ? -2 : active ? -1 : 0;
  card.answer.hidden = !ringing;
  card.reject.hidden = !ringing;
  card.hangup.hidden = !active;
  card.keypad.hidden = !(call && call.status === 'in-progress' && call.leg === 0);
  card.speak.hidden = !(call && call.stream_sid);
  const key = JSON.stringify(view || null);
  if (key !== card.shown) {
    card.shown = key;
    renderScreen(card, view);
  }
  const prompts = (call && call.prompts) || [];
  if (!call) card.heard = 0;
  for (const p of prompts.slice(card.heard)) hear(p);
  card.heard = prompts.length;
  return ringing;
}

function renderInbox(card) {
  const { entry } = card;
  const messages = state.messages.filter((m) => m.to === entry.number).slice(-5);
  const pushes = state.pushes.filter((p) => entry.push_recipient && p.recipient === entry.push_recipient).slice(-5);
  const key = JSON.stringify([messages, pushes]);
  if (key === card.inboxKey) return;
  card.inboxKey = key;
  const nodes = [];
  if (messages.length) {
    nodes.push(el('h3', { text: 'WhatsApp' }));
    for (const m of messages) {
      const replied = m.replies && m.replies.length > 0;
      nodes.push(el('div', { class: 'bubble', 'data-message': m.id },
        el('div', { text: `${m.template}${m.body_params.length ? `: ${m.body_params.join(' · ')}` : ''}` }),
        el('div', { class: 'meta', text: `${m.language} · ${(m.statuses || []).slice(-1)[0] || 'sent'}${replied ? ' · replied' : ''}` }),
        (m.button_labels || []).length
          ? el('div', { class: 'buttons' }, m.button_labels.map((label, i) => el('button', {
            type: 'button', class: 'wa-button', 'data-index': String(i), text: label, disabled: replied,
            onclick: () => run('Reply', () => phoneApi.reply(m.id, i)) })))
          : null));
    }
  }
  if (pushes.length) {
    nodes.push(el('h3', { text: 'Notifications' }));
    for (const p of pushes) {
      nodes.push(el('div', { class: 'push' }, el('b', { text: p.title || '(no title)' }), p.body || ''));
    }
  }
  card.inbox.replaceChildren(...nodes);
}

async function poll(once) {
  try {
    const held = await phoneApi.held();
    state.views = new Map(held.map((v) => [v.number, v]));
    if (state.ticks % INBOX_EVERY === 0 || once) {
      if (state.whatsapp) state.messages = await phoneApi.whatsapp().catch(() => state.messages);
      if (state.push) state.pushes = await phoneApi.pushes().catch(() => state.pushes);
    }
    let anyRinging = false;
    for (const card of state.cards.values()) {
      anyRinging = update(card, state.views.get(card.entry.number)) || anyRinging;
      renderInbox(card);
    }
    if (anyRinging) ringTone();
  } catch (e) {
    status(`Polling: ${e.message}`, true);
  }
  if (!once) {
    state.ticks += 1;
    setTimeout(() => poll(false), POLL_MS);
  }
}

// ---- The live feed: wake the poll as soon as something happens -----------

// A burst of events (one call records several) wakes one poll. The body's
// `data-wakes` counts the events heard, `data-feed` says whether the feed
// is open (the browser test reads both).
function wakePoll() {
  document.body.dataset.wakes = String(Number(document.body.dataset.wakes || 0) + 1);
  if (state.waking) return;
  state.waking = true;
  setTimeout(() => {
    state.waking = false;
    poll(true);
  }, 50);
}

// The session's cookie reaches EventSource (which reconnects by itself);
// an API key needs a header, so the stream is read with fetch instead.
function listen() {
  if (auth.mode === 'session' && typeof EventSource === 'function') {
    const source = new EventSource('/comms/events/stream', { withCredentials: true });
    source.addEventListener('open', () => { document.body.dataset.feed = 'open'; });
    source.addEventListener('timeline', wakePoll);
  } else if (auth.mode === 'key' && typeof TextDecoderStream === 'function') {
    readFeedWithKey();
  }
}

async function readFeedWithKey() {
  for (;;) {
    try {
      const res = await fetch('/comms/events/stream', {
        headers: { 'X-API-Key': auth.key, Accept: 'text/event-stream' },
        cache: 'no-store',
      });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      document.body.dataset.feed = 'open';
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const lines = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          if (lines.some((l) => /^event:\s*timeline$/.test(l))) wakePoll();
        }
      }
    } catch (_) {
      // The 500 ms poll carries on; try the feed again shortly.
    }
    document.body.dataset.feed = 'closed';
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

function applyFilter() {
  const text = $('#filter').value.trim().toLowerCase();
  const role = document.querySelector('.role.on').dataset.role;
  for (const card of state.cards.values()) {
    const r = card.entry.role;
    const roleOk = !role || r === role || (role === 'staff' && (r === 'admin' || r === 'order_desk'));
    const textOk = !text || card.entry.name.toLowerCase().includes(text) || card.entry.number.includes(text);
    card.node.hidden = !(roleOk && textOk);
  }
}

async function start() {
  $('#login').hidden = true;
  $('#app').hidden = false;
  const dir = await api('GET', '/_sim/phones');
  state.directory = dir.phones;
  state.exophones = dir.exophones;
  state.whatsapp = dir.whatsapp;
  state.push = dir.push;
  const list = $('#phones');
  for (const entry of state.directory) {
    if (state.cards.has(entry.number)) continue;
    const card = makeCard(entry);
    state.cards.set(entry.number, card);
    list.append(card.node);
  }
  status(`Holding ${state.directory.length} phones…`);
  const held = new Set(dir.held);
  const todo = state.directory.filter((e) => !held.has(e.number));
  for (let i = 0; i < todo.length; i += 8) {
    await Promise.all(todo.slice(i, i + 8).map((e) => phoneApi.hold(e.number)));
  }
  status(`${state.directory.length} phones ready: calls to them ring here.`);
  document.body.dataset.ready = 'true';
  poll(false);
  listen();
}

async function signIn() {
  const session = await fetch('/console/session', { credentials: 'same-origin' }).catch(() => null);
  if (session && session.ok) {
    const body = await session.json().catch(() => ({}));
    if (body.csrfToken) {
      Object.assign(auth, { mode: 'session', csrf: body.csrfToken });
      return true;
    }
  }
  const key = sessionStorage.getItem('mw_api_key');
  if (key) {
    Object.assign(auth, { mode: 'key', key });
    try {
      await api('GET', '/_sim/phones');
      return true;
    } catch (_) {
      sessionStorage.removeItem('mw_api_key');
    }
  }
  return false;
}

function wire() {
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    unlockAudio();
    const key = $('#api-key').value.trim();
    Object.assign(auth, { mode: 'key', key });
    try {
      await api('GET', '/_sim/phones');
      sessionStorage.setItem('mw_api_key', key);
      $('#login-error').textContent = '';
      await start();
    } catch (err) {
      $('#login-error').textContent = err.status === 401 ? 'That API key is not valid.' : err.message;
    }
  });
  $('#filter').addEventListener('input', applyFilter);
  for (const b of document.querySelectorAll('.role')) {
    b.addEventListener('click', () => {
      document.querySelectorAll('.role').forEach((x) => x.classList.toggle('on', x === b));
      applyFilter();
    });
  }
  $('#release').addEventListener('click', () => run('Release', async () => {
    await Promise.all(state.directory.map((e) => phoneApi.release(e.number)));
    status('Every phone is put down: the simulator answers for them until you reload this page.');
  }));
  document.addEventListener('click', unlockAudio, { once: true });
}

document.addEventListener('DOMContentLoaded', async () => {
  wire();
  if (await signIn()) {
    start().catch((e) => status(e.message, true));
  } else {
    $('#login').hidden = false;
  }
});
