"""Documents: read with Kimi's file-extract, priced before spending, summarised in parts if huge.

The remote copy of a file is deleted as soon as its text is read, on errors too: Moonshot keeps at
most 1,000 files per account, and a leaked file is a slot lost for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from bot.budget import BudgetKeeper, Refused
from bot.charging import Bill, Charge, billed_or_estimated
from bot.context_window import estimate_text_tokens
from bot.kimi import (
    KimiClient,
    KimiConnectionError,
    KimiError,
    KimiFileExtractionFailed,
    KimiServerError,
    KimiTimeout,
)
from bot.pricing import ModelPrice, PriceTable
from bot.settings import Settings
from bot.token_bound import request_bound
from storage import NewInflightTurn, NewMessage, Store, UserRecord

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files on the cloud Bot API
SUMMARY_OUTPUT_TOKENS = 2048  # what a summary is expected to need, for the estimate
PART_SUMMARY_TOKENS = 1024  # each part's summary in a map-reduce
SUMMARY_SLOT_TOKENS = PART_SUMMARY_TOKENS + 16  # one summary with its "[Part i/n]" label
DOCUMENT_OVERHEAD_TOKENS = 64  # the framing around a document in the request

SUPPORTED_EXTENSIONS = frozenset(
    """pdf doc docx xls xlsx ppt pptx txt md markdown csv tsv html htm json epub mobi log xml yaml yml
    toml ini cfg conf rtf tex py js ts tsx jsx go c h cc cpp hpp java kt kts rs rb php swift cs scala
    sh bash zsh sql r m lua pl dart vue css scss less jpeg jpg png bmp gif webp tiff tif avif""".split()
)
UNSUPPORTED_EXTENSIONS = frozenset(
    """exe dll so dylib bin msi apk ipa dmg iso img zip rar 7z tar gz tgz bz2 xz zst jar war mp3 wav
    flac aac ogg oga opus m4a wma mp4 mkv mov avi wmv webm flv m4v 3gp""".split()
)
UNSUPPORTED_MIME_PREFIXES = ("audio/", "video/")


class DocumentRejected(Exception):
    """A document we will not send to Kimi; `reason` names a user-facing text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_document(filename: str | None, mime_type: str | None, size: int | None) -> None:
    """Refuse early, before any download or upload, what cannot work."""
    if size is not None and size > TELEGRAM_DOWNLOAD_LIMIT:
        raise DocumentRejected("too_big")
    if size == 0:
        raise DocumentRejected("empty")
    extension = PurePosixPath(filename or "").suffix.lower().lstrip(".")
    if extension in UNSUPPORTED_EXTENSIONS:
        raise DocumentRejected("unsupported")
    if mime_type and mime_type.startswith(UNSUPPORTED_MIME_PREFIXES):
        raise DocumentRejected("unsupported")
    if extension in SUPPORTED_EXTENSIONS:
        return
    if mime_type and (mime_type.startswith(("text/", "image/")) or mime_type.endswith(("json", "xml"))):
        return
    raise DocumentRejected("unsupported")


@dataclass(frozen=True)
class Document:
    file_unique_id: str
    filename: str
    text: str

    def as_message(self) -> NewMessage:
        return NewMessage(role="system", content=document_context(self.filename, self.text), kind="document")


def document_context(filename: str, text: str) -> str:
    return f"The user shared the document «{filename}». Its extracted text follows.\n\n{text}"


