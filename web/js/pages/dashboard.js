// dashboard.js: both ports, live throughput per port and per SA, counts, drops by reason, the latest events.
import { api, getOptional, errorText } from '../api.js';
import { h, clear, table, card, num, bytes, rate, when } from '../dom.js';
import { drawChart } from '../chart.js';
import { onStats, onEvent, events } from '../live.js';
import { eventItem } from './events.js';
import { control as adminStateControl } from '../adminstate.js';

const WINDOW_S = 300;
const ROLES = ['red', 'black'];

// Per-second rates between consecutive samples: [[ageSeconds, value], ...].
function rates(history, pick, scale) {
	const now = performance.now(), out = [];
	for (let i = 1; i < history.length; i++) {
		const a = pick(history[i - 1].s), b = pick(history[i].s);
		const dt = (history[i].t - history[i - 1].t) / 1000;
		if (a === undefined || b === undefined || dt <= 0 || b < a)
			continue;
		out.push([(now - history[i].t) / 1000, (b - a) * scale / dt]);
	}
	return out;
}

function portCard(role) {
	const v = testid => h('dd', { testid, class: 'num', text: '-' });
	return h('section', { testid: `port-${role}`, class: `card port ${role}` },
		h('h2', null, role === 'red' ? 'Red port (protected side)' : 'Black port (network side)',
			h('span', { testid: 'port-link', class: 'link-state', text: 'unknown' })),
		h('p', { class: 'mono muted' }, h('span', { class: 'port-if', text: '' }), ' ',
			h('span', { testid: 'port-addresses', text: '' })),
		h('dl', { class: 'counters' },
			h('dt', { text: 'Packets in' }), v('port-rx-packets'),
			h('dt', { text: 'Packets out' }), v('port-tx-packets'),
			h('dt', { text: 'Bytes in' }), v('port-rx-bytes'),
			h('dt', { text: 'Bytes out' }), v('port-tx-bytes')));
}

export function render(root, life) {
	const ports = Object.fromEntries(ROLES.map(r => [r, portCard(r)]));
	const count = (testid, label) => h('div', { class: 'stat' }, h('div', { testid, class: 'stat-value', text: '-' }),
		h('div', { class: 'stat-label', text: label }));
	const chartPorts = h('div', { testid: 'chart-throughput', class: 'chart-box' });
	const chartSas = h('div', { testid: 'chart-sa', class: 'chart-box' });
	const drops = h('div');
	const latest = h('ul', { testid: 'events-latest', class: 'event-list' });
	const status = h('p', { class: 'muted' });

	root.append(
		h('div', { class: 'page-head' }, h('h1', { text: 'Dashboard' }), status),
		adminStateControl(life),
		h('div', { class: 'stats-row' }, count('count-policies', 'Policies'), count('count-sas', 'SAs'),
			count('count-ike-sas', 'IKE SAs')),
		h('div', { class: 'grid2' }, ports.red, ports.black),
		h('div', { class: 'grid2' },
			card('Throughput per port (bits/s, last 5 minutes)', chartPorts),
			card('Throughput per SA (bits/s, last 5 minutes)', chartSas)),
		h('div', { class: 'grid2' }, card('Drops by reason', drops), card('Latest events', latest)));

	const set = (el, sel, text) => {
		el.querySelector(`[data-testid="${sel}"]`).textContent = text;
	};

	function update(st) {
		const s = st.last;
		if (st.error && !s) {
			status.textContent = errorText(st.error);
			return;
		}
		if (!s)
			return;
		status.textContent = s.wire === 'up' ? `bitw-wire up; bitwd up ${s.bitwd.uptime_s} s` :
			'bitw-wire is not connected: no live counters.';
		for (const role of ROLES) {
			const p = s.ports && s.ports[role];
			const c = ports[role];
			const link = c.querySelector('[data-testid="port-link"]');
			link.textContent = p ? (p.link ? 'up' : 'down') : 'unknown';
			link.className = 'link-state ' + link.textContent;
			for (const k of ['rx_packets', 'tx_packets', 'rx_bytes', 'tx_bytes']) {
				const el = c.querySelector(`[data-testid="port-${k.replace('_', '-')}"]`);
				el.textContent = p ? num(p[k] || 0) : '-';
				el.title = k.endsWith('bytes') && p ? bytes(p[k]) : '';
			}
			if (p)
				c.querySelector('.port-if').textContent = `${p.interface || ''} ${p.mac || ''} MTU ${p.mtu || '-'}`;
		}
		if (s.wire === 'up')
			set(root, 'count-sas', String((s.sas || []).length));
		const series = [];
		for (const role of ROLES)
			for (const [k, label] of [['rx_bytes', 'in'], ['tx_bytes', 'out']])
				series.push({ label: `${role} ${label}`,
					points: rates(st.history, x => x.ports && x.ports[role] && x.ports[role][k], 8) });
		drawChart(chartPorts, series, WINDOW_S, rate, 1000);
		const saKeys = [...new Set(st.history.flatMap(x => (x.s.sas || []).map(a => `${a.spi}/${a.direction}`)))];
		drawChart(chartSas, saKeys.slice(0, 8).map(k => ({
			label: `SPI ${k.replace('/', ' ')}`,
			points: rates(st.history, x => {
				const a = (x.sas || []).find(a => `${a.spi}/${a.direction}` === k);
				return a && a.bytes;
			}, 8),
		})), WINDOW_S, rate, 1000);
		const reasons = Object.entries(s.drops || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
		clear(drops).append(table('drops-table', ['Reason', 'Packets'], reasons.map(([r, n]) =>
			h('tr', { testid: 'drop-row', dataset: { reason: r } }, h('td', { class: 'mono', text: r }),
				h('td', { testid: 'drop-count', class: 'num', text: n }))), 'No drops.'));
	}

	let ikeMissing = false;   // asked once per visit: a bitwd without IKE keeps answering 404
	async function counts() {
		try {
			const [pol, sas, ike] = await Promise.all([api('GET', '/policies?limit=1'), api('GET', '/sas?limit=1'),
				ikeMissing ? null : getOptional('/ike-sas?limit=1')]);
			ikeMissing = !ike;
			if (!life.alive)
				return;
			set(root, 'count-policies', String(pol.total));
			const wireUp = document.querySelector('[data-testid="wire-state"]').textContent === 'up';
			if (!wireUp)
				set(root, 'count-sas', String(sas.total));
			set(root, 'count-ike-sas', ike ? String(ike.total !== undefined ? ike.total : (ike.items || []).length) : '-');
		} catch {
			// the stats poller reports trouble
		}
	}

	async function addresses() {
		try {
			const p = await api('GET', '/ports');
			for (const role of ROLES)
				set(ports[role], 'port-addresses', ((p[role] && p[role].addresses) || []).join(', '));
		} catch {
			// shown as empty
		}
	}

	function showEvents() {
		clear(latest).append(...events.items.slice(-10).reverse().map(eventItem));
		if (!events.items.length)
			latest.append(h('li', { class: 'muted', text: 'No events yet.' }));
	}

	life.on(onStats(update));
	life.on(onEvent(showEvents));
	life.every(2000, counts);
	counts();
	addresses();
	showEvents();
}
