//! Table-driven tests of the resolver: each case is a repository, a request
//! and the expected install order or error text.

use super::*;

fn c(name: &str, version: &str, depends: &[&str], provides: &[&str]) -> Candidate {
    Candidate {
        name: name.into(),
        version: version.into(),
        depends: depends.iter().map(|s| s.to_string()).collect(),
        provides: provides.iter().map(|s| s.to_string()).collect(),
        provider_priority: None,
    }
}

fn prio(mut c: Candidate, p: u32) -> Candidate {
    c.provider_priority = Some(p);
    c
}

fn run(repo: &[Candidate], deps: &[&str], missing_ok: bool) -> Result<Vec<String>, String> {
    let deps: Vec<String> = deps.iter().map(|s| s.to_string()).collect();
    let req = Request {
        deps: &deps,
        by: "the request",
        missing_transitive_ok: missing_ok,
    };
    resolve(&req, repo)
        .map(|r| r.order.iter().map(|&i| label(&repo[i])).collect())
        .map_err(|e| e.to_string())
}

#[test]
fn dep_parse_table() {
    for (s, name, con, conflict) in [
        ("hello", "hello", None, false),
        ("hello>=1.2", "hello", Some((Op::Ge, "1.2")), false),
        ("so:libc.so.6", "so:libc.so.6", None, false),
        ("pc:zlib>1", "pc:zlib", Some((Op::Gt, "1")), false),
        ("!bad", "bad", None, true),
        ("!bad<2", "bad", Some((Op::Lt, "2")), true),
        ("x=~1.2", "x", Some((Op::Fuzzy, "1.2")), false),
        ("x~1.2", "x", Some((Op::Fuzzy, "1.2")), false),
        ("x<=3", "x", Some((Op::Le, "3")), false),
        ("x=1.0-r2", "x", Some((Op::Eq, "1.0-r2")), false),
    ] {
        let d = Dep::parse(s);
        assert_eq!(d.name, name, "{s}");
        assert_eq!(d.constraint, con.map(|(o, v)| (o, v.to_string())), "{s}");
        assert_eq!(d.conflict, conflict, "{s}");
    }
}

/// A repository with versions, so:/cmd:/pc: provides, a virtual name and
/// provider priorities.
fn repo() -> Vec<Candidate> {
    vec![
        c("foo", "1.0-r0", &[], &["pc:foo=1.0"]),
        c("foo", "2.0-r0", &[], &["pc:foo=2.0"]),
        c("foo", "3.0-r0", &[], &["pc:foo=3.0"]),
        c("bar", "1.2.3-r0", &["foo<2"], &[]),
        c("baz", "1.0-r0", &["so:libz.so.1"], &[]),
        c("zlib", "1.3-r0", &[], &["so:libz.so.1=1.3"]),
        c("zlib-ng", "2.1-r0", &[], &["so:libz.so.1=1.3.0"]),
        c("busybox", "1.36-r0", &[], &["cmd:sh=1.36-r0"]),
        c("dash", "0.5-r0", &[], &["cmd:sh=0.5-r0"]),
        c("postfix", "3.8-r0", &[], &["mta"]),
        c("exim", "4.97-r0", &[], &["mta"]),
        prio(c("ssmtp", "2.6-r0", &[], &["sendmail"]), 10),
        prio(c("msmtp", "1.8-r0", &[], &["sendmail"]), 20),
        c("mailer", "1-r0", &["mta"], &[]),
        c("needs-x", "1-r0", &["so:libx.so.9", "foo"], &[]),
        c("hates-foo", "1-r0", &["!foo>=3"], &[]),
    ]
}

#[test]
fn constraints_and_providers_table() {
    let repo = repo();
    type Case<'a> = (&'a [&'a str], Result<&'a [&'a str], &'a str>);
    let cases: &[Case] = &[
        // Plain name: highest version.
        (&["foo"], Ok(&["foo-3.0-r0"])),
        // Every operator.
        (&["foo<2"], Ok(&["foo-1.0-r0"])),
        (&["foo<=2.0-r0"], Ok(&["foo-2.0-r0"])),
        (&["foo>1.0"], Ok(&["foo-3.0-r0"])),
        (&["foo>=2"], Ok(&["foo-3.0-r0"])),
        (&["foo=2.0-r0"], Ok(&["foo-2.0-r0"])),
        (&["foo~2"], Ok(&["foo-2.0-r0"])),
        (&["foo~2.0-r0"], Ok(&["foo-2.0-r0"])),
        // A transitive constraint.
        (&["bar"], Ok(&["foo-1.0-r0", "bar-1.2.3-r0"])),
        // Requested constraints together, whichever comes first.
        (&["foo", "foo<3"], Ok(&["foo-2.0-r0"])),
        // A versioned provide, constrained.
        (&["pc:foo>=2", "pc:foo<3"], Ok(&["foo-2.0-r0"])),
        // so: providers: highest provided version wins.
        (&["baz"], Ok(&["zlib-ng-2.1-r0", "baz-1.0-r0"])),
        (&["so:libz.so.1<1.3.0"], Ok(&["zlib-1.3-r0"])),
        // cmd: providers; a provider already chosen is reused.
        (&["cmd:sh"], Ok(&["busybox-1.36-r0"])),
        (&["dash", "cmd:sh"], Ok(&["dash-0.5-r0"])),
        // provider_priority decides a virtual name.
        (&["sendmail"], Ok(&["msmtp-1.8-r0"])),
        (&["ssmtp", "sendmail"], Ok(&["ssmtp-2.6-r0"])),
        // A virtual name without priorities: named explicitly, it is fine.
        (&["exim", "mailer"], Ok(&["exim-4.97-r0", "mailer-1-r0"])),
        // Conflicts: excluded candidates are skipped, chosen ones refused.
        (&["hates-foo", "foo"], Ok(&["foo-2.0-r0", "hates-foo-1-r0"])),
    ];
    for (deps, want) in cases {
        let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            run(&repo, deps, false),
            want.map_err(String::from),
            "{deps:?}"
        );
    }
}

