"""A released differentially private table, with each cell's relative error.

A DP answer can be useless: an average of 0.0 whose 95% interval is 0 to 51.6 says nothing
about the group. :class:`DPAnswer` is the released DataFrame (the keys, then per measure
``<m>``, ``<m>_ci_low``, ``<m>_ci_high``) with one more column per measure,
``<m>_rel_error``: the half-width of the cell's 95% interval divided by ``|value|``
(``inf`` for a value of 0, NaN where there is no value). A cell whose relative error is at
least :data:`SWAMPED_AT` is *swamped*: the noise is as large as the value, so the interval
reaches zero and the value is no finding. Its display flags those cells.

Everything here is computed from the released table alone (the noisy values and their
intervals, which the public noise scale gives): nothing the domain did not release.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: A relative error from which a cell is flagged: the 95% interval is at least as wide, on
#: each side, as the value is far from zero.
SWAMPED_AT = 1.0
SUFFIXES = ("_ci_low", "_ci_high", "_rel_error")


class DPAnswer(pd.DataFrame):
    """A released DP table: values, 95% intervals and relative errors (``<m>_rel_error``).

    Operations on it (selecting, filtering, arithmetic) give plain DataFrames.

    Examples
    --------
    >>> answer = req.result()                 # doctest: +SKIP
    >>> answer.relative_error                 # keys, then one column per measure
    >>> answer.swamped                        # True where the noise is as large as the value
    >>> answer[~answer.swamped["progression"]]
    """

    @property
    def _constructor(self) -> Any:
        return pd.DataFrame

    @property
    def privacy(self) -> dict[str, Any]:
        """What the release spent and the noise it added (``req.privacy``)."""
        return dict(self.attrs.get("privacy") or {})

    @property
    def measures(self) -> list[str]:
        """The released aggregates' names (columns with an interval)."""
        return [m for m in self.privacy.get("noise_scale", {}) if m in self.columns]

    @property
    def key_columns(self) -> list[str]:
        """The GROUP BY columns."""
        measured = {m + s for m in self.measures for s in ("", *SUFFIXES)}
        return [str(c) for c in self.columns if c not in measured]

    @property
    def relative_error(self) -> pd.DataFrame:
        """Per cell, its 95% half-width over ``|value|``: the keys, then one column per measure."""
        frame = pd.DataFrame(self[self.key_columns])
        for m in self.measures:
            frame[m] = np.asarray(self[f"{m}_rel_error"], dtype=float)
        return frame

    @property
    def swamped(self) -> pd.DataFrame:
        """Per cell, whether its noise is as large as its value (or it has none): the keys,
        then one boolean column per measure."""
        frame = pd.DataFrame(self[self.key_columns])
        for m in self.measures:
            error = np.asarray(self[f"{m}_rel_error"], dtype=float)
            frame[m] = np.isnan(error) | (error >= SWAMPED_AT)
        return frame

    def _repr_html_(self) -> str:
        from rds.dp.views import answer_html

        return answer_html(
            pd.DataFrame(self),
            keys=self.key_columns,
            measures=self.measures,
            swamped=self.swamped,
            privacy=self.privacy,
        )


class PrivacyInfo(dict[str, Any]):
    """What a DP release spent and the noise it added (``req.privacy``): a dict with
    ``epsilon``, ``delta``, ``mechanism``, ``noise_scale`` and ``coverage`` per measure,
    ``confidence`` and ``columns``; a table in a notebook."""

    def _repr_html_(self) -> str:
        from rds.dp.views import privacy_html

        return privacy_html(self)


def with_relative_error(frame: Any, privacy: dict[str, Any]) -> Any:
    """``frame`` (a released DP table) as a :class:`DPAnswer`, ``<m>_rel_error`` added after
    each measure's interval.

    Examples
    --------
    >>> frame = pd.DataFrame({"n": [400.0, 3.0], "n_ci_low": [394.0, -3.0],
    ...                       "n_ci_high": [406.0, 9.0]})
    >>> with_relative_error(frame, {"noise_scale": {"n": 2.0}})["n_rel_error"].tolist()
    [0.015, 2.0]
    """
    if not isinstance(frame, pd.DataFrame):
        return frame
    columns: dict[str, Any] = {}
    measures = set(privacy.get("noise_scale", {}))
    for name in frame.columns:
        columns[name] = frame[name]
        m = str(name).removesuffix("_ci_high")
        if m != name and m in measures and {m, f"{m}_ci_low"} <= set(frame.columns):
            columns[f"{m}_rel_error"] = relative_error(frame[m], frame[f"{m}_ci_low"], frame[name])
    answer = DPAnswer(pd.DataFrame(columns, index=frame.index))
    answer.attrs["privacy"] = privacy
    return answer


def relative_error(value: Any, low: Any, high: Any) -> np.ndarray:
    """``(high - low) / 2 / |value|``: ``inf`` where the value is 0, NaN where it is missing.

    Examples
    --------
    >>> relative_error([0.0, 10.0, float("nan")], [0.0, 5.0, 0.0], [51.6, 15.0, 120.0]).tolist()
    [inf, 0.5, nan]
    """
    v = np.asarray(value, dtype=float)
    half = (np.asarray(high, dtype=float) - np.asarray(low, dtype=float)) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        error = half / np.abs(v)
    return np.where(np.isnan(v), np.nan, np.where(v == 0, np.inf, error))
