#!/usr/bin/env python3
"""Verdicts with the config `cargo xtask init` writes against those with our hand-written one.

Usage (from the project root, mirrors under /work/.mirror or --mirrors):
    python3 docs/corpus/init_vs_hand.py [--mirrors DIR] [--live on|off] [short ...]

For each repository of ../shared/corpus.tsv: its subtree at the pinned commit is copied into a
scratch git repository (as compare.py does); `cargo xtask init --print` writes the inferred
config; `cargo xtask verify --all --skip-commands --live on --format json` runs once with it
and once with docs/corpus/configs/<short>.xtask.toml. Every table verdict and every handler's
auth/validation verdict of either run is set against the other. Prints the disagreements and
a summary row per repository (issue 17: >= 90% equal).

A table for which the hand-written config states a decision only a person can make
(`exempt_tables`, or `public_read` / `service_only` with a reason in `[[tenancy.tables]]`) is
counted apart: init never writes those (it asks), so the verdict with its config is the
verdict before the decision. "decided" = equal once those tables are set aside.
"""
import argparse
import json
import os
import subprocess
import sys
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def commit_all(d):
    subprocess.run(["git", "add", "-A"], cwd=d, check=True)
    subprocess.run(["git", "-c", "user.email=x@y", "-c", "user.name=x", "commit", "-qm", "c", "--allow-empty"], cwd=d, check=True)


def verify(d, live):
    out = subprocess.run(
        ["cargo", "xtask", "verify", "--repo", d, "--all", "--skip-commands", "--live", live, "--format", "json"],
        cwd=compare.ROOT, capture_output=True, text=True,
    )
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(out.stderr[-2000:])
        return {}


def verdicts(report):
    out = {}
    for t in report.get("tables", []):
        out[("table", t["name"])] = t["verdict"]
    for r in report.get("routes", []):
        for h in r.get("handlers", []):
            key = f'{r["path"]}#{h["method"]}'
            out[("auth", key)] = h.get("auth")
            out[("input", key)] = h.get("validation")
    return out


def human_decisions(cfg_text):
    """Tables whose verdict the hand-written config sets by a person's decision."""
    cfg = tomllib.loads(cfg_text)
    ten = cfg.get("tenancy", {})
    out = set()
    for t in ten.get("exempt_tables", []):
        name = t["table"] if isinstance(t, dict) else t
        out.add(name if "." in name else "public." + name)
    for t in ten.get("tables", []):
        if t.get("public_read") or t.get("service_only"):
            name = t["table"]
            out.add(name if "." in name else "public." + name)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--live", default="on")
    ap.add_argument("only", nargs="*")
    a = ap.parse_args()
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(compare.SHARED, "corpus.tsv"))][1:]
    summary = []
    for short, repo, commit, sub in rows:
        if a.only and short not in a.only:
            continue
        d = compare.checkout(repo, commit, sub, a.mirrors, f"initcmp-{short}-")
        commit_all(d)
        init = subprocess.run(["cargo", "xtask", "init", "--repo", d, "--print"], cwd=compare.ROOT, capture_output=True, text=True)
        with open(os.path.join(d, "xtask.toml"), "w", encoding="utf-8") as f:
            f.write(init.stdout)
        commit_all(d)
        by_init = verdicts(verify(d, a.live))
        with open(os.path.join(compare.HERE, "configs", f"{short}.xtask.toml"), encoding="utf-8") as f:
            hand_cfg = f.read()
        with open(os.path.join(d, "xtask.toml"), "w", encoding="utf-8") as f:
            f.write(hand_cfg)
        commit_all(d)
        by_hand = verdicts(verify(d, a.live))
        decided_by_person = human_decisions(hand_cfg)
        keys = sorted(set(by_init) | set(by_hand))
        same = {"table": [0, 0], "auth": [0, 0], "input": [0, 0], "decided": [0, 0]}
        for k in keys:
            i, h = by_init.get(k), by_hand.get(k)
            same[k[0]][1] += 1
            person = k[0] == "table" and k[1] in decided_by_person
            if not person:
                same["decided"][1] += 1
            if i == h:
                same[k[0]][0] += 1
                if not person:
                    same["decided"][0] += 1
            else:
                why = "a person's decision in the hand-written config" if person else ""
                print(f"{short:22s} {k[0]:6s} {k[1]:60s} init={i!s:12s} hand={h!s:12s} {why}")
        summary.append((short, same))
    print()
    print(f"{'repo':22s} {'tables equal':>14s} {'auth equal':>12s} {'input equal':>12s} {'all %':>6s} {'without decisions':>18s}")
    for short, s in summary:
        parts = [s["table"], s["auth"], s["input"]]
        eq = sum(v[0] for v in parts)
        n = sum(v[1] for v in parts)
        cell = lambda v: f"{v[0]}/{v[1]}"
        d = s["decided"]
        print(f"{short:22s} {cell(s['table']):>14s} {cell(s['auth']):>12s} {cell(s['input']):>12s} {100.0 * eq / n if n else 100.0:6.1f} {cell(d):>18s}")


if __name__ == "__main__":
    main()
