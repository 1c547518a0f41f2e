import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';

import { RemoteDataModel } from './model';
import { NotebookInserter } from './notebook';
import { PANEL_ID, RemoteDataPanel } from './panel';

/** Adds the Remote Data panel to the left sidebar. */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'rds-jupyterlab:plugin',
  description:
    'The Remote Data sidebar: PySyft domains, their datasets and your requests.',
  autoStart: true,
  optional: [INotebookTracker, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    restorer: ILayoutRestorer | null
  ) => {
    const model = new RemoteDataModel({
      serverSettings: app.serviceManager.serverSettings
    });
    const inserter = new NotebookInserter(app, tracker);
    const panel = new RemoteDataPanel({ model, inserter });
    app.shell.add(panel, 'left', { rank: 850 });
    restorer?.add(panel, PANEL_ID);
  }
};

export default plugin;
