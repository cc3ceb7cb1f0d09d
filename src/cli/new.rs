//! `forge new NAME`: scaffold `recipes/NAME/recipe.toml` from a commented
//! template that already passes `forge lint`. Never overwrites.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use crate::recipe::{self, RECIPE_FILE};
use crate::settings::Settings;

/// Arguments of `forge new`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package name (`[a-z0-9][a-z0-9+._-]*`); also the folder name.
    name: String,
}

/// Run `forge new`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let name = args.name;
    if let Err(why) = recipe::check_name(&name) {
        bail!("invalid recipe name: {why}");
    }
    let dir = settings.recipes_dir().join(&name);
    let file = dir.join(RECIPE_FILE);
    if file.exists() {
        bail!("recipes/{name}/{RECIPE_FILE} already exists; not overwriting it");
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(template(&name).as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", file.display()))?;
    tmp.persist_noclobber(&file)
        .map_err(|e| anyhow::Error::new(e.error).context(format!("creating {}", file.display())))?;
    settings
        .shell
        .status("Created", format!("recipes/{name}/{RECIPE_FILE}"));
    settings.shell.note(format!(
        "fill in the version, sources and build script, then run `forge lint {name}` (format: docs/recipes.md)"
    ));
    Ok(ExitCode::SUCCESS)
}

/// The starting recipe: valid as written, with the optional fields shown as
/// comments.
fn template(name: &str) -> String {
    TEMPLATE.replace("@NAME@", name)
}

const TEMPLATE: &str = r#"# Recipe for @NAME@. Format: docs/recipes.md. Check it with `forge lint @NAME@`.
schema = 1

[package]
name = "@NAME@"
version = "0.1.0"               # upstream version (apk grammar: 1.2.3, 1.2_rc1, 1.2_p1)
release = 0                     # bump when the recipe changes but the version does not
description = "The @NAME@ package"
url = "https://example.org/@NAME@"
license = "MIT"                 # SPDX expression, e.g. "GPL-2.0-or-later OR MIT"
# arch = ["x86_64", "aarch64"]  # the default; ["noarch"] for architecture-independent
# depends = []                  # runtime dependencies: "foo", "foo>=1.2", "so:libz.so.1"
# makedepends = []              # forge packages needed to build
# provides = []
# options = []                  # "!check", "!strip", "net", "suid"
# builddir = "@NAME@-0.1.0"     # relative to $srcdir
# subpackages = ["doc", "dev"]  # built-in splits

# [[source]]
# url = "https://example.org/@NAME@-0.1.0.tar.gz"
# sha256 = "<64 hex characters>"
#
# [[source]]
# git = "https://example.org/@NAME@.git"
# commit = "<full 40-hex commit id>"
#
# [[source]]
# path = "@NAME@.patch"         # a file in this folder

[build]
tools = ["sh"]                  # host commands the build needs, e.g. ["cc", "make"]
script = '''
# Build in the build folder and install into "$pkgdir", for example:
#   ./configure --prefix=/usr
#   make -j"$JOBS"
#   make DESTDIR="$pkgdir" install
mkdir -p "$pkgdir/usr/share/doc/@NAME@"
echo "@NAME@ 0.1.0" > "$pkgdir/usr/share/doc/@NAME@/VERSION"
'''
check = '''
test -s "$pkgdir/usr/share/doc/@NAME@/VERSION"
'''
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_a_valid_recipe() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("recipes").join("my-pkg");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(RECIPE_FILE), template("my-pkg")).unwrap();
        let r = recipe::load(&dir.join(RECIPE_FILE)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.name, "my-pkg");
        assert_eq!(r.full_version(), "0.1.0-r0");
        assert!(r.sources.is_empty());
        assert_eq!(r.host_tools, ["sh"]);
    }
}
