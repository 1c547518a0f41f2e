import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { PromiseCache } from './cache';
import { newlyDecided } from './decisions';
import { RequestError, requestAPI } from './request';
import {
  IConnectForm,
  IDataset,
  IDatasetsReply,
  IMock,
  IPendingReply,
  IProfile,
  IProfileReply,
  IProfilesReply,
  IRequest,
  IRequestsReply
} from './tokens';

/** A request that just became released or denied. */
export interface IRequestDecision {
  profile: string;
  request: IRequest;
}

/** What the panel knows about one profile's datasets. */
export interface IDatasetsState {
  status: 'loading' | 'ready' | 'error';
  /** The last list received (kept while reloading or after a failure). */
  datasets: readonly IDataset[];
  error: string | null;
}

/**
 * The state behind the Remote Data panel: profiles, their datasets, requests and
 * pending counts, kept fresh by a {@link Poll} while the panel is attached.
 *
 * Every method that talks to the server goes through `requestAPI`; nothing here
 * touches the DOM.
 *
 * @example
 * const model = new RemoteDataModel();
 * model.requestDecided.connect((_, { profile, request }) => notify(request));
 * model.start();
 */
export class RemoteDataModel implements IDisposable {
  constructor(options: RemoteDataModel.IOptions = {}) {
    this._settings = options.serverSettings ?? ServerConnection.makeSettings();
    this._interval = options.interval ?? 5_000;
    this._datasetsCache = new PromiseCache(options.cacheMs ?? 30_000);
    this._mockCache = new PromiseCache(options.cacheMs ?? 30_000);
    this._poll = new Poll({
      auto: false,
      factory: () => this.refresh({ force: false }),
      frequency: {
        interval: this._interval,
        backoff: true,
        max: MAX_BACKOFF_MS
      },
      name: 'rds:remote-data',
      standby: 'when-hidden'
    });
  }

  /** Emitted after any state change the view shows. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Emitted when a request moves from a non-final status (or from not being listed,
   * once the profile's list has loaded) to `released` or `denied`. Requests that are
   * already decided when a profile's list first loads are not announced.
   */
  get requestDecided(): ISignal<this, IRequestDecision> {
    return this._requestDecided;
  }

  /** The saved profiles, in the server's order. */
  get profiles(): readonly IProfile[] {
    return this._profiles;
  }

  /** Whether the profile list has been received at least once. */
  get loaded(): boolean {
    return this._loaded;
  }

