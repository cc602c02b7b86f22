/** A tiny typed event emitter (no dependency on Node's 'events', so it runs in browsers). */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Listener = (...args: any[]) => void;

export class Emitter<E extends { [K in keyof E]: Listener }> {
  private readonly listeners = new Map<keyof E, E[keyof E][]>();

  /** Adds a listener; returns a function that removes it. */
  addListener<K extends keyof E>(event: K, fn: E[K]): () => void {
    const list = this.listeners.get(event);
    if (list) list.push(fn);
    else this.listeners.set(event, [fn]);
    return () => this.removeListener(event, fn);
  }

  removeListener<K extends keyof E>(event: K, fn: E[K]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.listeners.delete(event);
  }

  listenerCount(event: keyof E): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  /**
   * Calls every listener of `event` in registration order. A listener that throws does not
   * stop the others; its error goes to `onListenerError`.
   */
  emit<K extends keyof E>(event: K, args: Parameters<E[K]>, onListenerError?: (err: unknown) => void): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const fn of list.slice()) {
      try {
        fn(...args);
      } catch (err) {
        if (onListenerError) {
          try {
            onListenerError(err);
          } catch {
            // an error reporter that throws is ignored
          }
        }
      }
    }
  }
}
