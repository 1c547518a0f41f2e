import * as React from 'react';
import { act } from 'react';

import { IPanelActions } from '../components/actions';
import { olderLabel, RequestList } from '../components/RequestList';
import { IRequest } from '../tokens';
import { request } from './fixtures';

// react-dom comes with JupyterLab but its types do not (no @types/react-dom): the two
// calls this test makes.
interface Root {
  render(element: JSX.Element): void;
  unmount(): void;
}
declare function require(name: 'react-dom/client'): {
  createRoot(host: HTMLElement): Root;
};
const { createRoot } = require('react-dom/client');

// React's act() warns unless the environment says it is a test.
(
  globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }
).IS_REACT_ACT_ENVIRONMENT = true;

const actions: IPanelActions = {
  insertSnippet: jest.fn(),
  insertResult: jest.fn(),
  openReviewDesk: jest.fn(),
  removeProfile: jest.fn()
};

/** `n` requests, one a minute, `r0` the oldest. */
function requests(n: number): IRequest[] {
  return Array.from({ length: n }, (_, i) =>
    request(`r${i}`, 'awaiting review', {
      submitted_at: new Date(Date.UTC(2026, 0, 1, 10, i)).toISOString()
    })
  );
}

describe('RequestList', () => {
  let host: HTMLElement;
  let root: Root;

  beforeEach(() => {
    host = document.createElement('div');
    document.body.appendChild(host);
    root = createRoot(host);
  });

  afterEach(() => {
    act(() => root.unmount());
    host.remove();
  });

  const render = (list: IRequest[]) =>
    act(() =>
      root.render(
        <RequestList profile="hospital" requests={list} actions={actions} />
      )
    );
  const shown = () =>
    Array.from(host.querySelectorAll('.rds-request')).map(
      li => (li as HTMLElement).dataset.request
    );
  const button = (label: string) =>
    Array.from(host.querySelectorAll('button')).find(
      b => b.textContent === label
    );

  it('shows the newest 20, then pages through older ones', () => {
    render(requests(45));
    expect(shown()).toHaveLength(20);
    expect(shown()[0]).toBe('r44');
    expect(shown()[19]).toBe('r25');
    expect(host.querySelector('.rds-subheading')!.textContent).toBe(
      'My requests (45)'
    );
    expect(button('Show fewer')).toBeUndefined();

    act(() => button('Show 20 older (of 25)')!.click());
    expect(shown()).toHaveLength(40);
    act(() => button('Show 5 older')!.click());
    expect(shown()).toHaveLength(45);
    expect(shown()[44]).toBe('r0');
    expect(button('Show 5 older')).toBeUndefined();

    act(() => button('Show fewer')!.click());
    expect(shown()).toHaveLength(20);
  });

  it('offers nothing more for one page or less', () => {
    render(requests(20));
    expect(shown()).toHaveLength(20);
    expect(host.querySelectorAll('button')).toHaveLength(0);
  });

  it('keeps the newest on top as new requests arrive', () => {
    render(requests(20));
    render(requests(21));
    expect(shown()).toHaveLength(20);
    expect(shown()[0]).toBe('r20');
    expect(button('Show 1 older')).toBeDefined();
  });
});

describe('olderLabel', () => {
  it('says how many a click adds, and how many are left', () => {
    expect(olderLabel(3)).toBe('Show 3 older');
    expect(olderLabel(20)).toBe('Show 20 older');
    expect(olderLabel(85)).toBe('Show 20 older (of 85)');
  });
});
