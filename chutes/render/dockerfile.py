"""Rendering a chute (or an ``Image``) as a Dockerfile.

The image's steps become instructions in order, each value quoted by ``chutes.render.quoting``; the
template then installs this framework from the build context, adds the app as a non-root user, and
serves the chute with a health check. ``python -m chutes build`` lays out the build context the
Dockerfile expects: ``framework/`` (this package's source) and ``app/`` (the chute's files).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chutes.image import (
    Add,
    AptInstall,
    AptRemove,
    Entrypoint,
    Env,
    Expose,
    FromBase,
    Image,
    Maintainer,
    PipInstall,
    Python,
    Run,
    Step,
    User,
    Workdir,
)
from chutes.render.environment import render_template
from chutes.render.quoting import RenderError, check_line, docker_json, docker_word, shell_join

if TYPE_CHECKING:
    from chutes.chute import Chute

__all__ = [
    "APP_DIR",
    "CONTEXT_APP",
    "CONTEXT_FRAMEWORK",
    "DATA_DIR",
    "UID",
    "DockerfileContext",
    "dockerfile_context",
    "render_dockerfile",
    "render_step",
    "secret_env_keys",
]

APP_DIR = "/app"
"""Where the chute's files live in the image (the working directory)."""
DATA_DIR = "/var/lib/chutes"
"""``CHUTES_DATA_DIR`` in the image: the job store, writable by the runtime user."""
FRAMEWORK_DIR = "/opt/chutes-framework"
CONTEXT_FRAMEWORK = "framework"
"""Folder of the build context holding this framework's source."""
CONTEXT_APP = "app"
"""Folder of the build context holding the chute's files."""
UID = 1000
"""User and group id of the non-root runtime user (matched by the Kubernetes securityContext)."""
UV_IMAGE = "ghcr.io/astral-sh/uv:0.8.4"

# A docker reference for FROM: registry/path:tag@digest, nothing a shell or the parser would read.
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_PINNED_APT = re.compile(r"[^=]+=.+")
# Words of an environment variable name that mark a secret: HF_TOKEN, OPENAI_API_KEY, DB_PASSWORD.
_SECRET_WORDS = {"KEY", "KEYS", "APIKEY", "TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWD"}
_SECRET_WORDS |= {"CREDENTIAL", "CREDENTIALS", "PRIVATE"}
_PINNED_PIP = re.compile(r".+==.+|[a-z+]+://.+")


def _reference(image: str) -> str:
    check_line(image, "base image")
    if not _REFERENCE.fullmatch(image):
        raise RenderError(f"base image must be a Docker reference like 'python:3.11-slim', got {image!r}")
    return image


def _absolute(path: str, what: str) -> str:
    check_line(path, what)
    if not path.startswith("/"):
        # Relative WORKDIRs depend on every earlier step; hadolint rejects them (DL3000) for that reason.
        raise RenderError(f"{what} must be an absolute path like '/app', got {path!r}")
    return path


def _context_source(source: str) -> str:
    """Map an ``add`` source, relative to the chute's folder, into the build context's ``app/``."""
    check_line(source, "add source")
    joined = posixpath.normpath(posixpath.join(CONTEXT_APP, source))
    if source.startswith("/") or not (joined == CONTEXT_APP or joined.startswith(CONTEXT_APP + "/")):
        raise RenderError(f"add source must be a path inside the chute's folder, like 'models/', got {source!r}")
    return joined + "/" if source.endswith("/") and joined != CONTEXT_APP else joined


def _copy_paths(source: str, dest: str) -> str:
    for what, path in (("add source", source), ("add dest", dest)):
        check_line(path, what)
        # COPY expands $VAR and reads quotes and backslashes in its arguments, even in JSON form.
        bad = sorted({char for char in path if char in "$\\\"'`"})
        if bad:
            raise RenderError(f"{what} must not contain {' '.join(bad)}, got {path!r}")
    if dest.startswith("-"):
        # It would read as an option (--chown, --from) to anyone reviewing the Dockerfile; never a real path.
        raise RenderError(f"add dest must not start with '-', got {dest!r}")
    if any(char.isspace() for char in source + dest):
        return json.dumps([source, dest], ensure_ascii=False)
    return f"{source} {dest}"


def _run(command: str) -> str:
    check_line(command, "run_command command")
    stripped = command.strip()
    # A trailing backslash would continue onto the next instruction, an unquoted `<<WORD` opens a
    # BuildKit heredoc that swallows the following lines, and a leading `[` reads as exec form: in
    # those cases the command goes to the shell as one quoted argument instead.
    if stripped.endswith("\\") or "<<" in stripped or stripped.startswith("["):
        return f"RUN /bin/sh -c {shlex.quote(command)}"
    return f"RUN {stripped}"


