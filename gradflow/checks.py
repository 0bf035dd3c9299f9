"""Numerical checks of the paper's dynamical claims, each returning measured numbers and a verdict.

``gf.checks`` gathers them:

- near equilibria (``gradflow/manifolds.py``): :func:`hartman_grobman`,
  :func:`center_manifold`, :func:`center_attraction`;
- the paper's predictions (``gradflow/predictions.py``):
  :func:`perturbation_response`, :func:`perturbation_walk`, :func:`min_norm`,
  :func:`max_margin`, :func:`early_stopping`.

Every report has a ``verdict`` decided from the numbers it carries:
``"holds"``, ``"does not hold"``, or ``"inconclusive"`` when the claim's
hypothesis is not met (Hartman--Grobman at a manifold of equilibria, max-margin
on data that are not separable) or the numbers cannot decide (too few
repetitions, an integration too inaccurate).  Each check is tested on a case
where its verdict must be "does not hold".
"""

from ._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE
from .manifolds import center_attraction, center_manifold, hartman_grobman
from .predictions import early_stopping, max_margin, min_norm, perturbation_response, perturbation_walk

__all__ = ["hartman_grobman", "center_manifold", "center_attraction", "perturbation_response", "perturbation_walk",
           "min_norm", "max_margin", "early_stopping", "HOLDS", "DOES_NOT_HOLD", "INCONCLUSIVE"]
