"""Chutes written the way the published chutes SDK's examples and documentation write them.

Each module is our own example in the SDK's style (its imports, keywords and idioms), imported as
written and served through ``TestClient`` by ``tests/test_sdk_examples.py``. Heavy libraries the SDK's
examples load (torch, transformers) are replaced by small pure-Python stand-ins with the same shape.
"""
