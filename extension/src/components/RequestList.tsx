import * as React from 'react';

import { IRequest } from '../tokens';
import { IPanelActions } from './actions';

/** A scientist's requests on one domain, newest first. */
export function RequestList(props: {
  profile: string;
  requests: readonly IRequest[] | undefined;
  actions: IPanelActions;
}): JSX.Element {
  const { profile, requests, actions } = props;
  let body: JSX.Element;
  if (requests === undefined) {
    body = <p className="rds-loading">Loading…</p>;
  } else if (requests.length === 0) {
    body = <p className="rds-empty">No requests yet.</p>;
  } else {
    body = (
      <ul className="rds-request-list">
        {newestFirst(requests).map(request => (
          <RequestItem
            key={request.id}
            profile={profile}
            request={request}
            actions={actions}
          />
        ))}
      </ul>
    );
  }
  return (
    <section className="rds-requests" aria-label={`My requests on ${profile}`}>
      <h4 className="rds-subheading">My requests</h4>
      {body}
    </section>
  );
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
