"""The `mgca` command line.

    mgca synth --out DIR             write a synthetic dataset (canonical Parquet tables)
    mgca run                         the whole study on fresh synthetic data → reports/run-…/
    mgca run --source canonical --path DIR --out OUT
    mgca config                      print the default configuration (YAML, units in key names)
    mgca codes --source omop --path cdm.duckdb
                                     which codes map to what, and look-alike codes no list maps
    mgca serve [--config FILE]       run the study on the config's cron schedule (Prefect)

Errors the user can fix (bad config, missing files, malformed input) print one message that
names the file, column or key and the fix, and exit with status 2; ``--debug`` adds the
traceback.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mgca import __version__
from mgca.analysis.privacy import count_rule, display_record_count
from mgca.sources.resolve import SOURCE_KINDS

if TYPE_CHECKING:
    from mgca.config import MgcaConfig


USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError)


RUN_LOG = "mgca-run.log"
"""Prefect's full log of the latest `mgca run` (tracebacks included), beside the run folder."""


class _NoErrorsOnConsole(logging.Filter):
    """Keeps Prefect's ERROR records (a failed task or flow, with its traceback) off the
    console: the run's one-line error message says what went wrong; the log file has the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR and "in state Failed(" not in record.getMessage()


def _console_handlers() -> list[logging.Handler]:
    names = ["", *(n for n in logging.Logger.manager.loggerDict if n.startswith("prefect"))]
    found: list[logging.Handler] = []
    for name in names:
        for handler in getattr(logging.getLogger(name), "handlers", []):
            is_console = isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            )
            if is_console and handler not in found:
                found.append(handler)
    return found


@contextmanager
def prefect_log_file(path: Path, quiet_errors: bool = True) -> Iterator[Path]:
    """Write Prefect's log (every level, tracebacks included) to ``path`` and, with
    ``quiet_errors``, keep its ERROR records off the console while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    prefect_logger = logging.getLogger("prefect")
    prefect_logger.addHandler(handler)
    muted = _console_handlers() if quiet_errors else []
    quiet = _NoErrorsOnConsole()
    for console in muted:
        console.addFilter(quiet)
    try:
        yield path
    finally:
        for console in muted:
            console.removeFilter(quiet)
        prefect_logger.removeHandler(handler)
        handler.close()


