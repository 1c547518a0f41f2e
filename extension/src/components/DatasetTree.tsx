import * as React from 'react';

import { columnDomain, formatCount, formatEpsilon } from '../format';
import { RemoteDataModel } from '../model';
import { IDataset, IMock } from '../tokens';
import { IPanelActions } from './actions';
import { MockTable } from './MockTable';

interface IListProps {
  profile: string;
  datasets: readonly IDataset[];
  model: RemoteDataModel;
  actions: IPanelActions;
}

/**
 * A profile's datasets. Rows are collapsed and memoized: a domain may publish
 * thousands, and only an expanded row renders its schema.
 */
export const DatasetTree = React.memo(function DatasetTree(
  props: IListProps
): JSX.Element {
  const { profile, datasets, model, actions } = props;
  if (datasets.length === 0) {
    return <p className="rds-empty">No datasets published.</p>;
  }
  return (
    <ul className="rds-datasets">
      {datasets.map(dataset => (
        <DatasetRow
          key={dataset.name}
          profile={profile}
          dataset={dataset}
          model={model}
          actions={actions}
        />
      ))}
    </ul>
  );
});

interface IRowProps {
  profile: string;
  dataset: IDataset;
  model: RemoteDataModel;
  actions: IPanelActions;
}

const DatasetRow = React.memo(function DatasetRow(
  props: IRowProps
): JSX.Element {
  const { dataset } = props;
  const [expanded, setExpanded] = React.useState(false);
  const epsilon = dataset.epsilon;
  return (
    <li className="rds-dataset" data-dataset={dataset.name}>
      <div className="rds-dataset-header">
        <button
          className="rds-dataset-toggle"
          aria-expanded={expanded}
          onClick={() => setExpanded(!expanded)}
        >
          <span className="rds-caret" aria-hidden="true" />
          <span className="rds-dataset-name">{dataset.name}</span>
        </button>
        <span className="rds-dataset-rows">
          {formatCount(dataset.rows)} rows
        </span>
        {epsilon && (
          <span
            className="rds-epsilon"
            title="Your privacy budget left on this dataset"
          >
            ε {formatEpsilon(epsilon.remaining)} left
          </span>
        )}
      </div>
      {dataset.description && (
        <div className="rds-dataset-description">{dataset.description}</div>
      )}
      {expanded && <DatasetDetail {...props} />}
    </li>
  );
});

type MockState =
  | { status: 'idle' }
  | { status: 'loading' }
  | { status: 'ready'; mock: IMock }
  | { status: 'error'; error: string };

/** An expanded dataset: schema, policy, budget and the two actions. */
function DatasetDetail(props: IRowProps): JSX.Element {
  const { profile, dataset, model, actions } = props;
  const [mock, setMock] = React.useState<MockState>({ status: 'idle' });
  const alive = React.useRef(true);
  React.useEffect(
    () => () => {
      alive.current = false;
    },
    []
  );

  const preview = async () => {
    setMock({ status: 'loading' });
    try {
      const data = await model.mock(profile, dataset.name);
      if (alive.current) {
        setMock({ status: 'ready', mock: data });
      }
    } catch (error) {
      if (alive.current) {
        setMock({ status: 'error', error: (error as Error).message });
      }
    }
  };

  const release = dataset.policy?.release;
  const epsilon = dataset.epsilon;
  return (
    <div className="rds-dataset-detail">
      <table className="rds-schema">
        <thead>
          <tr>
            <th>Column</th>
            <th>Type</th>
            <th>Values</th>
          </tr>
        </thead>
        <tbody>
          {dataset.schema.map(column => (
            <tr key={column.name} data-column={column.name}>
              <td>{column.name}</td>
              <td>
                {column.dtype}
                {column.nullable ? '?' : ''}
              </td>
              <td>{columnDomain(column)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {typeof release === 'string' && (
        <p className="rds-policy">
          <span className="rds-label">Release policy:</span> {release}
        </p>
      )}
      {epsilon && (
        <p className="rds-budget">
          ε budget {formatEpsilon(epsilon.budget)}: spent{' '}
          {formatEpsilon(epsilon.spent)}, pending{' '}
          {formatEpsilon(epsilon.pending)}, left{' '}
          {formatEpsilon(epsilon.remaining)}
        </p>
      )}
      {dataset.contact && (
        <p className="rds-contact">Contact: {dataset.contact}</p>
      )}
      <div className="rds-actions">
        <button
          className="jp-mod-styled"
          disabled={mock.status === 'loading'}
          onClick={() => void preview()}
        >
          Preview mock
        </button>
        <button
          className="jp-mod-styled jp-mod-accept"
          onClick={() => actions.insertSnippet(profile, dataset.name)}
        >
          Insert snippet
        </button>
      </div>
      {mock.status === 'loading' && (
        <p className="rds-loading">Loading mock…</p>
      )}
      {mock.status === 'error' && (
        <p className="rds-error" role="alert">
          {mock.error}
        </p>
      )}
      {mock.status === 'ready' && <MockTable mock={mock.mock} />}
    </div>
  );
}
