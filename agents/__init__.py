"""Question to plan to evidence to answer.

Contract: planners, executors, synthesizers and the provenance validator take their
stores and clients as arguments and never read settings. Imports :mod:`graph` and
:mod:`extractors` only.
"""

__all__: list[str] = []
