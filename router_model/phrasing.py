"""The texts the embedding tier compares: a route's anchors, and the pieces of a request.

Both sides are rewritten so that how something is asked does not decide where it goes: a route
is matched through the parts of its description as well as the whole, and a request through its
instruction (the words before a pasted payload) with the request form ("Can you…", "I need…",
"How would I…", "…what am I doing wrong?") taken off. Each is matched by its best piece.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from router_model.prompt import Message
from router_model.router import RouteSpec

_PHRASE_SPLIT = re.compile(r",|;\s")  # not "TL;DR"
_AND_OR = re.compile(r"\b(?:and|or)\b")


def anchors_of(route: RouteSpec) -> tuple[list[str], list[str]]:
    """The texts a route is matched against, without duplicates, in a stable order: from its
    description, the whole; its head (before `:`); each comma-separated phrase, alone, its parts
    between and/or, and with the head after it ("flight status (travel planning)"), which keeps a
    short phrase on the route's topic. Then, apart, its `examples` (those not already there)."""
    head, colon, rest = route.description.partition(":")
    head = head.strip() if colon else ""
    phrases = [p.strip() for p in _PHRASE_SPLIT.split(rest if colon else route.description)]
    phrases = [p for p in phrases if p]
    # Parts of one word ("code" of "code or a library that…") would match anything on the topic.
    parts = [s.strip() for p in phrases for s in _AND_OR.split(p) if len(s.split()) > 1]
    in_context = [f"{p} ({head})" for p in phrases] if head else []
    described = list(dict.fromkeys(t for t in (route.description, head, *phrases, *parts, *in_context) if t))
    examples = [e for e in dict.fromkeys(route.examples) if e not in described]
    return described, examples


HEAD_WORDS = 24
_HEAD_END = re.compile(r"[\n:]|[.?!](\s|$)")


def instruction_head(text: str) -> str:
    """The request before its payload: "Summarize this article: <article>" -> "Summarize this
    article". A long pasted text or stack trace would otherwise outweigh the few words that say
    what is wanted."""
    head = _HEAD_END.split(text.strip(), maxsplit=1)[0]
    return " ".join(head.split()[:HEAD_WORDS])


# Ways of asking that carry no topic. Taken off the front and the end, a few times over
# ("hi, can you please help me…").
_FORM_START = re.compile(r"""^(?:
    (?:hey|hi|hello|ok|okay|so|well|please)\b[\s,!]*
  | (?:can|could|would|will)\s+(?:you|u|i|we)\s+(?:please\s+)?
      (?:(?:tell|show|help|let)\s+me\s+(?:know\s+)?|help\s+)?
  | (?:i|we)\s*(?:'d|would)\s+like\s+(?:you\s+)?(?:to\s+(?:know\s+)?)?
  | (?:i|we)\s+(?:need|want|wanna)\s+(?:you\s+)?(?:to\s+(?:know\s+)?)?
  | (?:do|does)\s+(?:you|anyone)\s+know\s+(?:if|whether|how\s+to)?\s*
  | (?:tell|show)\s+me\s+
  | how\s+(?:would|do|can|should)\s+(?:i|you|we|one)\s+
  | help\s+me\s+(?:to\s+)?
  | is\s+it\s+possible\s+to\s+
  | i\s+was\s+wondering\s+(?:if|whether)\s+
)""", re.IGNORECASE | re.VERBOSE)
_FORM_END = re.compile(
    r"[\s,;:-]*(?:please|thanks|thank you|what am i doing wrong|any ideas?|how do i fix (?:it|this)"
    r"|can you help|for me)[\s?!.]*$", re.IGNORECASE)


def without_request_form(text: str) -> str:
    """"Can you write a function that…?" -> "write a function that…?"; the text itself when
    nothing would be left."""
    current = text.strip()
    for _ in range(4):
        stripped = _FORM_END.sub("", _FORM_START.sub("", current, count=1).strip(" ,")).strip()
        if stripped == current or not stripped:
            break
        current = stripped
    return current or text.strip()




_PARAGRAPHS = re.compile(r"\n\s*\n")
# The start of a request's text is enough to say what it is about (a long paste adds nothing but
# encoding time: about 4 ms per 64 tokens on one core).
TEXT_CHARS = 320


def request_text(text: str) -> tuple[str, str | None]:
    """The part of a message that asks, and the head of what was pasted before it, if anything
    was: a paste, then a shorter question about it ("<traceback>\n\nwhat does this mean?") asks
    in its last paragraph, and the paste's first line says what it is about. Otherwise all of
    the text asks."""
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(text.strip()) if p.strip()]
    if len(paragraphs) > 1 and len(paragraphs[-1].split()) < len(paragraphs[0].split()):
        return paragraphs[-1], instruction_head(paragraphs[0])
    return text.strip(), None


def request_pieces(text: str) -> list[str]:
    """What one request is matched by, from the part that asks (request_text): its start; its
    instruction head, taken after the request form (so that "Hi! Can you…" does not end the head
    at "Hi!"); that head without its own request form; then the head of a paste before it.
    Without duplicates."""
    asking, pasted = request_text(text)
    head = instruction_head(without_request_form(asking)) or asking
    pieces = [asking[:TEXT_CHARS], head, without_request_form(head), pasted or ""]
    return list(dict.fromkeys(p for p in pieces if p))


def query_texts(conversation: Sequence[Message]) -> tuple[list[str], str | None]:
    """The ONE place a router query's texts are chosen: the latest user turn's pieces, and the
    user turn before it as context (None if there is none)."""
    users = [m.content for m in conversation if m.role == "user"]
    if not users:
        return [], None
    return request_pieces(users[-1]), users[-2] if len(users) > 1 else None
