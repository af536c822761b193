// live.js: what the UI follows while logged in: /stats every 2 s with a 5-minute history, and the event stream.
import { api, ApiError } from './api.js';

export const POLL_MS = 2000;
const HISTORY = 150;            // 5 minutes of 2 s samples
const EVENTS_KEPT = 500;

// ---- stats ----
export const stats = { last: null, history: [], error: null };
const statsSubs = new Set();
let statsTimer = null;

// ---- administrative state (secure, bypass, drop): polled with the stats, set at once after a change ----
export const admin = { state: null };
const adminSubs = new Set();

export function setAdminState(state) {
	admin.state = state;
	for (const fn of adminSubs)
		fn(admin.state);
}

export function onAdminState(fn) {
	adminSubs.add(fn);
	if (admin.state)
		fn(admin.state);
	return () => adminSubs.delete(fn);
}

async function pollAdminState() {
	try {
		setAdminState((await api('GET', '/admin-state')).state);
	} catch {
		// an older bitwd has none; a 401 is seen by the stats poll
	}
}

async function pollStats() {
	pollAdminState();
	try {
		const s = await api('GET', '/stats');
		stats.last = s;
		stats.error = null;
		stats.history.push({ t: performance.now(), s });
		if (stats.history.length > HISTORY)
			stats.history.shift();
	} catch (e) {
		stats.error = e;
	}
	for (const fn of statsSubs)
		fn(stats);
}

export function onStats(fn) {
	statsSubs.add(fn);
	if (stats.last || stats.error)
		fn(stats);
	return () => statsSubs.delete(fn);
}

// ---- events (Server-Sent Events read with fetch, so every type arrives and a 401 is seen) ----
export const events = { items: [], lastId: 0, connected: false };
const eventSubs = new Set();
let streamAbort = null, retryTimer = null;

function publish(ev) {
	events.items.push(ev);
	if (events.items.length > EVENTS_KEPT)
		events.items.shift();
	if (ev.id)
		events.lastId = Math.max(events.lastId, ev.id);
	for (const fn of eventSubs)
		fn(ev);
}

export function onEvent(fn) {
	eventSubs.add(fn);
	return () => eventSubs.delete(fn);
}

async function loadBacklog() {
	const head = await api('GET', '/events/backlog?limit=1');
	const after = Math.max(0, (head.last_id || 0) - 100);
	const page = await api('GET', `/events/backlog?after=${after}&limit=100`);
	for (const it of page.items || [])
		publish({ id: it.id, type: it.type, time_ms: it.time_ms, data: it.data });
	events.lastId = Math.max(events.lastId, page.last_id || 0);
}

// One SSE message block: "id:", "event:", "data:" lines.
function parseBlock(block) {
	let id = 0, type = 'message';
	const data = [];
	for (const line of block.split('\n')) {
		if (line.startsWith(':'))
			continue;
		const i = line.indexOf(':');
		const field = i < 0 ? line : line.slice(0, i);
		const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
		if (field === 'id')
			id = Number(value) || 0;
		else if (field === 'event')
			type = value;
		else if (field === 'data')
			data.push(value);
	}
	if (!data.length)
		return null;
	let parsed;
	try {
		parsed = JSON.parse(data.join('\n'));
	} catch {
		parsed = data.join('\n');
	}
	return { id, type, time_ms: Date.now(), data: parsed };
}

async function stream() {
	streamAbort = new AbortController();
	const res = await fetch(`/api/v1/events?after=${events.lastId}`, {
		credentials: 'same-origin', cache: 'no-store', signal: streamAbort.signal,
		headers: { Accept: 'text/event-stream' },
	});
	if (!res.ok) {
		// the poller notices an expired session and says so; here we only stop
		throw new ApiError(res.status, null);
	}
	events.connected = true;
	const reader = res.body.getReader();
	const dec = new TextDecoder();
	let buf = '';
	for (;;) {
		const { value, done } = await reader.read();
		if (done)
			break;
		buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
		let cut;
		while ((cut = buf.indexOf('\n\n')) >= 0) {
			const ev = parseBlock(buf.slice(0, cut));
			buf = buf.slice(cut + 2);
			if (ev && (!ev.id || ev.id > events.lastId))
				publish(ev);
		}
	}
}

async function follow() {
	try {
		await stream();
	} catch (e) {
		if (e && e.name === 'AbortError')
			return;
		if (e instanceof ApiError && e.status === 401)
			return;
	}
	events.connected = false;
	if (streamAbort && !streamAbort.signal.aborted)
		retryTimer = setTimeout(follow, 3000);
}

// ---- life cycle: started after login, stopped at logout or expiry ----
export async function startLive() {
	stopLive();
	stats.history = [];
	stats.last = null;
	admin.state = null;
	events.items = [];
	events.lastId = 0;
	statsTimer = setInterval(pollStats, POLL_MS);
	pollStats();
	try {
		await loadBacklog();
	} catch {
		// the stream below starts from the beginning instead
	}
	follow();
}

export function stopLive() {
	clearInterval(statsTimer);
	clearTimeout(retryTimer);
	statsTimer = retryTimer = null;
	if (streamAbort)
		streamAbort.abort();
	streamAbort = null;
	events.connected = false;
}
