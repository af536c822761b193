// events.js: the live event log (backlog, then the SSE stream), newest first, filtered as you type.
import { h, clear } from '../dom.js';
import { events, onEvent } from '../live.js';

function summary(data) {
	if (data === null || data === undefined)
		return '';
	if (typeof data !== 'object')
		return String(data);
	return Object.entries(data).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
}

export function eventItem(ev) {
	const t = new Date(ev.time_ms || Date.now());
	return h('li', { testid: 'event-item', class: 'event ' + ev.type.split('.')[0], dataset: { type: ev.type, id: ev.id } },
		h('time', { datetime: t.toISOString(), text: t.toLocaleTimeString() }),
		h('span', { class: 'event-type', text: ev.type }),
		h('span', { class: 'event-data mono', text: summary(ev.data) }));
}

function matches(ev, filter) {
	if (!filter)
		return true;
	return (ev.type + ' ' + JSON.stringify(ev.data)).toLowerCase().includes(filter);
}

export function render(root, life) {
	const filter = h('input', { testid: 'events-filter', type: 'search', placeholder: 'Filter by type or content',
		'aria-label': 'Filter events' });
	const log = h('ol', { testid: 'events-log', class: 'event-list' });
	const count = h('span', { class: 'muted' });
	const draw = () => {
		const f = filter.value.trim().toLowerCase();
		const shown = events.items.filter(ev => matches(ev, f)).reverse();
		clear(log).append(...shown.map(eventItem));
		count.textContent = `${shown.length} of ${events.items.length} events` + (events.connected ? ', live' : '');
	};
	filter.addEventListener('input', draw);
	root.append(h('div', { class: 'page-head' }, h('h1', { text: 'Events' }), count),
		h('div', { class: 'card' }, filter, log));
	life.on(onEvent(ev => {
		const f = filter.value.trim().toLowerCase();
		if (matches(ev, f))
			log.prepend(eventItem(ev));
		count.textContent = `${log.children.length} of ${events.items.length} events, live`;
	}));
	draw();
}
