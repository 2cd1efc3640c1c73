"""Handlers that are callable objects rather than functions."""


class Greeter:
    async def __call__(self, chute, text: str) -> dict:
        return {"text": text}


GREETER = Greeter()
