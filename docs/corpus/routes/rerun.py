#!/usr/bin/env python3
"""Re-run the route checks on the six hand-read repositories of docs/routes-truth.md and
list every handler whose verdict differs from the "ours" column recorded there.

    cargo build -p xtask && python3 docs/corpus/routes/rerun.py [--mirrors DIR] [short...]

Each repository's code files (.ts/.tsx/.js/.json ...) at the truth table's commit are
written to a scratch directory under /tmp (never into this repository), `git init`-ed,
given the xtask.toml below (as docs/routes-truth.md describes it), and checked with
`verify --all --skip-commands --live off --format json`. nextbase runs once per server
actions directory. Auth: ours `exempt` is "public", except an exemption whose reason is
middleware, which counts as "guarded"; input `contracts`/`inline` is "validated", `none`
"not-validated"; unscoped: a service-role-unscoped finding between the handler's line and
the next handler's.
"""
import json, os, re, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
CONFIGS = {}
CONFIGS['chatbot-ui'] = ('mckaywrigley+chatbot-ui', '81328b61d2a4ab597a7a057be70e785cf756d9f8', ['''
[routes]
root = "app"
guard_calls = ["auth.getUser"]
exempt = [{ glob = "auth/**", reason = "auth callback" }]
'''])
CONFIGS['supavec'] = ('supavec+supavec', 'af4b31c3032010336dcf8239299db52f274f42cb', ['''
[routes]
root = "apps/web/src/app"
guard_calls = ["auth.getUser"]
admin_clients = ["supabaseAdmin"]
public = ["api/examples/**", "(llms)/**"]
exempt = [{ glob = "auth/**", reason = "auth callback" }, { glob = "api/init-new-user/**", reason = "shared-secret webhook" }, { glob = "api/protected/**", reason = "guarded by middleware" }, { glob = "login/actions.ts#googleLogin", reason = "sign-in" }, { glob = "login/actions.ts#signOut", reason = "sign-out" }]
server_actions_dir = "apps/web/src/app"
'''])
CONFIGS['subscription-payments'] = ('vercel+nextjs-subscription-payments', 'bdd0813206e47e6b218d42f15a7976c8a0d3c3eb', ['''
[routes]
root = "app"
guard_calls = ["auth.getUser"]
exempt = [{ glob = "auth/**", reason = "auth callback" }, { glob = "api/webhooks/**", reason = "signature" }, { glob = "auth-helpers/server.ts#signIn*", reason = "sign-in" }, { glob = "auth-helpers/server.ts#signUp", reason = "sign-up" }, { glob = "auth-helpers/server.ts#SignOut", reason = "sign-out" }, { glob = "auth-helpers/server.ts#requestPasswordUpdate", reason = "reset" }]
server_actions_dir = "utils"
'''])
CONFIGS['makerkit-lite'] = ('makerkit+nextjs-saas-starter-kit-lite', '0c35b7ff6a13aa1b9e06795cd99a136e50f83464', ['''
[routes]
root = "apps/web/app"
auth_wrappers = ["enhanceRouteHandler", "enhanceAction"]
guard_calls = ["requireUser", "auth.getClaims"]
admin_clients = ["getSupabaseServerAdminClient"]
exempt = [{ glob = "auth/**", reason = "auth callback" }, { glob = "sitemap.xml/**", reason = "public" }, { glob = "version/**", reason = "public" }, { glob = "server-actions.ts#refreshAuthSession", reason = "session" }]
server_actions_dir = "packages/features/accounts/src/server"
'''])
CONFIGS['onlook'] = ('onlook-dev+onlook', 'ab9333d4fcfdb485383a228d157402a5efa6b4ea', ['''
[routes]
root = "apps/web/client/src/app"
guard_calls = ["getSupabaseUser", "auth.getUser"]
rate_limiters = ["checkMessageLimit"]
admin_clients = ["createAdminClient"]
public = ["api/email-capture/**"]
exempt = [{ glob = "auth/**", reason = "auth callback" }, { glob = "webhook/**", reason = "signature" }, { glob = "api/trpc/**", reason = "auth per procedure" }, { glob = "app/login/actions.tsx", reason = "sign-in" }]
server_actions_dir = "apps/web/client/src"
'''])
nb = '''
[routes]
root = "src/app"
guard_calls = ["ensureAppAdmin", "serverGetLoggedInUser", "verifySession", "createSupabaseUnkeyClient", "auth.getSession", "auth.getUser"]
admin_clients = ["supabaseAdminClient"]
exempt = [{ glob = "(dynamic-pages)/(login-pages)/**", reason = "login" }, { glob = "api/*-og/**", reason = "og" }, { glob = "_sentry-testing/**", reason = "private" }, { glob = "user/session.ts#refreshSessionAction", reason = "session" }, { glob = "user/elevatedQueries.ts#anonGetUserProfile", reason = "public" }, { glob = "server/verifySession.ts#getSession", reason = "session" }, { glob = "server/serverGetUserType.ts#serverGetUserType", reason = "session" }, { glob = "verifySession.ts#getSession", reason = "session" }, { glob = "serverGetUserType.ts#serverGetUserType", reason = "session" }, { glob = "elevatedQueries.ts#anonGetUserProfile", reason = "public" }, { glob = "session.ts#refreshSessionAction", reason = "session" }]
'''
CONFIGS['nextbase'] = ('ionpetro+nextbase', '58582a99ac311b0830f907acd5598dac854ad055', [nb + 'server_actions_dir = "%s"\n' % d for d in ["src/data", "src/utils/server", "src/supabase-clients"]])


