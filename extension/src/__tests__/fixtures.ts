import { IDataset, IProfile, IRequest, RequestStatus } from '../tokens';

export function profile(overrides: Partial<IProfile> = {}): IProfile {
  return {
    name: 'hospital',
    kind: 'scientist',
    url: 'http://127.0.0.1:8081',
    email: 'ada@uni.example.org',
    path: null,
    status: {
      reachable: true,
      version: '0.9.5',
      latency_ms: 12.4,
      error: null
    },
    ...overrides
  };
}

export function dataset(
  name: string,
  overrides: Partial<IDataset> = {}
): IDataset {
  return {
    name,
    description: 'Admissions 2020-2024',
    rows: 569,
    schema: [
      {
        name: 'age',
        dtype: 'int64',
        nullable: false,
        bounds: [0, 120],
        categories: null
      }
    ],
    policy: { release: 'Results are released after the owner reviews them.' },
    contact: null,
    epsilon: { budget: 3, spent: 0.5, pending: 0, remaining: 2.5 },
    ...overrides
  };
}

export function request(
  id: string,
  status: RequestStatus,
  overrides: Partial<IRequest> = {}
): IRequest {
  return {
    id,
    what: 'mean_age()',
    dataset: 'patients',
    kind: 'python',
    status,
    verdict: null,
    submitted_at: '2026-01-01T10:00:00+00:00',
    reason: 'Average age by ward',
    denial_reason: null,
    ...overrides
  };
}
