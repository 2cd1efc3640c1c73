"""Deployment keywords in the Kubernetes manifests: autoscaler, KEDA ScaledObject, egress NetworkPolicy, CPU only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from render_tools import assert_golden, assert_valid_k8s

from chutes.chute import Chute, NodeSelector
from chutes.render.k8s import k8s_documents, render_k8s
from chutes.render.quoting import RenderError
from chutes.render.scaling import BUSY_METRIC, DEFAULT_PROMETHEUS_URL, busy_query, target_per_pod
from chutes.target import load_target

ROOT = Path(__file__).resolve().parents[1]


def make(**kwargs: Any) -> Chute:
    chute = Chute(**{"username": "acme", "name": "scaler", "image": "python:3.11", **kwargs})

    @chute.cord(public_api_path="/echo")
    async def echo(self: Chute, text: str) -> str:
        return text

    return chute


def kinds(documents: list[dict[str, Any]]) -> list[str]:
    return [document["kind"] for document in documents]


def only(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [document] = [document for document in documents if document["kind"] == kind]
    return document


def test_no_keywords_no_extra_objects() -> None:
    assert kinds(k8s_documents(make())) == ["Deployment", "Service"]


def test_max_instances_makes_a_horizontal_pod_autoscaler_on_the_chutes_own_load() -> None:
    chute = make(max_instances=12, scaling_threshold=0.5, shutdown_after_seconds=120, concurrency=6)
    documents = k8s_documents(chute, replicas=2, namespace="ml")
    assert kinds(documents) == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    hpa = only(documents, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["namespace"] == "ml"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaler"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 12)
    [metric] = spec["metrics"]
    assert metric == {
        "type": "Pods",
        "pods": {"metric": {"name": BUSY_METRIC}, "target": {"type": "AverageValue", "averageValue": "3"}},
    }
    assert spec["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 120}}
    pod = only(documents, "Deployment")["spec"]["template"]["metadata"]
    assert pod["annotations"]["prometheus.io/path"] == "/_metrics"
    assert_valid_k8s(yaml.safe_dump_all(documents))


@pytest.mark.parametrize(
    ("threshold", "concurrency", "quantity"), [(0.75, 1, "750m"), (0.75, 4, "3"), (1, 32, "32"), (0, 4, "1m")]
)
def test_target_per_pod_is_a_quantity(threshold: float, concurrency: int, quantity: str) -> None:
    assert target_per_pod(make(max_instances=2, scaling_threshold=threshold, concurrency=concurrency)) == quantity


def test_hpa_floor_stays_within_max_instances_and_window_within_kubernetes_limit() -> None:
    chute = make(max_instances=3, shutdown_after_seconds=604800)
    spec = only(k8s_documents(chute, replicas=8), "HorizontalPodAutoscaler")["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 3)
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 3600
    spec = only(k8s_documents(chute, replicas=0), "HorizontalPodAutoscaler")["spec"]
    assert spec["minReplicas"] == 1


def test_keda_scaled_object_field_by_field() -> None:
    """Each field as KEDA's keda.sh/v1alpha1 ScaledObject specification and its Prometheus scaler define it."""
    chute = make(max_instances=10, scaling_threshold=0.5, shutdown_after_seconds=900, concurrency=8)
    documents = k8s_documents(chute, namespace="ml", keda=True, wake_query="sum(rate(ingress_requests[1m]))")
    assert kinds(documents) == ["Deployment", "Service", "ScaledObject"]  # KEDA owns the HPA: none of ours
    scaled = only(documents, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["metadata"] == {
        "name": "scaler",
        "namespace": "ml",
        "labels": {"app.kubernetes.io/name": "scaler", "app.kubernetes.io/managed-by": "chutes"},
    }
    spec = scaled["spec"]
    assert set(spec) == {
        "scaleTargetRef",
        "pollingInterval",
        "cooldownPeriod",
        "minReplicaCount",
        "maxReplicaCount",
        "advanced",
        "triggers",
    }
    # scaleTargetRef: name is mandatory and names the Deployment in the same namespace.
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaler"}
    # Integers, in seconds; cooldownPeriod is the idle time before scaling to zero.
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (15, 900)
    assert all(isinstance(spec[key], int) for key in ("pollingInterval", "cooldownPeriod"))
    # minReplicaCount 0 is scale to zero; maxReplicaCount is handed to KEDA's HPA.
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 10)
    assert "idleReplicaCount" not in spec  # only meaningful below a non-zero minReplicaCount
    # advanced.horizontalPodAutoscalerConfig.behavior is fed to the HPA's behavior as is.
    assert spec["advanced"] == {
        "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 900}}}
    }
    busy, wake = spec["triggers"]
    for trigger in (busy, wake):
        assert set(trigger) == {"type", "name", "metricType", "metadata"}
        assert trigger["type"] == "prometheus"
        assert trigger["metricType"] in ("AverageValue", "Value")
        metadata = trigger["metadata"]
        assert set(metadata) == {"serverAddress", "query", "threshold", "activationThreshold"}
        # The scaler's metadata values are strings; threshold and activationThreshold parse as floats.
        assert all(isinstance(value, str) for value in metadata.values())
        assert float(metadata["threshold"]) == 4.0
        assert float(metadata["activationThreshold"]) == 0.0
        assert metadata["serverAddress"] == DEFAULT_PROMETHEUS_URL
    assert busy["name"] == "busy"
    assert busy["metadata"]["query"] == busy_query(chute, "ml")
    assert 'chutes_requests_in_flight{namespace="ml",pod=~"scaler-' in busy["metadata"]["query"]
    assert wake["metadata"]["query"] == "sum(rate(ingress_requests[1m]))"
    # The Deployment and Service stay valid Kubernetes; the ScaledObject is a CRD, checked above.
    assert_valid_k8s(yaml.safe_dump_all(documents[:2]))


