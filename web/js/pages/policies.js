// policies.js: the SPD in evaluation order with live counters; create, edit, delete, move up/down.
import { api, change, getOptional, readonly, errorText, schemaProps } from '../api.js';
import { h, clear, table, card, toast, num, bytes } from '../dom.js';
import { field, formError, clearErrors, validate, showProblem, checkAddress, checkPort, checkProtocol, checkName,
	isIP, PROTOCOLS } from '../form.js';
import { onStats } from '../live.js';
import { advancedSpecs, advancedSection, flagsText, modeOptions, modeHelp, typeText, SA_TYPES, CLONES }
	from './policyopts.js';

const SELECTOR_HELP = 'any, any6, an address, a prefix (198.18.1.0/24 or a/255.255.255.0) or a range a-b';

export function render(root, life) {
	const ro = readonly();
	const list = h('div');
	const formSlot = h('div');
	let policies = [], props = {}, specs = [];

	async function load() {
		try {
			props = await schemaProps('Policy');
			specs = advancedSpecs(props);
			const page = await api('GET', '/policies?limit=1000');
			if (!life.alive)
				return;
			policies = page.items || [];
			draw();
		} catch (e) {
			clear(list).append(h('p', { class: 'form-error', text: errorText(e) }));
		}
	}

	function draw() {
		const rows = policies.map((p, i) => {
			const prev = policies[i - 1], next = policies[i + 1];
			return h('tr', { testid: 'policy-row', dataset: { name: p.name, id: p.id } },
				h('td', { class: 'num', text: i + 1 }),
				h('td', { class: 'strong', text: p.name }),
				h('td', { testid: 'policy-priority', class: 'num', text: p.priority }),
				h('td', null, h('span', { testid: 'policy-action', class: 'tag ' + p.action, text: p.action })),
				h('td', { text: p.direction }),
				h('td', { testid: 'policy-src', class: 'mono', text: p.src }),
				h('td', { testid: 'policy-dst', class: 'mono', text: p.dst }),
				h('td', { class: 'mono', text: protoText(p) }),
				h('td', { class: 'flags' }, p.action === 'protect' ? [
					h('span', { testid: 'policy-mode', class: 'tag mode', text: p.mode || 'tunnel' }), ' ',
					h('span', { testid: 'policy-flags', class: 'muted',
						text: [...typeText(p), ...flagsText(p, specs)].join(' · ') })] : null),
				h('td', { class: 'mono', text: (p.peer || '') + (p.ike_peer ? ` (IKE ${p.ike_peer})` : '') }),
				h('td', { testid: 'policy-packets', class: 'num', text: '0' }),
				h('td', { testid: 'policy-bytes', class: 'num', text: '0' }),
				h('td', { class: 'row-actions' },
					h('button', { testid: 'policy-up', class: 'icon', title: 'Evaluate earlier', 'aria-label': 'Move up',
						disabled: ro || !prev || prev.priority !== p.priority, onclick: () => move(i, -1), text: '▲' }),
					h('button', { testid: 'policy-down', class: 'icon', title: 'Evaluate later', 'aria-label': 'Move down',
						disabled: ro || !next || next.priority !== p.priority, onclick: () => move(i, 1), text: '▼' }),
					h('button', { testid: 'policy-edit', class: 'secondary small', disabled: ro, onclick: () => openForm(p),
						text: 'Edit' }),
					h('button', { testid: 'policy-delete', class: 'danger small', disabled: ro, onclick: () => remove(p),
						text: 'Delete' })));
		});
		clear(list).append(table('policy-table',
			['#', 'Name', 'Prio', 'Action', 'Dir', 'Source', 'Destination', 'Proto/ports', 'Mode/options', 'Peer', 'Packets', 'Bytes', ''],
			rows, 'No policies: every packet gets the default action.'));
		counters(lastStats);
	}

	let lastStats = null;
	function counters(s) {
		lastStats = s;
		const byId = new Map(((s && s.last && s.last.policies) || []).map(p => [String(p.id), p]));
		for (const row of list.querySelectorAll('[data-testid="policy-row"]')) {
			const c = byId.get(row.dataset.id);
			const pk = c ? (c.out_packets || 0) + (c.in_packets || 0) : 0;
			const by = c ? (c.out_bytes || 0) + (c.in_bytes || 0) : 0;
			row.querySelector('[data-testid="policy-packets"]').textContent = String(pk);
			const b = row.querySelector('[data-testid="policy-bytes"]');
			b.textContent = String(by);
			b.title = bytes(by);
		}
	}

	async function move(i, delta) {
		const ids = policies.map(p => p.id);
		[ids[i], ids[i + delta]] = [ids[i + delta], ids[i]];
		try {
			await change('POST', '/policies/reorder', { ids });
		} catch (e) {
			toast(errorText(e), 'error');
		}
		load();
	}

	async function remove(p) {
		try {
			await change('DELETE', `/policies/${p.id}`);
			toast(`Policy ${p.name} deleted.`);
		} catch (e) {
			toast(errorText(e), 'error');
		}
		load();
	}

	async function openForm(p) {
		let ikePeers = null;   // null: this bitwd has no IKE, so the form offers no IKE fields
		try {
			const page = await getOptional('/peers?limit=1000');
			ikePeers = page ? page.items || [] : null;
		} catch {
			// offered without IKE fields
		}
		clear(formSlot).append(policyForm(p, ikePeers, props, () => clear(formSlot), () => {
			clear(formSlot);
			load();
		}));
		formSlot.querySelector('input, select').focus();
	}

	root.append(
		h('div', { class: 'page-head' },
			h('h1', { text: 'Policies' }),
			h('button', { testid: 'policy-new', disabled: ro, onclick: () => openForm(null), text: 'New policy' })),
		h('p', { class: 'muted', text: 'Evaluated top to bottom: by priority (1 first), then by order. The first ' +
			'matching policy decides; packets matching none get the default action (Settings → Options).' }),
		formSlot, card(null, list));
	life.on(onStats(counters));
	load();
}

