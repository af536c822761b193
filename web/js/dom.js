// dom.js: building DOM nodes without innerHTML (every text goes through textContent), and small UI pieces.

// h('button', {testid: 'x', onclick: fn, disabled: true}, 'text', child, [more]) -> element
export function h(tag, props, ...children) {
	const svg = tag.startsWith('svg:');
	const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
	for (const [k, v] of Object.entries(props || {})) {
		if (v === undefined || v === null || v === false)
			continue;
		if (k === 'testid')
			el.setAttribute('data-testid', v);
		else if (k === 'class')
			el.setAttribute('class', v);
		else if (k === 'text')
			el.textContent = String(v);
		else if (k === 'dataset')
			for (const [dk, dv] of Object.entries(v))
				el.dataset[dk] = String(dv);
		else if (k.startsWith('on') && typeof v === 'function')
			el.addEventListener(k.slice(2), v);
		else if (k === 'value' || k === 'checked')
			el[k] = v;
		else
			el.setAttribute(k, v === true ? '' : String(v));
	}
	append(el, children);
	return el;
}

function append(el, children) {
	for (const c of children) {
		if (c === undefined || c === null || c === false)
			continue;
		if (Array.isArray(c))
			append(el, c);
		else
			el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
}

export function clear(el) {
	el.replaceChildren();
	return el;
}

// A count as plain decimal digits (tests and scripts parse it); big ones get a readable hint beside it.
export function num(v) {
	return v === undefined || v === null ? '-' : String(v);
}

export function bytes(v) {
	if (v === undefined || v === null)
		return '-';
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0, x = Number(v);
	while (x >= 1024 && i < units.length - 1) {
		x /= 1024;
		i++;
	}
	return (i ? x.toFixed(1) : String(x)) + ' ' + units[i];
}

export function rate(bitsPerSecond) {
	const units = ['b/s', 'kb/s', 'Mb/s', 'Gb/s'];
	let i = 0, x = bitsPerSecond;
	while (x >= 1000 && i < units.length - 1) {
		x /= 1000;
		i++;
	}
	return (x >= 100 || i === 0 ? x.toFixed(0) : x.toFixed(1)) + ' ' + units[i];
}

export function when(ms) {
	return ms ? new Date(ms).toLocaleString() : '-';
}

// A table: head labels and rows (arrays of cells or elements); wrapped so it scrolls sideways on a phone.
export function table(testid, head, rows, empty) {
	const body = h('tbody', null, rows);
	if (!rows.length && empty)
		body.append(h('tr', { class: 'empty' }, h('td', { colspan: head.length, text: empty })));
	return h('div', { class: 'table-wrap' },
		h('table', { testid }, h('thead', null, h('tr', null, head.map(t => h('th', { text: t })))), body));
}

export function card(title, ...children) {
	return h('section', { class: 'card' }, title ? h('h2', { text: title }) : null, children);
}

// Transient messages; kind is 'ok', 'warn' or 'error'.
export function toast(text, kind = 'ok') {
	const area = document.querySelector('[data-testid="toast"]');
	if (!area)
		return;
	const t = h('div', { class: 'toast ' + kind, role: 'status', text });
	area.append(t);
	setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

// The UI's one confirmation: a DOM <dialog>, resolved true by confirm-ok. With `typed`, confirm-ok stays disabled
// until that word is typed into confirm-input (for changes that must not happen by a slip of the mouse).
export function confirmDialog(message, okLabel = 'OK', typed = '') {
	const dlg = document.querySelector('[data-testid="confirm-dialog"]');
	const ok = dlg.querySelector('[data-testid="confirm-ok"]');
	const input = dlg.querySelector('[data-testid="confirm-input"]');
	dlg.querySelector('.confirm-text').textContent = message;
	ok.textContent = okLabel;
	input.value = '';
	input.closest('label').hidden = !typed;
	dlg.querySelector('.confirm-word').textContent = typed;
	const check = ev => {
		ok.disabled = !!typed && input.value.trim() !== typed;
		if (ev && ev.key === 'Enter' && !ok.disabled) {
			// no default: the Enter would otherwise reach the button focus returns to and open the dialog again
			ev.preventDefault();
			dlg.close('ok');
		}
	};
	check();
	return new Promise(resolve => {
		const done = yes => {
			dlg.removeEventListener('close', onClose);
			input.removeEventListener('input', check);
			input.removeEventListener('keydown', check);
			if (dlg.open)
				dlg.close();
			input.value = '';
			ok.disabled = false;
			resolve(yes);
		};
		const onClose = () => done(dlg.returnValue === 'ok' && (!typed || input.value.trim() === typed));
		dlg.returnValue = '';
		dlg.addEventListener('close', onClose);
		input.addEventListener('input', check);
		input.addEventListener('keydown', check);
		dlg.showModal();
		if (typed)
			input.focus();
	});
}
