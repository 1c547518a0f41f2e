import * as React from 'react';

import { formatCell, formatCount } from '../format';
import { IMock } from '../tokens';

/** A dataset's mock rows: synthetic or owner-supplied, never the private data. */
export function MockTable(props: { mock: IMock }): JSX.Element {
  const { columns, rows, total_rows } = props.mock;
  return (
    <div className="rds-mock">
      <p className="rds-mock-caption">
        Mock data: {formatCount(rows.length)} of {formatCount(total_rows)} rows
      </p>
      <div className="rds-mock-scroll">
        <table className="rds-mock-table">
          <thead>
            <tr>
              {columns.map((column, i) => (
                <th key={i}>{column}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row, r) => (
              <tr key={r}>
                {row.map((value, c) => (
                  <td
                    key={c}
                    className={value === null ? 'rds-null' : undefined}
                  >
                    {formatCell(value)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
