"""A module that prints while it imports."""

print("loading handlers...")


async def echo(self, text: str) -> dict:
    return {"text": text}
