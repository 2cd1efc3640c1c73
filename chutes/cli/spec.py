"""Commands about spec files: ``validate``, ``schema``, ``export`` and ``init``."""

from __future__ import annotations

import argparse
import contextlib
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from chutes.deployment import hosted_only_warnings
from chutes.spec.loader import check_spec
from chutes.spec.scaffold import scaffold
from chutes.spec.schema import schema_path, schema_text


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add this module's commands to the parser."""
    validate = commands.add_parser(
        "validate",
        help="check spec files and chutes defined in Python, reporting every problem at once",
        description="Check spec files, module:attr references and Python files (app.py, app.py:chute). Each "
        "problem is one line on stderr, FILE:LINE:COL: key.path: message; each valid target is one 'TARGET: ok' "
        "line on stdout, after its warnings on stderr. Exit 1 if any target has a problem.",
    )
    validate.add_argument(
        "specs", nargs="+", metavar="TARGET", help="chute.toml / chute.yaml files, module:attr, app.py[:attr]"
    )
    validate.set_defaults(handler=run_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of spec files")
    schema.add_argument("--path", action="store_true", help="print where the installed schema file is instead")
    schema.add_argument(
        "--markdown", action="store_true", help="print the reference of every table and key as Markdown instead"
    )
    schema.add_argument(
        "--write",
        metavar="FILE",
        help="replace the Markdown reference between the spec-reference markers of FILE (like README.md)",
    )
    schema.set_defaults(handler=run_schema)

    export = commands.add_parser("export", help="write the spec of a chute defined in Python")
    export.add_argument("target", metavar="TARGET", help="module:attr of a Chute (or a spec file, to normalise it)")
    export.add_argument("--out", "-o", metavar="FILE", help="write to FILE instead of stdout")
    export.add_argument("--format", choices=("toml", "yaml"), help="spec format (default: from --out, else toml)")
    export.set_defaults(handler=run_export)

    init = commands.add_parser("init", help="write a new chute.toml and handler module into an empty folder")
    init.add_argument("folder", nargs="?", default=".", metavar="DIR", help="the folder (default: current)")
    init.add_argument("--username", default="me", help="the chute's owner (default: me)")
    init.set_defaults(handler=run_init)


def run_validate(args: argparse.Namespace) -> int:
    """Check each target; problems and warnings go to stderr, one line each."""
    from chutes.target import is_spec_path

    status = 0
    for target in args.specs:
        problems, warnings = _check_spec(target) if is_spec_path(target) else _check_python(target)
        for line in (*problems, *warnings):
            print(line, file=sys.stderr)
        if problems:
            status = 1
        else:
            print(f"{target}: ok")
    return status


def _check_spec(spec: str) -> tuple[list[str], list[str]]:
    problems = check_spec(spec)
    if problems:
        return [str(problem) for problem in problems], []
    from chutes.spec.loader import load_spec
    from chutes.spec.source import parse_document

    warnings = hosted_only_warnings(load_spec(spec).config)
    if not warnings:
        return [], []
    document = parse_document(Path(spec), Path(spec).read_text(encoding="utf-8"))
    located = []
    for warning in warnings:
        key = warning.split(" ", 1)[0]
        line, col = document.locate(("chute", key))
        located.append(f"{spec}:{line}:{col}: chute.{key}: warning: {warning}")
    return [], located


def _check_python(target: str) -> tuple[list[str], list[str]]:
    """Import a ``module:attr`` or Python file target: definition errors are problems, as in a spec."""
    from chutes.target import load_target

    try:
        with contextlib.redirect_stdout(sys.stderr):
            chute = load_target(target)
    except ValueError as exc:  # definition errors, pydantic's included, and unresolvable references
        return [f"{target}: {line}" for line in str(exc).splitlines() if line.strip()], []
    return [], [f"{target}: warning: {warning}" for warning in hosted_only_warnings(chute.config)]


def run_schema(args: argparse.Namespace) -> int:
    """Print the schema (or its installed path, or its Markdown reference), or update a file's reference."""
    if args.write:
        from chutes.render.spec_reference import write_reference

        try:
            changed = write_reference(Path(args.write))
        except OSError as exc:
            return cannot_write(args.write, exc)
        print(f"{'updated' if changed else 'unchanged'}: {args.write}")
    elif args.markdown:
        from chutes.render.spec_reference import spec_reference

        sys.stdout.write(spec_reference())
    elif args.path:
        print(schema_path())
    else:
        sys.stdout.write(schema_text())
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the spec of a chute to stdout or a file."""
    from chutes.spec.export import export_text
    from chutes.target import load_target

    fmt = args.format or ("yaml" if args.out and args.out.endswith((".yaml", ".yml")) else "toml")
    # What the chute's modules print while importing must not end up in the spec written to stdout.
    with contextlib.redirect_stdout(sys.stderr):
        chute = load_target(args.target)
    text = export_text(chute, fmt)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            return cannot_write(args.out, exc)
    else:
        sys.stdout.write(text)
    return 0


def cannot_write(path: str | Path, exc: OSError) -> int:
    """Report a file or folder that cannot be written, as one line; returns exit status 1."""
    print(f"error: cannot write {str(path)!r}: {exc.strerror or exc}", file=sys.stderr)
    return 1


def run_init(args: argparse.Namespace) -> int:
    """Scaffold a new chute and say what to do next."""
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", args.username):
        print(f"error: --username {args.username!r} must be lowercase letters, digits and hyphens", file=sys.stderr)
        return 2
    folder = Path(args.folder)
    try:
        written = scaffold(folder, username=args.username)
    except OSError as exc:
        return cannot_write(folder, exc)
    for path in written:
        print(f"wrote {path}")
    print(f"next: python -m chutes serve {shlex.quote(str(folder / 'chute.toml'))}")
    return 0
