//! Who may use the control socket: root, and members of the socket's group.
//!
//! The peer's user and primary group come from `SO_PEERCRED`; its supplementary groups
//! from the `Groups:` line of `/proc/<pid>/status`. Group names are resolved with
//! `getent group` (so NSS sources count), falling back to `/etc/group`.

use std::path::Path;

/// The group whose members (and root) may use the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    gid: u32,
}

/// A peer as `SO_PEERCRED` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
    /// The peer's process id, when the kernel reported one.
    pub pid: Option<i32>,
}

impl Access {
    /// Members of the group `gid` (and root).
    pub fn new(gid: u32) -> Self {
        Self { gid }
    }

    /// The group.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Whether `peer` may use the socket.
    pub fn allows(&self, peer: &Peer) -> bool {
        if peer.uid == 0 || peer.gid == self.gid {
            return true;
        }
        peer.pid
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .is_some_and(|status| supplementary_groups(&status).contains(&self.gid))
    }
}

/// The group ids of a `/proc/<pid>/status` text's `Groups:` line.
pub fn supplementary_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The id of the group `name`; `None` when there is no such group.
pub fn group_id(name: &str) -> Option<u32> {
    if name.is_empty() || name.contains([':', '\n', '\0']) {
        return None;
    }
    let from_getent = std::process::Command::new("getent")
        .args(["group", "--", name])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| group_in(&String::from_utf8_lossy(&o.stdout), name));
    from_getent.or_else(|| {
        std::fs::read_to_string(Path::new("/etc/group"))
            .ok()
            .and_then(|t| group_in(&t, name))
    })
}

/// The id of the group `name` in a text in `/etc/group` format (`name:x:gid:members`).
/// A numeric name is also taken as a group id.
pub fn group_in(text: &str, name: &str) -> Option<u32> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let _password = f.next()?;
            let gid = f.next()?.parse().ok()?;
            Some((n, gid))
        })
        .find(|(n, _)| *n == name)
        .map(|(_, gid)| gid)
        .or_else(|| name.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_groups_line_of_proc_status() {
        let status =
            "Name:\tnasctl\nUid:\t1000\t1000\t1000\t1000\nGroups:\t20 27 1000 \nVmPeak:\t1 kB\n";
        assert_eq!(supplementary_groups(status), [20, 27, 1000]);
        assert!(supplementary_groups("Groups:\t\n").is_empty());
        assert!(supplementary_groups("Name: x\n").is_empty());
    }

    #[test]
    fn groups_by_name_in_etc_group_format() {
        let text = "root:x:0:\ndialout:x:20:alice,bob\nbroken line\nnasd:x:998:\n";
        assert_eq!(group_in(text, "dialout"), Some(20));
        assert_eq!(group_in(text, "nasd"), Some(998));
        assert_eq!(group_in(text, "dial"), None);
        assert_eq!(group_in(text, "1234"), Some(1234), "a numeric group");
        assert_eq!(group_id("no:such:group"), None);
    }

    #[test]
    fn root_and_members_are_allowed() {
        let a = Access::new(20);
        let me = std::process::id() as i32;
        let peer = |uid, gid, pid| Peer { uid, gid, pid };
        assert!(a.allows(&peer(0, 0, None)));
        assert!(a.allows(&peer(1000, 20, None)));
        assert!(!a.allows(&peer(1000, 1000, None)));
        // Our own process: allowed through its supplementary groups exactly when it has 20.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let ours = supplementary_groups(&status).contains(&20);
        assert_eq!(a.allows(&peer(1000, 1000, Some(me))), ours);
        assert!(!Access::new(u32::MAX - 7).allows(&peer(1000, 1000, Some(me))));
    }
}
