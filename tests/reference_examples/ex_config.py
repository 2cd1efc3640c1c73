"""Reference example: config property (lines 525-529 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

chute = Chute(username="reference", name="ref-config", image="python:3.11")


# fmt: off
@chute.on_startup()
async def log_config(self):
    self.logger.info(f"Chute name: {self.config.name}")
    self.logger.info(f"Concurrency: {self.config.concurrency}")
    self.logger.info(f"Username: {self.config.username}")
# fmt: on
