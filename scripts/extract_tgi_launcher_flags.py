#!/usr/bin/env python3
"""Extract TGI's text-generation-launcher clap flags and enum values from launcher/src/main.rs into JSON."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

TGI_REPO = "huggingface/text-generation-inference"
MAIN_RS = "launcher/src/main.rs"
GLOBALS_PY = "server/text_generation_server/models/globals.py"
ATTENTION_INIT_PY = "server/text_generation_server/layers/attention/__init__.py"
SERVER_CLI_PY = "server/text_generation_server/cli.py"
ENTRYPOINT_SH = "tgi-entrypoint.sh"
CARGO_LOCK = "Cargo.lock"

# Rust types that clap parses with `FromStr` and what they accept.
_INT_TYPES = {"usize", "u8", "u16", "u32", "u64", "i32", "i64", "isize"}
_FLOAT_TYPES = {"f32", "f64"}


def kebab_case(name: str) -> str:
    """Convert a Rust identifier to kebab-case the way clap (via heck) does."""
    words: list[str] = []
    current = ""
    for i, ch in enumerate(name):
        if ch == "_":
            if current:
                words.append(current)
            current = ""
            continue
        nxt = name[i + 1] if i + 1 < len(name) else ""
        prev = name[i - 1] if i > 0 else ""
        boundary = ch.isupper() and current and (prev.islower() or prev.isdigit() or nxt.islower())
        if boundary:
            words.append(current)
            current = ""
        current += ch
    if current:
        words.append(current)
    return "-".join(w.lower() for w in words)


def _split_attr_args(body: str) -> list[str]:
    """Split the inside of `#[clap(...)]` at top-level commas."""
    parts: list[str] = []
    depth = 0
    quote = ""
    buf = ""
    for ch in body:
        if quote:
            buf += ch
            if ch == quote and not buf.endswith("\\" + quote):
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(buf.strip())
            buf = ""
            continue
        buf += ch
    if buf.strip():
        parts.append(buf.strip())
    return parts


def _parse_attr(body: str) -> dict[str, str | bool]:
    """Parse clap attribute arguments into {key: value-or-True}."""
    out: dict[str, str | bool] = {}
    for part in _split_attr_args(body):
        if "=" in part:
            key, _, val = part.partition("=")
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
                val = val[1:-1]
            out[key.strip()] = val
        else:
            out[part] = True
    return out


def _block(text: str, start: int) -> tuple[str, int]:
    """Return the text of the `{...}` block whose `{` is at or after `start`, and the block's start offset."""
    open_at = text.index("{", start)
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i], open_at + 1
    raise ValueError("unbalanced braces")


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def parse_value_enums(text: str) -> dict[str, dict[str, Any]]:
    """Parse every `#[derive(... ValueEnum ...)] enum X { ... }` with clap names and Display strings."""
    enums: dict[str, dict[str, Any]] = {}
    for m in re.finditer(r"#\[derive\(([^)]*)\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub\s+)?enum\s+(\w+)", text):
        if "ValueEnum" not in m.group(1):
            continue
        name = m.group(2)
        body, body_at = _block(text, m.end())
        variants: list[dict[str, Any]] = []
        pending_name: str | None = None
        offset = body_at
        for raw in body.splitlines(keepends=True):
            line = raw.strip()
            line_no = _line_of(text, offset)
            offset += len(raw)
            if not line or line.startswith("//"):
                continue
            attr = re.match(r"#\[(?:clap|value)\((.*)\)\]$", line)
            if attr:
                parsed = _parse_attr(attr.group(1))
                if isinstance(parsed.get("name"), str):
                    pending_name = str(parsed["name"])
                continue
            if line.startswith("#["):
                continue
            var = re.match(r"(\w+)\s*,?$", line)
            if var:
                ident = var.group(1)
                variants.append(
                    {
                        "variant": ident,
                        "value": pending_name if pending_name is not None else kebab_case(ident),
                        "line": line_no,
                    }
                )
                pending_name = None
        display: dict[str, str] = {}
        disp = re.search(r"impl\s+std::fmt::Display\s+for\s+" + re.escape(name) + r"\s*\{", text)
        if disp:
            disp_body, _ = _block(text, disp.end() - 1)
            for dm in re.finditer(re.escape(name) + r"::(\w+)\s*=>\s*\{?\s*write!\(\s*f\s*,\s*\"([^\"]*)\"", disp_body):
                display[dm.group(1)] = dm.group(2)
        for v in variants:
            if v["variant"] in display:
                v["display"] = display[v["variant"]]
        enums[name] = {"line": _line_of(text, m.start(2)), "variants": variants}
    return enums


