"""chutes: define an AI application once; serve it, validate it, and ship it.

The public names live here; importing :mod:`chutes` stays light (no server, no command line).
"""

from chutes.chute import Chute, ChuteConfig
from chutes.cord import Cord
from chutes.errors import ChuteDefinitionError, ChutesError
from chutes.image import Image
from chutes.job import Job
from chutes.node_selector import NodeSelector
from chutes.settings import Settings
from chutes.websocket import Websocket

__version__ = "0.1.0"

__all__ = [
    "Chute",
    "ChuteConfig",
    "ChuteDefinitionError",
    "ChutesError",
    "Cord",
    "Image",
    "Job",
    "NodeSelector",
    "Settings",
    "Websocket",
    "__version__",
]
