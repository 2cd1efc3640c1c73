"""``chutes serve`` and the README's commands, against real servers."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from conftest import ROOT

Start = Callable[..., tuple[int, subprocess.Popen[bytes]]]


def post(port: int, path: str, body: dict[str, object]) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^(?:python3 -m venv \.venv && .+|make install test)$", text, flags=re.MULTILINE)


def test_readme_serve_command_serves_the_example(start_server: Start) -> None:
    serve_command = readme_commands()[0]
    target = serve_command.split("chutes serve ", 1)[1].split()[0]
    port, _ = start_server(["chutes", "serve", target, "--port", "{port}"], cwd=ROOT)
    assert post(port, "/echo", {"text": "hello"}) == {"text": "hello"}


def test_readme_test_command_is_what_ci_runs() -> None:
    assert readme_commands()[1] == "make install test"
    makefile = (ROOT / "Makefile").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "install: install-system install-python install-engines" in makefile
    assert "pip install --quiet -e '.[dev]'" in makefile
    assert "$(PYTHON) -m pytest" in makefile
    assert ci.index("make install") < ci.index("make test")


def test_serve_module_target_with_two_workers(tmp_path: Path, start_server: Start) -> None:
    (tmp_path / "twin.py").write_text(
        "import os\nfrom chutes.chute import Chute\n"
        "chute = Chute(username='acme', name='twin', image='python:3.11')\n"
        "@chute.cord(public_api_path='/pid', method='GET')\n"
        "async def pid(self) -> int:\n    return os.getpid()\n"
    )
    port, proc = start_server(["chutes", "serve", "twin:chute", "--port", "{port}", "--workers", "2"])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/pid", timeout=5) as response:
        assert isinstance(json.loads(response.read()), int)
    assert proc.poll() is None


def test_serve_bad_target_is_one_clean_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chutes", "serve", "nowhere:chute"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: could not import module 'nowhere' (searched from " + str(tmp_path) + ")"
    assert "Traceback" not in result.stderr


def test_serve_usage_error_exits_2() -> None:
    result = subprocess.run([sys.executable, "-m", "chutes", "serve"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "the following arguments are required: target" in result.stderr


def test_serve_reload_picks_up_a_changed_handler(tmp_path: Path, start_server: Start) -> None:
    spec = tmp_path / "chute.toml"
    spec.write_text(
        '[chute]\nusername = "acme"\nname = "live"\nimage = "python:3.11"\n\n'
        '[[cord]]\nhandler = "live_app:hello"\npublic_api_path = "/hello"\n'
    )
    module = tmp_path / "live_app.py"
    module.write_text("async def hello(self) -> str:\n    return 'one'\n")
    port, _ = start_server(["chutes", "serve", str(spec), "--port", "{port}", "--reload"])
    assert post(port, "/hello", {}) == "one"
    module.write_text("async def hello(self) -> str:\n    return 'two'\n")
    deadline = time.monotonic() + 15
    answer: object = "one"
    while answer != "two" and time.monotonic() < deadline:
        time.sleep(0.2)
        with contextlib.suppress(OSError):  # the server is restarting
            answer = post(port, "/hello", {})
    assert answer == "two"


def test_a_chute_failing_to_start_exits_1_with_one_clean_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        "from chutes.chute import Chute\n"
        "chute = Chute(username='acme', name='broken', image='python:3.11')\n"
        "@chute.on_startup()\n"
        "async def load(self):\n    raise ValueError('model file /models/x.bin is missing')\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "chutes", "serve", "broken:chute", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "chute broken failed to start: model file /models/x.bin is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_readme_python_examples_build_chutes() -> None:
    from chutes.chute import Chute

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    assert len(blocks) >= 2
    for block in blocks:
        if re.match(r"# [\w/]+\.py\n", block):
            continue  # a file of a larger example (a spec's handlers, a test), run by its own test
        namespace: dict[str, object] = {"__name__": "readme_example"}
        exec(compile(block, "README.md", "exec"), namespace)
        chute = namespace["chute"]
        assert isinstance(chute, Chute)
        assert chute.cords, "every README example declares at least one cord"
