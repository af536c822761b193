// traffic.mjs: manual SAs entered through the UI of both sites, traffic hostA<->hostB, the dashboard's and SA table's counters moving; delete and flush.
import { randomBytes } from 'node:crypto';
import { Rest, Run, clickConfirm, expect, go, intOf, login, nsRun, pingReplies, setField, sleep, tid, until, WAIT, world } from './lib.mjs';

const run = new Run('traffic');
const SITES = ['A', 'B'];
const OUT = { A: 0x1001, B: 0x2001 }; // the out SPI of one site is the in SPI of the other
const KEY = { [OUT.A]: randomBytes(36).toString('hex'), [OUT.B]: randomBytes(36).toString('hex') };
const shot = world.screenshot; // set by tests/web/dashboard-png: a longer flow and a picture of the dashboard
const rest = Object.fromEntries(SITES.map((s) => [s, new Rest(world.sites[s])]));
await run.launch();
const page = {};
for (const s of SITES)
	page[s] = await run.page({ label: s, width: 1280, height: 800 });
const saRow = (p, spi, dir) => tid(p, 'sa-table').locator(`[data-testid="sa-row"][data-spi="${spi}"][data-direction="${dir}"]`);

async function addSa(p, spi, direction) {
	await tid(p, 'sa-new').click();
	await tid(p, 'sa-form').waitFor({ timeout: WAIT });
	await setField(p, 'sa-field-spi', `0x${spi.toString(16)}`);
	await setField(p, 'sa-field-direction', direction);
	await setField(p, 'sa-field-policy', 'lan4');
	await setField(p, 'sa-field-enc', 'aes-gcm-256');
	await setField(p, 'sa-field-enc_key', KEY[spi]);
	await tid(p, 'sa-save').click();
	await saRow(p, spi, direction).waitFor({ timeout: WAIT });
}

await run.step('log in on both sites', async () => {
	for (const s of SITES)
		await login(page[s], world.sites[s]);
});

await run.step('enter the out and in SA of each site through the SA form; the keys are never shown again', async () => {
	for (const s of SITES) {
		const p = page[s];
		const other = s === 'A' ? 'B' : 'A';
		await go(p, 'sas');
		await tid(p, 'sa-table').waitFor({ timeout: WAIT });
		await addSa(p, OUT[s], 'out');
		await addSa(p, OUT[other], 'in');
		const shown = await p.evaluate(() => document.documentElement.outerHTML + document.body.innerText +
			[...document.querySelectorAll('input, textarea')].map((i) => i.value).join(' '));
		expect(!shown.includes(KEY[OUT.A]) && !shown.includes(KEY[OUT.B]), `${s}: no key is in the page or its inputs after saving`);
		const stored = await rest[s].items('/api/v1/sas');
		expect(stored.length === 2 && stored.every((sa) => !('enc_key' in sa)), `${s}: REST has the two SAs, without keys`);
		await until(async () => {
			const sad = await rest[s].get('/api/v1/sad');
			return (sad.items || sad).length >= 2;
		}, `${s}: bitw-wire runs both SAs (live SAD)`);
	}
});

