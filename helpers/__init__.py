"""Small helpers for the MLflow experiment-tracking course.

The notebooks show every MLflow call they teach in the open. This package holds only
what is *not* the lesson: the taxi trip data (an offline sample or the real TLC files),
the course's feature preparation and a setup check. It is short on purpose, so a
learner can read all of it.
"""

__all__ = ["data", "env"]
