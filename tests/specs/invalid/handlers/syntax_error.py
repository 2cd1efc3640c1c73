async def echo(self, text: str) -> dict
    return {"text": text}
