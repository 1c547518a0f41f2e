import { closeIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { statusText } from '../format';
import { RemoteDataModel } from '../model';
import { IProfile } from '../tokens';
import { IPanelActions } from './actions';
import { DatasetTree } from './DatasetTree';
import { RequestList } from './RequestList';

/** One saved profile: its domain's status, then what its kind can do. */
export function ProfileSection(props: {
  profile: IProfile;
  model: RemoteDataModel;
  actions: IPanelActions;
}): JSX.Element {
  const { profile, model, actions } = props;
  const error = model.profileError(profile.name);
  return (
    <section
      className="rds-profile"
      data-profile={profile.name}
      data-kind={profile.kind}
      aria-label={`Profile ${profile.name}`}
    >
      <header className="rds-profile-header">
        <h3 className="rds-profile-name">{profile.name}</h3>
        <span className="rds-badge rds-kind">{profile.kind}</span>
        <button
          className="rds-icon-button"
          aria-label={`Remove profile ${profile.name}`}
          title="Remove this profile"
          onClick={() => actions.removeProfile(profile.name)}
        >
          <closeIcon.react tag="span" />
        </button>
      </header>
      {profile.url && <div className="rds-profile-url">{profile.url}</div>}
      <div
        className="rds-status"
        data-reachable={String(profile.status.reachable)}
      >
        <span className="rds-status-dot" aria-hidden="true" />
        <span className="rds-status-text">{statusText(profile.status)}</span>
      </div>
      {error && profile.status.reachable && (
        <p className="rds-error">{error}</p>
      )}
      {profile.kind === 'owner' ? (
        <OwnerBody profile={profile} model={model} actions={actions} />
      ) : (
        <ScientistBody profile={profile} model={model} actions={actions} />
      )}
    </section>
  );
}

function ScientistBody(props: {
  profile: IProfile;
  model: RemoteDataModel;
  actions: IPanelActions;
}): JSX.Element {
  const { profile, model, actions } = props;
  const name = profile.name;
  React.useEffect(() => {
    void model.loadDatasets(name);
  }, [model, name]);
  const state = model.datasets(name);
  return (
    <>
      <section
        className="rds-dataset-section"
        aria-label={`Datasets on ${name}`}
      >
        <h4 className="rds-subheading">Datasets</h4>
        {state?.status === 'error' && (
          <p className="rds-error" role="alert">
            {profile.status.reachable
              ? state.error
              : 'Datasets are unavailable while the domain is down.'}
          </p>
        )}
        {(!state ||
          (state.status === 'loading' && state.datasets.length === 0)) && (
          <p className="rds-loading">Loading…</p>
        )}
        {state && (state.status === 'ready' || state.datasets.length > 0) && (
          <DatasetTree
            profile={name}
            datasets={state.datasets}
            model={model}
            actions={actions}
          />
        )}
      </section>
      <RequestList
        profile={name}
        requests={model.requests(name)}
        actions={actions}
      />
    </>
  );
}

function OwnerBody(props: {
  profile: IProfile;
  model: RemoteDataModel;
  actions: IPanelActions;
}): JSX.Element {
  const { profile, model, actions } = props;
  const pending = model.pending(profile.name);
  const path = profile.path;
  return (
    <div className="rds-owner">
      {path && <div className="rds-profile-path">{path}</div>}
      <div className="rds-owner-line">
        <span
          className="rds-badge rds-pending"
          data-pending={pending ?? ''}
          data-has-pending={String(!!pending)}
        >
          {pending === null ? '… pending' : `${pending} pending`}
        </span>
        <button
          className="jp-mod-styled jp-mod-accept"
          disabled={!path}
          onClick={() => path && actions.openReviewDesk(path)}
        >
          Open review desk
        </button>
      </div>
    </div>
  );
}
