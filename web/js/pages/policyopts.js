// policyopts.js: a protect policy's options beyond the selectors (ECN, DF, padding, dummy packets, ICV, ...), offered
// exactly as this bitwd's Policy schema lists them, and shown compactly in the policy table.
import { h } from '../dom.js';
import { field } from '../form.js';

// Fields of the main form; every other property of the schema is an option of the "Advanced" section.
const MAIN = new Set(['id', 'name', 'priority', 'order', 'action', 'direction', 'src', 'dst', 'src_port', 'dst_port',
	'protocol', 'mode', 'peer', 'mss_clamp', 'ike_peer', 'esp_proposals', 'child_lifetime', 'sa_type', 'clone',
	'ah_proposals']);

// The SA type and cloning in words, for the form and the table.
export const SA_TYPES = [['esp', 'ESP (encrypted)'], ['ah', 'AH (integrity only, payload in clear)'],
	['ahesp', 'AH + ESP bundle']];
export const CLONES = [['none', 'one SA pair for the policy'], ['src', 'an SA pair per source host'],
	['dst', 'an SA pair per destination host']];
const SA_TYPE_SHORT = { ah: 'AH', ahesp: 'AH+ESP' };

// "AH" / "AH+ESP" / "clone per src host" for the table; nothing for the defaults (esp, none).
export function typeText(p) {
	const parts = [];
	if (SA_TYPE_SHORT[p.sa_type])
		parts.push(SA_TYPE_SHORT[p.sa_type]);
	if (p.clone && p.clone !== 'none')
		parts.push(`clone per ${p.clone} host`);
	return parts;
}

// Labels, help and the table's short form for the options we know; an option we do not know is still offered,
// named and explained by the schema.
const KNOWN = {
	ecn: { label: 'Full ECN (RFC 6040)', help: 'the outer header carries the inner ECN bits and congestion marks come ' +
		'back in; off: compatibility mode (outer not-ECT)', short: v => (v ? 'ECN' : 'no ECN') },
	df: { label: 'Outer DF bit', help: 'IPv4 outer header: clear, set, or copy from the inner packet (set: too-big ' +
		'packets get ICMP instead of outer fragmentation)', short: v => `DF ${v}` },
	pad_check: { label: 'Check ESP padding', help: 'inbound: padding must be 1, 2, 3, ... or the packet is dropped',
		short: v => (v ? 'pad check' : 'no pad check') },
	tfc_pad: { label: 'TFC padding (bytes)', help: 'tunnel mode: up to this many random bytes added to each outbound ' +
		'packet (RFC 4303 2.7), within the MTU; 0 = off', short: v => `TFC ≤${v}` },
	dummy_interval_ms: { label: 'Dummy packets every (ms)', help: 'tunnel mode: mean interval of dummy packets (next ' +
		'header 59) of random size; 0 = off, else 10 .. 3600000', short: v => `dummy ~${v} ms` },
	icv_96: { label: '96-bit ICV (HMAC-SHA2)', help: 'truncate SHA-2 ICVs to 96 bits; both ends must agree',
		short: v => (v ? 'ICV-96' : 'full ICV') },
};

const MODE_HELP = {
	tunnel: 'tunnel: the packet travels inside ESP between the gateways',
	transport: 'transport: ESP on behalf of one host behind bitw (src one address, peer inside dst)',
};

export function modeOptions(props) {
	const m = props.mode;
	return m && Array.isArray(m.enum) ? m.enum : ['tunnel'];
}

export function modeHelp(props) {
	return modeOptions(props).map(m => MODE_HELP[m] || m).join('; ');
}

// The options the schema has beyond the main form, with their kind of input.
export function advancedSpecs(props) {
	const specs = [];
	for (const [name, s] of Object.entries(props)) {
		if (MAIN.has(name) || s.readOnly)
			continue;
		const known = KNOWN[name] || {};
		const type = Array.isArray(s.enum) ? 'select' : s.type === 'boolean' ? 'checkbox' :
			s.type === 'integer' || s.type === 'number' ? 'number' : s.type === 'string' ? 'text' : null;
		if (!type)
			continue;
		specs.push({ name, type, options: s.enum, def: s.default, label: known.label || name,
			help: known.help || s.description || '', short: known.short, min: s.minimum, max: s.maximum });
	}
	return specs;
}

function checkNumber(spec) {
	return v => {
		const s = v.trim();
		if (s === '')
			return '';
		if (!/^\d+$/.test(s))
			return 'a whole number';
		const n = Number(s);
		if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max))
			return `${spec.min ?? 0} .. ${spec.max}`;
		return '';
	};
}

// The "Advanced" fold of the policy form: {fold, rows, read()} (read: the values to send, defaults where empty).
export function advancedSection(specs, v, ro) {
	const rows = specs.map(s => field('policy', { name: s.name, label: s.label, type: s.type, options: s.options,
		help: s.help, disabled: ro, value: v[s.name] !== undefined ? v[s.name] : s.def,
		placeholder: s.type === 'number' && s.def !== undefined ? String(s.def) : undefined,
		check: s.type === 'number' ? checkNumber(s) : undefined }));
	const changed = specs.some(s => v[s.name] !== undefined && s.def !== undefined && v[s.name] !== s.def);
	const fold = h('details', { testid: 'policy-advanced', class: 'advanced', open: changed },
		h('summary', { testid: 'policy-advanced-toggle', text: 'Advanced: ECN, DF, padding, dummy packets, ICV' +
			(changed ? ' (changed)' : '') }),
		h('div', { class: 'form-grid' }, rows));
	const read = () => {
		const out = {};
		for (const [i, s] of specs.entries()) {
			const input = rows[i].input;
			if (s.type === 'checkbox')
				out[s.name] = input.checked;
			else if (s.type === 'number')
				out[s.name] = input.value.trim() === '' ? (s.def ?? 0) : Number(input.value.trim());
			else if (input.value !== '' || s.def !== undefined)
				out[s.name] = input.value === '' ? s.def : input.value;
		}
		return out;
	};
	return { fold, rows, read };
}

// "tunnel" plus the options that differ from their defaults, for the table.
export function flagsText(p, specs) {
	const parts = [];
	for (const s of specs) {
		const val = p[s.name];
		if (val === undefined || val === null || val === s.def || (s.def === undefined && (val === false || val === 0)))
			continue;
		parts.push(s.short ? s.short(val) : s.type === 'checkbox' ? (val ? s.name : `no ${s.name}`) : `${s.name} ${val}`);
	}
	return parts;
}
