// policyopts.mjs: a protect policy's advanced options (ECN, DF, TFC padding, dummy packets, 96-bit ICV) set through the
// form's "Advanced" section, seen in the table and in GET /api/v1/policies/{id}, edited; the SA pages count dummy packets;
// a transport-mode policy and its SA entered through the forms; an AH policy cloning per host and its AH SA, then
// made a cloned AH + ESP bundle; an IKE peer's DPD timeout through the peer form and the peers table.
import { Rest, Run, expect, go, login, setField, tid, until, WAIT, world } from './lib.mjs';

const run = new Run('policyopts');
const A = world.sites.A;
const rest = new Rest(A);
await run.launch();
const page = await run.page({ label: 'A' });
const row = (name) => tid(page, 'policy-table').locator(`[data-testid="policy-row"][data-name="${name}"]`);
const NAME = 'web-opts';
let id = 0;

await run.step('the form offers the advanced options, folded, with their help', async () => {
	await login(page, A);
	await go(page, 'policies');
	await row('lan4').waitFor({ timeout: WAIT });
	await tid(page, 'policy-new').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	expect(!(await tid(page, 'policy-field-tfc_pad').isVisible()), 'the advanced options start folded');
	await tid(page, 'policy-advanced-toggle').click();
	for (const f of ['ecn', 'df', 'pad_check', 'tfc_pad', 'dummy_interval_ms', 'icv_96'])
		await tid(page, `policy-field-${f}`).waitFor({ state: 'visible', timeout: WAIT });
	expect(true, 'ecn, df, pad_check, tfc_pad, dummy_interval_ms and icv_96 are offered');
	const help = (await tid(page, 'policy-advanced').textContent()) || '';
	expect(/RFC 6040/.test(help) && /dummy/i.test(help), 'with inline help');
	const defaults = { ecn: await tid(page, 'policy-field-ecn').isChecked(),
		pad_check: await tid(page, 'policy-field-pad_check').isChecked(), df: await tid(page, 'policy-field-df').inputValue() };
	expect(defaults.ecn && defaults.pad_check && defaults.df === 'clear', `the defaults are shown: ${JSON.stringify(defaults)}`);
	await setField(page, 'policy-field-action', 'bypass');
	expect(!(await tid(page, 'policy-advanced').isVisible()), 'a bypass policy has no advanced options');
	await setField(page, 'policy-field-action', 'protect');
	expect(await tid(page, 'policy-advanced').isVisible(), 'back for protect');
});

await run.step('create a protect policy with options: GET /api/v1/policies/{id} has them, the row shows them', async () => {
	await setField(page, 'policy-field-name', NAME);
	await setField(page, 'policy-field-src', '198.18.1.0/24');
	await setField(page, 'policy-field-dst', '198.18.3.0/24');
	await setField(page, 'policy-field-peer', world.wan.B);
	await setField(page, 'policy-field-ecn', false);
	await setField(page, 'policy-field-df', 'copy');
	await setField(page, 'policy-field-tfc_pad', '200');
	await setField(page, 'policy-field-dummy_interval_ms', '50');
	await setField(page, 'policy-field-icv_96', true);
	await tid(page, 'policy-save').click();
	await row(NAME).waitFor({ timeout: WAIT });
	id = Number(await row(NAME).getAttribute('data-id'));
	const p = await rest.get(`/api/v1/policies/${id}`);
	expect(p.ecn === false && p.df === 'copy' && p.tfc_pad === 200 && p.dummy_interval_ms === 50 && p.icv_96 === true &&
		p.pad_check === true && p.mode === 'tunnel', `REST has the options as entered: ${JSON.stringify(p)}`);
	const flags = (await row(NAME).getByTestId('policy-flags').textContent()) || '';
	for (const f of ['no ECN', 'DF copy', 'TFC ≤200', 'dummy ~50 ms', 'ICV-96'])
		expect(flags.includes(f), `the row's options say "${f}" ("${flags}")`);
	expect(!flags.includes('pad check'), 'an option left at its default is not listed');
	expect(((await row(NAME).getByTestId('policy-mode').textContent()) || '') === 'tunnel', 'the row shows the mode');
	expect(((await row('gw4').getByTestId('policy-flags').count())) === 0, 'a bypass policy shows no mode or options');
});

