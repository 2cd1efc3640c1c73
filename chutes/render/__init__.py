"""Generated artifacts of a chute: Dockerfile, README and Kubernetes manifests, from Jinja templates.

Templates ship in ``chutes/render/jinja`` and can be replaced or extended from a folder of your own
(``templates_dir`` here, ``--templates DIR`` on the command line).
"""

from chutes.render.build import BuildOptions, build
from chutes.render.dockerfile import render_dockerfile
from chutes.render.k8s import k8s_documents, render_k8s
from chutes.render.quoting import RenderError
from chutes.render.readme import render_readme
from chutes.render.schedule import describe_schedule

__all__ = [
    "BuildOptions",
    "RenderError",
    "build",
    "describe_schedule",
    "k8s_documents",
    "render_dockerfile",
    "render_k8s",
    "render_readme",
]
