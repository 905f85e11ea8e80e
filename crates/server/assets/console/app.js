// The console's shell: login, the hash router (#/board, #/order/<id>,
// #/analytics, #/campaigns, #/ops), the live event feed shared by the pages,
// and the ticking countdowns.

import * as api from './api.js';
import { h, replace, tickCountdowns, toast } from './ui.js';
import * as board from './board.js';
import * as order from './order.js';
import * as analytics from './analytics.js';
import * as campaigns from './campaigns.js';
import * as ops from './ops.js';

const pages = { board, order, analytics, campaigns, ops };

// What the live feed has seen since the console opened, newest first:
// answers (keys pressed, replies, stops) and admin alerts.
const recent = { answers: [], alerts: [] };
const KEEP = 50;

const ANSWER_KINDS = new Set([
  'ivr.key', 'inbound.key', 'inbound.vendor_answer', 'whatsapp.reply', 'ladder.stopped', 'dtmf',
]);

function isAnswer(event) {
  return ANSWER_KINDS.has(event.kind) || event.kind.endsWith('.answer') || event.kind.includes('dtmf');
}

function isAdminAlert(event) {
  return event.channel === 'admin' || event.party === 'admin' || event.kind.startsWith('admin');
}

let current = null;
let stopFeed = null;

function remember(event) {
  if (isAnswer(event)) recent.answers = [event, ...recent.answers].slice(0, KEEP);
  if (isAdminAlert(event)) recent.alerts = [event, ...recent.alerts].slice(0, KEEP);
  if (current && current.onEvent) current.onEvent(event);
}

function setLive(state) {
  const el = document.getElementById('live');
  const text = { on: 'live', polling: 'live (polling)', connecting: 'connecting', off: 'offline' }[state] || state;
  el.textContent = text;
  el.className = `live ${state}`;
  el.dataset.state = state;
}

function parseRoute() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [page, ...rest] = hash.split('/');
  if (page === 'order' && rest.length) return { page: 'order', params: { id: decodeURIComponent(rest.join('/')) } };
  if (pages[page] && page !== 'order') return { page, params: {} };
  return { page: 'board', params: {} };
}

async function route() {
  const { page, params } = parseRoute();
  if (current && current.destroy) current.destroy();
  current = null;
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', a.dataset.page === page));
  const main = document.getElementById('main');
  // Each visit renders into its own element: what a page left running
  // (a debounced refresh) lands in a detached node once the user moved on.
  const root = h('div', { class: 'page', dataset: { page } }, h('p', { class: 'empty' }, 'Loading…'));
  replace(main, root);
  let mounted = null;
  try {
    mounted = (await pages[page].mount(root, { params, recent, isAnswer, isAdminAlert })) || {};
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 401) return;
    replace(root, h('section', { class: 'card' }, h('h2', {}, 'This page could not load'), h('p', { class: 'error' }, e.message)));
    root.dataset.loaded = 'error';
  }
  if (main.firstChild !== root) {
    if (mounted && mounted.destroy) mounted.destroy();
    return;
  }
  current = mounted;
}

function showLogin(message) {
  if (stopFeed) stopFeed();
  stopFeed = null;
  if (current && current.destroy) current.destroy();
  current = null;
  document.getElementById('app').hidden = true;
  document.getElementById('login').hidden = false;
  const error = document.getElementById('login-error');
  error.hidden = !message;
  error.textContent = message || '';
  document.getElementById('api-key').focus();
}

function showApp() {
  document.getElementById('login').hidden = true;
  document.getElementById('app').hidden = false;
  if (!stopFeed) stopFeed = api.liveFeed(remember, setLive);
  route();
}

function wire() {
  document.getElementById('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = document.getElementById('api-key');
    const button = document.getElementById('login-submit');
    button.disabled = true;
    try {
      await api.login(input.value.trim());
      input.value = '';
      showApp();
    } catch (err) {
      const message = err instanceof api.ApiError && err.status === 401
        ? `That API key was not accepted (${err.message}).`
        : err.message;
      showLogin(message);
    } finally {
      button.disabled = false;
    }
  });
  document.getElementById('logout').addEventListener('click', async () => {
    try {
      await api.logout();
    } finally {
      showLogin('');
    }
  });
  document.getElementById('order-search').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = document.getElementById('order-search-id');
    const id = input.value.trim();
    if (id) location.hash = `#/order/${encodeURIComponent(id)}`;
    input.value = '';
  });
  window.addEventListener('hashchange', () => {
    if (!document.getElementById('app').hidden) route();
  });
  api.whenUnauthorized(() => showLogin('Your session has ended; log in again.'));
  setInterval(tickCountdowns, 1000);
}

async function start() {
  wire();
  try {
    if (await api.session()) showApp();
    else showLogin('');
  } catch (e) {
    showLogin('');
    toast(`The service did not answer: ${e.message}`, true);
  }
}

start();
