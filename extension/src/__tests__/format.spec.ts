import { columnDomain, formatCell, statusText } from '../format';

describe('statusText', () => {
  it('describes a reachable domain', () => {
    expect(
      statusText({
        reachable: true,
        version: '0.9.5',
        latency_ms: 12.4,
        error: null
      })
    ).toBe('reachable · syft 0.9.5 · 12 ms');
  });

  it('leaves out what is unknown', () => {
    expect(
      statusText({
        reachable: true,
        version: null,
        latency_ms: null,
        error: null
      })
    ).toBe('reachable');
  });

  it('describes a domain that is down', () => {
    expect(
      statusText({
        reachable: false,
        version: null,
        latency_ms: null,
        error: 'connection refused'
      })
    ).toBe('down: connection refused');
  });
});

describe('columnDomain', () => {
  it('shows bounds, then categories', () => {
    const base = { name: 'c', dtype: 'int64', nullable: false };
    expect(columnDomain({ ...base, bounds: [0, 120], categories: null })).toBe(
      '0 – 120'
    );
    expect(
      columnDomain({ ...base, bounds: null, categories: ['a', 'b', 'c'] }, 2)
    ).toBe('a, b, … (+1)');
    expect(columnDomain({ ...base, bounds: null, categories: null })).toBe('');
  });
});

describe('formatCell', () => {
  it('renders mock values as text', () => {
    expect(formatCell(null)).toBe('');
    expect(formatCell(1.5)).toBe('1.5');
    expect(formatCell({ a: 1 })).toBe('{"a":1}');
    expect(formatCell('<b>x</b>')).toBe('<b>x</b>');
  });
});
