"""What ``python -m chutes serve`` logs, read from real server processes."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from conftest import ROOT

from chutes.server.log_config import JsonFormatter, TextFormatter, log_config

Start = Callable[..., tuple[int, subprocess.Popen[bytes]]]

CHUTE = """
from chutes.chute import Chute

chute = Chute(username="acme", name="talker", image="python:3.11")


@chute.on_startup()
async def load(self):
    self.logger.debug("loading the model")
    if FAIL:
        raise ValueError("model file missing")


@chute.cord(public_api_path="/talk")
async def talk(self, text: str) -> str:
    self.logger.info("talking about %s", text)
    return text
"""

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<level>[A-Z]+) +(?P<logger>\S+)(?: \[(?P<id>[^]]+)\])? ")


def write_chute(folder: Path, fail: bool = False) -> None:
    (folder / "talker.py").write_text(f"FAIL = {fail}\n" + CHUTE)


def talk(port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/talk",
        b'{"text": "cats"}',
        {"Content-Type": "application/json", "X-Request-ID": "req-42"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == "cats"


def stop(proc: subprocess.Popen[bytes]) -> list[str]:
    proc.terminate()
    proc.wait(timeout=10)
    assert proc.stderr is not None
    return proc.stderr.read().decode().splitlines()


def test_text_lines_carry_time_level_logger_and_request_id(tmp_path: Path, start_server: Start) -> None:
    write_chute(tmp_path)
    port, proc = start_server(["chutes", "serve", "talker:chute", "--port", "{port}", "--log-level", "debug"])
    talk(port)
    lines = stop(proc)
    assert all(LINE.match(line) for line in lines), lines
    assert any(re.search(r" DEBUG +chutes\.talker loading the model$", line) for line in lines)
    [said] = [line for line in lines if "talking about cats" in line]
    assert re.search(r" INFO +chutes\.talker \[req-42\] talking about cats$", said)
    [access] = [line for line in lines if "uvicorn.access" in line and "/talk" in line]
    assert re.search(r" INFO +uvicorn\.access \[req-42\] 127\.0\.0\.1:\d+ - \"POST /talk HTTP/1\.1\" 200$", access)


def test_the_chosen_level_hides_lower_ones(tmp_path: Path, start_server: Start) -> None:
    write_chute(tmp_path)
    port, proc = start_server(["chutes", "serve", "talker:chute", "--port", "{port}"], env={"CHUTES_LOG_LEVEL": "info"})
    talk(port)
    lines = stop(proc)
    assert not any("loading the model" in line for line in lines)
    assert any("talking about cats" in line for line in lines)


def test_json_format_is_one_object_per_line(tmp_path: Path, start_server: Start) -> None:
    write_chute(tmp_path)
    port, proc = start_server(
        ["chutes", "serve", "talker:chute", "--port", "{port}", "--log-level", "debug"],
        env={"CHUTES_LOG_FORMAT": "json"},
    )
    talk(port)
    entries = [json.loads(line) for line in stop(proc)]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    [said] = [entry for entry in entries if entry["message"] == "talking about cats"]
    assert (said["level"], said["logger"], said["request_id"]) == ("INFO", "chutes.talker", "req-42")
    [access] = [entry for entry in entries if entry["logger"] == "uvicorn.access" and entry["path"] == "/talk"]
    assert (access["method"], access["path"], access["status"], access["request_id"]) == (
        "POST",
        "/talk",
        200,
        "req-42",
    )
    assert any(entry["message"] == "loading the model" and "request_id" not in entry for entry in entries)


def test_a_failed_start_is_printed_once(tmp_path: Path) -> None:
    write_chute(tmp_path, fail=True)
    result = subprocess.run(
        [sys.executable, "-m", "chutes", "serve", "talker:chute", "--port", "0"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "", "CHUTES_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    failures = [line for line in result.stderr.splitlines() if "ERROR" in line or "model file missing" in line]
    assert len(failures) == 1, result.stderr
    assert re.search(r" ERROR +chutes\.server chute talker failed to start: model file missing$", failures[0])
    assert "Traceback" not in result.stderr


def test_formatters_render_exceptions() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("chutes.x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())
    text = TextFormatter().format(record)
    assert text.splitlines()[0].endswith(" ERROR    chutes.x failed here")
    assert "RuntimeError: boom" in text
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed here"
    assert "RuntimeError: boom" in entry["exception"]


def test_config_routes_every_logger_through_one_handler() -> None:
    config = log_config("warning", "json")
    assert config["root"] == {"handlers": ["stderr"], "level": logging.WARNING}
    assert config["formatters"]["chutes"]["()"].endswith("JsonFormatter")
    assert all(not logger["handlers"] and logger["propagate"] for logger in config["loggers"].values())
    assert log_config("trace")["root"]["level"] == 5
