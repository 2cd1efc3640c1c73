"""What a chute's jobs add to its Kubernetes manifests: the job store's settings, CronJobs, job ports.

With a shared job database (``database_url_secret``) every replica's scheduler runs and each scheduled
time fires once (the store decides), so no CronJob is needed. Without one, the job store is SQLite in
the pod, which a WAL file cannot share across machines: one replica only, its own scheduler off, and a
CronJob per scheduled job that POSTs to the Service's ``/_jobs/{name}`` from a small curl image
(no GPU, no model loading, the API key from a Secret when the chute needs one).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, Final

from chutes.chute.registry import registry_of
from chutes.render.quoting import RenderError

if TYPE_CHECKING:
    from chutes.chute import Chute
    from chutes.job import Job

__all__ = ["TRIGGER_IMAGE", "check_store", "cronjob_name", "cronjobs", "job_ports", "store_env"]

TRIGGER_IMAGE: Final = "curlimages/curl:8.11.1"
DATABASE_URL_KEY: Final = "url"  # the key of the database URL in the Secret given by --database-url-secret
API_KEY_KEY: Final = "api-key"  # the key of an API key in the Secret given by --api-key-secret
_CRONJOB_NAME_MAX = 52
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def check_store(chute: Chute, replicas: int, database_url_secret: str | None) -> None:
    """Refuse several replicas on the SQLite store, saying why and what to do."""
    if database_url_secret is not None and not _DNS_LABEL.fullmatch(database_url_secret):
        raise RenderError(
            f"database_url_secret must be a Secret name (lowercase letters, digits, '-'), got {database_url_secret!r}"
        )
    if replicas > 1 and database_url_secret is None and registry_of(chute).jobs:
        raise RenderError(
            f"--replicas {replicas} needs a shared job database: without one each pod keeps its job runs in its "
            "own SQLite file (SQLite's WAL cannot be shared between machines), so runs submitted to one replica "
            "are invisible to the others and lost with its pod. Give --database-url-secret NAME, a Secret "
            f"holding a PostgreSQL URL under the key '{DATABASE_URL_KEY}', or deploy one replica"
        )


def store_env(chute: Chute, database_url_secret: str | None) -> list[dict[str, Any]]:
    """The pods' environment for the job store: the database URL from its Secret, or the scheduler off."""
    if database_url_secret is not None:
        secret = {"secretKeyRef": {"name": database_url_secret, "key": DATABASE_URL_KEY}}
        return [{"name": "CHUTES_DATABASE_URL", "valueFrom": secret}]
    if any(job.schedule for job in registry_of(chute).jobs.values()):
        # The CronJobs fire the schedules; the pod's own scheduler would fire them again.
        return [{"name": "CHUTES_SCHEDULER", "value": "false"}]
    return []


def job_ports(chute: Chute, taken: set[str]) -> list[dict[str, Any]]:
    """The container ports the jobs declare (the SDK's ``ports``), once each; ``taken`` holds names in use."""
    ports: dict[str, dict[str, Any]] = {}
    for job in registry_of(chute).jobs.values():
        for port in job.ports:
            entry = {"name": port.name, "containerPort": port.port, "protocol": "UDP" if port.proto == "udp" else "TCP"}
            if port.name in taken:
                raise RenderError(f"job {job.name}: port name {port.name!r} is the server's own; choose another")
            if port.name in ports and ports[port.name] != entry:
                raise RenderError(f"job {job.name}: port {port.name!r} is declared twice with different numbers")
            ports[port.name] = entry
    return list(ports.values())


def cronjob_name(chute: Chute, job: Job) -> str:
    """The CronJob's name: the chute's and the job's, unique even when lowercasing or truncating collide."""
    slug = re.sub(r"[^a-z0-9-]+", "-", job.name.lower()).strip("-") or "job"
    name = f"{chute.name}-{slug}"
    if len(name) > _CRONJOB_NAME_MAX or slug != job.name:
        digest = hashlib.sha256(job.name.encode()).hexdigest()[:6]
        name = f"{name[: _CRONJOB_NAME_MAX - 7].rstrip('-')}-{digest}"
    return name


def cronjobs(
    chute: Chute, *, labels: dict[str, str], namespace: str | None, service: str, timezone: str, uid: int,
    database_url_secret: str | None, api_key_secret: str | None, trigger_image: str = TRIGGER_IMAGE,
) -> list[dict[str, Any]]:  # fmt: skip
    """One CronJob per scheduled job, firing it over HTTP; none with a shared job database."""
    if database_url_secret is not None:
        return []
    if api_key_secret is not None and not _DNS_LABEL.fullmatch(api_key_secret):
        raise RenderError(
            f"api_key_secret must be a Secret name (lowercase letters, digits, '-'), got {api_key_secret!r}"
        )
    host = f"{service}.{namespace}.svc" if namespace else service
    namespaced = {"namespace": namespace} if namespace else {}
    env: list[dict[str, Any]] = []
    auth: list[str] = []
    if api_key_secret is not None:
        env.append(
            {"name": "CHUTES_API_KEY", "valueFrom": {"secretKeyRef": {"name": api_key_secret, "key": API_KEY_KEY}}}
        )
        auth = ["-H", "X-API-Key: $(CHUTES_API_KEY)"]  # expanded by Kubernetes, no shell involved
    documents = []
    for job in registry_of(chute).jobs.values():
        if not job.schedule:
            continue
        name = cronjob_name(chute, job)
        job_labels = labels | {"app.kubernetes.io/component": "job", "chutes.ai/job": name}
        trigger = {
            "name": "trigger",
            "image": trigger_image,
            "imagePullPolicy": "IfNotPresent",
            # --retry: a pod restarting during its rollout is waited for, not a missed firing.
            "command": [
                "curl",
                "--fail-with-body",
                "--silent",
                "--show-error",
                "--retry",
                "10",
                "--retry-connrefused",
                "--retry-delay",
                "6",
                "--max-time",
                "30",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                *auth,
                "--data",
                "{}",
                f"http://{host}/_jobs/{job.name}",
            ],  # fmt: skip
            "env": env,
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        pod = {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": uid,
                "runAsGroup": uid,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "restartPolicy": "Never",
            "containers": [trigger],
        }
        documents.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": name, **namespaced, "labels": job_labels},
                "spec": {
                    "schedule": job.schedule,
                    "timeZone": timezone,
                    "concurrencyPolicy": "Forbid",
                    "startingDeadlineSeconds": 300,
                    "successfulJobsHistoryLimit": 3,
                    "failedJobsHistoryLimit": 3,
                    "jobTemplate": {
                        "metadata": {"labels": dict(job_labels)},
                        "spec": {
                            # The chute retries the run itself; a failed POST is tried again by curl.
                            "backoffLimit": 1,
                            "template": {"metadata": {"labels": dict(job_labels)}, "spec": pod},
                        },
                    },
                },
            }
        )
    return documents
