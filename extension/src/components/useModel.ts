import * as React from 'react';

import { RemoteDataModel } from '../model';

/** Re-render the calling component whenever the model changes. */
export function useModel(model: RemoteDataModel): void {
  const [, setVersion] = React.useState(0);
  React.useEffect(() => {
    const onChanged = () => setVersion(v => v + 1);
    model.changed.connect(onChanged);
    return () => {
      model.changed.disconnect(onChanged);
    };
  }, [model]);
}
