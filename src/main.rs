//! The `sluice` command line: Logstash's flags, so muscle memory works.

use anyhow::Context as _;
use clap::Parser;
use sluice::config::Source;
use sluice::settings::{parse_bytes, LogFormat, Ordered, QueueType, Settings};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Events are allocated on input threads and freed on workers; mimalloc handles that
/// cross-thread pattern markedly better than the system allocator. Each thread counts
/// its allocations, which decide where a finished batch is freed (`sluice::recycle`).
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

struct CountingAllocator;

// SAFETY: every call is passed through unchanged to mimalloc, a correct GlobalAlloc; the
// only addition is a thread-local counter increment, which neither allocates nor
// unwinds, so the layout and pointer contracts are mimalloc's own.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        sluice::recycle::note_allocation();
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract, passed on as is.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        sluice::recycle::note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator, that is from mimalloc, with `layout`.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        sluice::recycle::note_allocation();
        // SAFETY: as for `dealloc`, with GlobalAlloc::realloc's contract on `new_size`.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// Hands the memory mimalloc keeps after a burst back to the operating system: the
/// calling thread's free pages, and every arena's freed pages without waiting for their
/// purge delay. Inputs call it (rate-limited) when a connection that held much closes.
fn release_freed_memory() {
    // SAFETY: mi_collect takes no pointers and only walks mimalloc's own structures,
    // which it synchronizes itself; any thread may call it at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "A streaming log pipeline processor that runs Logstash pipelines",
    after_help = "Examples:\n  sluice -f pipelines/quickstart.conf\n  sluice -e 'input { stdin {} } output { stdout {} }'\n  sluice -t -f pipelines/\n  sluice grok '%{COMBINEDAPACHELOG}' < access.log"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Pipeline configuration: a file, a directory (files in lexical order) or a glob.
    #[arg(short = 'f', long = "path.config", value_name = "PATH")]
    path_config: Option<String>,

    /// Pipeline configuration given as a string.
    #[arg(short = 'e', long = "config.string", value_name = "CONFIG")]
    config_string: Option<String>,

    /// Check the configuration and exit.
    #[arg(short = 't', long = "config.test_and_exit")]
    test_and_exit: bool,

    /// Process escape sequences (\n, \t, \", ...) in quoted configuration strings.
    #[arg(long = "config.support_escapes")]
    support_escapes: bool,

    /// Pipeline workers (default: number of cores).
    #[arg(short = 'w', long = "pipeline.workers", value_name = "N")]
    workers: Option<usize>,

    /// Whether events leave in the order they came in: auto (ordered with -w 1), true
    /// (refuses more than one worker) or false [default: auto].
    #[arg(long = "pipeline.ordered", value_name = "auto|true|false")]
    ordered: Option<String>,

    /// Directory of logstash.yml and pipelines.yml. Without -f and -e, its
    /// pipelines.yml lists the pipelines to run.
    #[arg(long = "path.settings", value_name = "DIR")]
    path_settings: Option<PathBuf>,

    /// Events per batch [default: 125].
    #[arg(short = 'b', long = "pipeline.batch.size", value_name = "N")]
    batch_size: Option<usize>,

    /// Milliseconds to wait for a batch to fill before processing it anyway [default: 50].
    #[arg(long = "pipeline.batch.delay", value_name = "MS")]
    batch_delay: Option<u64>,

    /// Bound of the in-memory queue, in events [default: 1024].
    #[arg(long = "queue.max_events", value_name = "N")]
    queue_max_events: Option<usize>,

    /// Bound of the queue in bytes (e.g. 64mb): in memory [default: 64mb], or of the
    /// pages on disk with --queue.type persisted [default: 1gb].
    #[arg(long = "queue.max_bytes", value_name = "SIZE")]
    queue_max_bytes: Option<String>,

    /// Where batches wait: memory, or persisted (on disk, survives a crash) [default: memory].
    #[arg(long = "queue.type", value_name = "TYPE")]
    queue_type: Option<String>,

    /// Directory of the persisted queue [default: <path.data>/queue].
    #[arg(long = "path.queue", value_name = "PATH")]
    path_queue: Option<PathBuf>,

    /// Size of one persisted queue page [default: 64mb].
    #[arg(long = "queue.page_capacity", value_name = "SIZE")]
    queue_page_capacity: Option<String>,

    /// Sync the persisted queue after this many writes; 1 syncs every batch before its
    /// input is acked [default: 1024].
    #[arg(long = "queue.checkpoint.writes", value_name = "N")]
    queue_checkpoint_writes: Option<usize>,

    /// Sync the persisted queue at least this often, in milliseconds [default: 1000].
    #[arg(long = "queue.checkpoint.interval", value_name = "MS")]
    queue_checkpoint_interval: Option<u64>,

    /// With --queue.type persisted: unread records also kept in memory, in bytes of
    /// their pages (e.g. 64mb), so workers need not read them back from disk
    /// [default: the smaller of 64mb and --queue.max_bytes / 4].
    #[arg(long = "queue.memory_window", value_name = "SIZE")]
    queue_memory_window: Option<String>,

    /// Bytes network inputs (beats, tcp) may hold outside the queue, all connections
    /// together (e.g. 64mb); when spent, connections stop reading [default: 128mb].
    #[arg(long = "input.memory.max_bytes", value_name = "SIZE")]
    input_memory_max_bytes: Option<String>,

    /// Bytes each input connection may hold without drawing on
    /// --input.memory.max_bytes [default: 128kb].
    #[arg(long = "input.memory.per_connection", value_name = "SIZE")]
    input_memory_per_connection: Option<String>,

    /// Size cap of the dead letter queue (e.g. 1gb) [default: 1gb].
    #[arg(long = "dead_letter_queue.max_bytes", value_name = "SIZE")]
    dlq_max_bytes: Option<String>,

    /// What a full dead letter queue drops: drop_newer or drop_older [default: drop_newer].
    #[arg(long = "dead_letter_queue.storage_policy", value_name = "POLICY")]
    dlq_storage_policy: Option<String>,

    /// Seconds a shutdown waits for outputs to deliver in-flight events before failing
    /// them (they are counted and logged; the exit status is non-zero); 0 waits for ever
    /// [default: 60].
    #[arg(long = "shutdown.timeout", value_name = "SECONDS")]
    shutdown_timeout: Option<u64>,

    /// Directory for state: dead letter queue, persisted queue [default: data].
    #[arg(long = "path.data", value_name = "DIR")]
    path_data: Option<PathBuf>,

    /// Address of the HTTP API [default: 127.0.0.1].
    #[arg(long = "api.http.host", value_name = "HOST")]
    api_host: Option<String>,

    /// Port of the HTTP API, or a range whose first free port is used [default: 9600-9700].
    #[arg(long = "api.http.port", value_name = "PORT[-PORT]")]
    api_port: Option<String>,

    /// Serve the HTTP API (status page, error statistics, node stats, /metrics).
    #[arg(long = "api.enabled", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    api_enabled: bool,

    /// Bearer token the HTTP API requires [env: SLUICE_API_TOKEN].
    #[arg(long = "api.auth.token", value_name = "TOKEN")]
    api_token: Option<String>,

    /// Serve the HTTP API on a non-loopback address without a token.
    #[arg(long = "api.allow_insecure")]
    api_allow_insecure: bool,

    /// Log level: error, warn, info, debug, trace.
    #[arg(long = "log.level", value_name = "LEVEL", default_value = "info")]
    log_level: String,

    /// Log format: plain or json (one JSON object per line).
    #[arg(long = "log.format", value_name = "FORMAT", default_value = "plain")]
    log_format: String,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Try a grok pattern: prints, per line of stdin (or --match-file), the captured
    /// fields as JSON or how far the pattern got.
    Grok {
        /// The pattern, e.g. '%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:msg}'.
        pattern: String,
        /// Read the lines from this file instead of stdin.
        #[arg(long = "match-file", value_name = "FILE")]
        match_file: Option<PathBuf>,
        /// Extra pattern files (a directory or a file), as grok's patterns_dir.
        #[arg(long = "patterns-dir", value_name = "PATH")]
        patterns_dir: Vec<PathBuf>,
    },
}

