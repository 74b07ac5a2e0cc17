"""A fake Moonshot (Kimi) API on 127.0.0.1, as strict as the real service.

It speaks the real wire format (SSE chunks with usage inside choices[0] by default, data: [DONE]
at the end), checks the bearer key, validates bodies the way Moonshot does (unknown models,
temperature on fixed-sampling models, context overflow, tool-call pairing, reasoning on thinking
models' tool calls, the $web_search declaration), enforces the account's file limits and, when
asked, its concurrency and RPM limits, and records every request.

Usage in a test:

    async with FakeKimi(api_key="sk-test") as kimi:
        kimi.script(Reply(content="hello", reasoning="hmm", chunk_tokens=1))
        kimi.script(Reply(error=FakeError.rate_limited(after=1)), Reply(content="ok"))
        client = KimiClient(KimiConfig(api_key="sk-test", base_url=kimi.base_url))
        ...
        kimi.chat_requests[-1].json       # the last chat body
        kimi.live_files                   # files stored and not deleted
        kimi.script_errors("/models", FakeError.server_error())   # any other endpoint
        kimi.extractions["scan.png"] = "text seen by OCR"          # or ExtractionFailure("...")

Replies are consumed in order, one per chat request that passes validation; with none scripted,
the answer echoes the last user message. Tokens are counted by a simple deterministic rule
(count_tokens / count_prompt_tokens) so that tests can predict every usage number.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import mimetypes
import re
import secrets
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal
from xml.etree import ElementTree

from aiohttp import web

MB = 1024 * 1024

# --- tokens ---------------------------------------------------------------------------------

TOKEN_BYTES = 4
MESSAGE_OVERHEAD_TOKENS = 3


def split_tokens(text: str) -> list[str]:
    """The fake's tokenizer: greedy runs of whole characters of at most 4 UTF-8 bytes
    ("abcd" is one token, each CJK character is one)."""
    tokens: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if current and size + width > TOKEN_BYTES:
            tokens.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        tokens.append("".join(current))
    return tokens


def count_tokens(text: str) -> int:
    return len(split_tokens(text))


IMAGE_TILE = 14  # k2.5/k2.6 bill an image per 14×14-pixel tile
MS_FILE_IMAGE_TOKENS = 1024  # an uploaded image (ms://) counts this much


def image_tokens(url: str) -> int:
    """Tokens of one image_url part: a tile per 14×14 pixels (sides rounded up)."""
    if url.startswith("ms://"):
        return MS_FILE_IMAGE_TOKENS
    width, height = decode_data_url_image(url)
    return -(-width // IMAGE_TILE) * -(-height // IMAGE_TILE)


def decode_data_url_image(url: str) -> tuple[int, int]:
    """(width, height) of a data: URL's image; ValueError if it is not a decodable png, jpeg,
    webp or gif (Moonshot's formats)."""
    from PIL import Image

    match = re.fullmatch(r"data:image/([a-z]+);base64,([A-Za-z0-9+/=\s]+)", url, re.S)
    if match is None:
        raise ValueError("not a base64 image data URL")
    try:
        with Image.open(io.BytesIO(base64.b64decode(match.group(2), validate=False))) as image:
            size = image.size
            image_format = image.format
            image.verify()
    except Exception as error:  # noqa: BLE001 - any decoding failure is a bad image
        raise ValueError(f"undecodable image: {type(error).__name__}") from None
    if image_format not in ("PNG", "JPEG", "WEBP", "GIF"):
        raise ValueError(f"unsupported image format {image_format}")
    return size


def _image_urls(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    return [
        str((part.get("image_url") or {}).get("url", ""))
        for part in content
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def count_prompt_tokens(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    search_tokens: Mapping[str, int] | None = None,
) -> int:
    """prompt_tokens for a request: 3 per message plus its text, reasoning and tool calls;
    tool definitions count too (as on Moonshot). A $web_search tool message counts as the search
    results it stands for (search_tokens by tool_call_id), not as its own text."""
    search_tokens = search_tokens or {}
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        call_id = message.get("tool_call_id")
        if message.get("role") == "tool" and call_id in search_tokens:
            total += search_tokens[call_id]
        else:
            total += count_tokens(_content_text(message.get("content")))
            total += sum(image_tokens(url) for url in _image_urls(message.get("content")))
        total += count_tokens(message.get("reasoning_content") or "")
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += count_tokens(function.get("name") or "")
            total += count_tokens(function.get("arguments") or "")
    if tools:
        total += count_tokens(json.dumps(list(tools), ensure_ascii=False))
    return total


# --- models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeModel:
    id: str
    context_length: int
    supports_reasoning: bool = False
    # kimi-k2.5 and later: temperature/top_p/n/penalties fixed, a "thinking" switch (default on).
    fixed_sampling: bool = False
    # kimi-k2-thinking: always thinks, no switch.
    always_thinking: bool = False
    supports_image_in: bool = False
    default_max_tokens: int = 1024


DEFAULT_MODELS: tuple[FakeModel, ...] = (
    FakeModel("kimi-k2-0905-preview", 262144),
    FakeModel("kimi-k2-turbo-preview", 262144),
    FakeModel("kimi-k2-thinking", 262144, supports_reasoning=True, always_thinking=True),
    FakeModel(
        "kimi-k2.5",
        262144,
        supports_reasoning=True,
        fixed_sampling=True,
        supports_image_in=True,
        default_max_tokens=32768,
    ),
    FakeModel(
        "kimi-k2.6",
        262144,
        supports_reasoning=True,
        fixed_sampling=True,
        supports_image_in=True,
        default_max_tokens=32768,
    ),
    FakeModel("moonshot-v1-8k", 8192),
    FakeModel("moonshot-v1-32k", 32768),
    FakeModel("moonshot-v1-128k", 131072),
    FakeModel("kimi-latest", 131072, supports_image_in=True),
)


# --- scripts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeError:
    """An error response in Moonshot's shape: {"error": {"message", "type"}}."""

    status: int
    type: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type}}

    @classmethod
    def invalid_request(cls, message: str) -> FakeError:
        return cls(400, "invalid_request_error", message)

    @classmethod
    def context_overflow(cls, limit: int) -> FakeError:
        return cls(400, "invalid_request_error", f"Your request exceeded model token limit : {limit}")

    @classmethod
    def input_too_long(cls) -> FakeError:
        return cls(400, "invalid_request_error", "Invalid request: Input token length too long")

    @classmethod
    def content_filter(cls) -> FakeError:
        return cls(
            400,
            "content_filter",
            "The request was rejected because it was considered high risk",
        )

    @classmethod
    def authentication(cls) -> FakeError:
        return cls(401, "invalid_authentication_error", "Invalid Authentication")

    @classmethod
    def permission_denied(cls) -> FakeError:
        return cls(403, "permission_denied_error", "The API you are accessing is not open")

    @classmethod
    def model_not_found(cls, model: str) -> FakeError:
        return cls(404, "resource_not_found_error", f"Not found the model {model} or Permission denied")

    @classmethod
    def quota_exhausted(cls) -> FakeError:
        return cls(
            429,
            "exceeded_current_quota_error",
            "You exceeded your current token quota: <org-fake> 0, please check your account balance",
        )

    @classmethod
    def rate_limited(
        cls,
        *,
        after: float = 1,
        limit: int = 200,
        what: str = "RPM",
        headers: Mapping[str, str] | None = None,
    ) -> FakeError:
        wait = f"{after:g}"
        return cls(
            429,
            "rate_limit_reached_error",
            f"Your account org-fake<ak-fake> request reached organization max {what}: {limit}, "
            f"please try again after {wait} seconds",
            dict(headers or {}),
        )

    @classmethod
    def overloaded(cls, headers: Mapping[str, str] | None = None) -> FakeError:
        return cls(
            429,
            "engine_overloaded_error",
            "The engine is currently overloaded, please try again later",
            dict(headers or {}),
        )

    @classmethod
    def server_error(cls, message: str = "invalid state transition") -> FakeError:
        return cls(500, "server_error", message)


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: str
    id: str | None = None
    type: str = "function"


UsagePlacement = Literal["choice", "top_level", "none"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer to one chat request (streamed or not).

    content / reasoning / tool_calls: what the model says (truncated at max_tokens, then
        finish_reason "length"); reasoning counts toward max_tokens and comes first, and only
        thinking models send it (kimi-k2-thinking; k2.5/k2.6 unless thinking is disabled).
    chunk_tokens: tokens per streamed chunk; delay: seconds between chunks;
        header_delay: seconds before the response headers.
    usage: a raw usage object sent instead of the computed one (e.g. with
        prompt_tokens_details); cached_tokens: added to the computed usage as "cached_tokens".
    usage_placement: "choice" (documented: inside choices[0] of the last chunk), "top_level"
        (an extra chunk with choices: [] when stream_options.include_usage), or "none".
    finish_reason: overrides the computed one.
    drop_before_done: everything is sent except data: [DONE], then the connection is cut
        (drop_style "abort") or the body ends cleanly ("eof").
    stall_after_chunks: after that many data lines, send nothing more (until the client leaves).
    hold_after_chunks: (n, event): after n data lines, wait until the test sets event, then go on
        (an answer that streams exactly as long as a test needs).
    hold_before_answer: wait until the test sets this event before answering at all (streamed
        or not: a call that takes exactly as long as a test needs).
    error: answer with this error instead; error_after_chunks: send that many data lines,
        then the error as a data line, and end without [DONE].
    web_search: the model asks for $web_search (if the request declares it) with this query;
        search_tokens is what the results will add to the next call's input (per search).
        web_searches: several $web_search calls in the one response, as Moonshot may send
        (each billed its fee), one per query, after web_search's.
    """

    content: str = ""
    reasoning: str = ""
    tool_calls: Sequence[ScriptedToolCall] = ()
    chunk_tokens: int = 2
    delay: float = 0.0
    header_delay: float = 0.0
    usage: Mapping[str, Any] | None = None
    cached_tokens: int = 0
    usage_placement: UsagePlacement = "choice"
    finish_reason: str | None = None
    drop_before_done: bool = False
    drop_style: Literal["abort", "eof"] = "abort"
    stall_after_chunks: int | None = None
    hold_after_chunks: tuple[int, asyncio.Event] | None = None
    hold_before_answer: asyncio.Event | None = None
    error: FakeError | None = None
    error_after_chunks: tuple[int, FakeError] | None = None
    web_search: str | None = None
    search_tokens: int = 1000
    web_searches: Sequence[str] = ()


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    file_sizes: dict[str, int] = field(default_factory=dict)
    status: int | None = None
    chunks_sent: int = 0  # streamed data lines written (a client that leaves early stops it)
    completed: bool = False  # a streamed answer was written to its end (data: [DONE])


@dataclass(frozen=True)
class ExtractionFailure:
    """Set as an extraction result to make a file's extraction fail with this reason."""

    reason: str


@dataclass
class FakeFile:
    id: str
    filename: str
    bytes: int
    purpose: str
    created_at: int
    status: str
    status_details: str
    text: str
    file_type: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status,
            "status_details": self.status_details,
        }


class _Rejected(Exception):
    def __init__(self, error: FakeError) -> None:
        super().__init__(error.message)
        self.error = error


# --- text extraction ------------------------------------------------------------------------

TEXT_EXTENSIONS = frozenset(
    ".txt .md .markdown .csv .tsv .json .jsonl .log .html .htm .xml .yaml .yml .ini .toml .py "
    ".js .ts .tsx .jsx .go .c .h .cpp .hpp .cc .java .kt .rs .rb .php .sh .sql .css .swift .m "
    ".cs .lua .r .tex".split()
)
IMAGE_EXTENSIONS = frozenset(".png .jpg .jpeg .gif .webp .bmp .tiff .tif .avif .heic".split())
UNSUPPORTED_EXTENSIONS = frozenset(
    ".exe .dll .so .bin .zip .rar .7z .tar .gz .mp3 .wav .flac .ogg .mp4 .mov .avi .mkv .iso "
    ".dmg .apk".split()
)


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot >= 0 else ""


_PDF_STREAM = re.compile(rb"<<(.*?)>>\s*stream\r?\n(.*?)\r?\nendstream", re.S)
_PDF_TEXT_BLOCK = re.compile(rb"BT(.*?)ET", re.S)
_PDF_STRING_SHOW = re.compile(rb"\(((?:\\.|[^\\)])*)\)\s*Tj|\[((?:\\.|[^\]])*)\]\s*TJ", re.S)
_PDF_STRING = re.compile(rb"\(((?:\\.|[^\\)])*)\)", re.S)
_PDF_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _pdf_unescape(raw: bytes) -> str:
    def one(match: re.Match[bytes]) -> bytes:
        escaped = match.group(1)
        if escaped[:1].isdigit():
            return bytes([int(escaped, 8) & 0xFF])
        return _PDF_ESCAPES.get(escaped, escaped)

    return re.sub(rb"\\([0-7]{1,3}|.)", one, raw, flags=re.S).decode("latin-1")


def pdf_text(data: bytes) -> str:
    """Text shown with Tj/TJ in a PDF's content streams (Flate-compressed or not): enough for
    PDFs written with standard fonts, as tests make them with fpdf2."""
    lines: list[str] = []
    for match in _PDF_STREAM.finditer(data):
        dictionary, stream = match.groups()
        if b"/FlateDecode" in dictionary:
            try:
                stream = zlib.decompress(stream)
            except zlib.error:
                pass
        for block in _PDF_TEXT_BLOCK.finditer(stream):
            pieces: list[str] = []
            for shown in _PDF_STRING_SHOW.finditer(block.group(1)):
                if shown.group(1) is not None:
                    pieces.append(_pdf_unescape(shown.group(1)))
                else:
                    pieces.extend(_pdf_unescape(s) for s in _PDF_STRING.findall(shown.group(2)))
            if pieces:
                lines.append("".join(pieces))
    return "\n".join(lines)


_WORD_NS = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def docx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        root = ElementTree.fromstring(archive.read("word/document.xml"))
    paragraphs = [
        "".join(node.text or "" for node in paragraph.iter(f"{_WORD_NS}t"))
        for paragraph in root.iter(f"{_WORD_NS}p")
    ]
    return "\n".join(paragraphs)


# --- the server -----------------------------------------------------------------------------

_TOOL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9\-_]{2,63}$")
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_FILE_PURPOSES = frozenset({"file-extract", "image", "video", "batch"})
_BUILTIN_TOOLS = frozenset({"$web_search"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RECORD = web.RequestKey("record", RecordedRequest)


# Moonshot's Tier 1 account limits (top-up ¥50 / $10; /work/shared/reference/kimi-api.md, "Rate
# limits"): on by default, so a burst the bot does not pace meets 429s in tests as in production.
TIER1_MAX_CONCURRENCY = 50
TIER1_MAX_RPM = 200
# Kimi's first token comes after a while (about 0.5-2 s for K2 in practice); the default is short
# to keep the suite fast but never zero, so the bot's "before the first token" path always runs.
DEFAULT_FIRST_TOKEN_DELAY = 0.2


class FakeKimi:
    def __init__(
        self,
        api_key: str = "sk-test",
        *,
        models: Iterable[FakeModel] = DEFAULT_MODELS,
        max_file_bytes: int = 100 * MB,
        max_files: int = 1000,
        max_total_bytes: int = 10 * 1024 * MB,
        max_concurrency: int | None = TIER1_MAX_CONCURRENCY,
        max_rpm: int | None = TIER1_MAX_RPM,
        rpm_window: float = 60.0,
        first_token_delay: float = DEFAULT_FIRST_TOKEN_DELAY,
        latency: float = 0.0,
        cash_balance: Decimal = Decimal("50.00"),
        voucher_balance: Decimal = Decimal("0"),
        extraction_failure_style: Literal["http", "status"] = "http",
        estimate_ratio: float = 1.0,
        bill_ratio: float = 1.0,
    ) -> None:
        self.api_key = api_key
        self.models: dict[str, FakeModel] = {model.id: model for model in models}
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.max_total_bytes = max_total_bytes
        # The account's limits on chat requests (Tier 1 unless told); None means unlimited.
        self.max_concurrency = max_concurrency
        self.max_rpm = max_rpm
        self.rpm_window = rpm_window
        # Seconds from a chat answer's headers to its first token (or to a non-streamed body).
        self.first_token_delay = first_token_delay
        # Seconds every request (any endpoint) waits before it is handled: the network and the
        # gateway in between, for tests of slow links.
        self.latency = latency
        self.cash_balance = cash_balance
        self.voucher_balance = voucher_balance
        # Moonshot's tokenizer endpoint is only an estimate; chat bills from the fake's own count.
        # Below 1.0 the estimate falls short of the bill by that factor, as a real one may.
        self.estimate_ratio = estimate_ratio
        # Real tokenizers count some texts (digits, hex, base64, rare scripts) in far more tokens
        # than ordinary prose: above 1.0, the prompt is billed that many times the fake's count,
        # never more than one token per UTF-8 byte (the byte-level BPE ceiling). The context
        # limits still use the count.
        self.bill_ratio = bill_ratio
        # How a failed extraction shows: "http" = 500 "Failed to extract file: ..." (the error
        # table), "status" = a stored file with status "error" (the FileObject doc).
        self.extraction_failure_style = extraction_failure_style
        # Extraction results by filename: text, or ExtractionFailure(reason).
        self.extractions: dict[str, str | ExtractionFailure] = {}
        # GET /files/{id}/content answers a JSON string (as Moonshot does) or, if False, the bare
        # text (as the spec's text/plain suggests and a gateway might).
        self.file_content_as_json = True

        self.requests: list[RecordedRequest] = []
        self.files: dict[str, FakeFile] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.images_seen = 0  # valid image parts in chat requests
        self._replies: deque[Reply] = deque()
        self._endpoint_errors: dict[str, deque[FakeError]] = {}
        self._chat_starts: deque[float] = deque()
        self._searches: dict[str, int] = {}
        # $web_search calls sent in responses (after the max_tokens cut): Moonshot bills each a fee.
        self.web_search_calls_billed = 0
        self._closing: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle and test API ---

    async def __aenter__(self) -> FakeKimi:
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/users/me/balance", self._balance)
        app.router.add_post("/v1/tokenizers/estimate-token-count", self._estimate)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files", self._list_files)
        app.router.add_get("/v1/files/{file_id}", self._get_file)
        app.router.add_delete("/v1/files/{file_id}", self._delete_file)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        # handler_cancellation: a handler stalling on purpose ends when its client goes away.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._closing is not None and self._runner is not None
        self._closing.set()
        await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies; each chat request that passes validation takes the next one."""
        self._replies.extend(replies)

    def script_errors(self, path: str, *errors: FakeError) -> None:
        """Queue errors for any endpoint ("/v1/models", "/files", ...), answered one per request
        (after the key check) before the endpoint does its work."""
        path = path if path.startswith("/v1/") else "/v1" + path
        self._endpoint_errors.setdefault(path, deque()).extend(errors)

    @property
    def pending_replies(self) -> int:
        return len(self._replies)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    @property
    def live_files(self) -> int:
        return len(self.files)

    @property
    def available_balance(self) -> Decimal:
        if self.cash_balance < 0:
            return self.voucher_balance
        return self.cash_balance + self.voucher_balance

    # --- plumbing ---

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = RecordedRequest(request.method, request.path, dict(request.headers))
        self.requests.append(record)
        request[RECORD] = record
        try:
            if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                raise _Rejected(FakeError.authentication())
            if self.latency:
                await asyncio.sleep(self.latency)
            queued = self._endpoint_errors.get(request.path)
            if queued:
                raise _Rejected(queued.popleft())
            raw = await request.read() if request.content_type == "application/json" else b""
            if raw:  # clients send DELETE with a JSON content type and no body
                try:
                    record.json = json.loads(raw)
                except ValueError:
                    raise _Rejected(
                        FakeError.invalid_request("Invalid request: the body is not valid JSON")
                    ) from None
            response = await handler(request)
        except _Rejected as rejected:
            response = _error_response(rejected.error)
        except web.HTTPNotFound:
            response = _error_response(
                FakeError(404, "resource_not_found_error", f"Not found: {request.path}")
            )
        record.status = response.status
        return response

    def _billed(self, messages: Sequence[Mapping[str, Any]], counted: int) -> int:
        """The prompt tokens billed: the count, or more with bill_ratio (see __init__)."""
        if self.bill_ratio == 1.0:
            return counted
        ceiling = sum(
            MESSAGE_OVERHEAD_TOKENS + len(_content_text(message.get("content")).encode("utf-8"))
            for message in messages
        )
        return max(counted, min(math.ceil(counted * self.bill_ratio), ceiling))

    def _model(self, body: Mapping[str, Any]) -> FakeModel:
        model_id = body.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise _Rejected(FakeError.invalid_request("Invalid request: model is required"))
        model = self.models.get(model_id)
        if model is None:
            raise _Rejected(FakeError.model_not_found(model_id))
        return model

    def _json_body(self, request: web.Request) -> dict[str, Any]:
        body = request[RECORD].json
        if not isinstance(body, dict):
            raise _Rejected(FakeError.invalid_request("Invalid request: the body must be a JSON object"))
        return body

    # --- chat ---

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = self._json_body(request)
        self._take_rate_limit_slot()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer_chat(request, body)
        finally:
            self.in_flight -= 1

    def _take_rate_limit_slot(self) -> None:
        now = time.monotonic()
        while self._chat_starts and now - self._chat_starts[0] >= self.rpm_window:
            self._chat_starts.popleft()
        self._chat_starts.append(now)  # refused requests count too, as retries do on Moonshot
        if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
            raise _Rejected(FakeError.rate_limited(limit=self.max_concurrency, what="concurrency"))
        if self.max_rpm is not None and len(self._chat_starts) > self.max_rpm:
            raise _Rejected(FakeError.rate_limited(limit=self.max_rpm, what="RPM"))

    async def _answer_chat(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        model = self._model(body)
        if self.available_balance <= 0:
            raise _Rejected(FakeError.quota_exhausted())
        thinking = self._validate_chat(model, body)
        messages = body["messages"]
        tools = body.get("tools") or []
        search_tokens = self._validate_tool_round_trips(messages, tools)
        prompt_tokens = count_prompt_tokens(messages, tools, search_tokens=search_tokens)
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if max_tokens is None:
            max_tokens = model.default_max_tokens
        if prompt_tokens > model.context_length:
            raise _Rejected(FakeError.input_too_long())
        if prompt_tokens + max_tokens > model.context_length:
            raise _Rejected(FakeError.context_overflow(model.context_length))

        reply = self._replies.popleft() if self._replies else _echo_reply(messages)
        if reply.header_delay:
            await asyncio.sleep(reply.header_delay)
        if reply.hold_before_answer is not None:
            await reply.hold_before_answer.wait()
        if reply.error is not None:
            return _error_response(reply.error)
        declares_search = any((tool.get("function") or {}).get("name") == "$web_search" for tool in tools)
        if (reply.web_search is not None or reply.web_searches) and declares_search:
            reply = self._search_request(reply)
        if not thinking:
            reply = replace(reply, reasoning="")
        answer = _plan_answer(reply, max_tokens)
        if answer.finish_reason == "tool_calls":  # Moonshot bills the fee of a tool-call response
            self.web_search_calls_billed += sum(call.name == "$web_search" for call in answer.tool_calls)
        usage = _usage(reply, self._billed(messages, prompt_tokens), answer.completion_tokens)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, body["model"], reply, answer, usage, include_usage)
        return await self._complete(request, body["model"], reply, answer, usage)

    def _validate_chat(self, model: FakeModel, body: Mapping[str, Any]) -> bool:
        """Moonshot's checks on a chat body; returns whether thinking is on."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Rejected(FakeError.invalid_request("Invalid request: messages must not be empty"))
        for index, message in enumerate(messages):
            _validate_message(index, message)
        self._validate_images(model, messages)

        thinking_switch = body.get("thinking")
        if thinking_switch is not None and not model.fixed_sampling:
            raise _Rejected(
                FakeError.invalid_request("Invalid request: thinking is not supported by this model")
            )
        if isinstance(thinking_switch, dict) and thinking_switch.get("type") not in ("enabled", "disabled"):
            raise _Rejected(FakeError.invalid_request("Invalid request: invalid thinking type"))
        thinking = model.always_thinking or (
            model.fixed_sampling
            and model.supports_reasoning
            and (thinking_switch or {}).get("type", "enabled") == "enabled"
        )

        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise _Rejected(FakeError.invalid_request("Invalid request: invalid max_tokens"))

        if model.fixed_sampling:
            # k2.5 and later fix these; the live service refuses any other value.
            fixed = {
                "temperature": 1.0 if thinking else 0.6,
                "top_p": 0.95,
                "n": 1,
                "presence_penalty": 0.0,
                "frequency_penalty": 0.0,
            }
            for name, allowed in fixed.items():
                if name in body and body[name] != allowed:
                    raise _Rejected(
                        FakeError.invalid_request(
                            f"invalid {name}: only {allowed:g} is allowed for this model"
                        )
                    )
        else:
            temperature = body.get("temperature")
            if temperature is not None and (
                not isinstance(temperature, int | float) or not 0 <= temperature <= 1
            ):
                raise _Rejected(FakeError.invalid_request("Invalid request: temperature must be in [0, 1]"))
            n = body.get("n", 1)
            if not isinstance(n, int) or not 1 <= n <= 5:
                raise _Rejected(FakeError.invalid_request("Invalid request: n must be in [1, 5]"))
            if n > 1:
                raise _Rejected(FakeError.invalid_request("Invalid request: the fake only does n=1"))

        tools = body.get("tools") or []
        if not isinstance(tools, list) or len(tools) > 128:
            raise _Rejected(FakeError.invalid_request("Invalid request: at most 128 tools"))
        for tool in tools:
            _validate_tool(tool)
        declares_search = any((tool.get("function") or {}).get("name") == "$web_search" for tool in tools)
        if declares_search and thinking and model.fixed_sampling:
            raise _Rejected(
                FakeError.invalid_request(
                    "Invalid request: $web_search is not compatible with thinking, please disable thinking"
                )
            )
        tool_choice = body.get("tool_choice")
        if thinking and tool_choice not in (None, "auto", "none"):
            raise _Rejected(
                FakeError.invalid_request(
                    "Invalid request: tool_choice must be auto or none when thinking is enabled"
                )
            )
        if thinking:
            for index, message in enumerate(messages):
                if (
                    message.get("role") == "assistant"
                    and message.get("tool_calls")
                    and not message.get("reasoning_content")
                ):
                    raise _Rejected(
                        FakeError.invalid_request(
                            "thinking is enabled but reasoning_content is missing in assistant "
                            f"tool call message at index {index}"
                        )
                    )
        return thinking

    def _validate_images(self, model: FakeModel, messages: Sequence[Mapping[str, Any]]) -> None:
        """Image parts, as Moonshot checks them: only on models that read images, and each one a
        decodable image in a data: URL or an uploaded file (purpose image) as ms://<id>."""
        for index, message in enumerate(messages):
            urls = _image_urls(message.get("content"))
            if urls and not model.supports_image_in:
                raise _Rejected(
                    FakeError.invalid_request(
                        f"Invalid request: the model {model.id} does not support image input"
                    )
                )
            for url in urls:
                if url.startswith("ms://"):
                    stored = self.files.get(url.removeprefix("ms://"))
                    if stored is None or stored.purpose != "image":
                        raise _Rejected(
                            FakeError.invalid_request(
                                f"Invalid request: file {url} not found or not an image"
                            )
                        )
                    continue
                if not url.startswith("data:"):
                    raise _Rejected(
                        FakeError.invalid_request(
                            f"Invalid request: image_url at index {index} must be base64 or ms://"
                        )
                    )
                try:
                    decode_data_url_image(url)
                except ValueError as error:
                    raise _Rejected(
                        FakeError.invalid_request(f"Invalid request: image at index {index}: {error}")
                    ) from None
                self.images_seen += 1

    def _validate_tool_round_trips(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
    ) -> dict[str, int]:
        """Each tool call needs exactly one tool message and each tool message a call; a
        $web_search answer must echo the arguments the fake issued. Returns the search result
        sizes by tool_call_id."""
        declared = {(tool.get("function") or {}).get("name") for tool in tools}
        open_calls: dict[str, str] = {}
        search_tokens: dict[str, int] = {}
        for message in messages:
            for call in message.get("tool_calls") or ():
                open_calls[call["id"]] = (call.get("function") or {}).get("name", "")
            if message.get("role") != "tool":
                continue
            call_id = message.get("tool_call_id")
            if call_id not in open_calls:
                raise _Rejected(
                    FakeError.invalid_request(f"Invalid request: tool_call_id {call_id} is not found")
                )
            name = open_calls.pop(call_id)
            if name in _BUILTIN_TOOLS:
                if name not in declared:
                    raise _Rejected(
                        FakeError.invalid_request(
                            f"Invalid request: {name} must be declared in tools on every request"
                        )
                    )
                search_tokens[call_id] = self._search_result_tokens(message.get("content"))
        if open_calls:
            missing = next(iter(open_calls))
            raise _Rejected(
                FakeError.invalid_request(f"Invalid request: tool_call_id {missing} has no tool message")
            )
        return search_tokens

    def _search_result_tokens(self, content: Any) -> int:
        try:
            arguments = json.loads(content) if isinstance(content, str) else None
            search_id = arguments["search_result"]["search_id"]
        except (ValueError, KeyError, TypeError):
            raise _Rejected(
                FakeError.invalid_request(
                    "Invalid request: the $web_search tool message must echo its arguments"
                )
            ) from None
        if search_id not in self._searches:
            raise _Rejected(FakeError.invalid_request("Invalid request: unknown search_id"))
        return self._searches[search_id]

    def _search_request(self, reply: Reply) -> Reply:
        queries = ([reply.web_search] if reply.web_search is not None else []) + list(reply.web_searches)
        calls = []
        for query in queries:
            search_id = "search-" + secrets.token_hex(6)
            self._searches[search_id] = reply.search_tokens
            arguments = json.dumps(
                {
                    "search_result": {"search_id": search_id},
                    "query": query,
                    "usage": {"total_tokens": reply.search_tokens},
                },
                ensure_ascii=False,
            )
            calls.append(
                ScriptedToolCall(
                    "$web_search", arguments, id="call_" + secrets.token_hex(6), type="builtin_function"
                )
            )
        return replace(reply, tool_calls=(*reply.tool_calls, *calls), web_search=None, web_searches=())

    async def _complete(
        self,
        request: web.Request,
        model: str,
        reply: Reply,
        answer: _Answer,
        usage: dict[str, Any] | None,
    ) -> web.StreamResponse:
        await asyncio.sleep(self.first_token_delay)
        message: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.reasoning:
            message["reasoning_content"] = answer.reasoning
        if answer.tool_calls:
            message["tool_calls"] = [call.to_wire() for call in answer.tool_calls]
        payload: dict[str, Any] = {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason}],
        }
        if usage is not None:
            payload["usage"] = usage
        raw = json.dumps(payload, ensure_ascii=False).encode()
        if not reply.drop_before_done:
            return web.Response(body=raw, content_type="application/json")
        # A body cut halfway: headers promise the full length, half arrives, the line drops.
        response = web.StreamResponse(headers={"Content-Length": str(len(raw))})
        response.content_type = "application/json"
        await response.prepare(request)
        await response.write(raw[: len(raw) // 2])
        _cut_connection(request)
        return response

    async def _stream(
        self,
        request: web.Request,
        model: str,
        reply: Reply,
        answer: _Answer,
        usage: dict[str, Any] | None,
        include_usage: bool,
    ) -> web.StreamResponse:
        chunks = _stream_chunks(model, reply, answer, usage, include_usage)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Msh-Request-Id": _completion_id(),
            }
        )
        await response.prepare(request)
        await asyncio.sleep(self.first_token_delay)
        for number, chunk in enumerate(chunks):
            if reply.stall_after_chunks is not None and number >= reply.stall_after_chunks:
                assert self._closing is not None
                await self._closing.wait()
                return response
            if reply.hold_after_chunks is not None and number == reply.hold_after_chunks[0]:
                await reply.hold_after_chunks[1].wait()
            if reply.error_after_chunks is not None and number >= reply.error_after_chunks[0]:
                await response.write(_sse(reply.error_after_chunks[1].body()))
                await response.write_eof()
                return response
            await response.write(_sse(chunk))
            request[RECORD].chunks_sent += 1
            if reply.delay:
                await asyncio.sleep(reply.delay)
        if reply.stall_after_chunks is not None:
            assert self._closing is not None
            await self._closing.wait()
            return response
        if reply.drop_before_done:
            if reply.drop_style == "abort":
                _cut_connection(request)
            else:
                await response.write_eof()
            return response
        await response.write(b"data: [DONE]\n\n")
        request[RECORD].completed = True
        await response.write_eof()
        return response

    # --- models, balance, tokens ---

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": model.id,
                        "object": "model",
                        "created": 1709149158,
                        "owned_by": "moonshot",
                        "context_length": model.context_length,
                        "supports_image_in": model.supports_image_in,
                        "supports_video_in": False,
                        "supports_reasoning": model.supports_reasoning,
                    }
                    for model in self.models.values()
                ],
            }
        )

    async def _balance(self, request: web.Request) -> web.StreamResponse:
        # Written as JSON numbers from the exact decimals, as the real body has them.
        data = (
            f'{{"available_balance":{self.available_balance},'
            f'"voucher_balance":{self.voucher_balance},"cash_balance":{self.cash_balance}}}'
        )
        text = f'{{"code":0,"data":{data},"scode":"0x0","status":true}}'
        return web.Response(text=text, content_type="application/json")

    async def _estimate(self, request: web.Request) -> web.StreamResponse:
        body = self._json_body(request)
        self._model(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Rejected(FakeError.invalid_request("Invalid request: messages must not be empty"))
        for index, message in enumerate(messages):
            _validate_message(index, message)
        self._validate_images(self._model(body), messages)
        return web.json_response(
            {
                "code": 0,
                "data": {"total_tokens": int(count_prompt_tokens(messages) * self.estimate_ratio)},
                "scode": "0x0",
                "status": True,
            }
        )

    # --- files ---

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[RECORD]
        if not request.content_type.startswith("multipart/"):
            raise _Rejected(FakeError.invalid_request("Invalid request: expected multipart/form-data"))
        purpose: str | None = None
        filename: str | None = None
        data = b""
        reader = await request.multipart()
        async for part in reader:
            if part.name == "file":
                filename = part.filename or "upload"
                data = await self._read_file_part(part)
                record.file_sizes[filename] = len(data)
            elif part.name:
                record.form[part.name] = (await part.read()).decode("utf-8", "replace")
        purpose = record.form.get("purpose")
        if purpose not in _FILE_PURPOSES:
            raise _Rejected(FakeError.invalid_request(f"Invalid purpose: {purpose}"))
        if filename is None:
            raise _Rejected(FakeError.invalid_request("Invalid request: file is required"))
        if not data:
            raise _Rejected(
                FakeError.invalid_request("File size is zero, please confirm and re-upload the file")
            )
        if len(self.files) >= self.max_files:
            raise _Rejected(
                FakeError.invalid_request(
                    f"You have exceeded the max file count {self.max_files}, please delete some files"
                )
            )
        if sum(f.bytes for f in self.files.values()) + len(data) > self.max_total_bytes:
            raise _Rejected(
                FakeError.invalid_request(
                    "The total size of your files exceeds 10GB, please delete some files"
                )
            )
        text, failure = ("", None)
        if purpose == "file-extract":
            text, failure = self._extract(filename, data)
        if failure is not None and self.extraction_failure_style == "http":
            raise _Rejected(FakeError.server_error(f"Failed to extract file: {failure}"))
        stored = FakeFile(
            id="cl" + secrets.token_hex(9),
            filename=filename,
            bytes=len(data),
            purpose=purpose,
            created_at=int(time.time()),
            status="error" if failure else "ok",
            status_details=failure or "",
            text=text,
            file_type=mimetypes.guess_type(filename)[0] or "application/octet-stream",
        )
        self.files[stored.id] = stored
        return web.json_response(stored.to_wire())

    async def _read_file_part(self, part: Any) -> bytes:
        data = bytearray()
        while piece := await part.read_chunk(256 * 1024):
            data += piece
            if len(data) > self.max_file_bytes:
                raise _Rejected(
                    FakeError.invalid_request(
                        f"File size is too large, max file size is {self.max_file_bytes // MB}MB, "
                        "please confirm and re-upload the file"
                    )
                )
        return bytes(data)

    def _extract(self, filename: str, data: bytes) -> tuple[str, str | None]:
        """(text, failure reason or None), like the platform's file-extract."""
        configured = self.extractions.get(filename)
        if isinstance(configured, ExtractionFailure):
            return "", configured.reason
        if configured is not None:
            return configured, None
        extension = _extension(filename)
        try:
            if extension in TEXT_EXTENSIONS:
                return data.decode("utf-8", errors="replace"), None
            if extension == ".pdf":
                text = pdf_text(data)
            elif extension == ".docx":
                text = docx_text(data)
            elif extension in IMAGE_EXTENSIONS:
                return "", "no text found in the image"
            else:
                return "", f"unsupported file type {extension or '(none)'}"
        except (ValueError, KeyError, zipfile.BadZipFile, ElementTree.ParseError):
            return "", f"could not read the {extension} file"
        if not text.strip():
            return "", "no text found in the file"
        return text, None

    async def _list_files(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"object": "list", "data": [f.to_wire() for f in self.files.values()]})

    def _stored(self, request: web.Request) -> FakeFile:
        file_id = request.match_info["file_id"]
        stored = self.files.get(file_id)
        if stored is None:
            raise _Rejected(FakeError(404, "resource_not_found_error", f"file {file_id} not found"))
        return stored

    async def _get_file(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._stored(request).to_wire())

    async def _delete_file(self, request: web.Request) -> web.StreamResponse:
        stored = self._stored(request)
        del self.files[stored.id]
        return web.json_response({"id": stored.id, "object": "file", "deleted": True})

    async def _file_content(self, request: web.Request) -> web.StreamResponse:
        stored = self._stored(request)
        if not self.file_content_as_json:
            return web.Response(text=stored.text, content_type="text/plain")
        # A JSON string in a text/plain response, as the platform really answers.
        body = json.dumps(
            {
                "content": stored.text,
                "file_type": stored.file_type,
                "filename": stored.filename,
                "title": "",
                "type": "file",
            },
            ensure_ascii=False,
        )
        return web.Response(text=body, content_type="text/plain")


