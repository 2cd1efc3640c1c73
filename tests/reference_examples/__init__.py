"""The examples of ``chute-api-reference.txt``, one module each, copied verbatim between ``# fmt: off`` markers."""
