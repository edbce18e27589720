"""EM for Gaussian mixtures: recovery of a known mixture, the density formula, degenerate data."""
import numpy as np
import pytest

from saliency.gmm import GMM, kmeans_plus_plus, logsumexp

TRUE_MEANS = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0], [0.0, 7.0, 7.0]])
TRUE_COVS = np.array([
    np.eye(3),
    np.diag([1.5, 0.5, 1.0]),
    [[1.0, 0.6, 0.0], [0.6, 1.0, 0.3], [0.0, 0.3, 0.8]],
])
TRUE_WEIGHTS = np.array([0.5, 0.2, 0.3])
N = 4000


def sample_mixture(rng, n=N):
    counts = rng.multinomial(n, TRUE_WEIGHTS)
    X = np.concatenate([rng.multivariate_normal(m, c, k)
                        for m, c, k in zip(TRUE_MEANS, TRUE_COVS, counts)])
    return rng.permutation(X)


def matched(gmm):
    """Order the fitted components like TRUE_MEANS (nearest mean; must be a permutation)."""
    d = np.linalg.norm(gmm.means_[:, None, :] - TRUE_MEANS[None, :, :], axis=2)  # (K, 3)
    order = np.argmin(d, axis=0)
    assert sorted(order) == [0, 1, 2], f"components not matched one to one: {gmm.means_}"
    return gmm.means_[order], gmm.covs_[order], gmm.weights_[order]


def test_recovers_known_mixture():
    X = sample_mixture(np.random.default_rng(0))
    gmm = GMM(n_components=3, seed=0).fit(X)
    assert gmm.converged_
    means, covs, weights = matched(gmm)
    # The components are >= 6 standard deviations apart, so almost no sample is attributed to
    # the wrong one and the estimates behave like per-component sample statistics. The
    # smallest component has ~800 samples and variance <= 1.5 per axis: the standard error of
    # a mean coordinate is <= sqrt(1.5 / 800) = 0.043, so 0.2 is more than 4 standard errors.
    np.testing.assert_allclose(means, TRUE_MEANS, atol=0.2)
    # Weights: standard error sqrt(0.25 / 4000) = 0.008; allow 0.03.
    np.testing.assert_allclose(weights, TRUE_WEIGHTS, atol=0.03)
    # Covariance entries: standard error about sigma^2 * sqrt(2 / 800) = 0.075 for the largest.
    np.testing.assert_allclose(covs, TRUE_COVS, atol=0.3)


def test_log_prob_matches_direct_density():
    rng = np.random.default_rng(1)
    gmm = GMM(n_components=3, seed=0).fit(sample_mixture(rng, 1000))
    X = rng.normal(0, 4, (50, 3))
    density = np.zeros(len(X))
    for w, m, c in zip(gmm.weights_, gmm.means_, gmm.covs_):
        d = X - m
        maha = np.einsum("ni,ij,nj->n", d, np.linalg.inv(c), d)
        density += w * np.exp(-0.5 * maha) / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(c))
    np.testing.assert_allclose(gmm.log_prob(X), np.log(density), rtol=1e-10, atol=1e-10)
    assert gmm.log_prob(X).dtype == np.float64
    assert np.ndim(gmm.log_prob(X[0])) == 0
    np.testing.assert_allclose(gmm.log_prob(X[0]), gmm.log_prob(X[:1])[0])
    np.testing.assert_allclose(gmm.predict_proba(X).sum(axis=1), 1.0)


def test_log_prob_far_from_the_data_is_finite():
    gmm = GMM(n_components=2, seed=0).fit(np.random.default_rng(2).normal(0, 1, (200, 3)))
    lp = gmm.log_prob(np.full((1, 3), 1e3))   # every exp underflows without log-sum-exp
    assert np.all(np.isfinite(lp)) and lp[0] < -1e5


def test_logsumexp():
    a = np.array([[-1000.0, -1000.0], [1000.0, 1000.0], [-np.inf, -np.inf]])
    np.testing.assert_allclose(logsumexp(a, axis=1)[:2], [-1000 + np.log(2), 1000 + np.log(2)])
    assert logsumexp(a, axis=1)[2] == -np.inf


def test_same_seed_same_fit_and_float32_input():
    X = sample_mixture(np.random.default_rng(3), 500)
    a = GMM(3, seed=7).fit(X)
    b = GMM(3, seed=np.random.default_rng(7)).fit(X.astype(np.float32))
    assert a.means_.dtype == np.float64
    np.testing.assert_allclose(a.means_, b.means_, atol=1e-4)


@pytest.mark.parametrize("X", [
    np.ones((100, 3)),                                    # a constant colour
    np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]] * 10),    # 2 distinct points, 5 components
    np.array([[0.2, 0.4, 0.6]]),                          # one sample
    np.c_[np.linspace(0, 1, 50), np.zeros(50), np.zeros(50)],  # rank-1 data
], ids=["constant", "two-distinct", "one-sample", "collinear"])
def test_degenerate_inputs(X):
    gmm = GMM(n_components=5, reg_covar=1e-6, seed=0).fit(X)
    n_distinct = len(np.unique(X, axis=0))
    assert 1 <= gmm.n_components_ <= min(5, n_distinct)
    assert np.all(np.isfinite(gmm.log_prob(X)))
    assert np.isclose(gmm.weights_.sum(), 1.0)
    for c in gmm.covs_:
        assert np.all(np.linalg.eigvalsh(c) >= 1e-6 * (1 - 1e-9))
    if n_distinct == 1:
        np.testing.assert_allclose(gmm.covs_[0], 1e-6 * np.eye(3))
        np.testing.assert_allclose(gmm.means_[0], X[0])


def test_kmeans_plus_plus_stops_at_distinct_points():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    centres = kmeans_plus_plus(X, 5, np.random.default_rng(0))
    assert len(centres) == 2


def test_bad_input_raises():
    with pytest.raises(ValueError, match="2-D"):
        GMM().fit(np.zeros(5))
    with pytest.raises(ValueError, match="no samples"):
        GMM().fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        GMM().fit(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="n_components"):
        GMM(n_components=0)
    gmm = GMM(2).fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="features"):
        gmm.log_prob(np.zeros((4, 2)))
    with pytest.raises(RuntimeError, match="before fit"):
        GMM().log_prob(np.zeros((1, 3)))
