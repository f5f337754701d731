"""Journey definitions, generated: any trigger, step tree and template parameters, valid or
hostile, is either refused naming a field or created (and then listed, paused and resumed);
nothing else escapes."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tsunagu.activation.journeys import JourneyCreate, create_journey, list_journeys, set_status
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.store import Store

TEXT = st.one_of(
    st.sampled_from(["'; DROP TABLE journeys; --", "", " ", "\u0000", "カート", "1d", "-1h",
                     "x" * 300, "{coupon_code}", "line", "email", "nope"]),
    st.text(max_size=12),
)  # fmt: skip
DURATION = st.one_of(st.sampled_from(["1h", "30m", "7d", "0d", "2w", "100y", "h"]), TEXT)
STEP_EVENT = st.fixed_dictionaries(
    {"event": st.one_of(st.sampled_from(["Product Added", "Order Completed"]), TEXT)},
    optional={"channel": TEXT, "where": st.dictionaries(TEXT, TEXT, max_size=2)},
)
MESSAGE = st.fixed_dictionaries({"text": TEXT}, optional={"subject": TEXT, "url": TEXT})
LEAF_STEP = st.one_of(
    st.builds(lambda d: {"wait": d}, DURATION),
    st.builds(lambda m, c: {"send": {"message": m, "channel": c}}, MESSAGE,
              st.one_of(st.none(), st.sampled_from(["line", "email", "dm"]), TEXT)),
    st.just({"exit": {}}),
    st.builds(lambda v: {"coupon": {"value_yen": v}}, st.integers(-10, 10**7)),
)  # fmt: skip
STEPS = st.recursive(
    st.lists(LEAF_STEP, max_size=3),
    lambda inner: st.lists(
        st.one_of(
            LEAF_STEP,
            st.builds(lambda e, w, t: {"wait_for": e, "within": w, "then": t},
                      STEP_EVENT, DURATION, inner),
            st.builds(lambda t: {"if": {"rule": {"event": "Order Completed"}}, "then": t}, inner),
        ),
        max_size=3,
    ),
    max_leaves=5,
)  # fmt: skip
TRIGGER = st.one_of(
    st.builds(lambda e: {"event": e}, STEP_EVENT),
    st.builds(lambda s: {"segment_entered": s}, TEXT),
    st.builds(lambda h: {"schedule": {"at": h}}, TEXT),
    st.just({}),
)
TEMPLATES = st.sampled_from(["cart_abandonment", "favourite_in_stock", "store_visit_coupon",
                             "lapsed_catalogue", "post_purchase", "nope", None])  # fmt: skip
_names = itertools.count()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Store(tmp_path_factory.mktemp("journeyfuzz") / "t.duckdb") as store:
        yield store


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(
    template=TEMPLATES, trigger=TRIGGER, steps=STEPS,
    params=st.dictionaries(st.sampled_from(["wait", "channel", "message", "radius_km"]),
                           st.one_of(TEXT, DURATION, st.integers(-5, 5)), max_size=3),
    channel=st.one_of(st.none(), st.sampled_from(["line", "email", "dm", "push"]), TEXT),
    share=st.floats(-1, 2),
)  # fmt: skip
def test_any_definition_is_refused_by_name_or_created(
    shop: Store, template: str | None, trigger: dict[str, Any], steps: list[Any],
    params: dict[str, Any], channel: str | None, share: float,
) -> None:  # fmt: skip
    body: dict[str, Any] = {"name": f"fuzz {next(_names)}", "control_share": share,
                            "channel": channel, "params": params}  # fmt: skip
    if template:
        body["template"] = template
    else:
        body |= {"trigger": trigger, "steps": steps}
    try:
        made = create_journey(store=shop, body=JourneyCreate.model_validate(body))
    except ValidationError:
        event("refused by the model")
        return
    except (InvalidInput, NotFound) as exc:
        event("refused when created")
        assert exc.field, exc.message
        return
    event("created")
    assert made.journey_id in {j.journey_id for j in list_journeys(store=shop)}
    assert set_status(store=shop, journey_id=made.journey_id, status="paused").status == "paused"
