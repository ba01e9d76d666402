// Shared pieces of the browser tests: the magnetar server process, small HTTP helpers, headless
// Chromium, and a PNG decoder for the screenshot checks. Node's standard library and
// playwright-core only; every wait has a timeout so a broken build fails instead of hanging.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..');
export const MAGNETAR_BIN = process.env.MAGNETAR_BIN || join(REPO, 'build', 'src', 'server', 'magnetar');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
// Screenshots and server logs go here, never into the repository.
export const ARTIFACTS = process.env.BROWSER_ARTIFACTS || mkdtempSync(join(tmpdir(), 'magnetar-browser-'));
export const HTTP_TIMEOUT_MS = 10_000;

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One `magnetar serve` on a free loopback port, memory storage, with a bootstrap admin.
export class MagnetarServer {
  constructor(extraArgs = []) {
    this.extraArgs = extraArgs;
    this.adminUsername = 'admin';
    this.adminPassword = 'pw-' + randomBytes(12).toString('hex');
    this.secret = randomBytes(24).toString('hex');
    this.logPath = join(ARTIFACTS, `server-${Date.now()}.log`);
  }

  get baseUrl() { return `http://127.0.0.1:${this.port}`; }
  url(path) { return this.baseUrl + path; }

  async start(readyTimeoutMs = 15_000) {
    this.port = await freePort();
    const log = openSync(this.logPath, 'a');
    const env = Object.fromEntries(Object.entries(process.env).filter(
      ([k]) => !k.toUpperCase().startsWith('PULSAR_') && !k.toUpperCase().startsWith('MAGNETAR_')));
    Object.assign(env, {
      PULSAR_JWT_SECRET_KEY: this.secret,
      PULSAR_BOOTSTRAP_ADMIN_USERNAME: this.adminUsername,
      PULSAR_BOOTSTRAP_ADMIN_PASSWORD: this.adminPassword,
    });
    this.proc = spawn(MAGNETAR_BIN, ['serve', '--host', '127.0.0.1', '--port', String(this.port),
      '--storage', 'memory', '--pulsar-port', '0', '--eftl-port', '0', '--pulsar-ws-port', '0', ...this.extraArgs],
      { env, stdio: ['ignore', log, log], cwd: ARTIFACTS });
    this.exited = new Promise((ok) => this.proc.on('exit', (code, signal) => ok({ code, signal })));
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) break;
      try {
        const r = await fetch(this.url('/health'), { signal: AbortSignal.timeout(1000) });
        if (r.ok) return this;
      } catch { /* not listening yet */ }
      await sleep(50);
    }
    this.kill();
    throw new Error(`magnetar did not become ready; log:\n${this.log().slice(-4000)}`);
  }

  log() {
    try { return readFileSync(this.logPath, 'utf8'); } catch { return ''; }
  }

  // SIGTERM, then SIGKILL if it has not exited within `timeoutMs`. Resolves to the exit code.
  async stop(timeoutMs = 10_000) {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) {
      return this.proc ? this.proc.exitCode : null;
    }
    this.proc.kill('SIGTERM');
    const result = await Promise.race([this.exited, sleep(timeoutMs).then(() => null)]);
    if (result === null) {
      this.kill();
      return null;
    }
    return result.code;
  }

  kill() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

// POST a form; returns { status, body (parsed JSON or text), headers }.
export async function postForm(url, fields, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    body: new URLSearchParams(fields),
    headers,
    redirect: 'manual',
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await r.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body, headers: r.headers };
}

export async function postJson(url, value, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    body: JSON.stringify(value),
    headers: { 'Content-Type': 'application/json', ...headers },
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

export async function getJson(url, headers = {}) {
  const r = await fetch(url, { headers, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

// Headless Debian Chromium. The caller must close() it (tests do so in `after`).
export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-background-networking'],
  });
}

// Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's screenshots are) into
// { width, height, channels, pixels } with the filters undone.
export function decodePng(buf) {
  const signature = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  if (!buf.subarray(0, 8).equals(signature)) throw new Error('not a PNG');
  let pos = 8;
  let header = null;
  const idat = [];
  while (pos + 8 <= buf.length) {
    const length = buf.readUInt32BE(pos);
    const type = buf.toString('ascii', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + length);
    if (type === 'IHDR') {
      header = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), depth: data[8],
        colorType: data[9], interlace: data[12] };
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    pos += 12 + length;
  }
  if (!header) throw new Error('PNG without IHDR');
  const { width, height, depth, colorType, interlace } = header;
  if (depth !== 8 || interlace !== 0 || (colorType !== 2 && colorType !== 6)) {
    throw new Error(`unsupported PNG: depth ${depth}, colour type ${colorType}, interlace ${interlace}`);
  }
  const channels = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
      let v;
      switch (filter) {
        case 0: v = line[x]; break;
        case 1: v = line[x] + a; break;
        case 2: v = line[x] + b; break;
        case 3: v = line[x] + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v = line[x] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new Error(`bad PNG filter ${filter}`);
      }
      pixels[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

// How many distinct colours an image has, and the share of its most common one.
export function colourStats({ width, height, channels, pixels }) {
  const counts = new Map();
  for (let i = 0; i < width * height; i++) {
    const o = i * channels;
    const key = (pixels[o] << 16) | (pixels[o + 1] << 8) | pixels[o + 2];
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  let top = 0;
  for (const n of counts.values()) top = Math.max(top, n);
  return { distinct: counts.size, dominantShare: top / (width * height) };
}
