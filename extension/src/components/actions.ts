/**
 * What the panel's buttons do outside the model: notebook edits and confirmations.
 * The panel supplies one stable object, so memoized rows never re-render for it.
 */
export interface IPanelActions {
  /** Insert the `rds.connect(...).dataset(...)` cell into the current notebook. */
  insertSnippet(profile: string, dataset: string): void;
  /** Insert the `req.result()` cell for a decided request. */
  insertResult(profile: string, requestId: string): void;
  /** Show and run the owner's review desk cell in its own notebook (one, reused). */
  openReviewDesk(path: string): void;
  /** Ask, then delete a saved profile. */
  removeProfile(profile: string): void;
}
