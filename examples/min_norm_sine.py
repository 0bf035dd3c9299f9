"""Gradient descent on the paper's degenerate polynomial regression finds the minimum-norm solution.

The set-up of Figures 4 and 15 of *Theory of Deep Learning III*: a linear model on Legendre
features of degree 30 (31 parameters) fitted to sin(2*pi*4*x) at 9 Chebyshev nodes, square loss.
The Hessian Phi^T Phi / n has 31 - 9 = 22 zero eigenvalues: the minima form a 22-dimensional
affine subspace. Gradient descent started at zero stays in the row space of Phi (Lemma 3) and so
converges to the minimum-norm solution Phi^+ y (Corollary 1). This script checks both, with
gradflow's exact gradient and Hessian, and prints what it measured.
"""

import numpy as np

import gradflow as gf

STEP = 0.2           # the paper's step size; the normalized features keep it below 2 / lambda_max
MAX_STEPS = 200_000
TOLERANCE = 1e-20    # stop when the training loss falls below this


def main() -> None:
    data = gf.data.sine(n_train=9, n_test=100, frequency=4, nodes="chebyshev")
    features = gf.features.Legendre(degree=30, normalize=True)
    obj = gf.Objective(gf.models.FeatureRegression(features), data, loss="square")

    hessian = obj.hessian(np.zeros(obj.size))
    eigenvalues = np.linalg.eigvalsh(hessian)
    zero = eigenvalues < 1e-10 * eigenvalues.max()
    print(f"parameters P = {obj.size}, training points n = {data.n}")
    print(f"Hessian eigenvalues: largest {eigenvalues.max():.4f}, smallest nonzero {eigenvalues[~zero].min():.3e}, "
          f"zero eigenvalues {int(zero.sum())} (P - n = {obj.size - data.n})")
    print(f"step {STEP} vs stability bound 2 / lambda_max = {2 / eigenvalues.max():.2f}")

    w = np.zeros(obj.size)
    for step in range(1, MAX_STEPS + 1):
        value, grad = obj.value_and_grad(w)
        if value < TOLERANCE:
            break
        w = w - STEP * grad
    w_min_norm = np.linalg.pinv(features(data.X)) @ data.y

    metrics = obj.metrics(w)
    print(f"gradient descent from zero: {step} steps, train loss {metrics['train_loss']:.2e}, "
          f"test loss {metrics['test_loss']:.3f}, norm {metrics['norm']:.3f}")
    print(f"minimum-norm solution pinv(Phi) y: norm {np.linalg.norm(w_min_norm):.3f}, "
          f"distance from GD's solution {np.linalg.norm(w - w_min_norm):.2e}")


if __name__ == "__main__":
    main()
