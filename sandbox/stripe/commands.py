"""`sandbox stripe-webhooks`: deliver due Stripe webhook events (a loop, or one round)."""

from __future__ import annotations

import random
import time

from sandbox.commands import Subcommand
from sandbox.stripe.webhooks import webhook_deliveries_send_due


def _add_arguments(parser):
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument(
        "--shuffle-seed",
        type=int,
        default=None,
        help="shuffle each round with this seed (Stripe does not order deliveries)",
    )


def _run(*, stdout, stderr, once: bool, interval: float, shuffle_seed: int | None, **options):
    rng = random.Random(shuffle_seed) if shuffle_seed is not None else None
    while True:
        outcome = webhook_deliveries_send_due(rng=rng)
        if outcome.delivered or outcome.failed or once:
            stdout.write(f"delivered {outcome.delivered}, failed {outcome.failed}")
        if once:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


SUBCOMMAND = Subcommand(
    name="stripe-webhooks",
    help="Deliver due Stripe webhook events, signed, retrying with backoff (Ctrl-C stops).",
    add_arguments=_add_arguments,
    run=_run,
)
