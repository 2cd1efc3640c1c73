"""A small OpenAI-shaped server started as an LLM template's "engine command" in tests.

It takes the flags a template passes (``--model``, ``--host``, ``--port``, ``--api-key``, anything else is
recorded) and answers like an engine's server: ``/health``, ``/v1/models``, ``/v1/completions`` (the text
is ``completion of [<prompt>]``), ``/v1/chat/completions`` (echoes what it received; streams
``chunks`` events ``delay`` seconds apart), ``/tokenize``, ``/detokenize``, ``/v1/embeddings``. Errors
use OpenAI's shape. Events go as JSON lines to ``$FAKE_ENGINE_LOG`` (started, requests, aborted streams).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def record(event: dict[str, Any]) -> None:
    path = os.environ.get("FAKE_ENGINE_LOG")
    if path:
        with open(path, "a") as log:
            log.write(json.dumps(event) + "\n")


def error(status: int, message: str, param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": "BadRequestError", "param": param, "code": status}}
    return JSONResponse(body, status_code=status)


def build(args: argparse.Namespace, extra: list[str]) -> Starlette:
    async def authorized(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {args.api_key}":
            return error(401, "Unauthorized")
        record({"event": "request", "path": request.url.path, "query": request.url.query,
                "headers": dict(request.headers), "body": (await request.body()).decode("latin-1")})  # fmt: skip
        return None

    async def health(request: Request) -> Response:
        return Response(status_code=200)

    async def models(request: Request) -> Response:
        return await authorized(request) or JSONResponse(
            {"object": "list", "data": [{"id": args.model, "object": "model", "owned_by": "fake"}]}
        )

    async def completions(request: Request) -> Response:
        denied = await authorized(request)
        if denied:
            return denied
        body = await request.json()
        if not isinstance(body.get("max_tokens", 1), int) or body.get("max_tokens", 1) < 0:
            return error(400, "max_tokens must be at least 0", "max_tokens")
        text = f"completion of [{body.get('prompt')}]"
        if body.get("stream"):

            async def events() -> Any:
                for word in text.split(" "):
                    yield f"data: {json.dumps({'choices': [{'index': 0, 'text': word + ' '}]})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse({"object": "text_completion", "choices": [{"index": 0, "text": text}]})

    async def chat(request: Request) -> Response:
        denied = await authorized(request)
        if denied:
            return denied
        raw = await request.body()
        body = json.loads(raw)
        if body.get("model") not in (None, args.model):
            return error(404, f"The model `{body.get('model')}` does not exist.", "model")
        if not body.get("stream"):
            headers = {"x-engine": "fake", "set-cookie": "a=b"}
            return JSONResponse({"received": body, "extra_flags": extra}, headers=headers)
        chunks, delay = int(body.get("chunks", 3)), float(body.get("delay", 0))
        request_id = request.headers.get("x-request-id")

        async def events() -> Any:
            try:
                for index in range(chunks):
                    yield f"data: {json.dumps({'index': index, 'at': time.monotonic()})}\n\n"
                    await asyncio.sleep(delay)
                yield "data: [DONE]\n\n"
            except asyncio.CancelledError:
                record({"event": "aborted", "request_id": request_id})
                raise

        return StreamingResponse(events(), media_type="text/event-stream")

    async def tokenize(request: Request) -> Response:
        body = await request.json()
        return await authorized(request) or JSONResponse({"tokens": [ord(c) for c in body.get("prompt", "")]})

    async def detokenize(request: Request) -> Response:
        body = await request.json()
        return await authorized(request) or JSONResponse({"prompt": "".join(chr(t) for t in body["tokens"])})

    async def embeddings(request: Request) -> Response:
        body = await request.json()
        return await authorized(request) or JSONResponse(
            {
                "object": "list",
                "data": [{"index": 0, "object": "embedding", "embedding": [0.5, 0.5]}],
                "model": body.get("model"),
            }  # fmt: skip
        )

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/tokenize", tokenize, methods=["POST"]),
            Route("/detokenize", detokenize, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", "--model-path", dest="model", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--startup-delay", type=float, default=0.0)
    parser.add_argument("--fail-on-start", action="store_true")
    args, extra = parser.parse_known_args()
    record({"event": "started", "pid": os.getpid(), "argv": sys.argv[1:]})
    print(f"fake engine serving {args.model}", flush=True)
    if args.fail_on_start:
        print("error: the model weights are missing", flush=True)
        sys.exit(3)
    time.sleep(args.startup_delay)
    uvicorn.run(build(args, extra), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
