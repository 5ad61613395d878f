//! Every command the README and the book show, in their shell blocks or inline in the prose,
//! is one a reader can copy: it parses with the `sda` command line, names only registered
//! plugins (or existing examples), and passes parameters those plugins accept. Every training
//! configuration the book shows parses as a [`TrainConfig`] with a valid network. Nothing is
//! run here; what the commands compute is checked by the other tests.

#[path = "../examples/custom_blanket.rs"]
#[allow(dead_code)]
mod custom_blanket;
#[path = "../examples/custom_observation.rs"]
#[allow(dead_code)]
mod custom_observation;
#[path = "../examples/custom_sampler.rs"]
#[allow(dead_code)]
mod custom_sampler;
#[path = "../examples/custom_system.rs"]
#[allow(dead_code)]
mod custom_system;
#[path = "../examples/tanh_observation.rs"]
#[allow(dead_code)]
mod tanh_observation;

use std::path::{Path, PathBuf};

use sda::registry::{
    build, build_for, find, parse_params, BlanketPlugin, GuidancePlugin, ObservationPlugin,
    SamplerPlugin, SchedulePlugin, SystemPlugin,
};
use sda::score::train::TrainConfig;
use sda::TrajectoryShape;

/// One fenced block of a Markdown file: its language tag, first line and text.
struct Block {
    lang: String,
    line: usize,
    text: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README and every book chapter.
fn documents() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("book/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.push(root().join("README.md"));
    files
}

fn blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(tag) = line.trim_start().strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => {
                    open = Some(Block {
                        lang: tag.trim().to_string(),
                        line: i + 2,
                        text: String::new(),
                    })
                }
            }
        } else if let Some(b) = open.as_mut() {
            b.text.push_str(line);
            b.text.push('\n');
        }
    }
    assert!(open.is_none(), "{}: unclosed code fence", path.display());
    out
}

/// Splits a shell line into words: single and double quotes group, `#` at the start of a word
/// begins a comment. Enough for the commands the documents show.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None if c == '#' && !in_word => break,
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote in: {line}");
    if in_word {
        words.push(word);
    }
    words
}

/// A documented command: where it is, the example it runs (if any), the arguments given to
/// `sda` (after `cargo run … --`, or after `sda`), and whether it is an inline mention in the
/// prose, which may leave out required arguments (`sda train --output preconditioned`).
struct Documented {
    place: String,
    example: Option<String>,
    args: Vec<String>,
    fragment: bool,
}

/// `(example, arguments)` of a `cargo run [--example E] -- …` or `sda …` command line.
fn command_of(words: &[String]) -> Option<(Option<String>, Vec<String>)> {
    match words {
        [first, rest @ ..] if first == "sda" && !rest.is_empty() => Some((None, rest.to_vec())),
        [cargo, run, ..] if cargo == "cargo" && run == "run" => {
            let split = words.iter().position(|w| w == "--");
            let before = &words[..split.unwrap_or(words.len())];
            let example = before
                .iter()
                .position(|w| w == "--example")
                .map(|i| before[i + 1].clone());
            Some((
                example,
                split.map_or_else(Vec::new, |s| words[s + 1..].to_vec()),
            ))
        }
        _ => None,
    }
}

/// Inline code spans of the prose (outside fenced blocks) with their first line; a span may
/// run over a line break.
fn prose_spans(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            prose.push('\n');
            continue;
        }
        if !fenced {
            prose.push_str(line);
        }
        prose.push('\n');
    }
    let mut spans = Vec::new();
    let mut rest = prose.as_str();
    let mut offset = 0;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else {
            break;
        };
        let line = 1 + prose[..offset + open].matches('\n').count();
        spans.push((line, rest[open + 1..open + 1 + len].to_string()));
        offset += open + len + 2;
        rest = &rest[open + len + 2..];
    }
    spans
}

fn documented_commands() -> Vec<Documented> {
    let mut out = Vec::new();
    for path in documents() {
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        for block in blocks(&path) {
            if !matches!(block.lang.as_str(), "" | "sh" | "bash") {
                continue;
            }
            let joined = block.text.replace("\\\n", " ");
            for (j, line) in joined.lines().enumerate() {
                if let Some((example, args)) = command_of(&shell_words(line)) {
                    out.push(Documented {
                        place: format!("{name}, block at line {}, command {}", block.line, j + 1),
                        example,
                        args,
                        fragment: false,
                    });
                }
            }
        }
        for (line, span) in prose_spans(&path) {
            if let Some((example, args)) = command_of(&shell_words(&span)) {
                out.push(Documented {
                    place: format!("{name}, line {line} (inline)"),
                    example,
                    args,
                    fragment: true,
                });
            }
        }
    }
    out
}

/// The value of `--flag` in `args`, if given.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    flags(args, name).first().copied()
}

/// The values of every occurrence of the flag `name`.
fn flags<'a>(args: &'a [String], name: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].as_str())
        .collect()
}

