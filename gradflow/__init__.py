"""gradflow: the training of a neural network as a dynamical system.

Gradient flow :math:`\\dot W = -\\nabla L(W)` and its discrete versions, near
the degenerate zero-loss minima studied in *Theory of Deep Learning III*.

The public API lives here; the modules behind it are private by convention
except the namespaces re-exported below (``gf.data``, ``gf.features``,
``gf.activations``, ``gf.models``, ``gf.losses``, ``gf.symbolic``) and three
loaded on first use, so that ``import gradflow`` stays light: ``gf.checks``,
``gf.plot`` (matplotlib) and ``gf.experiments``.
"""

import importlib

from . import activations, data, features, losses, models, symbolic
from .data import Dataset
from .descent import Perturbation, gd, sgd
from .flow import GradientFlow
from .linearize import (Degeneracy, Equilibrium, Linearization, NotAnEquilibriumWarning, degeneracy, find_equilibrium,
                        hessian_trace, invariants, linearize, spectral_density, spectrum)
from .objective import Objective
from .trajectory import Trajectory

__version__ = "0.1.0"

_LAZY_MODULES = ("checks", "plot", "experiments")


def __getattr__(name):
    if name in _LAZY_MODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'gradflow' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES))

__all__ = [
    "__version__", "activations", "data", "features", "losses", "models", "symbolic", "checks", "plot", "experiments", "Dataset", "Objective",
    "GradientFlow", "Trajectory", "gd", "sgd", "Perturbation",
    "find_equilibrium", "Equilibrium", "linearize", "Linearization", "NotAnEquilibriumWarning", "degeneracy", "Degeneracy",
    "spectrum", "spectral_density", "hessian_trace", "invariants",
]
