"""`/docs` and `/redoc` work offline: their assets come from the chute, checked in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import require
from fastapi.testclient import TestClient

from chutes.chute import Chute
from chutes.server.openapi_docs import ASSETS

Start = Callable[..., tuple[int, subprocess.Popen[bytes]]]

CHUTE = """
from chutes.chute import Chute

chute = Chute(username="acme", name="docs-demo", image="python:3.11")


@chute.cord(public_api_path="/echo")
async def echo(self, text: str) -> str:
    return text


@chute.cord(public_api_path="/count", method="GET")
async def count(self, text: str) -> int:
    return len(text.split())
"""


def make() -> Chute:
    chute = Chute(username="acme", name="docs-demo", image="python:3.11")

    @chute.cord(public_api_path="/echo")
    async def echo(self: Chute, text: str) -> str:
        return text

    return chute


def linked(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)


def test_pages_link_only_to_the_chutes_own_assets() -> None:
    with TestClient(make()) as client:
        for page in ("/docs", "/redoc"):
            response = client.get(page)
            assert response.status_code == 200
            links = linked(response.text)
            assert links, page
            assert all(link.startswith("/_docs/") for link in links), links
            assert "http://" not in response.text
            assert "https://" not in response.text
        for name, media_type in ASSETS.items():
            asset = client.get(f"/_docs/{name}")
            assert asset.status_code == 200
            assert asset.headers["content-type"] == media_type
            assert len(asset.content) > 1000
        assert client.get("/_docs/../settings.py").status_code == 404
        assert client.get("/_docs/unknown.js").status_code == 404
        assert "/_docs/{name}" not in client.get("/openapi.json").json()["paths"]


def test_pages_follow_fastapis_urls_and_root_path() -> None:
    chute = Chute(username="acme", name="moved", image="python:3.11", docs_url="/api-docs", redoc_url="")
    with TestClient(chute, root_path="/proxy") as client:
        page = client.get("/api-docs")
        assert page.status_code == 200
        assert "/proxy/_docs/swagger-ui-bundle.js" in page.text
        assert "'/proxy/openapi.json'" in page.text
        assert client.get("/docs").status_code == 404
        assert client.get("/redoc").status_code == 404
    hidden = Chute(username="acme", name="hidden", image="python:3.11", openapi_url=None)
    with TestClient(hidden) as client:
        assert client.get("/docs").status_code == 404


def chromium_dom(url: str) -> str:
    """The page's DOM after its scripts ran, in headless Chromium that can resolve no host but 127.0.0.1."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                shutil.which("chromium") or "/usr/bin/chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                f"--user-data-dir={profile}",
                # Any request leaving the machine fails: the page must render from the chute alone.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_browser_without_internet_lists_the_cords(page: str, tmp_path: Path, start_server: Start) -> None:
    require(Path("/usr/bin/chromium").is_file() or shutil.which("chromium") is not None, "Chromium")
    (tmp_path / "docsdemo.py").write_text(CHUTE)
    port, _ = start_server(["chutes", "serve", "docsdemo:chute", "--port", "{port}"])
    dom = chromium_dom(f"http://127.0.0.1:{port}{page}")
    if page == "/docs":
        assert 'data-path="/echo"' in dom
        assert 'data-path="/count"' in dom
    else:
        assert "/echo" in dom
        assert "/count" in dom
        assert "docs-demo" in dom
