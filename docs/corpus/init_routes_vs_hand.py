#!/usr/bin/env python3
"""Handler verdicts with the config `cargo xtask init` writes against those with the route
configuration a maintainer wrote (docs/routes-truth.md, docs/corpus/routes/rerun.py).

    cargo build -p xtask && python3 docs/corpus/init_routes_vs_hand.py [--mirrors DIR] [short...]

For each of the six repositories of docs/corpus/routes/: its code files at the truth table's
commit are extracted as rerun.py does (a scratch directory under /tmp, never into this
repository); `init --print` writes the xtask.toml; `verify --all --skip-commands --live off
--format json` runs with it and with rerun.py's configuration (its first, for nextbase).
Every handler both runs report is compared (auth: guarded / unguarded / exempt; input:
contracts / inline / none / no_input). A handler the hand-written config exempts from auth
(a person's decision, with a reason: webhooks, open examples, middleware) is counted apart
as well, as init_vs_hand.py does with exempt tables. The handlers only one run reports are
counted apart:
the hand-written configs take the whole `app` directory (pages' server actions too) where
init takes the `app/api` route roots.
"""
import json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'routes'))
import rerun  # noqa: E402


def verify(xtask, d, toml):
    with open(f'{d}/xtask.toml', 'w') as f:
        f.write(toml)
    p = subprocess.run([xtask, 'verify', '--repo', d, '--all', '--skip-commands', '--live', 'off',
                        '--format', 'json'], capture_output=True, text=True)
    try:
        r = json.loads(p.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(p.stderr[-2000:])
        return {}
    return {f"{rt['path']}#{h['method']}": (h.get('auth'), h.get('validation'))
            for rt in r.get('routes', []) for h in rt.get('handlers', [])}


def main():
    args = sys.argv[1:]
    mirrors = '/work/.mirror'
    if args[:1] == ['--mirrors']:
        mirrors, args = args[1], args[2:]
    xtask = os.environ.get('XTASK') or os.path.join(rerun.ROOT, 'target', 'debug', 'xtask')
    rows = []
    for name in args or list(rerun.CONFIGS):
        mirror, commit, tomls = rerun.CONFIGS[name]
        d = f'/tmp/xtask-init-routes/{name}'
        if not os.path.isdir(d):
            rerun.extract(mirrors, mirror, commit, d)
        init = subprocess.run([xtask, 'init', '--repo', d, '--print'], capture_output=True, text=True)
        by_init = verify(xtask, d, init.stdout)
        by_hand = verify(xtask, d, tomls[0])
        both = sorted(set(by_init) & set(by_hand))
        eq_a = eq_i = n_dec = eq_dec = 0
        for k in both:
            (ia, ii), (ha, hi) = by_init[k], by_hand[k]
            eq_a += ia == ha
            eq_i += ii == hi
            person = ha == 'exempt'
            if not person:
                n_dec += 1
                eq_dec += (ia, ii) == (ha, hi)
            if (ia, ii) != (ha, hi):
                why = "a person's decision in the hand-written config" if person else ''
                print(f'{name:22s} {k:70s} init={ia}/{ii} hand={ha}/{hi} {why}')
        rows.append((name, len(both), eq_a, eq_i, f'{eq_dec}/{n_dec}', len(set(by_init) - set(by_hand)),
                     len(set(by_hand) - set(by_init))))
    print()
    print(f"{'repo':22s} {'handlers in both':>16s} {'auth equal':>11s} {'input equal':>12s} {'both equal w/o decisions':>25s} {'only init':>10s} {'only hand':>10s}")
    for name, n, a, i, d, oi, oh in rows:
        print(f'{name:22s} {n:16d} {a:>11d} {i:>12d} {d:>25s} {oi:10d} {oh:10d}')


if __name__ == '__main__':
    main()