await run.step('edit it: the fold opens with the stored values; one change reaches REST, the others stay', async () => {
	await row(NAME).getByTestId('policy-edit').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	expect(await tid(page, 'policy-field-tfc_pad').isVisible(), 'the advanced options are unfolded (they differ from the defaults)');
	expect((await tid(page, 'policy-field-tfc_pad').inputValue()) === '200' &&
		!(await tid(page, 'policy-field-ecn').isChecked()) &&
		(await tid(page, 'policy-field-df').inputValue()) === 'copy', 'the form shows the stored options');
	await setField(page, 'policy-field-tfc_pad', '0');
	await setField(page, 'policy-field-pad_check', false);
	await tid(page, 'policy-save').click();
	await until(async () => !((await row(NAME).getByTestId('policy-flags').textContent()) || '').includes('TFC'),
		'the row no longer lists TFC padding');
	const p = await rest.get(`/api/v1/policies/${id}`);
	expect(p.tfc_pad === 0 && p.pad_check === false && p.ecn === false && p.df === 'copy' && p.dummy_interval_ms === 50 &&
		p.icv_96 === true, `REST has the edit and kept the rest: ${JSON.stringify(p)}`);
	expect(((await row(NAME).getByTestId('policy-flags').textContent()) || '').includes('no pad check'), 'the row lists no pad check');
});

await run.step('values out of range are refused next to their field (by the form, by the server) and nothing changes', async () => {
	await row(NAME).getByTestId('policy-edit').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	await setField(page, 'policy-field-tfc_pad', '5000');
	await tid(page, 'policy-save').click();
	const err = tid(page, 'field-error-tfc_pad');
	await until(async () => ((await err.textContent()) || '').trim() !== '', 'field-error-tfc_pad says why');
	expect((await rest.get(`/api/v1/policies/${id}`)).tfc_pad === 0, 'REST still has 0');
	await setField(page, 'policy-field-tfc_pad', '0');
	await setField(page, 'policy-field-dummy_interval_ms', '5');
	await tid(page, 'policy-save').click();
	const derr = tid(page, 'field-error-dummy_interval_ms');
	await until(async () => ((await derr.textContent()) || '').trim() !== '', 'the server\'s refusal of 5 ms is shown beside its field');
	console.log(`# server says: ${await derr.textContent()}`);
	expect((await rest.get(`/api/v1/policies/${id}`)).dummy_interval_ms === 50, 'REST still has 50 ms');
	await tid(page, 'policy-cancel').click();
});

await run.step('an outbound SA of the policy sends dummy packets: the SA pages count them', async () => {
	await rest.call('POST', '/api/v1/sas', { spi: 5001, direction: 'out', policy: NAME, enc: 'aes-cbc-128',
		enc_key: '22'.repeat(16), integ: 'hmac-sha256-128', integ_key: '33'.repeat(32) }, [201, 503]);
	await go(page, 'sas');
	const sad = tid(page, 'sad-table').locator('[data-testid="sad-row"][data-spi="5001"]');
	await sad.waitFor({ timeout: WAIT });
	const n = await until(async () => {
		const t = ((await sad.getByTestId('sad-dummy').textContent()) || '').trim();
		return /^\d+$/.test(t) && Number(t) > 0 ? Number(t) : 0;
	}, 'the SAD row counts dummy packets', 15000);
	const live = (await rest.items('/api/v1/sad')).find((s) => s.spi === 5001);
	expect(live && live.dummy_packets >= n, `GET /api/v1/sad agrees (${live && live.dummy_packets} >= ${n})`);
	const stored = tid(page, 'sa-table').locator('[data-testid="sa-row"][data-spi="5001"]');
	await until(async () => Number(((await stored.getByTestId('sa-dummy').textContent()) || '0').trim()) > 0,
		'the manual SA row counts them too');
});

