//! Arbitrary bytes → the route reader (`gather::routes::read_one`), the path of `verify` for
//! one changed file without the file system: the secret scan, the nesting bound
//! (`ts::too_deep`), parsing (oxc) on the reader's own stack, and the rules over the tree
//! (auth, input validation, rate limit, interpolated SQL) with the default config.
//!
//! The first byte chooses the file: bit 0 a route handler (`route.ts`) or another code file
//! (`lib/x.ts`), bit 1 TypeScript or TSX (JSX).
//!
//! Beyond "no panic, no abort, no hang", it checks what must hold for any input:
//! - every finding's line lies inside the file;
//! - a route file is reported (one route) and, when it does not parse or nests too deep,
//!   none of its handlers is `guarded`;
//! - code nested deeper than the bound is refused with a finding, never given to oxc.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtask::{config::Config, gather::routes::read_one, ts};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ext = if mode & 2 == 2 { "tsx" } else { "ts" };
    let route = mode & 1 == 1;
    let path = if route {
        format!("apps/api/src/app/api/fuzz/route.{ext}")
    } else {
        format!("apps/api/src/lib/x.{ext}")
    };
    let ev = read_one(&Config::default(), &path, rest);
    let text = String::from_utf8_lossy(rest);
    let lines = text.bytes().filter(|&b| b == b'\n').count() as u32 + 1;
    for f in &ev.findings {
        if let Some(l) = f.line {
            assert!((1..=lines).contains(&l), "finding line {l} of {lines}: {f:?}");
        }
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let deep = ts::too_deep(text).is_some();
    if route {
        assert_eq!(ev.routes.len(), 1, "{:?}", ev.findings);
        let unreadable = ev
            .findings
            .iter()
            .any(|f| f.rule == xtask::model::Rule::RouteUnverified && f.message.contains("does not parse"));
        if deep || unreadable {
            assert!(
                ev.routes[0].handlers.iter().all(|h| h.auth != "guarded"),
                "a file that was not read vouches for a handler: {:?}",
                ev.routes[0]
            );
        }
    }
    if deep {
        assert!(
            ev.findings.iter().any(|f| f.message.contains("levels deep at line")),
            "nested too deep without a finding: {:?}",
            ev.findings
        );
    }
});
