// The device flow with a person in a real browser (headless Debian Chromium): a device asks for a
// code, the person opens verification_uri_complete, signs in, sees what is asking, and approves
// or denies; the device's token poll then gets tokens (or access_denied). Plus a screenshot check
// that the pages really render, and a cross-site form that must not be able to approve.
//
// Run by scripts/browser-test.sh (MAGNETAR_BIN = the server binary). Screenshots and the server
// log go to a temporary directory (BROWSER_ARTIFACTS), printed at the end.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ARTIFACTS, MagnetarServer, colourStats, decodePng, getJson, launchChromium, postForm, postJson,
} from './harness.mjs';

const GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const VIEWPORT = { width: 800, height: 900 };

let server;
let browser;
let user;

async function login(username, password) {
  const r = await postForm(server.url('/auth/login'), { username, password, grant_type: 'password' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.access_token;
}

async function requestCode(fields) {
  const r = await postForm(server.url('/auth/device/code'), fields);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

function pollToken(deviceCode) {
  return postForm(server.url('/auth/device/token'), { grant_type: GRANT, device_code: deviceCode });
}

// A fresh browser profile (no cookies) whose page reports CSP violations and script errors.
async function newPage() {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.setDefaultNavigationTimeout(15_000);
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || /Content Security Policy/i.test(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (err) => problems.push(String(err)));
  return { context, page, problems };
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent()).trim();
}

// Signs in on the page of `code` (which must show the sign-in form) and waits for the approval
// page.
async function signIn(page, code) {
  assert.equal(await text(page, 'h1'), 'Sign in to approve a device');
  assert.equal(await text(page, '#user-code'), code);
  await page.fill('#username', user.username);
  await page.fill('#password', user.password);
  await page.click('#signin');
  await page.locator('#approve').waitFor({ state: 'visible' });
  assert.equal(await text(page, '#signed-in-user'), user.username);
}

// Takes a PNG screenshot into ARTIFACTS and checks that it shows a rendered page: the viewport's
// size, a real file, many colours, no single colour covering (nearly) everything.
async function checkScreenshot(page, name) {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  const size = statSync(path).size;
  assert.ok(size > 10_000, `${name}.png is only ${size} bytes`);
  const image = decodePng(readFileSync(path));
  assert.equal(image.width, VIEWPORT.width);
  assert.equal(image.height, VIEWPORT.height);
  const { distinct, dominantShare } = colourStats(image);
  assert.ok(distinct >= 50, `${name}.png has only ${distinct} colours: blank or unstyled?`);
  assert.ok(dominantShare < 0.9, `${name}.png is ${Math.round(dominantShare * 100)}% one colour`);
  return path;
}

before(async () => {
  // The page's sign-ins share the login budget (5/min per address) and every request here comes
  // from 127.0.0.1: raise it so the tests never trip it (the limit itself is tested in pytest).
  server = await new MagnetarServer(['--device-code-poll-interval', '1', '--rate-limit-login', '100']).start();
  browser = await launchChromium();
  const adminToken = await login(server.adminUsername, server.adminPassword);
  user = { username: `alice-${Date.now()}`, password: 'pw-browser-test-1' };
  const r = await postJson(server.url('/auth/register'),
    { username: user.username, password: user.password, permissions: ['read', 'write'] },
    { Authorization: `Bearer ${adminToken}` });
  assert.equal(r.status, 201, JSON.stringify(r.body));
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (server) {
    const code = await server.stop();
    console.log(`# screenshots and server log: ${ARTIFACTS}`);
    assert.equal(code, 0, `magnetar exited with ${code}; log tail:\n${server.log().slice(-4000)}`);
  }
});

test('a person approves a device in the browser and the device gets its tokens', async () => {
  const hint = 'pulsar-config on browser-test-host';
  const device = await requestCode({ client_hint: hint, pair: 'true' });
  let r = await pollToken(device.device_code);
  assert.equal(r.status, 400);
  assert.deepEqual(r.body, { error: 'authorization_pending' });

  const { context, page, problems } = await newPage();
  const response = await page.goto(device.verification_uri_complete);
  assert.equal(response.status(), 200);
  assert.equal(await text(page, '#client-hint'), hint);
  await checkScreenshot(page, 'sign-in-page');

  await signIn(page, device.user_code);
  assert.equal(await text(page, '#client-hint'), hint);
  assert.ok(await page.locator('#pair-notice').isVisible());
  for (const selector of ['#user-code', '#approve', '#deny', '#signout', '#client-hint']) {
    assert.ok(await page.locator(selector).isVisible(), `${selector} not visible`);
  }
  await checkScreenshot(page, 'approve-page');

  await page.click('#approve');
  await page.locator('#result').waitFor({ state: 'visible' });
  assert.equal(await text(page, '#result'), 'Approved — you can return to your device');
  await checkScreenshot(page, 'approved-page');
  assert.deepEqual(problems, [], 'the pages logged errors or CSP violations');
  await context.close();

  await new Promise((ok) => setTimeout(ok, 1200));  // the poll interval
  r = await pollToken(device.device_code);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.token_type, 'bearer');
  assert.ok(r.body.refresh_token && r.body.refresh_token_secondary);
  assert.notEqual(r.body.refresh_token, r.body.refresh_token_secondary);
  const me = await getJson(server.url('/auth/me'), { Authorization: `Bearer ${r.body.access_token}` });
  assert.equal(me.status, 200);
  assert.equal(me.body.username, user.username);

  r = await pollToken(device.device_code);  // single use
  assert.deepEqual(r.body, { error: 'expired_token', error_description: 'Unknown device_code' });
});

test('a person denies a device in the browser and the device is refused', async () => {
  const device = await requestCode({ client_hint: 'something I did not start' });
  const { context, page, problems } = await newPage();
  await page.goto(device.verification_uri); // the short URI: the person types the code
  await page.fill('#user_code', device.user_code.toLowerCase().replace('-', ''));
  await page.click('#continue');
  await page.locator('#signin').waitFor({ state: 'visible' });
  await signIn(page, device.user_code);
  await page.click('#deny');
  await page.locator('#result').waitFor({ state: 'visible' });
  assert.equal(await text(page, '#result'), 'Denied');
  await checkScreenshot(page, 'denied-page');
  assert.deepEqual(problems, []);
  await context.close();

  let r = await pollToken(device.device_code);
  assert.deepEqual(r.body, { error: 'access_denied' });
  r = await pollToken(device.device_code);
  assert.deepEqual(r.body, { error: 'expired_token', error_description: 'Unknown device_code' });
});

test('a form on another site cannot approve, even with a stolen anti-CSRF token', async () => {
  const device = await requestCode({ client_hint: 'csrf victim' });
  const { context, page } = await newPage();
  await page.goto(device.verification_uri_complete);
  await signIn(page, device.user_code);
  const stolenToken = await page.locator('input[name=csrf_token]').first().getAttribute('value');

  // The attacker's page: another site (localhost is not 127.0.0.1) with a form aimed at us.
  const evil = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><title>Win a prize</title>
      <form method="post" action="${server.url('/auth/device/approve')}">
      <input type="hidden" name="user_code" value="${device.user_code}">
      <input type="hidden" name="csrf_token" value="${stolenToken}">
      <button id="go">Claim your prize</button></form>`);
  });
  await new Promise((ok) => evil.listen(0, '127.0.0.1', ok));
  try {
    await page.goto(`http://localhost:${evil.address().port}/`);
    await page.click('#go');
    await page.locator('h1').waitFor({ state: 'visible' });
    // SameSite=Strict: the session cookie stayed home, so the request is not signed in.
    assert.equal(await text(page, 'h1'), 'Please sign in');
  } finally {
    evil.close();
  }
  let r = await pollToken(device.device_code);
  assert.deepEqual(r.body, { error: 'authorization_pending' });

  // The person's own page still works.
  await page.goto(device.verification_uri_complete);
  await page.click('#approve');
  await page.locator('#result').waitFor({ state: 'visible' });
  assert.equal(await text(page, '#result'), 'Approved — you can return to your device');
  await context.close();
  await new Promise((ok) => setTimeout(ok, 1200));
  r = await pollToken(device.device_code);
  assert.equal(r.status, 200, JSON.stringify(r.body));
});
