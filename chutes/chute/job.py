"""The published chutes SDK's path for job definitions: ``from chutes.chute.job import Port``."""

from chutes.job import Job, Port

__all__ = ["Job", "Port"]
