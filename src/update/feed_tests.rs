use super::*;

fn tags(bytes: &[u8], shape: Shape) -> Vec<String> {
    parse(bytes)
        .unwrap()
        .iter()
        .filter_map(|e| tag_of(e, shape))
        .collect()
}

#[test]
fn github_tags_come_from_links_never_titles() {
    let t = tags(
        include_bytes!("../../tests/fixtures/update/github-releases.atom"),
        Shape::GitHub,
    );
    assert_eq!(
        t,
        [
            "v1.11.0-rc1",
            "v1.10.0",
            "v1.9.2",
            "nightly/2026-09",
            "v1.9.0"
        ]
    );
    // Without links, the id after the repository prefix (tags may hold `/`).
    let doc = br#"<feed xmlns="http://www.w3.org/2005/Atom"><entry>
      <id>tag:github.com,2008:Repository/1/release/2.0</id><title>Two</title></entry></feed>"#;
    assert_eq!(tags(doc, Shape::GitHub), ["release/2.0"]);
}

#[test]
fn gitlab_tags_come_from_ids() {
    let t = tags(
        include_bytes!("../../tests/fixtures/update/gitlab-tags.atom"),
        Shape::GitLab,
    );
    assert_eq!(t, ["v2.1.0", "v2.0.9", "v2.2.0-beta.1"]);
}

#[test]
fn generic_rss_titles_with_cdata_and_entities() {
    let t = tags(
        include_bytes!("../../tests/fixtures/update/generic.rss"),
        Shape::Generic,
    );
    assert_eq!(t, ["gizmo-3.0", "gizmo-2.10", "gizmo-2.9", "gizmo-3.0_rc2"]);
    let doc = b"<rss><channel><item><title>a &amp; b &#x31;</title></item></channel></rss>";
    assert_eq!(tags(doc, Shape::Generic), ["a & b 1"]);
}

#[test]
fn malformed_and_foreign_documents_are_errors() {
    let err = parse(b"<feed><entry><title>1.0</entry></feed>").unwrap_err();
    assert!(matches!(err, FeedError::Xml { .. }), "{err}");
    let err = parse(b"<!DOCTYPE html><html><body>hi</body></html>").unwrap_err();
    assert!(err.to_string().contains("<html>"), "{err}");
    assert!(matches!(parse(b"   ").unwrap_err(), FeedError::Empty));
    let err = parse(b"<feed><entry><title>1.0</title>").unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}
