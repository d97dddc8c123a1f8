"""A small agent through fareway: it plans, calls a calculator tool, checks the tool's result
and writes the answer, and every step tells the router which kind of step it is.

    make run                        # in one shell: the embedded default, simulated models
    python examples/agent_loop.py   # in another (--target, --api-key; a question of your own)

Each step is one `complete` call with its `step_type` hint, so the router sends it to the tier
that kind of step needs (the embedded default's `steps` strategy: planning and the final answer
to the powerful tier, the tool-call decision to balanced, classifying a tool's result to fast):

1. planning: the model writes a short plan; no tools.
2. tool_call_decision: the calculator is offered, and the model calls it (it comes back as a
   `ToolCall`, stop reason "tool_use"). The agent runs the calculator itself.
3. result_classification: the conversation goes back with the result as a tool turn
   (`Turn.tool`), and a cheap model says whether the result answers the question.
4. final_synthesis: the same conversation, tools still offered (providers require the
   definitions while the conversation holds calls) but not to be called, gives the answer.

The calculator evaluates numbers, + - * / and parentheses, nothing else: it parses the
expression with `ast` and walks only number and operator nodes, never `eval`. It takes the
arithmetic out of the text it receives, since a model may pass a whole sentence.
"""

from __future__ import annotations

import argparse
import ast
import operator
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from fractions import Fraction

from fareway.client import (
    DEFAULT_TARGET,
    Client,
    Completion,
    FarewayError,
    Tool,
    ToolCall,
    Turn,
    Unavailable,
)

DEMO_KEY = "fareway-demo-key"
QUESTION = "Use the calculator: what is (12 + 30) * 2 / 4?"
MAX_TOKENS = 512
SHOWN_CHARACTERS = 120  # of each step's text; the final answer is shown whole
CALCULATOR = Tool(
    "calculator",
    "Evaluates an arithmetic expression of numbers, + - * / and parentheses.",
    {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
)
PLANNING, TOOL_CALL_DECISION, RESULT_CLASSIFICATION, FINAL_SYNTHESIS = (
    "planning",
    "tool_call_decision",
    "result_classification",
    "final_synthesis",
)

# The longest run of these characters that holds a digit is the expression in a sentence.
_ARITHMETIC = re.compile(r"[\d.\s+\-*/()]+")
_MAX_EXPRESSION = 200  # characters: enough for any question, too few to nest the parser deep
_OPERATORS: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def calculate(text: str) -> str:
    """The value of the arithmetic in `text`, exact (fractions, so 0.1 + 0.2 is 0.3), as a
    number; ValueError when there is none or it is not only numbers, + - * / and
    parentheses, ZeroDivisionError for a division by zero."""
    expression = extract_expression(text)
    value = _evaluate(ast.parse(expression, mode="eval").body)
    if value.denominator == 1:
        return str(value.numerator)
    return format(float(value), ".12g")


def extract_expression(text: str) -> str:
    """The arithmetic of `text`: its longest run of digits, operators and parentheses."""
    runs = [match[0].strip().rstrip(".") for match in _ARITHMETIC.finditer(text)]
    candidates = [run for run in runs if any(c.isdigit() for c in run)]
    if not candidates:
        raise ValueError(f"no arithmetic in {text!r}")
    expression = max(candidates, key=len)
    if len(expression) > _MAX_EXPRESSION:
        raise ValueError(f"the expression is longer than {_MAX_EXPRESSION} characters")
    return expression


def _evaluate(node: ast.expr) -> Fraction:
    """Walk the parsed expression, refusing every node but numbers and + - * /."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))  # via str: 0.1 is one tenth, not its binary neighbour
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError(f"not arithmetic: {ast.unparse(node)}")


def run_tool(call: ToolCall) -> str:
    """What the tool returns for `call`. Failures are results too ("error: ..."): the model
    reads them and may try again, as it would with a real tool."""
    if call.name != CALCULATOR.name:
        return f"error: unknown tool {call.name}"
    try:
        return calculate(str(call.arguments()["expression"]))
    except ZeroDivisionError:
        return "error: division by zero"
    except (ValueError, SyntaxError) as error:  # JSONDecodeError is a ValueError
        return f"error: {error}"
    except (KeyError, TypeError):
        return 'error: the arguments must be an object with an "expression" string'


class Agent:
    """Runs the four steps against a fareway client, showing each as it completes."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._steps = 0

    def run(self, question: str) -> str:
        """Answer `question`; returns the final answer."""
        plan = self._step(PLANNING, [Turn.user(question)], system="Write a short plan.").text
        system = f"Follow this plan, using the tools when they help:\n{plan}"
        conversation = [Turn.user(question)]
        decision = self._step(TOOL_CALL_DECISION, conversation, system, tools=[CALCULATOR])
        if not decision.tool_calls:  # the model answered at once: nothing to check
            return self._answer(decision.text)
        conversation += [decision.turn, *self._call_tools(decision.tool_calls)]
        self._step(
            RESULT_CLASSIFICATION,
            conversation,
            "Does the tool's result answer the question? Say ok or retry, and why.",
            tools=[CALCULATOR],
            tool_choice="none",
        )
        final = self._step(
            FINAL_SYNTHESIS, conversation, system, tools=[CALCULATOR], tool_choice="none"
        )
        return self._answer(final.text)

    def _step(
        self,
        step_type: str,
        conversation: Sequence[Turn],
        system: str,
        tools: Sequence[Tool] = (),
        tool_choice: str = "",
    ) -> Completion:
        """One call to fareway, hinted with its step type; shows where it went and why."""
        answer = self._client.complete(
            conversation,
            system=system,
            max_tokens=MAX_TOKENS,
            step_type=step_type,
            tools=tools,
            tool_choice=tool_choice,
        )
        self._steps += 1
        d = answer.decision
        print(f"{self._steps}. {step_type} → {d.model} ({d.tier} tier): {d.reason}")
        if answer.text:
            print(f"   {textwrap.shorten(answer.text, SHOWN_CHARACTERS, placeholder=' …')}")
        return answer

    def _call_tools(self, calls: Sequence[ToolCall]) -> list[Turn]:
        """Run each call and show it; the results, as the tool turns that answer the calls."""
        results = []
        for call in calls:
            result = run_tool(call)
            print(f"   tool_call {call.name} {call.arguments_json} (id {call.id}) → {result}")
            results.append(Turn.tool(call.id, result))
        return results

    def _answer(self, text: str) -> str:
        print(f"answer: {text}")
        return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent once; 1 with a one-line error when fareway refuses or cannot be reached."""
    args = _parser().parse_args(argv)
    try:
        with Client(args.target, args.api_key, timeout_s=args.timeout) as client:
            Agent(client).run(args.question)
    except Unavailable as error:
        hint = f"is `make run` serving {args.target}?"
        print(f"agent_loop: {error.code.name}: {error.message} ({hint})", file=sys.stderr)
        return 1
    except FarewayError as error:
        print(f"agent_loop: {error.code.name}: {error.message}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "question", nargs="?", default=QUESTION, help="what to ask (default: %(default)s)"
    )
    parser.add_argument(
        "--target",
        default=os.environ.get("FAREWAY_TARGET", DEFAULT_TARGET),
        metavar="HOST:PORT",
        help="fareway's address (env FAREWAY_TARGET; default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FAREWAY_API_KEY", DEMO_KEY),
        metavar="KEY",
        help=f"API key (env FAREWAY_API_KEY; default: the demo key {DEMO_KEY})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="deadline of each call (default: %(default)s)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