#[test]
fn errors_name_the_constraint_and_who_asked() {
    let repo = repo();
    let cases: &[(&[&str], bool, &str)] = &[
        (
            &["foo<1"],
            false,
            "`foo<1` (needed by the request) is not satisfied: the repository has \
             foo-1.0-r0, foo-2.0-r0, foo-3.0-r0",
        ),
        (
            &["bar", "foo>=3"],
            false,
            "`foo<2` (needed by bar-1.2.3-r0) conflicts with the already chosen foo-3.0-r0",
        ),
        (
            &["mta"],
            false,
            "`mta` (needed by the request) is a virtual name provided by exim-4.97-r0, \
             postfix-3.8-r0: name one of them",
        ),
        (
            &["mailer"],
            false,
            "`mta` (needed by mailer-1-r0) is a virtual name provided by exim-4.97-r0, \
             postfix-3.8-r0: name one of them",
        ),
        (
            &["pc:foo>4"],
            false,
            "`pc:foo>4` (needed by the request) is not satisfied: the repository has \
             pc:foo=1.0 (from foo-1.0-r0), pc:foo=2.0 (from foo-2.0-r0), pc:foo=3.0 (from foo-3.0-r0)",
        ),
        (
            &["mta>1"],
            false,
            "`mta>1` (needed by the request) is not satisfied: the repository has \
             mta (from exim-4.97-r0), mta (from postfix-3.8-r0)",
        ),
        (
            &["foo>=3", "pc:foo<3"],
            false,
            "`foo>=3` (needed by the request) is not satisfied: the repository has foo-1.0-r0, \
             foo-2.0-r0, foo-3.0-r0 (refused by another requested dependency)",
        ),
        (
            &["!foo>=2", "foo>1.0-r0"],
            false,
            "`foo>1.0-r0` (needed by the request) is not satisfied: the repository has foo-1.0-r0, \
             foo-2.0-r0 (excluded by a `!` dependency), foo-3.0-r0 (excluded by a `!` dependency)",
        ),
        (
            &["nope"],
            true,
            "nothing in the repository provides `nope` (needed by the request)",
        ),
        (
            &["needs-x"],
            false,
            "nothing in the repository provides `so:libx.so.9` (needed by needs-x-1-r0)",
        ),
        (
            &["foo", "hates-foo"],
            false,
            "foo-3.0-r0 is excluded by `!foo>=3` (from hates-foo-1-r0)",
        ),
    ];
    for (deps, missing_ok, want) in cases {
        assert_eq!(
            run(&repo, deps, *missing_ok),
            Err(want.to_string()),
            "{deps:?}"
        );
    }
}

#[test]
fn missing_transitive_names_are_left_to_the_host_when_allowed() {
    let repo = repo();
    assert_eq!(
        run(&repo, &["needs-x"], true).unwrap(),
        ["foo-3.0-r0", "needs-x-1-r0"]
    );
    // A name the repository has in the wrong versions is still an error.
    let mut r2 = repo.clone();
    r2.push(c("old", "1-r0", &["foo>=9"], &[]));
    let err = run(&r2, &["old"], true).unwrap_err();
    assert!(
        err.starts_with("`foo>=9` (needed by old-1-r0) is not satisfied"),
        "{err}"
    );
}

#[test]
fn order_follows_dependencies_not_the_index() {
    let repo = vec![
        c("hello", "1.0-r0", &["so:libgreet.so.1", "cmd:sh"], &[]),
        c("hello", "1.1-r0", &["so:libgreet.so.1", "cmd:sh"], &[]),
        c("libgreet", "2.0-r0", &["musl"], &["so:libgreet.so.1=1.0"]),
        c("busybox", "1.36-r0", &["musl"], &["cmd:sh=1.36-r0"]),
        c("musl", "1.2-r0", &[], &["so:libc.musl-x86_64.so.1=1"]),
    ];
    let want = [
        "musl-1.2-r0",
        "busybox-1.36-r0",
        "libgreet-2.0-r0",
        "hello-1.1-r0",
    ];
    assert_eq!(run(&repo, &["hello"], false).unwrap(), want);
    let mut rev = repo.clone();
    rev.reverse();
    assert_eq!(run(&rev, &["hello"], false).unwrap(), want);
    let deps: Vec<String> = vec!["hello".into()];
    let req = Request {
        deps: &deps,
        by: "x",
        missing_transitive_ok: false,
    };
    let r = resolve(&req, &repo).unwrap();
    assert_eq!(r.deps[&1], BTreeSet::from([2, 3]));
}

#[test]
fn cycles_are_broken_by_name() {
    let repo = vec![c("b", "1", &["a"], &[]), c("a", "1", &["b"], &[])];
    assert_eq!(run(&repo, &["b"], false).unwrap(), ["a-1", "b-1"]);
}
