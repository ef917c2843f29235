//! Property tests of `ModelRef` parsing (issue 3): display/parse round-trips, and no
//! accepted reference resolves outside the cache root.
#![allow(clippy::unwrap_used)]

use std::path::{Component, Path};

use llorch_core::{HfRef, ModelRef};
use proptest::prelude::*;

fn hub_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9_]|[.-][A-Za-z0-9_]){0,20}"
}

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_. +=,()-]{0,12}"
        .prop_filter("no dot segments", |s| s != "." && s != "..")
}

fn hf_ref() -> impl Strategy<Value = ModelRef> {
    (
        hub_name(),
        hub_name(),
        proptest::option::of(prop::collection::vec(
            "[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}",
            1..3,
        )),
        proptest::option::of(prop::collection::vec(segment(), 1..4)),
    )
        .prop_map(|(org, repo, rev, file)| {
            ModelRef::Hf(HfRef {
                org,
                repo,
                rev: rev.map(|r| r.join("/")),
                file: file.map(|f| f.join("/")),
            })
        })
        .prop_filter("rev segments are not dots", |r| match r {
            ModelRef::Hf(h) => h
                .rev
                .as_deref()
                .is_none_or(|r| r.split('/').all(|s| s != "." && s != "..")),
            _ => true,
        })
}

fn any_valid_ref() -> impl Strategy<Value = ModelRef> {
    prop_oneof![
        hf_ref(),
        prop::collection::vec(segment(), 1..5)
            .prop_map(|segs| ModelRef::File(format!("/{}", segs.join("/")).into())),
        (hub_name(), proptest::option::of(hub_name())).prop_map(|(n, t)| ModelRef::Alias(
            match t {
                Some(t) => format!("{n}:{t}"),
                None => n,
            }
        )),
    ]
}

/// Texts built from the characters that path tricks are made of.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("hf:".to_owned()),
        Just("file:".to_owned()),
        Just("::file=".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just("@".to_owned()),
        Just("%2e".to_owned()),
        Just("%2F".to_owned()),
        Just(":".to_owned()),
        Just("\0".to_owned()),
        Just("~".to_owned()),
        Just("C:".to_owned()),
        "[a-z]{1,4}",
    ];
    prop::collection::vec(piece, 1..12).prop_map(|v| v.concat())
}

fn assert_inside(path: &Path, root: &Path) {
    let rest = path
        .strip_prefix(root)
        .expect("cache path starts with the root");
    for c in rest.components() {
        assert!(
            matches!(c, Component::Normal(_)),
            "component {c:?} in {}",
            path.display()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_parse_round_trip(r in any_valid_ref()) {
        let text = r.to_string();
        let back: ModelRef = text.parse().unwrap();
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn valid_hf_refs_stay_in_the_cache(r in hf_ref()) {
        let root = Path::new("/var/cache/llorch");
        if let Some(p) = r.cache_path(root) {
            assert_inside(&p, root);
        }
    }

    #[test]
    fn hostile_texts_never_escape_and_round_trip(s in hostile_text()) {
        if let Ok(r) = s.parse::<ModelRef>() {
            let root = Path::new("/cache");
            if let Some(p) = r.cache_path(root) {
                assert_inside(&p, root);
            }
            let back: ModelRef = r.to_string().parse().unwrap();
            prop_assert_eq!(back, r);
        }
    }

    #[test]
    fn arbitrary_texts_never_panic(s in "\\PC{0,64}") {
        if let Ok(r) = s.parse::<ModelRef>() {
            prop_assert_eq!(r.to_string().parse::<ModelRef>().unwrap(), r);
        }
    }
}
