"""The first stage: the approval database's events as they are read, and the contract they keep.

``contract`` says what an event and a matter are and when an event is bad;
``tailer`` reads them in batches, in an order that never loses one;
``catalogue`` loads the matters. Nothing here writes anywhere.
"""
