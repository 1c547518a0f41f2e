import * as React from 'react';

import { IRequest } from '../tokens';
import { IPanelActions } from './actions';

/** How many requests the list shows at first, and how many more each click adds. */
export const REQUEST_PAGE = 20;

/**
 * A scientist's requests on one domain, newest first: the latest {@link REQUEST_PAGE},
 * then "Show N older" for the next page, so hundreds of requests stay a usable list.
 */
export function RequestList(props: {
  profile: string;
  requests: readonly IRequest[] | undefined;
  actions: IPanelActions;
}): JSX.Element {
  const { profile, requests, actions } = props;
  const [shown, setShown] = React.useState(REQUEST_PAGE);
  let body: JSX.Element;
  if (requests === undefined) {
    body = <p className="rds-loading">Loading…</p>;
  } else if (requests.length === 0) {
    body = <p className="rds-empty">No requests yet.</p>;
  } else {
    const sorted = newestFirst(requests);
    const older = sorted.length - shown;
    body = (
      <>
        <ul className="rds-request-list">
          {sorted.slice(0, shown).map(request => (
            <RequestItem
              key={request.id}
              profile={profile}
              request={request}
              actions={actions}
            />
          ))}
        </ul>
        {(older > 0 || shown > REQUEST_PAGE) && (
          <div className="rds-request-more">
            {older > 0 && (
              <button
                className="rds-link-button"
                onClick={() => setShown(shown + REQUEST_PAGE)}
              >
                {olderLabel(older)}
              </button>
            )}
            {shown > REQUEST_PAGE && (
              <button
                className="rds-link-button"
                onClick={() => setShown(REQUEST_PAGE)}
              >
                Show fewer
              </button>
            )}
          </div>
        )}
      </>
    );
  }
  return (
    <section className="rds-requests" aria-label={`My requests on ${profile}`}>
      <h4 className="rds-subheading">
        My requests
        {requests !== undefined && requests.length > 0 && (
          <span className="rds-request-count"> ({requests.length})</span>
        )}
      </h4>
      {body}
    </section>
  );
}

/** `"Show 3 older"`, or `"Show 20 older (of 85)"` when more are left than one page. */
export function olderLabel(older: number): string {
  return older > REQUEST_PAGE
    ? `Show ${REQUEST_PAGE} older (of ${older})`
    : `Show ${older} older`;
}

function RequestItem(props: {
  profile: string;
  request: IRequest;
  actions: IPanelActions;
}): JSX.Element {
  const { profile, request, actions } = props;
  const submitted = new Date(request.submitted_at);
  return (
    <li
      className="rds-request"
      data-request={request.id}
      data-status={request.status}
      title={request.reason ? `Reason: ${request.reason}` : undefined}
    >
      <div className="rds-request-line">
        <span className="rds-request-what">{request.what}</span>
        <span className="rds-request-dataset">{request.dataset}</span>
      </div>
      <div className="rds-request-line">
        <span
          className="rds-badge rds-request-status"
          data-status={request.status}
        >
          {request.status}
        </span>
        {request.verdict && (
          <span
            className="rds-badge rds-verdict"
            data-verdict={request.verdict}
          >
            {request.verdict}
          </span>
        )}
        {!isNaN(submitted.getTime()) && (
          <time className="rds-request-time" dateTime={request.submitted_at}>
            {submitted.toLocaleString()}
          </time>
        )}
        {request.status === 'released' && (
          <button
            className="rds-link-button"
            onClick={() => actions.insertResult(profile, request.id)}
          >
            Insert result code
          </button>
        )}
      </div>
      {request.status === 'denied' && request.denial_reason && (
        <p className="rds-denial">{request.denial_reason}</p>
      )}
    </li>
  );
}

function newestFirst(requests: readonly IRequest[]): IRequest[] {
  const time = (r: IRequest) => Date.parse(r.submitted_at) || 0;
  return [...requests].sort((a, b) => time(b) - time(a));
}
