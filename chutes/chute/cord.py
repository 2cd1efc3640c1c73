"""``Cord`` at the chutes SDK's path (``chutes.chute.cord``); the class is :mod:`chutes.cord`'s."""

from chutes.cord import Cord

__all__ = ["Cord"]
