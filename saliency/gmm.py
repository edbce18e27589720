"""Gaussian mixture models fitted by expectation-maximisation, in NumPy.

The localisation step (paper Sec. 3.2) models the colours of the salient pixels and of the
non-salient pixels with one mixture each. A mixture of K full-covariance Gaussians in D
dimensions has the density

    p(x) = sum_k  w_k N(x | mu_k, Sigma_k),
    log N(x | mu, Sigma) = -1/2 (D log 2 pi + log det Sigma + (x - mu)^T Sigma^-1 (x - mu)).

EM alternates two steps until the mean log-likelihood stops improving:

    E-step   r_nk = w_k N(x_n | mu_k, Sigma_k) / p(x_n)         (responsibilities)
    M-step   N_k = sum_n r_nk,  w_k = N_k / N,  mu_k = sum_n r_nk x_n / N_k,
             Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg I

Everything is float64: this is statistics on a few thousand points, not the network. The
densities are evaluated in log space through a Cholesky factor L (inverting the triangular
D x D factor, never the covariance itself) and summed over components with log-sum-exp, so
nothing under- or overflows. The start is k-means++ seeding followed by a few Lloyd iterations.

Degenerate input is handled rather than refused: with fewer distinct points than components,
k-means++ runs out of new centres and the mixture simply has fewer components
(``n_components_``); a constant colour gives one component whose covariance is ``reg_covar * I``.
"""

import numpy as np

_LOG_2PI = np.log(2.0 * np.pi)


def logsumexp(a, axis=-1):
    """log(sum(exp(a), axis)) without overflow: shift by the maximum first.

    Parameters
    ----------
    a : ndarray
    axis : int

    Returns
    -------
    ndarray, ``a`` with ``axis`` removed.
    """
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # all -inf along the axis: result is -inf, not nan
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return np.squeeze(out, axis=axis)


def kmeans_plus_plus(X, k, rng):
    """Choose up to ``k`` initial centres by k-means++ (Arthur & Vassilvitskii, 2007).

    The first centre is a uniformly random point; each next one is a point drawn with
    probability proportional to its squared distance to the nearest centre chosen so far.
    When every point coincides with a centre (fewer distinct points than ``k``) it stops early.

    Parameters
    ----------
    X : ndarray, (N, D) float64
    k : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, (k', D) with 1 <= k' <= k.
    """
    centres = [X[rng.integers(len(X))]]
    d2 = np.sum((X - centres[0]) ** 2, axis=1)  # (N,) squared distance to nearest centre
    while len(centres) < k:
        total = d2.sum()
        if total <= 0.0:
            break  # all points sit on existing centres
        c = X[rng.choice(len(X), p=d2 / total)]
        centres.append(c)
        d2 = np.minimum(d2, np.sum((X - c) ** 2, axis=1))
    return np.array(centres)


def _nearest(X, centres):
    """Index of the nearest centre for each row of X: (N, D), (K, D) -> (N,)."""
    d2 = np.sum((X[:, None, :] - centres[None, :, :]) ** 2, axis=2)  # (N, K)
    return np.argmin(d2, axis=1)


