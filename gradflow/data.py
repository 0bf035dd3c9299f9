"""Data sets: the :class:`Dataset` container and the paper's reference problems.

A :class:`Dataset` holds a training set ``(X, y)`` and an optional test set
``(X_test, y_test)``, one sample per row, checked once when it is built.  The
generators below return the data sets used in *Theory of Deep Learning III*:

==========================  ===================================================
:func:`sine`                $y = \\sin(2\\pi f x)$ on $[-1, 1]$ (Figures 4, 13, 15, 16)
:func:`linear_teacher`      a two-layer linear teacher, $n = 30$, $d = 31$ (Figure 8)
:func:`separable`           two linearly separable classes with a known margin
:func:`digits`              scikit-learn's 8x8 digits, optionally with random labels (Figure 1)
==========================  ===================================================

The generators draw with :func:`numpy.random.default_rng` and return NumPy
arrays; a :class:`Dataset` built by hand from arrays of another library (CuPy,
``array_api_strict``) keeps that library.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _backend
from ._validation import check_bool, check_choice, check_int, check_real, check_seed, describe

__all__ = ["Dataset", "sine", "linear_teacher", "separable", "digits"]

# ---------------------------------------------------------------------------
# defaults
# ---------------------------------------------------------------------------

SINE_N_TRAIN = 9
SINE_N_TEST = 100
SINE_FREQUENCY = 4
SINE_NODES = "chebyshev"
SINE_NOISE = 0.0
SINE_NODE_CHOICES = ("chebyshev", "uniform", "random")

TEACHER_N = 30
TEACHER_N_TEST = 32
TEACHER_D = 31
TEACHER_HIDDEN = 1
TEACHER_BIAS = True

SEPARABLE_N = 40
SEPARABLE_N_TEST = 200
SEPARABLE_D = 2
SEPARABLE_MARGIN = 0.1

DIGITS_N_TRAIN = 1000
DIGITS_N_TEST = None
DIGITS_TOTAL = 1797  # rows in sklearn.datasets.load_digits
DIGITS_PIXEL_MAX = 16.0

SEED = 0


# ---------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------


def _to_namespace(name: str, value, xp):
    """``value`` as an array of ``xp`` in its own dtype (lists become arrays); TypeError if impossible."""
    if value is None:
        raise TypeError(f"`{name}` must be an array; got None.")
    try:
        return xp.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`{name}` must be an array of numbers (or a nested list of them with equal lengths); "
            f"got {describe(value)}, which could not be converted ({exc})."
        ) from None


def _dtype_kind(xp, dtype) -> str:
    """One of 'bool', 'integral', 'real floating', 'complex floating', 'other'."""
    for kind in ("bool", "integral", "real floating", "complex floating"):
        if xp.isdtype(dtype, kind):
            return kind
    return "other"


def _check_finite(name: str, arr, xp) -> None:
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(
            f"`{name}` must contain only finite numbers; got {describe(arr)} with NaN or inf entries. "
            "Remove or impute those entries first."
        )


def _validate_inputs(name: str, value, xp, rows_of: str | None = None, d: int | None = None):
    """The input matrix ``X`` / ``X_test``: 2-D, real, finite, at least one row and column; float64."""
    arr = _to_namespace(name, value, xp)
    kind = _dtype_kind(xp, arr.dtype)
    if kind not in ("integral", "real floating"):
        raise TypeError(
            f"`{name}` must hold real numbers; got {describe(arr)}. "
            f"Convert it to a floating-point array first, e.g. `{name}.astype(float)`."
        )
    if arr.ndim == 1:
        raise ValueError(
            f"`{name}` must be 2-D with one sample per row, shape (n, d); got {describe(arr)}. "
            f"For one feature per sample reshape it to (n, 1), e.g. `{name}.reshape(-1, 1)`."
        )
    if arr.ndim != 2:
        raise ValueError(
            f"`{name}` must be 2-D with one sample per row, shape (n, d); got {describe(arr)}. "
            "Reshape it to (n_samples, n_features)."
        )
    n_rows, n_cols = arr.shape
    if n_rows < 1 or n_cols < 1:
        raise ValueError(
            f"`{name}` must have at least one row and one column; got {describe(arr)}. "
            "Pass a non-empty data matrix."
        )
    if d is not None and n_cols != d:
        raise ValueError(
            f"`{name}` must have the same number of columns as `X` ({d}); got {describe(arr)}. "
            "Test inputs must have the training inputs' features."
        )
    arr = _backend.as_array(arr, xp)
    _check_finite(name, arr, xp)
    return arr


def _validate_targets(name: str, value, xp, n_rows: int, x_name: str, like=None):
    """The targets ``y`` / ``y_test``: (n,) or (n, k), finite; int64 for integer labels, float64 otherwise.

    ``like`` is the validated training ``y`` when checking ``y_test``: same ndim, trailing shape and
    label kind (integer labels need integer test labels; real targets turn integer test targets to float64).
    """
    arr = _to_namespace(name, value, xp)
    kind = _dtype_kind(xp, arr.dtype)
    if kind == "bool":
        raise TypeError(
            f"`{name}` must hold numbers, not booleans; got {describe(arr)}. "
            f"Use integer class labels (`{name}.astype(int)`) or real targets (`{name}.astype(float)`)."
        )
    if kind not in ("integral", "real floating"):
        raise TypeError(
            f"`{name}` must hold integer class labels or real targets; got {describe(arr)}. "
            f"Convert it first, e.g. `{name}.astype(float)`."
        )
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` must be 1-D (n,) or 2-D (n, k); got {describe(arr)}. "
            "Reshape it to one row per sample."
        )
    if arr.shape[0] != n_rows:
        raise ValueError(
            f"`{name}` must have one row per row of `{x_name}` ({n_rows}); got {describe(arr)}. "
            f"Pass as many targets as samples in `{x_name}`."
        )
    if arr.ndim == 2 and arr.shape[1] < 1:
        raise ValueError(f"`{name}` must have at least one column; got {describe(arr)}. Pass a non-empty target.")
    if like is not None:
        if arr.ndim != like.ndim or tuple(arr.shape[1:]) != tuple(like.shape[1:]):
            expected = "(n_test,)" if like.ndim == 1 else f"(n_test, {like.shape[1]})"
            raise ValueError(
                f"`{name}` must have the shape of `y` apart from its rows, {expected}; "
                f"got {describe(arr)} while `y` has shape {tuple(like.shape)}. Reshape `{name}` to match `y`."
            )
        if xp.isdtype(like.dtype, "integral"):
            if kind != "integral":
                raise TypeError(
                    f"`{name}` must hold integer class labels like `y`; got {describe(arr)}. "
                    f"Convert it with `{name}.astype(int)`, or pass `y` as floats for a regression problem."
                )
        else:
            kind = "real floating"
    dtype = xp.int64 if kind == "integral" else xp.float64
    arr = _backend.as_array(arr, xp, dtype=dtype)
    _check_finite(name, arr, xp)
    return arr


def _validate_info(info) -> Mapping[str, Any]:
    if info is None:
        return types.MappingProxyType({})
    if not isinstance(info, Mapping):
        raise TypeError(f"`info` must be a mapping (a dict) of metadata or None; got {describe(info)}.")
    return types.MappingProxyType(dict(info))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A supervised data set: training pairs and an optional test set, one sample per row.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Training inputs; real and finite, stored as float64.  A single feature
        must be passed as a column, shape (n, 1).
    y : array_like, shape (n,) or (n, k)
        Training targets, finite.  An integer dtype means class labels and is
        kept as int64; any other real dtype is stored as float64.  Booleans are
        refused (say which you mean: labels or 0/1 targets).
    X_test, y_test : array_like or None, optional
        A test set, given both or neither.  ``X_test`` has the columns of ``X``;
        ``y_test`` has the shape of ``y`` apart from its rows.  When ``y`` holds
        integer labels ``y_test`` must too; when ``y`` is real, integer
        ``y_test`` becomes float64.
    info : mapping, optional
        Metadata (e.g. the teacher's weights); stored as a read-only mapping.

    Attributes
    ----------
    X, y, X_test, y_test : arrays of the common namespace ``xp``
    info : mappingproxy
    n, d : int
        Rows and columns of ``X``.
    outputs : int
        1 for 1-D ``y``, ``k`` for ``y`` of shape (n, k).
    n_test : int
        Rows of ``X_test`` (0 without a test set).
    has_test : bool
    xp : module
        The array namespace of the arrays: NumPy for NumPy arrays and lists,
        the arrays' own library otherwise.

    Raises
    ------
    TypeError
        Arrays of different libraries, non-real or boolean data, a non-mapping ``info``.
    ValueError
        Wrong shapes, mismatched rows or columns, NaN or inf, a test half without the other.

    Examples
    --------
    >>> import numpy as np
    >>> Dataset(np.zeros((3, 2)), [1.0, 2.0, 3.0])
    Dataset(n=3, d=2, outputs=1, n_test=0)
    """

    X: Any
    y: Any
    X_test: Any = None
    y_test: Any = None
    info: Mapping[str, Any] | None = None

    def __reduce__(self):
        # rebuilt through the constructor: a mappingproxy cannot be pickled (multiprocessing, copy.deepcopy)
        return type(self), (self.X, self.y, self.X_test, self.y_test, dict(self.info))

    def __post_init__(self):
        if (self.X_test is None) != (self.y_test is None):
            given, missing = ("X_test", "y_test") if self.y_test is None else ("y_test", "X_test")
            raise ValueError(
                f"`X_test` and `y_test` must be given both or neither; got `{given}` without `{missing}`. "
                f"Pass `{missing}` too, or leave both as None for no test set."
            )
        xp = _backend.namespace(self.X, self.y, self.X_test, self.y_test)
        X = _validate_inputs("X", self.X, xp)
        y = _validate_targets("y", self.y, xp, X.shape[0], "X")
        X_test = y_test = None
        if self.X_test is not None:
            X_test = _validate_inputs("X_test", self.X_test, xp, d=X.shape[1])
            y_test = _validate_targets("y_test", self.y_test, xp, X_test.shape[0], "X_test", like=y)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "X_test", X_test)
        object.__setattr__(self, "y_test", y_test)
        object.__setattr__(self, "info", _validate_info(self.info))

    @property
    def n(self) -> int:
        """Number of training samples (rows of ``X``)."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of input features (columns of ``X``)."""
        return int(self.X.shape[1])

    @property
    def outputs(self) -> int:
        """Number of target columns: 1 for 1-D ``y``, ``k`` for ``y`` of shape (n, k)."""
        return 1 if self.y.ndim == 1 else int(self.y.shape[1])

    @property
    def n_test(self) -> int:
        """Number of test samples (0 without a test set)."""
        return 0 if self.X_test is None else int(self.X_test.shape[0])

    @property
    def has_test(self) -> bool:
        """Whether a test set was given."""
        return self.X_test is not None

    @property
    def xp(self):
        """The array namespace of the data (``_backend.namespace`` of all four arrays)."""
        return _backend.namespace(self.X, self.y, self.X_test, self.y_test)

    def __repr__(self) -> str:
        return f"Dataset(n={self.n}, d={self.d}, outputs={self.outputs}, n_test={self.n_test})"


