// login.mjs: logging in (a wrong password is refused on the page), who is logged in, logging out.
import { Rest, Run, expect, login, tid, until, WAIT, world } from './lib.mjs';

const run = new Run('login');
const A = world.sites.A;
await run.launch();
const page = await run.page({ label: 'A' });

await run.step('an unauthenticated visit lands on the login form', async () => {
	await page.goto(`${A.url}/`);
	await tid(page, 'login-user').waitFor({ timeout: WAIT });
	expect(/#\/login$/.test(page.url()), `the URL is the login route (${page.url()})`);
	expect(!(await tid(page, 'whoami').isVisible()), 'nobody is shown as logged in');
});

await run.step('a wrong password shows login-error and keeps the login form', async () => {
	await tid(page, 'login-user').fill('admin');
	await tid(page, 'login-password').fill(`${A.password}-wrong`);
	await tid(page, 'login-submit').click();
	const err = tid(page, 'login-error');
	await err.waitFor({ state: 'visible', timeout: WAIT });
	expect(((await err.textContent()) || '').trim().length > 0, `login-error says something ("${await err.textContent()}")`);
	expect(/#\/login$/.test(page.url()), 'still on the login route');
	expect((await page.context().cookies()).every((c) => c.name !== 'bitw_session'), 'no session cookie was set');
	expect(!(await page.content()).includes(`${A.password}-wrong`), 'the password typed is not rendered back');
});

await run.step('the right password leads to the dashboard, whoami names the admin', async () => {
	await login(page, A);
	const who = (await tid(page, 'whoami').textContent()) || '';
	expect(who.includes('admin'), `whoami shows the user and role ("${who}")`);
	const cookie = (await page.context().cookies()).find((c) => c.name === 'bitw_session');
	expect(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `the session cookie is HttpOnly, SameSite=Strict (${JSON.stringify(cookie)})`);
	await tid(page, 'port-red').waitFor({ timeout: WAIT });
});

await run.step('logout ends the session on the server and shows the login form', async () => {
	const cookie = (await page.context().cookies()).find((c) => c.name === 'bitw_session');
	await tid(page, 'logout').click();
	await tid(page, 'login-user').waitFor({ timeout: WAIT });
	expect(/#\/login$/.test(page.url()), `back on the login route (${page.url()})`);
	const r = await new Rest(A, null).raw('GET', '/api/v1/whoami', undefined, { Cookie: `bitw_session=${cookie.value}` });
	expect(r.status === 401, `the old session cookie is refused after logout (HTTP ${r.status})`);
	await page.goto(`${A.url}/#/policies`);
	await until(async () => tid(page, 'login-user').isVisible(), 'a protected route after logout shows the login form');
});

await run.done();