/// A trajectory shape the named observation can be built for: Kolmogorov fields of 2×64×64,
/// Lorenz-63 states of 3, a Lorenz-96 ring of the size its dataset's name ends with
/// (`data/lorenz96-1024`), otherwise the oracle's states of 2.
fn shape_for(observation: &str, len: Option<usize>, data: Option<&str>) -> TrajectoryShape {
    let ring = data
        .and_then(|d| d.rsplit_once("lorenz96-"))
        .and_then(|(_, n)| n.parse::<usize>().ok());
    if let Some(n) = ring {
        TrajectoryShape::new(len.unwrap_or(16), n)
    } else if observation.starts_with("kolmogorov-") || observation == "field" {
        TrajectoryShape::new(len.unwrap_or(8), 2 * 64 * 64)
    } else if observation == "lo"
        || observation == "hi"
        || data.is_some_and(|d| d.contains("lorenz63"))
    {
        TrajectoryShape::new(len.unwrap_or(sda::experiments::lorenz::EVAL_LEN), 3)
    } else {
        TrajectoryShape::new(len.unwrap_or(16), 2)
    }
}

/// Checks the plugins a parsed command names and the parameters it passes them. The plugin a
/// `--…-params` flag goes to is the one named beside it or the command's default.
fn check_plugins(args: &[String]) -> Result<(), String> {
    let command = args.first().map(String::as_str).unwrap_or("");
    let len = flag(args, "--len")
        .map(|l| l.parse::<usize>().map_err(|e| format!("--len {l}: {e}")))
        .transpose()?;
    let err = |e: sda::Error| e.to_string();

    if command == "generate" {
        let system = args.get(1).map(String::as_str).unwrap_or("");
        // an upper-case word in the prose (`generate NAME`) is a placeholder
        let placeholder = system.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        if !placeholder && !matches!(system, "lorenz63" | "kolmogorov") {
            let params = parse_params(flag(args, "--system-params").unwrap_or("")).map_err(err)?;
            build::<SystemPlugin>(system, &params).map_err(err)?;
        }
        return Ok(());
    }

    let default_observation = if command == "oracle" { "pick" } else { "lo" };
    let observation = flag(args, "--observation").unwrap_or(default_observation);
    find::<ObservationPlugin>(observation).map_err(err)?;
    if let Some(p) = flag(args, "--observation-params") {
        let shape = shape_for(observation, len, flag(args, "--data"));
        build_for::<ObservationPlugin>(observation, &parse_params(p).map_err(err)?, shape)
            .map_err(err)?;
    }

    let guidance = flag(args, "--guidance").unwrap_or("sda");
    if guidance != "exact" {
        find::<GuidancePlugin>(guidance).map_err(err)?;
        if let Some(p) = flag(args, "--guidance-params") {
            build::<GuidancePlugin>(guidance, &parse_params(p).map_err(err)?).map_err(err)?;
        }
    }

    // `evaluate` takes --sampler and --sampler-params repeated, paired in order
    let samplers = flags(args, "--sampler");
    let sampler_params = flags(args, "--sampler-params");
    let samplers = if samplers.is_empty() {
        vec!["pc"]
    } else {
        samplers
    };
    for (i, sampler) in samplers.iter().enumerate() {
        find::<SamplerPlugin>(sampler).map_err(err)?;
        if let Some(p) = sampler_params.get(i) {
            build::<SamplerPlugin>(sampler, &parse_params(p).map_err(err)?).map_err(err)?;
        }
    }

    // --smoother and --smoother-params, paired in order (given once per smoother or never): a
    // window smoother or an ensemble filter run through the window
    let smoothers = flags(args, "--smoother");
    let smoother_params = flags(args, "--smoother-params");
    if !smoother_params.is_empty() && smoother_params.len() != smoothers.len() {
        return Err(format!(
            "{} --smoother-params for {} --smoother",
            smoother_params.len(),
            smoothers.len()
        ));
    }
    for (i, smoother) in smoothers.iter().enumerate() {
        let p = parse_params(smoother_params.get(i).copied().unwrap_or("")).map_err(err)?;
        sda::registry::window_method(smoother, &p).map_err(err)?;
    }

    let schedule = flag(args, "--schedule").unwrap_or("vp-cosine");
    find::<SchedulePlugin>(schedule).map_err(err)?;
    if let Some(p) = flag(args, "--schedule-params") {
        build::<SchedulePlugin>(schedule, &parse_params(p).map_err(err)?).map_err(err)?;
    }

    let blanket = flag(args, "--blanket").unwrap_or("temporal-window");
    find::<BlanketPlugin>(blanket).map_err(err)?;
    if let Some(p) = flag(args, "--blanket-params") {
        build::<BlanketPlugin>(blanket, &parse_params(p).map_err(err)?).map_err(err)?;
    }
    Ok(())
}

