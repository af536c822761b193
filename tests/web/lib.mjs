// lib.mjs: what the browser tests share: the world web.py built, chromium, REST from the test, steps that screenshot on failure.
import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const world = JSON.parse(readFileSync(process.argv[2], 'utf8'));

// As root in a closed network: no sandbox, and nothing of Chromium's own that would try to reach the outside.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
	'--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

export class Fail extends Error {}

// How long a step waits for the UI, which waits on bitwd (a REST answer, a poll, a reload of bitw-wire): long
// enough for a 2-core CI machine under load, where 10 s was seen to run out. A wait ends as soon as its
// condition holds, so an idle machine is no slower; only a real failure takes this long to report.
export const WAIT = 30000;

export function expect(cond, what) {
	if (!cond)
		throw new Fail(what);
	console.log(`# ok: ${what}`);
}

export function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

// Until fn() returns something truthy (that value), or fail saying `what` with the last value seen.
export async function until(fn, what, timeout = WAIT, every = 200) {
	const end = Date.now() + timeout;
	let last;
	for (;;) {
		last = await fn();
		if (last)
			return last;
		if (Date.now() > end)
			throw new Fail(`${what} (waited ${timeout} ms; last: ${JSON.stringify(last)})`);
		await sleep(every);
	}
}

// A test file: one browser, pages opened through it, numbered steps (TAP); the first failing step
// screenshots every open page into the artifacts directory and ends the run.
export class Run {
	constructor(name) {
		this.name = name;
		this.n = 0;
		this.pages = [];
		this.browser = null;
	}

	async launch() {
		this.browser = await chromium.launch({ executablePath: world.chromium, headless: true, args: FLAGS });
		return this.browser;
	}

	// A fresh context (own cookies) and page; `requests` collects every URL the page asks for.
	async page({ width = 1280, height = 800, label = 'page' } = {}) {
		const ctx = await this.browser.newContext({ viewport: { width, height }, acceptDownloads: true });
		const page = await ctx.newPage();
		page.setDefaultTimeout(WAIT);
		page.label = label;
		page.requests = [];
		page.problems = [];
		page.on('request', (r) => page.requests.push(r.url()));
		page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
		page.on('console', (m) => {
			if (m.type() === 'error')
				page.problems.push(`console error: ${m.text()}`);
		});
		this.pages.push(page);
		return page;
	}

	async step(title, fn) {
		this.n++;
		const t0 = Date.now();
		try {
			await fn();
			console.log(`ok ${this.n} - ${title} # ${((Date.now() - t0) / 1000).toFixed(1)} s`);
		} catch (e) {
			console.log(`not ok ${this.n} - ${title}`);
			console.log(`# ${(e instanceof Fail ? e.message : e.stack || e).toString().replace(/\n/g, '\n# ')}`);
			await this.screenshots(title);
			await this.close();
			process.exit(1);
		}
	}

	async screenshots(title) {
		mkdirSync(world.artifacts, { recursive: true });
		const slug = title.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60);
		for (const [i, p] of this.pages.entries()) {
			if (p.isClosed())
				continue;
			const file = path.join(world.artifacts, `${this.name}-${this.n}-${slug}-${p.label || i}.png`);
			try {
				await p.screenshot({ path: file, fullPage: true, timeout: 5000 });
				console.log(`# screenshot: ${file}  (url ${p.url()})`);
			} catch (e) {
				console.log(`# no screenshot of ${p.label}: ${e.message}`);
			}
			if (p.problems.length)
				console.log(`# ${p.label} console/page errors:\n#   ${p.problems.join('\n#   ')}`);
		}
	}

	async close() {
		if (this.browser)
			await this.browser.close().catch(() => {});
		this.browser = null;
	}

	async done() {
		await this.close();
		console.log(`1..${this.n}`);
		process.exit(0);
	}
}

export function tid(page, id) {
	return page.getByTestId(id);
}

// The text of an element as the integer it must be (thin/normal spaces as thousands separators allowed).
export async function intOf(loc) {
	const text = (await loc.first().textContent({ timeout: WAIT })) || '';
	const digits = text.replace(/[\s\u2009\u202f\u00a0]/g, '');
	if (!/^\d+$/.test(digits))
		throw new Fail(`${loc} shows "${text}", not a plain integer`);
	return Number(digits);
}

export async function login(page, site, user = site.user, password = site.password) {
	await page.goto(`${site.url}/#/login`);
	await tid(page, 'login-user').fill(user);
	await tid(page, 'login-password').fill(password);
	await tid(page, 'login-submit').click();
	await page.waitForURL(/#\/dashboard$/, { timeout: WAIT });
	await tid(page, 'whoami').waitFor({ timeout: WAIT });
}

export async function go(page, route) {
	const base = page.url().split('#')[0];
	await page.goto(`${base}#/${route}`);
}

// Set one form control by its test id, whatever kind of control the UI chose for it.
export async function setField(page, id, value) {
	const loc = tid(page, id);
	await loc.waitFor({ timeout: WAIT });
	const kind = await loc.evaluate((el) => el.tagName.toLowerCase() + (el.type ? ':' + el.type : ''));
	if (kind.startsWith('select'))
		await loc.selectOption(String(value));
	else if (kind === 'input:checkbox')
		await loc.setChecked(Boolean(value));
	else
		await loc.fill(String(value));
}

// Click, then accept the DOM confirmation if the UI asks for one.
export async function clickConfirm(page, loc) {
	await loc.click();
	const ok = tid(page, 'confirm-ok');
	try {
		await ok.waitFor({ state: 'visible', timeout: 1500 });
		await ok.click();
	} catch {
		// no confirmation asked
	}
}

// REST from the test itself (node's fetch, in the browser's namespace), as the admin's bearer token.
export class Rest {
	constructor(site, token = site.token) {
		this.base = site.url;
		this.token = token;
	}

	async raw(method, p, body, headers = {}) {
		const h = { ...headers };
		if (this.token && !h.Authorization && !h.Cookie)
			h.Authorization = `Bearer ${this.token}`;
		if (body !== undefined)
			h['Content-Type'] = 'application/json';
		const r = await fetch(this.base + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
		const text = await r.text();
		let json = null;
		try {
			json = text ? JSON.parse(text) : null;
		} catch {
			// not JSON
		}
		return { status: r.status, headers: r.headers, text, json };
	}

	async call(method, p, body, ok = [200, 201, 204]) {
		const r = await this.raw(method, p, body);
		if (!ok.includes(r.status))
			throw new Fail(`${method} ${p}: HTTP ${r.status} (wanted ${ok}): ${r.text.slice(0, 400)}`);
		return r.json;
	}

	get(p) {
		return this.call('GET', p);
	}

	async items(p) {
		const page = await this.get(`${p}${p.includes('?') ? '&' : '?'}limit=1000`);
		return page.items;
	}
}

// A command in one of the topology's namespaces (node `hA`, `hB`, ...): {code, stdout, stderr}.
export function nsRun(node, cmd, timeout = 60000) {
	return new Promise((resolve) => {
		execFile('ip', ['netns', 'exec', world.ns[node], ...cmd], { timeout },
			(err, stdout, stderr) => resolve({ code: err ? (err.code ?? -1) : 0, stdout, stderr }));
	});
}

export function pingReplies(out) {
	const m = /(\d+) (?:packets )?received/.exec(out);
	return m ? Number(m[1]) : 0;
}
