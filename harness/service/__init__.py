"""The long-running shadow service: ``janitor-shadow shadow DSN --interval …``.

One module per step of a cycle's data flow: :mod:`.config` (settings from
YAML and flags), :mod:`.cycle` (snapshot → both engines → comparisons →
one history record), :mod:`.history` (the JSON Lines history, retention),
:mod:`.metrics` (Prometheus), :mod:`.runner` (the loop: signals, backoff,
heartbeat, teardown). The report over the history is
:mod:`reports.shadow_history`.
"""