# --- chat helpers ---------------------------------------------------------------------------


def _validate_message(index: int, message: Any) -> None:
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        raise _Rejected(
            FakeError.invalid_request(f"Invalid request: invalid role in message at index {index}")
        )
    role = message["role"]
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise _Rejected(FakeError.invalid_request(f"Invalid request: invalid content at index {index}"))
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "image_url", "video_url"):
                raise _Rejected(
                    FakeError.invalid_request(f"Invalid request: invalid content part at {index}")
                )
    if role in ("system", "user") and not content:
        raise _Rejected(
            FakeError.invalid_request(f"Invalid request: message at index {index} has no content")
        )
    if role == "tool" and not message.get("tool_call_id"):
        raise _Rejected(
            FakeError.invalid_request(f"Invalid request: tool message {index} needs tool_call_id")
        )
    if role == "assistant" and not content and not message.get("tool_calls") and not message.get("partial"):
        raise _Rejected(FakeError.invalid_request(f"Invalid request: assistant message {index} is empty"))


def _validate_tool(tool: Any) -> None:
    if not isinstance(tool, dict):
        raise _Rejected(FakeError.invalid_request("Invalid request: invalid tool"))
    name = (tool.get("function") or {}).get("name")
    if tool.get("type") == "builtin_function":
        if name not in _BUILTIN_TOOLS:
            raise _Rejected(FakeError.invalid_request(f"Invalid request: unknown builtin {name}"))
        return
    if tool.get("type") != "function" or not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise _Rejected(FakeError.invalid_request(f"Invalid request: invalid function name {name}"))


