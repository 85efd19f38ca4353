/* A StatsD backend for the tests: writes each flush's exact values as JSON.
 *
 * SIGTERM makes statsd flush one last time on the way out, so the file must be written
 * synchronously. Config: { jsonOut: "/path/to/flush.json" }.
 */
const fs = require('fs');

exports.init = function (startupTime, config, events) {
  const out = config.jsonOut;
  events.on('flush', function (timestamp, metrics) {
    const timers = {};
    for (const key in metrics.timers) {
      timers[key] = metrics.timers[key].slice();
    }
    const data = JSON.stringify({
      timestamp: timestamp,
      counters: metrics.counters,
      timers: timers,
      timer_counters: metrics.timer_counters,
      gauges: metrics.gauges,
    });
    fs.writeFileSync(out + '.tmp', data);
    fs.renameSync(out + '.tmp', out);
  });
  return true;
};
