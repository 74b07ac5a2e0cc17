"""What the bot says, in Chinese and English, chosen by Telegram's language_code: the one catalog.

Every user-facing text is here, the Kimi errors' included (each error class names its key), with
the same keys and placeholders in both languages (tests/test_texts.py checks that).
"""

from __future__ import annotations

from bot.kimi import KimiError

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "start": (
            "Hi! I'm a Telegram bot for Kimi, Moonshot AI's model. Write to me and I answer, showing "
            "the reply as it is written; send a document and I summarise it or answer its caption.\n\n"
            "Model: {model}\nBudget left this period: {remaining} 元点\n\n{commands}"
        ),
        "help_commands": (
            "/model – see and switch models\n/balance – what is left of your budget\n"
            "/cost – what you spent\n/reset – start a new conversation\n/stop – stop the current answer\n"
            "/summary – (reply to a document) summarise it\n/search on|off – web search\n"
            "/think on|off – thinking (kimi-k2.6, k2.5)\n/help – this help"
        ),
        "help_admin": "\n\nAdmin: /budget <user_id> [元点|unlimited|default] – see or set a user's budget",
        "help_group": "\n\nIn groups, mention me (@{bot}), reply to my message or use a command.",
        "not_allowed": "Sorry, this bot is private. Ask its owner to add your Telegram id ({user_id}).",
        "empty_message": "Please send some text (or a document) for me to answer.",
        "refused_budget": (
            "Your budget for this period is used up: {remaining} of {limit} 元点 left, and an answer "
            "needs at least {needed}. It resets {reset}."
        ),
        "reset_never": "only when an admin raises it",
        "reset_at": "on {when} (UTC)",
        "too_long": "That message is too long for {model}'s context window. Please shorten it or /reset.",
        "note_stopped": "⏹ Stopped.",
        "note_incomplete": "⚠️ The answer was cut off (the connection to Kimi broke). Ask again to continue.",
        "note_truncated": "✂️ The answer hit the length limit.",
        "note_capped": "✂️ The answer was shortened to what your remaining budget allows.",
        "note_failed_partial": "⚠️ {error}",
        "empty_answer": "(Kimi returned an empty answer.)",
        "thinking": "💭 Thinking…",
        "searching": "🔎 Searching the web…",
        "stop_button": "⏹ Stop",
        "stopping": "Stopping…",
        "note_restart": "🔄 The bot restarted, which interrupted this answer. Ask again to continue.",
        "note_crash": (
            "⚠️ The bot stopped unexpectedly while writing this answer, so it ends here. You were charged "
            "only for what was written. Ask again to continue."
        ),
        "note_crash_nothing": (
            "⚠️ The bot stopped unexpectedly before it could answer “{question}”. Nothing was charged; "
            "please send it again."
        ),
        "nothing_to_stop": "Nothing is being answered right now.",
        "reset_done": "New conversation started. Earlier messages are no longer sent to Kimi.",
        "model_current": "Current model: {model}\n\nAvailable (元点 per 1M tokens: input / output, context):",
        "model_line": "{mark} {model} – {input} / {output}, {context}{derived}",
        "model_derived": " (ratio derived from ¥ price)",
        "model_switched": "Model switched to {model}.",
        "model_unknown": "Unknown or unpriced model: {model}. Choose one of:\n{models}",
        "model_none": "No models are available right now (Kimi's model list is empty or unreachable).",
        "balance": (
            "Budget ({period}): {remaining} 元点 left\nLimit: {limit}\nSpent: {spent}\nReserved "
            "(answers in progress): {reserved}\nResets: {reset}"
        ),
        "balance_unlimited": "Budget ({period}): unlimited\nSpent: {spent}\nReserved: {reserved}",
        "balance_upstream": "\n\nKimi account balance: {available} {currency} (cash {cash}, voucher {voucher})",
        "balance_upstream_unknown": "\n\nKimi account balance: unavailable ({error})",
        "unlimited": "unlimited",
        "period_daily": "daily",
        "period_weekly": "weekly",
        "period_monthly": "monthly",
        "period_total": "total",
        "cost_header": "Your usage (tokens: input / cached / output):",
        "cost_section": "\n{title}: {points} 元点",
        "cost_line": "  {model}: {prompt} / {cached} / {completion} – {points} 元点 ({calls} calls)",
        "cost_search_line": "  🔎 web searches: {searches} – {points} 元点",
        "cost_none": "\n{title}: nothing yet",
        "cost_last": "Last reply",
        "cost_conversation": "This conversation",
        "cost_today": "Today (UTC)",
        "cost_period": "This period",
        "cost_all": "All time",
        "budget_usage": "Usage: /budget <user_id> [元点|unlimited|default]",
        "budget_show": "User {user_id}: {limit} ({source}); spent {spent}, reserved {reserved} this period.",
        "budget_set": "User {user_id}'s budget is now {limit} per period.",
        "budget_source_default": "default",
        "budget_source_override": "set by an admin",
        "admin_only": "This command is for admins.",
        "admin_quota_alert": "⚠️ Kimi refused a call because the account balance is exhausted. Please top up.",
        "internal_error": "Sorry, something went wrong on my side. Please try again.",
        "button_expired": "This button has expired.",
        "arg_not_a_number": "“{value}” is not an amount. Write a number of 元点 such as 12 or 0.5.",
        "arg_negative": "An amount can't be negative (“{value}”).",
        "arg_too_large": "“{value}” is too large: at most {max_points} 元点.",
        "arg_too_precise": "“{value}” has too many decimal places: 元点 are counted to 6.",
        "arg_not_an_id": "“{value}” is not a Telegram id. Ids are whole numbers such as 123456789.",
        "arg_id_out_of_range": "“{value}” is outside the range of Telegram user ids (1 to {max_id}).",
        "arg_chat_id_out_of_range": "“{value}” is outside the range of Telegram chat ids (±1 to ±{max_id}).",
        # Kimi errors (bot/kimi/errors.py: each error class names its key)
        "kimi_error": "Something went wrong with Kimi. Please try again later.",
        "kimi_auth": "The bot's Kimi API key is not valid. Please tell the bot's admin.",
        "kimi_permission": "The bot's Kimi account is not allowed to do this. Please tell the bot's admin.",
        "kimi_not_found": "Kimi could not find that model or file.",
        "kimi_invalid_request": "Kimi could not process this request.",
        "kimi_context_overflow": "This conversation is too long for the model. Start a new one or send a shorter message.",
        "kimi_file_too_large": "The file is too large (the limit is 100 MB).",
        "kimi_file_empty": "The file is empty.",
        "kimi_file_too_many": "The file storage is full. Please try later or tell the bot's admin.",
        "kimi_file_total_size": "The file storage is full. Please try later or tell the bot's admin.",
        "kimi_extraction_failed": "Could not extract text from this file. Please try another format.",
        "kimi_content_filter": "Kimi declined this request because it was flagged as high risk.",
        "kimi_quota": "The bot's Kimi account has run out of credit. Please tell the bot's admin.",
        "kimi_rate_limited": "Kimi is receiving too many requests right now. Please try again in a moment.",
        "kimi_overloaded": "Kimi is overloaded right now. Please try again shortly.",
        "kimi_server_error": "Kimi had a server error. Please try again later.",
        "kimi_connection": "Could not reach Kimi. Please try again later.",
        "kimi_timeout": "Kimi took too long to answer. Please try again.",
        "kimi_incomplete_stream": "The answer was cut off. What arrived is shown above.",
        # documents (handlers/documents.py)
        "doc_default_question": "Summarise this document: its purpose and main points.",
        "doc_too_big": "This file is larger than 20 MB, the most a bot can download from Telegram. Please send a smaller file.",
        "doc_unsupported": "I can't read this kind of file. Send a PDF, Word, Excel, PowerPoint, text, Markdown, CSV, HTML, JSON, EPUB, code file or an image with text.",
        "doc_empty": "This file is empty.",
        "doc_no_text": "I found no text in this file.",
        "doc_download_failed": "I couldn't download this file from Telegram. Please try again.",
        "doc_part_progress": "📄 Summarising «{name}» in parts: step {index} of {total}…",
        "doc_parts_done": "📄 Read «{name}» in {total} parts; the summary follows.",
        "doc_confirm": "Summarising «{name}» ({tokens} tokens{parts}) will cost up to about {cost} 元点. You have {remaining} 元点 left.{capped} Go ahead?",
        "doc_confirm_parts": ", in {count} parts",
        "doc_confirm_capped": " That is more than you have left, so the summary will be shortened to fit.",
        "doc_confirm_yes": "✅ Summarise",
        "doc_confirm_no": "✖ Cancel",
        "doc_cancelled": "Cancelled; nothing was charged.",
        "doc_expired": "This request has expired. Please send the document again.",
        "doc_not_yours": "Only the person who sent the document can confirm.",
        "doc_cannot_afford": "Summarising «{name}» would cost about {cost} 元点, but you have only {remaining} 元点 left in this period.",
        "summary_usage": "Reply to a document with /summary to summarise it.",
        # groups (handlers/groups.py)
        "group_not_allowed": "I'm not allowed in this group, so I'm leaving. An admin can allow it.",
        "think_usage": "Thinking is {state} for you. Use /think on or /think off.",
        "think_set": "Thinking is now {state}. {model} {effect}",
        "think_effect_on": "thinks before answering (slower, and the thinking is paid for).",
        "think_effect_off": "answers straight away (faster and cheaper).",
        "think_not_applicable": "Thinking can't be switched on {model}: it {mode}. Switch to kimi-k2.6 or kimi-k2.5 with /model to use /think.",
        "think_mode_always": "always thinks",
        "think_mode_never": "does not think",
        "search_usage": "Web search is {state} for you. Use /search on or /search off. Each search costs {fee} 元点 plus its results as input.",
        "search_set": "Web search is now {state}.",
        "search_set_on_detail": " Kimi may search the web while answering; each search costs {fee} 元点 plus its results as input tokens.",
        "search_thinking_note": " While searching, {model} answers without thinking (Moonshot requires it).",
        "state_on": "on",
        "state_off": "off",
        "search_button": "🔎 Web search: {state}",
        "note_search_skipped": "🔎 Your remaining budget can't cover a web search, so this was answered without one.",
        "note_search_limited": "🔎 Kimi wanted more web searches than one answer may use ({searches}).",
    },
    "zh": {
        "start": (
            "你好！我是 Kimi（月之暗面）的 Telegram 机器人。发消息给我，我会一边生成一边显示回答；"
            "发文档给我，我会总结它或回答说明里的问题。\n\n当前模型：{model}\n本期剩余预算：{remaining} 元点\n\n{commands}"
        ),
        "help_commands": (
            "/model – 查看和切换模型\n/balance – 查看剩余预算\n/cost – 查看花费\n/reset – 开始新对话\n"
            "/stop – 停止当前回答\n/summary –（回复文档）总结文档\n/search on|off – 联网搜索\n"
            "/think on|off – 思考模式（kimi-k2.6、k2.5）\n/help – 帮助"
        ),
        "help_admin": "\n\n管理员：/budget <用户ID> [元点|unlimited|default] – 查看或设置用户预算",
        "help_group": "\n\n在群里，请 @{bot}、回复我的消息或使用命令。",
        "not_allowed": "抱歉，这个机器人不对外开放。请让管理员添加你的 Telegram ID（{user_id}）。",
        "empty_message": "请发送文字（或文档），我来回答。",
        "refused_budget": "本期预算已用完：剩余 {remaining} / {limit} 元点，一次回答至少需要 {needed} 元点。{reset}重置。",
        "reset_never": "需管理员提高额度后才会",
        "reset_at": "将于 {when}（UTC）",
        "too_long": "这条消息超出了 {model} 的上下文长度。请缩短后再发，或使用 /reset。",
        "note_stopped": "⏹ 已停止。",
        "note_incomplete": "⚠️ 回答被中断（与 Kimi 的连接断开）。可以再问一次继续。",
        "note_truncated": "✂️ 回答达到长度上限。",
        "note_capped": "✂️ 因剩余预算有限，回答被缩短。",
        "note_failed_partial": "⚠️ {error}",
        "empty_answer": "（Kimi 返回了空回答。）",
        "thinking": "💭 思考中…",
        "searching": "🔎 正在联网搜索…",
        "stop_button": "⏹ 停止",
        "stopping": "正在停止…",
        "note_restart": "🔄 机器人重启，打断了这个回答。可以再问一次继续。",
        "note_crash": "⚠️ 机器人在写这个回答时意外停止，回答到此为止。只按已写出的部分计费。可以再问一次继续。",
        "note_crash_nothing": "⚠️ 机器人在回答“{question}”之前意外停止。没有计费，请再发一次。",
        "nothing_to_stop": "当前没有正在生成的回答。",
        "reset_done": "已开始新对话。之前的消息不会再发送给 Kimi。",
        "model_current": "当前模型：{model}\n\n可用模型（每百万 tokens 元点：输入 / 输出，上下文）：",
        "model_line": "{mark} {model} – {input} / {output}，{context}{derived}",
        "model_derived": "（比例由人民币价格换算）",
        "model_switched": "已切换到模型 {model}。",
        "model_unknown": "未知或未定价的模型：{model}。可选：\n{models}",
        "model_none": "当前没有可用模型（Kimi 模型列表为空或无法访问）。",
        "balance": "预算（{period}）：剩余 {remaining} 元点\n额度：{limit}\n已用：{spent}\n预留（生成中）：{reserved}\n重置：{reset}",
        "balance_unlimited": "预算（{period}）：不限\n已用：{spent}\n预留：{reserved}",
        "balance_upstream": "\n\nKimi 账户余额：{available} {currency}（现金 {cash}，代金券 {voucher}）",
        "balance_upstream_unknown": "\n\nKimi 账户余额：无法获取（{error}）",
        "unlimited": "不限",
        "period_daily": "每日",
        "period_weekly": "每周",
        "period_monthly": "每月",
        "period_total": "总额",
        "cost_header": "你的用量（tokens：输入 / 缓存 / 输出）：",
        "cost_section": "\n{title}：{points} 元点",
        "cost_line": "  {model}：{prompt} / {cached} / {completion} – {points} 元点（{calls} 次）",
        "cost_search_line": "  🔎 联网搜索：{searches} 次 – {points} 元点",
        "cost_none": "\n{title}：暂无",
        "cost_last": "上一条回答",
        "cost_conversation": "本次对话",
        "cost_today": "今天（UTC）",
        "cost_period": "本期",
        "cost_all": "全部",
        "budget_usage": "用法：/budget <用户ID> [元点|unlimited|default]",
        "budget_show": "用户 {user_id}：{limit}（{source}）；本期已用 {spent}，预留 {reserved}。",
        "budget_set": "用户 {user_id} 的预算已设为每期 {limit}。",
        "budget_source_default": "默认",
        "budget_source_override": "管理员设置",
        "admin_only": "此命令仅限管理员。",
        "admin_quota_alert": "⚠️ Kimi 账户余额不足，调用被拒绝。请尽快充值。",
        "internal_error": "抱歉，我这边出了点问题，请再试一次。",
        "button_expired": "这个按钮已失效。",
        "arg_not_a_number": "“{value}”不是有效金额。请写元点数，例如 12 或 0.5。",
        "arg_negative": "金额不能为负数（“{value}”）。",
        "arg_too_large": "“{value}”太大了：最多 {max_points} 元点。",
        "arg_too_precise": "“{value}”的小数位太多：元点最多精确到 6 位小数。",
        "arg_not_an_id": "“{value}”不是 Telegram ID。ID 是整数，例如 123456789。",
        "arg_id_out_of_range": "“{value}”超出了 Telegram 用户 ID 的范围（1 到 {max_id}）。",
        "arg_chat_id_out_of_range": "“{value}”超出了 Telegram 聊天 ID 的范围（±1 到 ±{max_id}）。",
        # Kimi errors (bot/kimi/errors.py: each error class names its key)
        "kimi_error": "Kimi 出了点问题，请稍后再试。",
        "kimi_auth": "机器人的 Kimi 密钥无效，请联系管理员。",
        "kimi_permission": "机器人的 Kimi 账户无权进行此操作，请联系管理员。",
        "kimi_not_found": "Kimi 找不到所请求的模型或文件。",
        "kimi_invalid_request": "Kimi 无法处理这个请求。",
        "kimi_context_overflow": "对话太长，超出了模型的上下文长度。请开始新对话或发送更短的消息。",
        "kimi_file_too_large": "文件太大了（上限 100 MB）。",
        "kimi_file_empty": "文件是空的。",
        "kimi_file_too_many": "文件存储已满，请稍后再试或联系管理员。",
        "kimi_file_total_size": "文件存储已满，请稍后再试或联系管理员。",
        "kimi_extraction_failed": "无法从这个文件中提取文字，请换一种格式再试。",
        "kimi_content_filter": "Kimi 认为这段内容存在风险，拒绝了请求。",
        "kimi_quota": "机器人的 Kimi 账户余额不足，请联系管理员充值。",
        "kimi_rate_limited": "Kimi 当前请求过多，请稍后再试。",
        "kimi_overloaded": "Kimi 当前繁忙，请稍后再试。",
        "kimi_server_error": "Kimi 服务出错了，请稍后再试。",
        "kimi_connection": "暂时连不上 Kimi，请稍后再试。",
        "kimi_timeout": "Kimi 响应超时，请稍后再试。",
        "kimi_incomplete_stream": "回答未能完整送达，以上是已收到的部分。",
        # documents (handlers/documents.py)
        "doc_default_question": "请总结这份文档：它的目的和要点。",
        "doc_too_big": "这个文件超过 20 MB，机器人无法从 Telegram 下载。请发送更小的文件。",
        "doc_unsupported": "我读不了这种文件。请发送 PDF、Word、Excel、PPT、文本、Markdown、CSV、HTML、JSON、EPUB、代码文件或带文字的图片。",
        "doc_empty": "这个文件是空的。",
        "doc_no_text": "这个文件里没有找到文字。",
        "doc_download_failed": "无法从 Telegram 下载这个文件，请再试一次。",
        "doc_part_progress": "📄 正在分部分总结《{name}》：第 {index}/{total} 步…",
        "doc_parts_done": "📄 已分 {total} 部分读完《{name}》，总结如下。",
        "doc_confirm": "总结《{name}》（{tokens} tokens{parts}）最多约花费 {cost} 元点。你还剩 {remaining} 元点。{capped}继续吗？",
        "doc_confirm_parts": "，分 {count} 部分",
        "doc_confirm_capped": "这超过了你的剩余预算，总结会缩短到预算以内。",
        "doc_confirm_yes": "✅ 总结",
        "doc_confirm_no": "✖ 取消",
        "doc_cancelled": "已取消，未扣费。",
        "doc_expired": "请求已过期，请重新发送文档。",
        "doc_not_yours": "只有发送文档的人可以确认。",
        "doc_cannot_afford": "总结《{name}》约需 {cost} 元点，但你本期只剩 {remaining} 元点。",
        "summary_usage": "请用 /summary 回复一个文档来总结它。",
        # groups (handlers/groups.py)
        "group_not_allowed": "我未获准在这个群里使用，现在退出。管理员可以在设置中允许。",
        "think_usage": "你的思考模式：{state}。用 /think on 或 /think off 切换。",
        "think_set": "思考模式已{state}。{model}{effect}",
        "think_effect_on": "会先思考再回答（更慢，思考内容也计费）。",
        "think_effect_off": "直接回答（更快、更便宜）。",
        "think_not_applicable": "{model} 不能切换思考模式：它{mode}。请用 /model 换到 kimi-k2.6 或 kimi-k2.5 再使用 /think。",
        "think_mode_always": "总是会思考",
        "think_mode_never": "不进行思考",
        "search_usage": "你的联网搜索：{state}。用 /search on 或 /search off 切换。每次搜索 {fee} 元点，搜索结果按输入计费。",
        "search_set": "联网搜索已{state}。",
        "search_set_on_detail": "Kimi 回答时可能联网搜索；每次搜索 {fee} 元点，搜索结果按输入 tokens 计费。",
        "search_thinking_note": "搜索时 {model} 会关闭思考模式（Moonshot 的要求）。",
        "state_on": "开启",
        "state_off": "关闭",
        "search_button": "🔎 联网搜索：{state}",
        "note_search_skipped": "🔎 剩余预算不够一次联网搜索，这次回答没有搜索。",
        "note_search_limited": "🔎 Kimi 想搜索的次数超过了单次回答的上限（{searches} 次）。",
    },
}


def language_of(language_code: str | None) -> str:
    """'zh' for Chinese users (zh, zh-hans, zh-TW…), English for everyone else."""
    return "zh" if language_code and language_code.lower().startswith("zh") else "en"


def text(lang: str, key: str, **values: object) -> str:
    table = _TEXTS.get(lang, _TEXTS["en"])
    template = table.get(key, _TEXTS["en"][key])
    return template.format(**values) if values else template


def error_text(lang: str, error: KimiError) -> str:
    """What the user is told about a Kimi error: its catalog entry, never the upstream message."""
    return text(lang, error.text_key())
