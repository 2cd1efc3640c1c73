from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import BaseModel, Field
from starlette.responses import Response

from chutes.chute import Chute, NodeSelector
from chutes.render.readme import render_readme


class Message(BaseModel):
    role: str = Field(description="Who speaks: user | assistant")
    content: str


class ChatInput(BaseModel):
    messages: list[Message] = Field(examples=[[{"role": "user", "content": "Hi"}]])
    max_tokens: int = Field(64, ge=1, le=4096, description="Most tokens to generate.")
    mode: str | None = None


class Minimal(BaseModel):
    messages: list[Message]


class Reply(BaseModel):
    text: str = Field(description="The answer.")


def make() -> Chute:
    chute = Chute(
        username="me",
        name="demo",
        image="python:3.11",
        tagline="Chat | and more",
        readme="# Demo chat\n\nTalk to a *model*.",
        node_selector=NodeSelector(gpu_count=2, min_vram_gb_per_gpu=40, include=["h100", "a100"]),
    )

    @chute.cord(public_api_path="/chat", input_schema=ChatInput, minimal_input_schema=Minimal)
    async def chat(self: Chute, data: ChatInput) -> Reply:
        """Answer a conversation."""
        return Reply(text="")

    @chute.cord(public_api_path="/stream", stream=True)
    async def stream(self: Chute, prompt: str, n: int = 3) -> AsyncIterator[str]:
        yield prompt

    @chute.cord(public_api_path="/search", method="GET")
    async def search(self: Chute, q: str, tags: list[str] | None = None) -> list[str]:
        return []

    @chute.cord(public_api_path="/image", output_content_type="image/png")
    async def image(self: Chute, prompt: str) -> Response:
        return Response(b"")

    @chute.job(schedule="*/15 * * * *", retry_count=1, timeout=30)
    async def refresh(self: Chute) -> None:
        """Refresh the cache."""

    @chute.websocket("/live")
    async def live(self: Chute, websocket: object) -> None:
        """Live chat."""

    return chute


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n### ", start + len(heading))
    end = text.find("\n## ", start + len(heading)) if end == -1 else end
    return text[start:end]


def test_title_tagline_and_readme() -> None:
    text = render_readme(make())
    assert text.startswith("# Demo chat\n\n> Chat | and more\n\nTalk to a *model*.\n")
    assert text.count("\n# ") == 0


