"""The Kubernetes objects made from a chute's deployment keywords: autoscaling and egress.

``max_instances`` (with ``scaling_threshold`` and ``shutdown_after_seconds``) becomes a
HorizontalPodAutoscaler (``autoscaling/v2``), or with ``k8s --keda`` a KEDA ``ScaledObject``
that also scales to zero after ``shutdown_after_seconds`` without work. Both scale on the chute's
own load: the cord calls executing and waiting (``chutes_requests_in_flight`` +
``chutes_requests_queued`` from ``/_metrics``), against ``scaling_threshold`` × ``concurrency``
per pod. ``allow_external_egress=False`` becomes a NetworkPolicy allowing only DNS (and the job
database when its address is given).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from chutes.chute.registry import registry_of
from chutes.render.quoting import RenderError

if TYPE_CHECKING:
    from chutes.chute import Chute

__all__ = [
    "BUSY_METRIC",
    "DEFAULT_PROMETHEUS_URL",
    "HPA_MAX_STABILIZATION",
    "busy_query",
    "egress_policy",
    "horizontal_pod_autoscaler",
    "scaled_object",
    "scaling_documents",
    "target_per_pod",
]

BUSY_METRIC = "chutes_requests_busy"
"""The per-pod custom metric the HorizontalPodAutoscaler reads: cord calls executing plus waiting.

A metrics adapter (prometheus-adapter) serves it from the chute's own gauges; the README of the
chute gives the adapter rule.
"""

DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
"""Where KEDA's Prometheus trigger asks by default (the Prometheus Operator's service)."""

HPA_MAX_STABILIZATION = 3600
"""The largest scale-down stabilization window Kubernetes accepts, in seconds."""

_DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def target_per_pod(chute: Chute) -> str:
    """``scaling_threshold`` × ``concurrency`` as a Kubernetes quantity (``"3"``, ``"750m"``)."""
    milli = round(chute.scaling_threshold * chute.concurrency * 1000)
    # A zero target would make every pod count as overloaded; one busy milli-call is the least.
    milli = max(milli, 1)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def busy_query(chute: Chute, namespace: str | None) -> str:
    """The PromQL sum of the chute's calls executing and waiting, over all its pods."""
    selector = f'pod=~"{chute.name}-[a-z0-9]+-[a-z0-9]+"'
    if namespace:
        selector = f'namespace="{namespace}",{selector}'
    return f"sum(chutes_requests_in_flight{{{selector}}}) + sum(chutes_requests_queued{{{selector}}})"


def _scale_down(chute: Chute) -> dict[str, Any]:
    window = min(chute.shutdown_after_seconds, HPA_MAX_STABILIZATION)
    return {"scaleDown": {"stabilizationWindowSeconds": window}}


def horizontal_pod_autoscaler(chute: Chute, metadata: dict[str, Any], replicas: int) -> dict[str, Any]:
    """The ``autoscaling/v2`` HorizontalPodAutoscaler of the chute's Deployment.

    Args:
        chute: A chute with ``max_instances`` set.
        metadata: The Deployment's metadata (name, namespace, labels), reused for the autoscaler.
        replicas: The Deployment's replicas, the autoscaler's floor (at least 1, at most ``max_instances``).
    """
    assert chute.max_instances is not None  # callers check
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": chute.name},
            "minReplicas": min(max(replicas, 1), chute.max_instances),
            "maxReplicas": chute.max_instances,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": BUSY_METRIC},
                        "target": {"type": "AverageValue", "averageValue": target_per_pod(chute)},
                    },
                }
            ],
            "behavior": _scale_down(chute),
        },
    }


