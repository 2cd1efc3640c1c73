"""The Jinja environment that renders every generated file, with user-overridable templates.

Templates ship as package data in ``chutes/render/jinja``. A user folder given as ``templates_dir``
comes first, so a user ``Dockerfile.j2`` replaces the shipped one; the shipped templates stay
reachable under ``base/``, so a user template can ``{% extends "base/Dockerfile.j2" %}`` and
override only the blocks it needs (``{% block setup %}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import yaml

from chutes.render.quoting import docker_json, docker_word, markdown_cell, markdown_line
from chutes.render.schema import code

__all__ = ["PACKAGE_TEMPLATES", "make_environment", "render_template"]

PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "jinja"
"""The folder of the shipped templates."""


class _PlainDumper(yaml.SafeDumper):
    """A safe dumper that writes shared objects out in full instead of as ``&id001`` anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _to_yaml(document: Any) -> str:
    # Key order is meaningful to readers of manifests (apiVersion, kind, metadata first).
    return yaml.dump(
        document, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000
    )


def make_environment(templates_dir: str | Path | None = None) -> jinja2.Environment:
    """Build the rendering environment: user templates first, then the shipped ones.

    Args:
        templates_dir: A folder of user templates overriding the shipped ones by file name.

    Raises:
        ValueError: ``templates_dir`` is not a folder.
    """
    shipped = jinja2.FileSystemLoader(PACKAGE_TEMPLATES)
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        folder = Path(templates_dir)
        if not folder.is_dir():
            raise ValueError(f"templates folder {str(folder)!r} does not exist or is not a folder")
        loaders.append(jinja2.FileSystemLoader(folder))
    loaders += [shipped, jinja2.PrefixLoader({"base": shipped})]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        # A typo in a template must fail loudly rather than render an empty string into a Dockerfile.
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["docker_json"] = docker_json
    env.filters["docker_word"] = docker_word
    env.filters["md_cell"] = markdown_cell
    env.filters["md_line"] = markdown_line
    env.filters["md_code"] = lambda value: markdown_cell(code(str(value)))
    env.filters["to_yaml"] = _to_yaml
    env.filters["to_json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


def render_template(name: str, context: dict[str, Any], templates_dir: str | Path | None = None) -> str:
    """Render template ``name`` with ``context``; raises ``ValueError`` for a missing or broken template."""
    env = make_environment(templates_dir)
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise ValueError(f"template {exc.name!r} not found") from None
    except jinja2.UndefinedError as exc:
        raise ValueError(f"template {name}: {exc}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"template {exc.filename or name}:{exc.lineno}: {exc.message}") from None