def extract(mirrors, mirror, commit, d):
    gd = os.path.join(mirrors, mirror, 'repo')
    ls = subprocess.run(['git', '--git-dir', gd, 'ls-tree', '-r', commit],
                        capture_output=True, text=True, check=True).stdout
    exts = ('ts', 'tsx', 'js', 'jsx', 'mjs', 'cjs', 'mts', 'json')
    want = [(l.split()[2], l.split('\t', 1)[1]) for l in ls.splitlines()
            if l.split()[1] == 'blob' and l.rsplit('.', 1)[-1] in exts]
    p = subprocess.Popen(['git', '--git-dir', gd, 'cat-file', '--batch'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for sha, path in want:
        p.stdin.write((sha + '\n').encode())
        p.stdin.flush()
        head = p.stdout.readline().split()
        if len(head) < 3 or head[1] != b'blob':
            continue  # a blob the mirror does not hold
        data = p.stdout.read(int(head[2]))
        p.stdout.read(1)
        os.makedirs(os.path.dirname(os.path.join(d, path)) or d, exist_ok=True)
        with open(os.path.join(d, path), 'wb') as f:
            f.write(data)
    p.stdin.close()
    p.wait()
    subprocess.run(['git', 'init', '-q', d], check=True)


def run(xtask, mirrors, name):
    mirror, commit, tomls = CONFIGS[name]
    d = f'/tmp/xtask-routes-truth/{name}'
    if not os.path.isdir(d):
        extract(mirrors, mirror, commit, d)
    out = {'routes': [], 'findings': []}
    for t in tomls:
        with open(f'{d}/xtask.toml', 'w') as f:
            f.write(t)
        p = subprocess.run([xtask, 'verify', '--repo', d, '--all', '--skip-commands',
                            '--live', 'off', '--format', 'json'], capture_output=True, text=True)
        r = json.loads(p.stdout)
        out['routes'] += r.get('routes', [])
        out['findings'] += r['findings']
    return out


def main():
    args = sys.argv[1:]
    mirrors = '/work/.mirror'
    if args[:1] == ['--mirrors']:
        mirrors, args = args[1], args[2:]
    xtask = os.path.join(ROOT, 'target', 'debug', 'xtask')
    names = args or list(CONFIGS)
    res = {n: run(xtask, mirrors, n) for n in names}
    doc = open(os.path.join(ROOT, 'docs', 'routes-truth.md')).read()
    sec, rows = None, []
    for line in doc.split('\n'):
        m = re.match(r'### (\S+)', line)
        if m:
            sec = m.group(1)
        elif sec and line.startswith('| `'):
            c = [x.strip() for x in line.strip('|').split('|')]
            rows.append((sec, c[0].strip('`'), c[1].strip('`'), c[2], c[3], c[4]))
    auth = {'guarded': 'guarded', 'unguarded': 'unguarded', 'exempt': 'public'}
    inp = {'contracts': 'validated', 'inline': 'validated', 'none': 'not-validated',
           'no_input': 'no-input'}
    changed = 0
    for sec, f, e, a, i, s in rows:
        if sec not in res:
            continue
        found = [(rt, h) for rt in res[sec]['routes'] if rt['path'] == f
                 for h in rt['handlers'] if h['method'] == e]
        if not found:
            print('not found:', sec, f, e)
            changed += 1
            continue
        rt, h = found[0]
        ours_a = auth.get(h['auth'], h['auth'])
        if h['auth'] == 'exempt' and 'middleware' in h['note']:
            ours_a = 'guarded'
        ours_i = inp.get(h['validation'], h['validation'])
        lines = sorted(x['line'] for x in rt['handlers'])
        nxt = min([l for l in lines if l > h['line']] or [10 ** 9])
        ours_s = 'yes' if any(x['rule'] == 'service-role-unscoped' and x.get('path') == f
                              and h['line'] <= (x.get('line') or 0) < nxt
                              for x in res[sec]['findings']) else 'no'
        diff = []
        for what, cell, ours in (('auth', a, ours_a), ('input', i, ours_i), ('unscoped', s, ours_s)):
            true, old = (x.strip() for x in cell.split('/', 1))
            old = old.split()[0]
            if '(not counted)' not in cell and ours != old:
                diff.append(f'{what} {old} -> {ours} (true {true})')
        if diff:
            changed += 1
            print(sec, f, e, '; '.join(diff))
    print(f'{len(rows)} rows, {changed} differ from the recorded "ours" column')


if __name__ == '__main__':
    main()
