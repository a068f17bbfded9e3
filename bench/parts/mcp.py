"""The MCP server (issue 14): what the tool set costs an assistant's context, and what a
tool call costs against the same REST call, on the benchmark's gunicorn server.

- `mcp_tools_list_bytes` / `mcp_tools_list_tokens`: the `tools/list` result for a
  read-write key, as compact JSON; tokens counted roughly as characters / 4 (no
  tokenizer: the target, < 8,000, is about that order of magnitude). Target < 8,000.
- `mcp_story_get_ms` vs `rest_story_get_ms`, `mcp_ready_list_ms` vs `rest_ready_list_ms`:
  medians over HTTP, each pair timed alternately (bench.core.timeit_pair). The MCP
  request is what the SDK's client sends on a 2026-07-28 connection (one POST, no
  session); both go through urllib, so the client's own cost is the same on both sides.
  Targets: `mcp_story_get_ratio`, `mcp_ready_list_ratio` ≤ 1.3.
"""

from __future__ import annotations

import json
import urllib.request

from bench.core import REPEAT, Context, record, results, rows, timeit_pair

PROJECT = "bench-00"
STORY = "B00-00042"
VERSION = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def _post(url: str, headers: dict, method: str, params: dict, name: str | None = None) -> dict:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}}).encode()
    extra = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Mcp-Protocol-Version": VERSION,
        "Mcp-Method": method,
        **({"Mcp-Name": name} if name else {}),
    }
    req = urllib.request.Request(url, data=body, headers={**headers, **extra}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        answer = json.loads(r.read())
    if "error" in answer:
        raise RuntimeError(f"{method} -> {answer['error']}")
    return answer["result"]


def _call(url: str, headers: dict, tool: str, arguments: dict) -> dict:
    result = _post(url, headers, "tools/call", {"name": tool, "arguments": arguments}, name=tool)
    if result.get("isError"):
        raise RuntimeError(f"{tool} -> {result['content'][0]['text'][:300]}")
    return result


def _get(url: str, headers: dict) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        if r.status != 200:
            raise RuntimeError(f"{url} -> {r.status}")
        return r.read()


def run(ctx: Context) -> None:
    mcp = f"{ctx.base}/mcp"
    api = f"{ctx.base}/api/v1/projects/{PROJECT}"
    listing = _post(mcp, ctx.headers, "tools/list", {})
    text = json.dumps(listing["tools"], separators=(",", ":"), ensure_ascii=False)
    results["mcp_tools"] = len(listing["tools"])
    results["mcp_tools_list_bytes"] = len(text.encode())
    results["mcp_tools_list_tokens"] = round(len(text) / 4)
    rows.append(("mcp_tools_list_bytes", str(results["mcp_tools_list_bytes"]), "", f"{results['mcp_tools']} tools"))
    rows.append(("mcp_tools_list_tokens", str(results["mcp_tools_list_tokens"]), "", "< 8000 (chars / 4)"))

    pairs = {
        "story_get": (
            lambda: _get(f"{api}/stories/{STORY}/", ctx.headers),
            lambda: _call(mcp, ctx.headers, "story_get", {"project": PROJECT, "key": STORY}),
        ),
        "ready_list": (
            lambda: _get(f"{api}/ready/?limit=100", ctx.headers),
            lambda: _call(mcp, ctx.headers, "ready_list", {"project": PROJECT, "limit": 100}),
        ),
    }
    for name, (rest, tool) in pairs.items():
        rest_ms, mcp_ms = timeit_pair(rest, tool, repeat=max(REPEAT, 100), warmup=10)
        record(f"rest_{name}_ms", *rest_ms, "the same REST call")
        record(f"mcp_{name}_ms", *mcp_ms, "")
        results[f"mcp_{name}_ratio"] = round(mcp_ms[0] / rest_ms[0], 2)
        rows.append((f"mcp_{name}_ratio", str(results[f"mcp_{name}_ratio"]), "", "≤ 1.3"))
