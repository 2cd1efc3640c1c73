"""The documentation's patterns: state on self under the chute's own names, jobs, hook priorities, FastAPI."""

from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel

from chutes.chute import Chute, NodeSelector

chute = Chute(
    username="acme",
    name="doc-worker",
    tagline="Background work with a progress API",
    image="acme/doc-worker:1.0",
    node_selector=NodeSelector(gpu_count=0, min_cpu_count=2, min_memory_gb=8),
    concurrency=2,
    max_instances=5,
    scaling_threshold=0.8,
    allow_external_egress=False,
    tee=False,
)
chute.add_middleware(CORSMiddleware, allow_origins=["https://example.com"], allow_methods=["*"])


class Task(BaseModel):
    document: str


@chute.on_startup(priority=90)
async def report_ready(self):
    self.order.append("ready")


@chute.on_startup(priority=10)
async def setup_state(self):
    # As the SDK's documentation writes it: the chute's namespace holds the app's own bookkeeping.
    self.order = ["state"]
    self.jobs = {}
    self.cords = []
    self.websockets = set()


@chute.on_startup()
async def load_model(self):
    self.order.append("model")


@chute.cord()
async def summarize(self, task: Task) -> dict:
    """Served at /summarize: a cord without public_api_path is served at its function's name."""
    self.jobs[task.document] = "summarized"
    return {"summary": task.document[:10], "tracked": len(self.jobs)}


@chute.job()
async def reindex(self, collection: str) -> dict:
    self.jobs[collection] = "reindexed"
    return {"collection": collection}


@chute.get("/status")
async def status():
    return {"status": "ok"}


@chute.cord(public_api_path="/order", method="GET")
async def order(self) -> list:
    return self.order