# ---------------------------------------------------------------------------
# shared validators of the generators
# ---------------------------------------------------------------------------


def _validate_n_test(n_test) -> int:
    return check_int("n_test", n_test, minimum=0)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------
# sine
# ---------------------------------------------------------------------------


def _validate_n_train(n_train) -> int:
    return check_int("n_train", n_train, minimum=1)


def _validate_frequency(frequency) -> float:
    return check_real("frequency", frequency, minimum=0.0)


def _validate_nodes(nodes) -> str:
    return check_choice("nodes", nodes, SINE_NODE_CHOICES)


def _validate_noise(noise) -> float:
    return check_real("noise", noise, minimum=0.0)


def _sine_nodes(n: int, nodes: str, rng: np.random.Generator) -> np.ndarray:
    if nodes == "chebyshev":
        k = np.arange(1, n + 1)
        x = np.cos((2 * k - 1) * np.pi / (2 * n))
    elif nodes == "uniform":
        x = np.linspace(-1.0, 1.0, n)
    else:
        x = rng.uniform(-1.0, 1.0, size=n)
    return np.sort(x)


def sine(
    n_train: int = SINE_N_TRAIN,
    n_test: int = SINE_N_TEST,
    frequency: float = SINE_FREQUENCY,
    nodes: str = SINE_NODES,
    seed: int = SEED,
    noise: float = SINE_NOISE,
) -> Dataset:
    """Samples of $y = \\sin(2\\pi f x)$ on $[-1, 1]$, the univariate regression of the paper's Figures 4, 13, 15, 16.

    Parameters
    ----------
    n_train : int, default ``SINE_N_TRAIN`` = 9
        Number of training points, >= 1.
    n_test : int, default ``SINE_N_TEST`` = 100
        Number of test points, ``linspace(-1, 1, n_test)``; 0 means no test set.
    frequency : float, default ``SINE_FREQUENCY`` = 4
        $f \\ge 0$, in periods per unit length.
    nodes : {'chebyshev', 'uniform', 'random'}, default ``SINE_NODES`` = 'chebyshev'
        Where the training inputs lie:

        * ``'chebyshev'``: the Chebyshev--Gauss nodes
          $x_k = \\cos\\left(\\frac{(2k-1)\\pi}{2n}\\right)$, $k = 1, \\dots, n$, denser at the ends;
        * ``'uniform'``: ``linspace(-1, 1, n_train)``;
        * ``'random'``: i.i.d. uniform on $[-1, 1]$, from ``default_rng(seed)``.
    seed : int, default ``SEED`` = 0
        Seed of ``numpy.random.default_rng`` for random nodes and noise.
    noise : float, default ``SINE_NOISE`` = 0.0
        Standard deviation $\\sigma \\ge 0$ of Gaussian noise added to the
        *training* targets only: $y_k = \\sin(2\\pi f x_k) + \\sigma \\varepsilon_k$.

    Returns
    -------
    Dataset
        ``X`` of shape (n_train, 1) sorted ascending, ``y`` of shape (n_train,);
        ``info = {"frequency", "nodes", "target": "sin(2*pi*f*x)"}`` (plus ``"noise"``).

    Examples
    --------
    >>> sine()
    Dataset(n=9, d=1, outputs=1, n_test=100)
    """
    n_train = _validate_n_train(n_train)
    n_test = _validate_n_test(n_test)
    frequency = _validate_frequency(frequency)
    nodes = _validate_nodes(nodes)
    seed = check_seed(seed)
    noise = _validate_noise(noise)

    rng = np.random.default_rng(seed)
    x = _sine_nodes(n_train, nodes, rng)
    y = np.sin(2 * np.pi * frequency * x)
    if noise > 0:
        y = y + noise * rng.standard_normal(n_train)
    X_test = y_test = None
    if n_test > 0:
        x_test = np.linspace(-1.0, 1.0, n_test)
        X_test, y_test = x_test[:, None], np.sin(2 * np.pi * frequency * x_test)
    info = {"frequency": frequency, "nodes": nodes, "target": "sin(2*pi*f*x)", "noise": noise}
    return Dataset(x[:, None], y, X_test, y_test, info=info)


