"""The lab's Feast feature store: repository setup, pushes, online reads, training sets.

``feature_repo/`` holds the committed definitions and ``feature_store.yaml``. A store is
*prepared* by copying that repository to a working directory, pointing its Redis
``connection_string`` at the Redis in use, creating the empty Parquet files of the offline
store and running ``apply`` (the programmatic ``feast apply``).

Semantics of what Feast holds (see ``feature_repo/README.md``):

* a pushed customer row holds ``order_count_30d``, ``total_spend_30d``,
  ``avg_order_value_30d`` and ``last_order_ts`` as of its ``event_timestamp``; the 30-day
  window is a window of UTC days, so the row is exact for reads during the rest of that
  UTC day; ``days_since_last_order`` is computed on demand from ``read_ts``;
* Feast's Redis store ignores a write whose event timestamp is not newer than the stored
  one, so every push carries a timestamp strictly newer than the previous push.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cdc_features import LAB_DIR
from cdc_features.core.definitions import CustomerFeatures, ProductFeatures
from cdc_features.core.spec import CUSTOMER, PRODUCT
from cdc_features.stores.layout import from_micros, to_micros

FEATURE_REPO = LAB_DIR / "feature_repo"

CUSTOMER_VIEW = "customer_features"
PRODUCT_VIEW = "product_features"
CUSTOMER_PUSH = "customer_features_push"
PRODUCT_PUSH = "product_features_push"
RECENCY_VIEW = "customer_recency"
ROW_ID = "_entity_row"

CUSTOMER_COLUMNS: dict[str, pa.DataType] = {
    "customer_id": pa.int64(),
    "event_timestamp": pa.timestamp("us", tz="UTC"),
    "order_count_30d": pa.int64(),
    "total_spend_30d": pa.string(),
    "avg_order_value_30d": pa.string(),
    "last_order_ts": pa.timestamp("us", tz="UTC"),
    "last_order_ts_us": pa.int64(),
}
PRODUCT_COLUMNS: dict[str, pa.DataType] = {
    "product_id": pa.int64(),
    "event_timestamp": pa.timestamp("us", tz="UTC"),
    "units_sold_7d": pa.int64(),
    "revenue_7d": pa.string(),
    "unique_customers_7d": pa.int64(),
}
PUSH_COLUMNS: dict[str, dict[str, pa.DataType]] = {
    CUSTOMER_PUSH: CUSTOMER_COLUMNS,
    PRODUCT_PUSH: PRODUCT_COLUMNS,
}
PUSH_VIEW = {CUSTOMER_PUSH: CUSTOMER_VIEW, PRODUCT_PUSH: PRODUCT_VIEW}

# The online features of each view, named as in the feature spec. ``last_order_ts_us`` is the
# exact order time beside Feast's whole-second timestamp; ``days_since_last_order`` is an
# on-demand feature computed from it at the read time (``read_ts_us``).
CUSTOMER_FEATURE_REFS = [
    *(f"{CUSTOMER_VIEW}:{name}" for name in CUSTOMER.features if name != "days_since_last_order"),
    f"{CUSTOMER_VIEW}:last_order_ts_us",
    f"{RECENCY_VIEW}:days_since_last_order",
]
PRODUCT_FEATURE_REFS = [f"{PRODUCT_VIEW}:{name}" for name in PRODUCT.features]


class FeastPushError(ValueError):
    """A push whose DataFrame does not match the feature view's columns or types."""


def redis_connection_string(redis_url: str) -> str:
    """Feast's ``host:port[,db=N]`` form of a ``redis://host:port/N`` URL."""
    parsed = urlparse(redis_url)
    if parsed.scheme not in ("redis", ""):
        raise ValueError(f"unsupported Redis URL for Feast: {redis_url!r}")
    host = parsed.hostname or "localhost"
    port = parsed.port or 6379
    db = (parsed.path or "/0").lstrip("/") or "0"
    return f"{host}:{port}" + (f",db={db}" if db != "0" else "")


