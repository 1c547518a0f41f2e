import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The server extension's API namespace: routes live under `<baseUrl>rds/`. */
export const API_NAMESPACE = 'rds';

/**
 * How long the panel waits for one reply. A domain that is down must show as down
 * rather than leave a spinner forever; the server gives up on a domain after 30 s.
 */
export const REQUEST_TIMEOUT_MS = 10_000;

/**
 * A failed call: `message` is the server's `error` text, `status` the HTTP status
 * (0 when no reply came: network failure or timeout).
 */
export class RequestError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'RequestError';
  }

  /** Whether the failure means the domain (or the Jupyter server) did not answer. */
  get unreachable(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 504;
  }
}

/** Options for {@link requestAPI}. */
export interface IRequestOptions {
  /** Defaults to `ServerConnection.makeSettings()`. */
  settings?: ServerConnection.ISettings;
  /** Defaults to {@link REQUEST_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Call the `rds` server extension and return its JSON reply.
 *
 * @param endPoint path under `rds/`, with names already URI-encoded
 * @param init fetch options (method, body)
 * @throws {RequestError} on a non-2xx reply (message = the JSON `error`), a network
 *   failure or a timeout
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  options: IRequestOptions = {}
): Promise<T> {
  const settings = options.settings ?? ServerConnection.makeSettings();
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);

  let response: Response;
  let text: string;
  try {
    response = await ServerConnection.makeRequest(
      url,
      { ...init, signal: controller.signal },
      settings
    );
    text = await response.text();
  } catch (error) {
    const message = controller.signal.aborted
      ? `No answer within ${Math.round(timeoutMs / 1000)} s.`
      : `Could not reach the Jupyter server: ${(error as Error).message}`;
    throw new RequestError(message, 0);
  } finally {
    clearTimeout(timer);
  }

  let data: any = undefined;
  let parsed = text.length === 0;
  if (!parsed) {
    try {
      data = JSON.parse(text);
      parsed = true;
    } catch {
      data = undefined;
    }
  }
  if (!response.ok) {
    const message =
      data && typeof data.error === 'string'
        ? data.error
        : `${response.status} ${response.statusText}`.trim();
    throw new RequestError(message, response.status);
  }
  if (!parsed) {
    throw new RequestError(
      `The server's reply to ${endPoint} is not JSON.`,
      response.status
    );
  }
  return data as T;
}