# ---------------------------------------------------------------------------
# linear teacher
# ---------------------------------------------------------------------------


def _validate_n(n, minimum: int = 1) -> int:
    return check_int("n", n, minimum=minimum)


def _validate_d(d) -> int:
    return check_int("d", d, minimum=1)


def _validate_hidden(hidden) -> int:
    return check_int("hidden", hidden, minimum=1)


def _validate_bias(bias) -> bool:
    return check_bool("bias", bias)


def _teacher_inputs(rng: np.random.Generator, rows: int, d: int, bias: bool) -> np.ndarray:
    if not bias:
        return rng.standard_normal((rows, d))
    return np.concatenate([rng.standard_normal((rows, d - 1)), np.ones((rows, 1))], axis=1)


def linear_teacher(
    n: int = TEACHER_N,
    n_test: int = TEACHER_N_TEST,
    d: int = TEACHER_D,
    hidden: int = TEACHER_HIDDEN,
    bias: bool = TEACHER_BIAS,
    seed: int = SEED,
) -> Dataset:
    """Data labelled by a two-layer linear teacher, the set-up of the paper's Figure 8.

    The teacher is $f(x) = W_2 W_1 x$ with $W_1 \\in \\mathbb{R}^{h \\times d}$ and
    $W_2 \\in \\mathbb{R}^{1 \\times h}$, entries standard Gaussian; the targets
    are noiseless, $y = X W_1^\\top W_2^\\top$, so they lie in a linear function
    of rank 1.  With the defaults ($n = 30$, $d = 31$ including the bias,
    $h = 1$) the teacher has $31 + 1 = 32$ weights and the test set 32 points.

    Parameters
    ----------
    n : int, default ``TEACHER_N`` = 30
        Training points, >= 1.
    n_test : int, default ``TEACHER_N_TEST`` = 32
        Test points, drawn the same way; 0 means no test set.
    d : int, default ``TEACHER_D`` = 31
        Input dimension *including* the bias column when ``bias``.
    hidden : int, default ``TEACHER_HIDDEN`` = 1
        Hidden units $h$ of the teacher.
    bias : bool, default ``TEACHER_BIAS`` = True
        If True the inputs are $d - 1$ standard Gaussian columns followed by a
        constant column of ones; otherwise $d$ Gaussian columns.
    seed : int, default ``SEED`` = 0
        Seed of ``numpy.random.default_rng``.  The teacher is drawn first, so it
        depends on ``seed``, ``d`` and ``hidden`` only, not on ``n``.

    Returns
    -------
    Dataset
        ``X`` (n, d), ``y`` (n,); ``info = {"teacher": (W1, W2), "bias": bias}``
        with read-only NumPy ``W1`` (h, d) and ``W2`` (1, h).
    """
    n = _validate_n(n)
    n_test = _validate_n_test(n_test)
    d = _validate_d(d)
    hidden = _validate_hidden(hidden)
    bias = _validate_bias(bias)
    seed = check_seed(seed)

    rng = np.random.default_rng(seed)
    W1 = _readonly(rng.standard_normal((hidden, d)))
    W2 = _readonly(rng.standard_normal((1, hidden)))
    X = _teacher_inputs(rng, n, d, bias)
    y = (X @ W1.T @ W2.T)[:, 0]
    X_test = y_test = None
    if n_test > 0:
        X_test = _teacher_inputs(rng, n_test, d, bias)
        y_test = (X_test @ W1.T @ W2.T)[:, 0]
    return Dataset(X, y, X_test, y_test, info={"teacher": (W1, W2), "bias": bias})


