"""Exercise 8: the labels and the energy terms of the paper's GraphCut localisation (Sec. 3.2).

1. Labels from the saliency map M: foreground where M >= its ``fg_quantile`` quantile, background where
   M <= its ``bg_quantile`` quantile (a pixel that is both is background; ``np.quantile``'s default,
   linear interpolation). The authors use soft labels
   (0.95, 0.30) to fit the colour models, and hard ones (0.995, 0.005) that the cut must keep.
2. The unary term of a pixel of colour x is -log p(x) under a colour model: the mixture's log density

       log p(x) = log sum_k w_k N(x | mu_k, S_k)        (use a stable log-sum-exp), with
       log N(x | mu, S) = -1/2 (D log 2 pi + log det S + (x - mu)^T S^-1 (x - mu))

3. The pairwise term between neighbours p and q of the 8-connected grid (Boykov-Jolly):

       V(p, q) = gamma * exp(-beta * ||I_p - I_q||^2) / dist(p, q),
       beta = 1 / (2 * mean of ||I_p - I_q||^2 over all neighbour pairs)   (0 for a flat image)

   dist(p, q) is 1 for horizontal and vertical neighbours and sqrt(2) for diagonal ones; the mean is one
   mean over the pairs of all four directions together.

   for the four forward offsets (dy, dx) = right (0, 1), down (1, 0), down-right (1, 1), down-left (1, -1),
   each an (H, W) array whose [y, x] is V between (y, x) and (y + dy, x + dx), 0 where that neighbour is
   outside the image.

Arguments: smap (H, W); X (N, 3), weights (K,), means (K, 3), covs (K, 3, 3); img (H, W, 3) float64;
gamma a float. The answers: saliency/localise.py (quantile_labels, pairwise_weights) and saliency/gmm.py
(GMM.log_prob).
"""


def quantile_labels(smap, fg_quantile, bg_quantile):
    """-> (foreground (H, W) bool, background (H, W) bool)."""
    raise NotImplementedError("exercise 8: quantile_labels(smap, fg_quantile, bg_quantile)")


def log_density(X, weights, means, covs):
    """-> (N,) log p(x_n)."""
    raise NotImplementedError("exercise 8: log_density(X, weights, means, covs)")


def pairwise_weights(img, gamma):
    """-> (a list of four (H, W) arrays [right, down, down-right, down-left], beta a float)."""
    raise NotImplementedError("exercise 8: pairwise_weights(img, gamma)")
