"""Scoring on Spark gives what local scoring gives: scores, ranks, rejects, warnings, errors.

The inputs are split into many small partitions and Arrow batches, and the global sorts into
several ranges, so that every count and rank crosses partition boundaries.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lead_conversion_prediction.exceptions import (
    ConfigError,
    DataContractError,
    InputNotFoundError,
    LeadConversionError,
)
from lead_conversion_prediction.schema import MISSING_CELLS
from lead_conversion_prediction.scoring import spark as spark_scoring
from lead_conversion_prediction.scoring import spark_ranks
from lead_conversion_prediction.scoring.io import OutputFormat
from lead_conversion_prediction.scoring.locations import check_spark_options
from lead_conversion_prediction.scoring.model import LoadedModel
from lead_conversion_prediction.scoring.output import OUTPUT_SCHEMA, output_schema
from lead_conversion_prediction.scoring.score import (
    ScoringOptions,
    ScoringReport,
    rank_descending,
)
from lead_conversion_prediction.scoring.spark_input import header_as_written
from lead_conversion_prediction.stages.predict import score_file
from lead_conversion_prediction.stages.predict_spark import REJECTS_FOLDER, score_dataset
from tests.support import fit_small_model, ragged_csv

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.long(seconds=160)


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return LoadedModel(fit_small_model(), "test-model")


@pytest.fixture
def small_parts(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Input partitions of a few kilobytes, Arrow batches of 16 rows, sorts over 50-row ranges."""
    settings = {
        "spark.sql.files.maxPartitionBytes": "4096",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "16",
    }
    previous = {key: spark.conf.get(key) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    monkeypatch.setattr(spark_ranks, "ROWS_PER_PARTITION", 50)
    yield
    for key, old in previous.items():
        spark.conf.unset(key) if old is None else spark.conf.set(key, old)


@dataclass
class Scored:
    scores: pd.DataFrame
    rejects: pd.DataFrame | None
    report: ScoringReport


def score_locally(model: LoadedModel, source: Path, options: ScoringOptions) -> Scored:
    target = source.parent / f"{source.stem}-local.parquet"
    rejects = source.parent / f"{source.stem}-local.rejects.csv"
    report = score_file(model, str(source), str(target), options, rejects=rejects)
    read = pd.read_csv(rejects, dtype="str", keep_default_na=False) if rejects.exists() else None
    return Scored(pd.read_parquet(target), read, report)


def score_on_spark(
    spark: SparkSession, model: LoadedModel, source: Path, options: ScoringOptions
) -> Scored:
    target = source.parent / f"{source.stem}-spark"
    report = score_dataset(spark, model, str(source), str(target), options)
    parts = sorted((target / REJECTS_FOLDER).glob("part-*.csv"))
    rejects = (
        pd.concat([pd.read_csv(part, dtype="str", keep_default_na=False) for part in parts])
        if parts
        else None
    )
    return Scored(pd.read_parquet(target), rejects, report)


def scored_both_ways(
    spark: SparkSession, model: LoadedModel, source: Path, options: ScoringOptions
) -> tuple[Scored, Scored]:
    """The same input scored locally and on Spark, checked to give the same scores."""
    local = score_locally(model, source, options)
    on_spark = score_on_spark(spark, model, source, options)
    assert_same_scores(local, on_spark)
    return local, on_spark


def assert_same_scores(local: Scored, spark: Scored) -> None:
    assert list(spark.scores.columns) == [column.name for column in OUTPUT_SCHEMA]
    for column in ("lead_id", "predicted_label", "rank"):
        assert spark.scores[column].tolist() == local.scores[column].tolist(), column
    np.testing.assert_allclose(
        spark.scores["conversion_probability"], local.scores["conversion_probability"], atol=1e-9
    )
    assert (
        spark.scores["model"].astype("str").tolist()
        == local.scores["model"].astype("str").tolist()
    )
    if local.rejects is None:
        assert spark.rejects is None
    else:
        assert spark.rejects is not None
        pd.testing.assert_frame_equal(
            spark.rejects.reset_index(drop=True), local.rejects.reset_index(drop=True)
        )
    assert (spark.report.rows_scored, spark.report.rows_rejected) == (
        local.report.rows_scored,
        local.report.rows_rejected,
    )
    assert spark.report.warnings() == local.report.warnings()


def bad_leads(make_leads: Callable[..., pd.DataFrame], n: int = 400) -> pd.DataFrame:
    """Leads with repeated ids, missing and unseen values, and rows that break the contract."""
    leads = make_leads(n=n, seed=3).astype(
        {"time_spent": "object", "n_visits": "object", "customer_group": "object"}
    )
    leads["lead_id"] = leads["lead_id"] % (n // 2)
    leads.loc[[5, 170, 171, 333], "time_spent"] = ["fast", "=1+1", "", "inf"]
    leads.loc[[9, 250], "n_visits"] = ["-2", "1.5"]
    leads.loc[12, "customer_group"] = None
    leads.loc[300, "source"] = "tiktok"
    leads.loc[[13], "lead_id"] = None
    leads.loc[40:120, "purchases"] = 3  # ties, across batches and ranges
    leads.loc[40:120, ["time_spent", "n_visits", "customer_group", "onboarding"]] = leads.loc[
        40, ["time_spent", "n_visits", "customer_group", "onboarding"]
    ].to_numpy()
    return leads


@pytest.mark.usefixtures("small_parts")
def test_spark_and_local_scoring_agree_row_for_row(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    source = tmp_path / "leads.csv"
    bad_leads(make_leads).to_csv(source, index=False)
    assert spark.read.csv(str(source), header=True).rdd.getNumPartitions() > 3
    options = ScoringOptions(threshold=0.5, skip_bad_rows=True, chunk_rows=30)
    local, on_spark = scored_both_ways(spark, model, source, options)
    assert on_spark.rejects is not None
    assert on_spark.rejects["line"].tolist() == ["7", "11", "15", "172", "335"]
    assert on_spark.report.duplicate_ids == local.report.duplicate_ids > 0
    assert any("unseen" in line for line in on_spark.report.warnings())


@pytest.mark.usefixtures("small_parts")
def test_spark_gives_the_reasons_local_scoring_gives(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    leads = make_leads(n=200, seed=8).astype({"n_visits": "float64"})
    leads.loc[[3, 50, 51], "n_visits"] = np.nan  # missing values, imputed, may be reasons
    source = tmp_path / "leads.csv"
    leads.to_csv(source, index=False)
    options = ScoringOptions(threshold=0.5, explain=3, reason_floor=0.05, chunk_rows=30)
    local = score_locally(model, source, options)
    on_spark = score_on_spark(spark, model, source, options)
    columns = [column.name for column in output_schema(3)]
    assert list(on_spark.scores.columns) == list(local.scores.columns) == columns
    for column in output_schema(3):
        here, there = local.scores[column.name], on_spark.scores[column.name]
        if column.dtype in ("float64", "int64", "int8"):
            np.testing.assert_allclose(there, here, atol=1e-12, err_msg=column.name)
        else:
            assert there.astype(object).where(there.notna(), None).tolist() == (
                here.astype(object).where(here.notna(), None).tolist()
            ), column.name
    assert local.scores["reason_2"].isna().any() and local.scores["reason_2"].notna().any()


@pytest.mark.usefixtures("small_parts")
def test_batches_with_no_good_row_are_skipped_as_locally(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    leads = make_leads(n=100, seed=4).astype({"n_visits": "object"})
    leads.loc[:49, "n_visits"] = "-1"  # whole Arrow batches of 16 rows
    source = tmp_path / "leads.csv"
    leads.to_csv(source, index=False)
    options = ScoringOptions(threshold=0.5, skip_bad_rows=True, chunk_rows=16)
    _, on_spark = scored_both_ways(spark, model, source, options)
    assert (on_spark.report.rows_scored, on_spark.report.rows_rejected) == (50, 50)


@pytest.mark.usefixtures("small_parts")
def test_rows_with_more_or_fewer_fields_are_rejected_as_locally(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    leads = make_leads(n=120, seed=5).astype({"n_visits": "object"})
    leads.loc[60, "n_visits"] = "-1"
    ragged = {3: "x", 40: "", 41: "", 61: "y", 119: ""}  # one shifts every field it asks for
    source = Path(ragged_csv(tmp_path / "leads.csv", leads, ragged))
    options = ScoringOptions(threshold=0.5, skip_bad_rows=True, chunk_rows=16)
    _, on_spark = scored_both_ways(spark, model, source, options)
    assert on_spark.rejects is not None
    assert on_spark.rejects["line"].tolist() == ["5", "42", "43", "62", "63", "121"]
    assert on_spark.report.rejected_for == {"row": 5, "column 'n_visits'": 1}
    fields = len(leads.columns)
    for name, extra, error in (
        ("first", {30: "x"}, f"{fields + 1} fields where the header has {fields} at line 32"),
        ("later", {70: "x"}, "column 'n_visits': value -1 is below 0 at line 62"),
    ):
        source = Path(ragged_csv(tmp_path / f"{name}.csv", leads, extra))
        with pytest.raises(DataContractError) as locally:
            score_file(model, str(source), str(tmp_path / "l.csv"), ScoringOptions(threshold=0.5))
        with pytest.raises(DataContractError) as on_spark_:
            score_on_spark(spark, model, source, ScoringOptions(threshold=0.5))
        assert str(on_spark_.value) == str(locally.value) == f"{source}: {error}"
    assert spark.conf.get("spark.sql.csv.parser.columnPruning.enabled") == "true"


def test_a_line_break_inside_quotes_is_named_as_the_cause(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    leads = make_leads(n=10, seed=5).astype({"customer_code": "object"})
    leads.loc[4, "customer_code"] = "two\nlines"  # read whole locally; Spark reads lines
    source = tmp_path / "leads.csv"
    leads.to_csv(source, index=False)
    options = ScoringOptions(threshold=0.5, skip_bad_rows=True)
    assert score_locally(model, source, options).report.rows_scored == 10
    on_spark = score_on_spark(spark, model, source, options)
    assert on_spark.rejects is not None and on_spark.rejects["line"].tolist() == ["6", "7"]
    cause = "(a line break inside quotes, which Spark reads as the end of a row)"
    assert all(reason.endswith(cause) for reason in on_spark.rejects["reason"])
    assert on_spark.report.rows_scored == 9
    with pytest.raises(DataContractError, match=re.escape(f"{cause} at lines 6, 7")):
        score_dataset(spark, model, str(source), str(tmp_path / "s"), ScoringOptions(0.5))


@pytest.mark.usefixtures("small_parts")
def test_sorted_output_is_best_first_with_the_local_ranks(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    source = tmp_path / "leads.csv"
    bad_leads(make_leads).to_csv(source, index=False)
    options = ScoringOptions(threshold=0.5, sort=True, skip_bad_rows=True)
    _, on_spark = scored_both_ways(spark, model, source, options)
    assert on_spark.scores["rank"].tolist() == list(range(1, len(on_spark.scores) + 1))


@pytest.mark.usefixtures("small_parts")
def test_parquet_input_numbers_rejected_rows_as_local_scoring_does(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    source = tmp_path / "leads.parquet"
    leads = make_leads(n=300, seed=5)
    leads.loc[[3, 200], "n_visits"] = -1
    leads.to_parquet(source, index=False, row_group_size=40)
    options = ScoringOptions(threshold=0.5, skip_bad_rows=True, training_source_only=True)
    _, on_spark = scored_both_ways(spark, model, source, options)
    assert on_spark.rejects is not None and on_spark.rejects["row"].tolist()[:2] == ["3", "4"]


def test_ties_are_ranked_in_input_order_across_ranges(spark: SparkSession) -> None:
    probability = np.random.default_rng(2).choice([0.1, 0.5, 0.5, 0.9], 500)
    frame = spark.createDataFrame(
        pa.table(
            {
                spark_scoring.KIND: np.full(500, spark_scoring.SCORED, dtype=np.int8),
                spark_scoring.ROW: np.arange(500, dtype=np.int64),
                spark_scoring.LEAD_ID: np.arange(500, dtype=np.int64),
                spark_scoring.PROBABILITY: probability,
            }
        )
    ).repartition(5)
    ordered = spark_ranks.best_first(frame, partitions=4)
    sizes = spark_ranks.partition_sizes(ordered, spark_ranks.POSITION)
    assert len(sizes) > 1  # the ranks come from several ranges, none holding every row
    ranked = spark_ranks.with_ranks(ordered, sizes).orderBy(spark_scoring.ROW)
    ranks = [row[spark_ranks.RANK] for row in ranked.select(spark_ranks.RANK).collect()]
    assert ranks == rank_descending(probability).tolist()


def test_line_numbers_count_the_rows_of_the_partitions_before() -> None:
    rows = {0: 10, 2: 5, 3: 7}
    ids = [(0 << 33) + 4, (2 << 33) + 0, (3 << 33) + 6]
    assert spark_ranks.partition_offsets(rows) == [0, 10, 10, 15]
    assert spark_ranks.positions(rows, ids) == [4, 10, 21]


@pytest.mark.usefixtures("small_parts")
def test_a_breach_stops_the_run_with_the_error_local_scoring_gives(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    leads = make_leads(n=300).astype({"n_visits": "object"})
    leads.loc[[150, 152, 160], "n_visits"] = "-4"
    source = tmp_path / "leads.csv"
    leads.to_csv(source, index=False)
    options = ScoringOptions(threshold=0.5)
    with pytest.raises(DataContractError) as local:
        score_file(model, str(source), str(tmp_path / "local.csv"), options)
    with pytest.raises(DataContractError) as on_spark:
        score_dataset(spark, model, str(source), str(tmp_path / "scores"), options)
    assert str(on_spark.value) == str(local.value)
    assert str(on_spark.value).endswith("value -4 is below 0 at lines 152, 154, 162")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["leads.csv"]


def write_bytes(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


HEADER = b"lead_id,purchases,time_spent,n_visits,customer_group,onboarding\n"
SWAPPED = b"lead_id,time_spent,purchases,n_visits,customer_group,onboarding\n"
ROW = b"1,2,3.5,4,5,True\n"
# A header of 21,000 fields and one row: more than Spark's CSV parser reads.
WIDE = HEADER.strip() + b"".join(b",x%d" % i for i in range(21_000)) + b"\n" + ROW


def two_files(folder: Path, second_header: bytes) -> Path:
    """A folder of CSV files: a larger one (Spark takes its header) and a smaller one."""
    (folder / "leads").mkdir()
    write_bytes(folder / "leads" / "a.csv", HEADER + ROW * 3)
    write_bytes(folder / "leads" / "b.csv", second_header + ROW)
    return folder / "leads"


def unnamed_field_files(folder: Path) -> Path:
    """A folder of CSV files whose header leaves its last field unnamed (Spark calls it _c6)."""
    (folder / "leads").mkdir()
    for name in ("a.csv", "b.csv"):
        write_bytes(folder / "leads" / name, HEADER.strip() + b",\n" + ROW.strip() + b",x\n")
    return folder / "leads"


@pytest.mark.parametrize(
    ("make_input", "error", "message"),
    [
        (lambda folder: folder / "absent.csv", InputNotFoundError, "absent.csv: not found"),
        (lambda folder: write_bytes(folder / "leads.json", b'{"lead_id": 1}\n'), DataContractError,
         "not CSV or Parquet"),
        (lambda folder: write_bytes(folder / "leads.parquet", b"PAR1 not really"),
         DataContractError, "cannot be read as parquet"),
        (lambda folder: write_bytes(folder / "leads.csv", b"lead_id,buys\n1,2\n"),
         DataContractError, "missing required columns 'purchases'"),
        (lambda folder: write_bytes(folder / "leads.csv", b""), DataContractError,
         "file is empty (no header row)"),
        (lambda folder: write_bytes(folder / "leads.csv", HEADER), DataContractError,
         "file has a header but no data rows"),
        (lambda folder: write_bytes(folder / "leads.csv", HEADER + b"1,2,3\n"),
         DataContractError, "3 fields where the header has 6 at line 2"),
        (lambda folder: write_bytes(folder / "leads.csv", HEADER.strip() + b",Purchases\n"),
         DataContractError, "the header names column 'purchases' 2 times"),
        (lambda folder: two_files(folder, SWAPPED),
         DataContractError, "b.csv: its header has 'time_spent' where the first file has "
         "'purchases'; the files must share one header"),
        (lambda folder: two_files(folder, b"lead_id,purchases\n"),
         DataContractError, "b.csv: its header has 2 names where the first file has 6"),
        (lambda folder: unnamed_field_files(folder), DataContractError,
         "the header has an empty name (field 7); Spark cannot then tell whether the files of "
         "a folder share one header"),
        (lambda folder: write_bytes(folder / "leads.csv", WIDE), DataContractError,
         "Spark's CSV parser cannot read the header row (more than its 20,480 fields"),
        (lambda folder: write_bytes(folder / "leads.parquet", b"PAR1" + b"x" * 50 + b"PAR1"),
         DataContractError, "cannot be read as parquet"),
    ],
    ids=["missing", "json", "not-parquet", "other-schema", "empty", "header-only", "ragged",
         "repeated-column", "folder-reordered", "folder-shorter", "folder-renamed-names",
         "wider-than-spark", "corrupt-footer"],
)  # fmt: skip
def test_bad_input_is_one_error_and_leaves_no_output(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_input: Callable[[Path], Path],
    error: type[LeadConversionError],
    message: str,
) -> None:
    source = make_input(tmp_path)
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(error) as raised:
        score_dataset(spark, model, str(source), str(tmp_path / "scores"), ScoringOptions(0.5))
    assert message in str(raised.value) and str(source) in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_a_folder_of_csv_files_is_scored_as_one_file_is(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    leads = make_leads(n=120, seed=5)
    (tmp_path / "leads").mkdir()
    leads.iloc[:70].to_csv(tmp_path / "leads" / "a.csv", index=False)
    leads.iloc[70:].to_csv(tmp_path / "leads" / "b.csv", index=False)
    leads.to_csv(tmp_path / "all.csv", index=False)
    local = score_locally(model, tmp_path / "all.csv", ScoringOptions(0.5))
    on_spark = score_on_spark(spark, model, tmp_path / "leads", ScoringOptions(0.5))
    by_id = [
        frame.scores.drop(columns="model").sort_values("lead_id") for frame in (local, on_spark)
    ]
    pd.testing.assert_frame_equal(by_id[1].reset_index(drop=True), by_id[0].reset_index(drop=True))
    assert on_spark.report.warnings() == local.report.warnings()


def test_a_gzip_csv_file_is_scored_as_locally(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    source = tmp_path / "leads.csv.gz"
    source.write_bytes(gzip.compress(bad_leads(make_leads).to_csv(index=False).encode()))
    local, _ = scored_both_ways(spark, model, source, ScoringOptions(0.5, skip_bad_rows=True))
    assert local.rejects is not None and local.report.rows_scored > 0


def test_cells_that_mean_no_value_are_missing_as_locally(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    leads = bad_leads(make_leads)
    columns = ["purchases", "time_spent", "n_visits", "customer_group", "onboarding", "source"]
    leads = leads.astype({column: "object" for column in columns})
    for row in range(0, len(leads), 3):  # every third row, a token in one column in turn
        token = MISSING_CELLS[row % len(MISSING_CELLS)]
        leads.loc[row, columns[row % len(columns)]] = token
    source = tmp_path / "leads.csv"
    leads.to_csv(source, index=False)
    local, _ = scored_both_ways(spark, model, source, ScoringOptions(0.5, skip_bad_rows=True))
    assert sum(local.report.missing.values()) > len(leads) // 10


def test_a_backslash_is_text_and_a_doubled_quote_a_quote_as_locally(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    lines = make_leads(n=40, seed=8).to_csv(index=False).splitlines()
    fields = [line.split(",") for line in lines]
    code = lines[0].split(",").index("customer_code")
    for row, text in ((3, '"C:\\"'), (5, '"say ""hi"""'), (9, '"a\\",b"')):
        fields[row][code] = text  # row 9 has one field more for RFC 4180 (and locally)
    source = tmp_path / "leads.csv"
    source.write_text("\n".join(",".join(row) for row in fields) + "\n")
    local, _ = scored_both_ways(spark, model, source, ScoringOptions(0.5, skip_bad_rows=True))
    assert local.rejects is not None and local.rejects["line"].astype(int).tolist() == [10]
    assert local.report.rows_scored == 39


def test_blank_lines_are_skipped_as_locally(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    lines = make_leads(n=30, seed=9).to_csv(index=False).splitlines()
    lines[5:5] = ["", " \t "]
    source = tmp_path / "leads.csv"
    source.write_text("\n".join(lines) + "\n \n\n")
    local, _ = scored_both_ways(spark, model, source, ScoringOptions(0.5, skip_bad_rows=True))
    assert local.rejects is None and local.report.rows_scored == 30


def test_a_header_is_read_as_written_where_spark_renames_repeats() -> None:
    names = ["lead_id", "purchases1", "x2", "Purchases3", "n_visits4", "y9", "_c6", "_c3"]
    assert header_as_written(names) == [
        "lead_id", "purchases", "x2", "Purchases", "n_visits4", "y9", "", "_c3"
    ]  # fmt: skip


def test_a_file_with_an_unnamed_or_repeated_other_column_is_scored_as_locally(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    leads = bad_leads(make_leads).assign(xx_one="a", xx_two="b", xx_three="c")
    source = tmp_path / "leads.csv"
    leads.to_csv(source, index=False)
    header, rows = source.read_text().split("\n", 1)
    # Spark renames these (_c23, notes24, notes25), then finds the header is not its own
    header = header.replace("xx_one", "").replace("xx_two", "notes").replace("xx_three", "Notes")
    source.write_text(header + "\n" + rows)
    local, _ = scored_both_ways(spark, model, source, ScoringOptions(0.5, skip_bad_rows=True))
    assert local.report.rows_scored > 0 and local.rejects is not None


def test_an_existing_output_is_replaced_only_when_asked(
    spark: SparkSession,
    model: LoadedModel,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    source = tmp_path / "leads.csv"
    make_leads(n=30).to_csv(source, index=False)
    target = tmp_path / "scores"
    target.mkdir()
    (target / "previous.txt").write_text("kept")
    with pytest.raises(ConfigError, match="exists; give --overwrite"):
        score_dataset(spark, model, str(source), str(target), ScoringOptions(0.5))
    assert [path.name for path in target.iterdir()] == ["previous.txt"]
    with pytest.raises(InputNotFoundError):  # a failed run keeps the previous output too
        score_dataset(
            spark,
            model,
            str(tmp_path / "absent.csv"),
            str(target),
            ScoringOptions(0.5),
            None,
            True,
        )
    assert [path.name for path in target.iterdir()] == ["previous.txt"]
    report = score_dataset(
        spark, model, str(source), str(target), ScoringOptions(0.5), overwrite=True
    )
    assert report.rows_scored == 30 and not (target / "previous.txt").exists()
    assert len(pd.read_parquet(target)) == 30
    assert sorted(path.name for path in tmp_path.iterdir()) == ["leads.csv", "scores"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("-", "scores", None, None), "not stdin or stdout"),
        (("leads.csv", "-", None, None), "not stdin or stdout"),
        (("leads.csv", "scores", None, OutputFormat.csv), "writes a Parquet folder"),
        (("leads.csv", "scores", Path("r.csv"), None), "<output>/_rejects/"),
    ],
)
def test_options_spark_cannot_honour_are_refused_before_it_starts(
    arguments: tuple[str, str, Path | None, OutputFormat | None], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_spark_options(*arguments)
