"""Series: loaders, validation errors and describe()."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from chronoken import features
from chronoken.errors import ChronokenError, SeriesError
from chronoken.series import Series


def test_array_shapes_and_names() -> None:
    s = Series(np.arange(10.0))
    assert s.values.shape == (10, 1) and s.names == ["y"] and s.time is None
    m = Series(np.ones((5, 3)) * np.arange(3), names=["a", "b", "c"])
    assert m.n_channels == 3 and m.select("c").values[:, 0].tolist() == [2.0] * 5


def test_list_and_pandas_inputs() -> None:
    assert Series.load([1, 2, 3, 4]).n_samples == 4
    idx = pd.date_range("2020-01-01", periods=6, freq="MS")
    s = Series.load(pd.Series(np.arange(6.0), index=idx, name="sales"))
    assert s.names == ["sales"] and s.is_datetime and s.freq == "MS"
    assert s.time_label(5) == "2020-06-01"
    assert s.future_labels(2) == ["2020-07-01", "2020-08-01"]


def test_csv_time_column_detected_and_columns(tmp_path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("date,a,b,label\n2021-01-01,1,10,x\n2021-01-02,2,,y\n2021-01-03,3,30,z\n")
    s = Series.load(p)
    assert s.names == ["a", "b"] and s.is_datetime and s.n_missing == 1
    assert Series.load(p, columns="b").names == ["b"]
    with pytest.raises(SeriesError, match="unknown column"):
        Series.load(p, columns="nope")


def test_csv_numeric_time_named(tmp_path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("t,v\n0.5,1\n1.5,2\n2.0,3\n")
    s = Series.load(p, time="t")
    assert s.t_numeric().tolist() == [0.5, 1.5, 2.0] and s.freq is None


def test_json_forms(tmp_path) -> None:
    p = tmp_path / "a.json"
    p.write_text(
        json.dumps(
            {"values": [[1, 2], [3, 4], [5, 6]], "names": ["u", "v"], "coords": [[0, 0], [1, 0]]}
        )
    )
    s = Series.load(p)
    assert s.names == ["u", "v"] and s.coords.shape == (2, 2)
    p.write_text(json.dumps({"x": [1, 2, 3], "y": [4, 5, 6]}))
    assert Series.load(p).n_channels == 2


def test_npy_roundtrip(tmp_path) -> None:
    p = tmp_path / "a.npy"
    np.save(p, np.arange(12.0).reshape(6, 2))
    assert Series.load(p).values.shape == (6, 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "empty"),
        ([np.nan, np.nan], "missing"),
        ([1.0, np.inf, 2.0], "infinite"),
        (["a", "b"], "numbers"),
        (5.0, "single number"),
        (np.zeros((2, 2, 2)), "1-D"),
    ],
)
def test_bad_values(data, message) -> None:
    with pytest.raises(SeriesError, match=message):
        Series(data)


def test_bad_time_index() -> None:
    with pytest.raises(SeriesError, match="duplicate"):
        Series([1, 2, 3], time=[0, 1, 1])
    with pytest.raises(SeriesError, match="not sorted"):
        Series([1, 2, 3], time=[0, 2, 1])
    with pytest.raises(SeriesError, match="must match"):
        Series([1, 2, 3], time=[0, 1])


def test_bad_files(tmp_path) -> None:
    with pytest.raises(SeriesError, match="file not found"):
        Series.load(tmp_path / "missing.csv")
    ragged = tmp_path / "r.json"
    ragged.write_text("[[1, 2], [3]]")
    with pytest.raises(SeriesError, match="ragged"):
        Series.load(ragged)
    ragged.write_text('{"a": [1, 2, 3], "b": [1]}')
    with pytest.raises(SeriesError, match="ragged"):
        Series.load(ragged)
    text = tmp_path / "t.csv"
    text.write_text("v\n1\nhello\n3\n")
    with pytest.raises(SeriesError, match="non-numeric"):
        Series.load(text)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(SeriesError):
        Series.load(empty)
    odd = tmp_path / "a.xlsx"
    odd.write_text("x")
    with pytest.raises(SeriesError, match="unsupported"):
        Series.load(odd)


def test_errors_are_chronoken_errors() -> None:
    assert issubclass(SeriesError, ChronokenError)


def test_require_short_and_constant() -> None:
    s = Series(np.ones(5))
    with pytest.raises(SeriesError, match="at least 10"):
        s.require("arima", 10)
    with pytest.raises(SeriesError, match="constant"):
        s.require("ssa", 3, allow_constant=False)


def test_fill_gaps_and_filled() -> None:
    s = Series([1.0, np.nan, 3.0, np.nan])
    assert s.filled()[:, 0].tolist() == [1.0, 2.0, 3.0, 3.0]
    assert features.longest_gap(np.array([1, np.nan, np.nan, 2, np.nan])) == 2


def test_detect_period_seasonal_and_noise() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(240)
    assert features.detect_period(np.sin(2 * np.pi * t / 12) + 0.2 * rng.normal(size=240)) == 12
    assert features.detect_period(rng.normal(size=240)) is None


def test_describe_states_the_facts() -> None:
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data
    text = Series.load(co2).describe()
    assert "Length 2284 observations" in text
    assert "Missing values: 59" in text
    assert "increasing trend" in text
    assert "strongest period 52" in text  # weekly data, yearly cycle
    nile = sm.datasets.nile.load_pandas().data
    text = Series.load(nile).describe()
    assert "from 1871 to 1970" in text and "Missing values: none." in text


def test_describe_multichannel_spatial_and_constant() -> None:
    s = Series(np.c_[np.ones(50), np.arange(50.0)], names=["a", "b"], coords=[[0, 0], [3, 4]])
    text = s.describe()
    assert "Channel 'a': constant at 1" in text
    assert "Spatial: 2 sensors with 2-D coordinates" in text
    with pytest.raises(SeriesError, match="coordinates"):
        Series(np.ones((5, 2)), coords=[[0, 0]])


def test_describe_is_computed_once(monkeypatch) -> None:
    s = Series(np.sin(np.arange(100) / 5.0))
    first = s.describe()
    calls = []
    monkeypatch.setattr(features, "adf_pvalue", lambda y: calls.append(1) or 0.5)
    assert s.describe() is first and calls == []


def test_run_tool_accepts_a_bundled_example_name() -> None:
    from chronoken import run_tool

    result = run_tool("changepoints", "nile")
    assert result.change_points == [28]
    with pytest.raises(ChronokenError, match="neither a file nor a bundled example"):
        run_tool("changepoints", "no_such_example")
