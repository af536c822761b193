// settings.js: ports and options, export/import of the whole configuration, users, API tokens, own password.
import { api, change, readonly, session, errorText } from '../api.js';
import { h, clear, table, card, toast, when } from '../dom.js';
import { field, formError, clearErrors, validate, showProblem, isIP } from '../form.js';
import { admin } from '../live.js';

const OPTIONS = [
	['default_action', 'Default action', 'select', ['discard', 'bypass'], 'for packets no policy matches'],
	['bridge_non_ip', 'Bridge non-IP frames', 'checkbox', null, 'ARP and other non-IP traffic passes unchanged'],
	['nat_keepalive', 'NAT keepalive (s)', 'number', null, '0 = off'],
	['neigh_timeout', 'Neighbour timeout (s)', 'number', null, ''],
	['neigh_queue', 'Neighbour queue', 'number', null, 'packets held per unresolved neighbour'],
	['acquire_queue', 'Acquire queue', 'number', null, 'packets held while an SA is negotiated'],
	['frag_timeout_ms', 'Reassembly timeout (ms)', 'number', null, ''],
	['frag_mem', 'Reassembly memory (bytes)', 'number', null, ''],
	['replay_window', 'Replay window', 'number', null, '0 or 64..4096'],
	['legacy_algorithms', 'Allow legacy algorithms', 'checkbox', null, '3des-cbc and hmac-md5-96 (deprecated by RFC 8221)'],
	['black_interface_mac', 'Black port uses the interface MAC', 'checkbox', null,
		'for switch port security; otherwise a derived local MAC (takes effect when bitw-wire restarts)'],
];

// Run an async submit with the form's errors cleared first and the server's problem shown after.
function onSubmit(form, button, fn) {
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		clearErrors(form);
		if (!validate(form))
			return;
		button.disabled = true;
		try {
			await fn();
		} catch (e) {
			showProblem(form, e);
		} finally {
			button.disabled = readonly() && !form.dataset.selfService;
		}
	});
}

function portForm(role, port, ro) {
	const f = spec => field('port', { ...spec, disabled: ro || spec.disabled });
	const addr = s => (s.split(',').map(x => x.trim()).filter(Boolean).every(a => {
		const [ip, len] = a.split('/');
		return isIP(ip) && (len === undefined || /^\d{1,3}$/.test(len));
	}) ? '' : 'addresses as address/prefix-length, separated by commas');
	const opt = s => (s.trim() === '' || isIP(s.trim()) ? '' : 'an IP address, or empty');
	const rows = [
		f({ name: 'interface', label: 'Interface', value: port.interface || '', help: 'cannot change while bitw-wire runs',
			check: s => (/^[^\s/]{1,15}$/.test(s.trim()) ? '' : 'an interface name, 1 to 15 characters') }),
		f({ name: 'mtu', label: 'MTU', type: 'number', value: port.mtu || 0, help: '0 = the interface\'s' }),
		f({ name: 'addresses', label: 'Addresses', value: (port.addresses || []).join(', '), check: addr,
			help: 'address/prefix-length, comma-separated' }),
		f({ name: 'gateway4', label: 'IPv4 gateway', value: port.gateway4 || '', check: opt }),
		f({ name: 'gateway6', label: 'IPv6 gateway', value: port.gateway6 || '', check: opt }),
	];
	if (role === 'red')
		rows.push(f({ name: 'router_mac', label: 'Router MAC', value: port.router_mac || '', placeholder: 'learn',
			check: s => (s.trim() === '' || /^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/.test(s.trim()) ? '' : 'aa:bb:cc:dd:ee:ff') }));
	const save = h('button', { testid: 'port-save', type: 'submit', disabled: ro, text: 'Save' });
	const form = h('form', { testid: `port-form-${role}`, class: 'form-grid', novalidate: true },
		h('h3', { text: role === 'red' ? 'Red port' : 'Black port' }), rows, formError(), h('div', { class: 'actions' }, save));
	const by = Object.fromEntries(rows.map(r => [r.dataset.field, r.input]));
	onSubmit(form, save, async () => {
		const body = { interface: by.interface.value.trim(), mtu: Number(by.mtu.value || 0),
			addresses: by.addresses.value.split(',').map(x => x.trim()).filter(Boolean) };
		for (const k of ['gateway4', 'gateway6', 'router_mac'])
			if (by[k] && by[k].value.trim())
				body[k] = by[k].value.trim();
		await change('PUT', `/ports/${role}`, body);
		toast(`${role} port saved.`);
	});
	return form;
}

