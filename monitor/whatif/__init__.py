"""What the daemon would do on other data or other rules: replays, a simulated centre, the demo.

Not a stage of the flow: these drive the stages (through ``monitor.pipeline``
and ``monitor.daemon``) on simulated or historical events, never writing
into the real ledger.
"""
