import * as React from 'react';

import { RemoteDataModel } from '../model';
import { IConnectForm } from '../tokens';

const EMPTY: IConnectForm = { name: '', url: '', email: '', password: '' };

/** The form's inputs, in order, with what each needs beyond a name and a value. */
const FIELDS: {
  key: keyof IConnectForm;
  label: string;
  input: React.InputHTMLAttributes<HTMLInputElement>;
}[] = [
  { key: 'name', label: 'Profile name', input: { autoComplete: 'off' } },
  {
    key: 'url',
    label: 'Domain URL',
    input: {
      inputMode: 'url',
      autoComplete: 'url',
      placeholder: 'http://127.0.0.1:8081'
    }
  },
  {
    key: 'email',
    label: 'Email',
    input: { type: 'email', autoComplete: 'username' }
  },
  {
    key: 'password',
    label: 'Password',
    input: { type: 'password', autoComplete: 'current-password' }
  }
];

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
      {FIELDS.map(({ key, label, input }) => (
        <label key={key}>
          <span>{label}</span>
          <input
            name={key}
            required
            {...input}
            value={form[key]}
            onChange={field(key)}
          />
        </label>
      ))}
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
