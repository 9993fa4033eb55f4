// The TypeScript MCP SDK's client auth flow against tether-relay, for
// e2e/oauth_test.go. The client knows only MCP_URL: its first request gets
// 401, and the SDK discovers (protected-resource metadata, then the
// authorization server's), registers (DCR — or, with CIMD_URL, uses that
// URL as its client_id), and hands the authorization URL to
// redirectToAuthorization, which approves it in headless chromium. The
// code comes back to a loopback redirect URI served here; the SDK
// exchanges it, lists tools and calls one; then auth() refreshes and the
// new token calls again. Prints one JSON line with what the test checks.
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { launch, setPassword, approve, say, shotOnFailure } from './oauth_browser.mjs';

const { MCP_URL, ISSUER, NM, USER_ID, PASSWORD, LINK, CIMD_URL, CLIENT_NAME, WANT } = process.env;
const sdk = (p) => import(pathToFileURL(path.join(NM, '@modelcontextprotocol', 'sdk', 'dist', 'esm', p)).href);
const { Client } = await sdk('client/index.js');
const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');
const { auth, UnauthorizedError } = await sdk('client/auth.js');

// The redirect URI: a loopback listener that takes one code (RFC 8252).
let gotCode;
const codeArrived = new Promise((resolve, reject) => { gotCode = { resolve, reject }; });
const callback = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://127.0.0.1');
  if (u.pathname !== '/callback') { res.writeHead(404).end(); return; }
  res.writeHead(200, { 'Content-Type': 'text/plain' }).end('signed in; you can close this tab');
  gotCode.resolve(u.searchParams);
});
await new Promise((r) => callback.listen(0, '127.0.0.1', r));
const redirectUrl = `http://127.0.0.1:${callback.address().port}/callback`;

const { browser, page } = await launch();

// An in-memory OAuthClientProvider; redirectToAuthorization is the browser.
class Provider {
  redirects = 0;
  constructor() { if (CIMD_URL) this.clientMetadataUrl = CIMD_URL; }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: CLIENT_NAME, redirect_uris: [redirectUrl], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none',
    };
  }
  state() { this.sentState = randomBytes(16).toString('hex'); return this.sentState; }
  clientInformation() { return this.client; }
  saveClientInformation(c) { this.client = c; }
  tokens() { return this.tokenSet; }
  saveTokens(t) { this.tokenSet = t; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(url) {
    this.redirects++;
    this.authURL = url.href;
    await approve(page, url.href, { user: USER_ID, password: PASSWORD, want: JSON.parse(WANT || '[]') });
  }
}

async function connect(provider) {
  const client = new Client({ name: 'oauth-e2e', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  await client.connect(transport);
  return client;
}

async function echo(client, text) {
  const res = await client.callTool({ name: 'echo', arguments: { text } });
  if (res.isError) throw new Error('echo failed: ' + JSON.stringify(res));
  return res.content.map((c) => c.text).join('');
}

try {
  if (LINK) await setPassword(page, LINK, PASSWORD);
  const provider = new Provider();

  // 1. Unauthenticated: discovery, registration, consent in the browser.
  const first = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  try {
    await new Client({ name: 'oauth-e2e', version: '1' }).connect(first);
    throw new Error('connected without a token');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  const params = await codeArrived;
  if (params.get('error')) throw new Error('authorization refused: ' + params.get('error') + ': ' + params.get('error_description'));
  if (params.get('state') !== provider.sentState) throw new Error('state differs: ' + params.get('state'));
  if (params.get('iss') !== ISSUER) throw new Error(`iss ${params.get('iss')}, want ${ISSUER} (RFC 9207)`);
  const authURL = new URL(provider.authURL);

  // 2. The code for tokens, then MCP with them.
  await first.finishAuth(params.get('code'));
  const firstTokens = provider.tokenSet;
  const client = await connect(provider);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const echoed = await echo(client, 'hello over oauth');
  await client.close();

  // 3. Refresh: auth() finds the refresh token and rotates it, with no
  // second trip through the browser.
  const result = await auth(provider, { serverUrl: MCP_URL });
  if (result !== 'AUTHORIZED' || provider.redirects !== 1) throw new Error(`refresh: ${result}, ${provider.redirects} browser trips`);
  const refreshed = provider.tokenSet;
  const client2 = await connect(provider);
  const echoed2 = await echo(client2, 'hello after refresh');
  await client2.close();

  say({
    clientID: provider.client.client_id,
    authorize: { resource: authURL.searchParams.get('resource'), method: authURL.searchParams.get('code_challenge_method'), scope: authURL.searchParams.get('scope') },
    first: { access: firstTokens.access_token, refresh: firstTokens.refresh_token },
    refreshed: { access: refreshed.access_token, refresh: refreshed.refresh_token },
    tools, echoed, echoed2,
  });
} catch (e) {
  await shotOnFailure(page, 'oauth-ts-failed.png');
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
  callback.close();
}