fn grok_debug(pattern: &str, match_file: Option<&PathBuf>, dirs: &[PathBuf]) -> anyhow::Result<()> {
    use sluice::grok::{debug::Debugger, library::PatternLibrary};
    use std::io::{BufRead, Write};
    let mut lib = PatternLibrary::bundled();
    for d in dirs {
        lib.add_dir(d, "*")?;
    }
    let debugger = Debugger::new(pattern, &lib)?;
    let input: Box<dyn BufRead> = match match_file {
        Some(f) => Box::new(std::io::BufReader::new(
            std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut out = std::io::stdout().lock();
    for line in input.lines() {
        let line = line?;
        let line = line.strip_suffix('\r').unwrap_or(&line);
        writeln!(out, "{}", debugger.line(line))?;
    }
    Ok(())
}

fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("sluice={level},warn"))
        .with_context(|| format!("invalid --log.level `{level}`"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // Its own report of a failed write uses eprintln!, which panics when stderr is a
        // closed pipe (`sluice ... 2>&1 | head`).
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Plain => builder.init(),
    }
    Ok(())
}

/// The pipelines to run: the one -f/-e names, or else those of pipelines.yml in
/// --path.settings. Settings come from the defaults, then logstash.yml, then the flags,
/// then (per pipeline) pipelines.yml.
fn pipelines(cli: &Cli) -> anyhow::Result<Vec<Settings>> {
    let mut base = Settings::default();
    if let Some(dir) = &cli.path_settings {
        sluice::settings::apply_logstash_yml(dir, &mut base)?;
    }
    apply_flags(cli, &mut base)?;
    let from_flags = match (&cli.path_config, &cli.config_string) {
        (Some(_), Some(_)) => anyhow::bail!("give either -f or -e, not both"),
        (Some(p), None) => Some(Source::Path(p.clone())),
        (None, Some(e)) => Some(Source::Text(e.clone())),
        (None, None) => None,
    };
    let pipelines_yml = cli.path_settings.as_ref().map(|d| d.join("pipelines.yml"));
    if let Some(source) = from_flags {
        if let Some(file) = pipelines_yml.as_ref().filter(|f| f.exists()) {
            tracing::warn!(
                file = %file.display(),
                "ignoring pipelines.yml because -f or -e was given"
            );
        }
        base.source = source;
        base.validate().map_err(anyhow::Error::msg)?;
        return Ok(vec![base]);
    }
    // logstash.yml may name the configuration itself, as Logstash allows.
    if base.source != Source::Text(String::new()) {
        base.validate().map_err(anyhow::Error::msg)?;
        return Ok(vec![base]);
    }
    match &cli.path_settings {
        Some(dir) => Ok(sluice::settings::read_pipelines_yml(dir, &base)?),
        None => anyhow::bail!(
            "no configuration: give -f PATH, -e CONFIG or --path.settings DIR (with a pipelines.yml) (see --help)"
        ),
    }
}

/// Applies the command-line flags to `s`.
fn apply_flags(cli: &Cli, s: &mut Settings) -> anyhow::Result<()> {
    s.test_and_exit |= cli.test_and_exit;
    s.support_escapes |= cli.support_escapes;
    if let Some(w) = cli.workers {
        anyhow::ensure!(w > 0, "-w must be at least 1");
        s.workers = w;
    }
    if let Some(o) = &cli.ordered {
        s.ordered = Ordered::parse(o).ok_or_else(|| {
            anyhow::anyhow!("--pipeline.ordered must be auto, true or false, not `{o}`")
        })?;
    }
    if let Some(b) = cli.batch_size {
        anyhow::ensure!(b > 0, "-b must be at least 1");
        s.batch_size = b;
    }
    if let Some(ms) = cli.batch_delay {
        s.batch_delay = Duration::from_millis(ms);
    }
    if let Some(n) = cli.queue_max_events {
        s.queue_max_events = n.max(1);
    }
    if let Some(t) = &cli.queue_type {
        s.queue_type = QueueType::parse(t).ok_or_else(|| {
            anyhow::anyhow!("--queue.type must be memory or persisted, not `{t}`")
        })?;
    }
    if let Some(size) = &cli.queue_max_bytes {
        let n = parse_bytes(size).map_err(|e| anyhow::anyhow!("--queue.max_bytes: {e}"))?;
        match s.queue_type {
            QueueType::Memory => s.queue_max_bytes = n,
            QueueType::Persisted => s.queue_disk_max_bytes = n as u64,
        }
    }
    if let Some(dir) = &cli.path_queue {
        s.queue_path = Some(dir.clone());
    }
    if let Some(size) = &cli.queue_page_capacity {
        s.queue_page_capacity =
            parse_bytes(size).map_err(|e| anyhow::anyhow!("--queue.page_capacity: {e}"))? as u64;
    }
    if let Some(n) = cli.queue_checkpoint_writes {
        s.queue_checkpoint_writes = n.max(1);
    }
    if let Some(ms) = cli.queue_checkpoint_interval {
        s.queue_checkpoint_interval = Duration::from_millis(ms.max(1));
    }
    if let Some(size) = &cli.queue_memory_window {
        s.queue_memory_window = Some(
            parse_bytes(size).map_err(|e| anyhow::anyhow!("--queue.memory_window: {e}"))? as u64,
        );
    }
    if let Some(size) = &cli.input_memory_max_bytes {
        let n = parse_bytes(size).map_err(|e| anyhow::anyhow!("--input.memory.max_bytes: {e}"))?;
        anyhow::ensure!(n > 0, "--input.memory.max_bytes must be more than 0");
        s.input_memory_max_bytes = n;
    }
    if let Some(size) = &cli.input_memory_per_connection {
        s.input_memory_per_connection =
            parse_bytes(size).map_err(|e| anyhow::anyhow!("--input.memory.per_connection: {e}"))?;
    }
    if let Some(size) = &cli.dlq_max_bytes {
        s.dlq_max_bytes = parse_bytes(size)
            .map_err(|e| anyhow::anyhow!("--dead_letter_queue.max_bytes: {e}"))?
            as u64;
    }
    if let Some(policy) = &cli.dlq_storage_policy {
        s.dlq_storage_policy = sluice::queue::dlq::StoragePolicy::parse(policy).ok_or_else(|| {
            anyhow::anyhow!(
                "--dead_letter_queue.storage_policy must be drop_newer or drop_older, not `{policy}`"
            )
        })?;
    }
    if let Some(secs) = cli.shutdown_timeout {
        s.shutdown_timeout = (secs > 0).then(|| Duration::from_secs(secs));
    }
    if let Some(dir) = &cli.path_data {
        s.data_dir = dir.clone();
    }
    if let Some(host) = &cli.api_host {
        s.api_host = host.clone();
    }
    if let Some(ports) = &cli.api_port {
        (s.api_port, s.api_port_end) = sluice::settings::parse_port_range(ports)
            .map_err(|e| anyhow::anyhow!("--api.http.port: {e}"))?;
    }
    s.api_enabled = cli.api_enabled;
    s.api_allow_insecure = cli.api_allow_insecure;
    s.api_token = cli
        .api_token
        .clone()
        .or_else(|| std::env::var("SLUICE_API_TOKEN").ok())
        .filter(|t| !t.is_empty())
        .map(sluice::settings::Secret);
    Ok(())
}

/// Prints a line, ignoring a closed stream: `println!` would panic on one.
fn say(out: &mut impl std::io::Write, line: std::fmt::Arguments) {
    let _ = writeln!(out, "{line}");
}

fn main() -> ExitCode {
    sluice::inputs::budget::MEMORY_RELEASE.set(release_freed_memory);
    let cli = Cli::parse();
    if let Some(Command::Grok {
        pattern,
        match_file,
        patterns_dir,
    }) = &cli.command
    {
        return match grok_debug(pattern, match_file.as_ref(), patterns_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                say(&mut std::io::stderr(), format_args!("error: {e:#}"));
                ExitCode::from(2)
            }
        };
    }
    let format = match cli.log_format.as_str() {
        "json" => LogFormat::Json,
        "plain" => LogFormat::Plain,
        other => {
            say(
                &mut std::io::stderr(),
                format_args!("error: --log.format must be plain or json, not `{other}`"),
            );
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(&cli.log_level, format) {
        say(&mut std::io::stderr(), format_args!("error: {e:#}"));
        return ExitCode::from(2);
    }
    let pipelines = match pipelines(&cli) {
        Ok(p) => p,
        Err(e) => {
            say(&mut std::io::stderr(), format_args!("error: {e:#}"));
            return ExitCode::from(2);
        }
    };
    // `config.test_and_exit` may also come from logstash.yml.
    if pipelines.iter().any(|p| p.test_and_exit) {
        let bus = sluice::plugin::PipelineBus::new();
        return match sluice::pipeline::load_all(&pipelines, &bus) {
            Ok(_) => {
                say(&mut std::io::stdout(), format_args!("Configuration OK"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                say(&mut std::io::stderr(), format_args!("{e}"));
                ExitCode::FAILURE
            }
        };
    }
    // The API's settings are the run's, the same in every pipeline.
    let api = match pipelines.first().map(sluice::api::start) {
        Some(Ok(api)) => api,
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot start the http api");
            say(&mut std::io::stderr(), format_args!("error: {e}"));
            return ExitCode::FAILURE;
        }
        None => {
            say(
                &mut std::io::stderr(),
                format_args!("error: no pipelines to run"),
            );
            return ExitCode::from(2);
        }
    };
    let outcome = sluice::pipeline::run_all(pipelines);
    // Stops serving and writes the error statistics snapshot.
    api.stop();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "sluice stopped with an error");
            say(&mut std::io::stderr(), format_args!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}
