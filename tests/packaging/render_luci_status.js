// Renders the LuCI view's status section outside a browser:
//   node render_luci_status.js VIEW.js < rpcd-answer.json
// Loads VIEW.js the way LuCI does (a function body whose 'require'd modules are parameters),
// with stubs of E(), _() and String.prototype.format (%s %d %t %m as LuCI formats them), calls
// its renderStatus() on the rpcd plugin's answer and prints the result as text: one line per
// element that holds text, table rows as "tr: cell | cell | ...".
'use strict';
const fs = require('fs');

function E(tag, attrs, children) {
	if (Array.isArray(attrs) || typeof attrs !== 'object' || attrs === null) {
		children = attrs;
		attrs = {};
	}
	const kids = [].concat(children == null ? [] : children).filter((c) => c != null);
	return { tag, attrs, children: kids };
}

// LuCI's %t: "1h 2m 3s"; %<base>.<prec>m: value scaled by base with K/M/G (+i for 1024).
function format(...args) {
	let i = 0;
	return this.replace(/%(\d+)?(?:\.(\d+))?([sdtm%])/g, (all, width, prec, type) => {
		if (type === '%') return '%';
		const v = args[i++];
		switch (type) {
			case 's': return String(v);
			case 'd': return String(Math.floor(+v || 0));
			case 't': {
				let s = +v || 0;
				const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
				s %= 60;
				return d ? `${d}d ${h}h ${m}m ${s}s` : h ? `${h}h ${m}m ${s}s` : m ? `${m}m ${s}s` : `${s}s`;
			}
			case 'm': {
				const base = width ? +width : 1000;
				const units = ['', ' K', ' M', ' G', ' T'];
				let val = +v || 0, u = 0;
				while (u < units.length - 1 && val > base) { val /= base; u++; }
				return u ? val.toFixed(prec == null ? 2 : +prec) + units[u] + (base === 1024 ? 'i' : '') : `${val} `;
			}
		}
	});
}
String.prototype.format = format;

const stub = () => new Proxy(function () {}, { get: () => stub(), apply: () => stub() });
const src = fs.readFileSync(process.argv[2], 'utf8');
const out = {};
// function declarations are hoisted, so a line put first can hand renderStatus out
const body = 'out.renderStatus = renderStatus;\n' + src;
const params = ['view', 'form', 'rpc', 'uci', 'poll', 'dom', 'E', '_', 'L', 'out'];
new Function(...params, body)(
	{ extend: (o) => o }, stub(), { declare: () => () => Promise.resolve({}) }, stub(), stub(), stub(),
	E, (s) => s, stub(), out);

const answer = JSON.parse(fs.readFileSync(0, 'utf8'));
const text = (n) => (typeof n === 'string' ? n : n.children.map(text).join(''));
(function walk(n) {
	if (typeof n === 'string') return;
	if (n.tag === 'tr') {
		const cls = n.attrs.class || '';
		console.log(`tr(${cls}): ` + n.children.map(text).join(' | '));
		return;
	}
	if (n.children.some((c) => typeof c === 'string'))
		console.log(`${n.tag}(${n.attrs.class || ''}): ${text(n)}`);
	n.children.forEach(walk);
})(out.renderStatus(answer));
