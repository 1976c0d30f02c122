#!/usr/bin/env python3
"""Compare the tool's table verdicts on the corpus with the verdicts we read by hand.

Usage (from the project root, with the mirrors fetched under /work/.mirror or --mirrors):
    python3 docs/corpus/compare.py [--mirrors DIR] [--live on|off] [short ...]

For each repository of ../shared/corpus.tsv it copies the subtree at its commit into a scratch
git repository with our config (docs/corpus/configs/<short>.xtask.toml), runs
`cargo xtask verify --all --skip-commands --live ...` (JSON), and sets each table's verdict
against docs/corpus/truth-<short>.md ("true verdict" column). Prints one row per table and a
summary per repository: agree, false "protected" (the tool calls an open table protected),
false alarms (the tool calls a protected / not-a-tenant table unprotected), undecided
(unverified), not judged (exempt, or not reported).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))


def truth(short):
    """table name (schema-qualified) -> true verdict word."""
    path = os.path.join(HERE, f"truth-{short}.md")
    out = {}
    header = None
    for line in open(path, encoding="utf-8"):
        if not line.startswith("|"):
            header = None if not line.strip() else header
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            if "true verdict" in cells:
                header = cells
            continue
        if set(cells[0]) <= set("-: "):
            continue
        if len(cells) < len(header):
            continue
        name = re.sub(r"[`*]", "", cells[0]).split()[0]
        if "." not in name:
            name = "public." + name
        verdict = re.sub(r"[`*]", "", cells[header.index("true verdict")]).strip().lower()
        verdict = verdict.split()[0] if verdict else ""
        out[name] = verdict
    return out


def classify(true, tool):
    """agree / agree-exempt / agree-dropped / false-protected / false-alarm / undecided / not-judged.

    A table the history drops is in no report: that agrees with a truth of "dropped". A
    table our config exempts (with its reason) agrees with a truth that it is no tenant
    table or used by the service role only; exempting a table the truth calls open would
    hide a leak, and stays "not-judged".
    """
    if tool is None:
        return "agree-dropped" if "dropped" in true else "not-judged"
    if tool == "unverified":
        return "undecided"
    if tool == "exempt":
        if true.startswith(("not-tenant-table", "service-only")):
            return "agree-exempt"
        return "not-judged"
    open_truth = true.startswith("unprotected")
    if open_truth:
        return "agree" if tool == "unprotected" else "FALSE-PROTECTED"
    # protected, public-read-by-design, not-tenant-table, service-only, dropped...
    return "agree" if tool == "protected" else "false-alarm"


def checkout(repo, commit, sub, mirrors, prefix):
    """The repository's subtree at its commit, in a new scratch git repository (no commit)."""
    git_dir = os.path.join(mirrors, repo.replace("/", "+"), "repo")
    scratch = tempfile.mkdtemp(prefix=prefix)
    archive = subprocess.run(["git", "-C", git_dir, "archive", commit, sub], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", scratch], input=archive.stdout, check=True)
    subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
    return scratch


def run(short, repo, commit, sub, mirrors, live):
    scratch = checkout(repo, commit, sub, mirrors, f"corpus-{short}-")
    cfg = os.path.join(HERE, "configs", f"{short}.xtask.toml")
    with open(cfg, encoding="utf-8") as src, open(os.path.join(scratch, "xtask.toml"), "w", encoding="utf-8") as dst:
        dst.write(src.read())
    subprocess.run(["git", "add", "-A"], cwd=scratch, check=True)
    subprocess.run(["git", "-c", "user.email=x@y", "-c", "user.name=x", "commit", "-qm", "corpus"], cwd=scratch, check=True)
    out = subprocess.run(
        ["cargo", "xtask", "verify", "--repo", scratch, "--all", "--skip-commands", "--live", live, "--format", "json"],
        cwd=ROOT, capture_output=True, text=True,
    )
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(out.stderr[-2000:])
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--live", default="on")
    ap.add_argument("only", nargs="*")
    a = ap.parse_args()
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(SHARED, "corpus.tsv"))][1:]
    totals = {}
    print(f"{'repo':22s} {'table':40s} {'true':24s} {'tool':12s} result")
    for short, repo, commit, sub in rows:
        if a.only and short not in a.only:
            continue
        t = truth(short)
        report = run(short, repo, commit, sub, a.mirrors, a.live)
        tool = {x["name"]: x["verdict"] for x in (report or {}).get("tables", [])}
        counts = {}
        for name, verdict in sorted(t.items()):
            got = tool.get(name)
            res = classify(verdict, got)
            counts[res] = counts.get(res, 0) + 1
            print(f"{short:22s} {name:40s} {verdict:24s} {str(got):12s} {res}")
        totals[short] = counts
    print()
    print(f"{'repo':22s} {'read':>5s} {'agree':>6s} {'(exempt)':>8s} {'(dropped)':>9s} {'false-prot':>10s} {'false-alarm':>11s} {'undecided':>9s} {'not-judged':>10s}")
    for short, c in totals.items():
        n = sum(c.values())
        agree = c.get('agree', 0) + c.get('agree-exempt', 0) + c.get('agree-dropped', 0)
        print(f"{short:22s} {n:5d} {agree:6d} {c.get('agree-exempt', 0):8d} {c.get('agree-dropped', 0):9d} {c.get('FALSE-PROTECTED', 0):10d} {c.get('false-alarm', 0):11d} {c.get('undecided', 0):9d} {c.get('not-judged', 0):10d}")


if __name__ == "__main__":
    main()
