"""`fareway budget get` and `fareway budget set`.

SetBudget replaces a tenant's whole list of limits, but `budget set --day 5` means "make the
day cap $5", not "make the day cap $5 and drop the month cap". So `set` reads the tenant's
current budget first and changes only what the flags name: the caps given, and `--soft` /
`--on-exceed` on those windows (or, with no cap flag, on every window the tenant has). Every
other window keeps its cap, soft fraction and on-exceed. `--replace` sends exactly the limits
given instead, and `--clear WINDOW` removes one window's cap.

Reading and then writing is not atomic: two admins changing one tenant at the same moment
may each undo the other's change to a window they did not name.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fareway.cli import arguments
from fareway.client import Budget, BudgetLimit, OnExceed, Window


class NothingToApply(Exception):
    """`--soft` or `--on-exceed` without a cap flag, for a tenant that has no caps."""


@dataclass(frozen=True)
class BudgetChange:
    """What `budget set` was asked to change; None means "keep"."""

    caps_micros: Mapping[Window, int]
    soft_fraction: float | None = None
    on_exceed: OnExceed | None = None
    clear: frozenset[Window] = frozenset()
    replace: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BudgetChange:
        """The change the parsed `budget set` flags ask for."""
        caps = {w: getattr(args, w.value) for w in Window if getattr(args, w.value) is not None}
        return cls(
            caps_micros=caps,
            soft_fraction=args.soft,
            on_exceed=OnExceed(args.on_exceed) if args.on_exceed is not None else None,
            clear=frozenset(Window(w) for w in args.clear),
            replace=args.replace,
        )

    def problem(self, latency_target_ms: int | None) -> str | None:
        """Why these flags make no sense together, or None."""
        both = sorted(w.value for w in self.clear & self.caps_micros.keys())
        if both:
            return f"--{both[0]} and --clear {both[0]}: give one or the other"
        if self.replace and self.clear:
            return "--replace already removes the caps not given; --clear adds nothing"
        adjusts = self.soft_fraction is not None or self.on_exceed is not None
        if self.replace and adjusts and not self.caps_micros:
            return "--replace with --soft or --on-exceed needs a cap (--day, --month, --total)"
        if not (self.caps_micros or adjusts or self.clear or self.replace) and (
            latency_target_ms is None
        ):
            return (
                "nothing to change: give --day, --month or --total (USD), --soft, --on-exceed, "
                "--latency-target-ms, --clear or --replace"
            )
        return None

    def limits(self, current: Sequence[BudgetLimit]) -> list[BudgetLimit]:
        """The full list of limits to send, given the tenant's `current` ones (ignored with
        `replace`). A window gets a new cap only when named; `--soft` and `--on-exceed` apply
        to the named windows, or to every remaining window when none is named."""
        if self.replace:
            soft = self.soft_fraction or 0.0
            on_exceed = self.on_exceed or OnExceed.REJECT
            return [
                BudgetLimit(w, self.caps_micros[w], soft, on_exceed)
                for w in Window
                if w in self.caps_micros
            ]
        kept = {limit.window: limit for limit in current if limit.window not in self.clear}
        adjusted = set(self.caps_micros) or set(kept)
        if (self.soft_fraction is not None or self.on_exceed is not None) and not adjusted:
            raise NothingToApply(
                "the tenant has no caps for --soft or --on-exceed to apply to; "
                "give --day, --month or --total too"
            )
        result = []
        for window in Window:
            old = kept.get(window)
            cap = self.caps_micros.get(window, old.cap_micros if old else None)
            if cap is None:
                continue
            soft = old.soft_fraction if old else 0.0
            on_exceed = old.on_exceed if old else OnExceed.REJECT
            if window in adjusted:
                soft = soft if self.soft_fraction is None else self.soft_fraction
                on_exceed = on_exceed if self.on_exceed is None else self.on_exceed
            result.append(BudgetLimit(window, cap, soft, on_exceed))
        return result


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`budget get` and `budget set` under `commands`."""
    budget = commands.add_parser(
        "budget",
        help="show or change a tenant's cost caps",
        description="Show a tenant's caps, spend and holds (get), or change its caps with the\n"
        "admin key (set).",
    )
    actions = budget.add_subparsers(required=True, metavar="action")

    get = actions.add_parser("get", help="caps, spend and holds of a tenant")
    arguments.add_connection_options(get)
    get.add_argument(
        "--tenant",
        default="",
        help="the tenant to show; another tenant's needs the admin key (default: the key's own)",
    )
    get.set_defaults(run=run_get)

    put = actions.add_parser(
        "set",
        help="change a tenant's caps (admin key)",
        description="Change a tenant's caps with the admin key, and print the new budget.\n"
        "Only the windows named change; the others keep their cap, soft fraction and\n"
        "on-exceed. --replace sends exactly the caps given instead.",
    )
    arguments.add_connection_options(put)
    put.add_argument("--tenant", required=True, help="the tenant whose budget changes (required)")
    for window in Window:
        per = "in all" if window is Window.TOTAL else f"per UTC {window.value}"
        put.add_argument(
            f"--{window.value}",
            type=arguments.usd_micros,
            metavar="USD",
            help=f"hard cap {per}, in USD with at most 6 decimals; 0 blocks all spend "
            "(default: keep the current cap)",
        )
    put.add_argument(
        "--soft",
        type=arguments.fraction,
        metavar="FRACTION",
        help="downgrade requests to a cheaper tier above this fraction of the cap, 0 to 1, "
        "0 = never (default: keep the current one; with --replace, 0)",
    )
    put.add_argument(
        "--on-exceed",
        choices=[o.value for o in OnExceed],
        help="at the hard cap, reject requests or serve them with the cheapest model while it "
        "fits (default: keep the current one; with --replace, reject)",
    )
    put.add_argument(
        "--latency-target-ms",
        type=arguments.non_negative_int,
        metavar="MS",
        help="time-to-first-token target in milliseconds, 0 = none (default: keep the current)",
    )
    put.add_argument(
        "--clear",
        action="append",
        default=[],
        choices=[w.value for w in Window],
        metavar="WINDOW",
        help="remove this window's cap: day, month or total (repeatable)",
    )
    put.add_argument(
        "--replace",
        action="store_true",
        help="send exactly the caps given: windows not given lose their caps (with no cap "
        "flag, every cap is removed)",
    )

    def validate(args: argparse.Namespace) -> None:
        problem = BudgetChange.from_args(args).problem(args.latency_target_ms)
        if problem is not None:
            put.error(problem)

    put.set_defaults(run=run_set, validate=validate)


