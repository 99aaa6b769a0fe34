"""GPU prices in USD per GPU-hour: a dated default table of on-demand list prices, or the user's own file."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmop.catalog.gpus import GPUS

# AWS EC2 on-demand list prices, Linux, US East (N. Virginia), as published in June 2024: the instance's hourly
# price divided by its GPUs, for the smallest instance with at least the replica's GPUs (a 1-GPU g6e.xlarge costs
# $1.861 per GPU-hour, the 8-GPU g6e.48xlarge $3.766: the big sizes carry more CPUs). They are list prices as of
# that date, not what anyone pays today: AWS cut P4d/P4de/P5 on-demand prices by up to 45 % in June 2025, and
# reserved, spot and other clouds differ by far more. Pass your own with `llmop plan --compare --prices FILE`
# (`llmop run --prices FILE` for the operator's gpu.type auto).
DEFAULT_SOURCE = "AWS EC2 on-demand list prices, Linux, us-east-1 (instance price / GPUs)"
DEFAULT_AS_OF = "2024-06"


@dataclass(frozen=True)
class GpuPrice:
    """One GPU type's price per GPU-hour and where it comes from; `tiers`: (GPUs on the instance, USD per GPU-hour)
    of bigger instances, for replicas that need more GPUs than the base instance has."""

    usd_per_gpu_hour: float
    source: str
    tiers: tuple[tuple[int, float], ...] = ()

    def for_gpus(self, gpus: int) -> float:
        """Per GPU-hour for a replica of `gpus` GPUs: the cheapest instance size that holds them."""
        fitting = [price for count, price in self.tiers if count >= gpus]
        return min(fitting) if gpus > 1 and fitting else self.usd_per_gpu_hour


_DEFAULTS: dict[str, GpuPrice] = {
    "T4": GpuPrice(
        0.526, "g4dn.xlarge $0.526/h; g4dn.12xlarge $3.912/h, 4; g4dn.metal $7.824/h, 8", ((4, 0.978), (8, 0.978))
    ),
    "A10G": GpuPrice(
        1.006, "g5.xlarge $1.006/h; g5.12xlarge $5.672/h, 4; g5.48xlarge $16.288/h, 8", ((4, 1.418), (8, 2.036))
    ),
    "L4": GpuPrice(
        0.8048, "g6.xlarge $0.8048/h; g6.12xlarge $4.6016/h, 4; g6.48xlarge $13.3504/h, 8", ((4, 1.1504), (8, 1.6688))
    ),
    "L40S": GpuPrice(
        1.861, "g6e.xlarge $1.861/h; g6e.12xlarge $10.4926/h, 4; g6e.48xlarge $30.1312/h, 8", ((4, 2.6232), (8, 3.7664))
    ),
    "A100-40GB": GpuPrice(4.0966, "p4d.24xlarge $32.7726/h, 8 GPUs"),
    "A100-80GB": GpuPrice(5.1207, "p4de.24xlarge $40.9657/h, 8 GPUs"),
    "H100-80GB": GpuPrice(12.29, "p5.48xlarge $98.32/h, 8 GPUs"),
    # H100-PCIe, H200 and B200 had no AWS on-demand list price at that date: no default, pass --prices.
}


@dataclass(frozen=True)
class PriceTable:
    """Prices per GPU type; a type without one cannot be ranked by cost."""

    prices: Mapping[str, GpuPrice]
    source: str
    as_of: str
    notes: tuple[str, ...] = field(default=())

    def price(self, gpu: str) -> GpuPrice | None:
        return self.prices.get(gpu)

    def describe(self) -> str:
        return f"{self.source}, as of {self.as_of}"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "asOf": self.as_of,
            "usdPerGpuHour": {
                name: {"1": price.usd_per_gpu_hour, **{str(count): usd for count, usd in price.tiers}}
                for name, price in self.prices.items()
            },
        }


DEFAULT_PRICES = PriceTable(
    _DEFAULTS,
    DEFAULT_SOURCE,
    DEFAULT_AS_OF,
    (
        f"list prices as of {DEFAULT_AS_OF}, not today's: pass your own with --prices",
        "no default price for " + ", ".join(name for name in GPUS if name not in _DEFAULTS),
    ),
)


class PriceFileError(ValueError):
    """A price file that cannot be used; the message names the key and what is expected."""


def price_table(data: Any, origin: str, base: PriceTable = DEFAULT_PRICES) -> PriceTable:
    """A user's prices over `base`: `{source, asOf, prices: {GPU: usd_per_gpu_hour}}` or a flat `{GPU: usd}`.

    GPU types the file names replace the base price; the others keep it (and say so in their source)."""
    if not isinstance(data, dict):
        raise PriceFileError(f"{origin}: expected a mapping of GPU type to USD per GPU-hour")
    table = data.get("prices", data) if isinstance(data.get("prices"), dict) else data
    meta = {"source", "asOf", "prices"} if table is not data else set()
    unknown_keys = sorted(set(data) - {"source", "asOf", "prices"}) if meta else []
    if unknown_keys:
        raise PriceFileError(f"{origin}: unknown key(s) {', '.join(unknown_keys)}; use source, asOf and prices")
    source = str(data.get("source") or origin) if meta else origin
    as_of = str(data.get("asOf") or "unstated") if meta else "unstated"
    prices = dict(base.prices)
    for name, value in table.items():
        if name not in GPUS:
            raise PriceFileError(f"{origin}: {name!r} is not a catalog GPU type; use one of {', '.join(GPUS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise PriceFileError(f"{origin}: {name}: {value!r} is not a positive number of USD per GPU-hour")
        prices[name] = GpuPrice(float(value), source)
    kept = [name for name in base.prices if name not in table]
    notes = (f"{', '.join(kept)}: {base.describe()}",) if kept else ()
    return PriceTable(prices, source, as_of, notes)
