// sas.js: manual SAs (stored, keys write-only) joined with the live SAD; create, delete, flush with confirmation.
import { api, change, readonly, errorText, ApiError, schemaProps } from '../api.js';
import { h, clear, table, card, toast, num, bytes, confirmDialog } from '../dom.js';
import { field, formError, clearErrors, validate, showProblem, isIP } from '../form.js';
import { POLL_MS } from '../live.js';

// As the SA schema lists them (docs/openapi.json); the legacy ones only work with options.legacy_algorithms.
const ENC = ['aes-gcm-128', 'aes-gcm-256', 'chacha20-poly1305', 'aes-cbc-128', 'aes-cbc-256', 'aes-ctr-128',
	'aes-ctr-256', 'aes-ccm8-128', 'aes-ccm8-256', 'aes-ccm12-128', 'aes-ccm12-256', 'aes-ccm16-128', 'aes-ccm16-256',
	'aes-gmac-128', 'aes-gmac-256', ['3des-cbc', '3des-cbc (legacy)'], 'null'];
const INTEG = ['none', 'hmac-sha1-96', 'hmac-sha256-128', 'hmac-sha384-192', 'hmac-sha512-256', 'aes-xcbc-96',
	['hmac-md5-96', 'hmac-md5-96 (legacy)']];
const LEGACY = new Set(['3des-cbc', 'hmac-md5-96']);

// A select's options: the schema's enum when this bitwd has one (new algorithms appear by themselves), else ours.
function choices(prop, fallback) {
	if (!prop || !Array.isArray(prop.enum))
		return fallback;
	return prop.enum.map(x => (LEGACY.has(x) ? [x, `${x} (legacy)`] : x));
}

// Fields of the form below; any other property of the SA schema is offered as the schema describes it.
const FORM_FIELDS = new Set(['id', 'spi', 'direction', 'policy', 'peer', 'local', 'encap', 'encap_sport', 'encap_dport',
	'enc', 'enc_key', 'integ', 'integ_key', 'replay_window', 'esn', 'lifetime', 'protocol', 'clone_host']);

const key = (spi, dir) => `${spi}/${dir}`;

// Seconds left of the hard lifetime, from the live SA's age; '-' without one.
function remaining(live) {
	const hard = live && live.lifetime && live.lifetime.hard;
	if (!hard || !hard.seconds)
		return '-';
	return String(Math.max(0, hard.seconds - (live.age || 0)));
}

function algos(sa) {
	if (sa.protocol === 'ah')
		return sa.integ;
	return sa.integ && sa.integ !== 'none' ? `${sa.enc} + ${sa.integ}` : sa.enc;
}