# ---------------------------------------------------------------------------
# separable classes
# ---------------------------------------------------------------------------


def _validate_margin(margin) -> float:
    return check_real("margin", margin, minimum=0.0, strict=True)


def _balanced_labels(rows: int) -> np.ndarray:
    """+1, -1, +1, ... (alternating, so any prefix is balanced to within one)."""
    return np.where(np.arange(rows) % 2 == 0, 1.0, -1.0)


def _separable_points(rng, rows: int, u: np.ndarray, labels: np.ndarray, margin: float, exact: bool):
    Z = rng.standard_normal((rows, u.shape[0]))
    Z = Z - np.outer(Z @ u, u)  # no component along u
    e = np.abs(rng.standard_normal(rows))
    if exact:
        e = e - e.min()  # the closest point sits exactly at the margin
    return Z + np.outer(labels * (margin + e), u)


def separable(
    n: int = SEPARABLE_N,
    n_test: int = SEPARABLE_N_TEST,
    d: int = SEPARABLE_D,
    margin: float = SEPARABLE_MARGIN,
    seed: int = SEED,
) -> Dataset:
    """Two linearly separable classes, labels $\\pm 1$, with a known margin along a unit direction $u$.

    Each point is $x_i = z_i + y_i (\\gamma + e_i)\\, u$ with $z_i$ standard
    Gaussian projected onto $u^\\perp$ and $e_i \\ge 0$ half-normal.  For the
    training set the $e_i$ are shifted so that $\\min_i e_i = 0$, hence

    .. math:: \\min_i\\, y_i\\, u^\\top x_i = \\gamma \\quad (\\text{the margin, exactly up to rounding}).

    The test set is drawn the same way without the shift, so its margin along
    $u$ is at least $\\gamma$.  Labels alternate $+1, -1, +1, \\dots$ (balanced to
    within one) and are stored as float64.

    Parameters
    ----------
    n : int, default ``SEPARABLE_N`` = 40
        Training points, >= 2 (both classes present).
    n_test : int, default ``SEPARABLE_N_TEST`` = 200
        Test points; 0 means no test set.
    d : int, default ``SEPARABLE_D`` = 2
        Input dimension, >= 1.
    margin : float, default ``SEPARABLE_MARGIN`` = 0.1
        $\\gamma > 0$.
    seed : int, default ``SEED`` = 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Dataset
        ``X`` (n, d), ``y`` (n,) in $\\{-1, +1\\}$; ``info = {"direction": u, "margin": margin}``
        with ``u`` a read-only unit NumPy vector.
    """
    n = _validate_n(n, minimum=2)
    n_test = _validate_n_test(n_test)
    d = _validate_d(d)
    margin = _validate_margin(margin)
    seed = check_seed(seed)

    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u = _readonly(u / np.linalg.norm(u))
    y = _balanced_labels(n)
    X = _separable_points(rng, n, u, y, margin, exact=True)
    X_test = y_test = None
    if n_test > 0:
        y_test = _balanced_labels(n_test)
        X_test = _separable_points(rng, n_test, u, y_test, margin, exact=False)
    return Dataset(X, y, X_test, y_test, info={"direction": u, "margin": margin})