def test_cord_input_table_nested_model_and_minimal_example() -> None:
    chat = section(render_readme(make()), "### `POST /chat`")
    assert "Answer a conversation." in chat
    assert "| `messages` | array of Message | *required* |  |  |" in chat
    assert "| `max_tokens` | integer | `64` | ≥ 1, ≤ 4096 | Most tokens to generate. |" in chat
    assert "| `mode` | string or null | `null` |  |  |" in chat
    assert "| `role` | string | *required* |  | Who speaks: user \\| assistant |" in chat
    assert "| `text` | string | *required* |  | The answer. |" in chat
    assert (
        "curl -X POST http://localhost:8000/chat \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        """  -d '{"messages": [{"role": "string", "content": "string"}]}'"""
    ) in chat


def test_a_text_stream_is_described_as_text() -> None:
    stream = section(render_readme(make()), "### `POST /stream`")
    assert "**Output** (streamed as raw text chunks, `text/plain` (`text/event-stream` when the chunks" in stream
    assert "Text, chunk by chunk, as the cord yields it." in stream
    assert "data: <json>" not in stream
    assert "curl -N -X POST http://localhost:8000/stream" in stream
    assert """-d '{"prompt": "string"}'""" in stream


def test_streams_are_described_by_what_they_send() -> None:
    chute = Chute(username="acme", name="streams", image="python:3.11")

    @chute.cord(public_api_path="/events", stream=True)
    async def events(self: Chute) -> AsyncIterator[dict[str, int]]:
        yield {"i": 0}

    @chute.cord(public_api_path="/untyped", stream=True)
    async def untyped(self: Chute):  # type: ignore[no-untyped-def]
        yield "x"

    @chute.cord(public_api_path="/csv", stream=True, output_content_type="text/csv")
    async def csv(self: Chute) -> AsyncIterator[str]:
        yield "a,b\n"

    text = render_readme(chute)
    events_doc = section(text, "### `POST /events`")
    assert "**Output** (streamed as `text/event-stream`: one `data: <json>` event per chunk):" in events_doc
    assert "Each event: JSON: object with integer values." in events_doc
    assert "text chunks as they are, `text/plain`" in section(text, "### `POST /untyped`")
    assert "**Output** (streamed as `text/csv`):" in section(text, "### `POST /csv`")


def test_get_cord_uses_the_query_string() -> None:
    search = section(render_readme(make()), "### `GET /search`")
    assert "**Input** (query parameters):" in search
    assert "curl 'http://localhost:8000/search?q=string'" in search
    assert "JSON: array of string." in search


def test_binary_output_is_saved() -> None:
    image = section(render_readme(make()), "### `POST /image`")
    assert "A `image/png` response." in image
    assert "--output result.bin" in image


def test_jobs_websockets_and_hardware() -> None:
    text = render_readme(make(), base_url="https://api.example.com")
    assert "- Schedule: every 15 minutes (`*/15 * * * *`)" in text
    assert "- Attempts: at most 2 (1 retry)" in text
    assert "- Timeout: 30 seconds per attempt" in text
    assert "curl -X POST https://api.example.com/_jobs/refresh" in text
    assert "curl https://api.example.com/_jobs/runs/RUN_ID" in text
    assert "websocat wss://api.example.com/live" in text
    assert 'websockets.connect("wss://api.example.com/live")' in text
    assert "- GPUs per instance: 2" in text
    assert "- Indicative price: $1.29–$2.69 per GPU-hour, $2.58–$5.38 per instance-hour" in text
    assert "| `a100` | NVIDIA A100 40GB | 40 GB | $1.29 |" in text
    assert "docker run --rm -p 8000:8000 --gpus all me/demo:latest" in text


def test_cpu_only_chute() -> None:
    chute = Chute(username="me", name="cpu", image="python:3.11")

    @chute.cord(public_api_path="/ping", method="GET")
    async def ping(self: Chute) -> dict[str, str]:
        return {}

    text = render_readme(chute)
    assert text.startswith("# cpu\n")
    assert "No GPU required." in text
    assert "No input." in section(text, "### `GET /ping`")
    assert "curl http://localhost:8000/ping" in text
    assert "## Jobs" not in text
    assert "## Websockets" not in text


def test_user_template_replaces_a_block(tmp_path: Path) -> None:
    (tmp_path / "README.md.j2").write_text(
        '{% extends "base/README.md.j2" %}{% block settings %}## Support\n\nMail us.\n{% endblock %}'
    )
    text = render_readme(make(), templates_dir=tmp_path)
    assert text.endswith("## Support\n\nMail us.\n")
    assert "## Configuration" not in text


class Hostile(BaseModel):
    text: str = Field(description="a | b <script>alert(1)</script> `x|y <b>` & <img src=x onerror=alert(1)>")
    mode: str = Field("a|b", description="line one\nline two", pattern=r"^(a|b)$")
    weird: int = Field(1, alias="we`ird|name")


def test_field_descriptions_cannot_break_tables_or_inject_html() -> None:
    chute = Chute(
        username="me",
        name="hostile",
        image="python:3.11",
        tagline="<script>x</script>\u2028second",
        title="Title\n# injected <h1>x</h1>",
    )

    @chute.cord(public_api_path="/go")
    async def go(self: Chute, data: Hostile) -> None:
        """Go."""

    text = render_readme(chute, serve_target="chute.toml")
    lines = text.splitlines()
    assert lines[0] == "# Title # injected &lt;h1&gt;x&lt;/h1&gt;"
    assert lines[2] == "> &lt;script&gt;x&lt;/script&gt; second"
    for tag in ("<script>", "<img", "<h1>"):
        assert tag not in text
    rows = [line for line in lines if line.startswith("| `") or line.startswith("| ``")]
    assert rows[0] == (
        "| `text` | string | *required* |  | a \\| b &lt;script&gt;alert(1)&lt;/script&gt; `x\\|y <b>` &amp; "
        "&lt;img src=x onerror=alert(1)&gt; |"
    )
    assert rows[1] == "| `mode` | string | `a\\|b` | matches `^(a\\|b)$` | line one<br>line two |"
    assert rows[2] == "| `` we`ird\\|name `` | integer | `1` |  |  |"
    for row in rows[:3]:
        # Every row has the table's five cells: no unescaped pipe added one.
        assert len(row.replace("\\|", "").split("|")) == 7
