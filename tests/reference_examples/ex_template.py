"""Reference example: template-based chute (lines 937-960 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa

# fmt: off
from chutes.templates import build_vllm_chute

# Use template as base
chute = build_vllm_chute(
    username="mycompany",
    name="custom-llm",
    model_name="gpt2"
)

# Add custom functionality
@chute.cord(public_api_path="/custom_generate")
async def custom_generate(self, prompt: str, style: str = "formal"):
    """Custom generation with style control."""

    style_prompts = {
        "formal": "Please respond in a formal tone: ",
        "casual": "Please respond casually: ",
        "technical": "Please provide a technical explanation: "
    }

    styled_prompt = style_prompts.get(style, "") + prompt

    result = await self.generate(styled_prompt)
    return {"generated_text": result, "style": style}
# fmt: on
