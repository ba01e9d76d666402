#!/usr/bin/env python3
"""Summarises one bench/profile.sh run into summary.txt (short text for BENCHMARKS.md) and
profile-summary.json (the same figures, for bench/report.py).

Reads from --dir: allocs.json + allocs.txt (the allocation pass: magnetar-bench's result and
malloc_counter's dumps at the window's edges), load.json (magnetar-bench's result for the
profiled pass) and the profiler's reports (perf-self.txt, perf-children.txt, perf-stat.csv, or
callgrind-self.txt, callgrind-inclusive.txt). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re

# Self cost grouped by where the code comes from, first match wins. Patterns apply to the
# (simplified) function name and to its object file.
COMPONENTS = [
    ("kernel (system calls, TCP loopback)", r"\[kernel|kallsyms|^entry_SYSCALL|^__x64_sys"),
    ("malloc / free", r"^(malloc|free|cfree|calloc|realloc|_int_malloc|_int_free|_int_realloc|"
                      r"malloc_consolidate|tcache_|__libc_malloc|__libc_free|__libc_calloc|"
                      r"__libc_realloc|unlink_chunk|operator new|operator delete)"),
    ("memcpy / memmove / string functions", r"^(__)?(mem|str)[a-z]*(_[a-z0-9_]+)?$"),
    ("OpenSSL (JWT signature)", r"libcrypto|libssl|^(SHA256|HMAC|EVP_|sha256_)"),
    ("Boost.Beast (HTTP parsing, serialising)", r"^boost::beast::"),
    ("Boost.JSON (request parsing, responses)", r"^boost::json::|libboost_json"),
    ("Boost.Asio (event loop, sockets)", r"^boost::asio::"),
    ("fmt / spdlog", r"^(fmt::|spdlog::)"),
    ("magnetar relay (routes, models)", r"^magnetar::relay::"),
    ("magnetar auth (JWT check, users)", r"^magnetar::auth::"),
    ("magnetar core (topics, fan-out)", r"^magnetar::core::"),
    ("magnetar storage", r"^magnetar::storage::"),
    ("magnetar http / net / ws", r"^magnetar::(http|net|ws)::"),
    ("magnetar common", r"^magnetar::"),
    ("C++ standard library", r"^std::|^__gnu_cxx::|libstdc\+\+"),
    ("libc (other)", r"libc\.so|libc-|^__"),
]


def _strip_groups(s: str, open_c: str, close_c: str, keep: str) -> str:
    """Replaces every top-level open_c...close_c group by `keep`."""
    out, depth = [], 0
    for c in s:
        if c == open_c:
            if depth == 0:
                out.append(keep)
            depth += 1
        elif c == close_c and depth:
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def simplify(name: str) -> str:
    """A readable one-line function name: no template arguments, parameter lists or return
    type; lambdas as {lambda#N}; callgrind's recursion suffix ('2) dropped."""
    s = re.sub(r"'\d+$", "", name.strip())
    if s.startswith("["):  # "[libcrypto.so.3]": unnamed code of a library
        return s
    s = re.sub(r"^(virtual thunk to |non-virtual thunk to )", "", s)
    s = s.replace("(anonymous namespace)", "{anon}")
    s = s.replace("operator<<", "operator_shl").replace("operator<", "operator_lt")
    s = s.replace("operator()", "operator_call")
    s = re.sub(r"\{lambda\(", "{lambda(", s)
    s = _strip_groups(s, "<", ">", "<…>")
    s = _strip_groups(s, "(", ")", "()")
    s = re.sub(r"\{lambda\(\)#(\d+)\}", r"{lambda#\1}", s)
    s = re.sub(r"\s+(const|volatile|&|&&)$", "", s)
    s = re.sub(r"\(\)$", "", s.strip())
    s = re.sub(r"\(\)\s+const$", "", s)
    s = re.sub(r"\(\)$", "", s.strip())
    s = s.replace("[abi:cxx11]", "")
    if " " in s and not s.startswith("operator "):
        tokens = s.split(" ")  # a return type in front ("void std::__invoke_impl")
        s = tokens[-1] if not tokens[-1].startswith("<") else " ".join(tokens[-2:])
    s = s.replace("operator_shl", "operator<<").replace("operator_lt", "operator<")
    s = s.replace("operator_call", "operator()")
    return s[:110]


def component(name: str, obj: str) -> str:
    for label, pattern in COMPONENTS:
        if re.search(pattern, name) or (obj and re.search(pattern, obj)):
            return label
    return "other"


def parse_callgrind(path: str):
    """Rows (count, function, object) and the program total from callgrind_annotate output."""
    rows, total = [], None
    line_re = re.compile(r"^\s*([\d,]+)\s+(?:\([\s\d.]+%\)\s+)?(.*?)\s*(?:\[([^\]]*)\])?\s*$")
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return rows, total
    for line in lines:
        m = line_re.match(line)
        if not m or not m.group(2):
            continue
        count = int(m.group(1).replace(",", ""))
        what = m.group(2)
        if what.startswith("PROGRAM TOTALS"):
            total = count
            continue
        # "file:function": split at the first single colon (function names contain "::").
        fm = re.match(r"^(.*?[^:]):(?!:)(.*)$", what)
        func = fm.group(2) if fm else what
        obj = m.group(3) or ""
        if re.fullmatch(r"0x[0-9a-f]+('\d+)?", func) and obj:
            func = f"[{os.path.basename(obj)}]"  # code without symbols in that library
        rows.append((count, func, obj))
    return rows, total


def parse_perf(path: str, with_dso: bool):
    """Rows (percent, function, object) from perf report --stdio."""
    rows = []
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return rows
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        percents = [p for p in parts if p.endswith("%")]
        if not percents:
            continue
        # The first column: self (--no-children) or children (inclusive, --children).
        pct = float(percents[0].rstrip("%"))
        rest = line.rsplit(percents[-1], 1)[1]
        rest = re.sub(r"(\s+-)+\s*$", "", rest).strip()  # empty srcline-like columns
        obj = ""
        if with_dso:
            obj, _, rest = rest.partition(" ")
            rest = rest.strip()
        rest = re.sub(r"^\[[.kHu]\]\s+", "", rest)
        rows.append((pct, rest, obj))
    return rows


def read_allocs(d: str) -> dict:
    out = {}
    try:
        dumps = [{k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
                 for line in open(os.path.join(d, "allocs.txt")) if line.strip()]
        run = json.load(open(os.path.join(d, "allocs.json")))
    except (OSError, ValueError):
        return out
    if len(dumps) >= 2 and run.get("requests"):
        n = run["requests"]
        out["publishes"] = n
        out["allocations_per_publish"] = round((dumps[-1]["allocs"] - dumps[0]["allocs"]) / n, 1)
        out["bytes_per_publish"] = round((dumps[-1]["bytes"] - dumps[0]["bytes"]) / n)
        out["allocation_run_requests_per_s"] = run.get("requests_per_s")
        if run.get("server_cpu_percent"):
            out["server_cpu_percent"] = run["server_cpu_percent"]
            out["server_system_cpu_percent"] = run.get("server_system_cpu_percent")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--profiler", required=True, choices=["perf", "callgrind"])
    ap.add_argument("--connections", type=int, default=0)
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    d = a.dir

    doc: dict = {"profiler": a.profiler, "connections": a.connections}
    doc.update(read_allocs(d))
    try:
        load = json.load(open(os.path.join(d, "load.json")))
    except (OSError, ValueError):
        load = {}
    publishes = load.get("requests") or 0
    doc["profiled_publishes"] = publishes

    groups: dict[str, float] = {}
    top_self, top_incl = [], []
    if a.profiler == "callgrind":
        self_rows, total = parse_callgrind(os.path.join(d, "callgrind-self.txt"))
        incl_rows, _ = parse_callgrind(os.path.join(d, "callgrind-inclusive.txt"))
        if total:
            if publishes:
                doc["instructions_per_publish"] = round(total / publishes)
            by_name: dict[str, int] = {}
            for count, func, obj in self_rows:
                name = simplify(func)
                g = component(name, obj)
                groups[g] = groups.get(g, 0) + 100.0 * count / total
                by_name[name] = by_name.get(name, 0) + count
            top_self = [(100.0 * c / total, f) for f, c in
                        sorted(by_name.items(), key=lambda kv: -kv[1])[: a.top]]
            seen = set()
            for c, f, _ in incl_rows:
                name = simplify(f)
                if name.startswith("magnetar::") and name not in seen:
                    seen.add(name)
                    top_incl.append((100.0 * c / total, name))
                if len(top_incl) >= a.top:
                    break
        doc["note"] = ("instructions executed in user space: callgrind does not see the kernel "
                       "(system calls, the loopback TCP stack)")
    else:
        self_rows = parse_perf(os.path.join(d, "perf-self.txt"), with_dso=True)
        incl_rows = parse_perf(os.path.join(d, "perf-children.txt"), with_dso=False)
        for pct, func, obj in self_rows:
            g = component(simplify(func), obj)
            groups[g] = groups.get(g, 0) + pct
        top_self = [(p, simplify(f)) for p, f, _ in sorted(self_rows, reverse=True)[: a.top]]
        seen = set()
        for pct, f, _ in incl_rows:
            name = simplify(f)
            if name.startswith("magnetar::") and name not in seen:
                seen.add(name)
                top_incl.append((pct, name))
            if len(top_incl) >= a.top:
                break
        try:
            for line in open(os.path.join(d, "perf-stat.csv")):
                fields = line.strip().split(",")
                if len(fields) > 2 and fields[2].startswith("instructions") and fields[0].isdigit():
                    if publishes:
                        doc["instructions_per_publish"] = round(int(fields[0]) / publishes)
        except OSError:
            pass
        doc["note"] = "perf samples on the server's CPU time, kernel included"

    doc["self_by_component_percent"] = {k: round(v, 1) for k, v in
                                        sorted(groups.items(), key=lambda kv: -kv[1]) if v >= 0.1}
    doc["top_self"] = [{"percent": round(p, 1), "function": f} for p, f in top_self]
    doc["top_inclusive_magnetar"] = [{"percent": round(p, 1), "function": f} for p, f in top_incl]

    with open(os.path.join(d, "profile-summary.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    lines = [f"Publish path profile ({a.profiler}; memory engine, one I/O thread, "
             f"{a.connections} keep-alive connections publishing single messages; "
             f"{publishes:,} publishes in the profiled window).", ""]
    facts = []
    if "instructions_per_publish" in doc:
        facts.append(f"instructions per publish (server, user space{'' if a.profiler == 'callgrind' else ' + kernel'}): "
                     f"{doc['instructions_per_publish']:,}")
    if "allocations_per_publish" in doc:
        facts.append(f"heap allocations per publish: {doc['allocations_per_publish']} "
                     f"({doc['bytes_per_publish']:,} bytes; malloc_counter over "
                     f"{doc['publishes']:,} publishes)")
    if doc.get("server_cpu_percent"):
        facts.append(f"server CPU without a profiler (the allocation pass, "
                     f"{doc.get('allocation_run_requests_per_s') or 0:,} publishes/s): "
                     f"{doc['server_cpu_percent']}% of a core, of which "
                     f"{doc.get('server_system_cpu_percent')}% in the kernel")
    lines += [f"* {x}" for x in facts]
    lines += ["", f"Self cost by component; {doc['note']}:", ""]
    lines += [f"  {v:5.1f}%  {k}" for k, v in doc["self_by_component_percent"].items()]
    lines += ["", "Hottest functions (self):", ""]
    lines += [f"  {p:5.1f}%  {f}" for p, f in top_self]
    lines += ["", "Magnetar functions by inclusive cost (the request's path):", ""]
    lines += [f"  {p:5.1f}%  {f}" for p, f in top_incl]
    with open(os.path.join(d, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
