// Approves one authorization request in the browser for e2e/oauth_test.go
// (mcp-remote prints the URL; its own attempt to open a browser is sent to
// a no-op $BROWSER). Prints {"landed": URL} once the browser reached the
// client's redirect URI.
import { launch, approve, say, shotOnFailure } from './oauth_browser.mjs';

const { AUTH_URL, USER_ID, PASSWORD, WANT } = process.env;
const { browser, page } = await launch();
try {
  const landed = await approve(page, AUTH_URL, { user: USER_ID, password: PASSWORD, want: JSON.parse(WANT || '[]') });
  say({ landed });
} catch (e) {
  await shotOnFailure(page, 'mcp-remote-failed.png');
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