def _fail(exc: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(exc)
    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mgca")
def main() -> None:
    """mgca: does calcium correct once magnesium is repleted?

    A cohort pipeline for clinical lab time series. It loads lab results and medication
    administrations into DuckDB, derives hypomagnesaemia and hypocalcaemia episodes in SQL,
    emulates a target trial (Mg repletion within a grace period after time zero vs none),
    fits statsmodels regressions and writes a self-contained HTML report.

    Start with `mgca run`: it generates a synthetic hospital, runs the whole study and prints
    where the report is. All thresholds live in one YAML config (`mgca config` prints it).
    """


@main.command()
@click.option(
    "--world",
    type=click.Choice(["effect", "null"]),
    default="effect",
    show_default=True,
    help="effect: low Mg suppresses PTH and lowers Ca, repletion corrects it. "
    "null: Mg has no causal effect on Ca (illness still moves both).",
)
@click.option(
    "--regime",
    type=click.Choice(["default", "ward"]),
    default="default",
    show_default=True,
    help="default: the generator's original world (albumin on 60 % of routine panels, about "
    "half of the index episodes given Mg at once). ward: shaped like real ward extracts: "
    "albumin on admission then every 2-4 days (a third of Ca results without an albumin "
    "within 24 h), about 80 % of index episodes given Mg within 6 h (strong confounding by "
    "the recorded Mg and Ca), morning bloods often dropped in the last 36 h before discharge.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."
)
@click.option(
    "--stays",
    type=click.IntRange(min=10),
    default=4000,
    show_default=True,
    help="Number of hospital stays to simulate.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write persons, encounters, lab_results and medication_administrations "
    "Parquet files and manifest.json into (e.g. data/synthetic/demo).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def synth(world: str, regime: str, seed: int, stays: int, out: Path, debug: bool) -> None:
    """Write a seeded synthetic lab world in the canonical schema.

    Each stay has an illness that lowers Mg and Ca and resolves over days, Mg drifting low
    with PPIs and loop diuretics, a Ca set point that low Mg pulls down (effect world only),
    clinicians who give IV MgSO4 more often the lower the measured Mg and Ca, morning labs
    with re-checks after repletion, analytic noise and missing albumin. The same seed always
    gives the same files. --regime ward makes it harsher, like real ward extracts (sparse
    albumin, strongly confounded and unbalanced repletion, fewer bloods before discharge).
    """
    try:
        from mgca.synthetic import generate

        started = time.perf_counter()
        path = generate(
            out,
            n_stays=stays,
            world=world,  # type: ignore[arg-type]
            seed=seed,
            progress=lambda m: click.echo(m, err=True),
            regime=regime,
        )
        click.echo(
            f"wrote synthetic dataset ({stays:,} stays, world={world}, regime={regime}, "
            f"seed={seed}) to {path} "
            f"in {time.perf_counter() - started:.1f} s"
        )
    except USER_ERRORS as exc:
        _fail(exc, debug)


@main.command()
@click.option(
    "--source",
    type=click.Choice(list(SOURCE_KINDS)),
    default="synthetic",
    show_default=True,
    help="Kind of input. synthetic: a folder written by `mgca synth` (or none: one is "
    "generated from the config's synthetic section). canonical: a folder of the four "
    "canonical Parquet tables (README, 'Canonical schema'). mimic: a MIMIC-IV v2/v3 folder "
    "(hosp/, icu/; .csv.gz or Parquet). omop: an OMOP CDM v5.3/5.4 .duckdb file, folder of "
    "CSV/Parquet tables, or postgresql:// URL. fhir: a FHIR R4 bulk-export folder of NDJSON. "
    "meds: a MEDS dataset folder (data/ shards). csv: a long-format extract mapped by the "
    "config's long_format section. README, 'Sources', says what each maps and skips.",
)
@click.option(
    "--path",
    default=None,
    metavar="PATH|URL",
    help="Input location. Omit with --source synthetic to generate a fresh dataset. With "
    "--engine spark and --source canonical, also a URL the cluster reads (s3a://, abfss://, "
    "hdfs://, file://), passed to Spark as typed.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder to write report.html, results.json, cohort.parquet and config.yaml into "
    "[default: a new folder reports/run-<UTC time>-<id>]. An existing folder is replaced "
    "atomically, only once the new run is complete.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Study config YAML [default: the shipped one; see `mgca config`].",
)
@click.option(
    "--screenshot",
    is_flag=True,
    help="Also open report.html in headless Chromium and save the whole page, 1280 px wide, "
    "as report.png.",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Rebuild the derived tables and model fits even if this input, analysis config and "
    "mgca code were seen before (the cache lives in .cache/ beside the run folder).",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default=None,
    help="Where the SQL derivation runs [default: the config's engine.name, duckdb]. spark: "
    "on a Spark cluster reading the canonical Parquet/Delta tables at --path; only the "
    "analytic table and aggregates come back for modelling (needs pip install 'mgca[spark]').",
)
@click.option(
    "--spark-master",
    default=None,
    metavar="URL",
    help="Spark master URL, e.g. spark://host:7077, yarn, local[4] [default: the config's "
    "engine.spark_master, local[2]]. Implies --engine spark.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def run(
    source: str,
    path: str | None,
    out: Path | None,
    config_path: Path | None,
    screenshot: bool,
    no_cache: bool,
    engine: str | None,
    spark_master: str | None,
    debug: bool,
) -> None:
    """Run the whole study as a Prefect flow and write the run folder.

    Steps (each a Prefect task): prepare the source → load DuckDB → derive episodes, exposure,
    windows and attrition in SQL → fit the models → render the report. With no Prefect
    server configured, Prefect starts a temporary local one on 127.0.0.1 for the run; set
    PREFECT_API_URL to report to your own server instead.

    A failure on bad input prints mgca's one-line message; Prefect's log of the run, with
    any traceback, is in mgca-run.log beside the run folder (--debug: on the console too).

    Outputs: report.html and results.json (aggregates only, small counts suppressed),
    cohort.parquet (the analytic table WITH ids: keep it private), config.yaml, and
    private/mgca.duckdb; with --screenshot also report.png (needs Chromium). The folder
    above the run folder gets index.html and history.json (every run there, newest
    first) and .cache/ (private: derived tables keyed on input, analysis config and
    code, so a rerun on unchanged input skips derivation and fits).
    """
    try:
        from mgca.config import load_config
        from mgca.sources.resolve import check_source

        config = load_config(config_path)
        if spark_master is not None and engine == "duckdb":
            raise ValueError("--spark-master needs --engine spark (or no --engine)")
        config = _with_engine(config, engine, spark_master)
        check_source(source, path, config)
        from mgca.run.flow import study_flow
        from mgca.sources.credentials import move_url_password_to_env

        log_dir = out.parent if out else Path("reports")
        with prefect_log_file(log_dir / RUN_LOG, quiet_errors=not debug):
            summary = study_flow(
                source=source,
                # a URL password goes to PGPASSWORD, never into Prefect's stored flow parameters
                path=move_url_password_to_env(path) if path else None,
                out=str(out) if out else None,
                config=config,
                use_cache=not no_cache,
            )
    except USER_ERRORS as exc:
        _fail(exc, debug)
        return
    except RuntimeError as exc:
        from mgca.engine.derive import DerivationError
        from mgca.engine.spark import SparkUnavailableError

        if isinstance(exc, SparkUnavailableError):
            _fail(exc, debug)
            return
        if not isinstance(exc, DerivationError):
            raise
        _fail(
            RuntimeError(
                f"{exc}\nThe SQL step above failed on this input. Re-run with --debug for the "
                "traceback; if the input follows the canonical schema, please report it."
            ),
            debug,
        )
        return
    click.echo("")
    click.echo(f"run folder: {summary.out_dir}")
    click.echo(f"report:     {summary.out_dir / 'report.html'}")
    if summary.primary and summary.primary.get("estimate") is not None:
        p = summary.primary
        # the count as the report shows it: hidden counts read "<11" or "suppressed"
        n = display_record_count(p, "n", count_rule(config))
        click.echo(
            f"primary:    {p['estimate']:+.3f} mmol/L corrected Ca at {p['horizon_hours']} h "
            f"(95% CI {p['ci_low']:+.3f} to {p['ci_high']:+.3f}; n = {n} episodes)"
        )
    else:
        click.echo("primary:    no estimate (see the report's summary for why)")
    if summary.gate:
        if summary.gate["passed"]:
            click.echo(
                f"gate:       passed; the report states the {summary.gate['answer']} estimate"
            )
        else:
            click.echo(
                "gate:       FAILED; the report says this data cannot answer: "
                + "; ".join(summary.gate["failed"])
            )
    click.echo(f"took:       {summary.duration_s:.1f} s")
    if screenshot:
        from mgca.analysis.report.browser import BrowserError, full_page_screenshot

        try:  # the whole page, however tall
            png = full_page_screenshot(
                summary.out_dir / "report.html", summary.out_dir / "report.png"
            )
        except BrowserError as exc:
            _fail(exc, debug)
            return
        click.echo(f"screenshot: {png}")


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Study config YAML; its `schedule:` section sets the deployment name, cron, time "
    "zone, source, path and reports root [default: the shipped one].",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate the config and print the deployment (JSON: name, cron, parameters, next "
    "run times) without registering it or starting anything.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def serve(config_path: Path | None, dry_run: bool, debug: bool) -> None:
    """Run the study on a cron schedule (a Prefect deployment served from this process).

    Registers the deployment `mgca-study/<schedule.deployment_name>` with the cron schedule
    of the config and starts each scheduled run here, until Ctrl-C (which pauses the
    schedule). Every run writes a new run folder under schedule.reports_root and updates its
    index.html and history.json; an unchanged input reuses the cached derivation and fits.

    With no PREFECT_API_URL, this command keeps the schedule itself and runs each study as a
    Prefect flow against a temporary local server on 127.0.0.1 (Prefect's temporary server
    has no scheduler). To register a real deployment whose schedule and runs show in the
    Prefect UI (and start runs by hand), start a server on loopback first:

    \b
        prefect server start --host 127.0.0.1 --port 4200 &
        PREFECT_API_URL=http://127.0.0.1:4200/api mgca serve --config study.yaml
    """
    import json

    try:
        from mgca.config import load_config
        from mgca.ops.serve import deployment_spec
        from mgca.sources.resolve import check_source

        config = load_config(config_path)
        schedule = config.schedule
        check_source(schedule.source, schedule.path, config)
        spec = deployment_spec(config, config_path)
    except USER_ERRORS as exc:
        _fail(exc, debug)
        return
    click.echo(json.dumps(spec.as_dict(), indent=2))
    if dry_run:
        return
    from mgca.ops.serve import has_api_server, serve_local
    from mgca.ops.serve import serve as serve_deployment

    if has_api_server():
        click.echo(f"serving {spec.flow}/{spec.name} (Ctrl-C to stop)", err=True)
        serve_deployment(spec)
    else:
        click.echo(
            "no PREFECT_API_URL: keeping the schedule in this process (Prefect's temporary "
            "server has no scheduler); Ctrl-C to stop",
            err=True,
        )
        try:
            serve_local(spec, log=lambda m: click.echo(m, err=True))
        except KeyboardInterrupt:
            click.echo("stopped", err=True)


def _with_engine(config: MgcaConfig, engine: str | None, spark_master: str | None) -> MgcaConfig:
    """The config with the command line's engine choices applied (validated again)."""
    if engine is None and spark_master is None:
        return config
    raw = config.model_dump(mode="json")
    raw["engine"]["name"] = "spark" if spark_master is not None else engine
    if spark_master is not None:
        raw["engine"]["spark_master"] = spark_master
    return type(config).model_validate(raw)


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    """Plain left-aligned columns (numbers right-aligned) for terminal output."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    numeric = [all(r[i][:1].isdigit() or r[i][:1] in "<—-" for r in rows) for i in
               range(len(header))] if rows else [False] * len(header)
    lines = []
    for row in [header, *rows]:
        cells = [
            str(c).rjust(w) if numeric[i] and row is not header else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


@main.command(name="codes")
@click.option(
    "--source",
    type=click.Choice(["omop", "fhir", "mimic", "meds", "csv"]),
    required=True,
    help="Kind of input, as for `mgca run --source` (omop: CDM .duckdb file, folder of "
    "CSV/Parquet tables or postgresql:// URL; fhir: bulk-export folder; mimic, meds, csv).",
)
@click.option("--path", required=True, metavar="PATH|URL", help="Input location.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Study config YAML (its privacy.small_cell_threshold and long_format section) "
    "[default: the shipped one].",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def codes_command(source: str, path: str, config_path: Path | None, debug: bool) -> None:
    """Show which source codes map to which analyte or drug, and which do not, before any
    analysis.

    Maps the input with the same adapter and code lists as `mgca run` (into a temporary folder
    that is deleted afterwards; nothing is derived or fitted) and prints two aggregate tables:

    \b
    MAPPED: per analyte (magnesium, calcium_total, albumin, ...) and drug ingredient, each
      source code that fed it, with rows and hospital stays.
    ORPHAN CODES: codes in no code list whose name looks like a study analyte
      or drug (magnesium, calcium, albumin, parathyroid hormone, potassium, phosphate;
      Mg or Ca salts; rules in sql/reference/sources/orphan_patterns.csv), with rows, stays,
      the stays that have no mapped result of that analyte (what listing the code would add),
      the most frequent unit and the 5th/50th/95th value percentiles. A code to keep goes into
      sql/reference/sources/lab_codes.csv (LOINC) or sql/reference/ingredients.csv (RxNorm).

    Counts below the config's privacy.small_cell_threshold print as <N, and their
    percentiles are hidden. Exit status 2 on an unusable input, as for `mgca run`.
    """
    try:
        from mgca.analysis.privacy import display_record_count, suppress_record
        from mgca.analysis.report.quality_section import orphan_code_records, orphan_status
        from mgca.config import load_config
        from mgca.sources.codes import code_report

        config = load_config(config_path)
        report = code_report(source, path, config, log=lambda m: click.echo(m, err=True))
    except USER_ERRORS as exc:
        _fail(exc, debug)
        return
    threshold = count_rule(config)
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(f"Mapped codes (counts below {threshold} shown as <{threshold})")
    mapped = [suppress_record(r, ["n_rows", "n_stays"], threshold) for r in report.mapped]
    rows = [
        [r["canonical_table"], r["canonical"] or "", r["source_code"] or "",
         display_record_count(r, "n_rows", threshold),
         display_record_count(r, "n_stays", threshold)]
        for r in mapped
    ]
    for line in _table(rows, ["table", "analyte/ingredient", "source code", "rows", "stays"]):
        click.echo("  " + line)
    if not rows:
        click.echo("  (nothing was mapped)")
    click.echo("")
    if report.orphans is None:
        click.echo(f"Orphan codes: not computed for --source {source} yet.")
        return
    click.echo("Orphan codes: look like a study analyte or drug, but are in no code list")
    orphans = orphan_code_records(report.orphans, threshold)

    def value(r: dict, key: str) -> str:
        v = r.get(key)
        return "—" if v is None else f"{v:.4g}"

    rows = [
        [r["domain"], r["looks_like"], r["code"], (r["display"] or "")[:60], r["unit"] or "",
         display_record_count(r, "n_rows", threshold),
         display_record_count(r, "n_stays", threshold),
         display_record_count(r, "n_stays_added", threshold),
         " / ".join(value(r, k) for k in ("value_p05", "value_p50", "value_p95")),
         orphan_status(r)]
        for r in orphans
    ]
    header = ["domain", "looks like", "code", "name", "unit", "rows", "stays",
              "stays added", "value p5 / p50 / p95", "status"]
    for line in _table(rows, header):
        click.echo("  " + line)
    if not rows:
        click.echo("  (none: every look-alike code is in a code list)")


@main.command(name="config")
@click.option(
    "--validate",
    "validate_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Validate this YAML file instead of printing the defaults.",
)
def config_command(validate_path: Path | None) -> None:
    """Print the default study configuration, or validate a config file.

    Every threshold and window the pipeline uses is here, with its unit in the key name
    (mmol_l = mmol/L, g_l = g/L, hours) and a comment naming its source. Copy it, edit it,
    and pass it to `mgca run --config FILE`.
    """
    from mgca.config import ConfigError, default_config_text, load_config

    if validate_path is None:
        click.echo(default_config_text(), nl=False)
        return
    try:
        config = load_config(validate_path)
    except ConfigError as exc:
        _fail(exc, debug=False)
        return
    click.echo(f"{validate_path}: valid (sha256 {config.sha256()[:12]})")


if __name__ == "__main__":  # pragma: no cover
    main()
