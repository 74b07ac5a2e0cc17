"""What a chat turn with web search may cost at most, so its reservation is a true upper bound.

A turn with $web_search is several upstream requests: the model may ask for searches (each one
billed a fixed fee), their results come back as input of the next request, and only then does it
answer. The turn is held to an allowance (how many searches, how many result tokens in all; the
Kimi client stops the round trip beyond it), and the worst case of that allowance is reserved:

    (searches + 1) requests, each with at most
        input  = prompt + all result tokens + every earlier request's output (max_tokens each)
        output = max_tokens
    plus the fee of every search.

Results' sizes are known before they are paid for (Moonshot announces usage.total_tokens in the
tool call's arguments), which is what lets the client keep to the allowance.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.pricing import ModelPrice

# An assistant tool-call message and its tool message, echoed back: a generous bound in tokens on
# what a search adds to the next input besides its results.
ROUND_TRIP_OVERHEAD_TOKENS = 512


@dataclass(frozen=True)
class SearchAllowance:
    searches: int = 2  # $web_search calls per turn
    result_tokens: int = 16_000  # tokens of search results per turn, all searches together


def search_worst_case_micro(
    price: ModelPrice, prompt_tokens: int, max_tokens: int, fee_micro: int, allowance: SearchAllowance
) -> int:
    """The most a turn with web search can cost within `allowance`, in micro-元点."""
    requests = allowance.searches + 1
    largest_input = (
        prompt_tokens
        + allowance.result_tokens
        + allowance.searches * (max_tokens + ROUND_TRIP_OVERHEAD_TOKENS)
    )
    return requests * price.cost_micro(largest_input, max_tokens) + allowance.searches * fee_micro
