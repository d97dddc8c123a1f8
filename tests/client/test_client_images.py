"""Images from the Python client: a user turn's images go on the wire with their media type,
and `Image.from_file` reads one with the type its extension names."""

from __future__ import annotations

from pathlib import Path

from fareway.client import Image, Turn, convert
from fareway.v1 import router_pb2

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_a_user_turns_images_go_before_its_text_on_the_wire() -> None:
    request = convert.generate_request([Turn.user("cat or dog?", [Image("image/png", PNG)])])

    [message] = request.messages
    assert message.role == router_pb2.ROLE_USER
    assert message.content == "cat or dog?"
    assert [(i.media_type, i.data) for i in message.images] == [("image/png", PNG)]


def test_an_image_file_is_read_with_its_media_type(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff")

    image = Image.from_file(path)

    assert image == Image("image/jpeg", b"\xff\xd8\xff")