def _echo_reply(messages: Sequence[Mapping[str, Any]]) -> Reply:
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
    return Reply(content="echo: " + _content_text(last_user.get("content")))


@dataclass(frozen=True)
class _PlannedCall:
    id: str
    type: str
    name: str
    argument_tokens: list[str]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": "".join(self.argument_tokens)},
        }


@dataclass(frozen=True)
class _Answer:
    reasoning_tokens: list[str]
    content_tokens: list[str]
    tool_calls: list[_PlannedCall]
    finish_reason: str
    completion_tokens: int

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_tokens)

    @property
    def content(self) -> str:
        return "".join(self.content_tokens)


def _plan_answer(reply: Reply, max_tokens: int) -> _Answer:
    """The reply cut at max_tokens: reasoning first, then content, then tool calls."""
    budget = max_tokens
    truncated = False

    def take(tokens: list[str]) -> list[str]:
        nonlocal budget, truncated
        if len(tokens) > budget:
            truncated = True
        kept = tokens[: max(budget, 0)]
        budget -= len(kept)
        return kept

    reasoning = take(split_tokens(reply.reasoning))
    content = take(split_tokens(reply.content))
    calls: list[_PlannedCall] = []
    for index, call in enumerate(reply.tool_calls):
        name_cost = count_tokens(call.name)
        arguments = split_tokens(call.arguments)
        if budget < name_cost + len(arguments):
            truncated = True
            break
        budget -= name_cost + len(arguments)
        calls.append(_PlannedCall(call.id or f"{call.name}:{index}", call.type, call.name, arguments))
    if reply.finish_reason is not None:
        finish = reply.finish_reason
    elif truncated:
        finish = "length"
    elif calls:
        finish = "tool_calls"
    else:
        finish = "stop"
    return _Answer(reasoning, content, calls, finish, max_tokens - budget)