function optionsForm(opts, ro) {
	// only the options this bitwd reports (they come with their defaults filled in)
	const known = OPTIONS.some(o => o[0] in opts) ? OPTIONS.filter(o => o[0] in opts) : OPTIONS;
	const rows = known.map(([name, label, type, options, help]) =>
		field('options', { name, label, type, options, help, value: opts[name], disabled: ro,
			check: type === 'number' ? s => (/^\d+$/.test(s.trim()) ? '' : 'a whole number') : undefined }));
	const save = h('button', { testid: 'options-save', type: 'submit', disabled: ro, text: 'Save options' });
	const form = h('form', { testid: 'options-form', class: 'form-grid', novalidate: true }, rows, formError(),
		h('div', { class: 'actions' }, save));
	onSubmit(form, save, async () => {
		const body = {};
		for (const r of rows) {
			const [name, , type] = OPTIONS.find(o => o[0] === r.dataset.field);
			body[name] = type === 'checkbox' ? r.input.checked : type === 'number' ? Number(r.input.value) : r.input.value;
		}
		// PUT replaces every option: keep the administrative state (set on the dashboard) as it is now
		if ('admin_state' in opts)
			body.admin_state = admin.state || opts.admin_state;
		await change('PUT', '/options', body);
		toast('Options saved.');
	});
	return form;
}

function configCard(ro) {
	const file = h('input', { testid: 'import-config', type: 'file', accept: 'application/json,.json', disabled: ro });
	const result = h('p', { testid: 'import-result', class: 'result', role: 'status' });
	const submit = h('button', { testid: 'import-submit', type: 'button', disabled: ro, text: 'Import' });
	const exp = h('button', { testid: 'export-config', type: 'button', class: 'secondary', text: 'Export' });
	exp.addEventListener('click', async () => {
		try {
			const doc = await api('GET', '/config');
			const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2) + '\n'], { type: 'application/json' }));
			const a = h('a', { href: url, download: 'bitw-config.json' });
			document.body.append(a);
			a.click();
			a.remove();
			setTimeout(() => URL.revokeObjectURL(url), 10000);
		} catch (e) {
			toast(errorText(e), 'error');
		}
	});
	submit.addEventListener('click', async () => {
		result.className = 'result';
		if (!file.files.length) {
			result.textContent = 'Choose a JSON file first.';
			return;
		}
		const text = await file.files[0].text();
		try {
			JSON.parse(text);
		} catch (e) {
			result.textContent = 'not JSON: ' + e.message;
			result.classList.add('bad');
			return;
		}
		submit.disabled = true;
		try {
			const doc = await change('PUT', '/config', text);
			result.textContent = doc ? `imported: ${(doc.policies || []).length} policies, ${(doc.sas || []).length} SAs` :
				'imported (stored; applied when bitw-wire is back)';
			result.classList.add('good');
		} catch (e) {
			result.textContent = errorText(e);
			result.classList.add('bad');
		} finally {
			submit.disabled = false;
		}
	});
	return card('Configuration',
		h('p', { class: 'muted', text: 'The whole configuration (ports, options, policies, manual SAs) as one JSON ' +
			'document. Exports carry no keys: manual SAs need their keys added before an import.' }),
		h('div', { class: 'actions left' }, exp), h('div', { class: 'import' }, file, submit), result);
}

