// adminstate.js: the box's administrative state (secure, bypass all, drop all): the header badge, the banner, the control.
import { change, readonly, session, errorText } from './api.js';
import { h, toast, confirmDialog } from './dom.js';
import { setAdminState, onAdminState } from './live.js';

export const STATES = {
	secure: { badge: 'secure', title: 'Secure', help: 'the policies decide: protect, bypass or discard' },
	bypass: { badge: 'BYPASS ALL', title: 'Bypass all',
		help: 'every packet crosses between red and black in clear text; no policy applies' },
	drop: { badge: 'DROP ALL', title: 'Drop all', help: 'nothing passes in either direction' },
};

// The header badge and the banner below the header follow the state on every page.
export function followInShell(badge, banner) {
	return onAdminState(state => {
		const s = STATES[state];
		badge.textContent = s ? s.badge : state;
		badge.dataset.state = state;
		badge.className = 'admin-badge ' + state;
		banner.hidden = state === 'secure' || !session.user;
		banner.className = 'banner admin ' + state;
		banner.textContent = state === 'bypass' ?
			'BYPASS ALL: bitw is not protecting anything. Every packet crosses between red and black in clear text.' :
			state === 'drop' ? 'DROP ALL: bitw passes no traffic at all, in either direction.' : '';
	});
}

// Why the operator must say it twice: bypass sends the protected network's traffic out in clear.
async function confirmed(state) {
	if (state === 'bypass')
		return confirmDialog('Bypass all sends every packet between red and black IN CLEAR TEXT, unencrypted, ' +
			'until the state is set back to secure. Type BYPASS to confirm.', 'Bypass all', 'BYPASS');
	if (state === 'drop')
		return confirmDialog('Drop all stops every packet in both directions (including the management of devices ' +
			'behind bitw) until the state is set back.', 'Drop all');
	return true;
}

async function set(state) {
	if (!await confirmed(state))
		return;
	try {
		const r = await change('PUT', '/admin-state', { state });
		setAdminState(r ? r.state : state);
		toast(`Administrative state: ${STATES[state].title.toLowerCase()}.`, state === 'secure' ? 'ok' : 'warn');
	} catch (e) {
		toast(errorText(e), 'error');
	}
}

// The control: one button per state, the current one pressed; read-only users see it disabled.
export function control(life) {
	const ro = readonly();
	const buttons = Object.entries(STATES).map(([state, s]) => h('button', { type: 'button',
		testid: `admin-state-${state}`, class: 'state-choice ' + state, disabled: ro, 'aria-pressed': 'false',
		title: s.help, onclick: () => set(state) }, h('strong', { text: s.title }), h('span', { text: s.help })));
	const current = h('span', { testid: 'admin-state-current', class: 'strong', text: '-' });
	life.on(onAdminState(state => {
		current.textContent = STATES[state] ? STATES[state].title : state;
		for (const b of buttons) {
			const on = b.dataset.testid === `admin-state-${state}`;
			b.setAttribute('aria-pressed', String(on));
			b.classList.toggle('current', on);
		}
	}));
	return h('section', { testid: 'admin-state-control', class: 'card admin-control' },
		h('h2', null, 'Administrative state: ', current),
		h('div', { class: 'state-choices', role: 'group', 'aria-label': 'Administrative state' }, buttons),
		ro ? h('p', { class: 'muted', text: 'Only administrators can change it.' }) : null);
}
