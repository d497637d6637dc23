// Preloaded (node --require) into each backend process of the bench: moves
// the wall clock of the process by an offset the harness sets (the session
// model simulates 8 hours in a minute). `Date.now()`, `new Date()` and
// `Date()` see the offset, so that token expiry, cache TTLs and cookie
// lifetimes behave as if the time had passed; `performance.now()` and
// timers do not, so latencies are still measured in real time.
//
// Loaded before anything else, so that no module keeps the real Date.
'use strict';

const RealDate = Date;
let offsetMs = 0;
const now = () => RealDate.now() + offsetMs;

// A plain function, not a Proxy: `new Date()` runs thousands of times a
// second in a backend, and a Proxy's construct trap costs several times more.
function ShiftedDate(...args) {
  if (!new.target) {
    // Date() called as a function: a string of the current time
    return new RealDate(now()).toString();
  }
  return args.length === 0 ? new RealDate(now()) : new RealDate(...args);
}
Object.setPrototypeOf(ShiftedDate, RealDate); // Date.UTC, Date.parse, …
ShiftedDate.prototype = RealDate.prototype; // instanceof Date
ShiftedDate.now = now;

globalThis.Date = ShiftedDate;

module.exports = {
  /** Moves this process's clock to real time + `ms`. */
  setClockOffset(ms) {
    offsetMs = ms;
  },
  clockOffset: () => offsetMs,
};
