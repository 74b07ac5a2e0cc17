"""A realistic long Kimi answer: the Markdown the renderer and the streamer meet in production.

Headings, nested and numbered lists, bold/italic/inline code, links, fenced code in three
languages, a table, a quote, Chinese paragraphs and emoji — each of which costs the renderer
something different (entities, UTF-16 offsets of astral emoji, code blocks that stay open while
streaming).
"""

from __future__ import annotations

SECTIONS = [
    """## {n}. 部署一个异步 Python 服务 🚀

下面是一个完整的方案，适合在 **2 核 / 4 GB** 的机器上运行。我们会用 `asyncio`、*PostgreSQL* 和
一个反向代理。整体思路是：先保证正确性，再考虑性能 ✅。

> 提示：如果你只是想快速试一试，可以先用 SQLite，之后再迁移到 PostgreSQL。
""",
    """### {n}.1 Requirements

1. **Python 3.11+** — the `TaskGroup` API makes cancellation sane.
2. A database:
   - *SQLite* for a single process (WAL mode, `busy_timeout` of 30 s);
   - *PostgreSQL* when several processes share the data.
3. A process supervisor such as `systemd` or Docker's `restart: unless-stopped`.

See the [asyncio docs](https://docs.python.org/3/library/asyncio.html) and the
[PostgreSQL manual](https://www.postgresql.org/docs/15/index.html) for the details. 📚
""",
    """### {n}.2 The service

```python
import asyncio
from contextlib import asynccontextmanager


@asynccontextmanager
async def lifespan(app):
    pool = await create_pool(dsn=app.settings.database_url, min_size=2, max_size=10)
    try:
        yield {{"pool": pool}}
    finally:
        await pool.close()


async def handle(request):
    async with request.state.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT count(*) AS n FROM orders WHERE user_id = $1", request.user)
    return {{"orders": row["n"]}}  # 返回订单数量
```

The pool is created once per process; *never* open a connection per request, it costs 5–20 ms.
""",
    """### {n}.3 性能对比 📊

| 方案 | 每秒请求数 | p95 延迟 | 内存 |
|---|---:|---:|---:|
| 同步 Flask + gunicorn (4 workers) | 1 200 | 85 ms | 240 MB |
| asyncio + uvloop | 4 800 | 22 ms | 95 MB |
| asyncio + uvloop + 连接池 | 6 100 | 14 ms | 110 MB |

可以看到，**连接池**带来的提升最明显（约 27%）。不过要注意：数字取决于你的硬件 🖥️ 和查询复杂度。
""",
    """### {n}.4 Deployment checklist

- [ ] Set `DATABASE_URL` and keep secrets out of the image 🔐
- [ ] Run migrations at start-up (`alembic upgrade head`)
- [ ] Health check: `GET /healthz` must answer within *200 ms*
- [ ] Logs as JSON lines, one event per line
  - include the request id
  - never the `Authorization` header
- [ ] Back up the database daily, and **test the restore** ⚠️

```bash
docker build -t orders-api .
docker run -d --name orders -p 127.0.0.1:8080:8080 \\
  --env-file .env --restart unless-stopped orders-api
curl -fsS http://127.0.0.1:8080/healthz && echo "ok 👍"
```
""",
    """### {n}.5 常见问题

**问：为什么我的服务在高峰期会超时？** 🤔

答：最常见的原因有三个：

1. 数据库连接池太小，请求在排队等待连接；
2. 某个查询缺少索引，例如 `WHERE created_at > now() - interval '1 day'`；
3. 在事件循环里执行了阻塞调用（比如 `time.sleep()` 或同步的 `requests.get()`）。

```sql
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at);
EXPLAIN ANALYZE SELECT * FROM orders WHERE created_at > now() - interval '1 day';
```

修复之后，p95 延迟通常能从几百毫秒降到 *20 毫秒以内* 🎉。
""",
]


CLOSING = "That is the whole setup; adjust the numbers to your own load and measure again. "


def realistic_answer(length: int = 12_000) -> str:
    """``length`` characters of well-formed Markdown: whole sections (no fence left open), then
    a plain closing paragraph that fills up to the exact length."""
    parts: list[str] = []
    size = 0  # of "\n".join(parts) + "\n"
    part_number = 1
    while True:
        for section in SECTIONS:
            block = section.format(n=part_number)
            if size + len(block) + 1 > length - len(CLOSING):
                body = "\n".join(parts) + "\n" if parts else ""
                fill = length - len(body)
                closing = (CLOSING * (1 + fill // len(CLOSING)))[:fill]
                return body + closing[:-1] + "."  # a sentence end, not a dangling space
            parts.append(block)
            size += len(block) + 1
        part_number += 1