def test_keda_without_max_instances_or_with_a_bad_url_is_an_error() -> None:
    with pytest.raises(RenderError, match="--keda needs max_instances"):
        k8s_documents(make(), keda=True)
    with pytest.raises(RenderError, match="prometheus URL"):
        k8s_documents(make(max_instances=2), keda=True, prometheus_url="prometheus:9090")


def test_no_external_egress_makes_a_network_policy_allowing_dns_only() -> None:
    documents = k8s_documents(make(allow_external_egress=False), namespace="ml")
    assert kinds(documents) == ["Deployment", "Service", "NetworkPolicy"]
    policy = only(documents, "NetworkPolicy")
    assert policy["metadata"]["name"] == "scaler-egress"
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "scaler"}}
    assert spec["policyTypes"] == ["Egress"]  # ingress to the chute is untouched
    [dns] = spec["egress"]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert_valid_k8s(yaml.safe_dump_all(documents))


def test_network_policy_allows_the_job_database_when_given() -> None:
    documents = k8s_documents(make(allow_external_egress=False), database_cidr="10.0.3.7", database_port=6432)
    _, database = only(documents, "NetworkPolicy")["spec"]["egress"]
    assert database == {"to": [{"ipBlock": {"cidr": "10.0.3.7/32"}}], "ports": [{"protocol": "TCP", "port": 6432}]}
    assert_valid_k8s(yaml.safe_dump_all(documents))
    with pytest.raises(RenderError, match="database CIDR"):
        k8s_documents(make(allow_external_egress=False), database_cidr="db.internal")
    with pytest.raises(RenderError, match="only applies with allow_external_egress = false"):
        k8s_documents(make(), database_cidr="10.0.3.7/32")


def test_cpu_only_chute_requests_cpu_and_memory_and_no_gpu() -> None:
    chute = make(node_selector=NodeSelector(gpu_count=0, min_cpu_count=2, min_memory_gb=8))
    deployment = only(k8s_documents(chute), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
    assert "affinity" not in pod
    assert "tolerations" not in pod
    assert "nvidia.com/gpu" not in yaml.safe_dump(deployment)


def test_gpu_chute_takes_cpu_and_memory_from_its_selector() -> None:
    chute = make(node_selector=NodeSelector(gpu_count=2, min_cpu_count=16, min_memory_gb=128))
    [container] = only(k8s_documents(chute), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "16", "memory": "128Gi"}
    assert container["resources"]["limits"] == {"memory": "128Gi", "nvidia.com/gpu": 2}


def test_amd_cards_never_appear_in_nvidia_labels() -> None:
    chute = make(node_selector=NodeSelector(exclude=["mi300x", "t4"]))
    text = yaml.safe_dump_all(k8s_documents(chute))
    assert "MI300X" not in text
    assert "Tesla-T4" in text


def test_keda_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    chute = load_target("specs/autoscaled/chute.toml")
    text = render_k8s(chute, serve_target="chute.toml", keda=True, namespace="ml")
    assert_golden("autoscaled/k8s-keda.yaml", text)
    documents = [document for document in yaml.safe_load_all(text) if document]
    assert kinds(documents) == ["Deployment", "Service", "ScaledObject", "NetworkPolicy"]
    assert_valid_k8s(yaml.safe_dump_all([document for document in documents if document["kind"] != "ScaledObject"]))


def test_cli_k8s_keda(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from chutes.cli import main

    monkeypatch.chdir(ROOT)
    argv = ["k8s", "specs/autoscaled/chute.toml", "--keda", "--prometheus-url", "http://prom:9090"]
    assert main([*argv, "--database-cidr", "10.1.0.0/16"]) == 0
    documents = [document for document in yaml.safe_load_all(capsys.readouterr().out) if document]
    scaled = only(documents, "ScaledObject")
    assert scaled["spec"]["triggers"][0]["metadata"]["serverAddress"] == "http://prom:9090"
    assert only(documents, "NetworkPolicy")["spec"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.1.0.0/16"}}]


def test_a_selector_of_amd_cards_only_cannot_become_nvidia_manifests() -> None:
    with pytest.raises(RenderError, match="allows only mi300x; include an NVIDIA card"):
        k8s_documents(make(node_selector=NodeSelector(include=["mi300x"])))


def test_autoscaling_a_chute_with_jobs_needs_a_shared_job_database() -> None:
    chute = make(max_instances=4)

    @chute.job()
    async def tidy(self: Chute) -> None:
        return None

    with pytest.raises(RenderError, match="max_instances = 4 lets the autoscaler run several replicas"):
        k8s_documents(chute)
    kinds_with_database = kinds(k8s_documents(chute, database_url_secret="jobs-db"))
    assert "HorizontalPodAutoscaler" in kinds_with_database


def test_an_egress_policy_must_not_cut_the_pods_off_their_job_database() -> None:
    chute = make(allow_external_egress=False)
    with pytest.raises(RenderError, match="would block the job database"):
        k8s_documents(chute, database_url_secret="jobs-db")
    policy = only(k8s_documents(chute, database_url_secret="jobs-db", database_cidr="10.0.3.7/32"), "NetworkPolicy")
    assert policy["spec"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.0.3.7/32"}}]
