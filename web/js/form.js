// form.js: labelled fields with their own error slot, client-side checks, and server problems shown by field.
import { h } from './dom.js';
import { ApiError, errorText } from './api.js';

// A field row. spec: {name, label, type ('text'|'number'|'select'|'checkbox'|'password'), options, help,
// value, placeholder, list, disabled, check(value) -> error text or ''}
export function field(prefix, spec) {
	const common = { name: spec.name, testid: `${prefix}-field-${spec.name}`, id: `${prefix}-${spec.name}`,
		disabled: spec.disabled, placeholder: spec.placeholder, 'aria-describedby': `${prefix}-${spec.name}-help` };
	let input;
	if (spec.type === 'select') {
		input = h('select', common, spec.options.map(o => {
			const [value, label] = Array.isArray(o) ? o : [o, o];
			return h('option', { value, text: label });
		}));
		if (spec.value !== undefined)
			input.value = String(spec.value);
	} else if (spec.type === 'checkbox') {
		input = h('input', { ...common, type: 'checkbox', checked: !!spec.value });
	} else {
		input = h('input', { ...common, type: spec.type || 'text', list: spec.list, accept: spec.accept,
			autocomplete: spec.type === 'password' ? 'new-password' : 'off', spellcheck: 'false' });
		if (spec.value !== undefined && spec.value !== null)
			input.value = String(spec.value);
	}
	const error = h('div', { testid: `field-error-${spec.name}`, class: 'field-error', role: 'alert' });
	const help = spec.help ? h('div', { class: 'help', id: `${prefix}-${spec.name}-help`, text: spec.help }) : null;
	const row = h('div', { class: 'field' + (spec.type === 'checkbox' ? ' check' : ''), dataset: { field: spec.name } },
		h('label', { for: common.id, text: spec.label || spec.name }), input, help, error);
	if (spec.check) {
		const run = () => {
			const msg = spec.check(input.value);
			error.textContent = msg || '';
			row.classList.toggle('invalid', !!msg);
			return !msg;
		};
		input.addEventListener('input', run);
		input.addEventListener('blur', run);
		row.validate = run;
	}
	row.input = input;
	return row;
}

export function clearErrors(form) {
	for (const e of form.querySelectorAll('.field-error, [data-testid="form-error"]'))
		e.textContent = '';
	for (const r of form.querySelectorAll('.field.invalid'))
		r.classList.remove('invalid');
}

// Every field's check; false when one fails (its message is shown already).
export function validate(form) {
	let ok = true;
	for (const row of form.querySelectorAll('.field'))
		if (row.validate && row.offsetParent !== null && !row.validate())
			ok = false;
	return ok;
}

// The server's problem beside the field it names ("src", "lifetime.soft.seconds", "sas[0].spi" -> "spi"), else form-wide.
export function showProblem(form, e) {
	const formError = form.querySelector('[data-testid="form-error"]');
	if (e instanceof ApiError && e.field) {
		const names = [e.field, e.field.replace(/^.*\]\./, ''), e.field.split('.').pop()];
		for (const n of names) {
			const slot = form.querySelector(`[data-testid="field-error-${CSS.escape(n)}"]`);
			if (slot) {
				const fold = slot.closest('details');
				if (fold)
					fold.open = true;
				slot.textContent = e.message;
				slot.closest('.field').classList.add('invalid');
				return;
			}
		}
	}
	formError.textContent = errorText(e);
}

export function formError() {
	return h('div', { testid: 'form-error', class: 'form-error', role: 'alert' });
}

// ---- the selector syntax, checked as the wire's parser would (the server has the last word) ----

export function isIPv4(s) {
	return /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(s);
}

export function isIPv6(s) {
	if (!/^[0-9A-Fa-f:.]+$/.test(s) || !s.includes(':'))
		return false;
	try {
		new URL(`http://[${s}]/`);
		return true;
	} catch {
		return false;
	}
}

export function isIP(s) {
	return isIPv4(s) || isIPv6(s);
}

// any, any6, an address, a/len, a/255.255.255.0, a-b
export function checkAddress(v) {
	const s = v.trim();
	if (s === '' || s === 'any' || s === 'any6' || isIP(s))
		return '';
	const slash = s.split('/');
	if (slash.length === 2) {
		const [a, p] = slash;
		if (isIPv4(a) && (/^\d+$/.test(p) ? Number(p) <= 32 : isIPv4(p)))
			return '';
		if (isIPv6(a) && /^\d+$/.test(p) && Number(p) <= 128)
			return '';
		return 'a prefix is address/length (0..32 for IPv4, 0..128 for IPv6) or address/netmask';
	}
	const dash = s.split('-');
	if (dash.length === 2 && ((isIPv4(dash[0]) && isIPv4(dash[1])) || (isIPv6(dash[0]) && isIPv6(dash[1]))))
		return '';
	return 'expected any, any6, an address, a prefix (198.18.1.0/24) or a range (a-b)';
}

export function checkPort(v) {
	const s = String(v).trim();
	if (s === '' || s === 'any')
		return '';
	const m = s.match(/^(\d{1,5})(?:-(\d{1,5}))?$/);
	if (m && Number(m[1]) <= 65535 && (!m[2] || (Number(m[2]) <= 65535 && Number(m[2]) >= Number(m[1]))))
		return '';
	return 'expected any, a port (0..65535) or a range lo-hi';
}

export const PROTOCOLS = ['any', 'tcp', 'udp', 'icmp', 'icmp6', 'ipv6-icmp', 'sctp'];

export function checkProtocol(v) {
	const s = v.trim();
	if (s === '' || PROTOCOLS.includes(s) || (/^\d{1,3}$/.test(s) && Number(s) <= 255))
		return '';
	return 'expected any, tcp, udp, icmp, icmp6, sctp or a number 0..255';
}

export function checkName(v) {
	return /^[A-Za-z0-9_.:-]{1,63}$/.test(v) ? '' : '1 to 63 letters, digits or _ . : -';
}