def _looks_secret(step: Env) -> bool:
    return bool(step.value) and bool(_SECRET_WORDS & set(step.key.upper().split("_")))


def secret_env_keys(image: Image | str) -> list[str]:
    """Names of the image's environment variables that look like secrets (``HF_TOKEN``, ``API_KEY``).

    An ``ENV`` value is stored in the image for anyone who can pull it; such values belong in the
    container's run-time environment instead (``docker run -e``, a Kubernetes Secret).
    """
    steps = image.steps if isinstance(image, Image) else ()
    return [step.key for step in steps if isinstance(step, Env) and _looks_secret(step)]


def render_step(step: Step) -> list[str]:
    """Render one image step as Dockerfile lines (a ``# hadolint ignore`` comment may come first).

    An ``add`` source is relative to the chute's folder, which the build context holds as ``app/``.

    Raises:
        RenderError: A value cannot be written safely (a newline, a relative WORKDIR, ...).
    """
    if isinstance(step, FromBase):
        return [f"FROM {_reference(step.image)}"]
    if isinstance(step, AptInstall):
        packages = shell_join(step.packages, "apt_install package")
        lines = [] if all(_PINNED_APT.fullmatch(p) for p in step.packages) else ["# hadolint ignore=DL3008"]
        return [
            *lines,
            "RUN apt-get update \\",
            f"    && apt-get install -y --no-install-recommends {packages} \\",
            "    && rm -rf /var/lib/apt/lists/*",
        ]
    if isinstance(step, AptRemove):
        packages = shell_join(step.packages, "apt_remove package")
        return [
            f"RUN apt-get remove -y --purge {packages} \\",
            "    && apt-get autoremove -y \\",
            "    && rm -rf /var/lib/apt/lists/*",
        ]
    if isinstance(step, PipInstall):
        packages = shell_join(step.packages, "pip_install package")
        index = f"--index-url {shell_join([step.index_url], 'index_url')} " if step.index_url else ""
        lines = [] if all(_PINNED_PIP.fullmatch(p) for p in step.packages) else ["# hadolint ignore=DL3013"]
        return [*lines, f"RUN pip install --no-cache-dir {index}{packages}"]
    if isinstance(step, Python):
        version = check_line(step.version, "python version")
        if not re.fullmatch(r"3\.\d{1,2}(\.\d{1,2})?", version):
            raise RenderError(f"python version must look like '3.11', got {version!r}")
        # uv fetches a standalone CPython into a world-readable folder and seeds a venv with pip;
        # putting the venv first on PATH makes its `python` and `pip` the ones every later step uses.
        return [
            f"COPY --from={UV_IMAGE} /uv /usr/local/bin/uv",
            "ENV UV_PYTHON_INSTALL_DIR=/opt/python",
            f"RUN uv venv --seed --python {version} /opt/venv",
            'ENV VIRTUAL_ENV=/opt/venv PATH="/opt/venv/bin:$PATH"',
        ]
    if isinstance(step, Run):
        return [_run(step.command)]
    if isinstance(step, Env):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", step.key):
            raise RenderError(f"environment variable name must be letters, digits and '_', got {step.key!r}")
        line = f"ENV {step.key}={docker_word(step.value, f'environment variable {step.key}')}"
        if _looks_secret(step):
            return [f"# warning: {step.key} looks like a secret; anyone who pulls the image can read it", line]
        return [line]
    if isinstance(step, Workdir):
        return [f"WORKDIR {docker_word(_absolute(step.path, 'set_workdir path'), 'set_workdir path')}"]
    if isinstance(step, User):
        return [f"USER {docker_word(step.user, 'user')}"]
    if isinstance(step, Add):
        return [f"COPY {_copy_paths(_context_source(step.source), step.dest)}"]
    if isinstance(step, Entrypoint):
        return [f"ENTRYPOINT {docker_json(step.args, 'with_entrypoint argument')}"]
    if isinstance(step, Maintainer):
        return [f"LABEL maintainer={docker_word(step.maintainer, 'maintainer')}"]
    if isinstance(step, Expose):
        return [f"EXPOSE {int(step.port)}"]
    raise RenderError(f"cannot render image step {step!r}")


def _healthcheck(port: int) -> list[str]:
    # Python is in every chute image; curl or wget may not be. urlopen raises (exit 1) on a 503.
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{port}/_health', timeout=4).status == 200 else 1)"
    )
    return ["python3", "-c", probe]


