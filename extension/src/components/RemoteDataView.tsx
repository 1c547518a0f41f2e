import { refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { RemoteDataModel } from '../model';
import { IPanelActions } from './actions';
import { ConnectForm } from './ConnectForm';
import { ProfileSection } from './ProfileSection';
import { useModel } from './useModel';

/** The whole sidebar: header, the Connect form when open, one section per profile. */
export function RemoteDataView(props: {
  model: RemoteDataModel;
  actions: IPanelActions;
}): JSX.Element {
  const { model, actions } = props;
  useModel(model);
  const [connecting, setConnecting] = React.useState(false);
  const [refreshing, setRefreshing] = React.useState(false);

  const refresh = async () => {
    setRefreshing(true);
    try {
      await model.refresh();
    } catch {
      // Shown from model.error.
    } finally {
      setRefreshing(false);
    }
  };

  return (
    <div className="rds-view">
      <header className="rds-header">
        <h2 className="rds-title">Remote Data</h2>
        <button
          className="rds-icon-button"
          aria-label="Refresh"
          title="Refresh"
          disabled={refreshing}
          onClick={() => void refresh()}
        >
          <refreshIcon.react tag="span" />
        </button>
        <button
          className="jp-mod-styled rds-connect-button"
          aria-expanded={connecting}
          onClick={() => setConnecting(!connecting)}
        >
          Connect
        </button>
      </header>
      {connecting && (
        <ConnectForm model={model} onDone={() => setConnecting(false)} />
      )}
      {model.error !== null && (
        <p className="rds-error" role="alert">
          {model.error}
        </p>
      )}
      {model.loaded && model.profiles.length === 0 && (
        <p className="rds-empty">
          No profiles yet. Use Connect to sign in to a domain and browse its
          datasets.
        </p>
      )}
      {!model.loaded && model.error === null && (
        <p className="rds-loading">Loading…</p>
      )}
      <div className="rds-profiles">
        {model.profiles.map(profile => (
          <ProfileSection
            key={profile.name}
            profile={profile}
            model={model}
            actions={actions}
          />
        ))}
      </div>
    </div>
  );
}
