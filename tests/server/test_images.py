"""Images on user turns through the real server: only "vision" models serve them, each counts
in the prompt estimate, and bad images are INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.core.content import IMAGE_TOKENS
from fareway.v1 import router_pb2
from tests.server.harness import TENANT_KEY, Harness, metadata, user_request
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)
TASK = "classify this picture: cat or dog?"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # the bytes are not looked at, only carried


def with_image(request: router_pb2.GenerateRequest, media_type: str = "image/png") -> Any:
    request.messages[-1].images.append(router_pb2.Image(media_type=media_type, data=PNG))
    return request


async def route(harness: Harness, request: router_pb2.GenerateRequest) -> router_pb2.RouteDecision:
    decision: router_pb2.RouteDecision = await harness.router.Route(request, metadata=AUTH)
    return decision


async def test_only_vision_models_serve_an_image_and_it_counts_in_the_estimate(
    harness: Harness,
) -> None:
    text_only = await route(harness, user_request(TASK, model="balanced-1"))
    pictured = await route(harness, with_image(user_request(TASK, model="balanced-1")))
    decision = await route(harness, with_image(user_request(TASK)))

    # The test catalog's fast-1 has no "vision"; a classification would go there otherwise.
    reasons = {c.model: c.excluded_reason for c in decision.candidates}
    assert reasons["fast-1"] == "lacks the 'vision' capability that the images need"
    assert decision.model != "fast-1"
    input_price = 3_000_000  # balanced-1's micro-USD per million input tokens in the harness
    added = pictured.estimated_cost_micros - text_only.estimated_cost_micros
    assert added == pytest.approx(IMAGE_TOKENS * input_price / 1_000_000, abs=1)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: m.images.append(router_pb2.Image(media_type="image/tiff", data=PNG)),
         "messages[0].images[0].media_type"),
        (lambda m: m.images.append(router_pb2.Image(media_type="image/png")),
         "messages[0].images[0].data"),
    ],
)  # fmt: skip
async def test_a_bad_image_is_invalid_naming_its_field(
    harness: Harness, change: Any, field: str
) -> None:
    request = user_request(TASK)
    change(request.messages[0])

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Complete(request, metadata=AUTH)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = detail(caught.value, error_details_pb2.BadRequest)
    assert bad is not None
    assert [v.field for v in bad.field_violations] == [field]


async def test_an_image_on_an_assistant_turn_is_refused(harness: Harness) -> None:
    request = router_pb2.GenerateRequest(
        messages=[
            router_pb2.Message(role=router_pb2.ROLE_USER, content="hi"),
            router_pb2.Message(
                role=router_pb2.ROLE_ASSISTANT,
                content="hello",
                images=[router_pb2.Image(media_type="image/png", data=PNG)],
            ),
            router_pb2.Message(role=router_pb2.ROLE_USER, content=TASK),
        ],
        max_tokens=64,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Route(request, metadata=AUTH)
    assert "messages[1].images: only on ROLE_USER turns" in (caught.value.details() or "")
