import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

/** The command the notebook extension registers for File > New > Notebook. */
const CREATE_NOTEBOOK = 'notebook:create-new';

/**
 * Puts code cells into notebooks for the panel: below the active cell of the current
 * notebook, or into a new notebook when none is open. It never runs them.
 */
export class NotebookInserter {
  constructor(
    private readonly _app: JupyterFrontEnd,
    private readonly _tracker: INotebookTracker | null
  ) {}

  /**
   * Insert `code` as a new code cell below the active cell of the current notebook.
   *
   * @param code the cell's source
   * @param standalone the source to use instead when a new notebook has to be created
   *   (for code that relies on an earlier `import rds`)
   */
  async insert(code: string, standalone: string = code): Promise<void> {
    const current = this._tracker?.currentWidget ?? null;
    if (!current) {
      await this.openNew(standalone);
      return;
    }
    await current.context.ready;
    const notebook = current.content;
    const shared = notebook.model!.sharedModel;
    const index = Math.min(notebook.activeCellIndex + 1, shared.cells.length);
    shared.insertCell(index, { cell_type: 'code', source: code, metadata: {} });
    notebook.activeCellIndex = index;
    this._app.shell.activateById(current.id);
  }

  /** Create a new notebook whose single code cell holds `code`. */
  async openNew(code: string): Promise<NotebookPanel> {
    const kernelName = this._app.serviceManager.kernelspecs.specs?.default;
    const panel = (await this._app.commands.execute(CREATE_NOTEBOOK, {
      ...(kernelName ? { kernelName } : {})
    })) as NotebookPanel;
    await panel.context.ready;
    const shared = panel.content.model!.sharedModel;
    // A new notebook starts with one empty cell: fill it rather than add a second.
    const first = shared.cells[0];
    if (
      shared.cells.length === 1 &&
      first.cell_type === 'code' &&
      !first.getSource()
    ) {
      first.setSource(code);
    } else {
      shared.insertCell(0, { cell_type: 'code', source: code, metadata: {} });
    }
    panel.content.activeCellIndex = 0;
    this._app.shell.activateById(panel.id);
    return panel;
  }
}
