"""Maximum-likelihood fit of a chosen seasonal ARIMA with statsmodels, and its outputs.

The coefficients are estimated over the last ``window`` points of the differenced series,
starting from the CSS estimates: by the innovations algorithm (``innovations_mle``, exact
Gaussian likelihood) when the window has no missing values, else by SARIMAX's Kalman filter.
Then one Kalman-filter pass of the full SARIMAX model (differencing in the state, so missing
values and the series' start are handled exactly) over every observation gives the likelihood,
one-step fitted values, residuals and the forecast with its prediction interval.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from chronoken.tools._arima_css import Spec

#: Most points the Kalman-filter likelihood is maximised over (used when values are missing).
KALMAN_WINDOW = 600


@dataclass
class MlFit:
    """A fitted model. Arrays are of shape (n_samples,) unless stated; NaN where undefined."""

    spec: Spec
    params: dict[str, float]
    param_vector: np.ndarray
    sigma2: float
    loglik: float
    n_eff: int
    aic: float
    aicc: float
    bic: float
    converged: bool
    method: str
    window: int
    fitted: np.ndarray
    resid: np.ndarray
    mean: np.ndarray  # (horizon,)
    lower: np.ndarray  # (horizon,)
    upper: np.ndarray  # (horizon,)


def _model(y: np.ndarray, spec: Spec, exog: np.ndarray | None, simple: bool):  # -> SARIMAX
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    return SARIMAX(
        y,
        exog=exog if exog is not None and exog.shape[1] else None,
        order=spec.order,
        seasonal_order=spec.seasonal_order,
        trend="c" if spec.constant else "n",
        simple_differencing=simple,
        concentrate_scale=True,
    )


def estimate(
    y: np.ndarray,
    spec: Spec,
    exog: np.ndarray | None,
    start: np.ndarray | None,
    window: int,
    maxiter: int = 100,
) -> tuple[np.ndarray, float, bool, str, int]:
    """ML parameters of ``spec`` (SARIMAX layout, scale concentrated out) from the last
    ``window`` points of y (shape (n,), NaN allowed).

    Without missing values in the window the exact Gaussian likelihood of the differenced series
    is maximised with the innovations algorithm (statsmodels' ``innovations_mle``, about ten
    times faster than the Kalman filter for seasonal models); the mean and regression
    coefficients are those of the CSS fit. With missing values SARIMAX's Kalman filter is used.
    Returns (params, log-likelihood on the window, converged, method, window used).
    """
    xw = None if exog is None or not exog.shape[1] else exog[-window:]
    if not np.isnan(y[-window:]).any():
        try:
            fit = _estimate_innovations(y[-window:], spec, xw, start, maxiter)
            return (*fit, "innovations_mle", window)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            pass  # e.g. start values outside the stationary region: use the Kalman filter
    # The Kalman-filter likelihood is about ten times dearer: a shorter window and fewer steps.
    window = min(window, KALMAN_WINDOW)
    yw = y[-window:]
    xw = None if xw is None else xw[-window:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _model(yw, spec, xw, simple=True)
        if not model.param_names:  # nothing to estimate, e.g. ARIMA(0,1,0) without drift
            return np.zeros(0), float(model.loglike(np.zeros(0))), True, "statespace", window
        if start is not None and (
            len(start) != len(model.param_names) or not np.all(np.isfinite(start))
        ):
            start = None
        res = model.fit(
            start_params=start,
            disp=False,
            cov_type="none",
            method="lbfgs",
            maxiter=min(maxiter, 50),
        )
    converged = bool((res.mle_retvals or {}).get("converged", True))
    return np.asarray(res.params, dtype=float), float(res.llf), converged, "statespace", window


def _estimate_innovations(
    yw: np.ndarray, spec: Spec, xw: np.ndarray | None, start: np.ndarray | None, maxiter: int
) -> tuple[np.ndarray, float, bool]:
    from statsmodels.tsa.arima.estimators.innovations import innovations_mle

    from chronoken.tools._arima_css import difference, full_polys

    w = difference(yw, spec.d, spec.D, spec.s)
    k_c, k_x = int(spec.constant), 0 if xw is None else xw.shape[1]
    beta = np.zeros(0)
    if k_x:
        xd = difference(xw, spec.d, spec.D, spec.s)
        if start is not None and len(start) >= k_c + k_x:
            beta = np.asarray(start[k_c : k_c + k_x], dtype=float)
        else:
            beta = np.linalg.lstsq(np.column_stack([np.ones(len(w)), xd]), w, rcond=None)[0][1:]
        w = w - xd @ beta
    mu = float(np.mean(w)) if k_c else 0.0
    x = w - mu
    arma_start = None
    if start is not None and len(start) == k_c + k_x + spec.n_arma:
        arma_start = np.r_[np.asarray(start[k_c + k_x :], dtype=float), np.var(x)]
    seasonal = (spec.P, 0, spec.Q, spec.s) if spec.s > 1 and (spec.P or spec.Q) else (0, 0, 0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, details = innovations_mle(
            x,
            order=(spec.p, 0, spec.q),
            seasonal_order=seasonal,
            demean=False,
            start_params=arma_start,
            minimize_kwargs={"options": {"maxiter": maxiter}},
        )
    arma = np.asarray(p.params, dtype=float)[:-1]  # drop sigma2 (SARIMAX concentrates it)
    ar, _ = full_polys(spec, arma)
    intercept = [mu * float(np.sum(ar))] if k_c else []
    out = details.minimize_results
    # BFGS often stops with "precision loss" at the optimum; a vanishing gradient means converged.
    jac = np.asarray(getattr(out, "jac", [np.inf]), dtype=float)
    converged = bool(out.success) or (out.status == 2 and float(np.max(np.abs(jac))) < 1e-3)
    return np.r_[intercept, beta, arma], float(-out.fun), converged


def evaluate(
    y: np.ndarray,
    spec: Spec,
    exog: np.ndarray | None,
    exog_future: np.ndarray | None,
    params: np.ndarray,
    horizon: int,
    level: float,
    converged: bool,
    method: str,
    window: int,
) -> MlFit:
    """Filter the full series with ``params``: likelihood, fitted values, residuals, forecast."""
    from statsmodels.tsa.statespace import kalman_filter as kf

    keep_forecasts = (
        kf.MEMORY_NO_PREDICTED_COV
        | kf.MEMORY_NO_FILTERED
        | kf.MEMORY_NO_GAIN
        | kf.MEMORY_NO_SMOOTHING
        | kf.MEMORY_NO_STD_FORECAST
        | kf.MEMORY_NO_PREDICTED
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _model(y, spec, exog, simple=False)
        names = list(model.param_names)
        res = model.filter(params, cov_type="none", conserve_memory=keep_forecasts)
        fc = res.get_forecast(
            horizon, exog=exog_future if exog is not None and exog.shape[1] else None
        )
        mean = np.asarray(fc.predicted_mean, dtype=float)
        ci = np.asarray(fc.conf_int(alpha=1.0 - level), dtype=float)
    burn = spec.d + spec.D * spec.s
    fitted = np.asarray(res.filter_results.forecasts[0], dtype=float).copy()
    fitted[:burn] = np.nan
    fitted[np.isnan(y)] = np.nan
    resid = y - fitted
    n_eff = int(np.sum(~np.isnan(resid)))
    k = len(params) + 1  # + sigma2 (concentrated out, but estimated)
    loglik = float(res.llf)
    aic = -2.0 * loglik + 2.0 * k
    aicc = aic + 2.0 * k * (k + 1) / max(n_eff - k - 1, 1)
    bic = -2.0 * loglik + k * np.log(max(n_eff, 1))
    return MlFit(
        spec=spec,
        params={n: float(v) for n, v in zip(names, params, strict=True)},
        param_vector=np.asarray(params, dtype=float),
        sigma2=float(res.scale),
        loglik=loglik,
        n_eff=n_eff,
        aic=float(aic),
        aicc=float(aicc),
        bic=float(bic),
        converged=converged,
        method=method,
        window=window,
        fitted=fitted,
        resid=resid,
        mean=mean,
        lower=ci[:, 0],
        upper=ci[:, 1],
    )


def ljung_box(resid: np.ndarray, spec: Spec) -> dict[str, float | int | None]:
    """Ljung-Box test of the residuals (NaN dropped) at lag min(2s or 10, n/5), with
    degrees of freedom reduced by p + q + P + Q as Hyndman's checkresiduals does."""
    from statsmodels.stats.diagnostic import acorr_ljungbox

    r = resid[~np.isnan(resid)]
    n = len(r)
    model_df = spec.n_arma
    lag = min(2 * spec.s if spec.seasonal_order[3] else 10, n // 5)
    lag = min(max(lag, model_df + 3), n - 1)
    if lag <= model_df or n < 8 or np.std(r) == 0:
        return {"statistic": None, "pvalue": None, "lags": lag, "df": None}
    out = acorr_ljungbox(r, lags=[lag], model_df=model_df)
    return {
        "statistic": float(out["lb_stat"].iloc[0]),
        "pvalue": float(out["lb_pvalue"].iloc[0]),
        "lags": int(lag),
        "df": int(lag - model_df),
    }
