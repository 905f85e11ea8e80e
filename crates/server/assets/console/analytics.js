// Analytics: `GET /ops/analytics?from&to` drawn as SVG charts, for the last
// 24 hours, 7 days, 30 days or a custom range.

import { get } from './api.js';
import { barList, columnChart, groupedBars } from './charts.js';
import { channelName } from './board.js';
import { actionButton, empty, fmtNumber, h, replace } from './ui.js';

const RANGES = { '24h': 24, '7d': 24 * 7, '30d': 24 * 30 };
const BUCKETS = { 10: '≤ 10 s', 30: '≤ 30 s', 60: '≤ 1 min', 120: '≤ 2 min', 300: '≤ 5 min' };
let chosen = '24h';

function chartCard(title, name, body, wide) {
  return h('section', { class: `card${wide ? ' wide' : ''}`, dataset: { chart: name } }, h('h2', {}, title), body);
}

function hourLabel(iso, spanHours) {
  const d = new Date(iso);
  if (spanHours <= 48) return `${String(d.getHours()).padStart(2, '0')}:00`;
  return `${d.getDate()}/${d.getMonth() + 1}`;
}

function localInput(date) {
  const off = date.getTimezoneOffset() * 60000;
  return new Date(date.getTime() - off).toISOString().slice(0, 16);
}

function render(data) {
  const spanHours = (new Date(data.to) - new Date(data.from)) / 3600000;
  const hours = data.callsPerHour.map((p) => ({
    label: new Date(p.hour).toLocaleString(), shortLabel: hourLabel(p.hour, spanHours), values: [p.outbound, p.inbound],
  }));
  const totalCalls = data.callsPerHour.reduce((a, p) => a + p.outbound + p.inbound, 0);
  const o = data.ladderOutcomes;
  const outcomesTotal = o.accepted + o.rejected + o.noResponse + o.stopped;
  const responses = data.responseSeconds.map((b) => ({ label: b.le == null ? '> 5 min' : (BUCKETS[b.le] || `≤ ${b.le} s`), values: [b.count] }));
  const m = data.missedCalls;
  const v = data.voiceOrders;
  const c = data.campaigns;
  return [
    chartCard('Calls per hour', 'callsPerHour', [
      h('div', { class: 'totals' }, h('span', {}, h('b', {}, fmtNumber(totalCalls)), ' calls')),
      columnChart(hours, [{ name: 'Outbound' }, { name: 'Inbound' }], { name: 'callsPerHour', width: 1200, height: 240 }),
    ], true),
    chartCard('Ladder outcomes', 'ladderOutcomes', barList([
      { label: 'Accepted', value: o.accepted, total: outcomesTotal },
      { label: 'Rejected', value: o.rejected, total: outcomesTotal },
      { label: 'No response', value: o.noResponse, total: outcomesTotal },
      { label: 'Stopped', value: o.stopped, total: outcomesTotal },
    ], { name: 'ladderOutcomes' })),
    chartCard('Response time', 'responseSeconds', columnChart(responses, [{ name: 'Ladders' }], { name: 'responseSeconds', height: 180 })),
    chartCard('Channel success', 'channels', data.channels.length
      ? groupedBars(data.channels.map((ch) => ({ label: channelName(ch.channel), values: [ch.sent, ch.succeeded, ch.failed] })),
        [{ name: 'Sent' }, { name: 'Succeeded' }, { name: 'Failed' }], { name: 'channels' })
      : empty('No notification in this range.')),
    chartCard('Missed calls and callbacks', 'missedCalls', barList([
      { label: 'Missed calls', value: m.missed },
      { label: 'Called back', value: m.calledBack, total: m.missed || null },
      { label: 'Reached', value: m.reached, total: m.missed || null },
    ], { name: 'missedCalls' })),
    chartCard('Voice orders', 'voiceOrders', barList([
      { label: 'Sessions', value: v.sessions },
      { label: 'Confirmed', value: v.confirmed, total: v.sessions || null },
      { label: 'Ordered', value: v.ordered, total: v.sessions || null },
    ], { name: 'voiceOrders' })),
    chartCard('Campaign delivery', 'campaigns', barList([
      { label: 'Sent', value: c.sent },
      { label: 'Delivered', value: c.delivered, total: c.sent || null },
      { label: 'Failed', value: c.failed, total: c.sent || null },
      { label: 'Opted out', value: c.optedOut, total: c.sent || null },
    ], { name: 'campaigns' })),
  ];
}

export async function mount(root) {
  const charts = h('div', { class: 'charts', id: 'charts' });
  const span = h('span', { class: 'muted small', id: 'analytics-span' });
  const from = h('input', { type: 'datetime-local', id: 'range-from', 'aria-label': 'From' });
  const to = h('input', { type: 'datetime-local', id: 'range-to', 'aria-label': 'To' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const chips = Object.keys(RANGES).map((key) => h('button', {
    type: 'button', class: `chip${key === chosen ? ' on' : ''}`, dataset: { range: key },
    onclick: () => { chosen = key; chips.forEach((c) => c.classList.toggle('on', c.dataset.range === key)); load(); },
  }, key));
  const custom = h('span', { class: 'custom' }, from, '→', to, actionButton('Apply', async () => {
    chosen = 'custom';
    chips.forEach((c) => c.classList.remove('on'));
    await load();
  }, { name: 'apply' }));
  replace(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Analytics'), span),
    h('section', { class: 'card range' }, chips, custom),
    error,
    charts);
  const now = new Date();
  to.value = localInput(now);
  from.value = localInput(new Date(now.getTime() - 24 * 3600000));

  async function load() {
    let query;
    if (chosen === 'custom') {
      const f = new Date(from.value);
      const t = new Date(to.value);
      if (Number.isNaN(f.getTime()) || Number.isNaN(t.getTime())) {
        error.hidden = false;
        error.textContent = 'Choose both ends of the range.';
        return;
      }
      query = `from=${encodeURIComponent(f.toISOString())}&to=${encodeURIComponent(t.toISOString())}`;
    } else {
      const t = new Date();
      const f = new Date(t.getTime() - RANGES[chosen] * 3600000);
      query = `from=${encodeURIComponent(f.toISOString())}&to=${encodeURIComponent(t.toISOString())}`;
    }
    try {
      const data = await get(`/ops/analytics?${query}`);
      error.hidden = true;
      span.textContent = `${new Date(data.from).toLocaleString()} → ${new Date(data.to).toLocaleString()}`;
      replace(charts, render(data));
      root.dataset.loaded = 'true';
    } catch (e) {
      error.hidden = false;
      error.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    }
  }
  await load();
  return {};
}
