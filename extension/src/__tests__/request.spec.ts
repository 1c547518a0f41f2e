import { RequestError, requestAPI } from '../request';
import { fakeServer } from './fakeServer';

/** The error a call rejects with. */
function failure(call: Promise<unknown>): Promise<RequestError> {
  return call.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: RequestError) => error
  );
}

describe('requestAPI', () => {
  it('calls <baseUrl>rds/<endPoint> and returns the JSON body', async () => {
    const server = fakeServer({ 'GET profiles': { body: { profiles: [] } } });
    const reply = await requestAPI<{ profiles: unknown[] }>(
      'profiles',
      {},
      {
        settings: server.settings
      }
    );
    expect(reply).toEqual({ profiles: [] });
    expect(server.calls[0].path).toBe('profiles');
  });

  it("throws the server's `error` message on a 4xx/5xx reply", async () => {
    const server = fakeServer({
      'POST profiles': {
        status: 400,
        body: {
          error: 'The domain refused the password for ada@uni.example.org.'
        }
      }
    });
    const call = requestAPI(
      'profiles',
      { method: 'POST', body: '{}' },
      {
        settings: server.settings
      }
    );
    await expect(call).rejects.toThrow(
      'The domain refused the password for ada@uni.example.org.'
    );
    await expect(call).rejects.toMatchObject({ status: 400 });
  });

  it('marks 502 and 504 replies as unreachable', async () => {
    const server = fakeServer({
      'GET profiles/a/datasets': { status: 502, body: { error: 'down' } },
      'GET profiles/b/datasets': {
        status: 404,
        body: { error: 'no such profile' }
      }
    });
    const options = { settings: server.settings };
    const down = await failure(requestAPI('profiles/a/datasets', {}, options));
    const missing = await failure(
      requestAPI('profiles/b/datasets', {}, options)
    );
    expect(down).toBeInstanceOf(RequestError);
    expect(down.unreachable).toBe(true);
    expect(missing.unreachable).toBe(false);
    expect(missing.message).toBe('no such profile');
  });

  it('accepts an empty 204 reply', async () => {
    const server = fakeServer({ 'DELETE profiles/a': { status: 204 } });
    await expect(
      requestAPI(
        'profiles/a',
        { method: 'DELETE' },
        { settings: server.settings }
      )
    ).resolves.toBeUndefined();
  });

  it('gives up after the timeout instead of hanging', async () => {
    const hang = (input: Request) =>
      new Promise<Response>((_, reject) =>
        input.signal.addEventListener('abort', () =>
          reject(new Error('aborted'))
        )
      );
    const settings = { ...fakeServer({}).settings, fetch: hang as any };
    const error = await failure(
      requestAPI('profiles/slow/datasets', {}, { settings, timeoutMs: 20 })
    );
    expect(error).toBeInstanceOf(RequestError);
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/No answer within/);
  });

  it('rejects a 2xx reply that is not JSON', async () => {
    const fetch = async () =>
      new Response('<html>login</html>', { status: 200 });
    const settings = { ...fakeServer({}).settings, fetch: fetch as any };
    await expect(requestAPI('profiles', {}, { settings })).rejects.toThrow(
      /not JSON/
    );
  });
});