function protoText(p) {
	const proto = String(p.protocol);
	const ports = p.src_port !== 'any' || p.dst_port !== 'any' ? ` ${p.src_port} → ${p.dst_port}` : '';
	return proto + ports;
}

function policyForm(p, ikePeers, props, onCancel, onSaved) {
	const v = p || { priority: 4, action: 'protect', direction: 'both', src: 'any', dst: 'any', src_port: 'any',
		dst_port: 'any', protocol: 'any', mode: 'tunnel', peer: '', mss_clamp: true };
	const f = spec => field('policy', spec);
	const rows = {
		name: f({ name: 'name', label: 'Name', value: v.name, check: checkName, help: 'unique; letters, digits, _ . : -' }),
		priority: f({ name: 'priority', label: 'Priority', type: 'select', options: [1, 2, 3, 4, 5, 6, 7].map(String),
			value: v.priority, help: '1 is evaluated first' }),
		action: f({ name: 'action', label: 'Action', type: 'select', options: ['protect', 'bypass', 'discard'],
			value: v.action }),
		direction: f({ name: 'direction', label: 'Direction', type: 'select', options: [['both', 'both'],
			['out', 'out (red → black)'], ['in', 'in (black → red)']], value: v.direction }),
		src: f({ name: 'src', label: 'Source', value: v.src, check: checkAddress, help: SELECTOR_HELP }),
		dst: f({ name: 'dst', label: 'Destination', value: v.dst, check: checkAddress, help: SELECTOR_HELP }),
		protocol: f({ name: 'protocol', label: 'Protocol', value: v.protocol, list: 'policy-protocols',
			check: checkProtocol, help: 'any, tcp, udp, icmp, icmp6, sctp or a number' }),
		src_port: f({ name: 'src_port', label: 'Source port', value: v.src_port, check: checkPort,
			help: 'any, a port or lo-hi (ICMP: the type)' }),
		dst_port: f({ name: 'dst_port', label: 'Destination port', value: v.dst_port, check: checkPort,
			help: 'any, a port or lo-hi (ICMP: the code)' }),
		peer: f({ name: 'peer', label: 'Peer', value: v.peer, placeholder: '203.0.113.2',
			check: s => (isIP(s.trim()) ? '' : 'the remote gateway\'s IPv4 or IPv6 address'),
			help: 'the remote bitw or IPsec gateway' }),
		mode: f({ name: 'mode', label: 'Mode', type: 'select', options: modeOptions(props), value: v.mode || 'tunnel',
			help: modeHelp(props) }),
		mss_clamp: f({ name: 'mss_clamp', label: 'Clamp TCP MSS', type: 'checkbox', value: v.mss_clamp !== false }),
	};
	// offered when this bitwd's schema has them
	if (props.sa_type)
		rows.sa_type = f({ name: 'sa_type', label: 'SA type', type: 'select', options: SA_TYPES, value: v.sa_type || 'esp',
			help: 'the protocols of its SAs: ESP encrypts; AH authenticates the packet, outer IP header included, ' +
				'but leaves it readable; AH + ESP: an ESP SA and an AH SA per direction' });
	if (props.clone)
		rows.clone = f({ name: 'clone', label: 'Cloning', type: 'select', options: CLONES, value: v.clone || 'none',
			help: 'tunnel mode: separate keys per host the policy covers; each SA names its host (clone host)' });
	if (ikePeers) {
		rows.ike_peer = f({ name: 'ike_peer', label: 'Keys', type: 'select', value: v.ike_peer || '',
			options: [['', 'manual SAs'], ...ikePeers.map(x => [x.name, `IKE with ${x.name} (${x.address})`])],
			help: 'manual SAs (SAs page) or negotiated with an IKE peer' });
		rows.esp_proposals = f({ name: 'esp_proposals', label: 'ESP proposals', value: v.esp_proposals || '',
			placeholder: 'the peer\'s', help: 'e.g. aes256gcm16-curve25519; empty: the peer\'s' });
		rows.child_lifetime = f({ name: 'child_lifetime', label: 'Child SA lifetime (s)', type: 'number',
			value: v.child_lifetime || '', placeholder: 'the peer\'s',
			check: s => (s === '' || /^\d+$/.test(s) ? '' : 'seconds, or empty for the peer\'s') });
		if (props.ah_proposals)
			rows.ah_proposals = f({ name: 'ah_proposals', label: 'AH proposals', value: v.ah_proposals || '',
				placeholder: 'HMAC-SHA2-256', help: 'integrity only, e.g. sha256-sha1, aesxcbc, aes128gmac; empty: sha256' });
	}
	const specs = advancedSpecs(props);
	const adv = specs.length ? advancedSection(specs, v, false) : null;
	const protectOnly = [rows.peer, rows.mode, rows.mss_clamp, rows.sa_type, rows.clone, rows.ike_peer,
		adv && adv.fold].filter(Boolean);
	const usesAh = () => rows.sa_type && rows.sa_type.input.value !== 'esp';
	const sync = () => {
		const protect = rows.action.input.value === 'protect';
		for (const r of protectOnly)
			r.hidden = !protect;
		for (const r of [rows.esp_proposals, rows.child_lifetime].filter(Boolean))
			r.hidden = !protect || !rows.ike_peer.input.value;
		if (rows.ah_proposals)
			rows.ah_proposals.hidden = !protect || !rows.ike_peer.input.value || !usesAh();
	};
	if (rows.sa_type)
		rows.sa_type.input.addEventListener('change', sync);
	if (rows.ike_peer)
		rows.ike_peer.input.addEventListener('change', sync);
	rows.action.input.addEventListener('change', sync);
	sync();
	const err = formError();
	const save = h('button', { testid: 'policy-save', type: 'submit', text: p ? 'Save' : 'Create' });
	const form = h('form', { testid: 'policy-form', class: 'card form-grid', novalidate: true },
		h('h2', { text: p ? `Edit policy ${p.name}` : 'New policy' }),
		h('datalist', { id: 'policy-protocols' }, PROTOCOLS.map(x => h('option', { value: x }))),
		Object.values(rows), adv && adv.fold, err,
		h('div', { class: 'actions' },
			h('button', { testid: 'policy-cancel', type: 'button', class: 'secondary', onclick: onCancel, text: 'Cancel' }),
			save));
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		clearErrors(form);
		if (!validate(form))
			return;
		const val = n => rows[n].input.value.trim();
		const body = { name: val('name'), priority: Number(val('priority')), action: val('action'),
			direction: val('direction'), src: val('src') || 'any', dst: val('dst') || 'any',
			src_port: val('src_port') || 'any', dst_port: val('dst_port') || 'any' };
		const proto = val('protocol') || 'any';
		body.protocol = /^\d+$/.test(proto) ? Number(proto) : proto;
		if (body.action === 'protect') {
			body.peer = val('peer');
			body.mode = val('mode');
			body.mss_clamp = rows.mss_clamp.input.checked;
			if (rows.sa_type)
				body.sa_type = val('sa_type');
			if (rows.clone)
				body.clone = val('clone');
			if (adv)
				Object.assign(body, adv.read());
			if (rows.ike_peer) {
				body.ike_peer = val('ike_peer') || null;
				if (body.ike_peer) {
					body.esp_proposals = val('esp_proposals');
					body.child_lifetime = Number(val('child_lifetime') || 0);
					if (rows.ah_proposals && usesAh())
						body.ah_proposals = val('ah_proposals');
				}
			}
		}
		save.disabled = true;
		try {
			if (p)
				await change('PUT', `/policies/${p.id}`, body);
			else
				await change('POST', '/policies', body);
			toast(`Policy ${body.name} ${p ? 'saved' : 'created'}.`);
			onSaved();
		} catch (e) {
			showProblem(form, e);
		} finally {
			save.disabled = false;
		}
	});
	return form;
}
