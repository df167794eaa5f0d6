"""One channel end to end: period, differencing, stepwise search, ML fit, forecast, diagnostics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chronoken import features
from chronoken.errors import SeriesError, ToolError
from chronoken.tools import _arima_select as sel
from chronoken.tools._arima_css import MIN_ROOT, Spec, difference, full_polys, min_root
from chronoken.tools._arima_fit import MlFit, estimate, evaluate, ljung_box
from chronoken.tools.base import Candidate, Forecast

if TYPE_CHECKING:
    from chronoken.series import Series
    from chronoken.tools.arima import ArimaArgs, ArimaChannel

#: The stepwise search runs on at most this many of the latest points (CSS fits are cheap).
CSS_WINDOW = 5000
#: Maximum-likelihood coefficients are estimated on at most this many of the latest points.
ML_WINDOW = 1000
#: How many of the best CSS candidates are refitted by exact likelihood before the final choice.
ML_REFITS = 3
#: Above this many points only the best CSS candidate is refitted by likelihood (speed).
ML_REFITS_MAX_N = 600
#: Further CSS candidates tried when likelihood fits land on the unit circle.
ML_EXTRA_TRIES = 4
#: Among models within this many criterion units of the best, the one with the fewest
#: coefficients is chosen (Burnham & Anderson's "substantial support"); 0 gives auto.arima's rule.
PARSIMONY_DELTA = 2.0


def default_horizon(s: int) -> int:
    """Two seasonal cycles (at most 200 steps), or 10 steps without seasonality (as R's forecast)."""
    return min(2 * s, 200) if s > 1 else 10


def horizon_steps(
    series: Series, horizon: int | None, unit: str | None
) -> tuple[int | None, str | None]:
    """(forecast steps, note): a horizon in calendar units converted with the series' frequency."""
    if horizon is None or unit in (None, "step"):
        return horizon, None
    if not (series.is_datetime and series.freq):
        return horizon, (
            f"horizon {horizon} {unit}(s) read as {horizon} steps: the series has no "
            "regular dates to convert calendar time with."
        )
    import pandas as pd

    step = {
        "minute": pd.Timedelta(minutes=1),
        "hour": pd.Timedelta(hours=1),
        "day": pd.Timedelta(days=1),
        "week": pd.Timedelta(weeks=1),
        "month": pd.DateOffset(months=1),
        "quarter": pd.DateOffset(months=3),
        "year": pd.DateOffset(years=1),
    }[unit]
    last = pd.Timestamp(series.time[-1])
    try:
        n = len(pd.date_range(last, last + step * horizon, freq=series.freq)) - 1
    except (ValueError, OverflowError):
        return horizon, f"horizon {horizon} {unit}(s) could not be converted; read as steps."
    steps = int(min(max(n, 1), 10_000))
    return steps, f"horizon {horizon} {unit}(s) = {steps} steps at frequency {series.freq}."


def fit_channel(
    series: Series, j: int, args: ArimaArgs, min_samples: int, horizon: int | None = None
) -> ArimaChannel:
    """Select, fit and forecast channel ``j`` of ``series``; ``horizon`` None: the default."""
    from chronoken.tools.arima import ArimaChannel, LjungBox

    name = series.names[j]
    y = np.asarray(series.channel(j), dtype=float)
    observed = ~np.isnan(y)
    n_obs = int(observed.sum())
    if n_obs < min_samples:
        raise SeriesError(
            f"arima needs at least {min_samples} observed values per channel; channel '{name}' has "
            f"{n_obs}. Provide a longer series or drop that channel."
        )
    notes: list[str] = []
    n_missing = int(len(y) - n_obs)
    if n_missing:
        notes.append(
            f"{n_missing} missing value(s): the period, differencing tests and order search used "
            "linear interpolation; the final fit and forecasts skip them natively in SARIMAX's "
            "Kalman filter (no imputation)."
        )
    if np.nanmax(y) == np.nanmin(y):
        return _constant_channel(series, name, y, n_obs, n_missing, args, notes, horizon)

    first, last = int(np.argmax(observed)), int(len(y) - 1 - np.argmax(observed[::-1]))
    core = features.fill_gaps(y[first : last + 1])
    n = len(core)

    s, source, fixed_s = _period(core, series.freq, args)
    cw = core[-CSS_WINDOW:]
    plan = _plan(cw, len(y), s, series.freq, args, fixed_s, notes)
    d, D, s_arima, exog, k_fourier, s_f = (
        plan.d,
        plan.D,
        plan.s_arima,
        plan.exog,
        plan.k_fourier,
        plan.fourier_period,
    )
    limits = _limits(args, len(cw), s_arima)
    w = difference(cw, d, D, s_arima)
    xw = None if exog is None else difference(exog[first : last + 1][-len(cw) :], d, 0, 1)
    if len(w) < 8:
        raise SeriesError(
            f"channel '{name}': after differencing (d={d}, D={D}, s={s_arima}) only {len(w)} "
            "values are left. Provide a longer series or set seasonal=False."
        )
    search = sel.stepwise(w, d, D, s_arima, limits, args.criterion, args.max_models, xw)
    if search.capped:
        notes.append(f"the stepwise search stopped at the cap of {args.max_models} models.")
    horizon = horizon or default_horizon(s)
    exog_future = (
        None if exog is None else sel.fourier(np.arange(len(y), len(y) + horizon), s_f, k_fourier)
    )
    ml, ml_scores = _refit_best(y, search, exog, exog_future, horizon, args, notes)

    if ml.window < len(y):
        search_part = (
            f"the order search used the last {len(cw)} of {n} points and " if len(cw) < n else ""
        )
        notes.append(
            f"for speed {search_part}the coefficients were estimated on the last {ml.window} "
            f"of {len(y)} points; the likelihood, fitted values, residual test and forecasts use "
            "every observation."
        )
    lb = ljung_box(ml.resid, ml.spec)
    if lb["pvalue"] is not None and lb["pvalue"] < 0.05:
        notes.append(
            f"Ljung-Box p = {lb['pvalue']:.3g} < 0.05: the residuals keep some autocorrelation, so "
            "the intervals may be too narrow."
        )
    if not ml.converged:
        notes.append(
            "the likelihood optimiser did not fully converge; coefficients are approximate."
        )
    crit = args.criterion.upper().replace("AICC", "AICc")
    selection = [
        Candidate(
            name=f.spec.name() + _fx(k_fourier),
            score=_finite(f.score(args.criterion)),
            criterion=f"{crit} (CSS approximation, lower is better)"
            + ("" if f.ok else f"; rejected: {f.reason}"),
            selected=False,
        )
        for f in search.fits
    ] + [
        Candidate(
            name=spec.name() + _fx(k_fourier),
            score=_finite(score),
            criterion=f"{crit} (exact likelihood on the estimation window, lower is better)",
            selected=spec == ml.spec,
        )
        for spec, score in ml_scores
    ]
    steps = series.future_labels(horizon)
    forecast = Forecast(
        channel=name,
        steps=steps,
        mean=_floats(ml.mean),
        lower=_floats(ml.lower),
        upper=_floats(ml.upper),
        level=args.level,
    )
    return ArimaChannel(
        channel=name,
        model=ml.spec.name() + _fx(k_fourier),
        order=list(ml.spec.order),
        seasonal_order=list(ml.spec.seasonal_order),
        constant=ml.spec.constant,
        period=s,
        period_source=source,
        fourier_terms=k_fourier,
        fourier_period=s_f,
        params=_rename_exog(ml.params, sel.fourier_names(s_f, k_fourier) if k_fourier else []),
        sigma2=ml.sigma2,
        loglik=_finite(ml.loglik),
        aicc=_finite(ml.aicc),
        aic=_finite(ml.aic),
        bic=_finite(ml.bic),
        n_obs=n_obs,
        n_missing=n_missing,
        estimation_window=ml.window,
        estimation_method=ml.method,
        fit=_errors(y, ml.fitted, s),
        ljung_box=LjungBox(**lb),
        tests=plan.tests,
        converged=ml.converged,
        forecast=forecast,
        selection=selection,
        notes=notes,
    )


@dataclass
class _Plan:
    """Differencing orders and seasonal treatment decided before the order search."""

    d: int
    D: int
    s_arima: int  # period of the seasonal ARIMA lags (1 = none)
    exog: np.ndarray | None  # Fourier terms of shape (n_samples, 2K) for a long period
    k_fourier: int
    fourier_period: float | None
    tests: dict[str, object]


def _plan(
    cw: np.ndarray,
    n_y: int,
    s: int,
    freq: str | None,
    args: ArimaArgs,
    fixed_s: bool,
    notes: list[str],
) -> _Plan:
    """d by KPSS, D by seasonal strength, or Fourier terms for a long period (cw: gap-free
    search window of shape (m,); n_y: length of the full channel)."""
    tests: dict[str, object] = {"period": s}
    if s > sel.MAX_SARIMA_PERIOD and not (args.seasonal_order and fixed_s):
        s_f = sel.exact_period(s, freq)
        d, kpss = (args.order[1], []) if args.order else sel.ndiffs(_deseason(cw, s_f))
        k, k_scores = sel.choose_fourier_k(cw, s_f, d)
        tests.update(
            d=d,
            D=0,
            kpss_pvalues=[round(p, 4) for p in kpss],
            fourier_aicc={str(j): round(v, 3) for j, v in k_scores},
        )
        if not k:
            notes.append(f"Fourier terms for period {s} did not lower the AICc: no seasonal terms.")
            return _Plan(d, 0, 1, None, 0, None, tests)
        notes.append(
            f"period {s_f:g} is too long for seasonal ARIMA lags: the season is modelled by {k} "
            "Fourier harmonic pair(s) (dynamic harmonic regression), K chosen by the AICc of "
            "ARIMA(2,d,0) errors on 0..10 pairs."
        )
        return _Plan(d, 0, 1, sel.fourier(n_y, s_f, k), k, s_f, tests)
    f_s = sel.seasonal_strength(cw, s) if s > 1 else None
    strong = f_s is not None and f_s > sel.SEASONAL_STRENGTH_THRESHOLD
    if args.seasonal_order:
        D = args.seasonal_order[1]
    elif strong and not fixed_s and s not in sel.calendar_periods(freq):
        # A cycle found only in the data may be quasi-periodic (sunspots, business cycles),
        # which STL's adaptive seasonal also scores high: a seasonal difference additionally
        # needs a fixed repeating pattern (classical decomposition strength above the same
        # threshold); otherwise only seasonal AR/MA terms may model the cycle.
        fixed_pattern = features.decompose_strength(cw, s)[1]
        tests["fixed_pattern_strength"] = fixed_pattern
        D = int(fixed_pattern > sel.SEASONAL_STRENGTH_THRESHOLD)
        if not D:
            notes.append(
                f"period {s} was detected in the data (not the calendar) and its pattern is not "
                f"fixed (classical seasonal strength {fixed_pattern:.2f}): no seasonal difference, "
                f"only seasonal AR/MA terms if they lower the criterion. Give seasonal_period={s} "
                "to treat it as a calendar season."
            )
    else:
        D = int(strong)
    d, kpss = (args.order[1], []) if args.order else sel.ndiffs(difference(cw, 0, D, s))
    tests.update(
        d=d,
        D=D,
        kpss_pvalues=[round(p, 4) for p in kpss],
        seasonal_strength=f_s,
        seasonal_strength_threshold=sel.SEASONAL_STRENGTH_THRESHOLD if s > 1 else None,
    )
    return _Plan(d, D, s, None, 0, None, tests)


def _rename_exog(params: dict[str, float], names: list[str]) -> dict[str, float]:
    """SARIMAX calls unnamed regressors x1, x2, ...: give them their Fourier names."""
    mapping = {f"x{i + 1}": n for i, n in enumerate(names)}
    return {mapping.get(k, k): v for k, v in params.items()}


def _fx(k: int) -> str:
    return f" + {k} Fourier pair(s)" if k else ""


def _finite(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in a]


def _period(core: np.ndarray, freq: str | None, args: ArimaArgs) -> tuple[int, str, bool]:
    """(s, how it was chosen, given by the user?)."""
    n = len(core)
    if not args.seasonal:
        return 1, "seasonal terms switched off (seasonal=False)", True
    given = (
        args.seasonal_order[3]
        if args.seasonal_order and len(args.seasonal_order) == 4
        else args.seasonal_period
    )
    if given:
        if given == 1:
            return 1, "seasonal_period=1 given: no seasonality", True
        if n < 2 * given + 2:
            raise SeriesError(
                f"seasonal period {given} needs at least {2 * given + 2} observations; the series has "
                f"{n}. Give a shorter period or set seasonal=False."
            )
        return given, f"given in the arguments ({given})", True
    if args.seasonal_order:
        s, how = sel.choose_period(core, freq, min_cycles=2)
        if s == 1:
            raise SeriesError(
                "a seasonal_order was given but no seasonal period could be found "
                f"({how}). Give it as the fourth number, e.g. [0, 1, 1, 12], or seasonal_period."
            )
        return s, how, False
    s, how = sel.choose_period(core, freq)
    return s, how, False


def _deseason(y: np.ndarray, s: float) -> np.ndarray:
    """y minus its least-squares fit on a constant and the richest Fourier set tried (for KPSS)."""
    x = np.column_stack(
        [np.ones(len(y)), sel.fourier(len(y), s, min(int(s // 2), sel.MAX_FOURIER_K))]
    )
    return y - x @ np.linalg.lstsq(x, y, rcond=None)[0]


def _limits(args: ArimaArgs, n: int, s: int) -> sel.Limits:
    """Search bounds: fixed orders from the arguments, else 0..max, capped at n/3 (auto.arima)."""
    if args.order:
        p_lim, q_lim = (args.order[0],) * 2, (args.order[2],) * 2
    else:
        p_lim, q_lim = (0, min(args.max_p, n // 3)), (0, min(args.max_q, n // 3))
    if s > 1 and args.seasonal_order:
        P_lim, Q_lim = (args.seasonal_order[0],) * 2, (args.seasonal_order[2],) * 2
    elif s > 1:
        cap = n // (3 * s)
        P_lim, Q_lim = (0, min(args.max_seasonal_p, cap)), (0, min(args.max_seasonal_q, cap))
    else:
        P_lim = Q_lim = (0, 0)
    return sel.Limits(p=p_lim, q=q_lim, P=P_lim, Q=Q_lim)


def _refit_best(
    y: np.ndarray,
    search: sel.Search,
    exog: np.ndarray | None,
    exog_future: np.ndarray | None,
    horizon: int,
    args: ArimaArgs,
    notes: list[str],
) -> tuple[MlFit, list[tuple[Spec, float]]]:
    """ML-refit the best CSS candidates (and the simplest near-best one) on the window, keep the
    simplest within PARSIMONY_DELTA of the best criterion, evaluate it on the full series."""
    ok_fits = sorted((f for f in search.fits if f.ok), key=lambda f: f.score(args.criterion))
    ranked = [(f.spec, f.params) for f in ok_fits]
    if ok_fits and PARSIMONY_DELTA > 0:
        # The simplest candidate within PARSIMONY_DELTA of the best is always refitted.
        low = ok_fits[0].score(args.criterion)
        simple = min(
            (f for f in ok_fits if f.score(args.criterion) <= low + PARSIMONY_DELTA),
            key=lambda f: (f.n_params, f.score(args.criterion)),
        )
        ranked = [r for r in ranked if r[0] != simple.spec]
        ranked.insert(min(1, len(ranked)), (simple.spec, simple.params))
    if not ranked:
        # Every candidate has a near-unit root (or could not be fitted): refit the best of them
        # by likelihood from statsmodels' own start values, which enforces stationarity and
        # invertibility; a fixed order is honoured this way too.
        usable = [f for f in search.fits if np.isfinite(getattr(f, args.criterion))]
        usable.sort(key=lambda f: getattr(f, args.criterion))
        base = usable[0].spec if usable else search.fits[0].spec
        ranked = [(base, None)]
        notes.append(
            "every candidate order had an AR or MA root near the unit circle in the CSS search; "
            f"{base.name()} was fitted by maximum likelihood with stationarity and invertibility "
            "enforced."
        )
    window = min(ML_WINDOW, len(y))
    # Several exact refits only where they are cheap: short windows without missing values
    # (with missing values the Kalman-filter likelihood is about ten times dearer).
    cheap = not np.isnan(y[-window:]).any()
    k = ML_REFITS if window <= ML_REFITS_MAX_N and cheap else 1
    extra = ML_EXTRA_TRIES if cheap else 1
    scores: list[tuple[Spec, float]] = []
    best: tuple[float, Spec, np.ndarray, bool, str, int] | None = None
    fallback: tuple[float, Spec, np.ndarray, bool, str, int] | None = None
    accepted = 0
    good: list[tuple[float, Spec, np.ndarray, bool, str, int]] = []
    for spec, start in ranked[: k + extra]:
        if accepted >= k:
            break
        try:
            params, llf, conv, method, used = estimate(y, spec, exog, start, window)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            notes.append(f"{spec.name()} could not be fitted by likelihood ({exc}).")
            continue
        score = _criterion(llf, len(params) + 1, y[-used:], spec, args.criterion)
        k_lin = len(params) - spec.n_arma
        root = min(min_root(p) for p in full_polys(spec, params[k_lin:]))
        fit = (score, spec, params, conv, method, used)
        if root < MIN_ROOT and len(ranked) > 1:
            # As auto.arima: a likelihood fit on the unit circle is dropped for the next best.
            scores.append((spec, float("inf")))
            if fallback is None or score < fallback[0]:
                fallback = fit
            continue
        accepted += 1
        scores.append((spec, score))
        if np.isfinite(score):
            good.append(fit)
    if good:
        top = min(good, key=lambda f: f[0])
        best = min(
            (f for f in good if f[0] <= top[0] + PARSIMONY_DELTA), key=lambda f: (len(f[2]), f[0])
        )
        if best is not top:
            crit = args.criterion.upper().replace("AICC", "AICc")
            notes.append(
                f"{best[1].name()} was chosen over {top[1].name()} ({crit} lower by "
                f"{best[0] - top[0]:.2f}): the model with fewer coefficients within "
                f"{PARSIMONY_DELTA:g} units of the best."
            )
    if best is None and fallback is not None:
        best = fallback
        notes.append(
            f"every likelihood fit had a root near the unit circle; {fallback[1].name()} was kept."
        )
    if best is None:
        raise ToolError(
            "no ARIMA model could be fitted by maximum likelihood to this channel; check it for "
            "extreme values or try seasonal=False."
        )
    _, spec, params, conv, method, used = best
    try:
        ml = evaluate(y, spec, exog, exog_future, params, horizon, args.level, conv, method, used)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        raise ToolError(f"the fitted {spec.name()} could not be evaluated ({exc}).") from None
    return ml, scores


def _criterion(llf: float, k: int, yw: np.ndarray, spec: Spec, criterion: str) -> float:
    """AIC, AICc or BIC from a log-likelihood with k estimated quantities on window yw."""
    n = int(np.sum(~np.isnan(yw))) - spec.d - spec.D * spec.s
    if not np.isfinite(llf) or n <= k + 1:
        return float("inf")
    aic = -2.0 * llf + 2.0 * k
    if criterion == "aic":
        return aic
    if criterion == "bic":
        return -2.0 * llf + k * np.log(n)
    return aic + 2.0 * k * (k + 1) / (n - k - 1)


def _errors(y: np.ndarray, fitted: np.ndarray, s: int) -> dict[str, float]:
    """RMSE, MAE, MASE (scaled by the in-sample seasonal-naive MAE) and MAPE (when the series
    never reaches zero) of the one-step fitted values."""
    ok = ~np.isnan(y) & ~np.isnan(fitted)
    e = y[ok] - fitted[ok]
    out = {"rmse": float(np.sqrt(np.mean(e**2))), "mae": float(np.mean(np.abs(e)))}
    lag = s if s > 1 and len(y) > 2 * s else 1
    naive = np.abs(y[lag:] - y[:-lag])
    naive = naive[~np.isnan(naive)]
    if len(naive) and np.mean(naive) > 0:
        out["mase"] = out["mae"] / float(np.mean(naive))
    obs = y[ok]
    if np.all(obs > 0) or np.all(obs < 0):
        out["mape"] = float(100.0 * np.mean(np.abs(e / obs)))
    return out


def _constant_channel(
    series: Series,
    name: str,
    y: np.ndarray,
    n_obs: int,
    n_missing: int,
    args: ArimaArgs,
    notes: list[str],
    horizon: int | None,
) -> ArimaChannel:
    """A constant channel: the model is its mean with zero variance, as auto.arima returns."""
    from chronoken.tools.arima import ArimaChannel, LjungBox

    c = float(y[~np.isnan(y)][0])
    horizon = horizon or default_horizon(1)
    notes.append(
        f"the channel is constant ({c:g}): the model is that constant with zero variance, as "
        "auto.arima returns; the forecast repeats it with a zero-width interval."
    )
    forecast = Forecast(
        channel=name,
        steps=series.future_labels(horizon),
        mean=[c] * horizon,
        lower=[c] * horizon,
        upper=[c] * horizon,
        level=args.level,
    )
    return ArimaChannel(
        channel=name,
        model="ARIMA(0,0,0) with mean (constant series)",
        order=[0, 0, 0],
        seasonal_order=[0, 0, 0, 0],
        constant=True,
        period=1,
        period_source="none: the channel is constant",
        params={"intercept": c},
        sigma2=0.0,
        loglik=None,
        aicc=None,
        aic=None,
        bic=None,
        n_obs=n_obs,
        n_missing=n_missing,
        estimation_window=n_obs,
        estimation_method="none",
        fit={"rmse": 0.0, "mae": 0.0},
        ljung_box=LjungBox(statistic=None, pvalue=None, lags=0, df=None),
        tests={"d": 0, "D": 0, "kpss_pvalues": [], "seasonal_strength": None},
        converged=True,
        forecast=forecast,
        selection=[
            Candidate(
                name="ARIMA(0,0,0) with mean",
                score=None,
                criterion="none (constant series)",
                selected=True,
            )
        ],
        notes=notes,
    )
