"""Tool calls streamed in fragments, assembled into complete calls: shared by the SDK providers.

Anthropic streams a call's input as `input_json_delta` fragments of one content block, OpenAI
as `function.arguments` fragments of one `tool_calls` index; both split the JSON anywhere (one
character a fragment is legal). Nothing downstream of a provider sees a fragment: a provider
collects them in a `PendingCall` and, when the upstream says the call is complete, turns it
into a `ToolCall` whose arguments are checked to be one JSON object. A call whose fragments do
not make one (a truncated or garbled stream) raises `MalformedResponse`, so the caller sees a
provider failure instead of a call it cannot run.

Except when the answer stopped at max_tokens: then the last call was cut by the limit the
caller set, not broken by the provider. It is dropped, and the answer ends with stop reason
`max_tokens`, as text cut there does, so the caller raises max_tokens; a fallback would only
hit the same limit on another model, and count against a model that did nothing wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from fareway.core.content import ToolCall
from fareway.core.errors import ProviderError
from fareway.providers import errors


@dataclass
class PendingCall:
    """A call whose arguments are still arriving."""

    id: str
    name: str
    fragments: list[str] = field(default_factory=list)

    def complete(self, model: str) -> ToolCall:
        """The assembled call; MalformedResponse when it has no id or name, or its arguments
        are not a JSON object. No fragments at all means no arguments: "{}"."""
        arguments = "".join(self.fragments)
        if not arguments.strip():
            arguments = "{}"
        if not self.id or not self.name:
            raise self._malformed("the call has no id or no name", model)
        try:
            parsed = json.loads(arguments)
        except ValueError as exc:
            raise self._malformed(f"its arguments are not JSON ({exc})", model) from exc
        if not isinstance(parsed, dict):
            kind = _JSON_KINDS.get(type(parsed), "value")
            raise self._malformed(f"its arguments are a JSON {kind}, not an object", model)
        return ToolCall(self.id, self.name, arguments)

    def _malformed(self, reason: str, model: str) -> ProviderError:
        return errors.malformed_tool_call(self.name, self.id, reason, model)


_JSON_KINDS: dict[type, str] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
