"""The answer schema of the sentiment scorer, and the validation every answer goes through.

The model is asked for structured output (``response_format`` JSON schema,
``strict``). Providers enforce that to different degrees, so every answer is
validated again here against the same schema plus the limits providers do
not enforce (string lengths). An answer that fails is *rejected*: the item's
score is null and the reason is recorded. Nothing is clipped or repaired: a
score of 3 is evidence the answer is not what was asked for, not a strong 1.

One item per request uses the flat object ``{score, confidence, topics,
rationale}``; several items per request use ``{"items": [{"id": n, ...}]}``
where ``id`` is the item's number in the request.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

MAX_TOPICS = 5
MAX_TOPIC_CHARS = 40
MAX_RATIONALE_CHARS = 300
_REASON_CHARS = 240

ITEM_PROPERTIES: dict = {
    "score": {
        "type": "number",
        "minimum": -1,
        "maximum": 1,
        "description": "Effect of the news on the asset's price over the next hours: -1 very negative, "
        "0 neutral or irrelevant, 1 very positive.",
    },
    "confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "Confidence in the score."},
    "topics": {
        "type": "array",
        "items": {"type": "string"},
        "maxItems": MAX_TOPICS,
        "description": f"Up to {MAX_TOPICS} short topic labels.",
    },
    "rationale": {"type": "string", "description": f"One short sentence (at most {MAX_RATIONALE_CHARS} characters)."},
}
_ITEM_FIELDS = list(ITEM_PROPERTIES)


def item_schema(with_id: bool = False) -> dict:
    """The JSON schema of one answer (strict-mode compatible: every field required, no extras)."""
    properties = copy.deepcopy(ITEM_PROPERTIES)
    if with_id:
        properties = {"id": {"type": "integer", "description": "The item's number in the request."}, **properties}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def answer_schema(n_items: int) -> dict:
    """Schema sent for a request of ``n_items`` items."""
    if n_items == 1:
        return item_schema()
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item_schema(with_id=True)}},
        "required": ["items"],
        "additionalProperties": False,
    }


def response_format(n_items: int) -> dict:
    """The ``response_format`` argument of ``chat.completions.create``."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "news_sentiment", "strict": True, "schema": answer_schema(n_items)},
    }


def _with_length_limits(schema: dict) -> dict:
    """``schema`` plus the string limits strict mode does not accept (checked here only)."""
    strict = copy.deepcopy(schema)
    target = strict["properties"]["items"]["items"] if "items" in strict["properties"] else strict
    target["properties"]["topics"]["items"]["maxLength"] = MAX_TOPIC_CHARS
    target["properties"]["rationale"]["maxLength"] = MAX_RATIONALE_CHARS
    return strict


_SINGLE = Draft202012Validator(_with_length_limits(item_schema()))
_ITEM_WITH_ID = Draft202012Validator(_with_length_limits(item_schema(with_id=True)))
_ENVELOPE = Draft202012Validator(
    {"type": "object", "properties": {"items": {"type": "array"}}, "required": ["items"]}
)


@dataclass(frozen=True)
class Verdict:
    """A validated answer for one item, or its rejection (``score`` None, ``rejected_reason`` set)."""

    score: float | None = None
    confidence: float | None = None
    topics: tuple[str, ...] = ()
    rationale: str | None = None
    rejected_reason: str | None = None

    @property
    def rejected(self) -> bool:
        return self.rejected_reason is not None


def rejection(reason: str) -> Verdict:
    reason = " ".join(reason.split())
    return Verdict(rejected_reason=reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 3] + "...")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate key(s) {sorted({k for k in keys if keys.count(k) > 1})}")
    return dict(pairs)


def parse_json(content: str | None) -> object:
    """Strict JSON: no NaN / Infinity, no duplicate keys; ``ValueError`` with a short reason otherwise."""
    if content is None or not content.strip():
        raise ValueError("the answer is empty")
    try:
        return json.loads(content, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        start = " ".join(content.split())[:60]
        raise ValueError(f"the answer is not JSON ({exc.msg} at column {exc.colno}; starts {start!r})") from None


def _error_text(validator: Draft202012Validator, instance: object) -> str | None:
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "answer"
    message = error.message
    if len(message) > 160:  # jsonschema quotes the whole value: name the rule instead
        start = repr(error.instance)[:40]
        message = f"{start}... fails {error.validator} {error.validator_value!r}"
    return f"schema violation at {where}: {message}"


def _verdict(obj: dict) -> Verdict:
    score, confidence = float(obj["score"]), float(obj["confidence"])
    if not (math.isfinite(score) and math.isfinite(confidence)):  # pragma: no cover - parse_json refuses them
        return rejection("score or confidence is not finite")
    return Verdict(score, confidence, tuple(obj["topics"]), obj["rationale"])


def validate_single(content: str | None) -> Verdict:
    """The verdict on the answer to a one-item request."""
    try:
        obj = parse_json(content)
    except ValueError as exc:
        return rejection(str(exc))
    problem = _error_text(_SINGLE, obj)
    return rejection(problem) if problem else _verdict(obj)  # type: ignore[arg-type]


def validate_batch(content: str | None, ids: Sequence[int]) -> dict[int, Verdict]:
    """Verdicts on the answer to a request of several items, by item number.

    Entries whose ``id`` is not in ``ids`` are ignored; an item answered
    twice, answered with a schema violation, or not answered is rejected.
    """
    try:
        obj = parse_json(content)
        problem = _error_text(_ENVELOPE, obj)
        if problem:
            raise ValueError(problem)
    except ValueError as exc:
        return {i: rejection(str(exc)) for i in ids}
    wanted = set(ids)
    seen: dict[int, list[dict]] = {}
    for entry in obj["items"]:  # type: ignore[index]
        key = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(key, int) and not isinstance(key, bool) and key in wanted:
            seen.setdefault(key, []).append(entry)
    verdicts = {}
    for i in ids:
        entries = seen.get(i, [])
        if not entries:
            verdicts[i] = rejection(f"the answer has no entry for item {i}")
        elif len(entries) > 1:
            verdicts[i] = rejection(f"the answer has {len(entries)} entries for item {i}")
        else:
            problem = _error_text(_ITEM_WITH_ID, entries[0])
            verdicts[i] = rejection(problem) if problem else _verdict(entries[0])
    return verdicts