class GMM:
    """Gaussian mixture with full covariances, fitted by EM.

    Parameters
    ----------
    n_components : int
        Maximum number of components K (fewer are used if the data has fewer distinct points).
    max_iter : int
        Maximum number of EM iterations.
    tol : float
        Stop when the mean log-likelihood per sample improves by less than this.
    reg_covar : float
        Added to the diagonal of every covariance, in the squared units of the data; keeps
        the covariances positive definite (a flat colour region has zero variance).
    kmeans_iter : int
        Lloyd iterations after k-means++ seeding, before EM.
    seed : int or numpy.random.Generator or None
        Source of randomness for the initialisation.

    Attributes (after ``fit``)
    --------------------------
    weights_ : ndarray, (K',)
    means_ : ndarray, (K', D)
    covs_ : ndarray, (K', D, D)
    n_components_ : int, K' <= n_components
    n_iter_ : int, EM iterations run
    converged_ : bool
    lower_bound_ : float, final mean log-likelihood per sample
    """

    def __init__(self, n_components=5, max_iter=100, tol=1e-3, reg_covar=1e-6,
                 kmeans_iter=10, seed=0):
        if int(n_components) < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        if reg_covar < 0:
            raise ValueError(f"reg_covar must be >= 0, got {reg_covar}")
        self.n_components = int(n_components)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.reg_covar = float(reg_covar)
        self.kmeans_iter = int(kmeans_iter)
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def fit(self, X):
        """Fit the mixture to the rows of ``X``.

        Parameters
        ----------
        X : array_like, (N, D), N >= 1, finite

        Returns
        -------
        self
        """
        X = self._check(X, fitting=True)
        rng = np.random.default_rng(self.seed)

        # Initialisation: k-means++ centres, a few Lloyd steps, then hard responsibilities.
        centres = kmeans_plus_plus(X, self.n_components, rng)
        for _ in range(self.kmeans_iter):
            assign = _nearest(X, centres)
            used = np.unique(assign)
            centres = np.array([X[assign == j].mean(axis=0) for j in used])
        resp = np.zeros((len(centres), len(X)))  # (K, N)
        resp[_nearest(X, centres), np.arange(len(X))] = 1.0
        self._m_step(X, resp)

        # EM.
        self.converged_ = False
        self.lower_bound_ = -np.inf
        self.n_iter_ = 0
        for it in range(1, self.max_iter + 1):
            bound = self.em_step(X)
            self.n_iter_ = it
            if abs(bound - self.lower_bound_) < self.tol:
                self.converged_ = True
                self.lower_bound_ = bound
                break
            self.lower_bound_ = bound
        return self

    def em_step(self, X):
        """One EM step on the rows of ``X`` (N, D): the E-step's responsibilities under the current
        weights, means and covariances, then the M-step's new ones. Returns the mean log-likelihood
        per sample under the parameters before the step."""
        log_joint = self._log_joint(X)               # (K, N) log w_k + log N(x_n | k)
        log_px = logsumexp(log_joint, axis=0)        # (N,)
        resp = np.exp(log_joint - log_px[None, :])   # (K, N), columns sum to 1
        self._m_step(X, resp)
        return float(log_px.mean())

    def _m_step(self, X, resp):
        """Weights, means and covariances from responsibilities ``resp`` (K, N).

        Components that no sample is responsible for are dropped. (Internally arrays are
        (K, N), component-major, so that sums over components run along whole rows.)
        """
        nk = resp.sum(axis=1)                            # (K,)
        keep = nk > 1e-10 * len(X)
        resp, nk = resp[keep], nk[keep]
        D = X.shape[1]
        self.weights_ = nk / nk.sum()                                  # (K,)
        self.means_ = (resp @ X) / nk[:, None]                         # (K, D)
        diff = X[None, :, :] - self.means_[:, None, :]                 # (K, N, D)
        weighted = diff * resp[:, :, None]                             # (K, N, D)
        covs = weighted.transpose(0, 2, 1) @ diff / nk[:, None, None]  # (K, D, D)
        covs += self.reg_covar * np.eye(D)
        self.covs_ = covs
        self.n_components_ = len(nk)

    # --------------------------------------------------------------- densities
    def _log_gauss(self, X):
        """log N(x_n | mu_k, Sigma_k) for every component and sample: (N, D) -> (K, N)."""
        N, D = X.shape
        out = np.empty((self.n_components_, N))
        for k in range(self.n_components_):
            L = np.linalg.cholesky(self.covs_[k])                      # Sigma = L L^T
            z = (X - self.means_[k]) @ np.linalg.inv(L).T              # (N, D), z = L^-1 (x - mu)
            maha = np.einsum("nd,nd->n", z, z)                         # (N,) Mahalanobis^2
            log_det = 2.0 * np.sum(np.log(np.diag(L)))
            out[k] = -0.5 * (D * _LOG_2PI + log_det + maha)
        return out

    def _log_joint(self, X):
        """log w_k + log N(x_n | k): (N, D) -> (K, N)."""
        with np.errstate(divide="ignore"):
            return self._log_gauss(X) + np.log(self.weights_)[:, None]

    def log_prob(self, X):
        """Log density of the mixture at each sample.

        Parameters
        ----------
        X : array_like, (N, D) or (D,)

        Returns
        -------
        ndarray, (N,) float64 (a scalar array for a single (D,) sample)
        """
        if not hasattr(self, "means_"):
            raise RuntimeError("GMM.log_prob called before fit")
        X_arr = np.asarray(X)
        single = X_arr.ndim == 1
        X = self._check(X_arr[None, :] if single else X_arr)
        out = logsumexp(self._log_joint(X), axis=0)
        return out[0] if single else out

    def score(self, X):
        """Mean log-likelihood per sample."""
        return float(np.mean(self.log_prob(X)))

    def predict_proba(self, X):
        """Responsibilities r_nk: (N, D) -> (N, K')."""
        X = self._check(X)
        log_joint = self._log_joint(X)                                 # (K, N)
        return np.exp(log_joint - logsumexp(log_joint, axis=0)[None, :]).T

    # ------------------------------------------------------------------ checks
    def _check(self, X, fitting=False):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (N, D), got shape {X.shape}")
        if len(X) == 0:
            raise ValueError("X has no samples")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or Inf")
        if not fitting and X.shape[1] != self.means_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, the mixture was fitted on "
                             f"{self.means_.shape[1]}")
        return X

    def __repr__(self):
        fitted = f", fitted with {self.n_components_}" if hasattr(self, "means_") else ""
        return f"GMM(n_components={self.n_components}{fitted})"
