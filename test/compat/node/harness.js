// Shared set-up of the compatibility scripts: an SDK logger that keeps warnings and errors
// (printed on failure), the current stage for failure messages, and an overall timeout.
// Usage: const h = require('./harness')('node-x', 60000); ... h.stage = '...'; h.fail(why); h.done();
'use strict';

module.exports = function harness(name, timeoutMs) {
  const sdkLog = [];
  const keep = (level) => (...args) => {
    if (sdkLog.length < 50) sdkLog.push(level + ' ' + args.map((a) => (a && a.stack) || JSON.stringify(a)).join(' '));
  };
  const h = {
    stage: 'start',
    logger: { info() {}, debug() {}, warn: keep('WARN'), error: keep('ERROR') },
    fail(why) {
      console.error(`${name}: ${why} (stage: ${h.stage})`);
      for (const l of sdkLog) console.error('  sdk: ' + l.slice(0, 600));
      process.exit(1);
    },
    done() { clearTimeout(timer); },
  };
  const timer = setTimeout(() => h.fail(`timed out after ${timeoutMs / 1000} s`), timeoutMs);
  return h;
};
