"""Generate the bundled example series in ``chronoken/examples/`` (small CSV files + index.json).

Run from the repository root::

    python examples/make_examples.py            # writes chronoken/examples/
    python examples/make_examples.py --out DIR  # somewhere else

Real data comes from statsmodels' datasets (Nile flow, Mauna Loa CO2, sunspots); the damped
oscillator and the spatial sensor field are simulated with a fixed seed, so the files are the same
on every run. A spatial example's sensor positions go in ``<name>_coords.csv``, which the example
loader (chronoken.agent.examples) attaches to that series.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "chronoken" / "examples"


def nile() -> pd.DataFrame:
    """Annual flow of the Nile at Aswan, 1871-1970 (10^8 m^3); a drop around 1898."""
    import statsmodels.api as sm

    d = sm.datasets.nile.load_pandas().data
    return pd.DataFrame({"year": d["year"].astype(int), "flow": d["volume"]})


def co2() -> pd.DataFrame:
    """Monthly mean Mauna Loa CO2 (ppm), 1958-03 to 2001-12: weekly data averaged per month,
    months without any observation filled by linear interpolation."""
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate(method="linear")
    return pd.DataFrame(
        {"date": monthly.index.strftime("%Y-%m-%d"), "co2": monthly.round(3).to_numpy()}
    )


def sunspots() -> pd.DataFrame:
    """Yearly mean sunspot number, 1700-2008 (about an 11-year cycle)."""
    import statsmodels.api as sm

    d = sm.datasets.sunspots.load_pandas().data
    return pd.DataFrame({"year": d["YEAR"].astype(int), "sunspots": d["SUNACTIVITY"]})


def oscillator(
    n: int = 200, dt: float = 0.1, omega: float = 1.5, zeta: float = 0.08
) -> pd.DataFrame:
    """A damped harmonic oscillator x'' + 2 zeta omega x' + omega^2 x = 0, x(0)=2, x'(0)=0,
    (omega 1.5 rad/s, zeta 0.08) sampled every 0.1 s for 20 s with noise (sd 0.02); channels
    position and velocity, time t in seconds."""
    rng = np.random.default_rng(SEED)
    t = np.arange(n) * dt
    wd = omega * np.sqrt(1 - zeta**2)
    a, b = 2.0, 2.0 * zeta * omega / wd  # x = e^{-zeta omega t} (a cos wd t + b sin wd t)
    env = np.exp(-zeta * omega * t)
    x = env * (a * np.cos(wd * t) + b * np.sin(wd * t))
    v = env * (
        -zeta * omega * (a * np.cos(wd * t) + b * np.sin(wd * t))
        + wd * (-a * np.sin(wd * t) + b * np.cos(wd * t))
    )
    return pd.DataFrame(
        {
            "t": np.round(t, 3),
            "position": np.round(x + rng.normal(0, 0.02, n), 4),
            "velocity": np.round(v + rng.normal(0, 0.02, n), 4),
        }
    )


def sensors(n: int = 240, change_at: int = 150) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Six sensors at (x, y) positions (km) see a wave travelling along x (period 20 days,
    wavelength 8 km); from day 150 (2023-05-31) a source near (1, 1) raises each sensor's level
    by 2 exp(-distance / 3). Daily data from 2023-01-01, 240 days; noise sd 0.2."""
    rng = np.random.default_rng(SEED + 1)
    xy = np.array([[0.0, 0.0], [2.0, 0.5], [4.0, 1.0], [0.5, 3.0], [2.5, 3.5], [4.5, 4.0]])
    t = np.arange(n)[:, None]
    wave = np.sin(2 * np.pi * (t / 20.0 - xy[None, :, 0] / 8.0))
    dist = np.hypot(xy[:, 0] - 1.0, xy[:, 1] - 1.0)
    shift = (t >= change_at) * (2.0 * np.exp(-dist / 3.0))[None, :]
    values = wave + shift + rng.normal(0, 0.2, (n, len(xy)))
    names = [f"s{j + 1}" for j in range(len(xy))]
    data = pd.DataFrame(np.round(values, 4), columns=names)
    data.insert(0, "date", pd.date_range("2023-01-01", periods=n, freq="D").strftime("%Y-%m-%d"))
    coords = pd.DataFrame({"sensor": names, "x": xy[:, 0], "y": xy[:, 1]})
    return data, coords


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict[str, str]] = {}
    for name, fn in (
        ("nile", nile),
        ("co2", co2),
        ("sunspots", sunspots),
        ("oscillator", oscillator),
    ):
        fn().to_csv(out / f"{name}.csv", index=False)
        index[name] = {"file": f"{name}.csv", "description": " ".join(fn.__doc__.split())}
    data, coords = sensors()
    data.to_csv(out / "sensors.csv", index=False)
    coords.to_csv(out / "sensors_coords.csv", index=False)
    index["sensors"] = {"file": "sensors.csv", "description": " ".join(sensors.__doc__.split())}
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"wrote {len(index)} examples to {out}")


if __name__ == "__main__":
    main()
