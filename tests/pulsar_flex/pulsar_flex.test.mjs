// Magnetar's Pulsar binary protocol driven by a real third-party client: pulsar-flex 1.1.1 (pure
// JavaScript, npm). Producers and consumers with properties, batches, Exclusive and Shared
// subscriptions, acks and negative acks; and the same topics read and written over the relay
// HTTP API, with message ids that agree (MessageIdData{ledgerId, entryId} = relay "<hi>-<lo>").

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pulsar from 'pulsar-flex';
import { MagnetarServer, waitFor, within, sleep } from './harness.mjs';

const { Producer, Consumer, logLevel } = pulsar;
const { SUB_TYPES, ACK_TYPES } = Consumer;

let server;
const open = [];  // clients to close after each test, whatever happened

before(async () => { server = await new MagnetarServer().start(); });
after(async () => {
  for (const c of open.splice(0)) await c().catch(() => {});
  if (server) await server.stop();
});

const unique = (p) => `${p}-${randomBytes(6).toString('hex')}`;
const fullTopic = (name) => `persistent://admin/default/${name}`;

async function newProducer(topic, mode = Producer.ACCESS_MODES.SHARED, srv = server) {
  const p = new Producer({
    topic: fullTopic(topic), discoveryServers: [srv.pulsarAddress], jwt: srv.token,
    producerAccessMode: mode, logLevel: logLevel.ERROR,
  });
  await within(10_000, p.create(), 'producer create');
  open.push(() => p.close());
  return p;
}

// A consumer that collects what it receives; `handle(msg)` decides ack / nack (default ack).
async function newConsumer(topic, { subscription = 'sub', subType = SUB_TYPES.EXCLUSIVE,
  name = unique('c'), handle, srv = server } = {}) {
  const received = [];
  const c = new Consumer({
    topic: fullTopic(topic), discoveryServers: [srv.pulsarAddress], jwt: srv.token,
    subscription, subType, consumerName: name,
    receiveQueueSize: 100, reconnectInterval: 500, logLevel: logLevel.NOTHING,
  });
  await within(10_000, c.subscribe(), 'subscribe');
  open.push(() => c.unsubscribe());
  await c.run({
    autoAck: false,
    onMessage: async (m) => {
      const entry = {
        payload: m.message.toString(),
        properties: m.properties,
        key: m.metadata.partitionKey,
        id: `${m.command.messageId.ledgerid}-${m.command.messageId.entryid}`,
        redeliveryCount: m.redeliveryCount,
        consumer: name,
      };
      received.push(entry);
      await (handle ? handle(entry, m) : m.ack());
    },
  });
  return { consumer: c, received };
}

