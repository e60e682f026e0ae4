//! Stable-toolchain stand-in for the `cargo fuzz` targets in fuzz/ (which need
//! nightly): token soup shaped like HCL, thrown at the formatter and the
//! loader. Neither may panic; formatted output must parse again and be a fixed
//! point of formatting.

use proptest::prelude::*;

fn hcl_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("fleet".to_string()),
        Just("worker_type".to_string()),
        Just("capacity".to_string()),
        Just("\"us-east-1\"".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("=".to_string()),
        Just(",".to_string()),
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("# c\n".to_string()),
        Just("// c\n".to_string()),
        Just("/* c */".to_string()),
        Just("var.x".to_string()),
        Just("local.y".to_string()),
        Just("\"${var.x}\"".to_string()),
        Just("<<-EOT\nbody\nEOT\n".to_string()),
        Just("file(\"x\")".to_string()),
        Just("1".to_string()),
        Just("true".to_string()),
        "[a-z_]{1,6}",
        "\"[a-z ]{0,5}\"",
    ];
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.join(" "))
}

/// Well-formed HCL with comments, blank lines and odd spacing in every legal place.
fn messy_hcl() -> impl Strategy<Value = String> {
    let gap = prop_oneof![
        Just(" ".to_string()),
        Just("   ".to_string()),
        Just("\t".to_string()),
    ];
    let line_gap = prop_oneof![
        Just("\n".to_string()),
        Just("\n\n\n".to_string()),
        Just("\n  # note\n".to_string()),
        Just(" // trailing\n".to_string()),
        Just("\n    /* block */\n".to_string()),
    ];
    let leaf = prop_oneof![
        Just("1".to_string()),
        Just("\"x\"".to_string()),
        Just("true".to_string()),
        Just("var.owner".to_string()),
        Just("\"${var.x}-y\"".to_string()),
        Just("file(\"a.txt\")".to_string()),
    ];
    let value = leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(inner.clone(), 1..4)
                .prop_map(|v| format!("[\n{},\n]", v.join(",\n  # c\n"))),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| {
                let items: Vec<String> = v
                    .iter()
                    .enumerate()
                    .map(|(i, x)| format!("k{i} = {x}"))
                    .collect();
                format!("{{ {} }}", items.join(", "))
            }),
            prop::collection::vec(inner, 1..4).prop_map(|v| {
                let items: Vec<String> = v
                    .iter()
                    .enumerate()
                    .map(|(i, x)| format!("  key_{i}   = {x} # c{i}"))
                    .collect();
                format!("{{\n{}\n}}", items.join("\n\n"))
            }),
        ]
    });
    // Attribute names must be unique within a body: each level names its own
    // attributes `@KEY@`, and `unique_keys` numbers them when the body is assembled.
    let attribute = (gap.clone(), value).prop_map(|(g, v)| format!("@KEY@{g}={g}{v}"));
    // A block on one line holds at most one attribute (HCL), and only a single-line one.
    let one_line = ("[a-z]{1,8}", "[0-9]{1,3}").prop_map(|(k, v)| format!("one {{ {k} = {v} }}"));
    let item = prop_oneof![attribute, one_line].prop_recursive(3, 20, 5, move |inner| {
        prop_oneof![
            inner.clone(),
            (prop::collection::vec(inner, 0..4), line_gap.clone()).prop_map(
                |(items, sep)| format!(
                    "blk \"label\" {{{sep}{}{sep}}}",
                    unique_keys(&items).join(&sep)
                )
            ),
        ]
    });
    (
        prop::collection::vec(item, 0..6),
        prop::collection::vec(
            prop_oneof![Just("\n"), Just("\n\n"), Just("\n# between\n")],
            6,
        ),
    )
        .prop_map(|(items, seps)| {
            unique_keys(&items)
                .iter()
                .enumerate()
                .map(|(i, item)| format!("{item}{}", seps[i % seps.len()]))
                .collect::<String>()
        })
}

/// Replaces the `@KEY@` that starts an attribute item with a name unique in its body.
fn unique_keys(items: &[String]) -> Vec<String> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| item.replacen("@KEY@", &format!("attr{i}"), 1))
        .collect()
}

fn comments(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|l| {
            ["#", "//", "/*"]
                .into_iter()
                .filter_map(move |m| l.find(m).map(|at| l[at..].trim().to_string()))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn well_formed_hcl_formats_to_a_fixed_point_keeping_every_comment(text in messy_hcl()) {
        let once = fleetform_engine::fmt::format_source(&text);
        prop_assert!(once.is_ok(), "generated HCL does not parse:\n{text}");
        let once = once.unwrap_or_default();
        let twice = fleetform_engine::fmt::format_source(&once);
        prop_assert!(twice.is_ok(), "formatted output does not parse:\n{once}");
        prop_assert_eq!(twice.ok(), Some(once.clone()), "not a fixed point; input:\n{}", text);
        let mut before = comments(&text);
        let mut after = comments(&once);
        before.sort();
        after.sort();
        prop_assert_eq!(before, after, "comments changed; input:\n{}\noutput:\n{}", text, once);
    }

    #[test]
    fn formatting_never_panics_and_is_a_fixed_point(text in hcl_soup()) {
        if let Ok(once) = fleetform_engine::fmt::format_source(&text) {
            let twice = fleetform_engine::fmt::format_source(&once);
            prop_assert!(twice.is_ok(), "formatted output does not parse:\n{once}");
            prop_assert_eq!(twice.ok(), Some(once));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn loading_never_panics(text in hcl_soup()) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("fleet.hcl"), &text).expect("write");
        let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
        // Every diagnostic renders (its span lies inside the file).
        let _ = fleetform_engine::diagnostic::render_human(&loaded.diagnostics, &loaded.sources, false);
        prop_assert!(loaded.config.is_some() || !loaded.diagnostics.is_empty());
    }
}
