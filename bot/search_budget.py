"""What a chat turn with web search may cost at most, so its reservation is a true upper bound.

A turn with $web_search is several upstream requests: the model may ask for searches (each one
billed a fixed fee), their results come back as input of the next request, and only then does it
answer. The turn is held to an allowance (how many searches, how many result tokens in all; the
Kimi client stops the round trip beyond it), and the worst case of that allowance is reserved:

    (searches + 1) requests, each with at most
        input  = prompt + all result tokens + every earlier request's output (max_tokens each)
        output = max_tokens
    plus the fees of the searches run (at most `searches`)
    plus the fees of the one response that asks beyond the allowance (at most `per_response`).

Why the last term: Moonshot bills the fee of every $web_search call in a tool-call response,
whether or not the client then runs it, and one response may carry several calls. The response
that crosses the allowance is the turn's last (the client stops there), so it is billed at most
once per turn. The client cannot stop the model from asking: the request that carries the last
allowed results must still declare the tool (Moonshot only runs a search that is declared on
the request), and neither Moonshot nor the OpenAI-style API documents a limit on the calls one
response may carry. So `per_response` is an assumption (WEB_SEARCH_MAX_CALLS_PER_RESPONSE): a
response carrying more is charged to the user only up to it (`chargeable_searches`), and the
rest is the operator's loss, logged. A user's budget is never overspent and the reservation
always covers what the user is charged.

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
    searches: int = 2  # $web_search calls run per turn (WEB_SEARCH_MAX_CALLS)
    result_tokens: int = 16_000  # tokens of search results per turn, all searches together
    # The most $web_search calls one response is assumed to carry; the fees reserved for the
    # response that asks beyond the allowance (WEB_SEARCH_MAX_CALLS_PER_RESPONSE).
    per_response: int = 4

    @property
    def most_fees(self) -> int:
        """The most search fees a turn is charged: those run, plus the response past the limit."""
        return self.searches + self.per_response


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
    return requests * price.cost_micro(largest_input, max_tokens) + allowance.most_fees * fee_micro


def chargeable_searches(billed: int, allowance: SearchAllowance) -> int:
    """The search fees charged to the user: what Moonshot billed, never more than was reserved."""
    return min(billed, allowance.most_fees)
