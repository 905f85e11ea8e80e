// Charts drawn as inline SVG: vertical (optionally stacked) bars over time
// or buckets, and horizontal bars for counts. Each bar carries its value in
// `data-value` and a <title> for the tooltip.

import { h } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function niceMax(max) {
  if (max <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= max) return m * step;
  return 10 * step;
}

function legend(series) {
  return h('div', { class: 'legend' }, series.map((se, i) => h('span', { class: `s${(i % 6) + 1}` }, se.name)));
}

// `points`: [{label, values: [n per series]}]; `series`: [{name}].
// Stacked vertical bars; labels thinned to fit.
export function columnChart(points, series, { height = 200, width = 640, name } = {}) {
  const pad = { left: 36, right: 8, top: 10, bottom: 28 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const totals = points.map((p) => p.values.reduce((a, b) => a + b, 0));
  const max = niceMax(Math.max(0, ...totals));
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': name || 'chart', 'data-chart': name,
    preserveAspectRatio: 'xMidYMid meet',
  });
  for (const frac of [0, 0.5, 1]) {
    const y = pad.top + innerH * (1 - frac);
    svg.append(s('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: y, y2: y }));
    const tick = max * frac;
    svg.append(s('text', { x: pad.left - 4, y: y + 4, 'text-anchor': 'end' }, Number.isInteger(tick) ? tick : tick.toFixed(1)));
  }
  const slot = innerW / Math.max(points.length, 1);
  const barW = Math.max(1, slot * 0.78);
  const every = Math.max(1, Math.ceil(points.length / 8));
  points.forEach((p, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    let y = pad.top + innerH;
    p.values.forEach((v, j) => {
      if (!v) return;
      const bh = (v / max) * innerH;
      y -= bh;
      svg.append(
        s('rect', { class: `bar s${(j % 6) + 1}`, x, y, width: barW, height: Math.max(bh, 0.5), 'data-value': v },
          s('title', {}, `${p.label}: ${series[j].name} ${v}`)),
      );
    });
    if (i % every === 0) {
      svg.append(s('text', { x: x + barW / 2, y: height - 10, 'text-anchor': 'middle' }, p.shortLabel ?? p.label));
    }
  });
  return h('div', { class: 'chart' }, svg, series.length > 1 ? legend(series) : null);
}

// `items`: [{label, value, total?}] as horizontal bars; `total` (optional)
// draws the bar as a share of it and prints the percentage.
export function barList(items, { name } = {}) {
  const width = 640;
  const rowH = 26;
  const labelW = 150;
  const valueW = 90;
  const height = Math.max(rowH * items.length + 6, 30);
  const max = Math.max(1, ...items.map((i) => i.total ?? i.value));
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': name || 'chart', 'data-chart': name,
  });
  items.forEach((item, i) => {
    const y = 3 + i * rowH;
    const w = ((width - labelW - valueW) * item.value) / max;
    svg.append(s('text', { x: 0, y: y + 16 }, item.label));
    svg.append(s('rect', { class: 'axis', x: labelW, y: y + 4, width: width - labelW - valueW, height: rowH - 10, fill: '#f1f5f9' }));
    svg.append(
      s('rect', { class: `bar s${((item.series ?? i) % 6) + 1}`, x: labelW, y: y + 4, width: Math.max(w, item.value ? 1 : 0), height: rowH - 10, 'data-value': item.value },
        s('title', {}, `${item.label}: ${item.value}`)),
    );
    const pct = item.total ? ` (${Math.round((item.value * 100) / item.total)}%)` : '';
    svg.append(s('text', { class: 'value', x: width - valueW + 6, y: y + 16 }, `${item.value.toLocaleString()}${pct}`));
  });
  return h('div', { class: 'chart' }, svg);
}

// Grouped horizontal bars: for each group, one bar per series.
export function groupedBars(groups, series, { name } = {}) {
  const items = [];
  for (const g of groups) {
    g.values.forEach((v, j) => items.push({ label: j === 0 ? g.label : '', value: v, series: j }));
  }
  const chart = barList(items, { name });
  chart.append(legend(series));
  return chart;
}

export function progressBar(percent) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  const fill = h('span', {});
  // Through the CSSOM: the CSP allows no inline style attribute.
  fill.style.width = `${p}%`;
  return h('div', { class: 'progress', role: 'progressbar', 'aria-valuenow': p, 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill);
}
