"""One chat turn across its upstream calls (more than one when the client runs $web_search)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.kimi.events import ChatResult, Usage, WebSearchCall
from bot.kimi.shaping import ChatOptions, shape_chat_request
from bot.kimi.web_search import round_trip_messages, searches_requested

# A bound on the search round trips of one turn: each one costs a fee and a request.
MAX_SEARCH_ROUNDS = 5


class ChatTurn:
    """The growing message list, what the earlier calls said and cost, and the input size of
    the next call, from which each request body is shaped."""

    def __init__(
        self,
        options: ChatOptions,
        messages: Sequence[Mapping[str, Any]],
        *,
        input_tokens: int | None,
    ) -> None:
        self.options = options
        self.messages: list[Mapping[str, Any]] = list(messages)
        self.input_tokens = input_tokens
        self.earlier_content = ""
        self.earlier_reasoning = ""
        self.searches: list[WebSearchCall] = []
        self.usage: Usage | None = None
        self.search_limited = False
        self._rounds = 0

    def _within_allowance(self, searches: tuple[WebSearchCall, ...]) -> bool:
        options = self.options
        if options.max_searches is not None and len(self.searches) + len(searches) > options.max_searches:
            return False
        if options.max_search_tokens is None:
            return True
        sizes = [search.total_tokens for search in [*self.searches, *searches]]
        # A search that does not announce its size could be any size: it is not run.
        return None not in sizes and sum(s or 0 for s in sizes) <= options.max_search_tokens

    def request_body(self, *, stream: bool) -> dict[str, Any]:
        return shape_chat_request(self.options, self.messages, stream=stream, input_tokens=self.input_tokens)

    def continue_after(self, result: ChatResult) -> tuple[WebSearchCall, ...]:
        """If result asks for web searches the client runs, record the round trip and return
        the searches to report (the next request_body then carries it); else return ()."""
        self._rounds += 1
        if result.usage is not None:
            self.usage = result.usage if self.usage is None else self.usage + result.usage
        if not self.options.web_search or self._rounds > MAX_SEARCH_ROUNDS:
            return ()
        calls = searches_requested(result)
        if not calls:
            return ()
        searches = tuple(WebSearchCall.from_arguments(call.arguments) for call in calls)
        if not self._within_allowance(searches):
            # Paid for (the fee comes with the tool-call response, however many calls it carries)
            # but not run: the caller sees the calls and a "tool_calls" finish, and this is the
            # turn's last response, whose fees the reservation holds (bot/search_budget.py).
            self.search_limited = True
            return ()
        self.searches.extend(searches)
        self.messages.extend(round_trip_messages(result))
        self.earlier_content += result.content
        self.earlier_reasoning += result.reasoning
        if self.input_tokens is not None:
            # The next input is this one plus the assistant's message plus the search results,
            # whose size the arguments announce.
            prompt = result.usage.prompt_tokens if result.usage else self.input_tokens
            output = result.usage.completion_tokens if result.usage else 0
            self.input_tokens = prompt + output + sum(s.total_tokens or 0 for s in searches)
        return searches
