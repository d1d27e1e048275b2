#[test]
fn an_unknown_layout_is_refused_naming_the_choices() {
    let text = spec_text("whisper-base/dec_step_cross_attention.toml")
        .replace("layout = \"token_major\"", "layout = \"rows_first\"");
    let err = Spec::parse(&text, Path::new("test.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rows_first") && err.contains("token_major"),
        "{err}"
    );
}
