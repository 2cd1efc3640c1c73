"""Reference example: on_startup example: load a transformers model (lines 205-213 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

chute = Chute(username="reference", name="ref-load-model", image="python:3.11")


# fmt: off
@chute.on_startup()
async def load_model(self):
    """Load the AI model during startup."""
    from transformers import AutoTokenizer, AutoModelForCausalLM

    self.tokenizer = AutoTokenizer.from_pretrained("gpt2")
    self.model = AutoModelForCausalLM.from_pretrained("gpt2")

    print("Model loaded successfully")
# fmt: on