def load_definitions(repo: Path = FEATURE_REPO) -> ModuleType:
    """Import the repository's definitions module (``features.py``) from its file."""
    path = Path(repo) / "features.py"
    spec = importlib.util.spec_from_file_location("cdc_feature_repo_features", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load Feast definitions from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _empty_table(columns: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({name: pa.array([], type=t) for name, t in columns.items()})


def prepare_repo(dest: Path, redis_url: str, *, source: Path = FEATURE_REPO) -> Any:
    """Copy the feature repository to ``dest``, point it at ``redis_url`` and apply it.

    Creates the offline store's (empty) Parquet files when missing, so a restarted
    pipeline keeps its training history. Returns the ``feast.FeatureStore``.
    """
    from feast import FeatureStore

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("feature_store.yaml", "features.py"):
        shutil.copyfile(Path(source) / name, dest / name)
    yaml_path = dest / "feature_store.yaml"
    text = yaml_path.read_text()
    text, n = re.subn(
        r'connection_string: ".*"',
        f'connection_string: "{redis_connection_string(redis_url)}"',
        text,
    )
    if n != 1:
        raise ValueError(f"{yaml_path}: expected one online_store connection_string")
    yaml_path.write_text(text)
    data = dest / "data"
    data.mkdir(exist_ok=True)
    for file_name, columns in (
        ("customer_features.parquet", CUSTOMER_COLUMNS),
        ("product_features.parquet", PRODUCT_COLUMNS),
    ):
        if not (data / file_name).exists():
            pq.write_table(_empty_table(columns), data / file_name)
    store = FeatureStore(repo_path=str(dest))
    store.apply(load_definitions(dest).ALL_OBJECTS)
    return store


def open_store(repo: Path) -> Any:
    """The ``FeatureStore`` of an already prepared repository copy."""
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo))


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def customer_push_frame(
    features: Iterable[CustomerFeatures], event_timestamp: datetime
) -> pd.DataFrame:
    """Rows for ``customer_features_push``: the features as of ``event_timestamp``."""
    rows = [
        {
            "customer_id": f.customer_id,
            "event_timestamp": event_timestamp,
            "order_count_30d": f.order_count_30d,
            "total_spend_30d": _money(f.total_spend_30d),
            "avg_order_value_30d": _money(f.avg_order_value_30d),
            "last_order_ts": f.last_order_ts,
            "last_order_ts_us": None if f.last_order_ts is None else to_micros(f.last_order_ts),
        }
        for f in features
    ]
    return _typed_frame(rows, CUSTOMER_COLUMNS)


def product_push_frame(
    features: Iterable[ProductFeatures], event_timestamp: datetime
) -> pd.DataFrame:
    """Rows for ``product_features_push``: the features as of ``event_timestamp``."""
    rows = [
        {
            "product_id": f.product_id,
            "event_timestamp": event_timestamp,
            "units_sold_7d": f.units_sold_7d,
            "revenue_7d": _money(f.revenue_7d),
            "unique_customers_7d": f.unique_customers_7d,
        }
        for f in features
    ]
    return _typed_frame(rows, PRODUCT_COLUMNS)


def _typed_frame(rows: list[dict[str, Any]], columns: dict[str, pa.DataType]) -> pd.DataFrame:
    table = pa.Table.from_pylist(rows, schema=pa.schema(list(columns.items())))
    # nullable integers stay integers (pandas would turn an int column with a null into
    # float64, which Feast rejects for an Int64 feature)
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def validate_push_frame(push_source: str, df: pd.DataFrame) -> None:
    """Fail with the column and the feature view named when ``df`` cannot be pushed.

    Feast itself reports a missing column as a bare ``KeyError`` or a Parquet schema
    mismatch, and a mistyped one deep inside protobuf conversion.
    """
    if push_source not in PUSH_COLUMNS:
        raise FeastPushError(
            f"unknown push source {push_source!r}; expected one of {sorted(PUSH_COLUMNS)}"
        )
    view = PUSH_VIEW[push_source]
    expected = PUSH_COLUMNS[push_source]
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise FeastPushError(
            f"push to feature view {view!r} ({push_source}): missing column(s) {missing}"
        )
    extra = [c for c in df.columns if c not in expected]
    if extra:
        raise FeastPushError(
            f"push to feature view {view!r} ({push_source}): unexpected column(s) {extra}"
        )
    for name, arrow_type in expected.items():
        try:
            got = pa.Array.from_pandas(df[name])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise FeastPushError(
                f"push to feature view {view!r} ({push_source}): column {name!r} "
                f"expected {arrow_type}, got values of dtype {df[name].dtype}: {exc}"
            ) from exc
        if not _compatible(got.type, arrow_type):
            raise FeastPushError(
                f"push to feature view {view!r} ({push_source}): column {name!r} "
                f"expected {arrow_type}, got {got.type}"
            )
    ts = df["event_timestamp"]
    if ts.isna().any():
        raise FeastPushError(
            f"push to feature view {view!r} ({push_source}): column 'event_timestamp' has nulls"
        )