#[test]
fn the_documents_show_commands() {
    // guards the extraction itself: a change of fence style must not make the checks vacuous
    let commands = documented_commands();
    assert!(
        commands.len() >= 40,
        "only {} commands found",
        commands.len()
    );
    for needle in [
        "quickstart",
        "assimilate",
        "evaluate",
        "train",
        "generate",
        "oracle",
    ] {
        assert!(
            commands
                .iter()
                .any(|c| c.args.first().is_some_and(|a| a == needle)),
            "no documented `{needle}` command"
        );
    }
    assert!(commands.iter().any(|c| c.example.is_some()));
    assert!(commands.iter().filter(|c| c.fragment).count() >= 10);
}

#[test]
fn every_documented_command_parses_and_names_registered_plugins() {
    let mut failures = Vec::new();
    for c in documented_commands() {
        if let Some(example) = &c.example {
            if !root()
                .join("examples")
                .join(format!("{example}.rs"))
                .is_file()
            {
                failures.push(format!("{}: no example named {example}", c.place));
            }
            // the plugin examples are the CLI; other examples read arguments of their own
            if !matches!(
                example.as_str(),
                "custom_observation" | "custom_system" | "custom_blanket" | "custom_sampler"
            ) {
                continue;
            }
        }
        let argv = std::iter::once("sda".to_string()).chain(c.args.iter().cloned());
        match sda::cli::command().try_get_matches_from(argv) {
            Ok(_) => {}
            Err(e) if c.fragment && e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
            }
            Err(e) => {
                failures.push(format!("{}: {}\n{e}", c.place, c.args.join(" ")));
                continue;
            }
        }
        if let Err(e) = check_plugins(&c.args) {
            failures.push(format!("{}: {}\n{e}", c.place, c.args.join(" ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_documented_training_configuration_is_valid() {
    let mut seen = 0;
    for path in documents() {
        for block in blocks(&path) {
            if block.lang != "toml" || !block.text.contains("[network]") {
                continue;
            }
            seen += 1;
            let place = format!("{}, block at line {}", path.display(), block.line);
            let cfg: TrainConfig = toml::from_str(&block.text)
                .unwrap_or_else(|e| panic!("{place}: not a training configuration: {e}"));
            cfg.network
                .validate()
                .unwrap_or_else(|e| panic!("{place}: {e}"));
        }
    }
    assert!(seen >= 3, "only {seen} training configurations found");
}

/// Every Rust block of the book is compiled: a plain `rust` block is a doc-test of the chapter
/// (`src/lib.rs` includes each chapter), and an `ignore`d one holds only `{{#include}}`s of
/// examples, which cargo builds (and the plugin tests run). Every chapter is in that list.
#[test]
fn every_rust_block_of_the_book_is_compiled() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let mut checked = 0;
    for path in documents() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rust: Vec<Block> = blocks(&path)
            .into_iter()
            .filter(|b| b.lang.starts_with("rust"))
            .collect();
        if path.starts_with(root().join("book")) {
            assert!(
                lib.contains(&format!("\"{name}\"")),
                "{name} is not among the chapters src/lib.rs compiles as doc-tests"
            );
        }
        for b in rust {
            checked += 1;
            if !b.lang.split(',').any(|t| t == "ignore") {
                continue;
            }
            for line in b.text.lines().filter(|l| !l.trim().is_empty()) {
                let target = line
                    .trim()
                    .strip_prefix("{{#include ../../")
                    .and_then(|t| t.strip_suffix("}}"))
                    .map(|t| t.split(':').next().unwrap_or(t));
                let compiled = target.is_some_and(|t| {
                    t.starts_with("examples/") && t.ends_with(".rs") && root().join(t).is_file()
                });
                assert!(
                    compiled,
                    "{name}:{}: an ignored Rust block may only include an example, not '{line}'",
                    b.line
                );
            }
        }
    }
    assert!(checked >= 6, "only {checked} Rust blocks found");
}

#[test]
fn a_wrong_command_is_caught() {
    // the checks above can fail: a misspelt flag, an unknown plugin, a bad parameter
    let words = |s: &str| shell_words(s);
    assert!(sda::cli::command()
        .try_get_matches_from(std::iter::once("sda".to_string()).chain(words("oracle --sample 10")))
        .is_err());
    assert!(check_plugins(&words("oracle --observation nothing")).is_err());
    assert!(check_plugins(&words("oracle --schedule vp-cos")).is_err());
    assert!(check_plugins(&words(
        "oracle --sampler-params 'corrections = 1, tua = 0.5'"
    ))
    .is_err());
    assert!(check_plugins(&words(
        "assimilate --len 8 --observation kolmogorov-saturation --observation-params 'sigma = 1'"
    ))
    .is_err());
    assert!(check_plugins(&words(
        "oracle --guidance dps --guidance-params 'gamma = 0.1'"
    ))
    .is_err());
    assert!(check_plugins(&words("generate shifted-orcale")).is_err());
    assert!(check_plugins(&words("generate shifted-oracle --system-params 'scal = 2'")).is_err());
    assert_eq!(words("a 'b c' \"d\" e # f"), vec!["a", "b c", "d", "e"]);
}
