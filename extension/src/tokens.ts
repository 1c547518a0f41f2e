/**
 * The JSON the `rds` server extension serves under `<baseUrl>rds/`.
 *
 * These interfaces mirror `rds/panel/service.py`; the panel only reads them.
 */

/** Who a profile signs in as: a data scientist or the owner of a local domain. */
export type ProfileKind = 'scientist' | 'owner';

/** Whether the profile's domain answered, as measured by the server. */
export interface IProfileStatus {
  reachable: boolean;
  version: string | null;
  latency_ms: number | null;
  error: string | null;
}

/** A saved connection (never carries a password). */
export interface IProfile {
  name: string;
  kind: ProfileKind;
  url: string | null;
  email: string | null;
  /** An owner's domain directory on this machine. */
  path: string | null;
  status: IProfileStatus;
}

/** `GET rds/profiles` */
export interface IProfilesReply {
  profiles: IProfile[];
}

/** `POST rds/profiles` body. */
export interface IConnectForm {
  name: string;
  url: string;
  email: string;
  password: string;
}

/** `POST rds/profiles` reply (201). */
export interface IProfileReply {
  profile: IProfile;
}

/** One column of a published dataset. */
export interface IColumn {
  name: string;
  dtype: string;
  nullable: boolean;
  bounds: [number, number] | null;
  categories: Array<string | number | boolean> | null;
}

/** A scientist's privacy budget on one dataset. */
export interface IEpsilon {
  budget: number;
  spent: number;
  pending: number;
  remaining: number;
}

/** A dataset's public metadata. */
export interface IDataset {
  name: string;
  description: string;
  rows: number;
  schema: IColumn[];
  /** The owner's policy; `release` is a human sentence. */
  policy: { release?: string; [key: string]: unknown };
  contact: string | null;
  epsilon: IEpsilon | null;
}

/** `GET rds/profiles/<name>/datasets` */
export interface IDatasetsReply {
  datasets: IDataset[];
}

/** `GET rds/profiles/<name>/datasets/<dataset>/mock?rows=N` */
export interface IMock {
  columns: string[];
  rows: unknown[][];
  total_rows: number;
}

/** Where a request is in its life. */
export type RequestStatus =
  'submitted' | 'running' | 'awaiting review' | 'released' | 'denied';

/** The disclosure checks' overall verdict. */
export type Verdict = 'pass' | 'warn' | 'fail';

/** A scientist's request, as listed by the domain. */
export interface IRequest {
  id: string;
  what: string;
  dataset: string;
  kind: string;
  status: RequestStatus;
  verdict: Verdict | null;
  submitted_at: string;
  reason: string;
  denial_reason: string | null;
}

/** `GET rds/profiles/<name>/requests` */
export interface IRequestsReply {
  requests: IRequest[];
}

/** `GET rds/profiles/<name>/pending` (owner profiles) */
export interface IPendingReply {
  pending: number;
}
