//! Generated sections of the docs: the text between `<!-- BEGIN name -->` and
//! `<!-- END name -->` is rewritten, everything else is kept.

use std::path::Path;

/// Replace the section `name` of `file` with `text` (append it if the file has none).
pub fn write_between(file: &Path, name: &str, text: &str) -> Result<(), String> {
    let (begin, end) = (
        format!("<!-- BEGIN {name} -->"),
        format!("<!-- END {name} -->"),
    );
    let old = std::fs::read_to_string(file).unwrap_or_default();
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{begin}\n{text}{end}{}", &old[..b], &old[e + end.len()..])
        }
        _ => format!("{old}\n{begin}\n{text}{end}\n"),
    };
    std::fs::write(file, new).map_err(|e| format!("{}: {e}", file.display()))
}

/// Write a `reproduce` command's tables into docs/RESULTS.md under `root`, one section per run
/// root: `command` for the default `out`, `command --out OUT` for any other; also printed.
pub fn write_results(
    root: &Path,
    command: &str,
    out: &Path,
    default_out: &str,
    text: &str,
) -> Result<(), String> {
    let file = root.join("docs/RESULTS.md");
    let name = if out == Path::new(default_out) {
        command.to_string()
    } else {
        format!("{command} --out {}", out.display())
    };
    write_between(&file, &name, text)?;
    println!("{text}");
    eprintln!("wrote {}", file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_section_is_rewritten() {
        let file = std::env::temp_dir().join(format!("markers-{}.md", std::process::id()));
        std::fs::write(
            &file,
            "intro\n<!-- BEGIN x -->\nold\n<!-- END x -->\noutro\n",
        )
        .unwrap();
        super::write_between(&file, "x", "new\n").unwrap();
        let got = std::fs::read_to_string(&file).unwrap();
        assert_eq!(got, "intro\n<!-- BEGIN x -->\nnew\n<!-- END x -->\noutro\n");
        std::fs::remove_file(&file).ok();
    }
}