@dataclass
class DockerfileContext:
    """Everything the Dockerfile template receives; pass ``extra`` for a user template's own values."""

    base_image: str
    setup: list[str]
    serve_target: str
    port: int = 8000
    image_user: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    exposed: list[int] = field(default_factory=list)
    app_copied: bool = False

    def as_template_context(self, chute: Chute | None, image: Image | str | None) -> dict[str, Any]:
        """The variables of ``Dockerfile.j2``."""
        for what, value in (("serve target", self.serve_target), *self.labels.items()):
            check_line(value, what)
        return {
            "chute": chute,
            "image": image,
            "base_image": _reference(self.base_image),
            "setup": self.setup,
            "labels": [f"{key}={docker_word(value, key)}" for key, value in self.labels.items()],
            "framework_context": CONTEXT_FRAMEWORK,
            "framework_dir": FRAMEWORK_DIR,
            "app_context": CONTEXT_APP,
            "app_dir": APP_DIR,
            "data_dir": DATA_DIR,
            "uid": UID,
            "image_user": self.image_user,
            "runtime_user": docker_word(self.image_user) if self.image_user else str(UID),
            "port": self.port,
            "expose": self.port not in self.exposed,
            "copy_app": not self.app_copied,
            "healthcheck": docker_json(_healthcheck(self.port)),
            # Base images such as vllm/vllm-openai set an ENTRYPOINT that would swallow our CMD as its
            # arguments; reset it unless the chute's image sets its own on purpose.
            "reset_entrypoint": not any(line.startswith("ENTRYPOINT ") for line in self.setup),
            "cmd": docker_json(
                ["python3", "-m", "chutes", "serve", self.serve_target, "--host", "0.0.0.0", "--port", str(self.port)],
                "serve target",
            ),
        }


def default_serve_target(chute: Chute | None) -> str:
    """The TARGET the image serves when none is given: ``module:attr`` for an imported chute, else ``chute.toml``."""
    if chute is not None and chute.module_name not in (None, "__main__"):
        module = sys.modules.get(str(chute.module_name))
        for attr, value in vars(module).items() if module else ():
            if value is chute and not attr.startswith("_"):
                return f"{chute.module_name}:{attr}"
    return "chute.toml"


def dockerfile_context(
    chute_or_image: Chute | Image | str, *, serve_target: str | None = None, port: int = 8000
) -> tuple[DockerfileContext, Chute | None, Image | str]:
    """Work out the template variables for a chute, an ``Image`` or a base image reference."""
    from chutes.chute import Chute

    chute = chute_or_image if isinstance(chute_or_image, Chute) else None
    image: Image | str = chute.image if chute is not None else chute_or_image  # type: ignore[assignment]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise RenderError(f"port must be an integer from 1 to 65535, got {port!r}")
    labels: dict[str, str] = {}
    if chute is not None:
        labels["org.opencontainers.image.title"] = chute.name
        if chute.tagline:
            labels["org.opencontainers.image.description"] = " ".join(chute.tagline.split())
        if chute.revision:
            labels["org.opencontainers.image.version"] = " ".join(chute.revision.split())
    context = DockerfileContext(
        base_image=image if isinstance(image, str) else image.base,
        setup=[],
        serve_target=serve_target if serve_target is not None else default_serve_target(chute),
        port=port,
        labels=labels,
    )
    if isinstance(image, Image):
        for step in image.steps[1:]:
            context.setup += render_step(step)
            if isinstance(step, User):
                # The server never runs as root: a root user here only installs things.
                context.image_user = None if step.user.split(":")[0] in ("root", "0") else step.user
            elif isinstance(step, Expose):
                context.exposed.append(step.port)
            elif isinstance(step, Add) and _context_source(step.source) == CONTEXT_APP:
                # The image already copies the whole chute folder; a second copy would only cost a layer.
                context.app_copied = context.app_copied or step.dest.rstrip("/") == APP_DIR
    return context, chute, image


def render_dockerfile(
    chute_or_image: Chute | Image | str,
    *,
    serve_target: str | None = None,
    port: int = 8000,
    templates_dir: str | Path | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Render the Dockerfile of a chute, an ``Image`` or a plain base image like ``"python:3.11"``.

    Args:
        chute_or_image: What to build; a chute's ``image`` supplies the base and steps.
        serve_target: What ``CMD`` serves, relative to ``/app``: a spec file name (``"chute.toml"``)
            or ``"module:attr"``; by default the chute's own ``module:attr`` when it was imported,
            else ``"chute.toml"``.
        port: The port the server listens on, exposed and health-checked.
        templates_dir: A folder whose ``Dockerfile.j2`` replaces or extends the shipped one.
        extra: More variables for a user template.

    Raises:
        RenderError: A value cannot be quoted safely (newline or NUL, relative WORKDIR, ...).
    """
    context, chute, image = dockerfile_context(chute_or_image, serve_target=serve_target, port=port)
    variables = context.as_template_context(chute, image) | (extra or {})
    return render_template("Dockerfile.j2", variables, templates_dir)
