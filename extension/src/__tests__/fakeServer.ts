/**
 * A stand-in for the `rds` server extension at the one seam the frontend has:
 * the `fetch` inside `ServerConnection.ISettings`. Everything above it is real.
 */
import { ServerConnection } from '@jupyterlab/services';

export interface IFakeReply {
  status?: number;
  body?: unknown;
}

export interface IFakeCall {
  method: string;
  /** The path under `rds/`, still URI-encoded, without the query. */
  path: string;
  query: URLSearchParams;
  body: any;
}

/** A reply, or a function of the call; keyed by `"<METHOD> <path>"`. */
export type Routes = Record<
  string,
  IFakeReply | ((call: IFakeCall) => IFakeReply | Promise<IFakeReply>)
>;

export const BASE_URL = 'http://localhost:8888/lab-base/';

export function fakeServer(routes: Routes): {
  settings: ServerConnection.ISettings;
  calls: IFakeCall[];
  count: (key: string) => number;
} {
  const calls: IFakeCall[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const prefix = new URL(BASE_URL).pathname + 'rds/';
    const text = await request.text();
    const call: IFakeCall = {
      method: request.method,
      path: url.pathname.slice(prefix.length),
      query: url.searchParams,
      body: text ? JSON.parse(text) : undefined
    };
    calls.push(call);
    const route = routes[`${call.method} ${call.path}`];
    if (route === undefined) {
      return json(404, { error: `no route for ${call.method} ${call.path}` });
    }
    const reply = typeof route === 'function' ? await route(call) : route;
    return json(reply.status ?? 200, reply.body);
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: BASE_URL,
    fetch: fetch as typeof window.fetch
  });
  return {
    settings,
    calls,
    count: key => calls.filter(c => `${c.method} ${c.path}` === key).length
  };
}

function json(status: number, body: unknown): Response {
  if (status === 204 || body === undefined) {
    return new Response(null, { status });
  }
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });
}
