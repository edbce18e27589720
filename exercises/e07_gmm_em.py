"""Exercise 7: one EM step of a Gaussian mixture, the colour model of the paper's localisation (Sec. 3.2).

E-step, for each sample x_n (N, D) and component k of K (weights w_k, means mu_k, covariances S_k):

    r[k, n] = w_k N(x_n | mu_k, S_k) / sum_j w_j N(x_n | mu_j, S_j)
    log N(x | mu, S) = -1/2 (D log 2 pi + log det S + (x - mu)^T S^-1 (x - mu))

(compute it in logs: subtract the largest log term before exponentiating). M-step, with n_k = sum_n r[k, n]:

    w_k = n_k / N,   mu_k = sum_n r[k, n] x_n / n_k,
    S_k = sum_n r[k, n] (x_n - mu_k)(x_n - mu_k)^T / n_k + reg_covar * I

Arguments: X (N, D), weights (K,), means (K, D), covs (K, D, D), reg_covar a float; return the new
(weights, means, covs). Hint: ``np.linalg.cholesky`` gives log det S and S^-1 stably. The answer:
saliency/gmm.py, GMM.em_step.
"""


def em_step(X, weights, means, covs, reg_covar):
    raise NotImplementedError("exercise 7: em_step(X, weights, means, covs, reg_covar)")
