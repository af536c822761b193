// session.mjs: a session ended on the server (as on expiry) makes the open UI say so and ask for a new login.
import { Rest, Run, expect, go, login, tid, until, WAIT, world } from './lib.mjs';

const run = new Run('session');
const A = world.sites.A;
await run.launch();
const page = await run.page({ label: 'A' });

await run.step('log in; the session works', async () => {
	await login(page, A);
	await go(page, 'policies');
	await tid(page, 'policy-table').waitFor({ timeout: WAIT });
	expect(!(await tid(page, 'session-expired').isVisible()), 'no expiry message while the session lives');
});

await run.step('the session is deleted on the server behind the page\'s back', async () => {
	const cookie = (await page.context().cookies()).find((c) => c.name === 'bitw_session');
	expect(cookie, 'the browser holds a bitw_session cookie');
	const asPage = new Rest(A, null);
	const h = { Cookie: `bitw_session=${cookie.value}` };
	const who = await asPage.raw('GET', '/api/v1/whoami', undefined, h);
	expect(who.status === 200 && who.json.csrf, `whoami with the page's cookie gives its CSRF token (HTTP ${who.status})`);
	const out = await asPage.raw('POST', '/api/v1/logout', undefined, { ...h, 'X-Bitw-CSRF': who.json.csrf });
	expect(out.status === 204, `POST /api/v1/logout with that cookie ends the session (HTTP ${out.status})`);
});

await run.step('the open page notices (its polling gets a 401) and shows session-expired on the login form', async () => {
	await go(page, 'dashboard');
	const msg = tid(page, 'session-expired');
	await msg.waitFor({ state: 'visible', timeout: WAIT });
	expect(((await msg.textContent()) || '').trim().length > 0, `the message says something ("${(await msg.textContent()).trim()}")`);
	await until(async () => /#\/login$/.test(page.url()) && (await tid(page, 'login-user').isVisible()), 'the login form is shown');
});

await run.step('logging in again works and clears the message', async () => {
	await login(page, A);
	expect(!(await tid(page, 'session-expired').isVisible()), 'session-expired is gone after the new login');
	await tid(page, 'port-red').waitFor({ timeout: WAIT });
});

await run.done();
