//! `fleetform explain`: the long explanation of a diagnostic code.

pub(crate) fn run(code: Option<&str>) -> u8 {
    use fleetform_engine::explain;
    let Some(text) = code else {
        print!("{}", explain::index());
        return 0;
    };
    match explain::parse_code(text) {
        Ok(code) => {
            print!("{}", explain::render(code));
            0
        }
        Err(closest) => {
            let hint = closest
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            eprintln!(
                "fleetform: unknown diagnostic code `{text}`{hint}; run `fleetform explain` for what each one means. Known codes: {}",
                fleetform_engine::Code::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            1
        }
    }
}
