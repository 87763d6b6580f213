"""Writes the Parquet fixtures of Ember's table tests from the real Titanic CSV.

    python3 -m venv /tmp/pq-venv && /tmp/pq-venv/bin/pip install pyarrow
    /tmp/pq-venv/bin/python bench/parquet_fixture.py ../shared/data/titanic/titanic.csv

pyarrow (Apache Arrow's reference implementation) reads the CSV with its own type inference
(Age a double with nulls, Cabin a string with nulls, Survived an int64) and writes it twice
into crates/ember-cli/tests/data: with Snappy compression in row groups of 300 rows (pandas's
and Spark's default codec; three row groups), and with Zstandard (Polars's default) in one.
crates/ember-cli/tests/tables.rs trains on each and checks the result equals the CSV's. A
third, tiny file has a column of lists, which a table refuses.
"""

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as csv
import pyarrow.parquet as pq

source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/titanic/titanic.csv")
out = Path(__file__).resolve().parent.parent / "crates/ember-cli/tests/data"
out.mkdir(parents=True, exist_ok=True)
table = csv.read_csv(source)
pq.write_table(table, out / "titanic.snappy.parquet", compression="snappy", row_group_size=300)
pq.write_table(table, out / "titanic.zstd.parquet", compression="zstd")
# A column of lists, which a table cannot hold: the tests' refusal.
pq.write_table(
    pa.table({"x": [1.0, 2.0, 3.0], "tags": [["a"], [], ["b", "c"]]}), out / "nested.parquet"
)
for name in ("titanic.snappy.parquet", "titanic.zstd.parquet"):
    meta = pq.read_metadata(out / name)
    print(f"{name}: {meta.num_rows} rows, {meta.num_columns} columns, "
          f"{meta.num_row_groups} row groups, {(out / name).stat().st_size} bytes")
print(table.schema)
