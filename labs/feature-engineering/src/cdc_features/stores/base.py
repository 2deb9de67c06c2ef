"""The one interface every feature store implements on its read side.

The write side is a ``foreachBatch`` function per query (``(batch_df, batch_id) -> None``)
that receives its configuration as a value captured in the function (``functools.partial``
or a bound method), never from a module global.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from pyspark.sql import DataFrame

from cdc_features.core import reference
from cdc_features.core.definitions import CustomerFeatures, ProductFeatures

#: a ``foreachBatch`` function
BatchFunction = Callable[[DataFrame, int], None]


class FeatureReader(Protocol):
    """Features read at time T (timezone-aware UTC), as a model would at request time."""

    def customer_features(self, ids: Iterable[int], at: datetime) -> dict[int, CustomerFeatures]:
        """Features of the given customers at ``at`` (zeros for a customer with no facts)."""
        ...

    def product_features(self, ids: Iterable[int], at: datetime) -> dict[int, ProductFeatures]:
        """Features of the given products at ``at`` (zeros for a product with no facts)."""
        ...

    def customer_ids(self) -> set[int]:
        """Customers with at least one stored fact."""
        ...

    def product_ids(self) -> set[int]:
        """Products with at least one stored fact."""
        ...


def zero_customer(customer_id: int) -> CustomerFeatures:
    """The features of a customer without counted orders in the window."""
    return CustomerFeatures(customer_id, 0, Decimal("0.00"), None, None, None)


def zero_product(product_id: int) -> ProductFeatures:
    """The features of a product without counted lines in the window."""
    return ProductFeatures(product_id, 0, Decimal("0.00"), 0)


def differences_from_reference(
    reader: FeatureReader, records: Sequence[Mapping[str, Any]], at: datetime
) -> list[str]:
    """Where the store read at ``at`` differs from the batch reference over ``records``
    (every entity the reference knows or the store holds; empty = equal)."""
    want_c = reference.reference_customer_features(records, at)
    want_p = reference.reference_product_features(records, at)
    got_c = reader.customer_features(set(want_c) | reader.customer_ids(), at)
    got_p = reader.product_features(set(want_p) | reader.product_ids(), at)
    problems = [
        f"customer {cid}: store {got} != reference {want_c.get(cid, zero_customer(cid))}"
        for cid, got in got_c.items()
        if got != want_c.get(cid, zero_customer(cid))
    ]
    problems += [
        f"product {pid}: store {got} != reference {want_p.get(pid, zero_product(pid))}"
        for pid, got in got_p.items()
        if got != want_p.get(pid, zero_product(pid))
    ]
    return problems