await run.step('ping hostA -> hostB through the tunnel while the dashboard counters climb without a reload', async () => {
	const p = page.A;
	await go(p, 'dashboard');
	const red = tid(p, 'port-red');
	const black = tid(p, 'port-black');
	await red.getByTestId('port-rx-packets').waitFor({ timeout: WAIT });
	await until(async () => ((await red.getByTestId('port-link').textContent()) || '').includes('up'), 'the red port shows link up');
	const before = {
		redRx: await intOf(red.getByTestId('port-rx-packets')),
		redTx: await intOf(red.getByTestId('port-tx-packets')),
		blackTx: await intOf(black.getByTestId('port-tx-packets')),
		blackRxBytes: await intOf(black.getByTestId('port-rx-bytes')),
	};
	const count = shot ? 400 : 20;
	const ping = nsRun('hA', ['ping', '-n', '-c', String(count), '-i', shot ? '0.1' : '0.2', '-s', '1000', '-W', '2', world.hosts.B4]);
	const bflow = shot ? nsRun('hB', ['ping', '-n', '-c', String(count), '-i', '0.15', '-s', '600', '-W', '2', world.hosts.A4]) : null;
	await until(async () => (await intOf(red.getByTestId('port-rx-packets'))) >= before.redRx + 5 &&
		(await intOf(black.getByTestId('port-tx-packets'))) >= before.blackTx + 5 &&
		(await intOf(red.getByTestId('port-tx-packets'))) >= before.redTx + 5 &&
		(await intOf(black.getByTestId('port-rx-bytes'))) > before.blackRxBytes + 5000,
		'red rx/tx, black tx packets and black rx bytes grow on the dashboard while the ping runs', 15000, 500);
	const lines = (id) => tid(p, id).evaluate((el) => [...el.querySelectorAll('svg path')]
		.filter((l) => (l.getAttribute('d') || '').split('L').length >= 3).length);
	await until(async () => (await lines('chart-throughput')) >= 4, 'the throughput chart draws a line per port and direction');
	await until(async () => (await lines('chart-sa')) >= 2 && ((await tid(p, 'chart-sa').textContent()) || '').includes(String(OUT.A)),
		'the per-SA chart draws both SAs of site A, SPI 4097 named in its legend');
	if (shot) {
		await sleep(30000);
		await p.screenshot({ path: shot });
		console.log(`# dashboard screenshot: ${shot}`);
	}
	const r = await ping;
	const got = pingReplies(r.stdout);
	expect(got >= count - 1, `hostA's ping of hostB went through the SAs entered in the UI (${got}/${count} replies)`);
	if (bflow)
		await bflow;
	expect((await intOf(tid(p, 'count-sas'))) >= 2, 'the dashboard counts the SAs');
	expect((await intOf(tid(p, 'count-policies'))) === 2, 'the dashboard counts the two policies');
});

await run.step('the SA table shows packets on both SAs of both sites', async () => {
	for (const s of SITES) {
		const p = page[s];
		const other = s === 'A' ? 'B' : 'A';
		await go(p, 'sas');
		for (const [spi, dir] of [[OUT[s], 'out'], [OUT[other], 'in']])
			await until(async () => (await intOf(saRow(p, spi, dir).getByTestId('sa-packets'))) >= 15,
				`${s}: SA 0x${spi.toString(16)} ${dir} counted the pings`, WAIT, 500);
	}
});

await run.step('delete site A\'s SAs one by one: gone from the UI and REST, and the tunnel stops', async () => {
	const p = page.A;
	for (const [spi, dir] of [[OUT.A, 'out'], [OUT.B, 'in']]) {
		await clickConfirm(p, saRow(p, spi, dir).getByTestId('sa-delete'));
		await until(async () => (await saRow(p, spi, dir).count()) === 0, `A: SA 0x${spi.toString(16)} ${dir} leaves the table`);
	}
	expect((await rest.A.items('/api/v1/sas')).length === 0, 'A: REST has no SA left');
	const r = await nsRun('hA', ['ping', '-n', '-c', '2', '-i', '0.2', '-W', '1', world.hosts.B4]);
	expect(pingReplies(r.stdout) === 0, `without SAs nothing passes (${pingReplies(r.stdout)}/2 replies)`);
});

await run.step('flush on site B asks first: cancel keeps the SAs, OK removes them all', async () => {
	const p = page.B;
	await tid(p, 'sa-flush').click();
	await tid(p, 'confirm-cancel').click();
	await sleep(500);
	expect((await rest.B.items('/api/v1/sas')).length === 2, 'B: cancel kept both SAs');
	await tid(p, 'sa-flush').click();
	await tid(p, 'confirm-ok').click();
	await until(async () => (await tid(p, 'sa-table').locator('[data-testid="sa-row"]').count()) === 0, 'B: the SA table is empty');
	expect((await rest.B.items('/api/v1/sas')).length === 0, 'B: REST has no SA left');
});

await run.done();
