"""The ``Chute`` and its node selector, at the reference's import path (``from chutes.chute import Chute``).

``chutes.chute`` is a package so that the published chutes SDK's paths beneath it
(``chutes.chute.template.*``, ``chutes.chute.job``, ``chutes.chute.cord``) can live beside ours.
"""

from chutes.chute.base import Chute, ChuteConfig
from chutes.cord import Cord
from chutes.job import Job
from chutes.node_selector import NodeSelector

__all__ = ["Chute", "ChuteConfig", "Cord", "Job", "NodeSelector"]
