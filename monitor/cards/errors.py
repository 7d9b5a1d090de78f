"""Refusals a person can act on, told in Chinese or English; nothing was written."""

from __future__ import annotations

from monitor.i18n import current_lang
from monitor.vocab import Lang

__all__ = ["BadInput", "CardError", "CardNotFound"]


class CardError(Exception):
    """A refusal the person who asked can act on: told in Chinese or English.

    The CLI turns it into a usage error (exit status 2); nothing was written.
    """

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh)
        self.zh = zh
        self.en = en

    def message(self, lang: Lang | None = None) -> str:
        return self.en if (lang or current_lang()) == "en" else self.zh

    def __str__(self) -> str:
        return self.message()


class CardNotFound(CardError):
    """No card has this id."""

    def __init__(self, card_id: int) -> None:
        super().__init__(f"没有编号为 {card_id} 的牌", f"there is no card {card_id}")
        self.card_id = card_id


class BadInput(CardError):
    """A step without the who or the why an audit needs."""
