// ike.js: IKE peers (create, edit, delete, initiate), IKE SAs (state, rekey, terminate), certificates when bitwd has them.
import { api, getOptional, change, readonly, errorText } from '../api.js';
import { h, clear, table, card, toast, confirmDialog, when } from '../dom.js';
import { field, formError, clearErrors, validate, showProblem, checkName, isIP } from '../form.js';
import { POLL_MS } from '../live.js';

const secs = v => (v === null || v === undefined ? '-' : String(v));

export function render(root, life) {
	const body = h('div', { class: 'page' });
	root.append(h('div', { class: 'page-head' }, h('h1', { text: 'IKE' })), body);
	start(body, life);
}

async function start(body, life) {
	let peers;
	try {
		peers = await getOptional('/peers?limit=1000');
	} catch (e) {
		body.append(h('p', { class: 'form-error', text: errorText(e) }));
		return;
	}
	if (!life.alive)
		return;
	if (peers === null) {
		body.append(card(null, h('p', { testid: 'ike-unavailable', class: 'muted',
			text: 'IKE not available: this bitwd has no IKE resources. Manual SAs work meanwhile (SAs page).' })));
		return;
	}
	const ro = readonly();
	const peerList = h('div'), peerForm = h('div'), saList = h('div'), certs = h('div');
	let current = peers.items || [];

	async function loadPeers() {
		try {
			current = (await api('GET', '/peers?limit=1000')).items || [];
		} catch (e) {
			toast(errorText(e), 'error');
		}
		if (life.alive)
			drawPeers();
	}

	function drawPeers() {
		clear(peerList).append(table('peer-table', ['Name', 'Remote', 'Identities', 'Auth', 'IKE / ESP proposals', 'Start',
			'DPD', 'DPD timeout', ''], current.map(p => h('tr', { testid: 'peer-row', dataset: { name: p.name, id: p.id } },
			h('td', { class: 'strong', text: p.name }),
			h('td', { class: 'mono', text: p.address }),
			h('td', { class: 'mono', text: `${p.local_id || '(our address)'} ↔ ${p.remote_id || '(its address)'}` }),
			h('td', { testid: 'peer-auth', text: p.auth === 'pubkey' ? `certificate ${p.certificate || ''}` :
				`PSK ${p.has_psk ? '(set)' : '(missing)'}` }),
			h('td', { class: 'mono', text: `${p.ike_proposals || 'default'} / ${p.esp_proposals || 'default'}` }),
			h('td', { text: p.start || '' }),
			h('td', { text: p.dpd_interval ? `${p.dpd_interval} s, ${p.dpd_action}` : 'off' }),
			h('td', { testid: 'peer-dpd-timeout', text: p.dpd_timeout === undefined ? '' : `${p.dpd_timeout} s` }),
			h('td', { class: 'row-actions' },
				h('button', { testid: 'ike-sa-initiate', class: 'small', disabled: ro, text: 'Initiate',
					onclick: () => act('POST', '/ike-sas', { peer: p.id }, `Initiating to ${p.name}.`) }),
				h('button', { testid: 'peer-edit', class: 'secondary small', disabled: ro, text: 'Edit', onclick: () => openForm(p) }),
				h('button', { testid: 'peer-delete', class: 'danger small', disabled: ro, text: 'Delete',
					onclick: async () => {
						if (await confirmDialog(`Delete peer ${p.name}? Its IKE SAs are deleted too.`, 'Delete')) {
							await act('DELETE', `/peers/${p.id}`, undefined, `Peer ${p.name} deleted.`);
							loadPeers();
						}
					} })))), 'No IKE peers.'));
	}

	async function loadSas() {
		let list;
		try {
			list = await api('GET', '/ike-sas');
		} catch (e) {
			clear(saList).append(h('p', { class: 'form-error', text: errorText(e) }));
			return;
		}
		if (!life.alive)
			return;
		clear(saList).append(table('ike-sa-table', ['Peer', 'State', 'Role', 'Endpoints', 'Identities (local / remote)', 'Algorithms', 'SPIs (i / r)',
			'Rekey in', 'Expires in', 'Child SAs', ''], (list.items || []).map(s => h('tr', { testid: 'ike-sa-row',
			dataset: { id: s.id, peer: s.peer, state: s.state } },
			h('td', { class: 'strong', text: s.peer }),
			h('td', null, h('span', { testid: 'ike-sa-state', class: 'tag ' + (s.state === 'ESTABLISHED' ? 'protect' : 'bypass'),
				text: s.state })),
			h('td', { text: s.initiator ? 'initiator' : 'responder' }),
			h('td', { class: 'mono', text: `${s.local}:${s.local_port} → ${s.remote}:${s.remote_port}` +
				(s.nat_local || s.nat_remote ? ' (NAT)' : '') }),
			h('td', { testid: 'ike-sa-ids', class: 'mono', text: s.remote_id ? `${s.local_id} / ${s.remote_id}` : '-' }),
			h('td', { class: 'mono', text: s.algorithms || '' }),
			h('td', { class: 'mono', text: `${s.spi_i || ''} / ${s.spi_r || ''}` }),
			h('td', { class: 'num', text: secs(s.rekey_in) }),
			h('td', { class: 'num', text: secs(s.expire_in) }),
			h('td', { class: 'mono', text: (s.child_sas || []).map(c => `${c.spi_in}/${c.spi_out} ${c.algorithms || ''}`)
				.join('; ') || '-' }),
			h('td', { class: 'row-actions' },
				h('button', { testid: 'ike-sa-rekey', class: 'secondary small', disabled: ro, text: 'Rekey',
					onclick: () => act('POST', `/ike-sas/${s.id}/rekey`, undefined, 'Rekeying.') }),
				h('button', { testid: 'ike-sa-terminate', class: 'danger small', disabled: ro, text: 'Terminate',
					onclick: async () => {
						if (await confirmDialog(`Terminate the IKE SA with ${s.peer} and its child SAs?`, 'Terminate'))
							act('DELETE', `/ike-sas/${s.id}`, undefined, 'Terminated.');
					} })))), 'No IKE SAs.'));
	}

	async function act(method, path, b, ok) {
		try {
			await change(method, path, b);
			toast(ok);
		} catch (e) {
			toast(errorText(e), 'error');
		}
		loadSas();
	}

	function openForm(p) {
		clear(peerForm).append(peerFormOf(p, () => clear(peerForm), () => {
			clear(peerForm);
			loadPeers();
		}));
		peerForm.querySelector('input').focus();
	}

	body.append(
		card('Peers', h('div', { class: 'actions left' }, h('button', { testid: 'peer-new', disabled: ro, text: 'New peer',
			onclick: () => openForm(null) })), peerForm, peerList),
		card('IKE SAs', saList),
		card('Certificates', certs));
	drawPeers();
	loadSas();
	life.every(POLL_MS, loadSas);
	loadCerts(certs, life);
}

