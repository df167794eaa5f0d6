"""Series: the data every tool reads.

A Series holds ``values`` of shape (n_samples, n_channels) float64 (NaN marks a missing value),
an optional time index of shape (n_samples,) (``datetime64[ns]`` or float), channel names and,
for spatial series, sensor coordinates of shape (n_channels, n_dims).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chronoken import features
from chronoken.errors import SeriesError

#: Largest series accepted at all (points x channels); tools state their own, lower limits.
MAX_CELLS = 50_000_000


class Series:
    """A univariate or multichannel time series, optionally spatial.

    Parameters
    ----------
    values : array-like of shape (n_samples,) or (n_samples, n_channels)
        Observations; NaN (or None) marks a missing value.
    time : array-like of shape (n_samples,), optional
        Strictly increasing time stamps: datetimes (anything ``numpy.datetime64`` or pandas
        parses) or numbers. Without it the index is 0, 1, 2, ...
    names : sequence of str, optional
        Channel names, one per column. Defaults to ``x0, x1, ...`` (``y`` for one channel).
    coords : array-like of shape (n_channels, n_dims), optional
        Sensor positions of a spatial series.
    source : str, optional
        Where the series came from (a file path or example name), for reports.
    """

    def __init__(
        self,
        values: Any,
        time: Any = None,
        names: Sequence[str] | None = None,
        coords: Any = None,
        source: str | None = None,
    ) -> None:
        self.values = _as_values(values)
        n, k = self.values.shape
        self.time = _as_time(time, n)
        self.names = _as_names(names, k)
        self.coords = _as_coords(coords, k)
        self.source = source
        self.freq = _infer_freq(self.time)
        self._description: str | None = None  # describe() is cached: a Series is not mutated

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        data: Any,
        *,
        time: str | None = None,
        columns: Sequence[str] | str | None = None,
        coords: Any = None,
    ) -> Series:
        """Build a Series from an array, list, pandas object, Series or a file path.

        Files: ``.csv``/``.tsv``/``.txt`` (a time column is detected, or named with ``time``;
        every other numeric column is a channel; ``columns`` picks channels), ``.json`` (a list
        of numbers, a list of rows, or an object with ``values`` and optional ``time``,
        ``names``, ``coords``; or an object of equal-length columns), ``.npy``.
        ``coords`` may be an array of shape (n_channels, n_dims) or a path to such a file.
        """
        if isinstance(data, Series):
            series = data
        elif isinstance(data, (str, Path)):
            series = _load_path(Path(data), time=time)
        elif _is_pandas(data):
            series = _from_pandas(data, time=time, source=None)
        else:
            series = cls(data)
        if columns is not None:
            series = series.select(columns)
        if coords is not None:
            c = _load_coords_file(coords) if isinstance(coords, (str, Path)) else coords
            series = Series(series.values, series.time, series.names, c, series.source)
        return series

    def select(self, columns: Sequence[str] | str) -> Series:
        """A Series with only the named channels (in the given order)."""
        wanted = [columns] if isinstance(columns, str) else list(columns)
        wanted = [c.strip() for w in wanted for c in str(w).split(",") if c.strip()]
        missing = [c for c in wanted if c not in self.names]
        if missing or not wanted:
            raise SeriesError(
                f"unknown column(s) {missing or wanted}; the series has {self.names}. "
                "Pick channels by these names."
            )
        idx = [self.names.index(c) for c in wanted]
        coords = None if self.coords is None else self.coords[idx]
        return Series(self.values[:, idx], self.time, wanted, coords, self.source)

    # --------------------------------------------------------------- properties
    @property
    def n_samples(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return self.n_samples

    def __repr__(self) -> str:
        return f"Series(n_samples={self.n_samples}, channels={self.names}, freq={self.freq!r})"

    @property
    def n_missing(self) -> int:
        return int(np.isnan(self.values).sum())

    @property
    def is_datetime(self) -> bool:
        return self.time is not None and np.issubdtype(self.time.dtype, np.datetime64)

    def t_numeric(self) -> np.ndarray:
        """Time as floats of shape (n_samples,): days since the first stamp for datetimes,
        the stamps themselves for numeric time, 0..n-1 without a time index."""
        if self.time is None:
            return np.arange(self.n_samples, dtype=float)
        if self.is_datetime:
            delta = (self.time - self.time[0]).astype("timedelta64[s]").astype(float)
            return delta / 86400.0
        return self.time.astype(float)

    def time_label(self, index: int) -> str:
        """Human label of observation ``index``: its time stamp, or the index itself."""
        if self.time is None:
            return str(int(index))
        t = self.time[int(index)]
        if self.is_datetime:
            return str(np.datetime_as_string(t, unit="D"))
        v = float(t)
        return str(int(v)) if v.is_integer() else f"{v:g}"

    def future_labels(self, horizon: int) -> list[str]:
        """Labels of the ``horizon`` steps after the last observation (dates when the
        frequency is known, else the continued numeric index)."""
        n = self.n_samples
        if self.is_datetime and self.freq:
            import pandas as pd

            try:
                idx = pd.date_range(
                    pd.Timestamp(self.time[-1]), periods=horizon + 1, freq=self.freq
                )
                return [d.strftime("%Y-%m-%d") for d in idx[1:]]
            except ValueError:
                pass
        if self.time is not None and not self.is_datetime and n >= 2:
            step = float(self.time[-1] - self.time[-2])
            vals = [float(self.time[-1]) + step * (i + 1) for i in range(horizon)]
            return [str(int(v)) if float(v).is_integer() else f"{v:g}" for v in vals]
        return [f"+{i + 1}" if self.is_datetime else str(n + i) for i in range(horizon)]

    def filled(self) -> np.ndarray:
        """Values of shape (n_samples, n_channels) with NaN linearly interpolated per channel."""
        return np.column_stack(
            [features.fill_gaps(self.values[:, j]) for j in range(self.n_channels)]
        )

    def channel(self, j: int) -> np.ndarray:
        """Channel ``j`` as a 1-D array of shape (n_samples,), NaN kept."""
        return self.values[:, j]

    def period(self, channel: int = 0) -> int | None:
        """Strongest seasonal period of a channel in observations (see features.detect_period)."""
        return features.detect_period(features.fill_gaps(self.values[:, channel]))

    def require(self, tool: str, min_samples: int, *, allow_constant: bool = True) -> None:
        """Raise SeriesError when the series is too short (or constant) for ``tool``."""
        if self.n_samples < min_samples:
            raise SeriesError(
                f"{tool} needs at least {min_samples} observations; this series has "
                f"{self.n_samples}. Provide a longer series."
            )
        if not allow_constant:
            v = self.filled()
            if np.all(np.nanstd(v, axis=0) == 0):
                raise SeriesError(
                    f"{tool} cannot work on a constant series (every value is {v[0, 0]:g}): "
                    "there is nothing to model."
                )

    # ------------------------------------------------------------------ describe
    def describe(self) -> str:
        """A few factual lines: length, channels, frequency, gaps, trend, period, stationarity.

        This text goes into the router's context, so it states facts, never advice. It is
        computed once per Series (the ADF test costs ~0.5 s) and reused, e.g. across chat turns.
        """
        if self._description is None:
            self._description = self._describe()
        return self._description

    def _describe(self) -> str:
        lines = [self._shape_line()]
        if self.n_missing:
            gaps = max(features.longest_gap(self.values[:, j]) for j in range(self.n_channels))
            pct = 100.0 * self.n_missing / self.values.size
            lines.append(f"Missing values: {self.n_missing} ({pct:.1f}%), longest gap {gaps}.")
        else:
            lines.append("Missing values: none.")
        shown = min(self.n_channels, 3)
        for j in range(shown):
            prefix = f"Channel '{self.names[j]}': " if self.n_channels > 1 else ""
            lines.append(prefix + _channel_facts(features.fill_gaps(self.values[:, j])))
        if self.n_channels > shown:
            lines.append(f"({self.n_channels - shown} more channels not described.)")
        if self.coords is not None:
            span = np.ptp(self.coords, axis=0)
            lines.append(
                f"Spatial: {self.n_channels} sensors with {self.coords.shape[1]}-D coordinates, "
                f"extent {', '.join(f'{s:g}' for s in span)}."
            )
        return "\n".join(lines)

    def _shape_line(self) -> str:
        chans = "1 channel" if self.n_channels == 1 else f"{self.n_channels} channels"
        line = f"Length {self.n_samples} observations, {chans}"
        if self.n_channels <= 6:
            line += " (" + ", ".join(self.names) + ")"
        if self.time is not None:
            line += f", from {self.time_label(0)} to {self.time_label(self.n_samples - 1)}"
        line += f", frequency {self.freq}." if self.freq else ", irregular or unknown frequency."
        return line


# ---------------------------------------------------------------------- helpers
def _channel_facts(y: np.ndarray) -> str:
    if np.std(y) == 0:
        return f"constant at {y[0]:g}."
    period = features.detect_period(y)
    f_trend, f_season, slope = features.decompose_strength(y, period)
    direction = "increasing" if slope > 0 else "decreasing"
    if f_trend < 0.3:
        trend = f"no clear trend (strength {f_trend:.2f})"
    else:
        trend = f"{direction} trend (strength {f_trend:.2f}, slope {slope:.3g} per step)"
    season = (
        f"strongest period {period} observations (seasonal strength {f_season:.2f})"
        if period
        else "no clear period"
    )
    p = features.adf_pvalue(y)
    stat = (
        ""
        if p is None
        else (f"; ADF p={p:.3f} ({'stationary' if p < 0.05 else 'unit root not rejected'})")
    )
    return (
        f"mean {np.mean(y):.4g}, std {np.std(y):.4g}, range [{np.min(y):.4g}, {np.max(y):.4g}]; "
        f"{trend}; {season}{stat}."
    )


def _as_values(values: Any) -> np.ndarray:
    if isinstance(values, Series):
        return values.values.copy()
    try:
        arr = np.array(values, dtype=float)
    except (ValueError, TypeError) as exc:
        raise SeriesError(
            f"values must be numbers, got {type(values).__name__} that cannot be read as numbers "
            f"({exc}). Pass a numeric array, list or file."
        ) from None
    if arr.ndim == 0:
        raise SeriesError("got a single number, not a series. Pass an array of observations.")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise SeriesError(
            f"values must be 1-D (n_samples,) or 2-D (n_samples, n_channels); got shape {arr.shape}."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise SeriesError("the series is empty. Pass at least a few observations.")
    if arr.size > MAX_CELLS:
        raise SeriesError(
            f"the series has {arr.size:,} values, over the limit of {MAX_CELLS:,}. "
            "Aggregate or subsample it first."
        )
    if np.isinf(arr).any():
        n_inf = int(np.isinf(arr).sum())
        raise SeriesError(
            f"the series contains {n_inf} infinite value(s). Replace them with NaN (missing) or "
            "finite numbers."
        )
    if np.isnan(arr).all():
        raise SeriesError("every value is missing (NaN). Check the file or the column chosen.")
    for j in range(arr.shape[1]):
        if np.isnan(arr[:, j]).all():
            raise SeriesError(f"channel {j} has no values at all (all NaN). Drop that column.")
    return arr


def _as_time(time: Any, n: int) -> np.ndarray | None:
    if time is None:
        return None
    t = np.asarray(time)
    if t.ndim != 1 or len(t) != n:
        raise SeriesError(
            f"the time index has {t.size} stamps for {n} observations; they must match."
        )
    if not np.issubdtype(t.dtype, np.datetime64):
        try:
            t = t.astype(float)
        except (ValueError, TypeError):
            try:
                import pandas as pd

                t = pd.to_datetime(t).to_numpy().astype("datetime64[ns]")
            except (ValueError, TypeError):
                raise SeriesError(
                    "the time column is neither numbers nor dates. Name the right column with "
                    "time=..., or leave it out."
                ) from None
    else:
        t = t.astype("datetime64[ns]")
    if np.issubdtype(t.dtype, np.datetime64):
        if np.isnat(t).any():
            raise SeriesError("the time column has missing stamps. Fill or drop those rows.")
        d = np.diff(t).astype(np.int64)
    else:
        if np.isnan(t).any():
            raise SeriesError("the time column has missing stamps. Fill or drop those rows.")
        d = np.diff(t)
    if (d == 0).any():
        i = int(np.argmax(d == 0))
        raise SeriesError(
            f"duplicate time stamp at rows {i} and {i + 1}. Aggregate duplicates before loading."
        )
    if (d < 0).any():
        i = int(np.argmax(d < 0))
        raise SeriesError(
            f"time stamps are not sorted (row {i + 1} is earlier than row {i}). Sort by time first."
        )
    return t


def _as_names(names: Sequence[str] | None, k: int) -> list[str]:
    if names is None:
        return ["y"] if k == 1 else [f"x{j}" for j in range(k)]
    names = [str(n) for n in names]
    if len(names) != k:
        raise SeriesError(f"{len(names)} channel names for {k} channels; give one name per column.")
    return names


def _as_coords(coords: Any, k: int) -> np.ndarray | None:
    if coords is None:
        return None
    try:
        c = np.asarray(coords, dtype=float)
    except (ValueError, TypeError):
        raise SeriesError("coordinates must be numbers of shape (n_channels, n_dims).") from None
    if c.ndim == 1:
        c = c[:, None]
    if c.ndim != 2 or c.shape[0] != k or not np.isfinite(c).all():
        raise SeriesError(
            f"coordinates must be finite numbers of shape (n_channels={k}, n_dims); got {c.shape}."
        )
    return c


def _infer_freq(time: np.ndarray | None) -> str | None:
    if time is None:
        return "1 (index)"
    if len(time) < 3:
        return None
    if np.issubdtype(time.dtype, np.datetime64):
        import pandas as pd

        try:
            return pd.infer_freq(pd.DatetimeIndex(time))
        except (ValueError, TypeError):
            return None
    d = np.diff(time)
    if np.allclose(d, d[0], rtol=1e-6):
        return f"{d[0]:g} (numeric)"
    return None


def _is_pandas(obj: Any) -> bool:
    mod = type(obj).__module__
    return mod.startswith("pandas") and hasattr(obj, "to_numpy")


def _from_pandas(obj: Any, time: str | None, source: str | None) -> Series:
    import pandas as pd

    if isinstance(obj, pd.Series):
        obj = obj.to_frame(name=obj.name if obj.name is not None else "y")
    df = obj.copy()
    t = None
    if time is not None:
        if time not in df.columns:
            raise SeriesError(f"no time column '{time}'; columns are {list(df.columns)}.")
        t = df.pop(time).to_numpy()
    elif isinstance(df.index, pd.DatetimeIndex):
        t = df.index.to_numpy()
    else:
        t = _detect_time_column(df)
    numeric = []
    for c in df.columns:
        col = pd.to_numeric(df[c], errors="coerce")
        raw_present = df[c].notna()
        if col.notna().sum() == 0:
            continue  # a text column: not a channel
        bad = raw_present & col.isna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise SeriesError(
                f"column '{c}' has a non-numeric value {df[c].iloc[row]!r} at row {row}. "
                "Fix or blank that cell."
            )
        numeric.append((str(c), col.to_numpy(dtype=float)))
    if not numeric:
        raise SeriesError(
            "no numeric column found. A series file needs at least one column of numbers."
        )
    values = np.column_stack([v for _, v in numeric])
    return Series(values, t, [n for n, _ in numeric], None, source)


def _detect_time_column(df: Any) -> np.ndarray | None:
    """Pop and return the time column: named like a time, or the first column of dates."""
    import pandas as pd

    names = {str(c).lower(): c for c in df.columns}
    for key in ("time", "date", "datetime", "timestamp", "year", "t", "ds", "month", "day"):
        if key in names:
            col = df[names[key]]
            if len(df.columns) > 1:
                df.pop(names[key])
                return col.to_numpy()
    first = df.columns[0]
    if df[first].dtype == object and len(df.columns) > 1:
        try:
            parsed = pd.to_datetime(df[first], errors="raise")
        except (ValueError, TypeError):
            return None
        df.pop(first)
        return parsed.to_numpy()
    return None


def _load_path(path: Path, time: str | None) -> Series:
    if not path.exists():
        raise SeriesError(f"file not found: {path}. Check the path (or run `chronoken examples`).")
    if path.is_dir():
        raise SeriesError(f"{path} is a folder, not a series file.")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        import csv

        import pandas as pd

        sep = {".tsv": "\t", ".csv": ","}.get(suffix)  # .txt: sniff the delimiter
        try:
            df = pd.read_csv(path, sep=sep, engine="python")
        except (
            pd.errors.EmptyDataError,
            pd.errors.ParserError,
            UnicodeDecodeError,
            csv.Error,
        ) as exc:
            raise SeriesError(
                f"cannot read {path} as CSV ({exc}). Check the file format."
            ) from None
        if df.empty:
            raise SeriesError(f"{path} has no rows. A series needs observations.")
        series = _from_pandas(df, time=time, source=str(path))
    elif suffix == ".json":
        try:
            obj = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SeriesError(f"{path} is not valid JSON ({exc}).") from None
        series = _from_json(obj, time=time)
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise SeriesError(f"cannot read {path} as a numeric .npy file ({exc}).") from None
        series = Series(arr)
    else:
        raise SeriesError(
            f"unsupported file type '{suffix}' for {path}. Use .csv, .tsv, .json or .npy."
        )
    series.source = str(path)
    return series


def _from_json(obj: Any, time: str | None) -> Series:
    if isinstance(obj, list):
        if obj and isinstance(obj[0], list):
            lengths = {len(r) for r in obj if isinstance(r, list)}
            if len(lengths) != 1 or not all(isinstance(r, list) for r in obj):
                raise SeriesError(
                    "ragged JSON: rows have different lengths. Every row needs one value per channel."
                )
        return Series(obj)
    if isinstance(obj, dict):
        if "values" in obj:
            vals = obj["values"]
            rows = isinstance(vals, list) and vals and isinstance(vals[0], list)
            if rows and len({len(r) if isinstance(r, list) else -1 for r in vals}) != 1:
                raise SeriesError("ragged JSON: rows of 'values' have different lengths.")
            return Series(vals, obj.get(time or "time"), obj.get("names"), obj.get("coords"))
        lengths = {len(v) for v in obj.values() if isinstance(v, list)}
        if len(lengths) != 1 or not all(isinstance(v, list) for v in obj.values()):
            raise SeriesError(
                "ragged JSON: columns have different lengths (or are not lists). Give every column "
                "the same number of values."
            )
        import pandas as pd

        return _from_pandas(pd.DataFrame(obj), time=time, source=None)
    raise SeriesError("JSON must be a list of numbers, a list of rows or an object of columns.")


def _load_coords_file(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise SeriesError(f"coordinates file not found: {p}.")
    if p.suffix.lower() == ".npy":
        return np.load(p, allow_pickle=False)
    if p.suffix.lower() == ".json":
        return np.asarray(json.loads(p.read_text()), dtype=float)
    import pandas as pd

    df = pd.read_csv(p)
    num = df.select_dtypes("number")
    return num.to_numpy(dtype=float)
