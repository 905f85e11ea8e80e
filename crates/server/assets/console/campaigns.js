// Campaigns: the list with progress (`GET /campaigns`, `GET /campaigns/{id}`),
// start / pause / resume / cancel, and a new campaign from a CSV of
// recipients (`POST /campaigns/create`, then the CSV streamed to
// `POST /campaigns/{id}/recipients`).

import { get, post, api } from './api.js';
import { progressBar } from './charts.js';
import { actionButton, badge, card, debounce, empty, fmtNumber, fmtTime, h, replace, table, toast } from './ui.js';

const PAGE = 20;

function controls(c, refresh) {
  const act = (verb, label, opts) => actionButton(label, async () => {
    const answer = await post(`/campaigns/${encodeURIComponent(c.id)}/${verb}`, {});
    toast(answer.message || `${label}: done`);
    refresh();
  }, { name: verb, ...opts });
  const buttons = [];
  if (c.state === 'created') buttons.push(act('start', 'Start', { cls: 'primary' }));
  if (c.state === 'running') buttons.push(act('pause', 'Pause'));
  if (c.state === 'paused') buttons.push(act('resume', 'Resume', { cls: 'primary' }));
  if (['created', 'running', 'paused'].includes(c.state)) buttons.push(act('cancel', 'Cancel', { cls: 'danger', confirm: 'Confirm cancel' }));
  return h('div', { class: 'actions' }, buttons);
}

function progressCell(c) {
  if (!c.progress) return '—';
  const p = c.progress;
  return h('div', {}, progressBar(p.percent),
    h('div', { class: 'progress-label' }, `${fmtNumber(p.final)} / ${fmtNumber(p.total)} (${p.percent}%)`));
}

function breakerCell(c) {
  if (!c.breaker) return '—';
  const b = c.breaker;
  return h('div', {}, badge(b.state), b.reason ? h('div', { class: 'muted small' }, b.reason) : null,
    h('div', { class: 'muted small' }, `${b.recentFailures}/${b.recentSends} recent failed`));
}

function createForm(templates, onCreated) {
  const name = h('input', { id: 'campaign-name', required: true, maxlength: 200 });
  const type = h('select', { id: 'campaign-type' }, templates.map((t) => h('option', { value: t.type }, `${t.type} (${t.category})`)));
  const channel = h('select', { id: 'campaign-channel' }, ['sms', 'voice', 'both'].map((c) => h('option', { value: c }, c)));
  const language = h('select', { id: 'campaign-language' });
  const csv = h('input', { id: 'campaign-csv', type: 'file', accept: '.csv,text/csv' });
  const report = h('div', { class: 'report', id: 'campaign-report' });
  const fillLanguages = () => {
    const t = templates.find((x) => x.type === type.value);
    replace(language, (t ? t.languages : ['hi']).map((l) => h('option', { value: l }, l)));
  };
  type.addEventListener('change', fillLanguages);
  fillLanguages();
  const submit = actionButton('Create', async () => {
    if (!name.value.trim()) throw new Error('Give the campaign a name.');
    const created = await post('/campaigns/create', {
      name: name.value.trim(), type: type.value, channel: channel.value, language: language.value,
    });
    const id = created.campaignId;
    let lines = [`Created ${id}.`];
    const file = csv.files && csv.files[0];
    if (file) {
      const upload = await api('POST', `/campaigns/${encodeURIComponent(id)}/recipients`, { raw: file, type: 'text/csv' });
      lines.push(`${fmtNumber(upload.accepted)} recipients added, ${fmtNumber(upload.duplicates)} duplicates, ${fmtNumber(upload.invalid)} invalid.`);
      if (upload.errors && upload.errors.length) {
        lines = lines.concat(upload.errors.slice(0, 10).map((e) => `line ${e.line}: ${e.reason || e.error || JSON.stringify(e)}`));
      }
    }
    replace(report, lines.map((l) => h('div', {}, l)));
    name.value = '';
    csv.value = '';
    onCreated();
  }, { cls: 'primary', name: 'create' });
  return card('New campaign',
    h('div', { class: 'form-grid' },
      h('div', {}, h('label', { for: 'campaign-name' }, 'Name'), name),
      h('div', {}, h('label', { for: 'campaign-type' }, 'Template'), type),
      h('div', {}, h('label', { for: 'campaign-channel' }, 'Channel'), channel),
      h('div', {}, h('label', { for: 'campaign-language' }, 'Language'), language),
      h('div', {}, h('label', { for: 'campaign-csv' }, 'Recipients (CSV: phone,name,language,…)'), csv)),
    h('div', { class: 'form-actions' }, submit, h('span', { class: 'muted small' }, 'A new campaign waits (state created) until you start it.')),
    report);
}

export async function mount(root) {
  const list = h('div', { id: 'campaign-list' });
  const total = h('span', { class: 'count' });
  const more = h('div', { class: 'form-actions' });
  let before = null;
  let rows = [];

  async function details(campaigns) {
    return Promise.all(campaigns.map(async (c) => {
      try {
        return await get(`/campaigns/${encodeURIComponent(c.id)}`);
      } catch {
        return c;
      }
    }));
  }

  function draw() {
    replace(list, rows.length ? table(
      ['Name', 'Template', 'Channel', 'State', 'Recipients', 'Progress', 'Expected finish', 'Breaker', ''],
      rows.map((c) => ({
        attrs: { 'data-campaign-id': c.id, 'data-state': c.state },
        cells: [
          h('strong', {}, c.name), c.type, c.channel, badge(c.state), { value: fmtNumber(c.totalRecipients) },
          progressCell(c), c.expectedFinishAt ? fmtTime(c.expectedFinishAt) : '—', breakerCell(c), controls(c, reload),
        ],
      })),
      { numeric: [4] },
    ) : empty('No campaign yet.'));
  }

  async function page(cursor) {
    const query = `limit=${PAGE}${cursor ? `&before=${encodeURIComponent(cursor)}` : ''}`;
    const answer = await get(`/campaigns?${query}`);
    total.textContent = String(answer.total);
    before = answer.next;
    replace(more, before ? actionButton('More', async () => { rows = rows.concat(await page(before)); draw(); }, { name: 'more' }) : null);
    return details(answer.campaigns);
  }

  async function reload() {
    rows = await page(null);
    draw();
    root.dataset.loaded = 'true';
  }

  let templates = [];
  try {
    templates = (await get('/campaigns/templates/list')).templates;
  } catch (e) {
    toast(`Templates could not load: ${e.message}`, true);
  }
  replace(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Campaigns'),
      h('div', { class: 'actions' }, actionButton('Refresh', () => reload(), { name: 'refresh' }))),
    h('div', { class: 'grid' },
      h('section', { class: 'card wide-card' }, h('h2', {}, 'Campaigns ', total), list, more)),
    h('div', { class: 'grid' }, createForm(templates, reload)));
  await reload();
  const later = debounce(() => reload().catch(() => {}), 500);
  return {
    onEvent(event) {
      if (event.kind.startsWith('campaign.')) later();
    },
  };
}
