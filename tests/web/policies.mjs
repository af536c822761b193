// policies.mjs: a policy created through the form, seen in the table and over REST, edited, refused with a bad selector, deleted.
import { Rest, Run, expect, go, login, setField, tid, until, WAIT, world } from './lib.mjs';

const run = new Run('policies');
const A = world.sites.A;
const rest = new Rest(A);
await run.launch();
const page = await run.page({ label: 'A' });
const row = (name) => tid(page, 'policy-table').locator(`[data-testid="policy-row"][data-name="${name}"]`);
const stored = async (name) => (await rest.items('/api/v1/policies')).find((p) => p.name === name);
const NAME = 'web-udp';

await run.step('log in and open the policies page: the table holds the policies made over REST, in evaluation order', async () => {
	await login(page, A);
	await go(page, 'policies');
	await row('lan4').waitFor({ timeout: WAIT });
	const names = await tid(page, 'policy-row').evaluateAll((rows) => rows.map((r) => r.dataset.name));
	expect(JSON.stringify(names) === JSON.stringify(['gw4', 'lan4']), `gw4 (priority 1) before lan4 (priority 3): ${names}`);
});

await run.step('create a policy through the form: it shows in the table and in GET /api/v1/policies', async () => {
	await tid(page, 'policy-new').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	await setField(page, 'policy-field-name', NAME);
	await setField(page, 'policy-field-action', 'discard');
	await setField(page, 'policy-field-priority', '2');
	await setField(page, 'policy-field-protocol', 'udp');
	await setField(page, 'policy-field-src', '198.18.1.0/24');
	await setField(page, 'policy-field-dst', '198.18.2.0/24');
	await setField(page, 'policy-field-dst_port', '5000-5999');
	await tid(page, 'policy-save').click();
	await row(NAME).waitFor({ timeout: WAIT });
	expect(!(await tid(page, 'policy-form').isVisible()), 'the form closed after saving');
	const p = await stored(NAME);
	expect(p && p.action === 'discard' && p.priority === 2 && p.protocol === 'udp' && p.src === '198.18.1.0/24' &&
		p.dst === '198.18.2.0/24' && String(p.dst_port) === '5000-5999', `the REST API has it as entered: ${JSON.stringify(p)}`);
	const names = await tid(page, 'policy-row').evaluateAll((rows) => rows.map((r) => r.dataset.name));
	expect(JSON.stringify(names) === JSON.stringify(['gw4', NAME, 'lan4']), `priority 2 is listed between 1 and 3: ${names}`);
	expect((await row(NAME).getByTestId('policy-action').textContent()).includes('discard'), 'its row shows the action');
	expect((await row(NAME).getByTestId('policy-dst').textContent()).includes('198.18.2.0/24'), 'its row shows the destination');
	const packets = ((await row(NAME).getByTestId('policy-packets').textContent()) || '').trim();
	expect(/^\d+$/.test(packets), `its packet counter is an integer ("${packets}")`);
});

await run.step('edit it: the form is filled with the stored values, the change reaches the table and REST', async () => {
	await row(NAME).getByTestId('policy-edit').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	expect((await tid(page, 'policy-field-dst').inputValue()) === '198.18.2.0/24', 'the form shows the stored destination');
	await setField(page, 'policy-field-dst', '198.18.2.128/25');
	await tid(page, 'policy-save').click();
	await until(async () => ((await row(NAME).getByTestId('policy-dst').textContent()) || '').includes('198.18.2.128/25'),
		'the table shows the new destination');
	const p = await stored(NAME);
	expect(p.dst === '198.18.2.128/25' && p.action === 'discard' && p.protocol === 'udp', `REST has the edit: ${JSON.stringify(p)}`);
});

await run.step('a bad selector is shown next to its field and nothing is stored', async () => {
	await row(NAME).getByTestId('policy-edit').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	await setField(page, 'policy-field-dst', '198.18.2.300');
	await tid(page, 'policy-save').click();
	const err = tid(page, 'field-error-dst');
	await until(async () => (await err.isVisible()) && ((await err.textContent()) || '').trim(), 'field-error-dst says what is wrong');
	expect(!(((await tid(page, 'field-error-src').textContent()) || '').trim()), 'the src field has no error');
	expect(await tid(page, 'policy-form').isVisible(), 'the form stays open');
	expect((await stored(NAME)).dst === '198.18.2.128/25', 'the stored policy is unchanged');
	await tid(page, 'policy-cancel').click();
	await until(async () => !(await tid(page, 'policy-form').isVisible()), 'cancel closes the form');
});

