// config.mjs: the configuration exported as a download and imported back as an upload is the same configuration.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Rest, Run, clickConfirm, expect, go, login, tid, until, WAIT, world } from './lib.mjs';

const run = new Run('config');
const A = world.sites.A;
const rest = new Rest(A);
await run.launch();
const page = await run.page({ label: 'admin' });

// Ids are bitwd's bookkeeping (an import may number things anew); everything else must come back as it was.
function comparable(doc) {
	if (Array.isArray(doc))
		return doc.map(comparable);
	if (doc && typeof doc === 'object')
		return Object.fromEntries(Object.keys(doc).sort().filter((k) => k !== 'id').map((k) => [k, comparable(doc[k])]));
	return doc;
}
const same = (a, b) => JSON.stringify(comparable(a)) === JSON.stringify(comparable(b));
let before;
let file;

await run.step('a configuration with more than the defaults: options and a third policy, over REST', async () => {
	await rest.call('PUT', '/api/v1/options', { default_action: 'bypass', bridge_non_ip: false });
	await rest.call('POST', '/api/v1/policies', {
		name: 'dns-out', priority: 2, action: 'bypass', protocol: 'udp', src: '198.18.1.0/24', dst: 'any', dst_port: 53,
	}, [201]);
	before = await rest.get('/api/v1/config');
	expect(before.policies.length === 3 && before.options.default_action === 'bypass', 'GET /api/v1/config has it');
});

await run.step('export from the settings page downloads bitw-config.json with that configuration', async () => {
	await login(page, A);
	await go(page, 'settings');
	await tid(page, 'export-config').waitFor({ timeout: WAIT });
	const [download] = await Promise.all([page.waitForEvent('download', { timeout: WAIT }), tid(page, 'export-config').click()]);
	expect(download.suggestedFilename() === 'bitw-config.json', `the file is named bitw-config.json (${download.suggestedFilename()})`);
	file = path.join(world.tmp, 'bitw-config.json');
	await download.saveAs(file);
	const doc = JSON.parse(readFileSync(file, 'utf8'));
	expect(same(doc, before), 'the downloaded file is the configuration GET /api/v1/config gives');
});

await run.step('the configuration is changed behind the UI\'s back', async () => {
	const dns = (await rest.items('/api/v1/policies')).find((p) => p.name === 'dns-out');
	await rest.call('DELETE', `/api/v1/policies/${dns.id}`);
	await rest.call('PUT', '/api/v1/options', { default_action: 'discard', bridge_non_ip: true });
	expect(!same(await rest.get('/api/v1/config'), before), 'the configuration differs now');
});

await run.step('importing the file through the upload restores the exported configuration', async () => {
	await go(page, 'settings');
	await tid(page, 'import-config').setInputFiles(file);
	await clickConfirm(page, tid(page, 'import-submit'));
	await until(async () => ((await tid(page, 'import-result').textContent()) || '').includes('imported'), 'import-result says imported');
	const after = await rest.get('/api/v1/config');
	expect(same(after, before), `GET /api/v1/config is the exported one again${same(after, before) ? '' :
		`\nbefore ${JSON.stringify(comparable(before))}\nafter  ${JSON.stringify(comparable(after))}`}`);
});

await run.step('a broken file is refused with the server\'s reason and changes nothing', async () => {
	const bad = { ...JSON.parse(readFileSync(file, 'utf8')), options: { default_action: 'explode' } };
	await tid(page, 'import-config').setInputFiles({ name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(bad)) });
	await clickConfirm(page, tid(page, 'import-submit'));
	const res = tid(page, 'import-result');
	await until(async () => {
		const t = ((await res.textContent()) || '').trim();
		return t && !/^imported/.test(t) && t;
	}, 'import-result shows the refusal');
	expect(same(await rest.get('/api/v1/config'), before), 'the stored configuration is unchanged');
});

await run.done();
