//! `nhacviec man` and `nhacviec completions`: the manual page and the shell completions,
//! generated from the same definitions that parse the command line, so they never drift.
//! The .deb ships both (scripts/package writes them from the built binary).

use super::Cli;
use anyhow::Result;
use clap::CommandFactory;
use std::io::Write;
use std::process::ExitCode;

/// nhacviec(1) in roff: the synopsis, every option and a section per subcommand.
pub(super) fn man() -> Result<ExitCode> {
    super::render::to_stdout(crate::t!("trang hướng dẫn", "the manual page"), |w| {
        write_man(w)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The manual page, into any writer.
pub fn write_man(w: &mut dyn Write) -> std::io::Result<()> {
    // In the chosen language, like `--help` (clap_mangen's own section titles stay English).
    let cmd = super::help::localized();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    // One section for each subcommand, with its own options.
    let mut buf = Vec::new();
    clap_mangen::roff::Roff::new()
        .control("SH", ["COMMANDS"])
        .to_writer(&mut buf)?;
    w.write_all(&buf)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("nhacviec {}", sub.get_name());
        let m = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
        let mut roff = clap_mangen::roff::Roff::new();
        roff.control("SS", [name.as_str()]);
        roff.to_writer(&mut *w)?;
        // The subcommand's own sections sit under its `.SS` heading: their `.SH` lines go.
        let mut section = Vec::new();
        m.render_synopsis_section(&mut section)?;
        m.render_description_section(&mut section)?;
        m.render_options_section(&mut section)?;
        for line in String::from_utf8_lossy(&section).split_inclusive('\n') {
            if !line.starts_with(".SH ") {
                w.write_all(line.as_bytes())?;
            }
        }
    }
    write_exit_status(w)?;
    man.render_version_section(w)
}

/// The exit codes, as in the README's table.
fn write_exit_status(w: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::roff::Roff::new()
        .control("SH", ["EXIT STATUS"])
        .control("TP", [])
        .text([clap_mangen::roff::roman("0")])
        .text([clap_mangen::roff::roman(
            "Done; also when the reader of the output went away (nhacviec log | head -1).",
        )])
        .control("TP", [])
        .text([clap_mangen::roff::roman("1")])
        .text([clap_mangen::roff::roman(
            "The config has errors, the ledger cannot be read, or a reminder was not delivered.",
        )])
        .control("TP", [])
        .text([clap_mangen::roff::roman("2")])
        .text([clap_mangen::roff::roman(
            "Usage: an unknown option, a date that cannot be read, an unknown office or task.",
        )])
        .to_writer(w)
}

/// A completion script for `shell`.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    super::render::to_stdout(
        crate::t!("script gợi ý lệnh", "the completion script"),
        |w| {
            clap_complete::generate(shell, &mut Cli::command(), "nhacviec", &mut *w);
            Ok(())
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_names_every_subcommand_and_the_exit_codes() {
        let man = super::super::render::to_string(write_man);
        assert!(man.starts_with(".ie \\n(.g .ds Aq"), "{}", &man[..80]);
        for sub in Cli::command().get_subcommands() {
            let heading = format!(".SS \"nhacviec {}\"", sub.get_name());
            assert!(man.contains(&heading), "{heading}");
        }
        assert!(man.contains(".SH \"EXIT STATUS\""));
        assert!(man.contains("\\-\\-wide"));
    }
}
