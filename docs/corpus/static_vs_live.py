#!/usr/bin/env python3
"""Static verdicts against live verdicts on the corpus (issue 14's agreement table).

Usage (from the project root, mirrors under /work/.mirror or --mirrors):
    python3 docs/corpus/static_vs_live.py [--mirrors DIR] [short ...]

For each repository of ../shared/corpus.tsv, runs `cargo xtask verify --all --skip-commands`
twice on the same scratch copy (see compare.py): `--live off` (the static reader alone, what
`check-migrations` and a pre-commit hook decide) and `--live on` (the history applied to a
real Postgres and probed). Every table the live run reports is set against the static one:
agree when the verdicts are equal; a static `unverified` counts as disagreement; "static
protected, live not" is the failure that must never happen. Prints one row per table that
disagrees and a summary row per repository.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("only", nargs="*")
    a = ap.parse_args()
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(compare.SHARED, "corpus.tsv"))][1:]
    summary = []
    for short, repo, commit, sub in rows:
        if a.only and short not in a.only:
            continue
        static = compare.run(short, repo, commit, sub, a.mirrors, "off") or {}
        live = compare.run(short, repo, commit, sub, a.mirrors, "on") or {}
        s = {t["name"]: t["verdict"] for t in static.get("tables", [])}
        l = {t["name"]: t["verdict"] for t in live.get("tables", [])}
        agree = unverified = other = worse = 0
        for name in sorted(l):
            lv, sv = l[name], s.get(name)
            if sv == lv:
                agree += 1
                continue
            if sv == "protected":
                worse += 1
                kind = "STATIC-PROTECTED-LIVE-NOT"
            elif sv == "unverified":
                unverified += 1
                kind = "static-unverified"
            else:
                other += 1
                kind = "differs"
            print(f"{short:22s} {name:44s} static={sv!s:12s} live={lv:12s} {kind}")
        summary.append((short, len(l), agree, unverified, other, worse))
    print()
    print(f"{'repo':22s} {'tables':>6s} {'agree':>6s} {'%':>6s} {'static-unverified':>17s} {'differs':>7s} {'static-prot/live-not':>20s}")
    for short, n, agree, unverified, other, worse in summary:
        pct = 100.0 * agree / n if n else 100.0
        print(f"{short:22s} {n:6d} {agree:6d} {pct:6.1f} {unverified:17d} {other:7d} {worse:20d}")


if __name__ == "__main__":
    main()
