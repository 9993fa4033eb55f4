// The only script of the relay's page: Copy buttons and the live
// "My bridge" panel. No inline script anywhere (the CSP forbids it).
'use strict';

document.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button[data-copy]');
  if (!btn) return;
  const el = document.getElementById(btn.dataset.copy);
  if (!el) return;
  const text = el.textContent.trim();
  const done = () => {
    btn.textContent = 'Copied';
    setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => selectText(el));
  } else {
    selectText(el);
    if (document.execCommand('copy')) done();
  }
});

function selectText(el) {
  const r = document.createRange();
  r.selectNodeContents(el);
  const s = window.getSelection();
  s.removeAllRanges();
  s.addRange(r);
}

// The server renders the panel (html/template escapes it) and sends it
// whole on each change; open <details> stay open across updates.
const panel = document.getElementById('bridge');
if (panel && window.EventSource) {
  const es = new EventSource(panel.dataset.events);
  es.addEventListener('bridge', (ev) => {
    const open = new Set([...panel.querySelectorAll('details[open]')].map((d) => d.dataset.key));
    panel.innerHTML = ev.data;
    panel.querySelectorAll('details').forEach((d) => { if (open.has(d.dataset.key)) d.open = true; });
  });
}
