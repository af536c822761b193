// api.js: the REST client: JSON in and out, the CSRF header on every change, problem+json as ApiError, 401 = expiry.
import { toast } from './dom.js';

// Who is logged in; csrf lives only in memory (re-read from /whoami after a reload).
export const session = { user: null, role: null, id: null, csrf: null };

export function readonly() {
	return session.role !== 'admin';
}

let expiredHandler = () => {};
export function onSessionExpired(fn) {
	expiredHandler = fn;
}

export class ApiError extends Error {
	constructor(status, problem) {
		super((problem && problem.detail) || `HTTP ${status}`);
		this.status = status;
		this.problem = problem || {};
		this.code = this.problem.code || '';
		this.field = this.problem.field || '';
	}
}

function headersFor(method, body) {
	const h = { Accept: 'application/json' };
	if (body !== undefined)
		h['Content-Type'] = 'application/json';
	if (method !== 'GET' && method !== 'HEAD' && session.csrf)
		h['X-Bitw-CSRF'] = session.csrf;
	return h;
}

// api('GET', '/policies') -> parsed JSON (null for 204). Throws ApiError. opts.quiet401: no expiry handling.
export async function api(method, path, body, opts = {}) {
	const init = { method, headers: headersFor(method, body), credentials: 'same-origin', cache: 'no-store' };
	if (body !== undefined)
		init.body = typeof body === 'string' ? body : JSON.stringify(body);
	if (opts.signal)
		init.signal = opts.signal;
	const res = await fetch('/api/v1' + path, init);
	let data = null;
	if (res.status !== 204 && (res.headers.get('Content-Type') || '').includes('json'))
		data = await res.json().catch(() => null);
	if (res.status === 401 && session.user && !opts.quiet401)
		expiredHandler();
	if (!res.ok)
		throw new ApiError(res.status, data);
	return data;
}

// A change: stored but not applied (bitw-wire down) counts as done, with a warning.
export async function change(method, path, body) {
	try {
		return await api(method, path, body);
	} catch (e) {
		if (e instanceof ApiError && e.code === 'NOT_APPLIED') {
			toast('Stored; bitw-wire is not connected, it applies the change when it is back.', 'warn');
			return null;
		}
		throw e;
	}
}

// GET that answers null instead of throwing on 404 (a resource this bitwd does not have, e.g. IKE).
export async function getOptional(path) {
	try {
		return await api('GET', path);
	} catch (e) {
		if (e instanceof ApiError && e.status === 404)
			return null;
		throw e;
	}
}

// The detail never repeats the field, so a message shown away from its field names it.
export function errorText(e) {
	if (e instanceof ApiError)
		return e.field ? `${e.field}: ${e.message}` : e.message;
	return 'cannot reach bitwd (' + (e && e.message ? e.message : e) + ')';
}

// The properties of one schema of this bitwd's OpenAPI document ({} when it cannot be read), so forms offer exactly
// the fields this server has. The document is fetched once per page load.
let openapi = null;
export async function schemaProps(name) {
	if (!openapi)
		openapi = api('GET', '/openapi.json').catch(() => null);
	const doc = await openapi;
	const s = doc && doc.components && doc.components.schemas && doc.components.schemas[name];
	return (s && s.properties) || {};
}
