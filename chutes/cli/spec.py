"""Commands about spec files: ``validate``, ``schema``, ``export`` and ``init``."""

from __future__ import annotations

import argparse
import contextlib
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from chutes.spec.loader import check_spec
from chutes.spec.scaffold import scaffold
from chutes.spec.schema import schema_path, schema_text


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add this module's commands to the parser."""
    validate = commands.add_parser(
        "validate",
        help="check spec files, reporting every problem at once",
        description="Check spec files. Each problem is one line on stderr, FILE:LINE:COL: key.path: message; "
        "each valid file is one 'FILE: ok' line on stdout. Exit 1 if any file has a problem.",
    )
    validate.add_argument("specs", nargs="+", metavar="SPEC", help="chute.toml / chute.yaml files")
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
    """Check each spec; problems go to stderr, one line each."""
    status = 0
    for spec in args.specs:
        problems = check_spec(spec)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            status = 1
        else:
            print(f"{spec}: ok")
    return status


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
