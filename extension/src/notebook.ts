import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';

/** The command the notebook extension registers for File > New > Notebook. */
const CREATE_NOTEBOOK = 'notebook:create-new';

/**
 * Puts code cells into notebooks for the panel: below the active cell of the current
 * notebook, or into a new notebook when none is open. Only {@link showAndRun} runs what
 * it puts there.
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

  /**
   * Show `code` in a notebook of its own and run it there, once per kernel.
   *
   * The notebook is the open one that already holds a cell with exactly this source
   * (the one an earlier call created), or a new one: clicking again brings that
   * notebook forward instead of opening another. The cell runs again only when its
   * kernel has not run it yet (a new, changed or restarted kernel) or its last run
   * failed, so a live view such as the review desk is not opened twice in one kernel.
   */
  async showAndRun(code: string): Promise<void> {
    const found = this._findCell(code);
    const panel = found?.panel ?? (await this.openNew(code));
    const index = found?.index ?? 0;
    const notebook = panel.content;
    notebook.activeCellIndex = index;
    this._app.shell.activateById(panel.id);
    const cell = notebook.widgets[index];
    void notebook.scrollToCell(cell);
    await panel.sessionContext.ready;
    const ran = this._ranIn(panel);
    if (ran.has(code)) {
      return;
    }
    ran.add(code);
    const ok = await NotebookActions.runCells(
      notebook,
      [cell],
      panel.sessionContext
    );
    if (!ok) {
      ran.delete(code);
    }
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

  /** The first open notebook with a code cell whose source is `code`. */
  private _findCell(
    code: string
  ): { panel: NotebookPanel; index: number } | null {
    let found: { panel: NotebookPanel; index: number } | null = null;
    this._tracker?.forEach(panel => {
      const cells = panel.content.model?.sharedModel.cells ?? [];
      const index = cells.findIndex(
        cell => cell.cell_type === 'code' && cell.getSource() === code
      );
      if (!found && index >= 0) {
        found = { panel, index };
      }
    });
    return found;
  }

  /** The sources {@link showAndRun} ran in `panel`'s current kernel. */
  private _ranIn(panel: NotebookPanel): Set<string> {
    let ran = this._ran.get(panel);
    if (!ran) {
      const fresh = new Set<string>();
      const session = panel.sessionContext;
      session.kernelChanged.connect(() => fresh.clear());
      session.statusChanged.connect((_, status) => {
        if (status === 'restarting' || status === 'autorestarting') {
          fresh.clear();
        }
      });
      this._ran.set(panel, fresh);
      ran = fresh;
    }
    return ran;
  }

  private readonly _ran = new WeakMap<NotebookPanel, Set<string>>();
}
