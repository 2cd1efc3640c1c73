"""Rendering a chute as Kubernetes manifests: a Deployment, a Service and a CronJob per scheduled job."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from chutes.chute.registry import registry_of
from chutes.gpu import CATALOG, GPU
from chutes.render.dockerfile import DATA_DIR, UID, default_serve_target
from chutes.render.environment import render_template
from chutes.render.k8s_jobs import check_store, cronjobs, job_ports, store_env
from chutes.render.quoting import RenderError, check_line
from chutes.render.scaling import scaling_documents

if TYPE_CHECKING:
    from chutes.chute import Chute

__all__ = ["GPU_PRODUCT_LABELS", "default_image", "k8s_documents", "render_k8s"]

GPU_PRODUCT_LABELS: dict[str, tuple[str, ...]] = {
    gpu.name: gpu.product_labels for gpu in CATALOG.values() if gpu.product_labels
}
"""Catalog GPU name -> values of the ``nvidia.com/gpu.product`` node label set by GPU feature discovery."""

PRODUCT_LABEL = "nvidia.com/gpu.product"
MEMORY_LABEL = "nvidia.com/gpu.memory"
# Cards report less memory than their nominal size (a 16 GB T4 reports 15360 MiB, an 80 GB H100
# 81559 MiB), so the VRAM floor allows 10% below nominal.
_VRAM_TOLERANCE = 0.9
_CRONJOB_NAME_MAX = 52
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def product_labels(gpu: GPU) -> tuple[str, ...]:
    """The ``nvidia.com/gpu.product`` values of a catalog GPU (none for other vendors' cards)."""
    if gpu.vendor != "nvidia":
        return ()
    return gpu.product_labels or ("-".join(gpu.display_name.split()),)


def default_image(chute: Chute) -> str:
    """The image reference the manifests run when none is given: the ``Image``'s, else ``username/name:tag``."""
    from chutes.image import Image

    if isinstance(chute.image, Image):
        return chute.image.reference
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", chute.revision)[:128] if chute.revision else "latest"
    return f"{chute.username}/{chute.name}:{tag}"


def _service_name(chute: Chute) -> str:
    """The chute's name, made a DNS-1035 label as Services require: it must start with a letter."""
    return chute.name if chute.name[0].isalpha() else f"c-{chute.name}"[:63].rstrip("-")


def _affinity(chute: Chute) -> dict[str, Any] | None:
    selector = chute.node_selector
    if selector is None or selector.cpu_only:
        return None
    expressions: list[dict[str, Any]] = []
    narrowed = selector.include is not None or selector.max_hourly_price_per_gpu is not None
    if narrowed:
        values = [label for gpu in selector.matching_gpus() for label in product_labels(gpu)]
        if not values:
            names = ", ".join(gpu.name for gpu in selector.matching_gpus())
            raise RenderError(
                f"the manifests request NVIDIA GPUs (nvidia.com/gpu), and the node selector allows only {names}; "
                "include an NVIDIA card"
            )
        expressions.append({"key": PRODUCT_LABEL, "operator": "In", "values": values})
    elif selector.exclude:
        values = [label for name in selector.exclude for label in product_labels(CATALOG[name])]
        expressions.append({"key": PRODUCT_LABEL, "operator": "NotIn", "values": values})
    if selector.min_vram_gb_per_gpu > 0:
        floor = math.floor(selector.min_vram_gb_per_gpu * 1024 * _VRAM_TOLERANCE)
        expressions.append({"key": MEMORY_LABEL, "operator": "Gt", "values": [str(floor - 1)]})
    if not expressions:
        return None
    terms = [{"matchExpressions": expressions}]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


def _scrape_annotations(chute: Chute, port: int) -> dict[str, Any]:
    """Prometheus scrape annotations on the pods, when an autoscaler reads their load."""
    if chute.max_instances is None:
        return {}
    return {
        "annotations": {
            "prometheus.io/scrape": "true",
            "prometheus.io/path": "/_metrics",
            "prometheus.io/port": str(port),
        }
    }


def _quantity(value: str, what: str) -> str:
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise RenderError(f"{what} must be a Kubernetes quantity like '2', '500m' or '4Gi', got {value!r}")
    return value


def k8s_documents(
    chute: Chute,
    *,
    image: str | None = None,
    replicas: int = 1,
    namespace: str | None = None,
    serve_target: str | None = None,
    port: int = 8000,
    data_pvc: str | None = None,
    cpu: str = "1",
    memory: str = "2Gi",
    startup_timeout: int = 600,
    shutdown_grace: float = 10.0,
    drain_seconds: float = 5.0,
    timezone: str = "UTC",
    keda: bool = False,
    prometheus_url: str | None = None,
    wake_query: str | None = None,
    database_cidr: str | None = None,
    database_port: int = 5432,
    database_url_secret: str | None = None,
    api_key_secret: str | None = None,
) -> list[dict[str, Any]]:
    """Build the manifests as plain data: Deployment, Service, then one CronJob per scheduled job.

    Args:
        chute: The chute to deploy.
        image: The image the pods run; by default the ``Image``'s reference or ``username/name:latest``.
        replicas: Pods of the Deployment.
        namespace: Namespace of every object; none by default (the current one).
        serve_target: The TARGET inside the image (``chute.toml`` or ``module:attr``).
        port: The container port.
        data_pvc: A PersistentVolumeClaim mounted at ``CHUTES_DATA_DIR`` in the Deployment and the
            CronJobs, so that job runs share one store; without it each pod gets an ``emptyDir``.
        cpu: CPU request of each pod.
        memory: Memory request and limit of each pod.
        startup_timeout: Seconds the startup hooks may take before the pod is restarted.
        shutdown_grace: ``CHUTES_SHUTDOWN_GRACE``, to size ``terminationGracePeriodSeconds``.
        drain_seconds: ``CHUTES_DRAIN_SECONDS``, set in the pods; the ``preStop`` waits as long.
        timezone: Time zone of the CronJob schedules.
        keda: With ``max_instances``, a KEDA ScaledObject (scaling to zero) instead of a HorizontalPodAutoscaler.
        prometheus_url: Where KEDA's Prometheus trigger asks.
        wake_query: PromQL that wakes a chute scaled to zero (see :func:`chutes.render.scaling.scaled_object`).
        database_cidr: The job database's address block, allowed by the egress NetworkPolicy.
        database_port: The job database's port.
        database_url_secret: A Secret holding the job database's URL (key ``url``): the replicas share the
            job store and their schedulers fire each time once, so no CronJob is made. Without it the
            store is SQLite in the pod, and more than one replica is refused.
        api_key_secret: A Secret holding an API key (key ``api-key``) the CronJobs send, for a chute
            that requires one (``CHUTES_API_KEYS``).

    ``cpu`` and ``memory`` give way to the node selector's ``min_cpu_count`` and ``min_memory_gb``; a
    CPU-only selector (``gpu_count=0``) requests no GPU and sets no GPU affinity.
    """
    image = check_line(image if image is not None else default_image(chute), "image")
    if not image.strip() or any(char.isspace() for char in image):
        raise RenderError(f"image must be an image reference like 'mycompany/chute:1.0', got {image!r}")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise RenderError(f"replicas must be a non-negative integer, got {replicas!r}")
    check_store(chute, replicas, database_url_secret)
    for what, value in (("namespace", namespace), ("data_pvc", data_pvc)):
        if value is not None and not _DNS_LABEL.fullmatch(value):
            raise RenderError(f"{what} must be a DNS label (lowercase letters, digits, '-'), got {value!r}")
    target = check_line(serve_target if serve_target is not None else default_serve_target(chute), "serve target")
    labels = {"app.kubernetes.io/name": chute.name, "app.kubernetes.io/managed-by": "chutes"}
    namespaced = {"namespace": namespace} if namespace else {}
    metadata: dict[str, Any] = {"name": chute.name, **namespaced, "labels": dict(labels)}

    selector = chute.node_selector
    if selector is not None and selector.min_cpu_count is not None:
        cpu = str(selector.min_cpu_count)
    if selector is not None and selector.min_memory_gb is not None:
        memory = f"{selector.min_memory_gb}Gi"
    resources: dict[str, Any] = {"requests": {"cpu": _quantity(cpu, "cpu"), "memory": _quantity(memory, "memory")}}
    resources["limits"] = {"memory": memory}
    if selector is not None and not selector.cpu_only:
        resources["limits"]["nvidia.com/gpu"] = selector.gpu_count
    volume: dict[str, Any] = {"name": "data"}
    volume |= {"persistentVolumeClaim": {"claimName": data_pvc}} if data_pvc else {"emptyDir": {}}
    env = [
        {"name": "CHUTES_DATA_DIR", "value": DATA_DIR},
        *store_env(chute, database_url_secret),
        {"name": "CHUTES_TIMEZONE", "value": timezone},
        {"name": "CHUTES_DRAIN_SECONDS", "value": f"{drain_seconds:g}"},
        {"name": "CHUTES_SHUTDOWN_GRACE", "value": f"{shutdown_grace:g}"},
    ]

    def pod_spec(container: dict[str, Any], restart: str | None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": UID,
                "runAsGroup": UID,
                "fsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    **container,
                    "env": env,
                    "resources": resources,
                    "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
            "volumes": [volume],
        }
        if restart:
            spec["restartPolicy"] = restart
        if (affinity := _affinity(chute)) is not None:
            spec["affinity"] = affinity
            spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        return spec

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "failureThreshold": failures}

    server = {
        "name": "chute",
        "command": ["python3", "-m", "chutes", "serve", target, "--host", "0.0.0.0", "--port", str(port)],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}, *job_ports(chute, {"http"})],
        # Startup hooks may load a model for minutes; liveness only starts once this probe passes.
        "startupProbe": probe("/_health", 10, max(1, math.ceil(startup_timeout / 10))),
        "readinessProbe": probe("/_ready", 5, 3),
        "livenessProbe": probe("/_health", 20, 3),
        # Endpoints drop the pod a moment after it starts terminating; keep serving until they have. Then
        # SIGTERM: the chute drains as long again (/_ready 503, still serving), then gives in-flight work
        # its grace (README, "Shutdown").
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", f"{drain_seconds:g}"]}}},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": chute.name}},
            "template": {
                "metadata": {"labels": dict(labels), **_scrape_annotations(chute, port)},
                "spec": {
                    "terminationGracePeriodSeconds": 2 * math.ceil(drain_seconds) + math.ceil(shutdown_grace) + 15,
                    **pod_spec(server, None),
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata | {"name": _service_name(chute)},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": chute.name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    documents: list[dict[str, Any]] = [deployment, service]
    documents += scaling_documents(
        chute,
        metadata,
        replicas=replicas,
        namespace=namespace,
        keda=keda,
        prometheus_url=prometheus_url,
        wake_query=wake_query,
        database_cidr=database_cidr,
        database_port=database_port,
        database_url_secret=database_url_secret,
    )
    documents += cronjobs(
        chute, labels=labels, namespace=namespace, service=_service_name(chute), timezone=timezone, uid=UID,
        database_url_secret=database_url_secret, api_key_secret=api_key_secret,
    )  # fmt: skip
    return documents


class K8sOptions(TypedDict, total=False):
    """Keyword arguments of :func:`k8s_documents`, also accepted by :func:`render_k8s`."""

    image: str | None
    replicas: int
    namespace: str | None
    serve_target: str | None
    port: int
    data_pvc: str | None
    cpu: str
    memory: str
    startup_timeout: int
    shutdown_grace: float
    drain_seconds: float
    timezone: str
    keda: bool
    prometheus_url: str | None
    wake_query: str | None
    database_cidr: str | None
    database_port: int
    database_url_secret: str | None
    api_key_secret: str | None


def render_k8s(
    chute: Chute,
    *,
    templates_dir: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    **options: Unpack[K8sOptions],
) -> str:
    """Render the chute's Kubernetes manifests as one multi-document YAML.

    Args:
        chute: The chute to deploy.
        templates_dir: A folder whose ``k8s.yaml.j2`` replaces or extends the shipped one.
        extra: More variables for a user template.
        **options: The manifests' settings, as for :func:`k8s_documents`.
    """
    documents = k8s_documents(chute, **options)
    scheduled = any(job.schedule for job in registry_of(chute).jobs.values())
    context = {
        "chute": chute,
        "documents": documents,
        "data_pvc": options.get("data_pvc"),
        "data_dir": DATA_DIR,
        "scheduled": scheduled,
        "database_url_secret": options.get("database_url_secret"),
        "jobs": list(registry_of(chute).jobs.values()),
    }
    return render_template("k8s.yaml.j2", context | (extra or {}), templates_dir)
