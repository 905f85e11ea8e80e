// The service's API as the console uses it: same-origin fetch with the
// session cookie, the CSRF token on every request that changes something,
// and the live event feed.

let csrfToken = null;
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    const message = body && body.error && body.error.message ? body.error.message : `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
    this.field = body && body.error ? body.error.field : null;
  }
}

export function setCsrf(token) {
  csrfToken = token;
}

export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

// `body`: an object (sent as JSON), or `{raw, type}` sent as is.
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  let payload;
  if (body !== undefined && body !== null) {
    if (body.raw !== undefined) {
      headers['Content-Type'] = body.type;
      payload = body.raw;
    } else {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
  }
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/console/')) onUnauthorized();
    throw new ApiError(res.status, data);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});

// The console's session.
export async function login(apiKey) {
  const answer = await api('POST', '/console/login', { apiKey });
  setCsrf(answer.csrfToken);
  return answer;
}

export async function session() {
  try {
    const answer = await api('GET', '/console/session');
    setCsrf(answer.csrfToken);
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return false;
    throw e;
  }
}

export async function logout() {
  await api('POST', '/console/logout', {});
  setCsrf(null);
}

// The live event feed: every timeline event (the items of
// `GET /comms/events`) passed to `onEvent`, oldest first. It listens to
// the server-sent events of `/comms/events/stream`; where that stream is
// not served, it polls `GET /comms/events?after=` instead. `onState` hears
// 'on' (streaming), 'polling', 'connecting' or 'off'.
// How many recent events the live feed replays when it first connects.
const HISTORY = 200;

export function liveFeed(onEvent, onState) {
  let stopped = false;
  let after = null;
  let source = null;
  let pollTimer = null;
  // Ids, not a high-water mark: on PostgreSQL the stream delivers an event
  // whose transaction committed late after a higher id (see docs/comms.md).
  const delivered = new Set();
  const seen = (event) => {
    if (delivered.has(event.id)) return;
    delivered.add(event.id);
    if (delivered.size > 5000) delivered.delete(delivered.values().next().value);
    after = after === null ? event.id : Math.max(after, event.id);
    onEvent(event);
  };

  function stream() {
    if (typeof EventSource === 'undefined') return poll();
    onState('connecting');
    let opened = false;
    // The first connection replays the newest events (the board's recent
    // answers and alerts); EventSource resumes by itself with Last-Event-ID.
    const url = after === null ? `/comms/events/stream?tail=${HISTORY}` : `/comms/events/stream?after=${after}`;
    source = new EventSource(url, { withCredentials: true });
    source.onopen = () => {
      opened = true;
      onState('on');
    };
    source.addEventListener('timeline', (message) => {
      try {
        seen(JSON.parse(message.data));
      } catch (e) {
        console.warn('unreadable event', e);
      }
    });
    source.onerror = () => {
      if (stopped) return;
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        if (!opened) {
          // Refused at once (no such route, or no session): poll, which
          // tells the two apart.
          poll();
        } else {
          onState('connecting');
          setTimeout(() => !stopped && stream(), 3000);
        }
      } else {
        onState('connecting');
      }
    };
  }

  async function poll() {
    onState('polling');
    try {
      if (after === null) after = await newestEventId();
      for (;;) {
        const page = await get(`/comms/events?after=${after}&limit=500`);
        page.events.forEach(seen);
        after = Math.max(after, page.next);
        if (page.events.length < 500) break;
      }
      onState('polling');
    } catch (e) {
      onState('off');
      if (e instanceof ApiError && e.status === 401) return;
    }
    if (!stopped) pollTimer = setTimeout(poll, 2000);
  }

  stream();
  return () => {
    stopped = true;
    if (source) source.close();
    if (pollTimer) clearTimeout(pollTimer);
  };
}

// The id of the newest event: the feed pages forward from a cursor, so
// this walks to its end (once, when polling starts).
async function newestEventId() {
  let after = 0;
  for (;;) {
    const page = await get(`/comms/events?after=${after}&limit=1000`);
    after = page.next;
    if (page.events.length < 1000) return after;
  }
}