function usersCard(ro, life) {
	const list = h('div'), formSlot = h('div');
	const newBtn = h('button', { testid: 'user-new', disabled: ro, text: 'New user' });
	async function load() {
		if (ro) {
			clear(list).append(h('div', { testid: 'user-table', class: 'muted', text: 'The user list is for admins only.' }));
			return;
		}
		try {
			const page = await api('GET', '/users');
			if (!life.alive)
				return;
			clear(list).append(table('user-table', ['Name', 'Role', 'State', 'Created', ''], (page.items || []).map(u =>
				h('tr', { testid: 'user-row', dataset: { name: u.name, id: u.id } },
					h('td', { class: 'strong', text: u.name }), h('td', { text: u.role }),
					h('td', { text: u.disabled ? 'disabled' : 'active' }), h('td', { text: when(u.created * 1000) }),
					h('td', { class: 'row-actions' },
						h('button', { testid: 'user-delete', class: 'danger small', disabled: ro || u.id === session.id,
							title: u.id === session.id ? 'you cannot delete yourself' : '', text: 'Delete',
							onclick: async () => {
								try {
									await api('DELETE', `/users/${u.id}`);
									toast(`User ${u.name} deleted.`);
								} catch (e) {
									toast(errorText(e), 'error');
								}
								load();
							} })))), 'No users.'));
		} catch (e) {
			clear(list).append(h('p', { class: 'form-error', text: errorText(e) }));
		}
	}
	newBtn.addEventListener('click', () => {
		const rows = [
			field('user', { name: 'name', label: 'Name', check: s => (s.trim() ? '' : 'required') }),
			field('user', { name: 'password', label: 'Password', type: 'password',
				check: s => (s.length >= 12 ? '' : 'at least 12 characters') }),
			field('user', { name: 'role', label: 'Role', type: 'select', options: ['readonly', 'admin'] }),
		];
		const save = h('button', { testid: 'user-save', type: 'submit', text: 'Create' });
		const form = h('form', { testid: 'user-form', class: 'form-grid', novalidate: true }, rows, formError(),
			h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', text: 'Cancel',
				onclick: () => clear(formSlot) }), save));
		onSubmit(form, save, async () => {
			const [name, pw, role] = rows.map(r => r.input);
			await api('POST', '/users', { name: name.value.trim(), password: pw.value, role: role.value });
			pw.value = '';
			toast(`User ${name.value.trim()} created.`);
			clear(formSlot);
			load();
		});
		clear(formSlot).append(form);
	});
	load();
	return card('Users', h('div', { class: 'actions left' }, newBtn), formSlot, list);
}

