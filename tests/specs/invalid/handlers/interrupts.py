"""A module that interrupts its own import."""

raise KeyboardInterrupt