await run.step('transport mode: a policy for one host and its SA through the forms, shown as transport', async () => {
	await go(page, 'policies');
	await row(NAME).waitFor({ timeout: WAIT });
	await tid(page, 'policy-new').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	const modes = await tid(page, 'policy-field-mode').evaluate((el) => [...el.options].map((o) => o.value));
	expect(JSON.stringify(modes) === '["tunnel","transport"]', `the mode select offers tunnel and transport (${modes})`);
	const help = (await page.locator('#policy-mode-help').textContent()) || '';
	expect(/one host/.test(help), `with help on what transport means ("${help}")`);
	await setField(page, 'policy-field-name', 'web-host');
	await setField(page, 'policy-field-priority', '2');
	await setField(page, 'policy-field-src', world.hosts.A4);
	await setField(page, 'policy-field-dst', '198.18.2.0/24');
	await setField(page, 'policy-field-peer', world.hosts.B4);
	await setField(page, 'policy-field-mode', 'transport');
	await tid(page, 'policy-save').click();
	await row('web-host').waitFor({ timeout: WAIT });
	const p = (await rest.items('/api/v1/policies')).find((x) => x.name === 'web-host');
	expect(p && p.mode === 'transport' && p.src === world.hosts.A4 && p.peer === world.hosts.B4,
		`REST has a transport policy: ${JSON.stringify(p)}`);
	expect(((await row('web-host').getByTestId('policy-mode').textContent()) || '') === 'transport', 'the row says transport');

	await go(page, 'sas');
	await tid(page, 'sa-new').click();
	await tid(page, 'sa-form').waitFor({ timeout: WAIT });
	const label = await tid(page, 'sa-field-policy').locator('option[value="web-host"]').textContent();
	expect(/transport/.test(label || ''), `the SA form's policy choice names the mode ("${label}")`);
	await setField(page, 'sa-field-spi', '5002');
	await setField(page, 'sa-field-direction', 'out');
	await setField(page, 'sa-field-policy', 'web-host');
	await setField(page, 'sa-field-enc', 'aes-gcm-128');
	await setField(page, 'sa-field-enc_key', '44'.repeat(20));
	await setField(page, 'sa-field-integ', 'none');
	await tid(page, 'sa-save').click();
	const sa = tid(page, 'sa-table').locator('[data-testid="sa-row"][data-spi="5002"]');
	await sa.waitFor({ timeout: WAIT });
	expect(((await sa.getByTestId('sa-mode').textContent()) || '') === 'transport', 'its row says transport');
	const stored = (await rest.items('/api/v1/sas')).find((x) => x.spi === 5002);
	expect(stored && stored.policy === 'web-host', `REST has the SA: ${JSON.stringify(stored)}`);
	const live = tid(page, 'sad-table').locator('[data-testid="sad-row"][data-spi="5002"]');
	await live.waitFor({ timeout: WAIT });
	const tunnel = (await live.locator('td').nth(3).textContent()) || '';
	expect(tunnel.startsWith(world.hosts.A4), `the wire's SA starts at the host, not at bitw ("${tunnel}")`);
});

