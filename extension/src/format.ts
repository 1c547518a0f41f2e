/**
 * How the panel words numbers and statuses. Pure, so the wording is tested once.
 */
import { IColumn, IProfileStatus } from './tokens';

const COUNT = new Intl.NumberFormat('en-US');

/** `12345` → `"12,345"`. */
export function formatCount(value: number): string {
  return COUNT.format(value);
}

/** An ε value with at most two decimals: `0.5`, `2.25`. */
export function formatEpsilon(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** `"reachable · syft 0.9.5 · 12 ms"` or `"down: <error>"`. */
export function statusText(status: IProfileStatus): string {
  if (!status.reachable) {
    return `down: ${status.error ?? 'no answer'}`;
  }
  const parts = ['reachable'];
  if (status.version) {
    parts.push(`syft ${status.version}`);
  }
  if (status.latency_ms !== null && status.latency_ms !== undefined) {
    parts.push(`${Math.round(status.latency_ms)} ms`);
  }
  return parts.join(' · ');
}

/** A column's public value range: `"0 – 120"`, `"cardio, onco, neuro"`, or `""`. */
export function columnDomain(column: IColumn, maxCategories = 12): string {
  if (column.bounds) {
    return `${column.bounds[0]} – ${column.bounds[1]}`;
  }
  if (column.categories) {
    const shown = column.categories.slice(0, maxCategories).map(String);
    const more = column.categories.length - shown.length;
    return shown.join(', ') + (more > 0 ? `, … (+${more})` : '');
  }
  return '';
}

/** One mock cell as text. */
export function formatCell(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'object') {
    return JSON.stringify(value);
  }
  return String(value);
}
