// security.mjs: the security headers, no request leaving bitwd's origin, no CSP violation, and a usable layout at desktop and phone sizes.
import { Rest, Run, expect, login, tid, until, WAIT, world } from './lib.mjs';

const run = new Run('security');
const A = world.sites.A;
const ROUTES = ['dashboard', 'policies', 'sas', 'ike', 'events', 'settings'];
const origin = new URL(A.url).origin;
await run.launch();

await run.step('/ and the script it loads carry a strict Content-Security-Policy and nosniff', async () => {
	const r = await new Rest(A, null).raw('GET', '/');
	expect(r.status === 200 && /<html/i.test(r.text), `GET / answers the page (HTTP ${r.status})`);
	const csp = r.headers.get('content-security-policy') || '';
	for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"])
		expect(csp.includes(d), `CSP has ${d}`);
	expect(!/unsafe-inline|unsafe-eval/.test(csp), `CSP allows neither inline code nor eval (${csp})`);
	expect(r.headers.get('x-content-type-options') === 'nosniff', 'X-Content-Type-Options: nosniff');
	expect(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(r.text), 'index.html has no inline script');
	const src = /<script[^>]*\bsrc="([^"]+)"/i.exec(r.text);
	expect(src, 'index.html loads a script file');
	const js = await new Rest(A, null).raw('GET', new URL(src[1], `${A.url}/`).pathname);
	expect(js.status === 200 && /javascript/.test(js.headers.get('content-type') || ''), `its script is served as JavaScript (${js.headers.get('content-type')})`);
	expect((js.headers.get('content-security-policy') || '').includes("script-src 'self'"), 'the script reply has the CSP too');
});

// Every page reached through the navigation, the way a user would; returns what went wrong on the way.
async function tour(page, label, width) {
	await login(page, A);
	for (const route of ROUTES) {
		let link = page.locator(`a[data-nav="${route}"]`).first();
		if (!(await link.isVisible())) {
			const toggle = tid(page, 'nav-toggle');
			expect(await toggle.isVisible(), `${label}: the ${route} link is hidden and nav-toggle opens the navigation`);
			await toggle.click();
			link = page.locator(`a[data-nav="${route}"]`).first();
		}
		await link.click();
		await page.waitForURL(new RegExp(`#/${route}$`), { timeout: WAIT });
		await tid(page, `page-${route}`).waitFor({ timeout: WAIT });
		await page.waitForTimeout(300); // the page's first data has arrived (it polls and streams: never network-idle)
		const m = await page.evaluate(() => ({
			inner: window.innerWidth,
			doc: document.documentElement.scrollWidth,
			body: document.body.scrollWidth,
		}));
		expect(m.doc <= m.inner && m.body <= m.inner, `${label} ${route}: nothing is wider than the ${width} px window (${JSON.stringify(m)})`);
	}
}

for (const [label, width, height] of [['desktop', 1280, 800], ['phone', 390, 844]]) {
	await run.step(`${label} ${width}x${height}: every page reachable from the navigation, none overflows sideways`, async () => {
		const page = await run.page({ label, width, height });
		await tour(page, label, width);
		const away = page.requests.filter((u) => !u.startsWith(`${origin}/`) && !/^(data|blob):/.test(u));
		expect(page.requests.length > 0 && away.length === 0,
			`all ${page.requests.length} requests went to ${origin}${away.length ? `; these did not: ${away.join(' ')}` : ''}`);
		const csp = page.problems.filter((p) => /Content Security Policy|Refused to/i.test(p));
		expect(csp.length === 0, `no CSP violation${csp.length ? `: ${csp.join('; ')}` : ''}`);
		const errors = page.problems.filter((p) => /page error/.test(p));
		expect(errors.length === 0, `no uncaught script error${errors.length ? `: ${errors.join('; ')}` : ''}`);
	});
}

await run.step('the UI answers an unknown route with the dashboard', async () => {
	const page = run.pages[0];
	await page.goto(`${A.url}/#/no-such-page`);
	await until(async () => /#\/dashboard$/.test(page.url()), 'an unknown route goes to the dashboard');
});

await run.done();