export function render(root, life) {
	const ro = readonly();
	const stored = h('div'), sad = h('div'), formSlot = h('div');
	const sadNote = h('p', { class: 'muted' });
	let sas = [], live = new Map(), policies = [], modes = new Map(), dummies = false;

	async function loadStored() {
		try {
			const [page, pols] = await Promise.all([api('GET', '/sas?limit=1000'),
				api('GET', '/policies?limit=1000').catch(() => null)]);
			if (!life.alive)
				return;
			if (pols)
				modes = new Map((pols.items || []).map(p => [p.name, p.mode || 'tunnel']));
			sas = page.items || [];
			drawStored();
		} catch (e) {
			clear(stored).append(h('p', { class: 'form-error', text: errorText(e) }));
		}
	}

	async function loadLive() {
		try {
			const page = await api('GET', '/sad?limit=1000');
			if (!life.alive)
				return;
			live = new Map((page.items || []).map(s => [key(s.spi, s.direction), s]));
			if (!dummies && (page.items || []).some(s => s.dummy_packets !== undefined)) {
				dummies = true;   // this bitw-wire counts dummy packets: show the column
				drawStored();
			}
			sadNote.textContent = `${page.total} SAs in bitw-wire, manual and negotiated.`;
			drawLive(page.items || []);
		} catch (e) {
			live = new Map();
			sadNote.textContent = e instanceof ApiError && e.status === 503 ?
				'bitw-wire is not connected: no live SAs.' : errorText(e);
			drawLive([]);
		}
		updateCounters();
	}

	function drawStored() {
		const rows = sas.map(sa => h('tr', { testid: 'sa-row', dataset: { spi: sa.spi, direction: sa.direction, id: sa.id } },
			h('td', { class: 'mono', text: sa.spi }),
			h('td', { class: 'mono', text: '0x' + Number(sa.spi).toString(16).padStart(8, '0') }),
			h('td', { text: sa.direction }),
			h('td', { testid: 'sa-protocol', text: (sa.protocol || 'esp').toUpperCase() }),
			h('td', { text: sa.policy + (sa.clone_host ? ` (host ${sa.clone_host})` : '') }),
			h('td', { class: 'mono', text: sa.peer || '(policy\'s)' }),
			h('td', { text: algos(sa) }),
			h('td', { testid: 'sa-mode', text: (modes.get(sa.policy) || 'tunnel') + (sa.encap === 'udp' ? ', UDP' : '') }),
			h('td', { testid: 'sa-state', text: '-' }),
			h('td', { testid: 'sa-packets', class: 'num', text: '0' }),
			h('td', { testid: 'sa-bytes', class: 'num', text: '0' }),
			h('td', { testid: 'sa-lifetime', class: 'num', text: '-' }),
			dummies ? h('td', { testid: 'sa-dummy', class: 'num', text: '0' }) : null,
			h('td', { class: 'row-actions' }, h('button', { testid: 'sa-delete', class: 'danger small', disabled: ro,
				onclick: () => remove(sa), text: 'Delete' }))));
		clear(stored).append(table('sa-table', ['SPI', 'hex', 'Dir', 'Protocol', 'Policy', 'Peer', 'Algorithms', 'Mode', 'State',
			'Packets', 'Bytes', 'Hard left (s)', ...(dummies ? ['Dummies'] : []), ''], rows, 'No manual SAs.'));
		updateCounters();
	}

	function updateCounters() {
		for (const row of stored.querySelectorAll('[data-testid="sa-row"]')) {
			const l = live.get(key(row.dataset.spi, row.dataset.direction));
			row.querySelector('[data-testid="sa-state"]').textContent = l ? l.state : 'not installed';
			row.querySelector('[data-testid="sa-packets"]').textContent = l ? String(l.packets || 0) : '0';
			const b = row.querySelector('[data-testid="sa-bytes"]');
			b.textContent = l ? String(l.bytes || 0) : '0';
			b.title = bytes(l ? l.bytes : 0);
			row.querySelector('[data-testid="sa-lifetime"]').textContent = remaining(l);
			const d = row.querySelector('[data-testid="sa-dummy"]');
			if (d)
				d.textContent = l ? String(l.dummy_packets || 0) : '0';
		}
	}

	function drawLive(items) {
		const rows = items.map(s => h('tr', { testid: 'sad-row', dataset: { spi: s.spi, direction: s.direction } },
			h('td', { class: 'mono', text: s.spi }),
			h('td', { text: s.direction }),
			h('td', { text: s.policy }),
			h('td', { class: 'mono', text: `${s.local || '?'} → ${s.peer || '?'}` }),
			h('td', { text: algos(s) }),
			h('td', { text: s.state }),
			h('td', { class: 'num', text: num(s.packets) }),
			h('td', { class: 'num', text: num(s.bytes) }),
			h('td', { class: 'num', text: num((s.replay_drops || 0) + (s.auth_drops || 0) + (s.errors || 0)) }),
			h('td', { class: 'num', text: num(s.age) }),
			h('td', { class: 'num', text: remaining(s) }),
			dummies ? h('td', { testid: 'sad-dummy', class: 'num', text: num(s.dummy_packets || 0),
				title: s.direction === 'in' ? 'dummy packets received and discarded' : 'dummy packets sent' }) : null));
		clear(sad).append(table('sad-table', ['SPI', 'Dir', 'Policy', 'Tunnel', 'Algorithms', 'State', 'Packets',
			'Bytes', 'Drops', 'Age (s)', 'Hard left (s)', ...(dummies ? ['Dummies'] : [])], rows, 'The SAD is empty.'));
	}

	async function remove(sa) {
		try {
			await change('DELETE', `/sas/${sa.id}`);
			toast(`SA ${sa.spi} (${sa.direction}) deleted.`);
		} catch (e) {
			toast(errorText(e), 'error');
		}
		loadStored();
		loadLive();
	}

	async function flush() {
		if (!await confirmDialog(`Delete all ${sas.length} manual SAs? Traffic they protect stops until new SAs exist.`,
			'Flush'))
			return;
		try {
			const r = await change('DELETE', '/sas');
			toast(r && r.deleted !== undefined ? `${r.deleted} SAs deleted.` : 'SAs flushed.');
		} catch (e) {
			toast(errorText(e), 'error');
		}
		loadStored();
		loadLive();
	}

	async function openForm() {
		try {
			policies = ((await api('GET', '/policies?limit=1000')).items || []).filter(p => p.action === 'protect');
		} catch (e) {
			toast(errorText(e), 'error');
		}
		const props = await schemaProps('SA');
		clear(formSlot).append(saForm(policies, props, () => clear(formSlot), () => {
			clear(formSlot);
			loadStored();
			loadLive();
		}));
		formSlot.querySelector('input').focus();
	}

	root.append(
		h('div', { class: 'page-head' },
			h('h1', { text: 'Security associations' }),
			h('div', { class: 'actions' },
				h('button', { testid: 'sa-new', disabled: ro, onclick: openForm, text: 'New manual SA' }),
				h('button', { testid: 'sa-flush', class: 'danger', disabled: ro, onclick: flush, text: 'Flush all' }))),
		formSlot,
		card('Manual SAs', h('p', { class: 'muted', text: 'Stored in bitwd; keys are write-only and never shown.' }),
			stored),
		card('Live SAD', sadNote, sad));
	life.every(POLL_MS, loadLive);
	loadStored();
	loadLive();
}