def run_get(args: argparse.Namespace) -> int:
    """`budget get`: print a tenant's budget."""
    with arguments.connect(args) as client:
        print_budget(client.get_budget(args.tenant))
    return 0


def run_set(args: argparse.Namespace) -> int:
    """`budget set`: change what the flags name, keep the rest, print the new budget."""
    change = BudgetChange.from_args(args)
    with arguments.connect(args) as client:
        current = () if change.replace else client.get_budget(args.tenant).limits
        limits = change.limits(current)
        print_budget(client.set_budget(args.tenant, limits, args.latency_target_ms))
    return 0


def print_budget(budget: Budget) -> None:
    """A tenant's caps, spend, holds and latency target, one window a line."""
    print(f"tenant {budget.tenant}")
    if not budget.limits:
        print("  no caps")
    for limit in budget.limits:
        resets = f", resets {limit.resets_at:%Y-%m-%d %H:%M} UTC" if limit.resets_at else ""
        print(
            f"  {limit.window.value:<6} cap ${usd(limit.cap_micros)}: "
            f"spent ${limit.spent_micros / 1e6:.6f}, held ${limit.reserved_micros / 1e6:.6f}, "
            f"left ${limit.remaining_micros / 1e6:.6f}; soft {limit.soft_fraction:.0%}, "
            f"on exceed {limit.on_exceed.value}{resets}"
        )
    target = f"{budget.latency_target_ms} ms" if budget.latency_target_ms else "none"
    print(f"  latency target {target}, met by {budget.latency_attainment:.0%} of requests")


def usd(micros: int) -> str:
    """Micro-USD as USD with two decimals, or more when needed to be exact (0.000001)."""
    whole, fraction = divmod(micros, 1_000_000)
    digits = f"{fraction:06d}".rstrip("0").ljust(2, "0")
    return f"{whole}.{digits}"
