// The operations dashboard (/ui) in a real browser (headless Debian Chromium): an admin signs in
// and sees live health, rates and connections; a user opens a topic and watches a message
// published from outside arrive in the live tail (over the relay WebSocket), publishes one from
// the page; an admin revokes another session; and every page is screenshotted and checked for a
// non-blank render. No page may log an error or a Content-Security-Policy violation, and no token
// may appear in a URL.
//
// Run by scripts/browser-test.sh. Screenshots and the server log go to BROWSER_ARTIFACTS.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ARTIFACTS, MagnetarServer, colourStats, decodePng, getJson, launchChromium, postForm, postJson,
} from './harness.mjs';

const VIEWPORT = { width: 1200, height: 900 };

let server;
let browser;
let adminToken;
let user;

async function login(username, password) {
  const r = await postForm(server.url('/auth/login'), { username, password, grant_type: 'password' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function newPage() {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.setDefaultNavigationTimeout(15_000);
  const problems = [];
  const urls = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || /Content Security Policy/i.test(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (err) => problems.push(String(err)));
  page.on('request', (req) => urls.push(req.url()));
  page.on('websocket', (ws) => urls.push(ws.url()));
  return { context, page, problems, urls };
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent()).trim();
}

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
}

async function signIn(page, username, password) {
  await page.goto(server.url('/ui'));
  await page.locator('#login-form').waitFor({ state: 'visible' });
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-form button[type=submit]');
  await page.locator('#whoami').waitFor({ state: 'visible' });
  assert.equal(await text(page, '#whoami'), `Signed in as ${username}`);
}

function assertNoTokenInUrls(urls, ...tokens) {
  for (const url of urls) {
    for (const t of tokens) assert.ok(!url.includes(t), `a token is in the URL ${url.slice(0, 80)}…`);
  }
}

before(async () => {
  server = await new MagnetarServer(['--rate-limit-login', '100']).start();
  browser = await launchChromium();
  adminToken = (await login(server.adminUsername, server.adminPassword)).access_token;
  user = { username: `carol-${Date.now()}`, password: 'pw-dashboard-test-1' };
  const r = await postJson(server.url('/auth/register'),
    { username: user.username, password: user.password, permissions: ['read', 'write'] },
    { Authorization: `Bearer ${adminToken}` });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  user.id = r.body.user_id;
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (server) {
    const code = await server.stop();
    console.log(`# screenshots and server log: ${ARTIFACTS}`);
    assert.equal(code, 0, `magnetar exited with ${code}; log tail:\n${server.log().slice(-4000)}`);
  }
});

test('the sign-in page renders and refuses a wrong password', async () => {
  const { context, page, problems } = await newPage();
  try {
    await page.goto(server.url('/ui'));
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await checkScreenshot(page, 'dashboard-sign-in');
    await page.fill('#username', user.username);
    await page.fill('#password', 'not-the-password');
    await page.click('#login-form button[type=submit]');
    await page.locator('#login-error').waitFor({ state: 'visible' });
    assert.equal(await text(page, '#login-error'), 'Incorrect username or password');
    assert.equal(await page.inputValue('#password'), '', 'the password field is cleared');
    // A 401 is logged by Chromium as a failed resource load; nothing else may be.
    assert.deepEqual(problems.filter((p) => !/401/.test(p)), []);
  } finally {
    await context.close();
  }
});

test('an admin sees live health, rates, latency and connections', async () => {
  const { context, page, problems, urls } = await newPage();
  try {
    await signIn(page, server.adminUsername, server.adminPassword);
    await page.locator('#view-overview').waitFor({ state: 'visible' });
    await page.waitForFunction(() => document.querySelector('#health').textContent === 'healthy');
    // Traffic while the page watches: the rate and the chart pick it up within a few polls.
    const token = (await login(user.username, user.password)).access_token;
    const deadline = Date.now() + 12_000;
    while (Date.now() < deadline) {
      const r = await postJson(server.url('/api/v1/messages'), { topic: 'load', payload: { t: Date.now() } },
        { Authorization: `Bearer ${token}` });
      assert.equal(r.status, 201);
      const rate = Number(await text(page, '#rate-published'));
      if (rate > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(Number(await text(page, '#rate-published')) > 0, 'the publish rate moved');
    assert.match(await text(page, '#latency-publish'), /(µs|ms|s) \/ /);
    assert.match(await text(page, '#connections'), /HTTP connections\d+/);
    assert.ok(Number((await text(page, '#total-published')).split(' ')[0]) >= 1);
    await checkScreenshot(page, 'dashboard-overview');

    await page.click('nav a[data-view=users]');
    await page.locator(`#users-table tr[data-user="${user.username}"]`).waitFor();
    await checkScreenshot(page, 'dashboard-users');

    await page.click('nav a[data-view=topics]');
    await page.check('#all-topics');
    await page.locator('#topics-table tr[data-topic="load"]').waitFor();
    const row = page.locator('#topics-table tr[data-topic="load"]');
    assert.equal(await row.locator('td').nth(1).textContent(), user.username);
    assert.ok(Number(await row.locator('td').nth(2).textContent()) >= 1);
    await checkScreenshot(page, 'dashboard-topics-all');
    assertNoTokenInUrls(urls, adminToken, token);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('a user watches a published message arrive in the live tail and publishes one', async () => {
  const { context, page, problems, urls } = await newPage();
  try {
    await signIn(page, user.username, user.password);
    // Not an admin: no overview, no users; the topics list is the start page.
    await page.locator('#view-topics').waitFor({ state: 'visible' });
    assert.equal(await page.locator('nav a[data-view=overview]').isVisible(), false);
    const topic = `tail-${Date.now()}`;
    await page.fill('#new-topic', topic);
    await page.click('#new-topic-form button');
    await page.waitForFunction(() => document.querySelector('#tail-status').textContent === 'live');

    // Published from outside the browser: it must appear without a reload.
    const token = (await login(user.username, user.password)).access_token;
    const marker = `hello-${Date.now()}`;
    const r = await postJson(server.url('/api/v1/messages'), { topic, payload: { marker } },
      { Authorization: `Bearer ${token}` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const item = page.locator(`#tail li[data-id="${r.body.message_id}"]`);
    await item.waitFor({ state: 'visible', timeout: 5000 });
    assert.match(await item.textContent(), new RegExp(marker));

    // And from the page itself.
    await page.fill('#publish-payload', '{"from": "the dashboard"}');
    await page.click('#publish-form button');
    await page.waitForFunction(() => /^Published \d+-\d+$/.test(document.querySelector('#publish-result').textContent));
    const id = (await text(page, '#publish-result')).split(' ')[1];
    await page.locator(`#tail li[data-id="${id}"]`).waitFor({ state: 'visible', timeout: 5000 });
    const stored = await getJson(server.url(`/api/v1/topics/${topic}/messages?order=asc`),
      { Authorization: `Bearer ${token}` });
    assert.deepEqual(stored.body.messages.map((m) => m.payload), [{ marker }, { from: 'the dashboard' }]);
    await checkScreenshot(page, 'dashboard-live-tail');

    await page.click('nav a[data-view=topics]');
    await page.locator(`#topics-table tr[data-topic="${topic}"]`).waitFor();
    assert.equal(await page.locator(`#topics-table tr[data-topic="${topic}"] td`).nth(2).textContent(), '2');
    await checkScreenshot(page, 'dashboard-topics');

    const stored_tokens = await page.evaluate(() => sessionStorage.getItem('magnetar.dashboard.tokens'));
    const pageTokens = JSON.parse(stored_tokens);
    assertNoTokenInUrls(urls, token, pageTokens.access, pageTokens.refresh, pageTokens.refresh.split('.')[1]);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('sessions are listed and revoked: own sessions and, for an admin, anyone\'s', async () => {
  // Two logins of the user from elsewhere: two sessions to revoke.
  const mine = await login(user.username, user.password);
  const theirs = await login(user.username, user.password);
  const { context, page, problems } = await newPage();
  try {
    // The user revokes one of their own sessions on "My sessions".
    await signIn(page, user.username, user.password);
    await page.click('nav a[data-view=sessions]');
    const jti = mine.refresh_token.split('.')[0];
    await page.locator(`#my-sessions tr[data-jti="${jti}"]`).waitFor();
    assert.match(await page.locator('#my-sessions tbody').textContent(), /\(this page\)/);
    await checkScreenshot(page, 'dashboard-my-sessions');
    await page.click(`#my-sessions tr[data-jti="${jti}"] button.revoke`);
    await page.locator(`#my-sessions tr[data-jti="${jti}"]`).waitFor({ state: 'detached' });
    let r = await postJson(server.url('/auth/token/refresh'), { refresh_token: mine.refresh_token });
    assert.equal(r.status, 401, 'the revoked session can no longer refresh');
    await page.click('#signout');
    await page.locator('#login-form').waitFor({ state: 'visible' });

    // The admin revokes another of the user's sessions from the Users page.
    await signIn(page, server.adminUsername, server.adminPassword);
    await page.click('nav a[data-view=users]');
    await page.click(`#users-table tr[data-user="${user.username}"] button.show-sessions`);
    const other = theirs.refresh_token.split('.')[0];
    await page.locator(`#user-sessions tr[data-jti="${other}"]`).waitFor();
    await checkScreenshot(page, 'dashboard-user-sessions');
    await page.click(`#user-sessions tr[data-jti="${other}"] button.revoke`);
    await page.locator(`#user-sessions tr[data-jti="${other}"]`).waitFor({ state: 'detached' });
    r = await postJson(server.url('/auth/token/refresh'), { refresh_token: theirs.refresh_token });
    assert.equal(r.status, 401, 'the session the admin revoked can no longer refresh');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('the dashboard API refuses non-admins and the page carries a strict CSP', async () => {
  const token = (await login(user.username, user.password)).access_token;
  let r = await getJson(server.url('/ui/api/stats'), { Authorization: `Bearer ${token}` });
  assert.equal(r.status, 403);
  r = await getJson(server.url('/ui/api/topics?all=true'), { Authorization: `Bearer ${token}` });
  assert.equal(r.status, 403);
  r = await getJson(server.url(`/ui/api/users/${user.id}/sessions`), { Authorization: `Bearer ${token}` });
  assert.equal(r.status, 403);
  const page = await fetch(server.url('/ui'));
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
});
