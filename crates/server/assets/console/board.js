// The live board: active ladders with their steps and a countdown to the
// next one (Stop, Escalate now), calls in progress, recent answers and
// admin alerts. Live events refresh it (debounced), without a reload.

import { get, post } from './api.js';
import {
  actionButton, badge, card, countdown, debounce, empty, fmtAgo, fmtTime, h, replace, toast,
} from './ui.js';

const CHANNEL_NAMES = {
  app_push: 'App push', push: 'App push', whatsapp: 'WhatsApp', ring: 'Ring', ivr: 'IVR call', admin: 'Admin alert',
  sms: 'SMS', deadline: 'Deadline', call: 'Call',
};

export function channelName(channel) {
  return CHANNEL_NAMES[channel] || channel || '—';
}

function orderLink(id) {
  return id ? h('a', { href: `#/order/${encodeURIComponent(id)}`, class: 'order' }, id) : h('span', { class: 'muted' }, 'no order');
}

export function summarize(detail) {
  if (!detail || typeof detail !== 'object') return detail ? String(detail) : '';
  const parts = [];
  for (const key of ['digits', 'key', 'digit', 'action', 'answer', 'text', 'body', 'status', 'reason', 'error', 'message', 'purpose']) {
    const v = detail[key];
    if (v !== undefined && v !== null && v !== '' && typeof v !== 'object') parts.push(`${key}: ${v}`);
  }
  return parts.slice(0, 3).join(' · ');
}

function ladderCard(ladder, refresh) {
  const next = ladder.steps.find((s) => s.state === 'pending');
  const stop = actionButton('Stop', async () => {
    const answer = await post('/comms/stop', { escalation_id: ladder.escalationId, action: 'cancel', actor: 'console' });
    toast(answer.stopped ? `Stopped ${ladder.escalationId}` : answer.message);
    refresh();
  }, { cls: 'danger', confirm: 'Confirm stop', name: 'stop' });
  const escalate = actionButton('Escalate now', async () => {
    const answer = await post(`/comms/escalations/${encodeURIComponent(ladder.escalationId)}/escalate`);
    toast(`Step ${answer.stepIndex + 1} runs now`);
    refresh();
  }, { name: 'escalate', title: 'Run the next pending step now' });
  if (!next) escalate.disabled = true;
  return h('article', { class: 'ladder', dataset: { escalationId: ladder.escalationId, orderId: ladder.orderId || '' } },
    h('div', { class: 'ladder-head' },
      orderLink(ladder.orderId),
      h('span', {}, ladder.party),
      ladder.partyName ? h('span', { class: 'muted' }, ladder.partyName) : null,
      badge(ladder.kind, 'info'),
      badge(ladder.language, ''),
      h('span', { class: 'muted small' }, `started ${fmtAgo(ladder.startedAt)}`)),
    h('div', { class: 'ladder-meta' },
      ladder.nextStepAt
        ? h('span', {}, 'Next step ', countdown(ladder.nextStepAt))
        : h('span', { class: 'muted' }, 'No step left to run'),
      h('span', { class: 'actions' }, escalate, stop)),
    h('ol', { class: 'steps' }, ladder.steps.map((step) => h('li', {
      class: `step ${step.state}${next && step.index === next.index ? ' next' : ''}`,
      dataset: { channel: step.channel, state: step.state },
    },
    h('span', { class: 'dot' }),
    h('div', {},
      h('div', { class: 'what' },
        h('strong', {}, channelName(step.channel)), badge(step.state), h('span', { class: 'muted small' }, fmtTime(step.dueAt))),
      step.prompt ? h('div', { class: 'prompt', lang: ladder.language }, step.prompt) : null)))));
}

function eventItem(event) {
  return h('li', { dataset: { eventId: event.id, kind: event.kind } },
    h('div', { class: 'when' }, `${fmtTime(event.at)} · ${event.kind}`),
    h('div', {}, orderLink(event.order_id), event.party ? ` · ${event.party}` : '', event.channel ? ` · ${channelName(event.channel)}` : ''),
    summarize(event.detail) ? h('div', { class: 'muted small' }, summarize(event.detail)) : null);
}

function unavailable(e, what) {
  if (e.status === 404) return empty(`${what} is not available on this server yet (${e.message}).`);
  return h('p', { class: 'error' }, `${what} could not load: ${e.message}`);
}

export async function mount(root, ctx) {
  const ladders = h('div', { class: 'ladders', id: 'ladders' });
  const ladderCount = h('span', { class: 'count' });
  const calls = h('div', { id: 'calls' });
  const answers = h('ul', { class: 'feed', id: 'answers' });
  const alerts = h('ul', { class: 'feed', id: 'alerts' });
  const updated = h('span', { class: 'muted small', id: 'board-updated' });

  replace(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Live board'), updated,
      h('div', { class: 'actions' }, actionButton('Refresh', () => refresh(), { name: 'refresh' }))),
    h('div', { class: 'board' },
      h('section', { class: 'card' }, h('h2', {}, 'Active ladders ', ladderCount), ladders),
      h('div', { class: 'side' },
        card('Calls in progress', calls),
        card('Recent answers', answers),
        card('Admin alerts', alerts))));

  function renderFeeds() {
    replace(answers, ctx.recent.answers.length
      ? ctx.recent.answers.slice(0, 20).map(eventItem)
      : empty('No recent answers.'));
    replace(alerts, ctx.recent.alerts.length
      ? ctx.recent.alerts.slice(0, 20).map(eventItem)
      : empty('No recent admin alerts.'));
  }

  let generation = 0;
  async function refresh() {
    const mine = ++generation;
    const [l, c] = await Promise.allSettled([get('/ops/ladders/active?limit=200'), get('/ops/calls/active')]);
    if (mine !== generation) return;
    if (l.status === 'fulfilled') {
      ladderCount.textContent = String(l.value.ladders.length);
      replace(ladders, l.value.ladders.length
        ? l.value.ladders.map((ladder) => ladderCard(ladder, refresh))
        : empty('No ladder is running.'));
    } else {
      replace(ladders, unavailable(l.reason, 'The ladder list'));
    }
    if (c.status === 'fulfilled') {
      replace(calls, c.value.calls.length
        ? h('ul', { class: 'feed' }, c.value.calls.map((call) => h('li', { dataset: { callId: call.id } },
          h('div', { class: 'when' }, `${call.purpose} · started ${fmtAgo(call.startedAt)}`),
          h('div', {}, orderLink(call.orderId), call.party ? ` · ${call.party}` : '', ' · ',
            h('span', { class: 'mono' }, call.to), ' ', badge(call.state)))))
        : empty('No call in progress.'));
    } else {
      replace(calls, unavailable(c.reason, 'The call list'));
    }
    updated.textContent = `updated ${fmtTime(new Date().toISOString())}`;
    root.dataset.loaded = 'true';
  }

  const later = debounce(refresh, 250);
  renderFeeds();
  await refresh();
  return {
    onEvent(event) {
      if (ctx.isAnswer(event) || ctx.isAdminAlert(event)) renderFeeds();
      later();
    },
  };
}