class DocumentReader:
    def __init__(self, store: Store, kimi: KimiClient) -> None:
        self._store = store
        self._kimi = kimi
        self._reading: set[str] = set()  # files uploaded and not yet deleted: not orphans

    async def cached(self, file_unique_id: str, filename: str) -> Document | None:
        """The document's text if it was read before (a confirmation, on whichever replica)."""
        text = await self._store.cached_extraction(file_unique_id)
        return None if text is None else Document(file_unique_id, filename, text)

    async def read(
        self, file_unique_id: str, filename: str, download: Callable[[], Awaitable[bytes]]
    ) -> Document:
        """The document's text: from the cache by file_unique_id, else via Kimi's file-extract."""
        cached = await self._store.cached_extraction(file_unique_id)
        if cached is not None:
            return Document(file_unique_id, filename, cached)
        data = await download()
        if not data:
            raise DocumentRejected("empty")
        text = await self._extract(data, filename)
        if not text.strip():
            raise DocumentRejected("no_text")
        await self._store.save_extraction(file_unique_id, filename, text, estimate_text_tokens(text))
        return Document(file_unique_id, filename, text)

    async def _extract(self, data: bytes, filename: str) -> str:
        try:
            uploaded = await self._kimi.upload(data, filename, purpose="file-extract")
        except (KimiConnectionError, KimiTimeout, KimiServerError, asyncio.CancelledError):
            # The platform may have stored the file before its answer was lost (or the wait for it
            # was cancelled, or a retried upload stored it twice): find such files by name and
            # size, and delete them.
            await self._delete_orphans(filename, len(data))
            raise
        self._reading.add(uploaded.id)
        try:
            if uploaded.status == "error":
                raise KimiFileExtractionFailed(uploaded.status_details or "extraction failed")
            return await self._kimi.file_content(uploaded.id)
        finally:
            await self._delete(uploaded.id)
            self._reading.discard(uploaded.id)

    async def _delete_orphans(self, filename: str, size: int) -> None:
        try:
            stored = await asyncio.shield(self._kimi.list_files())
        except (KimiError, OSError, TimeoutError) as error:
            log.error("could not look for orphaned Kimi files named %r: %s", filename, error)
            return
        for orphan in stored:
            if orphan.filename == filename and orphan.bytes == size and orphan.id not in self._reading:
                log.warning("deleting Kimi file %s left by a failed upload", orphan.id)
                await self._delete(orphan.id)

    async def _delete(self, file_id: str) -> None:
        # Shielded: a cancelled read still deletes its file. The Kimi transport retries what is
        # worth retrying (rate limits, overload, 5xx, broken connections); anything else is final.
        try:
            await asyncio.shield(self._kimi.delete_file(file_id))
        except (KimiError, OSError, TimeoutError) as error:
            log.error(
                "Kimi file %s could not be deleted (%s); it counts against the 1,000-file limit",
                file_id,
                error,
            )


@dataclass(frozen=True)
class SummaryPlan:
    price: ModelPrice
    document_tokens: int
    parts: list[str]  # one part: the whole text fits the context
    estimate_micro: int  # worst case of the whole summary
    minimum_micro: int  # the least a useful summary costs (its input, a short answer)
    remaining_micro: int | None  # the user's budget left now (None: unlimited)
    # Map-reduce only: how many part summaries the final answer can take at once, and how many
    # are combined per call when there are more (a small context cannot take 100 summaries).
    reduce_capacity: int = 1
    combine_batch: int = 2

    @property
    def split(self) -> bool:
        return len(self.parts) > 1

    @property
    def combine_levels(self) -> list[int]:
        """Calls of each combining level between the parts and the final answer."""
        return combining_levels(len(self.parts), self.reduce_capacity, self.combine_batch)

    @property
    def steps(self) -> int:
        """Calls before the final answer: one per part, then the combining calls."""
        return len(self.parts) + sum(self.combine_levels) if self.split else 0

    @property
    def affordable(self) -> bool:
        return self.remaining_micro is None or self.estimate_micro <= self.remaining_micro

    @property
    def startable(self) -> bool:
        """Whether the budget pays for at least a shortened summary; if not, nothing is called."""
        return self.remaining_micro is None or self.minimum_micro <= self.remaining_micro


