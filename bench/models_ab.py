"""CPU seconds of the model stage alone, on one derived database, for A/B comparisons.

    python bench/models_ab.py [--stays 110000] [--dir bench/cache/models-ab] [--repeat 2]

Generates (once) an effect-world hospital of ``--stays`` stays (seed 0) and derives its DuckDB
file in ``--dir``; later calls reuse it. Then, ``--repeat`` times, times what a run fits:
:func:`mgca.run.study.fit_all` and the sensitivity block with its re-derived windows, and
prints one line each: ``episodes``, ``fit_all`` CPU seconds, both together, wall seconds.

Wall and CPU seconds of identical runs vary by 10-25 % on a shared 2-core machine, more than
most single changes save. To compare two versions of the code, run this alternately on the
same database (version A, version B, A, B) and compare the spread, not one pair of figures.
"""

from __future__ import annotations

import argparse
import shutil
import time
import warnings
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stays", type=int, default=110_000, help="stays to generate")
    parser.add_argument("--dir", type=Path, default=Path("bench/cache/models-ab"))
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions")
    args = parser.parse_args()

    from mgca.analysis.estimation.analyses import sensitivity_block
    from mgca.config import MgcaConfig
    from mgca.engine import registry
    from mgca.run import study
    from mgca.synthetic import generate

    warnings.simplefilter("ignore")  # per-model warnings; figures only
    config = MgcaConfig()
    folder = args.dir / f"{args.stays}-effect-0"
    db = folder / "run.duckdb"
    if not db.exists():
        generate(folder / "data", n_stays=args.stays, world="effect", seed=0)
        study.build_database(folder / "data", db, config)
    cohort = study.read_cohort(db)
    tables = study.read_secondary_tables(db)
    kidney = study.read_table(db, registry.table("index_kidney_function").select())
    for _ in range(args.repeat):
        scratch = folder / "scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        cpu, wall = time.process_time(), time.perf_counter()
        fitted = study.fit_all(cohort, tables, config)
        fit_cpu = time.process_time() - cpu
        primary = next(e for e in fitted["estimates"] if e["name"] == "primary")
        sensitivity_block(
            cohort,
            kidney=kidney,
            primary=primary,
            config=config,
            cohort_for=study.cohort_for(config.engine.name, db, scratch),
        )
        print(
            f"episodes {len(cohort)}  fit_all CPU s {fit_cpu:.2f}  with sensitivity CPU s "
            f"{time.process_time() - cpu:.2f}  wall s {time.perf_counter() - wall:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
