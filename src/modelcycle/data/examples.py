"""Seeded generators for the running examples: apartment rents and late rent payments.

``rent_apartments`` reproduces the schema of the course's ``rent_apartments.csv`` (Amsterdam
apartments and their monthly rent) from a documented generating process, so every stage of
modelcycle can be exercised, tested and demonstrated without downloading anything. With
``messy=True`` (the default) it also plants the problems real files have -- duplicate rows,
impossible years, the literal text ``"None"``, missing values and outliers -- at the rates in the
module constants below, and its ``scenario`` argument produces the shifted batches that monitoring
must catch (inflation, an unseen neighborhood, bigger apartments, a missing-value spike, a broken
schema). ``rent_default`` is the classification example: will a tenant pay late (about 6 %)?

Everything is vectorised numpy: a million rows take a few seconds. The same ``seed`` always gives
the same frame, and the random streams are split so that ``messy`` and ``scenario`` change only what
they are documented to change (``messy=False`` gives the same apartments before corruption;
``scenario="inflation"`` gives the same apartments with rents 8 % higher). The full process is
described in ``docs/data-generating-process.md``.
"""

from __future__ import annotations

import difflib
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.extensions import ExtensionArray

from modelcycle.errors import DataError

__all__ = [
    "AREA_SCALE",
    "AREA_TYPO_FACTOR",
    "AREA_TYPO_RATE",
    "BASE_RENT",
    "DEFAULT_POSITIVE_RATE",
    "DUPLICATE_RATE",
    "EMPLOYMENT_TYPES",
    "ENERGY_LABELS",
    "FACILITIES",
    "IMPOSSIBLE_YEARS",
    "IMPOSSIBLE_YEAR_RATE",
    "INFLATION_RATE",
    "MISSING_RATES",
    "MISSING_SPIKE_COLUMN",
    "MISSING_SPIKE_RATE",
    "NEIGHBORHOODS",
    "NEW_NEIGHBORHOOD",
    "NEW_NEIGHBORHOOD_SHARE",
    "NONE_STRING",
    "NONE_STRING_COLUMNS",
    "NONE_STRING_RATE",
    "RENT_APARTMENTS_COLUMNS",
    "RENT_DEFAULT_COLUMNS",
    "RENT_NOISE_SIGMA",
    "RENT_OUTLIER_FACTOR",
    "RENT_OUTLIER_RATE",
    "SCENARIOS",
    "SCHEMA_BREAK_RENAMES",
    "describe_generating_process",
    "rent_apartments",
    "rent_default",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjectArray = npt.NDArray[np.object_]

# --------------------------------------------------------------------------------------------------
# Public constants: the scenarios, the planted-problem rates and the scenario parameters.
# --------------------------------------------------------------------------------------------------

SCENARIOS: Final[tuple[str, ...]] = (
    "baseline",
    "inflation",
    "new_neighborhood",
    "bigger_apartments",
    "missing_spike",
    "schema_break",
)
"""Valid values of ``rent_apartments(scenario=...)``; ``baseline`` is the training distribution."""

RENT_APARTMENTS_COLUMNS: Final[tuple[str, ...]] = (
    "address",
    "area",
    "construction_year",
    "rooms",
    "bedrooms",
    "bathrooms",
    "balcony",
    "storage",
    "parking",
    "furnished",
    "garage",
    "garden",
    "energy",
    "facilities",
    "zip",
    "neighborhood",
    "rent",
)
"""Columns of ``rent_apartments`` in order (all scenarios except ``schema_break``)."""

BASE_RENT: Final = 1750.0
"""Median rent (EUR/month) of a 75 m2 apartment at price level 1.0 before the other effects."""
RENT_NOISE_SIGMA: Final = 0.13
"""Standard deviation of the lognormal rent noise: the noise is multiplicative (heteroscedastic)."""

# Planted problems (``messy=True``). Each rate is a share of rows; the count is round(rate * rows).
DUPLICATE_RATE: Final = 0.01
"""Share of rows overwritten by an exact copy of another row."""
IMPOSSIBLE_YEAR_RATE: Final = 0.002
"""Share of rows whose ``construction_year`` is one of :data:`IMPOSSIBLE_YEARS`."""
IMPOSSIBLE_YEARS: Final[tuple[int, ...]] = (0, 1066, 2099)
"""The impossible construction years that are planted."""
NONE_STRING: Final = "None"
"""The literal text planted in :data:`NONE_STRING_COLUMNS` (a Python ``None`` written as text)."""
NONE_STRING_COLUMNS: Final[tuple[str, ...]] = ("construction_year", "energy")
"""Columns that receive the literal text ``"None"``."""
NONE_STRING_RATE: Final = 0.005
"""Share of rows with the text ``"None"``, per column of :data:`NONE_STRING_COLUMNS`."""
MISSING_RATES: Final[dict[str, float]] = {"bathrooms": 0.03, "energy": 0.02, "parking": 0.01}
"""Share of missing values (NaN) planted per column."""
RENT_OUTLIER_RATE: Final = 0.002
"""Share of rows whose rent is multiplied by :data:`RENT_OUTLIER_FACTOR` (a typing error)."""
RENT_OUTLIER_FACTOR: Final = 5.0
"""Multiplier of the rent outliers."""
AREA_TYPO_RATE: Final = 0.001
"""Share of rows whose area is multiplied by :data:`AREA_TYPO_FACTOR` (a misplaced comma)."""
AREA_TYPO_FACTOR: Final = 10.0
"""Multiplier of the area typos."""

# Scenario parameters.
INFLATION_RATE: Final = 0.08
"""``inflation``: every rent is multiplied by ``1 + INFLATION_RATE``; the features do not move."""
NEW_NEIGHBORHOOD: Final = "Nieuw-Zuid"
"""``new_neighborhood``: the neighborhood that never appears in ``baseline`` data."""
NEW_NEIGHBORHOOD_SHARE: Final = 0.10
"""``new_neighborhood``: share of rows moved to :data:`NEW_NEIGHBORHOOD`."""
AREA_SCALE: Final = 1.35
"""``bigger_apartments``: every area is multiplied by this; rooms and rent follow it."""
MISSING_SPIKE_COLUMN: Final = "area"
"""``missing_spike``: the column that loses values."""
MISSING_SPIKE_RATE: Final = 0.40
"""``missing_spike``: share of rows whose :data:`MISSING_SPIKE_COLUMN` is NaN."""
SCHEMA_BREAK_RENAMES: Final[dict[str, str]] = {"area": "surface_m2"}
"""``schema_break``: renamed columns; ``rooms`` also becomes text such as ``"3 rooms"``."""

FACILITIES: Final[tuple[str, ...]] = (
    "dishwasher",
    "elevator",
    "washing machine",
    "dryer",
    "central heating",
    "air conditioning",
    "fireplace",
    "solar panels",
)
"""The facilities that can appear in the free-text ``facilities`` column, in listing order."""

ENERGY_LABELS: Final[tuple[str, ...]] = ("A", "B", "C", "D", "E", "F", "G")
"""Energy labels from best to worst."""

# --------------------------------------------------------------------------------------------------
# The neighborhoods.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Neighborhood:
    """Everything the generator knows about one neighborhood.

    Attributes:
        level: Price level: multiplies the rent.
        share: Share of apartments in this neighborhood (training neighborhoods sum to 1).
        zips: First and last 4-digit postcode of the neighborhood (inclusive).
        area_factor: Multiplies the median area (central apartments are smaller).
        eras: Probabilities of the four construction eras (pre-war, post-war, late, new).
        streets: Street names used in addresses.
    """

    level: float
    share: float
    zips: tuple[int, int]
    area_factor: float
    eras: tuple[float, float, float, float]
    streets: tuple[str, ...]


_NEIGHBORHOOD_INFO: Final[dict[str, _Neighborhood]] = {
    "Centrum": _Neighborhood(
        1.50, 0.07, (1011, 1014), 0.90, (0.80, 0.10, 0.07, 0.03),
        ("Keizersgracht", "Herengracht", "Singel", "Damrak", "Warmoesstraat", "Zeedijk"),
    ),
    "Jordaan": _Neighborhood(
        1.40, 0.05, (1015, 1016), 0.85, (0.75, 0.12, 0.10, 0.03),
        ("Prinsengracht", "Lauriergracht", "Egelantiersgracht", "Westerstraat", "Rozengracht"),
    ),
    "Oud-Zuid": _Neighborhood(
        1.45, 0.08, (1075, 1077), 1.15, (0.70, 0.15, 0.10, 0.05),
        ("Van Baerlestraat", "Koninginneweg", "Cornelis Schuytstraat", "De Lairessestraat"),
    ),
    "De Pijp": _Neighborhood(
        1.30, 0.07, (1072, 1074), 0.85, (0.75, 0.10, 0.10, 0.05),
        ("Ferdinand Bolstraat", "Albert Cuypstraat", "Van Woustraat", "Govert Flinckstraat"),
    ),
    "Oud-West": _Neighborhood(
        1.25, 0.09, (1053, 1054), 0.90, (0.65, 0.15, 0.12, 0.08),
        ("Kinkerstraat", "Jan Pieter Heijestraat", "Overtoom", "Bilderdijkstraat"),
    ),
    "Westerpark": _Neighborhood(
        1.12, 0.06, (1051, 1052), 0.90, (0.45, 0.20, 0.15, 0.20),
        ("Haarlemmerweg", "Spaarndammerstraat", "Van Hallstraat", "Zaanstraat"),
    ),
    "Oost": _Neighborhood(
        1.10, 0.08, (1091, 1092), 0.95, (0.45, 0.20, 0.20, 0.15),
        ("Linnaeusstraat", "Dapperstraat", "Mauritskade", "Eerste van Swindenstraat"),
    ),
    "Watergraafsmeer": _Neighborhood(
        1.05, 0.05, (1097, 1098), 1.10, (0.35, 0.35, 0.15, 0.15),
        ("Middenweg", "Kruislaan", "Linnaeusparkweg", "Hugo de Vrieslaan"),
    ),
    "Buitenveldert": _Neighborhood(
        1.02, 0.04, (1081, 1083), 1.15, (0.02, 0.60, 0.28, 0.10),
        ("De Boelelaan", "Van Nijenrodeweg", "Buitenveldertselaan", "A.J. Ernststraat"),
    ),
    "IJburg": _Neighborhood(
        1.00, 0.05, (1087, 1087), 1.20, (0.00, 0.00, 0.05, 0.95),
        ("IJburglaan", "Pampuslaan", "Krijn Taconiskade", "Haringbuisdijk"),
    ),
    "Indische Buurt": _Neighborhood(
        0.95, 0.05, (1093, 1094), 0.90, (0.40, 0.25, 0.25, 0.10),
        ("Javastraat", "Molukkenstraat", "Sumatrastraat", "Celebesstraat"),
    ),
    "Bos en Lommer": _Neighborhood(
        0.92, 0.05, (1055, 1056), 0.90, (0.30, 0.45, 0.15, 0.10),
        ("Bos en Lommerweg", "Admiraal de Ruijterweg", "Erasmusgracht", "Gibraltarstraat"),
    ),
    "Noord": _Neighborhood(
        0.85, 0.09, (1021, 1025), 1.10, (0.15, 0.35, 0.25, 0.25),
        ("Van der Pekstraat", "Buiksloterweg", "Meeuwenlaan", "Nieuwendammerdijk"),
    ),
    "Nieuw-West": _Neighborhood(
        0.80, 0.10, (1062, 1068), 1.00, (0.05, 0.60, 0.20, 0.15),
        ("Slotermeerlaan", "Osdorpplein", "Plesmanlaan", "Johan Huizingalaan"),
    ),
    "Zuidoost": _Neighborhood(
        0.72, 0.07, (1101, 1108), 1.10, (0.00, 0.35, 0.45, 0.20),
        ("Bijlmerdreef", "Karspeldreef", "Ganzenhoef", "Kraaiennest"),
    ),
}  # fmt: skip

_NEW_NEIGHBORHOOD_INFO: Final = _Neighborhood(
    1.35, 0.0, (1099, 1099), 1.10, (0.00, 0.00, 0.05, 0.95),
    ("Gustav Mahlerlaan", "Parnassusweg", "Claude Debussylaan", "Mahlerplein"),
)  # fmt: skip

NEIGHBORHOODS: Final[dict[str, float]] = {
    name: info.level for name, info in _NEIGHBORHOOD_INFO.items()
}
"""The 15 training neighborhoods and their price level (a multiplier of the rent)."""

# Construction eras: (first year, last year) of the pre-war, post-war, late and new era.
_ERAS: Final[tuple[tuple[int, int], ...]] = ((1890, 1940), (1945, 1975), (1976, 2000), (2001, 2024))
_AREA_MEDIAN: Final = 72.0
_AREA_SIGMA: Final = 0.40
_AREA_BOUNDS: Final = (20.0, 280.0)
# Dutch postcodes never use these letters; the others make the two-letter suffix.
_ZIP_LETTERS: Final = "ABCDEGHJKLMNPRSTVWXZ"
_MAX_HOUSE_NUMBER: Final = 299
_LAST_YEAR: Final = max(2024, *IMPOSSIBLE_YEARS)
# House-number suffixes as Amsterdam writes them ("-H" is the ground floor) and their shares.
_HOUSE_SUFFIXES: Final = ("", "-1", "-2", "-3", "-H")
_HOUSE_SUFFIX_SHARES: Final = (0.80, 0.05, 0.05, 0.05, 0.05)

# --------------------------------------------------------------------------------------------------
# Argument checks.
# --------------------------------------------------------------------------------------------------


def _check_size(rows: int, seed: int) -> None:
    """Raise a :class:`DataError` unless ``rows`` >= 1 and ``seed`` >= 0 are whole numbers."""
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
        raise DataError(
            f"cannot generate {rows!r} rows: the number of rows must be a whole number >= 1",
            "pass rows=1 or more, e.g. rows=5000",
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(
            f"invalid seed {seed!r}: the seed must be a whole number >= 0",
            "pass a non-negative integer such as seed=42",
        )


def _check_scenario(scenario: str) -> set[str]:
    """The scenarios of ``"a+b"``; a :class:`DataError` names the valid ones for an unknown one."""
    wanted = set(str(scenario).split("+"))
    for name in sorted(wanted):
        if name in SCENARIOS:
            continue
        close = difflib.get_close_matches(name, SCENARIOS, n=1)
        suggestion = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(
            f"unknown scenario {name!r}{suggestion}",
            f"use one of: {', '.join(SCENARIOS)}, or several joined by '+'",
        )
    return wanted


# --------------------------------------------------------------------------------------------------
# Small vectorised helpers.
# --------------------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, n: int, *rates: float) -> list[IntArray]:
    """Choose disjoint row positions, ``round(rate * n)`` of them for each rate.

    Args:
        rng: The random generator.
        n: Number of rows.
        *rates: One share of rows per group of positions.

    Returns:
        One sorted array of positions per rate; the groups never overlap.
    """
    counts = [round(rate * n) for rate in rates]
    chosen = rng.choice(n, size=min(sum(counts), n), replace=False).astype(np.int64)
    bounds = np.cumsum([0, *counts])
    return [np.sort(chosen[start:stop]) for start, stop in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class _Coded:
    """A text column kept as integer codes into a list of strings until the frame is built.

    Planting problems and duplicating rows then touch only integers; the strings are made once, by
    one vectorised ``take``, in :meth:`to_array`.

    Attributes:
        categories: The distinct strings.
        codes: One index into ``categories`` per row; -1 is a missing value (NaN).
    """

    categories: tuple[str, ...]
    codes: IntArray

    def __getitem__(self, rows: IntArray) -> _Coded:
        """The same column restricted to (or repeated along) ``rows``."""
        return _Coded(self.categories, self.codes[rows])

    def to_array(self) -> ExtensionArray:
        """The column as a pandas string array (missing values are NaN)."""
        return pd.array(list(self.categories), dtype="str").take(self.codes, allow_fill=True)


def _coded(categories: Sequence[str], codes: npt.NDArray[np.integer[Any] | np.bool_]) -> _Coded:
    """Build a :class:`_Coded` column from any integer codes."""
    return _Coded(tuple(categories), codes.astype(np.int64))


def _yes_no(flags: BoolArray) -> _Coded:
    """Turn booleans into the strings ``"yes"``/``"no"``, as the course file writes them."""
    return _coded(("no", "yes"), flags)


def _inverse_cdf(u: FloatArray, probabilities: FloatArray) -> IntArray:
    """Draw a category per row from per-row probabilities (rows x categories) by inverse CDF."""
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative /= cumulative[:, -1:]
    index: IntArray = (u[:, None] > cumulative).sum(axis=1).astype(np.int64)
    clipped: IntArray = np.minimum(index, probabilities.shape[1] - 1)
    return clipped


def _round_to(values: FloatArray, step: float) -> FloatArray:
    """Round to the nearest multiple of ``step`` (rents are advertised in steps of 5 euros)."""
    rounded: FloatArray = np.round(values / step) * step
    return rounded


@functools.cache
def _facility_strings() -> tuple[str, ...]:
    """All 2**len(FACILITIES) comma-separated facility lists, indexed by their bit mask."""
    masks = range(2 ** len(FACILITIES))
    return tuple(
        ", ".join(f for bit, f in enumerate(FACILITIES) if mask >> bit & 1) for mask in masks
    )


_Column = npt.NDArray[Any] | _Coded


def _all_neighborhoods() -> list[_Neighborhood]:
    """The training neighborhoods followed by the new one (the index order of the generator)."""
    return [*_NEIGHBORHOOD_INFO.values(), _NEW_NEIGHBORHOOD_INFO]


@functools.cache
def _all_addresses() -> tuple[str, ...]:
    """Every possible address, indexed by ``(street * 299 + number - 1) * 5 + suffix``."""
    return tuple(
        f"{street} {number}{suffix}"
        for info in _all_neighborhoods()
        for street in info.streets
        for number in range(1, _MAX_HOUSE_NUMBER + 1)
        for suffix in _HOUSE_SUFFIXES
    )


@functools.cache
def _year_texts() -> tuple[str, ...]:
    """The years 0 ... _LAST_YEAR as text, followed by ``"None"`` (indexed by the year itself)."""
    return (*(str(year) for year in range(_LAST_YEAR + 1)), NONE_STRING)


@functools.cache
def _zip_prefixes() -> IntArray:
    """The sorted 4-digit postcode prefixes of all neighborhoods."""
    prefixes = {p for info in _all_neighborhoods() for p in range(info.zips[0], info.zips[1] + 1)}
    return np.array(sorted(prefixes), dtype=np.int64)


@functools.cache
def _all_zip_codes() -> tuple[str, ...]:
    """Every possible postcode, indexed by ``prefix index * 400 + letter pair index``."""
    return tuple(
        f"{prefix}{first}{second}"
        for prefix in _zip_prefixes()
        for first in _ZIP_LETTERS
        for second in _ZIP_LETTERS
    )


# --------------------------------------------------------------------------------------------------
# rent_apartments
# --------------------------------------------------------------------------------------------------


def _expected_rent(
    *,
    area: FloatArray,
    level: FloatArray,
    year: FloatArray,
    energy_index: IntArray,
    extras: dict[str, BoolArray],
    facilities: dict[str, BoolArray],
) -> FloatArray:
    """The noise-free rent of each apartment (EUR/month), before rounding.

    ``BASE_RENT * level * (area / 75) ** 0.7 * age * energy * extras * facilities``, where the age
    effect is U-shaped in the construction year (historic and new buildings earn a premium over
    post-war ones), each energy label below A costs about 3.5 %, and each extra multiplies the rent
    (furnishing earns 15 % up to 45 m2, falling towards 6 % for large apartments). The rent
    increases with the area for every combination of the other features.

    Args:
        area: Living area in m2.
        level: Price level of the neighborhood.
        year: Construction year.
        energy_index: Energy label as 0 (A) ... 6 (G).
        extras: Boolean arrays keyed by ``balcony``, ``storage``, ``parking``, ``furnished``,
            ``garage`` and ``garden``.
        facilities: Boolean arrays keyed by the names in :data:`FACILITIES`.

    Returns:
        The expected (median) rent of each apartment.
    """
    size = (area / 75.0) ** 0.7
    age = np.exp(0.10 * ((year - 1965.0) / 45.0) ** 2 - 0.07)
    energy = np.exp(-0.035 * energy_index + 0.03 * (energy_index == 0))
    # Furnished small flats (expats, students) earn more: +15 % up to 45 m2, falling towards +6 %
    # for large ones -- slowly enough that a larger area never lowers the rent.
    furnished_premium = 0.06 + 0.09 * 45.0 / np.maximum(area, 45.0)
    log_extras = (
        0.04 * extras["balcony"]
        + 0.02 * extras["storage"]
        + 0.03 * extras["parking"]
        + furnished_premium * extras["furnished"]
        + 0.07 * extras["garage"]
        + 0.06 * extras["garden"]
    )
    # dishwasher, elevator and air conditioning are the facilities tenants pay for.
    log_facilities = (
        0.015 * facilities["dishwasher"]
        + 0.02 * facilities["elevator"]
        + 0.03 * facilities["air conditioning"]
    )
    rent: FloatArray = BASE_RENT * level * size * age * energy * np.exp(log_extras + log_facilities)
    return rent


def rent_apartments(
    rows: int = 5000,
    seed: int = 42,
    scenario: str = "baseline",
    *,
    messy: bool = True,
) -> pd.DataFrame:
    """Generate apartments and their monthly rent, with the schema of ``rent_apartments.csv``.

    The rent depends non-linearly on the area (concave: the price per m2 falls as the area grows),
    multiplicatively on the neighborhood's price level, on the energy label, U-shaped on the
    construction year, and on the extras; the noise is lognormal, so it grows with the rent. See
    ``docs/data-generating-process.md`` for the formulas.

    Args:
        rows: Number of rows (>= 1). Duplicates planted by ``messy`` replace rows, so the frame has
            exactly ``rows`` rows.
        seed: Seed of the random generator; the same seed always gives the same frame.
        scenario: One of :data:`SCENARIOS`: ``baseline`` (the training distribution),
            ``inflation`` (rents +8 %), ``new_neighborhood`` (10 % of rows in the unseen
            :data:`NEW_NEIGHBORHOOD`), ``bigger_apartments`` (areas x1.35), ``missing_spike``
            (40 % of ``area`` missing) or ``schema_break`` (``area`` renamed to ``surface_m2`` and
            ``rooms`` written as text such as ``"3 rooms"``); several joined by ``+``
            (``"inflation+new_neighborhood"``) apply together.
        messy: Plant duplicate rows, impossible construction years, ``"None"`` strings, missing
            values and outliers at the rates of the module constants. ``False`` gives the same
            apartments without them.

    Returns:
        One row per apartment with the columns :data:`RENT_APARTMENTS_COLUMNS` (``schema_break``
        renames ``area`` to ``surface_m2``). When messy, ``construction_year`` is a text column
        (it holds the text ``"None"``, so the years are text too, as a CSV reader that does not
        guess missing values returns them) and ``bathrooms`` is float (it has missing values).

    Raises:
        DataError: ``rows`` < 1, a negative seed, or an unknown scenario.
    """
    _check_size(rows, seed)
    scenarios = _check_scenario(scenario)
    n = int(rows)
    feature_rng, noise_rng, messy_rng, scenario_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(4)
    )

    # 1. Every random number the clean data needs, drawn in a fixed order so that scenarios which
    #    change a parameter (neighborhood, area) still reuse the baseline's draws.
    names = [*_NEIGHBORHOOD_INFO, NEW_NEIGHBORHOOD]
    infos = _all_neighborhoods()
    shares = np.array([info.share for info in infos])
    hood = np.searchsorted(np.cumsum(shares[:-1]), feature_rng.random(n), side="right")
    hood = np.minimum(hood, len(_NEIGHBORHOOD_INFO) - 1).astype(np.int64)
    z_area = feature_rng.standard_normal(n)
    u_era = feature_rng.random(n)
    u_year = feature_rng.random(n)
    z_rooms = feature_rng.standard_normal(n)
    u_bedrooms = feature_rng.random(n)
    u_bathrooms = feature_rng.random((n, 2))
    z_energy = feature_rng.standard_normal(n)
    u_extras = feature_rng.random((n, 6))
    u_facilities = feature_rng.random((n, len(FACILITIES)))
    u_street = feature_rng.random(n)
    house_number = feature_rng.integers(1, _MAX_HOUSE_NUMBER + 1, size=n)
    u_suffix = feature_rng.random(n)
    u_zip = feature_rng.random(n)
    zip_letters = feature_rng.integers(0, len(_ZIP_LETTERS), size=(n, 2))
    z_noise = noise_rng.standard_normal(n)

    if "new_neighborhood" in scenarios:
        (moved,) = _pick(scenario_rng, n, NEW_NEIGHBORHOOD_SHARE)
        hood[moved] = len(names) - 1

    # 2. The apartments.
    level = np.array([info.level for info in infos])[hood]
    area_factor = np.array([info.area_factor for info in infos])[hood]
    area = np.clip(_AREA_MEDIAN * area_factor * np.exp(_AREA_SIGMA * z_area), *_AREA_BOUNDS)
    if "bigger_apartments" in scenarios:
        area = area * AREA_SCALE
    area = np.round(area, 1)

    era = _inverse_cdf(u_era, np.array([info.eras for info in infos])[hood])
    era_start = np.array([first for first, _ in _ERAS])[era]
    era_length = np.array([last - first + 1 for first, last in _ERAS])[era]
    year = (era_start + np.floor(u_year * era_length)).astype(np.int64)

    rooms = np.clip(np.rint(area / 28.0 + 0.6 * z_rooms), 1, 8).astype(np.int64)
    bedrooms = np.clip(rooms - 1 - (u_bedrooms < 0.25), 1, rooms).astype(np.int64)
    bathrooms = (
        1 + (area > 110) * (u_bathrooms[:, 0] < 0.6) + (area > 170) * (u_bathrooms[:, 1] < 0.5)
    ).astype(np.int64)

    # Older buildings have worse labels; renovations blur it (the normal term).
    energy_index = np.clip(np.rint(6.0 * (2024 - year) / 130.0 + z_energy), 0, 6).astype(np.int64)

    # Extras and facilities: one uniform draw per row and item, below its probability means "yes".
    extra_probability: dict[str, FloatArray | float] = {
        "balcony": np.where(year > 1975, 0.70, 0.35),
        "storage": 0.45,
        "parking": np.clip(0.60 - 0.35 * level, 0.05, 0.50),  # rare in the centre
        "furnished": 0.30,
        "garage": np.where(year > 1990, 0.18, 0.08),
        "garden": np.clip(0.38 - 0.15 * level, 0.05, 0.30),  # rare in the centre
    }
    extras = {
        name: u_extras[:, i] < probability
        for i, (name, probability) in enumerate(extra_probability.items())
    }
    facility_probability: dict[str, FloatArray | float] = {
        "dishwasher": 0.55,
        "elevator": np.where(year > 1960, 0.60, 0.10),
        "washing machine": 0.65,
        "dryer": 0.35,
        "central heating": 0.85,
        "air conditioning": np.where(year > 2000, 0.25, 0.08),
        "fireplace": np.where(year < 1940, 0.25, 0.05),
        "solar panels": np.where(year > 2000, 0.25, 0.03),
    }
    has_facility = {
        name: u_facilities[:, i] < facility_probability[name] for i, name in enumerate(FACILITIES)
    }
    facility_mask = np.zeros(n, dtype=np.int64)
    for bit, flags in enumerate(has_facility.values()):
        facility_mask |= flags.astype(np.int64) << bit
    facilities = _coded(_facility_strings(), facility_mask)

    # 3. The rent: expected rent x lognormal noise, rounded to 5 euros.
    expected = _expected_rent(
        area=area,
        level=level,
        year=year.astype(np.float64),
        energy_index=energy_index,
        extras=extras,
        facilities=has_facility,
    )
    if "inflation" in scenarios:
        expected = expected * (1.0 + INFLATION_RATE)
    rent = _round_to(expected * np.exp(RENT_NOISE_SIGMA * z_noise), 5.0)

    # 4. Free-text identifiers: address and Dutch-style postcode, both tied to the neighborhood.
    street_count = np.array([len(info.streets) for info in infos])
    street_offset = np.concatenate([[0], np.cumsum(street_count)[:-1]])
    # Both are coded over every possible value (about 100,000 addresses, 20,000 postcodes), so the
    # strings are built once per possible value, not once per row.
    street = street_offset[hood] + np.floor(u_street * street_count[hood]).astype(np.int64)
    suffix = np.searchsorted(np.cumsum(_HOUSE_SUFFIX_SHARES)[:-1], u_suffix, side="right")
    address = _Coded(
        _all_addresses(),
        (street * _MAX_HOUSE_NUMBER + house_number - 1) * len(_HOUSE_SUFFIXES) + suffix,
    )
    zip_first = np.array([info.zips[0] for info in infos])[hood]
    zip_span = np.array([info.zips[1] - info.zips[0] + 1 for info in infos])[hood]
    zip_digits = zip_first + np.floor(u_zip * zip_span).astype(np.int64)
    zip_code = _Coded(
        _all_zip_codes(),
        np.searchsorted(_zip_prefixes(), zip_digits) * len(_ZIP_LETTERS) ** 2
        + zip_letters[:, 0] * len(_ZIP_LETTERS)
        + zip_letters[:, 1],
    )

    columns: dict[str, _Column] = {
        "address": address,
        "area": area,
        "construction_year": year,
        "rooms": rooms,
        "bedrooms": bedrooms,
        "bathrooms": bathrooms,
        **{name: _yes_no(flags) for name, flags in extras.items()},
        "energy": _coded(ENERGY_LABELS, energy_index),
        "facilities": facilities,
        "zip": zip_code,
        "neighborhood": _coded(names, hood),
        "rent": rent,
    }

    # 5. What real files have (messy=True): corruption first, duplicates last so they are exact.
    if messy:
        _plant_problems(columns, messy_rng, n)

    # 6. Scenario changes applied to the finished file.
    if "missing_spike" in scenarios:
        (gone,) = _pick(scenario_rng, n, MISSING_SPIKE_RATE)
        spiked = np.asarray(columns[MISSING_SPIKE_COLUMN], dtype=np.float64).copy()
        spiked[gone] = np.nan
        columns[MISSING_SPIKE_COLUMN] = spiked
    if "schema_break" in scenarios:
        room_text = [f"{count} room" if count == 1 else f"{count} rooms" for count in range(9)]
        columns["rooms"] = _coded(room_text, np.asarray(columns["rooms"]))
        columns = {SCHEMA_BREAK_RENAMES.get(name, name): values for name, values in columns.items()}

    return pd.DataFrame(
        {
            name: values.to_array() if isinstance(values, _Coded) else values
            for name, values in columns.items()
        }
    )


def _plant_problems(columns: dict[str, _Column], rng: np.random.Generator, n: int) -> None:
    """Plant duplicates, impossible years, ``"None"`` strings, NaNs and outliers in place.

    Args:
        columns: The clean columns, keyed by name; replaced in place by their messy versions.
        rng: The random generator reserved for the planted problems.
        n: Number of rows.
    """
    # Outliers: a rent with an extra digit-ish (x5) and an area with a misplaced decimal (x10).
    rent_outliers, area_typos = _pick(rng, n, RENT_OUTLIER_RATE, AREA_TYPO_RATE)
    rent = np.asarray(columns["rent"], dtype=np.float64).copy()
    rent[rent_outliers] *= RENT_OUTLIER_FACTOR
    columns["rent"] = rent
    area = np.asarray(columns["area"], dtype=np.float64).copy()
    area[area_typos] = np.round(area[area_typos] * AREA_TYPO_FACTOR, 1)
    columns["area"] = area

    # Impossible construction years and the text "None". A column holding "None" is text, as a
    # CSV reader that does not guess missing values returns it (and Parquet can store it): the
    # code of a year is the year itself, and the code _LAST_YEAR + 1 is "None".
    impossible, year_none = _pick(rng, n, IMPOSSIBLE_YEAR_RATE, NONE_STRING_RATE)
    year = np.asarray(columns["construction_year"], dtype=np.int64).copy()
    year[impossible] = np.array(IMPOSSIBLE_YEARS)[
        rng.integers(0, len(IMPOSSIBLE_YEARS), size=len(impossible))
    ]
    year[year_none] = _LAST_YEAR + 1
    columns["construction_year"] = _Coded(_year_texts(), year)

    # Missing values (NaN), and "None" in the other text column; never both in the same cell.
    for name, rate in MISSING_RATES.items():
        none_rate = NONE_STRING_RATE if name in NONE_STRING_COLUMNS else 0.0
        missing, none_text = _pick(rng, n, rate, none_rate)
        values = columns[name]
        if isinstance(values, _Coded):
            codes = values.codes.copy()
            codes[missing] = -1
            codes[none_text] = len(values.categories)
            columns[name] = _Coded((*values.categories, NONE_STRING), codes)
        else:
            numbers = values.astype(np.float64)
            numbers[missing] = np.nan
            columns[name] = numbers

    # Exact duplicates: some rows are overwritten by a copy of a row that is kept.
    (duplicates,) = _pick(rng, n, DUPLICATE_RATE)
    if len(duplicates):
        is_kept = np.ones(n, dtype=bool)
        is_kept[duplicates] = False
        kept = np.flatnonzero(is_kept)
        take = np.arange(n)
        take[duplicates] = kept[rng.integers(0, len(kept), size=len(duplicates))]
        for name, values in columns.items():
            columns[name] = values[take]


# --------------------------------------------------------------------------------------------------
# rent_default
# --------------------------------------------------------------------------------------------------

EMPLOYMENT_TYPES: Final[dict[str, float]] = {
    "permanent": 0.55,
    "temporary": 0.20,
    "self-employed": 0.12,
    "student": 0.08,
    "unemployed": 0.05,
}
"""Employment categories of ``rent_default`` and their shares."""

DEFAULT_POSITIVE_RATE: Final = 0.06
"""The share of late payers ``rent_default`` is calibrated to (about 6 %)."""

RENT_DEFAULT_COLUMNS: Final[tuple[str, ...]] = (
    "tenant_id",
    "contract_start",
    "monthly_income",
    "rent",
    "rent_to_income",
    "age",
    "employment",
    "previous_late_payments",
    "months_at_address",
    "has_guarantor",
    "neighborhood",
    "late_payment",
)
"""Columns of ``rent_default`` in order; ``late_payment`` (0/1) is the target."""

# Per employment type (in the order of EMPLOYMENT_TYPES): median income, income sigma, mean of
# previous late payments, guarantor probability, and the effect on the log-odds of paying late.
_INCOME_MEDIAN: Final = np.array([4200.0, 3300.0, 4000.0, 1400.0, 1500.0])
_INCOME_SIGMA: Final = np.array([0.30, 0.30, 0.55, 0.35, 0.25])
_LATE_MEAN: Final = np.array([0.20, 0.35, 0.35, 0.40, 0.80])
_GUARANTOR_PROBABILITY: Final = np.array([0.10, 0.30, 0.15, 0.70, 0.25])
_EMPLOYMENT_LOGIT: Final = np.array([0.0, 0.6, 0.5, 0.3, 1.4])
_DEFAULT_INTERCEPT: Final = -5.3
_CONTRACT_START: Final = np.datetime64("2021-01-01")
_CONTRACT_DAYS: Final = 4 * 365


def _late_payment_logit(
    *,
    rent_to_income: FloatArray,
    employment_index: IntArray,
    previous_late_payments: IntArray,
    has_guarantor: BoolArray,
    months_at_address: IntArray,
    age: IntArray,
) -> FloatArray:
    """The log-odds that a tenant pays late (the ``rent_default`` ground truth).

    ``-5.3 + 1.5 * rti + 6 * max(rti - 0.4, 0) + employment + 0.8 * min(late, 4) - 1.0 * guarantor
    - 0.006 * months_at_address + 0.3 * (age < 25)``: a steep penalty once the rent exceeds 40 % of
    the income, on top of a gentle slope.

    Args:
        rent_to_income: Rent divided by monthly income.
        employment_index: Position of the employment type in :data:`EMPLOYMENT_TYPES`.
        previous_late_payments: Count of earlier late payments.
        has_guarantor: Whether someone guarantees the rent.
        months_at_address: Months the tenant lived at the previous address.
        age: Age in years.

    Returns:
        The log-odds per tenant.
    """
    logit: FloatArray = (
        _DEFAULT_INTERCEPT
        + 1.5 * rent_to_income
        + 6.0 * np.maximum(rent_to_income - 0.4, 0.0)
        + _EMPLOYMENT_LOGIT[employment_index]
        + 0.8 * np.minimum(previous_late_payments, 4)
        - 1.0 * has_guarantor
        - 0.006 * months_at_address
        + 0.3 * (age < 25)
    )
    return logit


def rent_default(rows: int = 5000, seed: int = 42) -> pd.DataFrame:
    """Generate rental contracts and whether the tenant paid late: imbalanced classification.

    About :data:`DEFAULT_POSITIVE_RATE` (6 %) of tenants pay late. The probability is the logistic
    function of ``_late_payment_logit`` -- rent-to-income ratio, employment, previous late
    payments, guarantor, time at the previous address, age -- so a model can learn it. Rows are
    ordered by ``contract_start`` (a date usable as the time column) and ``tenant_id`` follows that
    order.

    Args:
        rows: Number of rows (>= 1).
        seed: Seed of the random generator; the same seed always gives the same frame.

    Returns:
        One row per contract with the columns :data:`RENT_DEFAULT_COLUMNS`; ``late_payment`` is 0/1.

    Raises:
        DataError: ``rows`` < 1 or a negative seed.
    """
    _check_size(rows, seed)
    n = int(rows)
    rng = np.random.default_rng(int(seed))

    employment = np.searchsorted(
        np.cumsum(list(EMPLOYMENT_TYPES.values()))[:-1], rng.random(n), side="right"
    ).astype(np.int64)
    income = _round_to(
        _INCOME_MEDIAN[employment] * np.exp(_INCOME_SIGMA[employment] * rng.standard_normal(n)),
        10.0,
    )
    income = np.maximum(income, 600.0)

    shares = np.array([info.share for info in _NEIGHBORHOOD_INFO.values()])
    hood = np.minimum(
        np.searchsorted(np.cumsum(shares)[:-1], rng.random(n), side="right"),
        len(shares) - 1,
    )
    level = np.array(list(NEIGHBORHOODS.values()))[hood]
    rent = 1500.0 * level**0.8 * np.sqrt(income / 3800.0) * np.exp(0.22 * rng.standard_normal(n))
    rent = _round_to(np.clip(rent, 400.0, 6000.0), 5.0)
    rent_to_income = np.round(rent / income, 3)

    student = employment == 3
    age = np.where(
        student,
        18 + np.floor(rng.gamma(2.0, 2.0, size=n)),
        np.clip(np.rint(38.0 + 11.0 * rng.standard_normal(n)), 20, 75),
    )
    age = np.clip(age, 18, 75).astype(np.int64)
    previous_late = rng.poisson(_LATE_MEAN[employment]).astype(np.int64)
    months_at_address = np.clip(np.rint(rng.exponential(40.0, size=n)), 0, 480).astype(np.int64)
    guarantor = rng.random(n) < _GUARANTOR_PROBABILITY[employment]

    logit = _late_payment_logit(
        rent_to_income=rent_to_income,
        employment_index=employment,
        previous_late_payments=previous_late,
        has_guarantor=guarantor,
        months_at_address=months_at_address,
        age=age,
    )
    late = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    start = np.sort(
        _CONTRACT_START + rng.integers(0, _CONTRACT_DAYS, size=n).astype("timedelta64[D]")
    )
    frame = pd.DataFrame(
        {
            "tenant_id": ("T" + pd.Series(np.arange(1, n + 1)).astype("str").str.zfill(7)).array,
            "contract_start": start.astype("datetime64[ns]"),
            "monthly_income": income,
            "rent": rent,
            "rent_to_income": rent_to_income,
            "age": age,
            "employment": _coded(list(EMPLOYMENT_TYPES), employment).to_array(),
            "previous_late_payments": previous_late,
            "months_at_address": months_at_address,
            "has_guarantor": _yes_no(guarantor).to_array(),
            "neighborhood": _coded(list(NEIGHBORHOODS), hood).to_array(),
            "late_payment": late,
        }
    )
    return frame


# --------------------------------------------------------------------------------------------------
# Documentation helper
# --------------------------------------------------------------------------------------------------


def describe_generating_process() -> str:
    """A short plain-text summary of both generating processes, built from the module constants.

    Returns:
        Several lines of text: the rent formula, the neighborhoods and their price levels, the
        planted problems and their rates, the scenarios, and the late-payment model.
    """
    hoods = ", ".join(f"{name} {level:.2f}" for name, level in NEIGHBORHOODS.items())
    missing = ", ".join(f"{name} {rate:.0%}" for name, rate in MISSING_RATES.items())
    return "\n".join(
        [
            "rent_apartments: Amsterdam apartments and their monthly rent (EUR).",
            f"  rent = {BASE_RENT:.0f} * level * (area/75)^0.7 * age(U-shaped) * energy * extras"
            f" * facilities * exp({RENT_NOISE_SIGMA} * N(0, 1)), rounded to 5 EUR.",
            f"  neighborhood price levels: {hoods}.",
            f"  messy=True plants: {DUPLICATE_RATE:.1%} exact duplicate rows,"
            f" {IMPOSSIBLE_YEAR_RATE:.1%} impossible years {IMPOSSIBLE_YEARS},"
            f" {NONE_STRING_RATE:.1%} '{NONE_STRING}' text in {', '.join(NONE_STRING_COLUMNS)},"
            f" missing values ({missing}), {RENT_OUTLIER_RATE:.1%} rents x{RENT_OUTLIER_FACTOR:g},"
            f" {AREA_TYPO_RATE:.1%} areas x{AREA_TYPO_FACTOR:g}.",
            f"  scenarios: baseline; inflation (rent x{1 + INFLATION_RATE:g}); new_neighborhood"
            f" ({NEW_NEIGHBORHOOD_SHARE:.0%} of rows in {NEW_NEIGHBORHOOD});"
            f" bigger_apartments (area x{AREA_SCALE:g}); missing_spike ({MISSING_SPIKE_RATE:.0%}"
            f" of {MISSING_SPIKE_COLUMN} missing); schema_break (area -> surface_m2,"
            " rooms as text).",
            "rent_default: will the tenant pay late? (0/1, about"
            f" {DEFAULT_POSITIVE_RATE:.0%} positive)",
            f"  P(late) = logistic({_DEFAULT_INTERCEPT:g} + 1.5*rti + 6*max(rti-0.4, 0)"
            " + employment + 0.8*min(late, 4) - 1.0*guarantor - 0.006*months_at_address"
            " + 0.3*(age<25)).",
        ]
    )
