import {
  Notification,
  showDialog,
  Dialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { IPanelActions } from './components/actions';
import { RemoteDataView } from './components/RemoteDataView';
import { remoteDataIcon } from './icon';
import { IRequestDecision, RemoteDataModel } from './model';
import { NotebookInserter } from './notebook';
import { datasetSnippet, resultSnippet, reviewDeskSnippet } from './snippets';

/** The sidebar widget's id (also its layout-restorer key). */
export const PANEL_ID = 'rds-remote-data';

/**
 * The "Remote Data" sidebar: renders {@link RemoteDataView}, polls while attached,
 * and turns decided requests into notifications.
 */
export class RemoteDataPanel extends ReactWidget {
  constructor(options: RemoteDataPanel.IOptions) {
    super();
    this._model = options.model;
    this._inserter = options.inserter;
    this.id = PANEL_ID;
    this.addClass('rds-panel');
    this.title.icon = remoteDataIcon;
    this.title.caption = 'Remote Data';
    this._model.requestDecided.connect(this._onDecided, this);
  }

  get model(): RemoteDataModel {
    return this._model;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.requestDecided.disconnect(this._onDecided, this);
    super.dispose();
  }

  protected render(): JSX.Element {
    return React.createElement(RemoteDataView, {
      model: this._model,
      actions: this._actions
    });
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._model.start();
  }

  protected onBeforeDetach(msg: Message): void {
    this._model.stop();
    super.onBeforeDetach(msg);
  }

  private _onDecided(_: RemoteDataModel, decision: IRequestDecision): void {
    const { profile, request } = decision;
    const actions = [
      {
        label: 'Insert result code',
        callback: () => this._actions.insertResult(profile, request.id)
      }
    ];
    const subject = `${request.what} on ${request.dataset} (${profile})`;
    if (request.status === 'released') {
      Notification.success(`Released: ${subject}.`, {
        actions,
        autoClose: 10_000
      });
    } else {
      const reason = request.denial_reason ? `: ${request.denial_reason}` : '.';
      Notification.warning(`Denied: ${subject}${reason}`, {
        actions,
        autoClose: 10_000
      });
    }
  }

  private _run(what: string, edit: Promise<unknown>): void {
    edit.catch(error => void showErrorMessage(what, error));
  }

  private _actions: IPanelActions = {
    insertSnippet: (profile, dataset) =>
      this._run(
        'Could not insert the snippet',
        this._inserter.insert(datasetSnippet(profile, dataset))
      ),
    insertResult: (profile, requestId) => {
      const code = resultSnippet(profile, requestId);
      this._run(
        'Could not insert the result code',
        this._inserter.insert(code, `import rds\n${code}`)
      );
    },
    openReviewDesk: path =>
      this._run(
        'Could not open the review desk',
        this._inserter.showAndRun(reviewDeskSnippet(path))
      ),
    removeProfile: profile =>
      this._run('Could not remove the profile', this._confirmRemove(profile))
  };

  private async _confirmRemove(profile: string): Promise<void> {
    const answer = await showDialog({
      title: 'Remove profile',
      body: `Remove the profile "${profile}"? Its saved credentials are deleted; the domain is not affected.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove' })]
    });
    if (answer.button.accept) {
      await this._model.removeProfile(profile);
    }
  }

  private _model: RemoteDataModel;
  private _inserter: NotebookInserter;
}

export namespace RemoteDataPanel {
  export interface IOptions {
    model: RemoteDataModel;
    inserter: NotebookInserter;
  }
}
