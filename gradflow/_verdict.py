"""Verdicts shared by the checks (analysis layer) and the experiments (presentation layer).

A check or an experiment decides each claim from measured numbers and says
``"holds"``, ``"does not hold"`` or ``"inconclusive"`` (the claim does not
apply, or the measurement could not decide it).
"""

from __future__ import annotations

__all__ = ["HOLDS", "DOES_NOT_HOLD", "INCONCLUSIVE", "VERDICTS", "verdict_of", "combine"]

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE)


def verdict_of(ok) -> str:
    """``True`` -> ``"holds"``, ``False`` -> ``"does not hold"``, ``None`` -> ``"inconclusive"``."""
    if ok is None:
        return INCONCLUSIVE
    return HOLDS if bool(ok) else DOES_NOT_HOLD


def combine(verdicts) -> str:
    """The overall verdict of several: any failure fails, else any inconclusive one makes it inconclusive."""
    verdicts = set(verdicts)
    for verdict in (DOES_NOT_HOLD, INCONCLUSIVE):
        if verdict in verdicts:
            return verdict
    return HOLDS if verdicts else INCONCLUSIVE
