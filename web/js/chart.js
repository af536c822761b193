// chart.js: a small SVG line chart (no library): series of [seconds ago, value] over a fixed window.
import { h, clear } from './dom.js';

const W = 640, H = 200, PAD_L = 64, PAD_R = 8, PAD_T = 10, PAD_B = 22;

function niceMax(v) {
	if (v <= 0)
		return 1;
	const p = Math.pow(10, Math.floor(Math.log10(v)));
	for (const m of [1, 2, 5, 10])
		if (v <= m * p)
			return m * p;
	return 10 * p;
}

// series: [{label, points: [[ageSeconds, value], ...]}]; window in seconds; fmt(value) for the axis.
export function drawChart(el, series, windowS, fmt, floor = 1) {
	const max = niceMax(Math.max(floor, ...series.flatMap(s => s.points.map(p => p[1]))));
	const x = age => PAD_L + (1 - age / windowS) * (W - PAD_L - PAD_R);
	const y = v => PAD_T + (1 - v / max) * (H - PAD_T - PAD_B);
	const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
		'aria-label': series.map(s => s.label).join(', ') || 'no data' });
	for (const f of [0, 0.5, 1]) {
		svg.append(h('svg:line', { x1: PAD_L, x2: W - PAD_R, y1: y(max * f), y2: y(max * f), class: 'grid' }));
		svg.append(h('svg:text', { x: PAD_L - 6, y: y(max * f) + 4, class: 'axis', 'text-anchor': 'end',
			text: fmt(max * f) }));
	}
	for (const m of [0, windowS / 2, windowS])
		svg.append(h('svg:text', { x: x(m), y: H - 6, class: 'axis', 'text-anchor': m === 0 ? 'end' : m === windowS ? 'start' : 'middle',
			text: m === 0 ? 'now' : `-${Math.round(m / 60 * 10) / 10} min` }));
	series.forEach((s, i) => {
		if (s.points.length < 2)
			return;
		const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
		svg.append(h('svg:path', { d, class: `line s${i % 8}` }));
	});
	const legend = h('ul', { class: 'legend' }, series.map((s, i) => h('li', null,
		h('span', { class: `swatch s${i % 8}` }), `${s.label}: ${fmt(s.points.length ? s.points[s.points.length - 1][1] : 0)}`)));
	clear(el).append(svg, series.length ? legend : h('p', { class: 'muted', text: 'No data yet.' }));
}