async function loadCerts(el, life) {
	let list;
	try {
		list = await getOptional('/certificates');
	} catch (e) {
		clear(el).append(h('p', { class: 'form-error', text: errorText(e) }));
		return;
	}
	if (!life.alive)
		return;
	if (list === null) {
		clear(el).append(h('p', { testid: 'cert-unavailable', class: 'muted',
			text: 'Certificate management is not available in this bitwd yet; PSK peers work.' }));
		return;
	}
	const ro = readonly();
	const formSlot = h('div');
	const reload = () => loadCerts(el, life);
	const rows = (list.items || []).map(c => {
		const result = h('td', { testid: 'cert-verify-result', text: '' });
		return h('tr', { testid: 'cert-row', dataset: { id: c.id, name: c.name } },
			h('td', { class: 'strong', text: c.name }),
			h('td', { class: 'mono', text: c.subject || '' }),
			h('td', { text: c.is_ca ? 'CA' : c.has_key ? 'ours (with key)' : 'peer' }),
			h('td', { text: c.not_after ? when(c.not_after * 1000) : '-' }),
			result,
			h('td', { class: 'row-actions' },
				h('button', { testid: 'cert-verify', class: 'secondary small', text: 'Verify', onclick: async () => {
					try {
						const r = await api('POST', `/certificates/${c.id}/verify`);
						result.textContent = r.valid ? 'valid' : `${r.code}: ${r.reason || ''}`;
						result.className = r.valid ? 'good' : 'bad';
					} catch (e) {
						result.textContent = errorText(e);
						result.className = 'bad';
					}
				} }),
				h('button', { testid: 'cert-delete', class: 'danger small', disabled: ro, text: 'Delete', onclick: async () => {
					if (!await confirmDialog(`Delete certificate ${c.name}${c.has_key ? ' and its private key' : ''}?`, 'Delete'))
						return;
					try {
						await change('DELETE', `/certificates/${c.id}`);
						toast(`Certificate ${c.name} deleted.`);
					} catch (e) {
						toast(errorText(e), 'error');
					}
					reload();
				} })));
	});
	const upload = h('button', { testid: 'cert-upload', disabled: ro, text: 'Upload certificate',
		onclick: () => clear(formSlot).append(certForm(() => clear(formSlot), () => {
			clear(formSlot);
			reload();
		})) });
	clear(el).append(h('div', { class: 'actions left' }, upload), formSlot,
		table('cert-table', ['Name', 'Subject', 'Kind', 'Valid until', 'Check', ''], rows, 'No certificates.'));
}