# ---------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------


def _validate_digits_sizes(n_train, n_test) -> tuple[int, int]:
    n_train = check_int("n_train", n_train, minimum=1, maximum=DIGITS_TOTAL)
    if n_test is None:
        return n_train, DIGITS_TOTAL - n_train
    n_test = _validate_n_test(n_test)
    if n_train + n_test > DIGITS_TOTAL:
        raise ValueError(
            f"`n_train` + `n_test` must be at most {DIGITS_TOTAL}, the number of digits images; "
            f"got {n_train} + {n_test} = {n_train + n_test}. Lower one of them, "
            "or pass n_test=None for all the rows left after the training set."
        )
    return n_train, n_test


def _validate_random_labels(random_labels) -> bool:
    return check_bool("random_labels", random_labels)


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is an optional dependency
        raise ImportError(
            "gradflow.data.digits needs scikit-learn (for its bundled digits images); "
            "install it with `pip install scikit-learn`."
        ) from None
    bunch = load_digits()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


def digits(
    n_train: int = DIGITS_N_TRAIN,
    n_test: int | None = DIGITS_N_TEST,
    random_labels: bool = False,
    seed: int = SEED,
) -> Dataset:
    """scikit-learn's 8x8 handwritten digits, a small stand-in for the paper's CIFAR runs (Figure 1).

    The 1797 images of ``sklearn.datasets.load_digits`` (bundled, no download)
    are shuffled with ``default_rng(seed)``; the first ``n_train`` rows form the
    training set and the next ``n_test`` the test set.  Inputs are the 64
    pixels scaled to $[0, 1]$ (divided by 16); labels are int64 in $0, \\dots, 9$.

    Parameters
    ----------
    n_train : int, default ``DIGITS_N_TRAIN`` = 1000
        Training rows, 1..1797.
    n_test : int or None, default ``DIGITS_N_TEST`` = None
        Test rows; None takes all the rows left; 0 means no test set.
        ``n_train + n_test`` must be at most 1797.
    random_labels : bool, default False
        If True the *training* labels are replaced by a seeded random
        permutation of themselves (same class counts, no relation to the
        images), as in the random-label experiment of Figure 1 (right).  The
        images, the split and the test labels are the same as with False.
    seed : int, default ``SEED`` = 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Dataset
        ``X`` (n_train, 64) float64, ``y`` (n_train,) int64;
        ``info = {"source": "sklearn.datasets.load_digits", "random_labels": random_labels}``.
    """
    n_train, n_test = _validate_digits_sizes(n_train, n_test)
    random_labels = _validate_random_labels(random_labels)
    seed = check_seed(seed)

    pixels, labels = _load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(pixels.shape[0])
    X_all = pixels[order] / DIGITS_PIXEL_MAX
    y_all = labels[order]
    X, y = X_all[:n_train], y_all[:n_train]
    if random_labels:
        y = y[rng.permutation(n_train)]
    X_test = y_test = None
    if n_test > 0:
        X_test, y_test = X_all[n_train : n_train + n_test], y_all[n_train : n_train + n_test]
    info = {"source": "sklearn.datasets.load_digits", "random_labels": random_labels}
    return Dataset(X, y, X_test, y_test, info=info)
