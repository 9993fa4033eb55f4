// Drives the relay's web page in Debian's chromium (headless) for
// e2e/web_linux_test.go. Steps are synchronised with the Go test over
// stdio: this script prints one JSON line per milestone and waits for a
// JSON line from the test where the test has to act (run `tetherd login`,
// make a call).
'use strict';
const path = require('path');
const readline = require('readline');
const { chromium } = require(process.env.PW);

const { LINK, CHROMIUM, SHOTS } = process.env;
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const input = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
// waitFor returns the test's next JSON line, which must carry key.
async function waitFor(key) {
  const { value, done } = await input.next();
  if (done) throw new Error('stdin closed while waiting for ' + key);
  const m = JSON.parse(value);
  if (!(key in m)) throw new Error('the test said ' + value + ', want ' + key);
  return m;
}
const nav = (page, name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name }).click();
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, name), fullPage: true });

(async () => {
  // Chromium's sandbox does not start as root (CI containers).
  const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  let page;
  try {
    page = await browser.newPage();
    page.setDefaultTimeout(30000);
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));

    // Passkeys through Chromium's virtual authenticator (CDP): a platform
    // authenticator with resident keys and user verification that says yes.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const addAuthenticator = async () => (await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
        isUserVerified: true, automaticPresenceSimulation: true },
    })).authenticatorId;
    const laptop = await addAuthenticator();
    const signOut = async () => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    };
    const passkeyRows = () => page.locator('table.passkeys tbody tr');

    // The one-time link: create a passkey, land signed in on My bridge.
    await page.goto(LINK);
    await shot(page, '0-sign-in-link.png');
    await page.getByRole('button', { name: 'Create a passkey' }).click();
    await page.waitForSelector('[data-state="offline"]');
    await shot(page, '1-my-bridge-offline.png');

    // Sign out, and back in with the passkey alone (no user name typed).
    await signOut();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForSelector('[data-state="offline"]');

    // A second passkey, on another "device" (the laptop's would be
    // excluded: it holds a passkey for this account already).
    await nav(page, 'Account');
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: laptop });
    await addAuthenticator();
    await page.getByLabel('Name of the new passkey').fill('phone');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.waitForFunction(() => document.querySelectorAll('table.passkeys tbody tr').length === 2);
    await shot(page, '1b-account-two-passkeys.png');
    // Remove the first: the phone's is then the only way in, and cannot go.
    await page.getByRole('button', { name: 'Remove First passkey' }).click();
    await page.waitForFunction(() => document.querySelectorAll('table.passkeys tbody tr').length === 1);
    if ((await passkeyRows().textContent()).indexOf('phone') < 0) throw new Error('the wrong passkey was removed');
    if (await page.getByRole('button', { name: 'Remove phone' }).count() !== 0) throw new Error('the last way in can be removed');
    // The password fallback: set one, sign in with it.
    await page.getByLabel('Password (at least').fill('correct horse battery');
    await page.getByLabel('The same again').fill('correct horse battery');
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByText('Password saved.').waitFor();
    await signOut();
    await page.getByLabel('User').fill(process.env.USER_ID);
    await page.getByLabel('Password', { exact: true }).fill('correct horse battery');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForSelector('[data-state="offline"]');
    // And with the phone's passkey once more.
    await signOut();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForSelector('[data-state="offline"]');
    say({ passkeys: true });

    // A bridge token, shown once with the tetherd command.
    await nav(page, 'Tokens');
    await page.getByLabel('Name').fill('laptop');
    await page.getByRole('button', { name: 'Create' }).click();
    const token = (await page.locator('#new-token').textContent()).trim();
    const cmd = await page.locator('#bridge-cmd').textContent();
    if (!cmd.includes('| tetherd token set --relay')) throw new Error('no tetherd command on the page: ' + cmd);
    await shot(page, '2-bridge-token.png');
    say({ token });

    // `tetherd login`'s link, opened where the user is signed in: the page
    // names the computer and shows the code tetherd printed.
    const { approve, code, computer } = await waitFor('approve');
    await page.goto(approve);
    const shown = (await page.locator('.code').textContent()).trim();
    if (shown !== code) throw new Error('the approval page shows code ' + shown + ', tetherd printed ' + code);
    await page.getByText(computer, { exact: false }).first().waitFor();
    await shot(page, '3-device-approve.png');
    await page.locator('main').screenshot({ path: path.join(SHOTS, 'readme-device-approve.png') });
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Approved.').waitFor();
    await shot(page, '3b-device-approved.png');
    say({ approved: true });

    // My bridge goes online, and shows the call, with no reload.
    await page.goto(new URL('/', approve).href);
    let navigations = 0;
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
    await page.waitForSelector('[data-state="online"]', { timeout: 90000 });
    if (await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Connected apps' }).count() !== 1) {
      throw new Error('the nav does not link Connected apps');
    }
    await page.locator('details[data-key="test"] summary').click();
    await page.waitForSelector('details[data-key="test"] .tools li code');
    await page.locator('details[data-key="test"] summary').focus();
    say({ online: true });
    await waitFor('called');
    await page.waitForSelector('table.calls td code:text-is("echo")');
    // The expanded server stays expanded, and keeps the keyboard focus,
    // across the live update; the live region is one line.
    if (!(await page.locator('details[data-key="test"]').evaluate((d) => d.open))) throw new Error('details closed by an update');
    if (!(await page.evaluate(() => document.activeElement.matches('details[data-key="test"] > summary')))) {
      throw new Error('the update took the focus away from the server: ' + await page.evaluate(() => document.activeElement.outerHTML));
    }
    const live = await page.locator('[role="status"]#bridge-summary').textContent();
    if (!/^Connected since .+, 1 server$/.test(live)) throw new Error('live region says ' + JSON.stringify(live));
    if (await page.locator('[aria-live]').count() !== 0) throw new Error('an aria-live region besides the summary');
    await shot(page, '4-my-bridge-online.png');
    // The README's picture (docs/web-my-bridge.png), narrower.
    const wide = page.viewportSize();
    await page.setViewportSize({ width: 960, height: 600 });
    await shot(page, 'readme-my-bridge.png');
    await page.setViewportSize(wide);
    say({ seenCall: true, navigations });

    // A phone in dark mode: the main pages fit its width (no sideways
    // scrolling) and use the dark scheme.
    const phone = async (ctx, url, name, ready) => {
      const p = await ctx.newPage();
      p.on('console', (m) => { if (m.type() === 'error') problems.push(name + ': ' + m.text()); });
      p.on('pageerror', (e) => problems.push(name + ': ' + String(e)));
      await p.goto(url);
      await p.waitForSelector(ready);
      const fit = await p.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
        bg: getComputedStyle(document.body).backgroundColor }));
      await p.screenshot({ path: path.join(SHOTS, 'phone-' + name + '.png'), fullPage: true });
      if (fit.scroll > fit.client) throw new Error(name + ' on a phone scrolls sideways: ' + fit.scroll + ' > ' + fit.client);
      if (fit.bg !== 'rgb(13, 17, 23)') throw new Error(name + ' on a phone in dark mode has background ' + fit.bg);
      await p.close();
    };
    const phoneOpts = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, colorScheme: 'dark' };
    const origin = new URL(approve).origin;
    const signedIn = await browser.newContext({ ...phoneOpts, storageState: await page.context().storageState() });
    await phone(signedIn, origin + '/', 'my-bridge', '[data-state="online"]');
    await phone(signedIn, origin + '/tokens', 'tokens', 'table.tokens');
    await phone(signedIn, origin + '/account', 'account', 'table.passkeys');
    await phone(signedIn, origin + '/apps', 'connected-apps', 'h1');
    await signedIn.close();
    const stranger = await browser.newContext(phoneOpts);
    await phone(stranger, origin + '/', 'sign-in', 'form.passkey');
    await stranger.close();
    say({ phone: true });

    // Revoke the token the login made: the relay drops the bridge, and My
    // bridge says so.
    await nav(page, 'Tokens');
    await page.getByRole('button', { name: 'Revoke ' + computer + ' (tetherd login)' }).click();
    await page.waitForSelector('td.state-revoked');
    const revoked = await page.locator('table.tokens tr:has(td.state-revoked)').allTextContents();
    if (revoked.length !== 1 || !revoked[0].includes(computer)) throw new Error('revoked rows: ' + JSON.stringify(revoked));
    await shot(page, '5-tokens-revoked.png');
    await nav(page, 'My bridge');
    say({ revoked: true });
    await page.waitForSelector('[data-state="offline"]', { timeout: 30000 });
    await page.waitForFunction(() => document.getElementById('bridge-summary').textContent === 'Not connected');
    say({ offline: true, problems });
  } catch (e) {
    if (page) {
      await shot(page, 'failed.png').catch(() => {});
      console.error('page at failure: ' + page.url() + '\n' + (await page.content().catch(() => '')));
    }
    throw e;
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
