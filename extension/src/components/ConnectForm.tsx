import * as React from 'react';

import { RemoteDataModel } from '../model';
import { IConnectForm } from '../tokens';

const EMPTY: IConnectForm = { name: '', url: '', email: '', password: '' };

/**
 * The "Connect" form: a new profile for a domain. The server signs in before it
 * saves anything, so a wrong password or a domain that is down shows here, inline.
 */
export function ConnectForm(props: {
  model: RemoteDataModel;
  onDone: () => void;
}): JSX.Element {
  const { model, onDone } = props;
  const [form, setForm] = React.useState<IConnectForm>(EMPTY);
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);

  const field =
    (key: keyof IConnectForm) => (event: React.ChangeEvent<HTMLInputElement>) =>
      setForm({ ...form, [key]: event.target.value });

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await model.connect(form);
      setForm(EMPTY);
      onDone();
    } catch (err) {
      setError((err as Error).message);
      setForm({ ...form, password: '' });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="rds-connect"
      aria-label="Connect to a domain"
      onSubmit={submit}
    >
      <label>
        <span>Profile name</span>
        <input
          name="name"
          required
          autoComplete="off"
          value={form.name}
          onChange={field('name')}
        />
      </label>
      <label>
        <span>Domain URL</span>
        <input
          name="url"
          inputMode="url"
          autoComplete="url"
          required
          placeholder="http://127.0.0.1:8081"
          value={form.url}
          onChange={field('url')}
        />
      </label>
      <label>
        <span>Email</span>
        <input
          name="email"
          type="email"
          required
          autoComplete="username"
          value={form.email}
          onChange={field('email')}
        />
      </label>
      <label>
        <span>Password</span>
        <input
          name="password"
          type="password"
          required
          autoComplete="current-password"
          value={form.password}
          onChange={field('password')}
        />
      </label>
      {error !== null && (
        <p className="rds-error" role="alert">
          {error}
        </p>
      )}
      <div className="rds-form-buttons">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept"
          disabled={busy}
        >
          {busy ? 'Connecting…' : 'Add profile'}
        </button>
        <button
          type="button"
          className="jp-mod-styled jp-mod-reject"
          disabled={busy}
          onClick={onDone}
        >
          Cancel
        </button>
      </div>
    </form>
  );
}
