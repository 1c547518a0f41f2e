import { IRequestDecision, RemoteDataModel } from '../model';
import { IRequest } from '../tokens';
import { fakeServer, Routes } from './fakeServer';
import { dataset, profile, request } from './fixtures';

function makeModel(routes: Routes, options: RemoteDataModel.IOptions = {}) {
  const server = fakeServer(routes);
  const model = new RemoteDataModel({
    serverSettings: server.settings,
    ...options
  });
  return { server, model };
}

describe('RemoteDataModel', () => {
  let model: RemoteDataModel;
  afterEach(() => model?.dispose());

  describe('profiles', () => {
    it('loads profiles, requests for scientists and pending counts for owners', async () => {
      const owner = profile({
        name: 'my domain',
        kind: 'owner',
        url: null,
        path: '/d'
      });
      const made = makeModel({
        'GET profiles': { body: { profiles: [profile(), owner] } },
        'GET profiles/hospital/requests': {
          body: { requests: [request('r1', 'running')] }
        },
        'GET profiles/my%20domain/pending': { body: { pending: 3 } }
      });
      model = made.model;
      const changed = jest.fn();
      model.changed.connect(changed);

      await model.refresh();

      expect(model.loaded).toBe(true);
      expect(model.profiles.map(p => p.name)).toEqual([
        'hospital',
        'my domain'
      ]);
      expect(model.requests('hospital')?.map(r => r.id)).toEqual(['r1']);
      expect(model.pending('my domain')).toBe(3);
      expect(model.requests('my domain')).toBeUndefined();
      expect(changed).toHaveBeenCalled();
    });

    it("keeps the server's error when the profile list fails, and rejects", async () => {
      const made = makeModel({
        'GET profiles': {
          status: 500,
          body: { error: 'profiles.json is unreadable' }
        }
      });
      model = made.model;
      await expect(model.refresh()).rejects.toThrow(
        'profiles.json is unreadable'
      );
      expect(model.error).toBe('profiles.json is unreadable');
      expect(model.loaded).toBe(false);
    });

    it('adds a profile with POST and shows the server error when it fails', async () => {
      const made = makeModel({
        'GET profiles': { body: { profiles: [] } },
        'POST profiles': call =>
          call.body.password === 'right'
            ? {
                status: 201,
                body: { profile: profile({ name: call.body.name }) }
              }
            : { status: 400, body: { error: 'Wrong email or password.' } }
      });
      model = made.model;
      const form = {
        name: 'lab',
        url: 'http://x',
        email: 'a@b.c',
        password: 'wrong'
      };

      await expect(model.connect(form)).rejects.toThrow(
        'Wrong email or password.'
      );
      expect(model.profiles).toEqual([]);

      const added = await model.connect({ ...form, password: 'right' });
      expect(added.name).toBe('lab');
      expect(model.profiles.map(p => p.name)).toEqual(['lab']);
      expect(
        made.server.calls.filter(c => c.method === 'POST').pop()?.body
      ).toEqual({
        ...form,
        password: 'right'
      });
    });

    it('removes a profile with DELETE', async () => {
      const made = makeModel({
        'GET profiles': { body: { profiles: [profile()] } },
        'GET profiles/hospital/requests': { body: { requests: [] } },
        'DELETE profiles/hospital': { status: 204 }
      });
      model = made.model;
      await model.refresh();
      await model.removeProfile('hospital');
      expect(model.profiles).toEqual([]);
      expect(model.requests('hospital')).toBeUndefined();
    });
  });

  describe('datasets', () => {
    it('loads datasets once within the cache time and again on refresh', async () => {
      const made = makeModel({
        'GET profiles': { body: { profiles: [profile()] } },
        'GET profiles/hospital/requests': { body: { requests: [] } },
        'GET profiles/hospital/datasets': {
          body: { datasets: [dataset('patients'), dataset('visits')] }
        }
      });
      model = made.model;
      const key = 'GET profiles/hospital/datasets';

      const [first, second] = await Promise.all([
        model.loadDatasets('hospital'),
        model.loadDatasets('hospital')
      ]);
      const third = await model.loadDatasets('hospital');

      expect(first.status).toBe('ready');
      expect(third.datasets.map(d => d.name)).toEqual(['patients', 'visits']);
      expect(second.datasets).toBe(first.datasets);
      expect(made.server.count(key)).toBe(1);

      await model.refresh();
      expect(made.server.count(key)).toBe(2);
      expect(model.datasets('hospital')?.status).toBe('ready');
    });

    it('loads again once the cache time has passed', async () => {
      const made = makeModel(
        { 'GET profiles/hospital/datasets': { body: { datasets: [] } } },
        { cacheMs: 0 }
      );
      model = made.model;
      await model.loadDatasets('hospital');
      await model.loadDatasets('hospital');
      expect(made.server.count('GET profiles/hospital/datasets')).toBe(2);
    });

    it('marks a domain that is down as down, without throwing', async () => {
      const made = makeModel({
        'GET profiles': { body: { profiles: [profile()] } },
        'GET profiles/hospital/requests': { body: { requests: [] } },
        'GET profiles/hospital/datasets': {
          status: 502,
          body: {
            error: 'http://127.0.0.1:8081 does not answer: connection refused'
          }
        }
      });
      model = made.model;
      await model.refresh();

      const state = await model.loadDatasets('hospital');

      expect(state.status).toBe('error');
      expect(state.error).toBe(
        'http://127.0.0.1:8081 does not answer: connection refused'
      );
      expect(model.profiles[0].status).toEqual({
        reachable: false,
        version: null,
        latency_ms: null,
        error: 'http://127.0.0.1:8081 does not answer: connection refused'
      });
    });

    it('does not cache a failure', async () => {
      let up = false;
      const made = makeModel({
        'GET profiles/hospital/datasets': () =>
          up
            ? { body: { datasets: [dataset('patients')] } }
            : { status: 502, body: { error: 'down' } }
      });
      model = made.model;
      expect((await model.loadDatasets('hospital')).status).toBe('error');
      up = true;
      expect((await model.loadDatasets('hospital')).status).toBe('ready');
    });

    it('retries a failed dataset list on the next poll', async () => {
      let up = false;
      const made = makeModel({
        'GET profiles': { body: { profiles: [profile()] } },
        'GET profiles/hospital/requests': { body: { requests: [] } },
        'GET profiles/hospital/datasets': () =>
          up
            ? { body: { datasets: [dataset('patients')] } }
            : { status: 502, body: { error: 'down' } }
      });
      model = made.model;
      await model.loadDatasets('hospital');
      up = true;

      await model.refresh({ force: false });

      expect(model.datasets('hospital')?.status).toBe('ready');
    });

    it('fetches mock rows with the rows parameter and caches them', async () => {
      const mock = { columns: ['age'], rows: [[41], [null]], total_rows: 569 };
      const made = makeModel({
        'GET profiles/hospital/datasets/my%20data%2Fv2/mock': call => ({
          body: {
            ...mock,
            rows: mock.rows.slice(0, Number(call.query.get('rows')))
          }
        })
      });
      model = made.model;
      expect(await model.mock('hospital', 'my data/v2', 1)).toEqual({
        ...mock,
        rows: [[41]]
      });
      await model.mock('hospital', 'my data/v2', 1);
      expect(made.server.calls).toHaveLength(1);
    });

    it("rejects a failed mock with the server's message", async () => {
      const made = makeModel({
        'GET profiles/hospital/datasets/patients/mock': {
          status: 404,
          body: { error: 'No dataset named patients on hospital.' }
        }
      });
      model = made.model;
      await expect(model.mock('hospital', 'patients')).rejects.toThrow(
        'No dataset named patients on hospital.'
      );
    });
  });

  describe('requestDecided', () => {
    function sequence(lists: IRequest[][]) {
      let tick = 0;
      const made = makeModel({
        'GET profiles': { body: { profiles: [profile()] } },
        'GET profiles/hospital/requests': () => ({
          body: { requests: lists[Math.min(tick++, lists.length - 1)] }
        })
      });
      model = made.model;
      const decided: IRequestDecision[] = [];
      model.requestDecided.connect((_, decision) => decided.push(decision));
      return decided;
    }

    it('does not announce requests already decided on first load', async () => {
      const decided = sequence([
        [request('old1', 'released'), request('old2', 'denied')],
        [request('old1', 'released'), request('old2', 'denied')]
      ]);
      await model.refresh();
      await model.refresh();
      expect(decided).toEqual([]);
    });

    it('announces each move to released or denied once', async () => {
      const decided = sequence([
        [
          request('a', 'submitted'),
          request('b', 'running'),
          request('c', 'running')
        ],
        [
          request('a', 'awaiting review'),
          request('b', 'released'),
          request('c', 'denied', { denial_reason: 'Row-level data' })
        ],
        [
          request('a', 'released'),
          request('b', 'released'),
          request('c', 'denied')
        ]
      ]);
      await model.refresh();
      expect(decided).toEqual([]);

      await model.refresh();
      expect(
        decided.map(d => [d.profile, d.request.id, d.request.status])
      ).toEqual([
        ['hospital', 'b', 'released'],
        ['hospital', 'c', 'denied']
      ]);
      expect(decided[1].request.denial_reason).toBe('Row-level data');

      await model.refresh();
      expect(decided.map(d => d.request.id)).toEqual(['b', 'c', 'a']);
    });

    it('does not announce moves between non-final statuses', async () => {
      const decided = sequence([
        [request('a', 'submitted')],
        [request('a', 'running')],
        [request('a', 'awaiting review')]
      ]);
      await model.refresh();
      await model.refresh();
      await model.refresh();
      expect(decided).toEqual([]);
    });

    it('announces a request that appears already decided after the first load', async () => {
      const decided = sequence([[], [request('new', 'released')]]);
      await model.refresh();
      await model.refresh();
      expect(decided.map(d => d.request.id)).toEqual(['new']);
    });

    it('asks a down domain less often, and again on Refresh', async () => {
      const made = makeModel({
        'GET profiles': { body: { profiles: [profile()] } },
        'GET profiles/hospital/requests': {
          status: 502,
          body: { error: 'down' }
        }
      });
      model = made.model;
      const key = 'GET profiles/hospital/requests';
      await model.refresh({ force: false });
      await model.refresh({ force: false });
      expect(made.server.count(key)).toBe(1);
      expect(made.server.count('GET profiles')).toBe(2);

      await model.refresh();
      expect(made.server.count(key)).toBe(2);
    });

    it('keeps the last list and announces nothing while the domain is down', async () => {
      let down = false;
      const made = makeModel({
        'GET profiles': { body: { profiles: [profile()] } },
        'GET profiles/hospital/requests': () =>
          down
            ? { status: 502, body: { error: 'connection refused' } }
            : { body: { requests: [request('a', 'running')] } }
      });
      model = made.model;
      const decided = jest.fn();
      model.requestDecided.connect(decided);
      await model.refresh();
      down = true;

      await expect(model.refresh()).resolves.toBeUndefined();

      expect(model.requests('hospital')?.map(r => r.status)).toEqual([
        'running'
      ]);
      expect(model.profileError('hospital')).toBe('connection refused');
      expect(model.profiles[0].status.reachable).toBe(false);
      expect(decided).not.toHaveBeenCalled();
    });
  });
});
