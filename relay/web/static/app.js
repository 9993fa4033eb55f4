// The only script of the relay's pages: Copy buttons, passkeys, the live
// "My bridge" panel and opening a connect link. No inline script anywhere
// (the CSP forbids it).
'use strict';

document.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button[data-copy]');
  if (!btn) return;
  const el = document.getElementById(btn.dataset.copy);
  if (!el) return;
  const text = el.textContent.trim();
  // The label names what is copied ("Copy the token"); it says "Copied"
  // for a moment, to a screen reader too.
  const label = btn.getAttribute('aria-label');
  const done = () => {
    btn.textContent = 'Copied';
    if (label) btn.setAttribute('aria-label', 'Copied');
    setTimeout(() => {
      btn.textContent = 'Copy';
      if (label) btn.setAttribute('aria-label', label);
    }, 1500);
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

// The page answering "Connect this computer" opens its tether:// link at
// once (the link stays on the page for a browser that asks first).
const openNow = document.querySelector('a[data-open-now]');
if (openNow) window.location.href = openNow.href;

// The server renders the panel (html/template escapes it) and sends it
// whole on each change. Open <details> stay open and the focused element
// keeps the focus across updates (both found again by their data-key).
// The panel itself is not a live region (a screen reader would read it
// all on every call): #bridge-summary is, and its one line changes only
// when the connection or the server count does.
const panel = document.getElementById('bridge');
const summary = document.getElementById('bridge-summary');
if (panel && window.EventSource) {
  const es = new EventSource(panel.dataset.events);
  es.addEventListener('bridge', (ev) => {
    const open = new Set([...panel.querySelectorAll('details[open]')].map((d) => d.dataset.key));
    let focus = null;
    const active = document.activeElement;
    if (active && active !== panel && panel.contains(active)) {
      const keyed = active.closest('[data-key]');
      if (keyed) focus = { key: keyed.dataset.key, self: keyed === active, tag: active.tagName.toLowerCase() };
    }
    panel.innerHTML = ev.data;
    panel.querySelectorAll('details').forEach((d) => { if (open.has(d.dataset.key)) d.open = true; });
    if (focus) {
      const keyed = [...panel.querySelectorAll('[data-key]')].find((el) => el.dataset.key === focus.key);
      const target = keyed && (focus.self ? keyed : keyed.querySelector(focus.tag));
      if (target) target.focus({ preventScroll: true });
    }
    const line = panel.querySelector('[data-summary]');
    if (summary && line && summary.textContent !== line.dataset.summary) summary.textContent = line.dataset.summary;
  });
}

// Passkeys. A form.passkey holds the fields (csrf, code, name, return)
// and names its two endpoints: begin answers the options for
// navigator.credentials, finish takes the authenticator's answer and
// says where to go next. Both are form POSTs with the page's CSRF token.
const b64u = {
  decode: (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)),
  encode: (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
};

// Chromium (and current browsers) parse the JSON options themselves;
// this converter is for older ones.
function creationOptions(o) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(o);
  return Object.assign({}, o, {
    challenge: b64u.decode(o.challenge),
    user: Object.assign({}, o.user, { id: b64u.decode(o.user.id) }),
    excludeCredentials: (o.excludeCredentials || []).map((c) => Object.assign({}, c, { id: b64u.decode(c.id) })),
  });
}

function requestOptions(o) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(o);
  return Object.assign({}, o, {
    challenge: b64u.decode(o.challenge),
    allowCredentials: (o.allowCredentials || []).map((c) => Object.assign({}, c, { id: b64u.decode(c.id) })),
  });
}

function credentialJSON(c) {
  if (c.toJSON) return c.toJSON();
  const r = c.response;
  const resp = { clientDataJSON: b64u.encode(r.clientDataJSON) };
  if (r.attestationObject) {
    resp.attestationObject = b64u.encode(r.attestationObject);
    resp.transports = r.getTransports ? r.getTransports() : [];
  } else {
    resp.authenticatorData = b64u.encode(r.authenticatorData);
    resp.signature = b64u.encode(r.signature);
    if (r.userHandle) resp.userHandle = b64u.encode(r.userHandle);
  }
  return { id: c.id, rawId: b64u.encode(c.rawId), type: c.type, response: resp,
    authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: c.getClientExtensionResults() };
}

async function postForm(url, body) {
  const resp = await fetch(url, { method: 'POST', body, credentials: 'same-origin' });
  let data = {};
  try { data = await resp.json(); } catch (e) { /* not JSON: an error page */ }
  if (!resp.ok) throw new Error(data.error || ('the relay answered ' + resp.status));
  return data;
}

async function passkey(btn) {
  const form = btn.closest('form.passkey');
  const status = form.querySelector('[data-passkey-status]');
  const show = (msg) => { status.textContent = msg; status.hidden = !msg; };
  if (!window.PublicKeyCredential || !navigator.credentials) {
    show('This browser cannot use passkeys here (they need https or localhost).');
    return;
  }
  btn.disabled = true;
  show('');
  try {
    const fields = new URLSearchParams(new FormData(form));
    const options = await postForm(form.dataset.begin, fields);
    const cred = btn.dataset.passkey === 'create'
      ? await navigator.credentials.create({ publicKey: creationOptions(options) })
      : await navigator.credentials.get({ publicKey: requestOptions(options) });
    fields.set('credential', JSON.stringify(credentialJSON(cred)));
    const done = await postForm(form.dataset.finish, fields);
    window.location.assign(done.next);
  } catch (e) {
    show(e.name === 'NotAllowedError' ? 'The passkey request was cancelled or timed out.' : String(e.message || e));
    btn.disabled = false;
  }
}

document.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button[data-passkey]');
  if (btn) passkey(btn);
});
