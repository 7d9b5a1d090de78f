"""Deciding a set of cases when one of them makes the engine raise.

Deciding is pure code over a case's stored state, so an error there is a defect of
jiancha met by that case's data. Raised out of a tick or a start it stopped the
daemon, and the start after it met the same case again: one odd case ended the
supervision of the whole centre. Here a set that raised is decided case by case;
the cases that fail alone come back as `DecideError` and the others decided as
the set would have been (decide_cases is the same function of each case alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.calendar import Calendar
from monitor.engine.cards import CaseDecision, ExistingCard
from monitor.engine.decide import decide_cases
from monitor.redact import redact_text
from monitor.rules.model import RuleSet
from monitor.source.contract import Matter
from monitor.state.view import CaseView

__all__ = ["ERROR_CHARS", "DecideError", "decide_apart"]

ERROR_CHARS = 500  # of the error kept on the case's row and in the log line

Inputs = Sequence[tuple[CaseView, Matter | None, Sequence[ExistingCard]]]


@dataclass(frozen=True, slots=True)
class DecideError:
    """A case the engine raised on when deciding it alone, and the error (for the log's
    traceback; ``text`` is what is stored: type and message, secrets masked, short)."""

    case_id: str
    text: str
    exc: Exception


def decide_apart(
    inputs: Inputs, ruleset: RuleSet, cal: Calendar, now: int, *, running: bool, figures: bool
) -> tuple[Sequence[CaseDecision | None], list[DecideError]]:
    """`decide_cases` of the set; if it raises, of each case alone. A case that fails alone
    has None for its decision and a `DecideError`."""
    try:
        return decide_cases(inputs, ruleset, cal, now, running=running, figures=figures), []
    except Exception:
        pass
    decided: list[CaseDecision | None] = []
    errors: list[DecideError] = []
    for one in inputs:
        try:
            decided += decide_cases([one], ruleset, cal, now, running=running, figures=figures)
        except Exception as exc:
            decided.append(None)
            text = redact_text(f"{type(exc).__name__}: {exc}", limit=ERROR_CHARS)
            errors.append(DecideError(one[0].case_id, text, exc))
    return decided, errors
