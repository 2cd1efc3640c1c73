"""Commands that generate files from a chute: ``dockerfile``, ``readme``, ``k8s`` and ``build``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from chutes.chute import Chute
from chutes.cli.spec import cannot_write
from chutes.render.build import BuildOptions, build, serve_target_of
from chutes.render.dockerfile import render_dockerfile, secret_env_keys
from chutes.render.k8s import K8sOptions, render_k8s
from chutes.render.readme import render_readme
from chutes.target import load_target

_TARGET_HELP = "a spec file (chute.toml) or module:attr"


def _emit(text: str, output: str | None) -> int:
    if output is None or output == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        return cannot_write(output, exc)
    return 0


def _load(target: str) -> Chute:
    # What the chute's modules print while importing must not end up in the file written to stdout.
    with contextlib.redirect_stdout(sys.stderr):
        return load_target(target)


def _common(parser: argparse.ArgumentParser, output: bool = True) -> None:
    parser.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    parser.add_argument("--templates", metavar="DIR", help="folder of templates overriding the shipped ones")
    if output:
        parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")


def _port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8000, help="port the server listens on (default: 8000)")


def _readme_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", default="http://localhost:8000", help="URL the examples call")
    parser.add_argument("--timezone", default="UTC", help="time zone of the cron schedules (default: UTC)")


def _k8s_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", help="image the pods run (default: the chute's image reference)")
    parser.add_argument("--replicas", type=int, default=1, help="pods of the Deployment (default: 1)")
    parser.add_argument("--namespace", help="namespace of every object (default: none)")
    parser.add_argument(
        "--data-pvc", metavar="NAME", help="PersistentVolumeClaim holding CHUTES_DATA_DIR, shared with the CronJobs"
    )
    parser.add_argument("--cpu", default="1", help="CPU request per pod (default: 1)")
    parser.add_argument("--memory", default="2Gi", help="memory request and limit per pod (default: 2Gi)")
    parser.add_argument(
        "--keda",
        action="store_true",
        help="with max_instances: a KEDA ScaledObject scaling to zero when idle, instead of a HorizontalPodAutoscaler",
    )
    parser.add_argument("--prometheus-url", metavar="URL", help="Prometheus that KEDA's trigger asks (with --keda)")
    parser.add_argument(
        "--keda-wake-query", metavar="PROMQL", help="query above zero while requests wait for a chute scaled to zero"
    )
    parser.add_argument(
        "--database-cidr", metavar="CIDR", help="job database address the egress NetworkPolicy allows, like 10.0.3.7/32"
    )
    parser.add_argument("--database-port", type=int, default=5432, help="job database port (default: 5432)")
    parser.add_argument(
        "--database-url-secret",
        metavar="NAME",
        help="Secret with the PostgreSQL job database URL (key 'url'): replicas share runs, no CronJob is needed",
    )
    parser.add_argument(
        "--api-key-secret", metavar="NAME", help="Secret with an API key (key 'api-key') the CronJobs send"
    )


def _k8s_kwargs(args: argparse.Namespace) -> K8sOptions:
    return {
        "image": args.image,
        "replicas": args.replicas,
        "namespace": args.namespace,
        "data_pvc": args.data_pvc,
        "cpu": args.cpu,
        "memory": args.memory,
        "keda": args.keda,
        "prometheus_url": args.prometheus_url,
        "wake_query": args.keda_wake_query,
        "database_cidr": args.database_cidr,
        "database_port": args.database_port,
        "database_url_secret": args.database_url_secret,
        "api_key_secret": args.api_key_secret,
    }


def _warn_secrets(chute: Chute) -> None:
    for key in secret_env_keys(chute.image):
        print(
            f"warning: image environment variable {key} looks like a secret; the image stores it for anyone who "
            f"pulls it: set it when the container runs instead (docker run -e {key}, a Kubernetes Secret)",
            file=sys.stderr,
        )


def _dockerfile(args: argparse.Namespace) -> int:
    chute = _load(args.target)
    _warn_secrets(chute)
    text = render_dockerfile(
        chute, serve_target=serve_target_of(args.target), port=args.port, templates_dir=args.templates
    )
    return _emit(text, args.output)


def _readme(args: argparse.Namespace) -> int:
    chute = _load(args.target)
    text = render_readme(
        chute,
        serve_target=serve_target_of(args.target),
        base_url=args.base_url,
        timezone=args.timezone,
        templates_dir=args.templates,
    )
    return _emit(text, args.output)


def _k8s(args: argparse.Namespace) -> int:
    chute = _load(args.target)
    options: K8sOptions = {
        **_k8s_kwargs(args),
        "serve_target": serve_target_of(args.target),
        "port": args.port,
        "timezone": args.timezone,
    }
    return _emit(render_k8s(chute, templates_dir=args.templates, **options), args.output)


def _build(args: argparse.Namespace) -> int:
    options = BuildOptions(
        templates_dir=args.templates,
        port=args.port,
        base_url=args.base_url,
        timezone=args.timezone,
        k8s=_k8s_kwargs(args),
    )
    chute = _load(args.target)
    _warn_secrets(chute)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            paths = build(args.target, args.out, options, chute=chute)
    except OSError as exc:
        return cannot_write(args.out, exc)
    print(f"wrote {', '.join(path.name for path in paths)} to {args.out}")
    return 0


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``dockerfile``, ``readme``, ``k8s`` and ``build`` commands."""
    parser = commands.add_parser("dockerfile", help="print the chute's Dockerfile")
    _common(parser)
    _port(parser)
    parser.set_defaults(handler=_dockerfile)

    parser = commands.add_parser("readme", help="print the chute's README (Markdown)")
    _common(parser)
    _readme_options(parser)
    parser.set_defaults(handler=_readme)

    parser = commands.add_parser("k8s", help="print the chute's Kubernetes manifests (YAML)")
    _common(parser)
    _port(parser)
    _k8s_options(parser)
    parser.add_argument("--timezone", default="UTC", help="time zone of the CronJob schedules (default: UTC)")
    parser.set_defaults(handler=_k8s)

    parser = commands.add_parser("build", help="write Dockerfile, README.md, k8s.yaml and the build context")
    _common(parser, output=False)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write (a Docker build context)")
    _port(parser)
    _readme_options(parser)
    _k8s_options(parser)
    parser.set_defaults(handler=_build)
