// ike.js: IKE peers, IKE SAs and certificates, once bitwd has the IKE resources; until then says so.
import { api, getOptional, change, readonly, errorText } from '../api.js';
import { h, clear, table, card, toast } from '../dom.js';

export function render(root, life) {
	const body = h('div');
	root.append(h('div', { class: 'page-head' }, h('h1', { text: 'IKE' })), body);
	load(body, life);
}

async function load(body, life) {
	let peers;
	try {
		peers = await getOptional('/peers');
	} catch (e) {
		body.append(h('p', { class: 'form-error', text: errorText(e) }));
		return;
	}
	if (!life.alive)
		return;
	if (peers === null) {
		body.append(card(null, h('p', { testid: 'ike-unavailable', class: 'muted',
			text: 'IKE not available: this bitwd has no IKE resources yet. Manual SAs work meanwhile (SAs page).' })));
		return;
	}
	const ro = readonly();
	const [sas, certs] = await Promise.all([getOptional('/ike-sas'), getOptional('/certificates')]).catch(() => [null, null]);
	const text = v => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
	body.append(
		card('Peers', table('peer-table', ['Name', 'Remote', 'Auth', 'Proposals'], (peers.items || []).map(p =>
			h('tr', { testid: 'peer-row', dataset: { name: p.name, id: p.id } },
				h('td', { text: p.name }), h('td', { class: 'mono', text: text(p.remote || p.address) }),
				h('td', { text: text(p.auth) }), h('td', { class: 'mono', text: text(p.proposals) }))), 'No peers.')),
		card('IKE SAs', table('ike-sa-table', ['Peer', 'State', 'SPIs', ''], ((sas && sas.items) || []).map(s =>
			h('tr', { testid: 'ike-sa-row', dataset: { id: s.id, name: s.peer } },
				h('td', { text: text(s.peer) }), h('td', { text: text(s.state) }), h('td', { class: 'mono', text: text(s.spi_i || s.spis) }),
				h('td', { class: 'row-actions' },
					h('button', { testid: 'ike-sa-rekey', class: 'secondary small', disabled: ro, text: 'Rekey',
						onclick: () => act('POST', `/ike-sas/${s.id}/rekey`) }),
					h('button', { testid: 'ike-sa-terminate', class: 'danger small', disabled: ro, text: 'Terminate',
						onclick: () => act('DELETE', `/ike-sas/${s.id}`) })))), 'No IKE SAs.')),
		card('Certificates', table('cert-table', ['Name', 'Subject', 'Expires'], ((certs && certs.items) || []).map(c =>
			h('tr', { testid: 'cert-row', dataset: { id: c.id, name: c.name } },
				h('td', { text: text(c.name) }), h('td', { text: text(c.subject) }), h('td', { text: text(c.not_after) }))),
			'No certificates.')));
}

async function act(method, path) {
	try {
		await change(method, path);
		toast('Done.');
	} catch (e) {
		toast(errorText(e), 'error');
	}
}
