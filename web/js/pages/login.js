// login.js: user name and password to a session cookie; the CSRF token it returns stays in memory.
import { api, ApiError } from '../api.js';
import { h } from '../dom.js';
import { loggedIn } from '../main.js';

export function render(root) {
	const user = h('input', { testid: 'login-user', name: 'user', autocomplete: 'username', required: true });
	const password = h('input', { testid: 'login-password', name: 'password', type: 'password',
		autocomplete: 'current-password', required: true });
	const error = h('p', { testid: 'login-error', class: 'form-error', role: 'alert' });
	const submit = h('button', { testid: 'login-submit', type: 'submit', text: 'Log in' });
	const form = h('form', { class: 'login-form card', novalidate: true },
		h('h1', { text: 'bitw' }),
		h('p', { class: 'muted', text: 'Inline IPsec encryptor — management' }),
		h('label', null, 'User', user),
		h('label', null, 'Password', password),
		error, submit);
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		error.textContent = '';
		if (!user.value || !password.value) {
			error.textContent = 'Enter your user name and password.';
			return;
		}
		submit.disabled = true;
		try {
			const me = await api('POST', '/login', { user: user.value, password: password.value }, { quiet401: true });
			password.value = '';
			await loggedIn({ user: me.user, role: me.role, csrf: me.csrf, id: null });
		} catch (e) {
			password.value = '';
			if (e instanceof ApiError && e.status === 401)
				error.textContent = 'Wrong user name or password.';
			else if (e instanceof ApiError && e.status === 429)
				error.textContent = 'Too many failed logins: ' + e.message;
			else
				error.textContent = e instanceof ApiError ? e.message : 'Cannot reach bitwd.';
		} finally {
			submit.disabled = false;
		}
	});
	root.append(h('div', { class: 'login-wrap' }, form));
	user.focus();
}
