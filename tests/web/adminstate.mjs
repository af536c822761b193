// adminstate.mjs: the administrative state switched from the dashboard (drop, bypass with its typed confirmation, secure):
// the header badge and GET /api/v1/admin-state agree at each step; the banner warns; a read-only user cannot switch.
import { Rest, Run, expect, go, login, setField, sleep, tid, until, WAIT, world } from './lib.mjs';

const run = new Run('adminstate');
const A = world.sites.A;
const rest = new Rest(A);
const viewer = { ...A, user: 'viewer', password: `ro-${Math.random().toString(36).slice(2)}-passphrase` };
await run.launch();
const page = await run.page({ label: 'admin' });
const badge = () => tid(page, 'admin-state');
const served = async () => (await rest.get('/api/v1/admin-state')).state;

// The badge, the pressed button and the server all say `state`.
async function agree(state, text) {
	await until(async () => (await badge().getAttribute('data-state')) === state, `the header badge says ${state}`);
	const shown = ((await badge().textContent()) || '').trim();
	expect(shown === text, `the badge reads "${text}" ("${shown}")`);
	expect((await served()) === state, `GET /api/v1/admin-state answers ${state}`);
	const pressed = await tid(page, `admin-state-${state}`).getAttribute('aria-pressed');
	expect(pressed === 'true', `the dashboard's ${state} button is the pressed one`);
}

await run.step('log in: the box is secure, the badge says so and no banner is shown', async () => {
	await login(page, A);
	await tid(page, 'admin-state-control').waitFor({ timeout: WAIT });
	await agree('secure', 'secure');
	expect(!(await tid(page, 'admin-state-banner').isVisible()), 'no banner while secure');
});

await run.step('drop all: asks a confirmation, then badge, banner and REST say drop', async () => {
	await tid(page, 'admin-state-drop').click();
	await tid(page, 'confirm-dialog').waitFor({ state: 'visible', timeout: WAIT });
	expect(!(await tid(page, 'confirm-input').isVisible()), 'drop needs no typed word');
	await tid(page, 'confirm-ok').click();
	await agree('drop', 'DROP ALL');
	const banner = (await tid(page, 'admin-state-banner').textContent()) || '';
	expect(banner.includes('DROP ALL'), `the banner says DROP ALL ("${banner}")`);
});

await run.step('bypass all: cancelled, then refused until BYPASS is typed (then Enter confirms), badge, banner and REST say bypass', async () => {
	await tid(page, 'admin-state-bypass').click();
	await tid(page, 'confirm-input').waitFor({ state: 'visible', timeout: WAIT });
	const warning = (await page.locator('[data-testid="confirm-dialog"] .confirm-text').textContent()) || '';
	expect(/clear text/i.test(warning), `the dialog warns that traffic will cross in clear ("${warning}")`);
	await tid(page, 'confirm-cancel').click();
	await sleep(500);
	expect((await served()) === 'drop' && (await badge().getAttribute('data-state')) === 'drop', 'cancel changed nothing');

	await tid(page, 'admin-state-bypass').click();
	await tid(page, 'confirm-input').waitFor({ state: 'visible', timeout: WAIT });
	expect(await tid(page, 'confirm-ok').isDisabled(), 'OK is disabled before the word is typed');
	await tid(page, 'confirm-input').fill('bypass');
	expect(await tid(page, 'confirm-ok').isDisabled(), 'OK stays disabled for a wrong word (lower case)');
	await tid(page, 'confirm-input').fill('BYPASS');
	expect(!(await tid(page, 'confirm-ok').isDisabled()), 'OK is enabled once BYPASS is typed');
	await tid(page, 'confirm-input').press('Enter');
	await agree('bypass', 'BYPASS ALL');
	const banner = (await tid(page, 'admin-state-banner').textContent()) || '';
	expect(/BYPASS ALL/.test(banner) && /clear text/i.test(banner), `the banner warns in clear words ("${banner}")`);
	const color = await badge().evaluate((el) => getComputedStyle(el).backgroundColor);
	expect(/^rgb\((2[0-5]\d|1[5-9]\d), \d{1,2}, \d{1,2}\)$/.test(color), `the badge is red (${color})`);
});

await run.step('the badge and banner are on every page and follow a change made behind the UI\'s back', async () => {
	await go(page, 'policies');
	await tid(page, 'page-policies').waitFor({ timeout: WAIT });
	expect((await badge().getAttribute('data-state')) === 'bypass', 'the policies page shows bypass in the header');
	expect(await tid(page, 'admin-state-banner').isVisible(), 'and the banner');
	await rest.call('PUT', '/api/v1/admin-state', { state: 'drop' }, [200, 503]);
	await until(async () => (await badge().getAttribute('data-state')) === 'drop', 'the badge follows to drop within a poll');
});

await run.step('saving the options on the settings page keeps the administrative state', async () => {
	await go(page, 'settings');
	await tid(page, 'options-form').waitFor({ timeout: WAIT });
	await setField(page, 'options-field-nat_keepalive', '25');
	await tid(page, 'options-save').click();
	await until(async () => (await rest.get('/api/v1/options')).nat_keepalive === 25, 'the options were saved');
	expect((await served()) === 'drop', 'the state is still drop');
});

await run.step('secure again: no confirmation, badge and REST say secure, the banner is gone', async () => {
	await go(page, 'dashboard');
	await tid(page, 'admin-state-secure').click();
	await agree('secure', 'secure');
	expect(!(await tid(page, 'confirm-dialog').isVisible()), 'no dialog for secure');
	await until(async () => !(await tid(page, 'admin-state-banner').isVisible()), 'the banner is gone');
});

await run.step('a read-only user sees the state and cannot change it', async () => {
	await rest.call('POST', '/api/v1/users', { name: viewer.user, password: viewer.password, role: 'readonly' }, [201]);
	await rest.call('PUT', '/api/v1/admin-state', { state: 'drop' }, [200, 503]);
	const ro = await run.page({ label: 'viewer' });
	await login(ro, viewer);
	await tid(ro, 'admin-state-control').waitFor({ timeout: WAIT });
	await until(async () => (await tid(ro, 'admin-state').getAttribute('data-state')) === 'drop', 'the viewer sees drop');
	for (const s of ['secure', 'bypass', 'drop'])
		expect((await tid(ro, `admin-state-${s}`).getAttribute('disabled')) !== null, `admin-state-${s} is disabled`);
	const status = await ro.evaluate(async () => {
		const who = await (await fetch('/api/v1/whoami')).json();
		const r = await fetch('/api/v1/admin-state', { method: 'PUT', body: '{"state":"bypass"}',
			headers: { 'Content-Type': 'application/json', 'X-Bitw-CSRF': who.csrf || '' } });
		return r.status;
	});
	expect(status === 403 && (await served()) === 'drop', `a PUT from the viewer's page is refused (${status}), nothing changed`);
	await rest.call('PUT', '/api/v1/admin-state', { state: 'secure' }, [200, 503]);
});

await run.done();
