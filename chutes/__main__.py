"""``python -m chutes``."""

from chutes.cli import main

raise SystemExit(main())