await run.step('AH and cloning: a policy with SA type AH cloning per source host, its AH SA through the forms', async () => {
	await go(page, 'policies');
	await row(NAME).waitFor({ timeout: WAIT });
	await tid(page, 'policy-new').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	const types = await tid(page, 'policy-field-sa_type').evaluate((el) => [...el.options].map((o) => o.textContent));
	expect(types.length === 3 && /AH \(integrity only/.test(types[1]) && /AH \+ ESP/.test(types[2]),
		`the SA type select says what each type is (${types})`);
	await setField(page, 'policy-field-name', 'web-ah');
	await setField(page, 'policy-field-src', '198.18.1.0/24');
	await setField(page, 'policy-field-dst', '198.18.4.0/24');
	await setField(page, 'policy-field-peer', world.wan.B);
	await setField(page, 'policy-field-sa_type', 'ah');
	await setField(page, 'policy-field-clone', 'src');
	await tid(page, 'policy-save').click();
	await row('web-ah').waitFor({ timeout: WAIT });
	const p = (await rest.items('/api/v1/policies')).find((x) => x.name === 'web-ah');
	expect(p && p.sa_type === 'ah' && p.clone === 'src', `REST has sa_type ah, clone src: ${JSON.stringify(p)}`);
	const flags = (await row('web-ah').getByTestId('policy-flags').textContent()) || '';
	expect(flags.includes('AH') && flags.includes('clone per src host'), `the row says AH and the cloning ("${flags}")`);

	await go(page, 'sas');
	await tid(page, 'sa-new').click();
	await tid(page, 'sa-form').waitFor({ timeout: WAIT });
	await setField(page, 'sa-field-policy', 'web-ah');
	expect((await tid(page, 'sa-field-protocol').inputValue()) === 'ah', 'an AH policy\'s SA starts as AH');
	expect((await tid(page, 'sa-field-enc').inputValue()) === 'null' && await tid(page, 'sa-field-enc').isDisabled() &&
		!(await tid(page, 'sa-field-enc_key').isVisible()), 'AH forces encryption null and asks for no encryption key');
	expect(await tid(page, 'sa-field-clone_host').isVisible(), 'a cloning policy\'s SA asks for its host');
	await setField(page, 'sa-field-spi', '5003');
	await setField(page, 'sa-field-direction', 'out');
	await setField(page, 'sa-field-integ', 'hmac-sha256-128');
	await setField(page, 'sa-field-integ_key', '55'.repeat(32));
	await setField(page, 'sa-field-clone_host', '198.18.1.20');
	await tid(page, 'sa-save').click();
	const sa = tid(page, 'sa-table').locator('[data-testid="sa-row"][data-spi="5003"]');
	await sa.waitFor({ timeout: WAIT });
	expect(((await sa.getByTestId('sa-protocol').textContent()) || '') === 'AH', 'its row says AH');
	const stored = (await rest.items('/api/v1/sas')).find((x) => x.spi === 5003);
	expect(stored && stored.protocol === 'ah' && stored.enc === 'null' && stored.clone_host === '198.18.1.20',
		`REST has an AH SA for host 198.18.1.20: ${JSON.stringify(stored)}`);
	const live = tid(page, 'sad-table').locator('[data-testid="sad-row"][data-spi="5003"]');
	await live.waitFor({ timeout: WAIT });
	expect(true, 'bitw-wire runs it (a live SAD row)');
});

await run.step('a cloned AH + ESP bundle: the cloning AH policy edited to SA type AH + ESP keeps its cloning', async () => {
	await go(page, 'policies');
	await row('web-ah').getByTestId('policy-edit').click();
	await tid(page, 'policy-form').waitFor({ timeout: WAIT });
	await setField(page, 'policy-field-sa_type', 'ahesp');
	await tid(page, 'policy-save').click();
	await until(async () => ((await row('web-ah').getByTestId('policy-flags').textContent()) || '').includes('AH+ESP'),
		'the row says AH+ESP');
	const p = (await rest.items('/api/v1/policies')).find((x) => x.name === 'web-ah');
	expect(p && p.sa_type === 'ahesp' && p.clone === 'src', `REST has sa_type ahesp, clone src: ${JSON.stringify(p)}`);
	const flags = (await row('web-ah').getByTestId('policy-flags').textContent()) || '';
	expect(flags.includes('clone per src host'), `and still the cloning ("${flags}")`);
});

await run.step('a peer\'s DPD timeout: entered in the peer form, shown in the peers table and in REST, edited', async () => {
	await go(page, 'ike');
	await tid(page, 'peer-new').click();
	await tid(page, 'peer-form').waitFor({ timeout: WAIT });
	await setField(page, 'peer-field-name', 'web-dpd');
	await setField(page, 'peer-field-address', world.wan.B);
	await setField(page, 'peer-field-psk', 'web-dpd-pre-shared-key');
	await setField(page, 'peer-field-dpd_timeout', '45');
	await tid(page, 'peer-save').click();
	const peer = tid(page, 'peer-table').locator('[data-testid="peer-row"][data-name="web-dpd"]');
	await peer.waitFor({ timeout: WAIT });
	const cell = peer.getByTestId('peer-dpd-timeout');
	expect(((await cell.textContent()) || '') === '45 s', `the row shows the DPD timeout ("${await cell.textContent()}")`);
	const stored = (await rest.items('/api/v1/peers')).find((x) => x.name === 'web-dpd');
	expect(stored && stored.dpd_timeout === 45, `REST has dpd_timeout 45: ${JSON.stringify(stored)}`);
	await peer.getByTestId('peer-edit').click();
	await tid(page, 'peer-form').waitFor({ timeout: WAIT });
	expect((await tid(page, 'peer-field-dpd_timeout').inputValue()) === '45', 'the edit form starts from the stored 45');
	await setField(page, 'peer-field-dpd_timeout', '0');
	await tid(page, 'peer-save').click();
	const err = tid(page, 'field-error-dpd_timeout');
	await until(async () => ((await err.textContent()) || '').trim() !== '', 'a DPD timeout of 0 is refused beside its field');
	await setField(page, 'peer-field-dpd_timeout', '90');
	await tid(page, 'peer-save').click();
	await until(async () => ((await cell.textContent()) || '') === '90 s', 'the row follows the edit to 90 s');
	const edited = (await rest.items('/api/v1/peers')).find((x) => x.name === 'web-dpd');
	expect(edited && edited.dpd_timeout === 90, `REST has dpd_timeout 90: ${JSON.stringify(edited)}`);
});

await run.done();
