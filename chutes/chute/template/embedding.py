"""``from chutes.chute.template.embedding import build_embedding_chute``, as in the chutes SDK."""

from chutes.templates.embedding import build_embedding_chute

__all__ = ["build_embedding_chute"]
