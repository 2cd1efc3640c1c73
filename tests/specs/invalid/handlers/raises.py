"""A handler module that fails at import time with a plain exception."""

SETTINGS = {}
MODEL_PATH = SETTINGS["model_path"]


async def echo(self, text: str) -> dict:
    return {"text": text}
