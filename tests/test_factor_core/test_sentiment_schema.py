"""Answer validation: out of range or malformed is rejected with a reason, never clipped or repaired."""

from __future__ import annotations

import json

import pytest

from factor_core.sentiment.schema import (
    MAX_RATIONALE_CHARS,
    answer_schema,
    response_format,
    validate_batch,
    validate_single,
)

GOOD = {"score": -0.25, "confidence": 0.75, "topics": ["etf", "flows"], "rationale": "Inflows slow."}


def answer(**changes) -> str:
    obj = {**GOOD, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not ...})


def test_a_good_answer_is_kept_exactly():
    verdict = validate_single(answer())
    assert (verdict.score, verdict.confidence, verdict.topics, verdict.rationale) == (-0.25, 0.75, ("etf", "flows"), "Inflows slow.")
    assert not verdict.rejected


@pytest.mark.parametrize("score", [-1, 1, 0])
def test_the_bounds_themselves_are_valid(score):
    assert validate_single(answer(score=score)).score == score


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"score": 3}, "maximum"),
        ({"score": -1.0001}, "minimum"),
        ({"confidence": 1.5}, "maximum"),
        ({"confidence": -0.1}, "minimum"),
        ({"score": "0.5"}, "not of type 'number'"),
        ({"score": True}, "not of type 'number'"),
        ({"score": None}, "not of type 'number'"),
        ({"topics": ["a", "b", "c", "d", "e", "f"]}, "too long"),
        ({"topics": ["x" * 41]}, "too long"),
        ({"topics": [1]}, "not of type 'string'"),
        ({"rationale": "x" * (MAX_RATIONALE_CHARS + 1)}, f"fails maxLength {MAX_RATIONALE_CHARS}"),
        ({"confidence": ...}, "'confidence' is a required property"),
        ({"extra": "field"}, "Additional properties"),
    ],
)
def test_out_of_range_or_malformed_fields_are_rejected_with_the_field_named(changes, reason):
    verdict = validate_single(answer(**changes))
    assert verdict.rejected and verdict.score is None
    assert reason in verdict.rejected_reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("The score is 0.5", "not JSON"),
        ("```json\n" + json.dumps(GOOD) + "\n```", "not JSON"),
        ('{"score": NaN, "confidence": 0.5, "topics": [], "rationale": ""}', "NaN is not a JSON number"),
        ('{"score": Infinity, "confidence": 0.5, "topics": [], "rationale": ""}', "Infinity"),
        ('{"score": 0.1, "score": 3, "confidence": 0.5, "topics": [], "rationale": ""}', "duplicate key"),
        ("[0.5]", "not of type 'object'"),
        ("", "empty"),
        (None, "empty"),
    ],
)
def test_answers_that_are_not_the_json_asked_for_are_rejected(content, reason):
    verdict = validate_single(content)
    assert verdict.rejected and reason in verdict.rejected_reason


def test_a_long_rejection_reason_is_shortened():
    verdict = validate_single("x" * 5000)
    assert len(verdict.rejected_reason) <= 240


def test_batch_answers_are_matched_by_id_and_judged_one_by_one():
    content = json.dumps({"items": [
        {"id": 2, **GOOD},
        {"id": 1, **{**GOOD, "score": 2}},
        {"id": 3, **GOOD}, {"id": 3, **GOOD},
        {"id": 9, **GOOD},  # not asked: ignored
    ]})
    verdicts = validate_batch(content, [1, 2, 3, 4])
    assert verdicts[2].score == GOOD["score"]
    assert "maximum" in verdicts[1].rejected_reason
    assert "2 entries for item 3" in verdicts[3].rejected_reason
    assert "no entry for item 4" in verdicts[4].rejected_reason
    assert set(verdicts) == {1, 2, 3, 4}


def test_a_batch_answer_without_items_rejects_every_item():
    verdicts = validate_batch(json.dumps(GOOD), [1, 2])
    assert all(v.rejected and "'items' is a required property" in v.rejected_reason for v in verdicts.values())


def test_the_schema_sent_is_strict_mode_compatible():
    for n in (1, 3):
        schema = response_format(n)["json_schema"]
        assert schema["strict"] is True
        item = schema["schema"] if n == 1 else schema["schema"]["properties"]["items"]["items"]
        assert item["additionalProperties"] is False and set(item["required"]) == set(item["properties"])
        assert item["properties"]["score"]["minimum"] == -1 and item["properties"]["score"]["maximum"] == 1
    assert "id" in answer_schema(2)["properties"]["items"]["items"]["properties"]
