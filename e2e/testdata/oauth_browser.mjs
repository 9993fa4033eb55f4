// The browser half of an OAuth sign-in for e2e/oauth_test.go: Debian's
// chromium (headless, driven by playwright-core) sets the relay user's
// password through the one-time link, signs in when the consent page
// sends it to the sign-in page, and approves. Shared by oauth_ts.mjs
// (the TypeScript SDK's flow) and oauth_approve.mjs (mcp-remote's).
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { PW, CHROMIUM, SHOTS } = process.env;

export const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

export async function launch() {
  const { chromium } = require(PW);
  // Chromium's sandbox does not start as root (CI containers).
  const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  return { browser, page };
}

// setPassword follows the one-time link; the browser ends signed in.
export async function setPassword(page, link, password) {
  await page.goto(link);
  // Passkeys are the main way in; the password form is the fold-out.
  await page.getByText('Set a password instead').click();
  await page.getByLabel('New password').fill(password);
  await page.getByLabel('The same again').fill(password);
  await page.getByRole('button', { name: 'Set password and sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/signin/link'));
}

// approve opens an authorization URL, signs in if the relay asks, checks
// the consent page shows each of want, and clicks Approve. It returns the
// URL the browser lands on (the client's redirect URI, with the code).
export async function approve(page, authURL, { user, password, want = [] }) {
  const relay = new URL(authURL).origin;
  await page.goto(authURL);
  await page.waitForSelector('button[value="approve"], #password');
  if (await page.locator('#password').count()) {
    // Not signed in: the relay sent the browser to / with ?return=.
    await page.getByLabel('User').fill(user);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForSelector('button[value="approve"]');
  }
  const text = await page.locator('body').innerText();
  for (const w of want) {
    if (!text.includes(w)) throw new Error(`the consent page does not show ${JSON.stringify(w)}:\n${text}`);
  }
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.waitForURL((u) => u.origin !== relay);
  return page.url();
}

export async function shotOnFailure(page, name) {
  if (!page) return;
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, name), fullPage: true }).catch(() => {});
  console.error('page at failure: ' + page.url() + '\n' + (await page.content().catch(() => '')));
}
