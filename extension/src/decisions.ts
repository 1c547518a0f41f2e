import { IRequest, RequestStatus } from './tokens';

/** The statuses a request never leaves. */
export const FINAL_STATUSES: ReadonlySet<RequestStatus> =
  new Set<RequestStatus>(['released', 'denied']);

/**
 * The requests in `next` that became released or denied since `previous`.
 *
 * With no previous list (a profile's first load) nothing is new: requests decided
 * before the panel looked are not news. A request missing from `previous` and
 * already decided in `next` was submitted and decided between two polls, so it is.
 *
 * @example
 * newlyDecided([{ id: 'a', status: 'running', … }], [{ id: 'a', status: 'released', … }])
 * // => [the released request]
 */
export function newlyDecided(
  previous: readonly IRequest[] | undefined,
  next: readonly IRequest[]
): IRequest[] {
  if (!previous) {
    return [];
  }
  const before = new Map(previous.map(r => [r.id, r.status]));
  return next.filter(request => {
    const old = before.get(request.id);
    return (
      FINAL_STATUSES.has(request.status) && !(old && FINAL_STATUSES.has(old))
    );
  });
}
