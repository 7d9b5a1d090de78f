"""The second stage: what each case is, rebuilt from its events, and where that is kept.

``reduce`` is the pure function from a case's events to its `CaseState`;
``case`` the typed record it returns (and its JSON form in
``jiancha.cases``); ``view`` what later stages read of a case; ``store`` the
writes of a batch's events and case rows inside the batch's transaction.
"""