// PEM files are read in the browser and sent once; the private key never appears on the page.
function certForm(onCancel, onSaved) {
	const name = field('cert', { name: 'name', label: 'Name', check: checkName });
	const pem = field('cert', { name: 'pem', label: 'Certificate (PEM file)', type: 'file', accept: '.pem,.crt,.cer,application/x-pem-file',
		help: 'ours, a peer\'s, or a CA\'s' });
	const key = field('cert', { name: 'key', label: 'Private key (PEM file)', type: 'file', accept: '.pem,.key,application/x-pem-file',
		help: 'only for our own certificate; unencrypted PEM; never shown or returned' });
	const save = h('button', { testid: 'cert-save', type: 'submit', text: 'Upload' });
	const form = h('form', { testid: 'cert-form', class: 'card form-grid', novalidate: true },
		h('h2', { text: 'Upload a certificate' }), name, pem, key, formError(),
		h('div', { class: 'actions' }, h('button', { testid: 'cert-cancel', type: 'button', class: 'secondary', text: 'Cancel',
			onclick: onCancel }), save));
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		clearErrors(form);
		if (!validate(form))
			return;
		if (!pem.input.files.length) {
			form.querySelector('[data-testid="field-error-pem"]').textContent = 'choose the certificate\'s PEM file';
			return;
		}
		const body = { name: name.input.value.trim(), pem: await pem.input.files[0].text() };
		if (key.input.files.length)
			body.key = await key.input.files[0].text();
		save.disabled = true;
		try {
			await change('POST', '/certificates', body);
			toast(`Certificate ${body.name} stored.`);
			key.input.value = '';
			onSaved();
		} catch (e) {
			showProblem(form, e);
		} finally {
			save.disabled = false;
			body.key = '';
		}
	});
	return form;
}

