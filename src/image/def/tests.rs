//! Tests of container image definitions.

use super::*;

fn p(text: &str) -> Result<ImageDef, String> {
    parse("t", Path::new("images/t.toml"), text).map_err(|e| e.to_string())
}

#[test]
fn full_definition() {
    let d = p(r#"
schema = 1
packages = ["hello", "busybox>=1.36"]
archs = ["x86_64", "aarch64"]
entrypoint = ["/usr/bin/hello"]
cmd = ["--loud"]
env = { PATH = "/usr/bin:/bin", LANG = "C.UTF-8" }
workdir = "/srv"
user = "app"
labels = { "a.b" = "c" }
[[accounts]]
name = "app"
uid = 1000
[[groups]]
name = "staff"
gid = 50
members = ["app"]
[[paths]]
path = "/srv"
type = "dir"
uid = 1000
gid = 1000
mode = "0750"
[[paths]]
path = "/etc/motd"
type = "file"
content = "hi\n"
[[paths]]
path = "/bin/hi"
type = "symlink"
target = "/usr/bin/hello"
[layering]
max_layers = 4
"#)
    .unwrap();
    assert_eq!(d.archs, ["x86_64", "aarch64"]);
    assert_eq!(d.env.keys().collect::<Vec<_>>(), ["LANG", "PATH"]);
    assert_eq!(
        d.accounts,
        [Account {
            name: "app".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/app".into(),
            shell: "/sbin/nologin".into()
        }]
    );
    assert_eq!(
        d.groups
            .iter()
            .map(|g| (g.name.as_str(), g.gid))
            .collect::<Vec<_>>(),
        [("staff", 50), ("app", 1000)]
    );
    assert_eq!(
        d.paths[0],
        ExtraPath {
            path: "srv".into(),
            kind: ExtraKind::Dir,
            mode: 0o750,
            uid: 1000,
            gid: 1000
        }
    );
    assert_eq!(d.paths[1].mode, 0o644);
    assert_eq!(
        d.layering,
        Layering {
            mode: LayeringMode::Origin,
            max_layers: Some(4)
        }
    );
}

#[test]
fn defaults() {
    let d = p("schema = 1\npackages = [\"hello\"]\n").unwrap();
    assert_eq!(d.archs, ["x86_64"]);
    assert_eq!(d.layering.mode, LayeringMode::Origin);
    assert!(d.user.is_empty() && d.workdir.is_empty() && d.accounts.is_empty());
}

#[test]
fn errors_carry_position_and_hint() {
    let cases = [
        (
            "schema = 1\npackages = [\"a\"]\nentrypoin = []\n",
            "images/t.toml:3:1: unknown field `entrypoin`",
            Some("did you mean `entrypoint`?"),
        ),
        (
            "schema = 2\npackages = [\"a\"]\n",
            "images/t.toml:1:10: unsupported schema 2",
            None,
        ),
        (
            "schema = 1\npackages = []\n",
            "images/t.toml:2:12: `packages` must list",
            None,
        ),
        (
            "schema = 1\npackages = [\"a\"]\narchs = [\"sparc\"]\n",
            "images/t.toml:3:10: unknown architecture `sparc`",
            None,
        ),
        (
            "schema = 1\npackages = [\"a\"]\nuser = \"nobody\"\n",
            "images/t.toml:3:8: `user` names unknown account",
            None,
        ),
        (
            "schema = 1\npackages = [\"a\"]\nworkdir = \"srv\"\n",
            "images/t.toml:3:11: `workdir` must be an absolute path",
            None,
        ),
        (
            "schema = 1\npackages = [\"a\"]\n[[paths]]\npath = \"/a/../b\"\ntype = \"dir\"\n",
            "images/t.toml:3:1: path `/a/../b` must be absolute",
            None,
        ),
        (
            "schema = 1\npackages = [\"a\"]\n[[paths]]\npath = \"/a\"\ntype = \"file\"\n",
            "a file needs `content`",
            None,
        ),
        (
            "schema = 1\npackages = [\"a\"]\n[layering]\nmode = \"single\"\nmax_layers = 3\n",
            "`max_layers` only applies",
            None,
        ),
        (
            "schema = 1\npackages = [\"a\"]\n[layering]\nmode = \"flat\"\n",
            "unknown layering mode `flat`",
            None,
        ),
        (
            "schema = 1\npackages = [\"a\"]\n[layering]\nmax_layers = 1\n",
            "must be at least 2",
            None,
        ),
        (
            "schema = 1\npackages = [\"a\"]\n[[paths]]\npath = \"/a\"\ntype = \"dir\"\nowner = 3\n",
            "images/t.toml:6:1: unknown field `owner`",
            None,
        ),
    ];
    for (text, want, hint) in cases {
        let err = p(text).unwrap_err();
        assert!(err.contains(want), "{text:?}: got {err}");
        if let Some(h) = hint {
            assert!(err.contains(h), "{err}");
        }
    }
}
