"""Reference example: run_local example (lines 548-554 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

chute = Chute(username="reference", name="ref-run-local", image="python:3.11")


# fmt: off
if __name__ == "__main__":
    chute.run_local(
        host="127.0.0.1",
        port=8080,
        reload=True,
        log_level="debug"
    )
# fmt: on
