// The server process and HTTP helpers of the pulsar-flex tests: one `magnetar serve` on free
// loopback ports (HTTP and Pulsar binary), memory storage, a bootstrap admin, and its token.
// Node's standard library only; every wait has a timeout so a broken build fails, never hangs.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..');
export const MAGNETAR_BIN = process.env.MAGNETAR_BIN || join(REPO, 'build', 'src', 'server', 'magnetar');
export const ARTIFACTS = process.env.PULSAR_FLEX_ARTIFACTS || mkdtempSync(join(tmpdir(), 'magnetar-pulsar-flex-'));
const HTTP_TIMEOUT_MS = 10_000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

export class MagnetarServer {
  // `extraArgs` default to the memory engine; a test that restarts passes ['--storage', 'rocksdb'].
  constructor(extraArgs = ['--storage', 'memory']) {
    this.extraArgs = extraArgs;
    this.workdir = mkdtempSync(join(ARTIFACTS, 'server-'));
    this.adminPassword = 'pw-' + randomBytes(12).toString('hex');
    this.secret = randomBytes(24).toString('hex');
    this.logPath = join(ARTIFACTS, `server-${Date.now()}.log`);
  }

  get baseUrl() { return `http://127.0.0.1:${this.port}`; }
  get pulsarAddress() { return `127.0.0.1:${this.pulsarPort}`; }

  async start(readyTimeoutMs = 15_000) {
    for (let attempt = 0; attempt < 3; attempt++) {  // a free port can be taken before we bind it
      this.port = await freePort();
      this.pulsarPort = await freePort();
      if (await this.spawn(readyTimeoutMs)) return this;
    }
    throw new Error(`magnetar did not become ready; log:\n${this.log().slice(-4000)}`);
  }

  // Stops the server (SIGTERM) and starts it again on the same ports and data directory.
  async restart(readyTimeoutMs = 15_000) {
    await this.stop();
    if (!(await this.spawn(readyTimeoutMs))) {
      throw new Error(`magnetar did not come back; log:\n${this.log().slice(-4000)}`);
    }
    return this;
  }

  async spawn(readyTimeoutMs) {
    const log = openSync(this.logPath, 'a');
    const env = Object.fromEntries(Object.entries(process.env).filter(
      ([k]) => !k.toUpperCase().startsWith('PULSAR_') && !k.toUpperCase().startsWith('MAGNETAR_')));
    Object.assign(env, {
      PULSAR_JWT_SECRET_KEY: this.secret,
      PULSAR_BOOTSTRAP_ADMIN_USERNAME: 'admin',
      PULSAR_BOOTSTRAP_ADMIN_PASSWORD: this.adminPassword,
    });
    this.proc = spawn(MAGNETAR_BIN, ['serve', '--host', '127.0.0.1', '--port', String(this.port),
      '--pulsar-port', String(this.pulsarPort), '--eftl-port', '0', '--pulsar-ws-port', '0', '--rate-limits', 'off', ...this.extraArgs],
    { env, stdio: ['ignore', log, log], cwd: this.workdir });
    this.exited = new Promise((ok) => this.proc.on('exit', (code, signal) => ok({ code, signal })));
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline && this.proc.exitCode === null) {
      try {
        const r = await fetch(this.baseUrl + '/health', { signal: AbortSignal.timeout(1000) });
        if (r.ok) {
          if (!this.token) this.token = await this.login('admin', this.adminPassword);
          return true;
        }
      } catch { /* not listening yet */ }
      await sleep(50);
    }
    this.kill();
    return false;
  }

  async login(username, password) {
    const r = await fetch(this.baseUrl + '/auth/login', {
      method: 'POST',
      body: new URLSearchParams({ username, password }),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(`login failed: ${r.status} ${JSON.stringify(body)}`);
    return body.access_token;
  }

  async api(method, path, value) {
    const r = await fetch(this.baseUrl + path, {
      method,
      body: value === undefined ? undefined : JSON.stringify(value),
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    return { status: r.status, body: await r.json().catch(() => null) };
  }

  log() {
    try { return readFileSync(this.logPath, 'utf8'); } catch { return ''; }
  }

  async stop(timeoutMs = 10_000) {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const done = await Promise.race([this.exited, sleep(timeoutMs).then(() => null)]);
    if (done === null) this.kill();
  }

  kill() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

// Resolves when `predicate()` is truthy; rejects after `timeoutMs` naming `what`.
export async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await predicate();
    if (v) return v;
    await sleep(25);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// Rejects after `ms` so a client call that never answers fails the test instead of hanging it.
export function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`${what}: no answer in ${ms} ms`)), ms); }),
  ]);
}
