"""The `mgca` command line.

    mgca synth --out DIR             write a synthetic dataset (canonical Parquet tables)
    mgca run                         the whole study on fresh synthetic data → reports/run-…/
    mgca run --source canonical --path DIR --out OUT
    mgca config                      print the default configuration (YAML, units in key names)

Errors the user can fix (bad config, missing files, malformed input) print one message that
names the file, column or key and the fix, and exit with status 2; ``--debug`` adds the
traceback.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import click

from mgca import __version__
from mgca.prefect_env import apply_prefect_defaults
from mgca.sources import SOURCE_KINDS

apply_prefect_defaults()

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError)


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
def synth(world: str, seed: int, stays: int, out: Path, debug: bool) -> None:
    """Write a seeded synthetic lab world in the canonical schema.

    Each stay has an illness that lowers Mg and Ca and resolves over days, Mg drifting low
    with PPIs and loop diuretics, a Ca set point that low Mg pulls down (effect world only),
    clinicians who give IV MgSO4 more often the lower the measured Mg and Ca, morning labs
    with re-checks after repletion, analytic noise and missing albumin. The same seed always
    gives the same files.
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
        )
        click.echo(
            f"wrote synthetic dataset ({stays:,} stays, world={world}, seed={seed}) to {path} "
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
    "canonical Parquet tables (README, 'Canonical schema').",
)
@click.option(
    "--path",
    type=click.Path(path_type=Path),
    default=None,
    help="Input location. Omit with --source synthetic to generate a fresh dataset.",
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
    help="Also open report.html in headless Chromium and save what it shows as report.png.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def run(
    source: str,
    path: Path | None,
    out: Path | None,
    config_path: Path | None,
    screenshot: bool,
    debug: bool,
) -> None:
    """Run the whole study as a Prefect flow and write the run folder.

    Steps (each a Prefect task): prepare the source → load DuckDB → derive episodes, exposure,
    windows and attrition in SQL → fit the models → render the report. With no Prefect
    server configured, Prefect starts a temporary local one on 127.0.0.1 for the run; set
    PREFECT_API_URL to report to your own server instead.

    Outputs: report.html and results.json (aggregates only, small counts suppressed),
    cohort.parquet (the analytic table WITH ids: keep it private), config.yaml, and
    private/mgca.duckdb; with --screenshot also report.png (needs Chromium).
    """
    try:
        from mgca.config import load_config
        from mgca.sources import check_source

        config = load_config(config_path)
        check_source(source, path)
        from mgca.flow import study_flow

        summary = study_flow(
            source=source,
            path=str(path) if path else None,
            out=str(out) if out else None,
            config=config,
        )
    except USER_ERRORS as exc:
        _fail(exc, debug)
        return
    except RuntimeError as exc:
        from mgca.derive import DerivationError

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
    if summary.primary:
        p = summary.primary
        click.echo(
            f"primary:    {p['estimate']:+.3f} mmol/L corrected Ca at {p['horizon_hours']} h "
            f"(95% CI {p['ci_low']:+.3f} to {p['ci_high']:+.3f}; n = {p['n']:,} episodes)"
        )
    else:
        click.echo("primary:    no estimate (see the report's summary for why)")
    click.echo(f"took:       {summary.duration_s:.1f} s")
    if screenshot:
        from mgca.analysis.browser import BrowserError
        from mgca.analysis.browser import screenshot as take_screenshot

        try:
            png = take_screenshot(summary.out_dir / "report.html", summary.out_dir / "report.png")
        except BrowserError as exc:
            _fail(exc, debug)
            return
        click.echo(f"screenshot: {png}")


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