function saForm(policies, props, onCancel, onSaved) {
	const f = spec => field('sa', spec);
	const hex = s => (s.replace(/^0x/i, '').replace(/:/g, '').match(/^([0-9a-fA-F]{2})*$/) ? '' :
		'hex digits (optional 0x prefix and : separators), an even number of them');
	const count = s => (s === '' || /^\d+$/.test(s) ? '' : 'a whole number, empty for none');
	const rows = [
		f({ name: 'spi', label: 'SPI', placeholder: '4097 or 0x00001001', help: '256 .. 0xffffffff, unique per direction',
			check: s => (/^(0x[0-9a-fA-F]{1,8}|\d{3,10})$/.test(s.trim()) && Number(s.trim()) >= 256 &&
				Number(s.trim()) <= 0xffffffff ? '' : 'a number 256 .. 4294967295, decimal or 0x hex') }),
		f({ name: 'direction', label: 'Direction', type: 'select', options: [['out', 'out (we encrypt)'],
			['in', 'in (we decrypt)']] }),
		f({ name: 'policy', label: 'Policy', type: 'select', options: policies.map(p => [p.name,
			`${p.name} (peer ${p.peer}${p.mode && p.mode !== 'tunnel' ? ', ' + p.mode : ''})`]),
			help: policies.length ? 'the protect policy this SA serves; its mode (tunnel or transport) is the SA\'s' :
				'create a protect policy first' }),
		f({ name: 'peer', label: 'Peer', placeholder: 'the policy\'s peer', help: 'remote tunnel endpoint; empty: the policy\'s',
			check: s => (s.trim() === '' || isIP(s.trim()) ? '' : 'an IPv4 or IPv6 address') }),
		f({ name: 'local', label: 'Local', placeholder: 'first black address',
			help: 'one of the black port\'s addresses; transport mode: the host\'s address (the default)',
			check: s => (s.trim() === '' || isIP(s.trim()) ? '' : 'an IPv4 or IPv6 address') }),
		f({ name: 'encap', label: 'Encapsulation', type: 'select', options: [['none', 'ESP'], ['udp', 'ESP in UDP (NAT-T)']] }),
		f({ name: 'enc', label: 'Encryption', type: 'select', options: choices(props.enc, ENC) }),
		f({ name: 'enc_key', label: 'Encryption key', type: 'password', help: 'hex; AEAD: key + 4-byte salt. Never shown again.',
			check: hex }),
		f({ name: 'integ', label: 'Integrity', type: 'select', options: choices(props.integ, INTEG),
			help: 'none with GCM, ChaCha20, CCM and GMAC' }),
		f({ name: 'integ_key', label: 'Integrity key', type: 'password', help: 'hex; never shown again', check: hex }),
		f({ name: 'replay_window', label: 'Replay window', type: 'number', placeholder: 'default',
			help: '0 or 64..4096; empty: the option\'s default', check: count }),
		f({ name: 'esn', label: 'Extended sequence numbers', type: 'checkbox' }),
		f({ name: 'lifetime.soft.seconds', label: 'Soft lifetime (s)', type: 'number', placeholder: 'none', check: count }),
		f({ name: 'lifetime.hard.seconds', label: 'Hard lifetime (s)', type: 'number', placeholder: 'none', check: count }),
		f({ name: 'lifetime.soft.bytes', label: 'Soft lifetime (bytes)', type: 'number', placeholder: 'none', check: count }),
		f({ name: 'lifetime.hard.bytes', label: 'Hard lifetime (bytes)', type: 'number', placeholder: 'none', check: count }),
	];
	// AH (when this bitwd has it) and a clone policy's host, right after the policy they depend on
	const after = rows.findIndex(r => r.dataset.field === 'policy') + 1;
	const own = [];
	if (props.protocol)
		own.push(f({ name: 'protocol', label: 'Protocol', type: 'select', options: [['esp', 'ESP (encrypted)'],
			['ah', 'AH (integrity only, payload in clear)']],
			help: 'one the policy\'s SA type uses; AH takes no encryption and no UDP encapsulation' }));
	if (props.clone_host)
		own.push(f({ name: 'clone_host', label: 'Clone host', placeholder: '198.18.1.7',
			help: 'policies that clone per host: the host this SA serves, inside the cloned selector',
			check: t => (t.trim() === '' || isIP(t.trim()) ? '' : 'an IPv4 or IPv6 address') }));
	rows.splice(after, 0, ...own);
	const extra = extraFields(props);
	rows.splice(rows.findIndex(r => r.dataset.field === 'encap') + 1, 0, ...extra.map(x => x.row));
	const byName = Object.fromEntries(rows.map(r => [r.dataset.field, r.input]));
	const rowOf = n => rows.find(r => r.dataset.field === n);
	const policyOf = () => policies.find(p => p.name === byName.policy.value) || {};
	// AH forces enc null and no UDP; a policy's SA type picks the protocol it uses; clone_host only where it clones
	const syncProto = (fromPolicy) => {
		const pol = policyOf();
		if (byName.protocol && fromPolicy && (pol.sa_type === 'ah' || pol.sa_type === 'esp'))
			byName.protocol.value = pol.sa_type;
		const ah = byName.protocol && byName.protocol.value === 'ah';
		if (ah) {
			byName.enc.value = 'null';
			byName.encap.value = 'none';
			byName.enc_key.value = '';
		}
		byName.enc.disabled = ah;
		byName.encap.disabled = ah;
		rowOf('enc_key').hidden = ah;
		if (rowOf('clone_host'))
			rowOf('clone_host').hidden = !pol.clone || pol.clone === 'none';
	};
	byName.policy.addEventListener('change', () => syncProto(true));
	if (byName.protocol)
		byName.protocol.addEventListener('change', () => syncProto(false));
	syncProto(true);
	const wipeKeys = () => {
		byName.enc_key.value = '';
		byName.integ_key.value = '';
		for (const x of extra)
			if (x.secret)
				x.row.input.value = '';
	};
	const save = h('button', { testid: 'sa-save', type: 'submit', text: 'Create' });
	const form = h('form', { testid: 'sa-form', class: 'card form-grid', novalidate: true, autocomplete: 'off' },
		h('h2', { text: 'New manual SA' }), rows, formError(),
		h('div', { class: 'actions' },
			h('button', { testid: 'sa-cancel', type: 'button', class: 'secondary', text: 'Cancel',
				onclick: () => {
					wipeKeys();
					onCancel();
				} }),
			save));
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		clearErrors(form);
		if (!validate(form))
			return;
		const v = n => byName[n].value.trim();
		const spi = v('spi');
		const body = { spi: /^0x/i.test(spi) ? spi : Number(spi), direction: v('direction'), policy: v('policy'),
			encap: v('encap'), enc: v('enc'), integ: v('integ'), esn: byName.esn.checked };
		for (const n of ['peer', 'local', 'enc_key', 'integ_key'])
			if (v(n))
				body[n] = v(n);
		if (byName.protocol)
			body.protocol = v('protocol');
		if (byName.clone_host && v('clone_host') && !rowOf('clone_host').hidden)
			body.clone_host = v('clone_host');
		for (const x of extra) {
			const val = x.read();
			if (val !== undefined)
				body[x.name] = val;
		}
		if (v('replay_window'))
			body.replay_window = Number(v('replay_window'));
		for (const kind of ['soft', 'hard'])
			for (const what of ['seconds', 'bytes'])
				if (v(`lifetime.${kind}.${what}`)) {
					body.lifetime = body.lifetime || {};
					body.lifetime[kind] = body.lifetime[kind] || {};
					body.lifetime[kind][what] = Number(v(`lifetime.${kind}.${what}`));
				}
		save.disabled = true;
		try {
			await change('POST', '/sas', body);
			wipeKeys();
			toast(`SA ${spi} (${body.direction}) created.`);
			onSaved();
		} catch (e) {
			showProblem(form, e);
		} finally {
			save.disabled = false;
			delete body.enc_key;
			delete body.integ_key;
		}
	});
	return form;
}

// The SA schema's properties this form does not know (the wire's newer SA kinds), as the schema describes them;
// a *_key is a secret like the others (password input, never filled, wiped after use).
function extraFields(props) {
	const out = [];
	for (const [name, s] of Object.entries(props)) {
		if (FORM_FIELDS.has(name) || s.readOnly)
			continue;
		const secret = /_key$/.test(name);
		const type = Array.isArray(s.enum) ? 'select' : s.type === 'boolean' ? 'checkbox' :
			s.type === 'integer' ? 'number' : s.type === 'string' ? (secret ? 'password' : 'text') : null;
		if (!type)
			continue;
		const row = field('sa', { name, label: name, type, options: choices(s, []), value: s.default,
			help: s.description || '' });
		const read = () => {
			if (type === 'checkbox')
				return row.input.checked;
			const t = row.input.value.trim();
			if (t === '')
				return undefined;
			return type === 'number' ? Number(t) : t;
		};
		out.push({ name, row, read, secret });
	}
	return out;
}
