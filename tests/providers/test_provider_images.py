"""Images in the providers' own formats, through the real SDKs against the loopback fakes:
Anthropic's base64 image blocks and OpenAI's data-URL image parts, before the turn's text."""

from __future__ import annotations

import base64
import dataclasses

from fareway.core.content import Image, Message
from fareway.providers.base import Provider
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.providers.upstreams import ANTHROPIC, OPENAI, collect

TASK = "classify this picture: cat or dog?"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


PICTURED = (Message.user(TASK, (Image("image/png", PNG),)),)
ENCODED = base64.b64encode(PNG).decode("ascii")


async def test_anthropic_receives_a_base64_image_block_before_the_text() -> None:
    async with FakeAnthropic() as fake:
        provider: Provider = ANTHROPIC.provider(fake.base_url)
        try:
            await collect(provider, dataclasses.replace(ANTHROPIC.call(), messages=PICTURED))
        finally:
            await provider.aclose()
        content = fake.requests[-1].body["messages"][0]["content"]
    assert content == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ENCODED}},
        {"type": "text", "text": TASK},
    ]


async def test_openai_receives_an_image_as_a_data_url_before_the_text() -> None:
    async with FakeOpenAI() as fake:
        provider: Provider = OPENAI.provider(fake.base_url)
        try:
            await collect(provider, dataclasses.replace(OPENAI.call(), messages=PICTURED))
        finally:
            await provider.aclose()
        content = fake.requests[-1].body["messages"][0]["content"]
    assert content == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{ENCODED}"}},
        {"type": "text", "text": TASK},
    ]
