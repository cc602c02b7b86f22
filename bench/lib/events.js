// Timestamped ctx.emit() events of benchmark children, with waiting by predicate (the test kit's
// waitFor, woken by every new event).
import { ChangeFeed, waitFor } from '../../testkit/index.js';

export class EventLog {
  constructor() {
    this.events = [];
    this.changes = new ChangeFeed();
  }

  push(event) {
    this.events.push(event);
    this.changes.changed();
  }

  /** Resolves with the first event (already seen or future) matching pred. */
  wait(pred, timeoutMs, what) {
    // Each check looks only at the events that arrived since the last one.
    let next = 0;
    const find = () => {
      for (; next < this.events.length; next++) if (pred(this.events[next])) return this.events[next];
      return undefined;
    };
    return waitFor(find, { timeoutMs, what, wake: this.changes, pollMs: Infinity });
  }
}