function peerFormOf(p, onCancel, onSaved) {
	const v = p || { auth: 'psk', ike_proposals: 'default', esp_proposals: 'default', ike_lifetime: 14400,
		child_lifetime: 3600, rekey_margin: 540, dpd_interval: 30, dpd_action: 'restart', dpd_timeout: 10, nat_t: true,
		force_encap: false, nat_keepalive: 20, fragmentation: true, start: 'traffic' };
	const f = spec => field('peer', spec);
	const int = s => (/^\d+$/.test(s.trim()) ? '' : 'a whole number of seconds');
	const optIP = s => (s.trim() === '' || isIP(s.trim()) ? '' : 'an IPv4 or IPv6 address, or empty');
	const rows = [
		f({ name: 'name', label: 'Name', value: v.name, check: checkName }),
		f({ name: 'address', label: 'Remote address', value: v.address, placeholder: '203.0.113.2',
			check: s => (isIP(s.trim()) ? '' : 'the remote gateway\'s IPv4 or IPv6 address') }),
		f({ name: 'local', label: 'Local address', value: v.local || '', placeholder: 'first black address', check: optIP }),
		f({ name: 'local_id', label: 'Local identity', value: v.local_id || '', placeholder: 'our address',
			help: 'IP, FQDN, user@fqdn or DN' }),
		f({ name: 'remote_id', label: 'Remote identity', value: v.remote_id || '', placeholder: 'its address',
			help: '%any: anyone who authenticates' }),
		f({ name: 'auth', label: 'Authentication', type: 'select', options: [['psk', 'pre-shared key'], ['pubkey', 'certificate']],
			value: v.auth }),
		f({ name: 'psk', label: 'Pre-shared key', type: 'password', placeholder: p ? 'unchanged' : '',
			help: 'at least 8 characters; never shown again',
			check: s => (s === '' && p) || s.length >= 8 ? '' : 'at least 8 characters' }),
		f({ name: 'certificate', label: 'Our certificate', value: v.certificate || '', list: 'peer-certs-own',
			help: 'name or id of a certificate with its key' }),
		f({ name: 'ca', label: 'CA', value: v.ca || '', list: 'peer-certs-ca', help: 'the CA that signs the peer\'s certificate' }),
		f({ name: 'ike_proposals', label: 'IKE proposals', value: v.ike_proposals,
			help: 'e.g. aes256gcm16-prfsha384-curve25519,aes256-sha256-modp3072' }),
		f({ name: 'esp_proposals', label: 'ESP proposals', value: v.esp_proposals, help: 'e.g. aes256gcm16-curve25519' }),
		f({ name: 'ike_lifetime', label: 'IKE lifetime (s)', type: 'number', value: v.ike_lifetime, check: int }),
		f({ name: 'child_lifetime', label: 'Child SA lifetime (s)', type: 'number', value: v.child_lifetime, check: int }),
		f({ name: 'rekey_margin', label: 'Rekey margin (s)', type: 'number', value: v.rekey_margin, check: int }),
		f({ name: 'dpd_interval', label: 'DPD interval (s)', type: 'number', value: v.dpd_interval, check: int,
			help: '0 = no liveness checks' }),
		f({ name: 'dpd_action', label: 'DPD action', type: 'select', options: ['restart', 'clear', 'hold'], value: v.dpd_action }),
		f({ name: 'dpd_timeout', label: 'DPD timeout (s)', type: 'number', value: v.dpd_timeout ?? 10,
			check: s => (/^\d+$/.test(s.trim()) && Number(s) >= 1 && Number(s) <= 3600 ? '' : '1 to 3600 seconds'),
			help: 'unanswered this long: dead' }),
		f({ name: 'start', label: 'Start', type: 'select', options: [['traffic', 'on traffic'], ['always', 'always'],
			['never', 'respond only']], value: v.start }),
		f({ name: 'nat_keepalive', label: 'NAT keepalive (s)', type: 'number', value: v.nat_keepalive, check: int }),
		f({ name: 'nat_t', label: 'NAT traversal', type: 'checkbox', value: v.nat_t }),
		f({ name: 'force_encap', label: 'Always UDP-encapsulate', type: 'checkbox', value: v.force_encap }),
		f({ name: 'fragmentation', label: 'IKE fragmentation', type: 'checkbox', value: v.fragmentation }),
	];
	const by = Object.fromEntries(rows.map(r => [r.dataset.field, r.input]));
	const sync = () => {
		const psk = by.auth.value === 'psk';
		for (const n of ['psk'])
			by[n].closest('.field').hidden = !psk;
		for (const n of ['certificate', 'ca'])
			by[n].closest('.field').hidden = psk;
	};
	by.auth.addEventListener('change', sync);
	sync();
	const own = h('datalist', { id: 'peer-certs-own' }), cas = h('datalist', { id: 'peer-certs-ca' });
	getOptional('/certificates').then(list => {
		for (const c of (list && list.items) || [])
			(c.is_ca ? cas : own).append(h('option', { value: c.name }));
	}).catch(() => {});
	const save = h('button', { testid: 'peer-save', type: 'submit', text: p ? 'Save' : 'Create' });
	const form = h('form', { testid: 'peer-form', class: 'card form-grid', novalidate: true, autocomplete: 'off' },
		h('h2', { text: p ? `Edit peer ${p.name}` : 'New IKE peer' }), own, cas, rows, formError(),
		h('div', { class: 'actions' }, h('button', { testid: 'peer-cancel', type: 'button', class: 'secondary', text: 'Cancel',
			onclick: () => {
				by.psk.value = '';
				onCancel();
			} }), save));
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		clearErrors(form);
		if (!validate(form))
			return;
		const b = {};
		for (const n of ['name', 'address', 'local', 'local_id', 'remote_id', 'auth', 'ike_proposals', 'esp_proposals',
			'dpd_action', 'start'])
			b[n] = by[n].value.trim();
		for (const n of ['ike_lifetime', 'child_lifetime', 'rekey_margin', 'dpd_interval', 'dpd_timeout', 'nat_keepalive'])
			b[n] = Number(by[n].value);
		for (const n of ['nat_t', 'force_encap', 'fragmentation'])
			b[n] = by[n].checked;
		if (b.auth === 'psk' && by.psk.value)
			b.psk = by.psk.value;
		if (b.auth === 'pubkey') {
			for (const n of ['certificate', 'ca'])
				if (by[n].value.trim())
					b[n] = /^\d+$/.test(by[n].value.trim()) ? Number(by[n].value.trim()) : by[n].value.trim();
		}
		save.disabled = true;
		try {
			if (p)
				await change('PUT', `/peers/${p.id}`, b);
			else
				await change('POST', '/peers', b);
			by.psk.value = '';
			toast(`Peer ${b.name} ${p ? 'saved' : 'created'}.`);
			onSaved();
		} catch (e) {
			showProblem(form, e);
		} finally {
			save.disabled = false;
			delete b.psk;
		}
	});
	return form;
}