def _usage(reply: Reply, prompt_tokens: int, completion_tokens: int) -> dict[str, Any] | None:
    if reply.usage_placement == "none":
        return None
    if reply.usage is not None:
        return dict(reply.usage)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if reply.cached_tokens:
        usage["cached_tokens"] = reply.cached_tokens
    return usage


def _stream_chunks(
    model: str, reply: Reply, answer: _Answer, usage: dict[str, Any] | None, include_usage: bool
) -> list[dict[str, Any]]:
    completion_id = _completion_id()
    created = int(time.time())
    top_level = reply.usage_placement == "top_level" and include_usage

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }
        if top_level:
            body["usage"] = None
        return body

    def pieces(tokens: list[str]) -> list[str]:
        size = max(reply.chunk_tokens, 1)
        return ["".join(tokens[i : i + size]) for i in range(0, len(tokens), size)]

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"reasoning_content": piece}) for piece in pieces(answer.reasoning_tokens)]
    chunks += [chunk({"content": piece}) for piece in pieces(answer.content_tokens)]
    for index, call in enumerate(answer.tool_calls):
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": call.type,
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in pieces(call.argument_tokens)
        ]
    last = chunk({}, answer.finish_reason)
    if usage is not None and reply.usage_placement == "choice":
        last["choices"][0]["usage"] = usage
    chunks.append(last)
    if usage is not None and top_level:
        extra = chunk({})
        extra["choices"] = []
        extra["usage"] = usage
        chunks.append(extra)
    return chunks


def _sse(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def _completion_id() -> str:
    return "cmpl-" + secrets.token_hex(16)


def _cut_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _error_response(error: FakeError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=dict(error.headers))


__all__ = [
    "DEFAULT_MODELS",
    "ExtractionFailure",
    "FakeError",
    "FakeKimi",
    "FakeModel",
    "RecordedRequest",
    "Reply",
    "ScriptedToolCall",
    "count_prompt_tokens",
    "count_tokens",
    "decode_data_url_image",
    "image_tokens",
    "docx_text",
    "pdf_text",
    "split_tokens",
]