  /** Why the profile list could not be fetched, if it could not. */
  get error(): string | null {
    return this._error;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** A profile's datasets, once {@link loadDatasets} has been called. */
  datasets(profile: string): IDatasetsState | undefined {
    return this._datasets.get(profile);
  }

  /** A scientist profile's requests, once loaded. */
  requests(profile: string): readonly IRequest[] | undefined {
    return this._requests.get(profile);
  }

  /** Why a profile's requests or pending count could not be refreshed. */
  profileError(profile: string): string | null {
    return this._profileErrors.get(profile) ?? null;
  }

  /** An owner profile's number of requests awaiting review, once loaded. */
  pending(profile: string): number | null {
    return this._pending.get(profile) ?? null;
  }

  /** Start polling (the panel calls this when it is attached). */
  start(): void {
    void this._poll.start();
  }

  /** Stop polling. */
  stop(): void {
    void this._poll.stop();
  }

  /**
   * Fetch the profiles, then each scientist's requests and each owner's pending
   * count. With `force` (the Refresh button) cached datasets are reloaded too.
   *
   * Rejects only when the profile list itself cannot be fetched (the poll then backs
   * off); a domain that is down is recorded on its profile instead.
   */
  refresh(options: { force?: boolean } = {}): Promise<void> {
    const force = options.force ?? true;
    if (this._refreshing && !force) {
      return this._refreshing;
    }
    // One refresh at a time, so an older reply never overwrites a newer one (which
    // would announce the same decision twice).
    const previous = this._refreshing ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(() => this._refresh(force));
    this._refreshing = next;
    const settle = () => {
      if (this._refreshing === next) {
        this._refreshing = null;
      }
    };
    next.then(settle, settle);
    return next;
  }

  /**
   * Load a profile's datasets (cached briefly). Never rejects: a failure is stored in
   * the returned state, and a domain that does not answer marks its profile down.
   */
  async loadDatasets(
    profile: string,
    options: { force?: boolean } = {}
  ): Promise<IDatasetsState> {
    const previous = this._datasets.get(profile);
    const pending = this._datasetsCache.get(
      `${profile}\n`,
      () =>
        this._request<IDatasetsReply>(`${profilePath(profile)}/datasets`).then(
          reply => reply.datasets
        ),
      options.force
    );
    this._setDatasets(profile, {
      status: 'loading',
      datasets: previous?.datasets ?? [],
      error: null
    });
    try {
      const datasets = await pending;
      return this._setDatasets(profile, {
        status: 'ready',
        datasets,
        error: null
      });
    } catch (error) {
      const message = this._fail(profile, error);
      return this._setDatasets(profile, {
        status: 'error',
        datasets: previous?.datasets ?? [],
        error: message
      });
    }
  }

  /** A dataset's mock rows (cached briefly); rejects with the server's message. */
  mock(profile: string, dataset: string, rows = 20): Promise<IMock> {
    const path = `${profilePath(profile)}/datasets/${encodeURIComponent(dataset)}/mock?rows=${rows}`;
    return this._mockCache.get(`${profile}\n${dataset}\n${rows}`, () =>
      this._request<IMock>(path).catch(error => {
        this._fail(profile, error);
        throw error;
      })
    );
  }

  /**
   * Save a new profile; the server signs in to the domain first.
   *
   * @throws {RequestError} with the server's reason (bad name, refused, unreachable)
   */
  async connect(form: IConnectForm): Promise<IProfile> {
    const reply = await this._request<IProfileReply>(
      'profiles',
      { method: 'POST', body: JSON.stringify(form) },
      CONNECT_TIMEOUT_MS
    );
    const profile = reply.profile;
    this._profiles = [
      ...this._profiles.filter(p => p.name !== profile.name),
      profile
    ];
    this._forget(profile.name);
    this._changed.emit();
    void this.refresh({ force: false }).catch(() => undefined);
    return profile;
  }

  /** Delete a saved profile. */
  async removeProfile(name: string): Promise<void> {
    await this._request<void>(profilePath(name), { method: 'DELETE' });
    this._profiles = this._profiles.filter(p => p.name !== name);
    this._forget(name);
    this._changed.emit();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _refresh(force: boolean): Promise<void> {
    if (force) {
      this._datasetsCache.clear();
      this._mockCache.clear();
      this._backoff.clear();
    }
    let reply: IProfilesReply;
    try {
      reply = await this._request<IProfilesReply>('profiles');
    } catch (error) {
      this._error = (error as Error).message;
      this._changed.emit();
      throw error;
    }
    this._error = null;
    this._loaded = true;
    this._profiles = reply.profiles;
    const names = new Set(this._profiles.map(p => p.name));
    for (const name of [...this._datasets.keys(), ...this._requests.keys()]) {
      if (!names.has(name)) {
        this._forget(name);
      }
    }
    this._changed.emit();

    await Promise.all(
      this._profiles.map(profile => this._refreshProfile(profile, force))
    );
    this._changed.emit();
  }

  /** One profile's live part: requests (scientist) or pending count (owner). */
  private async _refreshProfile(
    profile: IProfile,
    force: boolean
  ): Promise<void> {
    const name = profile.name;
    const wait = this._backoff.get(name);
    if (wait && Date.now() < wait.until) {
      return;
    }
    try {
      if (profile.kind === 'owner') {
        const reply = await this._request<IPendingReply>(
          `${profilePath(name)}/pending`
        );
        this._pending.set(name, reply.pending);
      } else {
        const reply = await this._request<IRequestsReply>(
          `${profilePath(name)}/requests`
        );
        this._applyRequests(name, reply.requests);
      }
      this._backoff.delete(name);
      this._profileErrors.delete(name);
    } catch (error) {
      this._profileErrors.set(name, this._fail(name, error));
      // A down domain is retried less and less often so that its calls, which only
      // end at the timeout, do not pile up on the server.
      const failures = (wait?.failures ?? 0) + 1;
      const delay = Math.min(MAX_BACKOFF_MS, this._interval * 2 ** failures);
      this._backoff.set(name, { failures, until: Date.now() + delay });
      return;
    }
    // The domain answers again: a dataset list that failed is worth another try.
    const datasets = this._datasets.get(name);
    if (datasets && (force || datasets.status === 'error')) {
      await this.loadDatasets(name, { force: true });
    }
  }

  /** Store a profile's requests and announce the ones decided since the last list. */
  private _applyRequests(profile: string, requests: IRequest[]): void {
    const decided = newlyDecided(this._requests.get(profile), requests);
    this._requests.set(profile, requests);
    for (const request of decided) {
      this._requestDecided.emit({ profile, request });
    }
  }

  private _setDatasets(profile: string, state: IDatasetsState): IDatasetsState {
    this._datasets.set(profile, state);
    this._changed.emit();
    return state;
  }

  /** Record a failed call; mark the profile down when its domain did not answer. */
  private _fail(profile: string, error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof RequestError && error.unreachable) {
      const status = {
        reachable: false,
        version: null,
        latency_ms: null,
        error: message
      };
      this._profiles = this._profiles.map(p =>
        p.name === profile ? { ...p, status } : p
      );
      this._changed.emit();
    }
    return message;
  }

  private _forget(name: string): void {
    this._datasets.delete(name);
    this._requests.delete(name);
    this._pending.delete(name);
    this._profileErrors.delete(name);
    this._backoff.delete(name);
    this._datasetsCache.clear(`${name}\n`);
    this._mockCache.clear(`${name}\n`);
  }

  private _request<T>(
    endPoint: string,
    init: RequestInit = {},
    timeoutMs?: number
  ): Promise<T> {
    return requestAPI<T>(endPoint, init, {
      settings: this._settings,
      timeoutMs
    });
  }

  private _settings: ServerConnection.ISettings;
  private _interval: number;
  private _poll: Poll;
  private _refreshing: Promise<void> | null = null;
  private _profiles: readonly IProfile[] = [];
  private _loaded = false;
  private _error: string | null = null;
  private _datasets = new Map<string, IDatasetsState>();
  private _requests = new Map<string, readonly IRequest[]>();
  private _pending = new Map<string, number>();
  private _profileErrors = new Map<string, string>();
  private _backoff = new Map<string, { failures: number; until: number }>();
  private _datasetsCache: PromiseCache<IDataset[]>;
  private _mockCache: PromiseCache<IMock>;
  private _changed = new Signal<this, void>(this);
  private _requestDecided = new Signal<this, IRequestDecision>(this);
  private _isDisposed = false;
}

export namespace RemoteDataModel {
  export interface IOptions {
    /** Defaults to `ServerConnection.makeSettings()`. */
    serverSettings?: ServerConnection.ISettings;
    /** Polling interval in ms (default 5 000). */
    interval?: number;
    /** How long datasets and mocks are reused, in ms (default 30 000). */
    cacheMs?: number;
  }
}

/** Polls back off up to this after failures. */
const MAX_BACKOFF_MS = 60_000;
/** Adding a profile signs in to the domain, which the server allows 30 s. */
const CONNECT_TIMEOUT_MS = 35_000;

function profilePath(name: string): string {
  return `profiles/${encodeURIComponent(name)}`;
}
