"""The fifth stage: the audited ledger of every card, and what people may do to one.

``ledger`` writes what the engine decided (issue, close, revoke, escalate)
inside the pipeline's transactions; ``lifecycle`` is a person's step
(acknowledge, appeal, decide, revoke), with its pure `transition`; ``query``
reads cards back; ``store`` is the interface the pipeline decides through,
``memory`` its in-memory form for replays.
"""
