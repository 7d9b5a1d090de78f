"""The fourth stage: which cards each case is due, as a pure function of data and ``now``.

``decide`` issues, closes and revokes clock cards; ``checks`` finds the
procedural ones; ``figures`` is each case's part in the reported figures; ``cards`` is
the plain data all of them return. Nothing here does I/O: the ledger
(``monitor.cards``) persists what this decides.
"""
