"""Jobs: background functions of a chute, run on request or on a cron schedule, persisted in SQLite.

``store`` keeps runs and cron firings, ``runner`` executes a run's attempts, ``scheduler`` fires cron
times, ``service`` ties them to a running chute, ``api`` serves ``/_jobs`` and ``metrics`` reports them.
"""
