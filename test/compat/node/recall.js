// Rocketry compatibility check: Producer.recallMessage of the official Node.js SDK 1.0.8
// (RocketMQ 5.3.2's RecallMessage) over plaintext gRPC. Two delay messages are sent 3 s
// ahead; the second is recalled with the handle from its send receipt; only the first is
// received. A bad handle is refused.
// Usage: node recall.js <endpoint> <delayTopic> <group>
// Prints one JSON line {"ok":true,...} and exits 0, or prints the reason and exits 1.
'use strict';
const { Producer, SimpleConsumer } = require('rocketmq-client-nodejs');

const [endpoint, topic, group] = process.argv.slice(2);
const h = require('./harness')('node-recall', 60000);
const fail = h.fail;

(async () => {
  const producer = new Producer({ endpoints: endpoint, namespace: '', logger: h.logger, topics: [topic] });
  h.stage = 'producer startup';
  await producer.startup();
  h.stage = 'send delay';
  const at = new Date(Date.now() + 3000);
  const kept = await producer.send({ topic, deliveryTimestamp: at, body: Buffer.from('kept') });
  const recalled = await producer.send({ topic, deliveryTimestamp: at, body: Buffer.from('recalled') });
  if (!kept.recallHandle || !recalled.recallHandle) fail('send receipt without recallHandle');
  h.stage = 'recall';
  const receipt = await producer.recallMessage(topic, recalled.recallHandle);
  if (receipt.messageId !== recalled.messageId) fail(`recall answered ${receipt.messageId}, want ${recalled.messageId}`);
  h.stage = 'recall with a bad handle';
  let refused = false;
  try {
    await producer.recallMessage(topic, 'bm90IGEgaGFuZGxl');
  } catch (e) {
    refused = true;
  }
  if (!refused) fail('a bad recall handle was accepted');

  const consumer = new SimpleConsumer({ endpoints: endpoint, namespace: '', consumerGroup: group, logger: h.logger,
    subscriptions: new Map().set(topic, '*'), awaitDuration: 3000 });
  h.stage = 'consumer startup';
  await consumer.startup();
  h.stage = 'receive';
  const got = [];
  const deadline = Date.now() + 12000; // the kept message is due 3 s after sending
  while (Date.now() < deadline) {
    let msgs = [];
    try {
      msgs = await consumer.receive(16, 20000);
    } catch (e) {
      if (!String(e && e.message).includes('MESSAGE_NOT_FOUND') && !String(e && e.code).includes('40401')) {
        throw new Error('receive: ' + (e && e.stack || e));
      }
    }
    for (const m of msgs) {
      got.push(m.body.toString());
      await consumer.ack(m);
    }
  }
  if (got.length !== 1 || got[0] !== 'kept') fail('received ' + JSON.stringify(got) + ', want ["kept"]');
  h.stage = 'shutdown';
  await consumer.shutdown();
  await producer.shutdown();
  h.done();
  console.log(JSON.stringify({ ok: true, received: got }));
  process.exit(0);
})().catch((e) => fail(e && e.stack || String(e)));
