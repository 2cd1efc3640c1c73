"""The serving layer: the guard, the cord-call core, lifecycle, admission and metrics.

Defining a chute loads only ``app``, ``route`` and ``errors`` (the FastAPI face of ``chute.app``); the
rest loads when the chute first serves.
"""
