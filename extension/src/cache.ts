/**
 * A small time-limited cache of promises: concurrent callers share one request, a
 * value is reused for `ttlMs`, and a failure is never cached.
 */
export class PromiseCache<T> {
  constructor(
    private readonly _ttlMs: number,
    private readonly _now: () => number = Date.now
  ) {}

  /**
   * The cached value for `key`, or the result of `load()` when there is none, it is
   * older than the TTL, or `force` is set.
   */
  get(key: string, load: () => Promise<T>, force = false): Promise<T> {
    const hit = this._entries.get(key);
    if (hit && !force && (hit.pending || this._now() - hit.at < this._ttlMs)) {
      return hit.promise;
    }
    const entry: Private.IEntry<T> = {
      promise: load(),
      at: this._now(),
      pending: true
    };
    this._entries.set(key, entry);
    entry.promise.then(
      () => {
        entry.pending = false;
        entry.at = this._now();
      },
      () => {
        if (this._entries.get(key) === entry) {
          this._entries.delete(key);
        }
      }
    );
    return entry.promise;
  }

  /** Forget every key that starts with `prefix` (all keys when omitted). */
  clear(prefix = ''): void {
    for (const key of [...this._entries.keys()]) {
      if (key.startsWith(prefix)) {
        this._entries.delete(key);
      }
    }
  }

  private _entries = new Map<string, Private.IEntry<T>>();
}

namespace Private {
  export interface IEntry<T> {
    promise: Promise<T>;
    at: number;
    pending: boolean;
  }
}
