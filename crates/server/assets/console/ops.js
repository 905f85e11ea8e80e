// Operations: dead jobs (Retry / Discard), the job queue's depth and
// lateness, dependency health and latencies (`GET /health`), and the
// effective configuration with its secrets hidden.

import { get, post } from './api.js';
import { actionButton, badge, card, debounce, empty, fmtDuration, fmtNumber, fmtTime, h, replace, table, toast } from './ui.js';

function unavailable(e, what) {
  if (e.status === 404) return empty(`${what} is not available on this server yet (${e.message}).`);
  return h('p', { class: 'error' }, `${what} could not load: ${e.message}`);
}

function deadJobs(answer, reload) {
  if (!answer.jobs.length) return empty('No dead job.');
  return table(['Job', 'Kind', 'Key', 'Order', 'Attempts', 'Last error', 'Dead since', ''], answer.jobs.map((job) => ({
    attrs: { 'data-job-id': job.id },
    cells: [
      h('span', { class: 'mono' }, `#${job.id}`), job.kind, h('span', { class: 'mono small' }, job.key),
      job.orderId ? h('a', { href: `#/order/${encodeURIComponent(job.orderId)}` }, job.orderId) : '—',
      { value: job.attempts }, { value: job.lastError || '—', class: 'err' }, fmtTime(job.deadAt),
      h('div', { class: 'actions' },
        actionButton('Retry', async () => {
          const r = await post(`/ops/jobs/${job.id}/retry`);
          toast(`Job #${r.id} is ${r.state} again`);
          reload();
        }, { cls: 'primary', name: 'retry' }),
        actionButton('Discard', async () => {
          await post(`/ops/jobs/${job.id}/discard`);
          toast(`Job #${job.id} discarded`);
          reload();
        }, { cls: 'danger', confirm: 'Confirm discard', name: 'discard' })),
    ],
  })), { numeric: [4] });
}

function queue(answer) {
  const t = answer.totals;
  return [
    h('div', { class: 'totals' },
      ['pending', 'running', 'overdue', 'dead'].map((k) => h('span', {}, h('b', {}, fmtNumber(t[k])), ` ${k}`))),
    answer.kinds.length
      ? table(['Kind', 'Pending', 'Running', 'Overdue', 'Oldest overdue', 'Dead'], answer.kinds.map((k) => [
        k.kind, { value: fmtNumber(k.pending) }, { value: fmtNumber(k.running) },
        { value: fmtNumber(k.overdue), class: k.overdue ? 'err' : null },
        { value: k.oldestOverdueSeconds == null ? '—' : fmtDuration(k.oldestOverdueSeconds) },
        { value: fmtNumber(k.dead), class: k.dead ? 'err' : null },
      ]), { numeric: [1, 2, 3, 4, 5] })
      : empty('The queue is empty.'),
  ];
}

function health(answer) {
  const deps = Object.entries(answer.connections || {}).filter(([, d]) => d && typeof d === 'object');
  const components = Object.entries(answer.components || {});
  return [
    h('div', { class: 'totals' }, h('span', {}, 'Status ', badge(answer.status)), h('span', {}, `mode ${answer.mode}`),
      h('span', {}, `database ${answer.database}`), h('span', {}, `version ${answer.version}`)),
    table(['Dependency', 'State', 'Latency', 'Checked', 'Error'], deps.map(([name, d]) => [
      d.backend ? `${name} (${d.backend})` : name,
      badge(d.connected ? 'up' : 'down', d.connected ? 'ok' : 'bad'),
      { value: (d.latencyMs ?? d.latency_ms ?? d.latency) == null ? '—' : `${d.latencyMs ?? d.latency_ms ?? d.latency} ms` },
      fmtTime(d.checkedAt ?? d.checked_at), { value: d.error || '', class: d.error ? 'err' : null },
    ]), { numeric: [2] }),
    components.length ? h('h3', {}, 'Components') : null,
    components.length ? table(['Component', 'State', 'Restarts', 'Last error'], components.map(([name, c]) => [
      name,
      c && c.failed ? badge('failed', 'bad') : badge('running', 'ok'),
      { value: c && c.restarts != null ? c.restarts : '—' },
      { value: (c && (c.lastError || c.last_error)) || '', class: c && (c.lastError || c.last_error) ? 'err' : null },
    ]), { numeric: [2] }) : null,
  ];
}

function config(answer) {
  return [
    h('div', { class: 'totals' }, h('span', {}, 'Mode ', badge(answer.mode, answer.mode === 'live' ? 'ok' : 'warn'))),
    table(['Variable', 'Value'], answer.variables.map((v) => [
      h('span', { class: 'mono' }, v.name),
      v.secret ? badge(v.value, v.value === 'set' ? 'ok' : '') : h('span', { class: 'mono' }, v.value),
    ])),
  ];
}

export async function mount(root) {
  const dead = h('div', { id: 'dead-jobs' });
  const deadCount = h('span', { class: 'count' });
  const more = h('div', { class: 'form-actions' });
  const queueBox = h('div', { id: 'queue' });
  const healthBox = h('div', { id: 'health' });
  const configBox = h('div', { id: 'config' });
  replace(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Operations'),
      h('div', { class: 'actions' }, actionButton('Refresh', () => load(), { name: 'refresh' }))),
    h('div', { class: 'grid' }, h('section', { class: 'card', id: 'dead-card' }, h('h2', {}, 'Dead jobs ', deadCount), dead, more)),
    h('div', { class: 'grid' }, card('Queue', queueBox), card('Health', healthBox)),
    h('div', { class: 'grid' }, card('Configuration', configBox)));

  let pages = [];
  async function loadDead() {
    try {
      const first = await get('/ops/jobs/dead?limit=100');
      pages = [first];
      drawDead();
    } catch (e) {
      replace(dead, unavailable(e, 'The dead-job list'));
    }
  }
  function drawDead() {
    const all = { jobs: pages.flatMap((p) => p.jobs) };
    deadCount.textContent = String(all.jobs.length);
    replace(dead, deadJobs(all, loadDead));
    const last = pages[pages.length - 1];
    replace(more, last.jobs.length === 100 ? actionButton('More', async () => {
      pages.push(await get(`/ops/jobs/dead?limit=100&after=${last.next}`));
      drawDead();
    }, { name: 'more' }) : null);
  }
  async function load() {
    const [q, hl, c] = await Promise.allSettled([get('/ops/queue'), fetchHealth(), get('/ops/config'), loadDead()]);
    replace(queueBox, q.status === 'fulfilled' ? queue(q.value) : unavailable(q.reason, 'The queue'));
    replace(healthBox, hl.status === 'fulfilled' ? health(hl.value) : unavailable(hl.reason, 'Health'));
    replace(configBox, c.status === 'fulfilled' ? config(c.value) : unavailable(c.reason, 'The configuration'));
    root.dataset.loaded = 'true';
  }
  await load();
  const later = debounce(() => load().catch(() => {}), 500);
  const timer = setInterval(() => load().catch(() => {}), 15000);
  return {
    onEvent(event) {
      if (event.kind.startsWith('job_')) later();
    },
    destroy() {
      clearInterval(timer);
    },
  };
}

// `/health` answers 503 (with its body) when the database is down: show it.
async function fetchHealth() {
  const res = await fetch('/health', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  return res.json();
}