async function relayMessages(topic) {
  const r = await server.api('GET', `/api/v1/topics/${topic}/messages?order=asc&limit=100`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.messages;
}

test('single messages with properties: produced, consumed, acked; ids agree with the relay API', async () => {
  const topic = unique('single');
  // pulsar-flex sends no initialPosition (so: latest): subscribe before producing.
  const { received } = await newConsumer(topic);
  const producer = await newProducer(topic);
  for (let i = 0; i < 3; i++) {
    await within(10_000, producer.sendMessage({ payload: `hello-${i}`, properties: { n: String(i), app: 'flex' } }), 'send');
  }
  await waitFor(() => received.length >= 3, 15_000, '3 messages');
  assert.deepEqual(received.map((m) => m.payload), ['hello-0', 'hello-1', 'hello-2']);
  assert.deepEqual(received[1].properties, { n: '1', app: 'flex' });
  assert.ok(received.every((m) => m.redeliveryCount === 0));

  const stored = await relayMessages(topic);
  assert.deepEqual(stored.map((m) => m.message_id), received.map((m) => m.id));
  assert.deepEqual(stored[0].payload, { encoding: 'base64', data: Buffer.from('hello-0').toString('base64') });
  assert.deepEqual(stored[2].metadata, { n: '2', app: 'flex' });
});

test('a batch arrives as its messages, in order, readable over the relay API', async () => {
  const topic = unique('batch');
  const { received } = await newConsumer(topic);
  const producer = await newProducer(topic);
  await within(10_000, producer.sendBatch({ messages: [
    { payload: 'b0', properties: { i: '0' } },
    { payload: '{"json":true}', properties: { i: '1' } },
    { payload: 'b2', properties: { i: '2' } },
  ] }), 'sendBatch');
  await waitFor(() => received.length >= 3, 15_000, 'the batch');
  assert.deepEqual(received.map((m) => m.payload), ['b0', '{"json":true}', 'b2']);
  assert.deepEqual(received.map((m) => m.properties.i), ['0', '1', '2']);
  const stored = await relayMessages(topic);
  assert.equal(stored.length, 3);
  assert.deepEqual(stored[1].payload, { json: true });  // a JSON object stays JSON for relay clients
});

test('relay HTTP publish is consumed over the binary protocol with its metadata', async () => {
  const topic = unique('fromrelay');
  const { received } = await newConsumer(topic);
  const r = await server.api('POST', '/api/v1/messages', { topic, payload: { n: 42 }, metadata: { source: 'relay' } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  await waitFor(() => received.length >= 1, 15_000, 'the relay message');
  assert.deepEqual(JSON.parse(received[0].payload), { n: 42 });
  assert.deepEqual(received[0].properties, { source: 'relay' });
  assert.equal(received[0].id, r.body.message_id);
});

test('Exclusive: a second consumer on the subscription is refused', async () => {
  const topic = unique('excl');
  await newConsumer(topic, { subscription: 'only' });
  const second = new Consumer({
    topic: fullTopic(topic), discoveryServers: [server.pulsarAddress], jwt: server.token,
    subscription: 'only', subType: SUB_TYPES.EXCLUSIVE, consumerName: 'second', logLevel: logLevel.NOTHING,
  });
  await assert.rejects(within(10_000, second.subscribe(), 'second subscribe'), /Exclusive consumer is already connected/);
  second._client.getCnx()?.close?.();
});

test('Shared: messages are spread over the consumers, each delivered once', async () => {
  const topic = unique('shared');
  const a = await newConsumer(topic, { subscription: 'work', subType: SUB_TYPES.SHARED, name: 'a' });
  const b = await newConsumer(topic, { subscription: 'work', subType: SUB_TYPES.SHARED, name: 'b' });
  const producer = await newProducer(topic);
  for (let i = 0; i < 20; i++) await within(10_000, producer.sendMessage({ payload: `job-${i}` }), 'send');
  await waitFor(() => a.received.length + b.received.length >= 20, 20_000, '20 jobs');
  await sleep(300);  // nothing more may arrive
  const all = [...a.received, ...b.received].map((m) => m.payload).sort();
  assert.equal(all.length, 20);
  assert.equal(new Set(all).size, 20);
  assert.ok(a.received.length > 0 && b.received.length > 0, `a=${a.received.length} b=${b.received.length}`);
});

test('negative ack on Shared: the message comes back with its redelivery count', async () => {
  const topic = unique('nack');
  let nacked = false;
  const { received } = await newConsumer(topic, {
    subType: SUB_TYPES.SHARED,
    handle: async (entry, m) => {
      if (!nacked) {
        nacked = true;
        return m.ack({ type: ACK_TYPES.NEGATIVE });
      }
      return m.ack();
    },
  });
  const producer = await newProducer(topic);
  await within(10_000, producer.sendMessage({ payload: 'retry-me' }), 'send');
  await waitFor(() => received.length >= 2, 20_000, 'the redelivery');
  assert.equal(received[0].payload, 'retry-me');
  assert.equal(received[1].payload, 'retry-me');
  assert.equal(received[0].id, received[1].id);
  assert.equal(received[0].redeliveryCount, 0);
  assert.equal(received[1].redeliveryCount, 1);
});

test('acked messages are not delivered again to the subscription; unacked ones are', async () => {
  const topic = unique('durable');
  // First consumer acks m0 and m1 only.
  const first = await newConsumer(topic, {
    subscription: 'resume',
    handle: async (entry, m) => { if (entry.payload === 'm0' || entry.payload === 'm1') await m.ack(); },
  });
  const producer = await newProducer(topic);
  for (let i = 0; i < 4; i++) await within(10_000, producer.sendMessage({ payload: `m${i}` }), 'send');
  await waitFor(() => first.received.length >= 4, 15_000, 'four messages');
  await first.consumer.unsubscribe();  // pulsar-flex: CLOSE_CONSUMER, the subscription stays
  const second = await newConsumer(topic, { subscription: 'resume' });
  await waitFor(() => second.received.length >= 2, 15_000, 'the two unacked messages');
  await sleep(300);
  assert.deepEqual(second.received.map((m) => m.payload), ['m2', 'm3']);
});

test('Exclusive producer access: a second producer is refused while the first is open', async () => {
  const topic = unique('exprod');
  await newProducer(topic, Producer.ACCESS_MODES.EXCLUSIVE);
  const other = new Producer({
    topic: fullTopic(topic), discoveryServers: [server.pulsarAddress], jwt: server.token,
    producerAccessMode: Producer.ACCESS_MODES.SHARED, logLevel: logLevel.NOTHING,
  });
  await assert.rejects(within(10_000, other.create(), 'second producer'));
  other._client.getCnx()?.close?.();
});

test('Key_Shared and Failover: every message delivered once over two consumers', async () => {
  for (const subType of [SUB_TYPES.KEY_SHARED, SUB_TYPES.FAILOVER]) {
    const topic = unique(subType === SUB_TYPES.FAILOVER ? 'failover' : 'keyshared');
    const a = await newConsumer(topic, { subscription: 'g', subType, name: 'a' });
    const b = await newConsumer(topic, { subscription: 'g', subType, name: 'b' });
    const producer = await newProducer(topic);
    for (let i = 0; i < 10; i++) await within(10_000, producer.sendMessage({ payload: `k${i}` }), 'send');
    await waitFor(() => a.received.length + b.received.length >= 10, 20_000, '10 messages');
    await sleep(300);
    const all = [...a.received, ...b.received].map((m) => m.payload);
    assert.equal(all.length, 10);
    assert.equal(new Set(all).size, 10);
    if (subType === SUB_TYPES.FAILOVER) {
      // One active consumer (the lowest name) gets everything, in order.
      assert.deepEqual(a.received.map((m) => m.payload), Array.from({ length: 10 }, (_, i) => `k${i}`));
      assert.equal(b.received.length, 0);
    }
  }
});

test('producer and consumer reconnect after a server restart; nothing acked comes back', async () => {
  const durable = await new MagnetarServer(['--storage', 'rocksdb', '--durability', 'batch']).start();
  try {
    const topic = unique('restart');
    const { received } = await newConsumer(topic, { subscription: 'keep', srv: durable });
    const producer = await newProducer(topic, Producer.ACCESS_MODES.SHARED, durable);
    await within(10_000, producer.sendMessage({ payload: 'before' }), 'send before');
    await waitFor(() => received.length >= 1, 15_000, 'the first message');
    await sleep(300);  // its ack is answered and saved
    await durable.restart();
    // The producer reconnects on its own (pulsar-flex retries every 5 s); the send waits for it.
    await within(30_000, producer.sendMessage({ payload: 'after' }), 'send after the restart');
    await waitFor(() => received.some((m) => m.payload === 'after'), 30_000, 'the message after the restart');
    assert.deepEqual(received.map((m) => m.payload), ['before', 'after']);
  } finally {
    for (const c of open.splice(0)) await c().catch(() => {});
    await durable.stop();
  }
});
