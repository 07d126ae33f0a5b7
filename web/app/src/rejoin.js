// Getting back into a meeting by oneself: a step (sign in again if the session is gone, join
// the meeting again) tried until it succeeds, after 1, 2, 4, 8 and then every 15 seconds
// (each wait a quarter shorter or longer at random, so that a meeting's participants do not
// all come back in the same instant), for at most ten minutes. A step that fails for good
// (err.fatal: the meeting was deleted, the password changed) stops at once; one that says
// err.again is tried again at once (the step changed something: a new account).

export const DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
export const GIVE_UP_MS = 10 * 60 * 1000;
const MAX_ATTEMPTS = 100;

export function delayFor(attempt, random = Math.random) {
  const base = DELAYS_MS[Math.min(attempt - 1, DELAYS_MS.length - 1)];
  return Math.round(base * (0.75 + random() * 0.5));
}

export class Rejoiner {
  // step(attempt) resolves when back; onWait(ms, attempt, err) is told of each wait,
  // onDone() of success, onGiveUp(err) when it stops without success.
  constructor({ step, onWait, onDone, onGiveUp, now = Date.now, timers = globalThis, random = Math.random }) {
    this.step = step;
    this.onWait = onWait;
    this.onDone = onDone;
    this.onGiveUp = onGiveUp;
    this.now = now;
    this.timers = timers;
    this.random = random;
    this.attempt = 0;
    this.started = 0;
    this.timer = null;
    this.running = false;
    this.cancelled = false;
  }

  start() {
    this.started = this.now();
    this.run();
  }

  // retryNow skips the current wait.
  retryNow() {
    if (this.cancelled || this.running) return;
    this.timers.clearTimeout(this.timer);
    this.run();
  }

  cancel() {
    this.cancelled = true;
    this.timers.clearTimeout(this.timer);
  }

  async run() {
    if (this.cancelled) return;
    this.running = true;
    this.attempt++;
    let err = null;
    try {
      await this.step(this.attempt);
    } catch (e) {
      err = e || new Error("failed");
    }
    this.running = false;
    if (this.cancelled) return;
    if (!err) {
      this.cancelled = true;
      this.onDone?.();
      return;
    }
    if (err.fatal || this.attempt >= MAX_ATTEMPTS || this.now() - this.started >= GIVE_UP_MS) {
      this.cancelled = true;
      this.onGiveUp?.(err);
      return;
    }
    const ms = err.again ? 0 : delayFor(this.attempt, this.random);
    this.onWait?.(ms, this.attempt, err);
    this.timer = this.timers.setTimeout(() => this.run(), ms);
  }
}
