import { test } from "node:test";
import assert from "node:assert/strict";

import { Rejoiner, delayFor, GIVE_UP_MS } from "../src/rejoin.js";

// fakeTimers runs timeouts when the test says, and moves a clock.
function fakeTimers() {
  const t = { now: 0, queue: [] };
  t.setTimeout = (fn, ms) => {
    const h = { fn, at: t.now + ms };
    t.queue.push(h);
    return h;
  };
  t.clearTimeout = (h) => {
    t.queue = t.queue.filter((x) => x !== h);
  };
  t.next = async () => {
    t.queue.sort((a, b) => a.at - b.at);
    const h = t.queue.shift();
    assert.ok(h, "a timeout is pending");
    t.now = h.at;
    await h.fn();
  };
  return t;
}

const settle = () => new Promise((r) => setImmediate(r));

test("the waits grow 1, 2, 4, 8, 15 s, each within a quarter", () => {
  const lo = [1, 2, 4, 8, 15, 15].map((s, i) => delayFor(i + 1, () => 0));
  const hi = [1, 2, 4, 8, 15, 15].map((s, i) => delayFor(i + 1, () => 1));
  assert.deepEqual(lo, [750, 1500, 3000, 6000, 11250, 11250]);
  assert.deepEqual(hi, [1250, 2500, 5000, 10000, 18750, 18750]);
});

test("tries until the step succeeds, telling each wait", async () => {
  const t = fakeTimers();
  const waits = [];
  let done = false;
  let calls = 0;
  const r = new Rejoiner({
    step: async () => {
      calls++;
      if (calls < 4) throw new Error("not yet");
    },
    onWait: (ms, attempt) => waits.push([attempt, ms]),
    onDone: () => (done = true),
    now: () => t.now,
    timers: t,
    random: () => 0.5,
  });
  r.start();
  await settle();
  for (let i = 0; i < 3; i++) await t.next();
  await settle();
  assert.equal(done, true);
  assert.deepEqual(waits, [
    [1, 1000],
    [2, 2000],
    [3, 4000],
  ]);
});

test("a fatal failure stops at once; again retries at once; ten minutes is the limit", async () => {
  const t = fakeTimers();
  let gaveUp = null;
  let n = 0;
  const r = new Rejoiner({
    step: async () => {
      n++;
      const e = new Error(n === 1 ? "new account" : "gone");
      if (n === 1) e.again = true;
      else e.fatal = true;
      throw e;
    },
    onGiveUp: (err) => (gaveUp = err),
    now: () => t.now,
    timers: t,
  });
  r.start();
  await settle();
  assert.equal(t.queue[0].at, 0, "again: no wait");
  await t.next();
  await settle();
  assert.equal(gaveUp && gaveUp.message, "gone");
  assert.equal(t.queue.length, 0);

  const t2 = fakeTimers();
  let last = null;
  const r2 = new Rejoiner({
    step: async () => {
      throw new Error("down");
    },
    onGiveUp: (err) => (last = err),
    now: () => t2.now,
    timers: t2,
    random: () => 0.5,
  });
  r2.start();
  await settle();
  while (!last) {
    await t2.next();
    await settle();
  }
  assert.ok(t2.now >= GIVE_UP_MS && t2.now < GIVE_UP_MS + 20000, `gave up at ${t2.now} ms`);
});

test("cancel stops it; retryNow skips the wait", async () => {
  const t = fakeTimers();
  let calls = 0;
  const r = new Rejoiner({
    step: async () => {
      calls++;
      throw new Error("down");
    },
    now: () => t.now,
    timers: t,
  });
  r.start();
  await settle();
  r.retryNow();
  await settle();
  assert.equal(calls, 2);
  r.cancel();
  assert.equal(t.queue.length, 0);
});
