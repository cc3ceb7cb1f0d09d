//! `/etc/passwd` and `/etc/group` from the image definition.
//!
//! root (uid/gid 0) is always first; the defined accounts and groups follow,
//! sorted by id so the files do not depend on the order in the image file.

use super::def::{Account, Group};

/// The text of `/etc/passwd`. `root_shell` is `/bin/sh` when the image has
/// one, `/sbin/nologin` otherwise.
pub fn passwd(accounts: &[Account], root_shell: &str) -> String {
    let mut out = format!("root:x:0:0:root:/root:{root_shell}\n");
    let mut sorted: Vec<&Account> = accounts.iter().collect();
    sorted.sort_by_key(|a| a.uid);
    for a in sorted {
        out.push_str(&format!(
            "{}:x:{}:{}:{}:{}:{}\n",
            a.name, a.uid, a.gid, a.name, a.home, a.shell
        ));
    }
    out
}

/// The text of `/etc/group`.
pub fn group(groups: &[Group]) -> String {
    let mut out = String::from("root:x:0:root\n");
    let mut sorted: Vec<&Group> = groups.iter().collect();
    sorted.sort_by_key(|g| g.gid);
    for g in sorted {
        out.push_str(&format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_sorted_and_root_first() {
        let accounts = vec![
            Account {
                name: "web".into(),
                uid: 2000,
                gid: 2000,
                home: "/srv".into(),
                shell: "/sbin/nologin".into(),
            },
            Account {
                name: "app".into(),
                uid: 1000,
                gid: 50,
                home: "/home/app".into(),
                shell: "/bin/sh".into(),
            },
        ];
        assert_eq!(
            passwd(&accounts, "/bin/sh"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:50:app:/home/app:/bin/sh\nweb:x:2000:2000:web:/srv:/sbin/nologin\n"
        );
        let groups = vec![
            Group {
                name: "web".into(),
                gid: 2000,
                members: vec![],
            },
            Group {
                name: "staff".into(),
                gid: 50,
                members: vec!["app".into(), "web".into()],
            },
        ];
        assert_eq!(
            group(&groups),
            "root:x:0:root\nstaff:x:50:app,web\nweb:x:2000:\n"
        );
        assert_eq!(
            passwd(&[], "/sbin/nologin"),
            "root:x:0:0:root:/root:/sbin/nologin\n"
        );
    }
}