def _compatible(got: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_null(got):
        return True
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(got) and got.tz is not None
    if pa.types.is_integer(expected):
        return pa.types.is_integer(got)
    return got == expected


def push(store: Any, push_source: str, df: pd.DataFrame, *, offline: bool = True) -> None:
    """Validate and push ``df`` to the online store (and the offline store when asked)."""
    from feast.data_source import PushMode

    validate_push_frame(push_source, df)
    if df.empty:
        return
    mode = PushMode.ONLINE_AND_OFFLINE if offline else PushMode.ONLINE
    store.push(push_source, df, to=mode)


def _to_decimal(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return Decimal(str(value))


def _from_micros_or_none(value: Any) -> datetime | None:
    us = _to_int(value)
    return None if us is None else from_micros(us)


def _to_int(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return int(value)


def online_customer_features(
    store: Any, customer_ids: Sequence[int], at: datetime
) -> dict[int, CustomerFeatures | None]:
    """Serving read: the Feast online values of ``customer_ids`` read at ``at``.

    ``None`` for a customer Feast has no row for (unknown entity: Feast returns nulls).
    """
    read_ts_us = to_micros(at)
    rows = [{"customer_id": int(c), "read_ts_us": read_ts_us} for c in customer_ids]
    result = store.get_online_features(features=CUSTOMER_FEATURE_REFS, entity_rows=rows).to_dict()
    out: dict[int, CustomerFeatures | None] = {}
    for i, cid in enumerate(customer_ids):
        count = _to_int(result["order_count_30d"][i])
        if count is None:
            out[int(cid)] = None
            continue
        out[int(cid)] = CustomerFeatures(
            customer_id=int(cid),
            order_count_30d=count,
            total_spend_30d=_to_decimal(result["total_spend_30d"][i]) or Decimal("0.00"),
            avg_order_value_30d=_to_decimal(result["avg_order_value_30d"][i]),
            last_order_ts=_from_micros_or_none(result["last_order_ts_us"][i]),
            days_since_last_order=_to_int(result["days_since_last_order"][i]),
        )
    return out


def online_product_features(
    store: Any, product_ids: Sequence[int]
) -> dict[int, ProductFeatures | None]:
    """Serving read of product features; ``None`` for an unknown product."""
    rows = [{"product_id": int(p)} for p in product_ids]
    result = store.get_online_features(features=PRODUCT_FEATURE_REFS, entity_rows=rows).to_dict()
    out: dict[int, ProductFeatures | None] = {}
    for i, pid in enumerate(product_ids):
        units = _to_int(result["units_sold_7d"][i])
        if units is None:
            out[int(pid)] = None
            continue
        out[int(pid)] = ProductFeatures(
            product_id=int(pid),
            units_sold_7d=units,
            revenue_7d=_to_decimal(result["revenue_7d"][i]) or Decimal("0.00"),
            unique_customers_7d=_to_int(result["unique_customers_7d"][i]) or 0,
        )
    return out


def training_frame(store: Any, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time training set: for each ``(customer_id, event_timestamp, …)`` row,
    the customer's features as of that timestamp (the newest push at or before it,
    never a later one), with ``days_since_last_order`` computed at that timestamp.
    """
    if "customer_id" not in entity_df or "event_timestamp" not in entity_df:
        raise ValueError("entity_df needs columns 'customer_id' and 'event_timestamp'")
    if ROW_ID in entity_df or "read_ts_us" in entity_df:
        raise ValueError(f"entity_df must not have the columns {ROW_ID!r} or 'read_ts_us'")
    frame = entity_df.reset_index(drop=True).copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["read_ts_us"] = [to_micros(t.to_pydatetime()) for t in frame["event_timestamp"]]
    frame[ROW_ID] = range(len(frame))
    job = store.get_historical_features(entity_df=frame, features=CUSTOMER_FEATURE_REFS)
    found = job.to_df()
    # Feast's file (Dask) offline store drops an entity row whose customer has feature
    # rows, none of them at or before the row's timestamp (within the ttl), instead of
    # returning nulls; join back on the row id so every training row is kept.
    feature_cols = [ref.split(":")[1] for ref in CUSTOMER_FEATURE_REFS]
    out = frame.merge(found[[ROW_ID, *feature_cols]], on=ROW_ID, how="left", validate="one_to_one")
    return out.sort_values(ROW_ID).drop(columns=[ROW_ID, "read_ts_us"]).reset_index(drop=True)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def training_features(frame: pd.DataFrame) -> list[CustomerFeatures]:
    """The rows of a :func:`training_frame` as :class:`CustomerFeatures`, in row order.

    A row Feast knows nothing for (no push of the customer at or before its timestamp)
    reads as zeros — what the stores return for a customer without facts.
    """
    out = []
    for row in frame.to_dict("records"):
        cid = int(row["customer_id"])
        count = row["order_count_30d"]
        if _missing(count):
            out.append(CustomerFeatures(cid, 0, Decimal("0.00"), None, None, None))
            continue
        avg, last_us, days = (
            row["avg_order_value_30d"],
            row["last_order_ts_us"],
            row["days_since_last_order"],
        )
        out.append(
            CustomerFeatures(
                customer_id=cid,
                order_count_30d=int(count),
                total_spend_30d=Decimal(str(row["total_spend_30d"])),
                avg_order_value_30d=None if _missing(avg) else Decimal(str(avg)),
                last_order_ts=None if _missing(last_us) else from_micros(int(last_us)),
                days_since_last_order=None if _missing(days) else int(days),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m cdc_features.stores.feast_store prepare --repo DIR --redis-url URL``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cdc_features.stores.feast_store")
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser(
        "prepare",
        help="copy feature_repo/ to --repo, point it at --redis-url and apply it (feast apply)",
    )
    prep.add_argument("--repo", type=Path, required=True)
    prep.add_argument("--redis-url", required=True)
    args = parser.parse_args(argv)
    if Path(args.repo).resolve() == FEATURE_REPO.resolve():
        parser.error("--repo must be a working copy, not the committed feature_repo/")
    store = prepare_repo(args.repo, args.redis_url)
    views = sorted(v.name for v in store.list_feature_views())
    print(
        f"applied {args.repo}: feature views {', '.join(views)}; online store "
        f"{redis_connection_string(args.redis_url)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