def _inner_type(rust_type: str) -> tuple[str, bool, bool]:
    """Return (inner type, optional, multiple) for `Option<T>` / `Vec<T>` / `Option<Vec<T>>`."""
    t = rust_type.replace(" ", "")
    optional = multiple = False
    while True:
        m = re.fullmatch(r"(Option|Vec)<(.*)>", t)
        if not m:
            break
        if m.group(1) == "Option":
            optional = True
        else:
            multiple = True
        t = m.group(2)
    return t, optional, multiple


def parse_args_struct(text: str, enums: dict[str, dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """Parse the fields of `struct Args` (clap derive) into flag descriptions."""
    m = re.search(r"\bstruct\s+Args\s*\{", text)
    if not m:
        raise ValueError("struct Args not found")
    body, body_at = _block(text, m.end() - 1)
    flags: list[dict[str, Any]] = []
    attrs: dict[str, str | bool] = {}
    docs: list[str] = []
    offset = body_at
    for raw in body.splitlines(keepends=True):
        line = raw.strip()
        line_no = _line_of(text, offset)
        offset += len(raw)
        if line.startswith("///"):
            docs.append(line[3:].strip())
            continue
        if not line or line.startswith("//"):
            continue
        attr = re.match(r"#\[(?:clap|arg)\((.*)\)\]$", line)
        if attr:
            attrs.update(_parse_attr(attr.group(1)))
            continue
        field = re.match(r"(?:pub\s+)?(\w+)\s*:\s*(.+?),?$", line)
        if not field:
            continue
        ident, rust_type = field.group(1), field.group(2).rstrip(",").strip()
        inner, optional, multiple = _inner_type(rust_type)
        long_attr = attrs.get("long")
        short_attr = attrs.get("short")
        env_attr = attrs.get("env")
        is_flag = inner == "bool" and not optional and not multiple
        flag: dict[str, Any] = {
            "field": ident,
            "long": (long_attr if isinstance(long_attr, str) else kebab_case(ident)) if long_attr else None,
            "short": ((short_attr if isinstance(short_attr, str) else ident[0]) if short_attr else None),
            "env": (env_attr if isinstance(env_attr, str) else ident.upper()) if env_attr else None,
            "rust_type": rust_type,
            "takes_value": not is_flag,
            "multiple": multiple,
            "value_delimiter": _str_attr(attrs, "value_delimiter"),
            "default": _str_attr(attrs, "default_value"),
            "value_kind": _value_kind(inner, enums),
            "values": None,
            "line": line_no,
            "doc": " ".join(docs).strip() or None,
        }
        if inner in enums:
            flag["values"] = [v["value"] for v in enums[inner]["variants"]]
            flag["value_enum"] = inner
        elif inner == "bool" and not is_flag:
            flag["values"] = ["true", "false"]
        flags.append(flag)
        attrs = {}
        docs = []
    return _line_of(text, m.start()), flags


def _str_attr(attrs: dict[str, str | bool], key: str) -> str | None:
    val = attrs.get(key)
    return val if isinstance(val, str) else None


def _value_kind(inner: str, enums: dict[str, dict[str, Any]]) -> str:
    if inner in enums:
        return "enum"
    if inner in _INT_TYPES:
        return "unsigned_int" if inner.startswith("u") else "int"
    if inner in _FLOAT_TYPES:
        return "float"
    if inner == "bool":
        return "bool"
    return "string"


def parse_server_env(globals_py: str | None, attention_init_py: str | None) -> dict[str, Any]:
    """Extract the server-side constraints on ATTENTION / PREFIX_CACHING / USE_FLASH_ATTENTION."""
    out: dict[str, Any] = {}
    if globals_py is not None:
        exp = re.search(r"_expected\s*=\s*\{([^}]*)\}", globals_py)
        if not exp:
            raise ValueError("ATTENTION _expected set not found in globals.py")
        out["ATTENTION"] = {
            "values": re.findall(r"\"([^\"]+)\"", exp.group(1)),
            "required_by_server": bool(re.search(r"os\.environ\[\"ATTENTION\"\]", globals_py)),
            "path": GLOBALS_PY,
            "line": _line_of(globals_py, exp.start()),
        }
        pc = re.search(
            r"PREFIX_CACHING\s*=\s*os\.environ\[\"PREFIX_CACHING\"\]\.lower\(\)\s*in\s*\{([^}]*)\}",
            globals_py,
        )
        if not pc:
            raise ValueError("PREFIX_CACHING parsing not found in globals.py")
        only = re.search(r"if\s+PREFIX_CACHING\s+and\s+ATTENTION\s+not\s+in\s*\{([^}]*)\}", globals_py)
        out["PREFIX_CACHING"] = {
            "true_values": re.findall(r"\"([^\"]+)\"", pc.group(1)),
            "case_insensitive": True,
            "note": "any other value means false",
            "requires_attention_in": re.findall(r"\"([^\"]+)\"", only.group(1)) if only else None,
            "path": GLOBALS_PY,
            "line": _line_of(globals_py, pc.start()),
        }
    if attention_init_py is not None:
        ufa = re.search(
            r"os\.getenv\(\"USE_FLASH_ATTENTION\",\s*\"\"\)\.lower\(\)\s*==\s*\"(\w+)\"",
            attention_init_py,
        )
        if not ufa:
            raise ValueError("USE_FLASH_ATTENTION check not found")
        out["USE_FLASH_ATTENTION"] = {
            "disable_value": ufa.group(1),
            "case_insensitive": True,
            "note": "only the disable value changes behaviour (no flash layers); other values are ignored",
            "path": ATTENTION_INIT_PY,
            "line": _line_of(attention_init_py, ufa.start()),
        }
    return out


def parse_server_cli(cli_py: str, enums: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Extract the server's own enums and the dtype/quantize exclusion from server/.../cli.py."""
    out: dict[str, Any] = {"path": SERVER_CLI_PY, "enums": {}}
    for name in ("Quantization", "Dtype", "KVCacheDtype"):
        m = re.search(r"class\s+" + name + r"\(str,\s*Enum\):\n((?:\s+\w+\s*=\s*\"[^\"]*\"\n)+)", cli_py)
        if not m:
            raise ValueError(f"server enum {name} not found in cli.py")
        values = re.findall(r"=\s*\"([^\"]*)\"", m.group(1))
        out["enums"][name] = {"values": values, "line": _line_of(cli_py, m.start())}
        launcher = {v.get("display", v["value"]) for v in enums[name]["variants"]}
        missing = sorted(launcher - set(values))
        if missing:
            raise ValueError(f"launcher passes {name} values the server does not accept: {missing}")
    m = re.search(r"if\s+dtype\s+is\s+not\s+None\s+and\s+quantize\s+not\s+in\s*\{([^}]*)\}", cli_py)
    if not m:
        raise ValueError("dtype/quantize exclusion not found in cli.py")
    out["dtype_allowed_with_quantize"] = re.findall(r"\"([^\"]+)\"", m.group(1))
    out["dtype_quantize_line"] = _line_of(cli_py, m.start())
    return out


def extract(
    main_rs: str,
    *,
    commit: str | None,
    tag: str | None,
    globals_py: str | None = None,
    attention_init_py: str | None = None,
    entrypoint_sh: str | None = None,
    cargo_lock: str | None = None,
    server_cli_py: str | None = None,
) -> dict[str, Any]:
    """Build the fact document from the given source texts."""
    enums = parse_value_enums(main_rs)
    args_line, flags = parse_args_struct(main_rs, enums)
    names = {f["long"] for f in flags if f["long"]}
    for required in ("quantize", "dtype", "kv-cache-dtype", "model-id", "port"):
        if required not in names:
            raise ValueError(f"extraction looks wrong: --{required} not found")
    doc: dict[str, Any] = {
        "source": {
            "repo": TGI_REPO,
            "tag": tag,
            "commit": commit,
            "path": MAIN_RS,
            "struct_args_line": args_line,
            "extractor": "scripts/extract_tgi_launcher_flags.py",
        },
        "flags": flags,
        "short_conflicts": _short_conflicts(flags),
        "enums": enums,
        "quantize_values": [v["value"] for v in enums["Quantization"]["variants"]],
        "dtype_values": [v["value"] for v in enums["Dtype"]["variants"]],
        "kv_cache_dtype_values": [v["value"] for v in enums["KVCacheDtype"]["variants"]],
    }
    if cargo_lock is not None:
        clap = re.findall(r"name = \"clap\"\nversion = \"([^\"]+)\"", cargo_lock)
        doc["source"]["clap_versions"] = clap
    if globals_py is not None or attention_init_py is not None:
        doc["server_env"] = parse_server_env(globals_py, attention_init_py)
    if server_cli_py is not None:
        doc["server_cli"] = parse_server_cli(server_cli_py, enums)
    if entrypoint_sh is not None:
        execs = [ln.strip() for ln in entrypoint_sh.splitlines() if ln.strip().startswith("exec ")]
        exec_line = execs[0] if execs else None
        doc["entrypoint"] = {
            "path": ENTRYPOINT_SH,
            "exec": exec_line,
            # An unquoted $@ re-splits every argument on whitespace and expands globs.
            "args_word_split": bool(exec_line and re.search(r"(?<!\")\$@(?!\")", exec_line)),
        }
    return doc


def _short_conflicts(flags: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Short options claimed by more than one field (clap only asserts this in debug builds)."""
    by_short: dict[str, list[str]] = {}
    for f in flags:
        if f["short"]:
            by_short.setdefault(f["short"], []).append(f["long"] or f["field"])
    return {k: v for k, v in sorted(by_short.items()) if len(v) > 1}


def _git_show(git_dir: str, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("main_rs", nargs="?", help="path to launcher/src/main.rs (or use --git-dir)")
    ap.add_argument("--git-dir", help=f"bare clone of {TGI_REPO}; files are read at --commit")
    ap.add_argument("--commit", help="commit the source was taken from (recorded in the output)")
    ap.add_argument("--tag", help="release tag (recorded in the output)")
    ap.add_argument("--globals-py", help=f"path to {GLOBALS_PY}")
    ap.add_argument("--attention-init-py", help=f"path to {ATTENTION_INIT_PY}")
    ap.add_argument("-o", "--output", help="write JSON here instead of stdout")
    ns = ap.parse_args(argv)

    texts: dict[str, str | None] = {}
    if ns.git_dir:
        if not ns.commit:
            ap.error("--git-dir needs --commit")
        texts["main_rs"] = _git_show(ns.git_dir, ns.commit, MAIN_RS)
        texts["globals_py"] = _git_show(ns.git_dir, ns.commit, GLOBALS_PY)
        texts["attention_init_py"] = _git_show(ns.git_dir, ns.commit, ATTENTION_INIT_PY)
        texts["server_cli_py"] = _git_show(ns.git_dir, ns.commit, SERVER_CLI_PY)
        texts["entrypoint_sh"] = _git_show(ns.git_dir, ns.commit, ENTRYPOINT_SH)
        texts["cargo_lock"] = _git_show(ns.git_dir, ns.commit, CARGO_LOCK)
    elif ns.main_rs:
        texts["main_rs"] = Path(ns.main_rs).read_text()
        texts["globals_py"] = Path(ns.globals_py).read_text() if ns.globals_py else None
        texts["attention_init_py"] = Path(ns.attention_init_py).read_text() if ns.attention_init_py else None
    else:
        ap.error("give main.rs or --git-dir")
    main_rs = texts.pop("main_rs")
    assert main_rs is not None
    doc = extract(main_rs, commit=ns.commit, tag=ns.tag, **texts)
    out = json.dumps(doc, indent=1, sort_keys=False) + "\n"
    if ns.output:
        Path(ns.output).write_text(out)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