def combining_levels(summaries: int, capacity: int, batch: int) -> list[int]:
    """How many calls each combining level makes until `summaries` fit the final answer at once."""
    levels = []
    while summaries > capacity:
        summaries = -(-summaries // batch)
        levels.append(summaries)
    return levels


class DocumentSummaries:
    def __init__(
        self,
        store: Store,
        kimi: KimiClient,
        prices: PriceTable,
        settings: Settings,
        budgets: BudgetKeeper,
    ) -> None:
        self._store = store
        self._kimi = kimi
        self._prices = prices
        self._settings = settings
        self._budgets = budgets

    async def plan(self, user: UserRecord, price: ModelPrice, document: Document) -> SummaryPlan:
        tokens = await self._count(price.model, document)
        output = min(self._settings.max_output_tokens, SUMMARY_OUTPUT_TOKENS)
        room = price.context_length - output - estimate_text_tokens(self._settings.system_prompt) - 512
        shortest = min(output, self._settings.min_output_tokens)
        view = await self._budgets.view(user)
        if tokens + DOCUMENT_OVERHEAD_TOKENS <= room:
            estimate = price.cost_micro(tokens + DOCUMENT_OVERHEAD_TOKENS, output)
            minimum = price.cost_micro(tokens + DOCUMENT_OVERHEAD_TOKENS, shortest)
            return SummaryPlan(price, tokens, [document.text], estimate, minimum, view.remaining_micro)

        part_room = max(1024, room - PART_SUMMARY_TOKENS)
        parts = split_text(document.text, part_room)
        # Counted in summaries, each at most PART_SUMMARY_TOKENS (max_tokens sees to it), so
        # that what the plan promises to fit does fit, whatever the summaries say.
        capacity = max(1, (room - DOCUMENT_OVERHEAD_TOKENS) // SUMMARY_SLOT_TOKENS)
        batch = max(2, part_room // SUMMARY_SLOT_TOKENS)
        levels = combining_levels(len(parts), capacity, batch)
        map_cost = sum(
            price.cost_micro(estimate_text_tokens(part) + DOCUMENT_OVERHEAD_TOKENS, PART_SUMMARY_TOKENS)
            for part in parts
        )
        combine_cost = sum(levels) * price.cost_micro(
            batch * SUMMARY_SLOT_TOKENS + DOCUMENT_OVERHEAD_TOKENS, PART_SUMMARY_TOKENS
        )
        final_input = (levels[-1] if levels else len(parts)) * SUMMARY_SLOT_TOKENS + DOCUMENT_OVERHEAD_TOKENS
        # Every part must be read whole; only the final answer can be shortened.
        estimate = map_cost + combine_cost + price.cost_micro(final_input, output)
        minimum = map_cost + combine_cost + price.cost_micro(final_input, shortest)
        return SummaryPlan(price, tokens, parts, estimate, minimum, view.remaining_micro, capacity, batch)

    def needs_confirmation(self, plan: SummaryPlan) -> bool:
        threshold = int(self._settings.document_confirm_threshold * 1_000_000)
        return plan.estimate_micro > threshold or not plan.affordable

    async def summarise_parts(
        self,
        user: UserRecord,
        chat_id: int,
        plan: SummaryPlan,
        document: Document,
        question: str,
        progress: Callable[[int, int], Awaitable[None]],
        conversation_id: int | None = None,
        asked: NewInflightTurn | None = None,
    ) -> str | Refused:
        """The map step of a map-reduce: a short summary of each part, then (if there are more than
        the final answer can take) summaries of groups of summaries, each call charged as made.
        Returns the summaries for the final answer, labelled, or Refused when the budget ran out.

        `asked`: where the summary was asked for, recorded with each call's hold, so that if the
        process dies during a call the next start-up frees it and tells the user (bot.recovery)."""
        steps = plan.steps
        done = 0
        summaries: list[str] = []
        total = len(plan.parts)
        for index, part in enumerate(plan.parts, start=1):
            done += 1
            await progress(done, steps)
            instruction = (
                f"This is part {index} of {total} of the document. Summarise this part "
                f"concisely, keeping facts that help answer: {question}"
            )
            summary = await self._summarise(
                user,
                chat_id,
                plan,
                document_context(document.filename, part),
                instruction,
                conversation_id,
                asked,
            )
            if isinstance(summary, Refused):
                return summary
            summaries.append(summary)
        while len(summaries) > plan.reduce_capacity:
            batches = [
                summaries[start : start + plan.combine_batch]
                for start in range(0, len(summaries), plan.combine_batch)
            ]
            combined: list[str] = []
            for batch in batches:
                done += 1
                await progress(done, steps)
                context = (
                    f"Summaries of consecutive parts of the document «{document.filename}» follow.\n\n"
                    + labelled(batch)
                )
                instruction = (
                    "Combine these summaries into one concise summary, in order, keeping facts that "
                    f"help answer: {question}"
                )
                summary = await self._summarise(
                    user, chat_id, plan, context, instruction, conversation_id, asked
                )
                if isinstance(summary, Refused):
                    return summary
                combined.append(summary)
            summaries = combined
        return labelled(summaries)

    async def _summarise(
        self,
        user: UserRecord,
        chat_id: int,
        plan: SummaryPlan,
        context: str,
        instruction: str,
        conversation_id: int | None,
        asked: NewInflightTurn | None = None,
    ) -> str | Refused:
        """One charged, non-streamed call that summarises `context` within PART_SUMMARY_TOKENS."""
        messages = [
            {"role": "system", "content": self._settings.system_prompt},
            {"role": "system", "content": context},
            {"role": "user", "content": instruction},
        ]
        # The guaranteed bound, not the estimate: text a tokenizer counts densely (numbers, hex)
        # is billed well above the estimate, and the hold must cover whatever Kimi bills.
        prompt_tokens = request_bound(messages)
        decision = await self._budgets.reserve_for_call(
            user,
            plan.price,
            prompt_tokens,
            PART_SUMMARY_TOKENS,
            purpose="document",
            inflight_turn=None if asked is None else replace(asked, prompt_tokens=prompt_tokens),
        )
        if isinstance(decision, Refused):
            return decision
        charge = Charge(
            self._store,
            decision.reservation,
            Bill(user.telegram_id, chat_id, plan.price, "document", conversation_id),
        )
        try:
            result = await self._kimi.chat(
                plan.price.model,
                messages,
                max_tokens=decision.max_tokens,
                context_length=plan.price.context_length,
            )
        except BaseException:
            await charge.release()
            raise
        # A gateway may send no usage: charge a conservative estimate rather than nothing.
        reported = [result.usage] if result.usage else []
        usages = billed_or_estimated(
            reported, prompt_tokens, [result.content + result.reasoning], decision.max_tokens
        )
        await charge.settle(usages, reported=bool(reported))
        return result.content.strip()

    async def _count(self, model: str, document: Document) -> int:
        try:
            return await self._kimi.estimate_tokens(
                model, [{"role": "system", "content": document_context(document.filename, document.text)}]
            )
        except (KimiError, OSError, TimeoutError):
            return estimate_text_tokens(document.text) + DOCUMENT_OVERHEAD_TOKENS


def labelled(summaries: list[str]) -> str:
    return "\n\n".join(
        f"[Part {index}/{len(summaries)}]\n{summary}" for index, summary in enumerate(summaries, start=1)
    )


def split_text(text: str, max_tokens: int) -> list[str]:
    """Cut text into parts of at most `max_tokens` (estimated), at paragraph or line boundaries."""
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for line in text.splitlines(keepends=True):
        cost = estimate_text_tokens(line)
        while cost > max_tokens:  # one enormous line: hard cut
            if current:
                parts.append("".join(current))
                current, used = [], 0
            cut = max(1, len(line) * max_tokens // cost)
            parts.append(line[:cut])
            line = line[cut:]
            cost = estimate_text_tokens(line)
        if used + cost > max_tokens and current:
            parts.append("".join(current))
            current, used = [], 0
        current.append(line)
        used += cost
    if current:
        parts.append("".join(current))
    return [part for part in parts if part.strip()]
