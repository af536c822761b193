// readonly.mjs: a read-only user sees every page, every mutating control is disabled, and the server refuses a write tried anyway.
import { Rest, Run, expect, go, login, tid, until, WAIT, world } from './lib.mjs';

const run = new Run('readonly');
const A = world.sites.A;
const rest = new Rest(A);
const viewer = { ...A, user: 'viewer', password: `ro-${Math.random().toString(36).slice(2)}-passphrase` };
await run.launch();
const page = await run.page({ label: 'viewer' });

// Controls that change something, per page (the token form is the exception: every user manages their own tokens).
const MUTATING = {
	policies: ['policy-new', 'policy-edit', 'policy-delete', 'policy-up', 'policy-down'],
	sas: ['sa-new', 'sa-delete', 'sa-flush'],
	settings: ['port-save', 'options-save', 'import-config', 'import-submit', 'user-new'],
};

async function allDisabled(route, ids) {
	let seen = 0;
	for (const id of ids) {
		const locs = await tid(page, id).all();
		for (const loc of locs) {
			seen++;
			expect((await loc.getAttribute('disabled')) !== null, `${route}: ${id} has the disabled attribute`);
		}
	}
	return seen;
}

await run.step('an admin makes a read-only user, a policy and an SA over REST', async () => {
	await rest.call('POST', '/api/v1/users', { name: viewer.user, password: viewer.password, role: 'readonly' }, [201]);
	await rest.call('POST', '/api/v1/sas', {
		spi: 4097, direction: 'out', policy: 'lan4', enc: 'aes-gcm-256', enc_key: '11'.repeat(36),
	}, [201]);
});

await run.step('the read-only user logs in and is shown as such', async () => {
	await login(page, viewer);
	const who = (await tid(page, 'whoami').textContent()) || '';
	expect(who.includes('viewer') && who.includes('readonly'), `whoami: "${who}"`);
});

await run.step('the dashboard shows the ports and counts', async () => {
	await tid(page, 'port-red').waitFor({ timeout: WAIT });
	await until(async () => ((await tid(page, 'count-policies').textContent()) || '').trim() === '2', 'count-policies shows 2');
});

await run.step('policies: listed, every mutating button disabled', async () => {
	await go(page, 'policies');
	await tid(page, 'policy-table').locator('[data-testid="policy-row"][data-name="lan4"]').waitFor({ timeout: WAIT });
	const n = await allDisabled('policies', MUTATING.policies);
	expect(n >= 1 + 2 * 4, `the new button and the four buttons of each of the two rows were checked (${n})`);
});

await run.step('SAs: listed, every mutating button disabled', async () => {
	await go(page, 'sas');
	await tid(page, 'sa-table').locator('[data-testid="sa-row"][data-spi="4097"]').waitFor({ timeout: WAIT });
	const n = await allDisabled('sas', MUTATING.sas);
	expect(n >= 3, `new, flush and the row's delete were checked (${n})`);
});

await run.step('settings: the forms are shown, every mutating control disabled, export allowed', async () => {
	await go(page, 'settings');
	await tid(page, 'export-config').waitFor({ timeout: WAIT });
	await tid(page, 'port-form-black').waitFor({ timeout: WAIT });
	const n = await allDisabled('settings', MUTATING.settings);
	expect(n >= MUTATING.settings.length, `each was checked (${n})`);
	for (const form of ['port-form-red', 'port-form-black', 'options-form']) {
		const open = await tid(page, form).locator('input:not([disabled]):not([readonly]), select:not([disabled]), textarea:not([disabled]):not([readonly])').count();
		expect(open === 0, `${form}: no input is editable (${open})`);
	}
	expect((await tid(page, 'export-config').getAttribute('disabled')) === null, 'export is not disabled (it only reads)');
});

await run.step('a write attempted from the page anyway is refused with 403 and changes nothing', async () => {
	const r = await page.evaluate(async () => {
		const who = await (await fetch('/api/v1/whoami')).json();
		const post = await fetch('/api/v1/policies', {
			method: 'POST',
			headers: { 'Content-Type': 'application/json', 'X-Bitw-CSRF': who.csrf || '' },
			body: JSON.stringify({ name: 'sneaky', action: 'discard', dst: '203.0.113.1' }),
		});
		const del = await fetch('/api/v1/sas', { method: 'DELETE', headers: { 'X-Bitw-CSRF': who.csrf || '' } });
		return { role: who.role, csrf: Boolean(who.csrf), post: post.status, del: del.status };
	});
	expect(r.role === 'readonly' && r.csrf, `the page's session is the read-only user's, with its CSRF token (${JSON.stringify(r)})`);
	expect(r.post === 403 && r.del === 403, `POST /policies and DELETE /sas answer 403 (${r.post}, ${r.del})`);
	const names = (await rest.items('/api/v1/policies')).map((p) => p.name);
	expect(!names.includes('sneaky') && (await rest.items('/api/v1/sas')).length === 1, 'nothing was stored or deleted');
});

await run.done();