// Every user manages their own tokens (the API allows it to read-only users too).
function tokensCard(life) {
	const list = h('div'), formSlot = h('div'), secretSlot = h('div');
	async function load() {
		try {
			const page = await api('GET', '/tokens');
			if (!life.alive)
				return;
			clear(list).append(table('token-table', ['Name', 'Created', 'Expires', 'Last used', ''], (page.items || []).map(t =>
				h('tr', { testid: 'token-row', dataset: { name: t.name, id: t.id } },
					h('td', { class: 'strong', text: t.name }), h('td', { text: when(t.created * 1000) }),
					h('td', { text: t.expires ? when(t.expires * 1000) : 'never' }),
					h('td', { text: t.last_used ? when(t.last_used * 1000) : 'never' }),
					h('td', { class: 'row-actions' }, h('button', { testid: 'token-delete', class: 'danger small', text: 'Revoke',
						onclick: async () => {
							try {
								await api('DELETE', `/tokens/${t.id}`);
								toast(`Token ${t.name} revoked.`);
							} catch (e) {
								toast(errorText(e), 'error');
							}
							load();
						} })))), 'No API tokens.'));
		} catch (e) {
			clear(list).append(h('p', { class: 'form-error', text: errorText(e) }));
		}
	}
	const newBtn = h('button', { testid: 'token-new', text: 'New token' });
	newBtn.addEventListener('click', () => {
		const rows = [
			field('token', { name: 'name', label: 'Name', check: s => (s.trim() ? '' : 'required') }),
			field('token', { name: 'expires_in', label: 'Expires in (s)', type: 'number', placeholder: 'never',
				check: s => (s === '' || /^\d+$/.test(s) ? '' : 'seconds, or empty for never') }),
		];
		const save = h('button', { testid: 'token-save', type: 'submit', text: 'Create' });
		const form = h('form', { testid: 'token-form', class: 'form-grid', novalidate: true, dataset: { selfService: 1 } },
			rows, formError(), h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary',
				text: 'Cancel', onclick: () => clear(formSlot) }), save));
		onSubmit(form, save, async () => {
			const body = { name: rows[0].input.value.trim() };
			if (rows[1].input.value)
				body.expires_in = Number(rows[1].input.value);
			const t = await api('POST', '/tokens', body);
			clear(formSlot);
			const secret = h('code', { testid: 'token-secret', class: 'secret', text: t.token });
			t.token = '';
			const copy = h('button', { type: 'button', class: 'secondary small', text: 'Copy', onclick: async () => {
				try {
					await navigator.clipboard.writeText(secret.textContent);
					toast('Copied.');
				} catch {
					toast('Select the token and copy it by hand.', 'warn');
				}
			} });
			clear(secretSlot).append(h('div', { class: 'banner ok' },
				h('p', { text: `Token "${body.name}" created. Copy it now: it is not shown again.` }),
				h('div', { class: 'secret-row' }, secret, copy),
				h('button', { type: 'button', class: 'secondary small', text: 'Done', onclick: () => clear(secretSlot) })));
			load();
		});
		clear(formSlot).append(form);
	});
	life.on(() => clear(secretSlot));
	load();
	return card('API tokens', h('p', { class: 'muted', text: 'For scripts and bitwctl: Authorization: Bearer <token>. ' +
		'A token carries its owner\'s role.' }), h('div', { class: 'actions left' }, newBtn), formSlot, secretSlot, list);
}

function passwordCard() {
	const rows = [
		field('password', { name: 'password', label: 'New password', type: 'password',
			check: s => (s.length >= 12 ? '' : 'at least 12 characters') }),
		field('password', { name: 'repeat', label: 'Repeat', type: 'password' }),
	];
	const save = h('button', { testid: 'password-save', type: 'submit', text: 'Change password' });
	const form = h('form', { testid: 'password-form', class: 'form-grid', novalidate: true, dataset: { selfService: 1 } },
		rows, formError(), h('div', { class: 'actions' }, save));
	onSubmit(form, save, async () => {
		const [pw, again] = rows.map(r => r.input);
		if (pw.value !== again.value) {
			form.querySelector('[data-testid="field-error-repeat"]').textContent = 'the passwords differ';
			return;
		}
		await api('PATCH', `/users/${session.id}`, { password: pw.value });
		pw.value = again.value = '';
		toast('Password changed.');
	});
	return card('My password', form);
}

export function render(root, life) {
	const ro = readonly();
	const portsBox = h('div', { class: 'grid2' }), optsBox = h('div');
	root.append(h('div', { class: 'page-head' }, h('h1', { text: 'Settings' })),
		card('Ports and addresses', portsBox), card('Options', optsBox), configCard(ro),
		h('div', { class: 'grid2' }, usersCard(ro, life), tokensCard(life)), passwordCard());
	api('GET', '/ports').then(p => {
		if (life.alive)
			clear(portsBox).append(...['red', 'black'].map(r => portForm(r, p[r] || {}, ro)));
	}).catch(e => portsBox.append(h('p', { class: 'form-error', text: errorText(e) })));
	api('GET', '/options').then(o => {
		if (life.alive)
			clear(optsBox).append(optionsForm(o || {}, ro));
	}).catch(e => optsBox.append(h('p', { class: 'form-error', text: errorText(e) })));
}