await run.step('the server\'s own problem+json lands next to the field it names (a duplicate name)', async () => {
	await tid(page, 'policy-new').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	await setField(page, 'policy-field-name', 'lan4');
	await setField(page, 'policy-field-action', 'discard');
	await setField(page, 'policy-field-dst', '203.0.113.0/24');
	await tid(page, 'policy-save').click();
	const err = tid(page, 'field-error-name');
	const form = tid(page, 'form-error');
	const shown = await until(async () => {
		const a = (await err.isVisible()) ? ((await err.textContent()) || '').trim() : '';
		const b = (await form.isVisible()) ? ((await form.textContent()) || '').trim() : '';
		return a || b;
	}, 'the conflict is shown in the form');
	expect(shown.length > 0, `the form says why ("${shown}")`);
	expect((await rest.items('/api/v1/policies')).length === 3, 'no policy was added');
	await tid(page, 'policy-cancel').click();
});

await run.step('reorder within a priority with the up button; the ends and the priority boundary cannot move', async () => {
	await rest.call('POST', '/api/v1/policies', { name: 'web-second', priority: 2, action: 'bypass', dst: '203.0.113.0/24' }, [201]);
	await go(page, 'dashboard');
	await go(page, 'policies');
	await row('web-second').waitFor({ timeout: WAIT });
	const names = async () => tid(page, 'policy-row').evaluateAll((rows) => rows.map((r) => r.dataset.name));
	expect(JSON.stringify(await names()) === JSON.stringify(['gw4', NAME, 'web-second', 'lan4']), `a new policy goes last in its priority: ${await names()}`);
	expect((await row(NAME).getByTestId('policy-up').getAttribute('disabled')) !== null, 'the first of priority 2 cannot go up past priority 1');
	expect((await row('web-second').getByTestId('policy-down').getAttribute('disabled')) !== null, 'the last of priority 2 cannot go down past priority 3');
	await row('web-second').getByTestId('policy-up').click();
	await until(async () => JSON.stringify(await names()) === JSON.stringify(['gw4', 'web-second', NAME, 'lan4']), 'the table shows web-second moved up');
	const order = (await rest.items('/api/v1/policies')).filter((p) => p.priority === 2).sort((a, b) => a.order - b.order).map((p) => p.name);
	expect(JSON.stringify(order) === JSON.stringify(['web-second', NAME]), `REST has the new order: ${order}`);
	await row('web-second').getByTestId('policy-delete').click();
	await until(async () => (await row('web-second').count()) === 0, 'web-second deleted again');
});

await run.step('the events page lists the policy changes and filters them as one types', async () => {
	await go(page, 'events');
	const items = tid(page, 'events-log').getByTestId('event-item');
	await until(async () => (await items.count()) >= 4, 'the log has the configuration changes');
	await tid(page, 'events-filter').fill('policy.delete');
	await until(async () => {
		const texts = await items.allTextContents();
		return texts.length >= 1 && texts.every((t) => t.includes('policy.delete')) && texts;
	}, 'only the deletion of web-second is left');
	await tid(page, 'events-filter').fill('POLICY.CREATE');
	await until(async () => {
		const texts = await items.allTextContents();
		return texts.length >= 4 && texts.every((t) => t.includes('policy.create')) && texts;
	}, 'the four creations are left (the filter ignores case)');
	await tid(page, 'events-filter').fill('no-such-thing-at-all');
	await until(async () => (await items.count()) === 0, 'a filter nothing matches leaves the list empty');
	await go(page, 'policies');
	await row(NAME).waitFor({ timeout: WAIT });
});

await run.step('delete it: gone from the table and from REST', async () => {
	await row(NAME).getByTestId('policy-delete').click();
	await until(async () => (await row(NAME).count()) === 0, 'the row disappears');
	expect(!(await stored(NAME)), 'GET /api/v1/policies no longer has it');
	expect((await tid(page, 'policy-row').count()) === 2, 'the two other policies remain');
});

await run.done();