def scaled_object(
    chute: Chute,
    metadata: dict[str, Any],
    namespace: str | None,
    prometheus_url: str | None = None,
    wake_query: str | None = None,
) -> dict[str, Any]:
    """The KEDA ``ScaledObject`` (``keda.sh/v1alpha1``) of the chute's Deployment, scaling to zero when idle.

    KEDA owns the HorizontalPodAutoscaler then, so the manifests carry this instead of one.

    Args:
        chute: A chute with ``max_instances`` set.
        metadata: The Deployment's metadata, reused.
        namespace: The namespace the pods run in, to narrow the query.
        prometheus_url: Prometheus's address (default :data:`DEFAULT_PROMETHEUS_URL`).
        wake_query: A PromQL query that is above zero while requests arrive with no pod running (your
            ingress's request rate for the chute's Service, say). At zero replicas the chute's own gauges
            do not exist, so without such a query a chute scaled to zero wakes only when scaled by hand.
    """
    assert chute.max_instances is not None  # callers check
    url = prometheus_url or DEFAULT_PROMETHEUS_URL
    if not url.startswith(("http://", "https://")) or any(char.isspace() for char in url):
        raise RenderError(f"prometheus URL must be an http(s) URL like {DEFAULT_PROMETHEUS_URL!r}, got {url!r}")
    triggers: list[dict[str, Any]] = [
        {
            "type": "prometheus",
            "name": "busy",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": url,
                "query": busy_query(chute, namespace),
                # KEDA reads trigger metadata as strings.
                "threshold": _decimal(chute.scaling_threshold * chute.concurrency),
                "activationThreshold": "0",
            },
        }
    ]
    if wake_query:
        triggers.append(
            {
                "type": "prometheus",
                "name": "wake",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": url,
                    "query": wake_query,
                    "threshold": _decimal(chute.scaling_threshold * chute.concurrency),
                    "activationThreshold": "0",
                },
            }
        )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": chute.name},
            "pollingInterval": 15,
            # KEDA waits this long after the last active trigger before scaling to zero.
            "cooldownPeriod": chute.shutdown_after_seconds,
            "minReplicaCount": 0,
            "maxReplicaCount": chute.max_instances,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _scale_down(chute)}},
            "triggers": triggers,
        },
    }


def _decimal(value: float) -> str:
    text = f"{max(value, 0.001):.3f}".rstrip("0").rstrip(".")
    return text


def egress_policy(
    chute: Chute, metadata: dict[str, Any], database_cidr: str | None = None, database_port: int = 5432
) -> dict[str, Any]:
    """A NetworkPolicy letting the chute's pods reach only DNS (and the job database, when given).

    Args:
        chute: The chute (its pods are selected by ``app.kubernetes.io/name``).
        metadata: The Deployment's metadata; the policy is named ``<chute>-egress``.
        database_cidr: The job database's address as a CIDR (``10.0.3.7/32``), allowed on ``database_port``.
        database_port: The database's TCP port.
    """
    rules: list[dict[str, Any]] = [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": list(_DNS_PORTS),
        }
    ]
    if database_cidr is not None:
        try:
            network = ipaddress.ip_network(database_cidr, strict=False)
        except ValueError:
            raise RenderError(
                f"database CIDR must be an address block like '10.0.3.7/32', got {database_cidr!r}"
            ) from None
        if isinstance(database_port, bool) or not isinstance(database_port, int) or not 1 <= database_port <= 65535:
            raise RenderError(f"database port must be 1-65535, got {database_port!r}")
        rules.append(
            {"to": [{"ipBlock": {"cidr": str(network)}}], "ports": [{"protocol": "TCP", "port": database_port}]}
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata | {"name": f"{chute.name}-egress"[:63].rstrip("-")},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": chute.name}},
            "policyTypes": ["Egress"],
            "egress": rules,
        },
    }


def scaling_documents(
    chute: Chute,
    metadata: dict[str, Any],
    *,
    replicas: int,
    namespace: str | None,
    keda: bool = False,
    prometheus_url: str | None = None,
    wake_query: str | None = None,
    database_cidr: str | None = None,
    database_port: int = 5432,
    database_url_secret: str | None = None,
) -> list[dict[str, Any]]:
    """Every object the deployment keywords call for, in order: autoscaler or ScaledObject, NetworkPolicy.

    Raises:
        RenderError: The objects could not work together: an autoscaler running several replicas of a chute
            with jobs on per-pod SQLite stores, or a NetworkPolicy that would cut the pods off their job database.
    """
    documents: list[dict[str, Any]] = []
    scales_out = chute.max_instances is not None and chute.max_instances > 1
    if scales_out and database_url_secret is None and registry_of(chute).jobs:
        raise RenderError(
            f"max_instances = {chute.max_instances} lets the autoscaler run several replicas, and a chute with "
            "jobs then needs a shared job database (each pod's SQLite file is its own): give "
            "--database-url-secret NAME"
        )
    if not chute.allow_external_egress and database_url_secret is not None and database_cidr is None:
        raise RenderError(
            "allow_external_egress = false makes a NetworkPolicy that would block the job database: give its "
            "address with --database-cidr (and --database-port unless 5432)"
        )
    if chute.max_instances is not None:
        if keda:
            documents.append(scaled_object(chute, dict(metadata), namespace, prometheus_url, wake_query))
        else:
            documents.append(horizontal_pod_autoscaler(chute, dict(metadata), replicas))
    elif keda:
        raise RenderError("--keda needs max_instances on the chute (the most replicas KEDA may scale to)")
    if not chute.allow_external_egress:
        documents.append(egress_policy(chute, dict(metadata), database_cidr, database_port))
    elif database_cidr is not None:
        raise RenderError("--database-cidr only applies with allow_external_egress = false (a NetworkPolicy)")
    return documents
