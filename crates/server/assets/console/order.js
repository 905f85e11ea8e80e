// One order's story: its ladders and steps, every timeline event (calls
// with their recordings, WhatsApp and push, voice-order transcripts) and
// its masking sessions. Live events of the order refresh it.

import { ApiError, get } from './api.js';
import { channelName, summarize } from './board.js';
import { badge, card, debounce, empty, fmtDuration, fmtTime, h, replace, table } from './ui.js';

function recordingOf(detail) {
  if (!detail || typeof detail !== 'object') return null;
  const url = detail.recording_url || detail.recordingUrl || detail.RecordingUrl;
  return typeof url === 'string' && /^https?:\/\//.test(url) ? url : null;
}

function transcriptOf(detail) {
  if (!detail || typeof detail !== 'object') return null;
  const t = detail.transcript || detail.text_heard || detail.heard;
  return typeof t === 'string' && t.trim() ? t : null;
}

function group(event) {
  const channel = event.channel || '';
  if (event.kind.startsWith('voice') || event.kind.startsWith('voicebot')) return 'voice';
  if (channel === 'call' || event.kind.startsWith('call') || event.kind.startsWith('exotel.call')) return 'call';
  return channel || event.kind.split('.')[0];
}

function eventRow(event) {
  const recording = recordingOf(event.detail);
  const transcript = transcriptOf(event.detail);
  const rest = summarize(event.detail);
  return h('li', { class: group(event), dataset: { kind: event.kind, eventId: event.id } },
    h('div', {},
      h('span', { class: 'kind' }, event.kind), ' ',
      h('span', { class: 'muted small' }, fmtTime(event.at)),
      event.channel ? [' · ', channelName(event.channel)] : null,
      event.party ? [' · ', event.party] : null,
      event.call_sid ? h('span', { class: 'muted small mono' }, ` · ${event.call_sid}`) : null),
    rest ? h('div', { class: 'detail' }, rest) : null,
    event.detail && event.detail.conversation_duration
      ? h('div', { class: 'detail' }, `talked ${fmtDuration(Number(event.detail.conversation_duration))}`) : null,
    recording ? h('div', {}, h('a', { href: recording, target: '_blank', rel: 'noopener noreferrer', class: 'recording' }, 'Recording')) : null,
    transcript ? h('div', { class: 'transcript', lang: event.detail.language || null }, `“${transcript}”`) : null);
}

function ladderBlock(ladder) {
  return h('div', { class: 'ladder', dataset: { escalationId: ladder.escalationId } },
    h('div', { class: 'ladder-head' },
      h('strong', {}, ladder.kind), badge(ladder.state), h('span', {}, ladder.party),
      h('span', { class: 'muted small mono' }, ladder.escalationId)),
    h('div', { class: 'ladder-meta' },
      h('span', {}, `started ${fmtTime(ladder.startedAt)}`),
      ladder.finishedAt ? h('span', {}, `finished ${fmtTime(ladder.finishedAt)}`) : null,
      ladder.stopAction ? h('span', {}, `stopped: ${ladder.stopAction} by ${ladder.stopActor || '—'}`) : null),
    h('ol', { class: 'steps' }, (ladder.steps || []).map((s) => h('li', { class: `step ${s.state}` },
      h('span', { class: 'dot' }),
      h('div', { class: 'what' }, h('strong', {}, channelName(s.channel)), badge(s.state),
        h('span', { class: 'muted small' }, fmtTime(s.dueAt)),
        s.attempts ? h('span', { class: 'muted small' }, `${s.attempts} attempt(s)`) : null)))));
}

function maskingBlock(masking) {
  if (!masking) return empty('No open masking session.');
  return table(['Pair', 'Masked number', 'Party A', 'Party B', 'Status', 'Expires'], masking.sessions.map((s) => [
    s.pair, h('span', { class: 'mono' }, s.maskedNumber),
    `${s.partyA.type} ${s.partyA.phone}`, `${s.partyB.type} ${s.partyB.phone}`, badge(s.status), fmtTime(s.expiresAt),
  ]));
}

export async function mount(root, ctx) {
  const id = ctx.params.id;
  async function load() {
    const timeline = await get(`/comms/timeline/${encodeURIComponent(id)}`);
    let masking = null;
    try {
      masking = await get(`/masking/session/${encodeURIComponent(id)}`);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
    const s = timeline.summary;
    replace(root,
      h('div', { class: 'page-head' }, h('h1', {}, `Order ${timeline.orderId}`),
        h('span', { class: 'muted small' }, (timeline.channels || []).map(channelName).join(' · '))),
      h('div', { class: 'grid' },
        card('Summary', h('dl', { class: 'kv' },
          h('dt', {}, 'Notifications sent'), h('dd', {}, s.totalNotifications),
          h('dt', {}, 'Failed notifications'), h('dd', {}, s.failedNotifications),
          h('dt', {}, 'Escalations'), h('dd', {}, `${s.escalationsTriggered} (${s.activeEscalations} active)`),
          h('dt', {}, 'Bridge calls'), h('dd', {}, s.bridgeCalls),
          h('dt', {}, 'Average response'), h('dd', {}, s.avgResponseTime == null ? '—' : fmtDuration(s.avgResponseTime)))),
        card('Masking sessions', maskingBlock(masking))),
      h('div', { class: 'grid' },
        card('Ladders', timeline.ladders.length ? h('div', { class: 'ladders' }, timeline.ladders.map(ladderBlock)) : empty('No ladder for this order.')),
        card('Timeline', timeline.events.length
          ? h('ol', { class: 'timeline', id: 'timeline' }, timeline.events.map(eventRow))
          : empty('Nothing has happened for this order yet.'))));
    root.dataset.loaded = 'true';
  }
  await load();
  const later = debounce(() => load().catch(() => {}), 300);
  return {
    onEvent(event) {
      if (event.order_id === id) later();
    },
  };
}
