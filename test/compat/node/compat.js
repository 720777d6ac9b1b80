// Rocketry compatibility check with the official RocketMQ Node.js SDK (rocketmq-client-nodejs
// 1.0.8) over plaintext gRPC: sends messages (normal with tag/keys/properties, FIFO with a
// message group), receives them with a SimpleConsumer, checks them and acks them.
// Usage: node compat.js <endpoint> <topic> <fifoTopic> <group> <fifoGroup>
// Prints one JSON line {"ok":true,...} and exits 0, or prints the reason and exits 1.
'use strict';
const { Producer, SimpleConsumer } = require('rocketmq-client-nodejs');

const [endpoint, topic, fifoTopic, group, fifoGroup] = process.argv.slice(2);
const h = require('./harness')('node-compat', 60000);
const fail = h.fail;

async function receiveAll(consumer, want, check) {
  const got = new Map();
  const deadline = Date.now() + 30000;
  while (got.size < want && Date.now() < deadline) {
    let msgs = [];
    try {
      msgs = await consumer.receive(16, 20000);
    } catch (e) {
      if (!String(e && e.message).includes('MESSAGE_NOT_FOUND') && !String(e && e.code).includes('40401')) {
        throw new Error('receive: ' + (e && e.stack || e));
      }
    }
    for (const m of msgs) {
      check(m, got);
      got.set(m.messageId, m.body.toString());
      await consumer.ack(m);
    }
  }
  return got;
}

(async () => {
  // Two topics: SDK 1.0.8's startup can miss a fast Settings reply while it fetches the second
  // route and then waits forever; the proxy repeats the reply (docs/qa/findings.md F3).
  const producer = new Producer({ endpoints: endpoint, namespace: '', logger: h.logger, topics: [topic, fifoTopic] });
  h.stage = 'producer startup';
  await producer.startup();
  h.stage = 'send normal';
  const sent = new Map();
  for (let i = 0; i < 3; i++) {
    const r = await producer.send({ topic, tag: 'nodetag', keys: ['k' + i], properties: new Map([['color', 'red']]), body: Buffer.from('node-' + i) });
    if (!r.messageId) fail('send receipt without messageId');
    sent.set(r.messageId, 'node-' + i);
  }
  h.stage = 'send fifo';
  const fifoSent = [];
  for (let i = 0; i < 4; i++) {
    const r = await producer.send({ topic: fifoTopic, messageGroup: 'g' + (i % 2), body: Buffer.from('fifo-' + i) });
    fifoSent.push(r.messageId);
  }

  const consumer = new SimpleConsumer({ endpoints: endpoint, namespace: '', consumerGroup: group, logger: h.logger,
    subscriptions: new Map().set(topic, 'nodetag'), awaitDuration: 3000 });
  h.stage = 'consumer startup';
  await consumer.startup();
  h.stage = 'receive normal';
  const got = await receiveAll(consumer, sent.size, (m) => {
    if (!sent.has(m.messageId)) fail('unknown message ' + m.messageId + ' ' + m.body);
    if (sent.get(m.messageId) !== m.body.toString()) fail('body mismatch for ' + m.messageId);
    if (m.tag !== 'nodetag') fail('tag ' + m.tag);
    if (m.properties.get('color') !== 'red') fail('user property color=' + m.properties.get('color'));
    if (m.deliveryAttempt !== 1) fail('deliveryAttempt ' + m.deliveryAttempt);
  });
  if (got.size !== sent.size) fail(`received ${got.size} of ${sent.size} messages`);

  const fifoConsumer = new SimpleConsumer({ endpoints: endpoint, namespace: '', consumerGroup: fifoGroup, logger: h.logger,
    subscriptions: new Map().set(fifoTopic, '*'), awaitDuration: 3000 });
  h.stage = 'fifo consumer startup';
  await fifoConsumer.startup();
  h.stage = 'receive fifo';
  const last = {};
  const fifoGot = await receiveAll(fifoConsumer, fifoSent.length, (m) => {
    const n = Number(m.body.toString().split('-')[1]);
    const g = m.messageGroup;
    if (g !== 'g' + (n % 2)) fail(`message group ${g} for ${m.body}`);
    if (last[g] !== undefined && n < last[g]) fail(`FIFO order broken in ${g}: ${n} after ${last[g]}`);
    last[g] = n;
  });
  if (fifoGot.size !== fifoSent.length) fail(`received ${fifoGot.size} of ${fifoSent.length} FIFO messages`);

  h.stage = 'shutdown';
  await consumer.shutdown();
  await fifoConsumer.shutdown();
  await producer.shutdown();
  h.done();
  console.log(JSON.stringify({ ok: true, received: got.size, fifoReceived: fifoGot.size }));
  process.exit(0);
})().catch((e) => fail(e && e.stack || String(e)));
