use serde_json::Value;

use super::*;
use crate::os::usr::Extra;

fn def(registry: &str) -> ContainersDef {
    ContainersDef {
        registry: registry.to_string(),
        key: None,
    }
}

#[test]
fn files_are_in_usr_and_the_factory_links_them_into_etc() {
    let files = files(&def("registry.lan:5000/forge"), b"PEM");
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "share/factory/etc/containers/policy.json",
            "share/factory/etc/containers/registries.d/forge.yaml",
            "share/factory/etc/crio/crio.conf.d/10-crun.conf",
            POLICY_PATH,
            REGISTRIES_D_PATH,
            CRIO_CRUN_PATH,
            KEY_PATH,
        ]
    );
    let get = |p: &str| files.iter().find(|(q, _)| q == p).unwrap().1.clone();
    assert_eq!(get(KEY_PATH), Extra::File(b"PEM".to_vec()));
    assert_eq!(
        get("share/factory/etc/containers/policy.json"),
        Extra::Symlink(format!("/usr/{POLICY_PATH}"))
    );
    for (etc, file) in ETC_LINKS {
        assert!(matches!(get(file), Extra::File(_)), "{file}");
        assert_eq!(
            get(&format!("share/factory/etc/{etc}")),
            Extra::Symlink(format!("/usr/{file}"))
        );
    }
}

#[test]
fn policy_rejects_by_default_and_requires_the_key_for_the_registry() {
    let v: Value = serde_json::from_slice(&policy("registry.lan:5000/forge")).unwrap();
    assert_eq!(v["default"], serde_json::json!([{"type": "reject"}]));
    let reqs = &v["transports"]["docker"]["registry.lan:5000/forge"];
    assert_eq!(reqs.as_array().unwrap().len(), 1);
    assert_eq!(reqs[0]["type"], "sigstoreSigned");
    assert_eq!(reqs[0]["keyPath"], format!("/usr/{KEY_PATH}"));
    assert_eq!(reqs[0]["signedIdentity"]["type"], "matchRepository");
    assert_eq!(v["transports"].as_object().unwrap().len(), 1);
}

#[test]
fn registries_d_uses_sigstore_attachments_for_the_registry() {
    assert_eq!(
        registries_d("registry.lan:5000/forge"),
        "docker:\n  registry.lan:5000/forge:\n    use-sigstore-attachments: true\n"
    );
}

#[test]
fn crun_is_crios_default_runtime() {
    let v: toml::Value = toml::from_str(CRIO_CRUN).unwrap();
    assert_eq!(
        v["crio"]["runtime"]["default_runtime"].as_str(),
        Some("crun")
    );
    assert_eq!(
        v["crio"]["runtime"]["runtimes"]["crun"]["runtime_path"].as_str(),
        Some("/usr/bin/crun")
    );
}
