// main.js: the shell: session start-up, hash routing to one page at a time, header, logout, expiry.
import { api, session, onSessionExpired } from './api.js';
import { h, clear } from './dom.js';
import { startLive, stopLive, onStats } from './live.js';
import { followInShell } from './adminstate.js';
import * as login from './pages/login.js';
import * as dashboard from './pages/dashboard.js';
import * as policies from './pages/policies.js';
import * as sas from './pages/sas.js';
import * as ike from './pages/ike.js';
import * as eventsPage from './pages/events.js';
import * as settings from './pages/settings.js';

const pages = { login, dashboard, policies, sas, ike, events: eventsPage, settings };
const $ = sel => document.querySelector(sel);

// What a page registers while shown (timers, subscriptions); all undone when it is left.
class PageLife {
	constructor() {
		this.alive = true;
		this.undo = [];
	}
	every(ms, fn) {
		const t = setInterval(fn, ms);
		this.undo.push(() => clearInterval(t));
	}
	on(unsubscribe) {
		this.undo.push(unsubscribe);
	}
	end() {
		this.alive = false;
		for (const fn of this.undo)
			fn();
	}
}

let life = null;

function routeName() {
	const m = location.hash.match(/^#\/([a-z]+)/);
	return m ? m[1] : '';
}

function showShell(loggedIn) {
	$('.nav').hidden = !loggedIn;
	$('.who').hidden = !loggedIn;
	$('[data-testid="whoami"]').textContent = loggedIn ? `${session.user} (${session.role})` : '';
	if (!loggedIn)
		$('[data-testid="admin-state-banner"]').hidden = true;
	document.body.classList.toggle('readonly', loggedIn && session.role !== 'admin');
}

function render() {
	let name = routeName();
	if (!session.user && name !== 'login') {
		location.hash = '#/login';
		return;
	}
	if (session.user && (name === 'login' || !pages[name])) {
		location.hash = '#/dashboard';
		return;
	}
	if (life)
		life.end();
	life = new PageLife();
	showShell(!!session.user);
	for (const a of document.querySelectorAll('[data-nav]'))
		a.classList.toggle('active', a.dataset.nav === name);
	closeMenu();
	const root = h('div', { testid: 'page-' + name, class: 'page page-' + name });
	clear($('#page')).append(root);
	pages[name].render(root, life);
}

export async function loggedIn(me) {
	session.user = me.user;
	session.role = me.role;
	session.id = me.id;
	session.csrf = me.csrf || null;
	$('[data-testid="session-expired"]').hidden = true;
	try {
		session.id = (await api('GET', '/whoami')).id;
	} catch {
		// only the own-password form needs the id
	}
	startLive();
	go('dashboard');
}

function go(name) {
	if (routeName() === name)
		render();
	else
		location.hash = '#/' + name;
}

function expired() {
	if (!session.user)
		return;
	session.user = session.role = session.csrf = null;
	stopLive();
	$('[data-testid="session-expired"]').hidden = false;
	go('login');
}

async function logout() {
	try {
		await api('POST', '/logout', undefined, { quiet401: true });
	} catch {
		// gone already: logged out either way
	}
	session.user = session.role = session.csrf = null;
	stopLive();
	go('login');
}

function closeMenu() {
	$('.nav').classList.remove('open');
	$('.menu-toggle').setAttribute('aria-expanded', 'false');
}

function wireBadge(s) {
	const b = $('[data-testid="wire-state"]');
	const up = s.last && s.last.wire === 'up';
	b.textContent = s.last ? s.last.wire : '-';
	b.className = 'wire-badge ' + (up ? 'up' : 'down');
	b.dataset.state = s.last ? s.last.wire : 'unknown';
}

async function boot() {
	onSessionExpired(expired);
	$('[data-testid="logout"]').addEventListener('click', logout);
	$('.menu-toggle').addEventListener('click', () => {
		const open = $('.nav').classList.toggle('open');
		$('.menu-toggle').setAttribute('aria-expanded', String(open));
	});
	const dlg = $('[data-testid="confirm-dialog"]');
	$('[data-testid="confirm-ok"]').addEventListener('click', () => dlg.close('ok'));
	$('[data-testid="confirm-cancel"]').addEventListener('click', () => dlg.close('cancel'));
	onStats(wireBadge);
	followInShell($('[data-testid="admin-state"]'), $('[data-testid="admin-state-banner"]'));
	window.addEventListener('hashchange', render);
	try {
		const me = await api('GET', '/whoami', undefined, { quiet401: true });
		session.user = me.user;
		session.role = me.role;
		session.id = me.id;
		session.csrf = me.csrf || null;
		startLive();
	} catch {
		// not logged in: the router shows the login page
	}
	render();
}

boot();
