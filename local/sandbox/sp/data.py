"""The contents of SP-API report documents (apis.md §6.2, §6.3), generated deterministically from the request and
gzip'd as they stream.

One seller's catalog per marketplace (parent ASINs, their children, each child's SKUs) and its daily figures per
SKU (sessions, page views, units, order items, refunds, the B2B share...) come from seeds of the marketplace, the
SKU and the date, so the same day has the same figures in every report that covers it, and the reports agree:

- ``GET_SALES_AND_TRAFFIC_REPORT``: JSON as ``sellerSalesAndTrafficReport.json`` shapes it. ``salesAndTrafficByDate``
  sums the SKUs per DAY, WEEK (Sunday to Saturday) or MONTH, the range widened to whole periods;
  ``salesAndTrafficByAsin`` sums the whole range per PARENT, CHILD or SKU (``childAsin`` and ``sku`` only at the
  finer levels).
- ``GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL`` (and ``..._BY_LAST_UPDATE_GENERAL``): tab-separated, a
  header row, one line per order item, the day's order items of each SKU, purchase dates within the requested
  times. Fields a consumer order leaves empty are empty, and so are the last columns (``purchase-order-number``,
  ``price-designation``) except on business orders.
- ``GET_MERCHANT_LISTINGS_ALL_DATA``: tab-separated, a header row, one line per SKU; the unused ``zshop-*``
  fields are empty, and the business-price columns that newer files append (⚠️ their names are unverified)
  are empty except for the SKUs with a business price.
- any other report type: a small JSON document, ``{"reportSpecification": {...the request...}, "records": []}``.
- a FATAL report's document: ``{"errorDetails": "<reason>"}`` (apis.md §5.4 leaves its format open).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

from local.sandbox.files import gzipped
from shared.amazon.regions import MARKETPLACES

SALES_AND_TRAFFIC = "GET_SALES_AND_TRAFFIC_REPORT"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
ORDERS = ("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL")
JSON_TYPE = "application/json; charset=UTF-8"
TSV_TYPE = "text/tab-separated-values; charset=UTF-8"
Chunks = Callable[[], Iterator[bytes]]

CURRENCIES = {"US": "USD", "CA": "CAD", "MX": "MXN", "BR": "BRL", "UK": "GBP", "SE": "SEK", "PL": "PLN",
              "TR": "TRY", "EG": "EGP", "SA": "SAR", "AE": "AED", "IN": "INR", "ZA": "ZAR", "SG": "SGD",
              "AU": "AUD", "JP": "JPY"}  # the euro elsewhere
DOMAINS = {"US": "amazon.com", "CA": "amazon.ca", "MX": "amazon.com.mx", "BR": "amazon.com.br", "UK": "amazon.co.uk",
           "JP": "amazon.co.jp", "AU": "amazon.com.au", "TR": "com.tr", "EG": "amazon.eg", "SA": "amazon.sa",
           "AE": "amazon.ae", "IN": "amazon.in", "SG": "amazon.sg", "ZA": "amazon.co.za"}
LISTING_COLUMNS = (
    "item-name", "item-description", "listing-id", "seller-sku", "price", "quantity", "open-date", "image-url",
    "item-is-marketplace", "product-id-type", "zshop-shipping-fee", "item-note", "item-condition",
    "zshop-category1", "zshop-browse-path", "zshop-storefront-feature", "asin1", "asin2", "asin3",
    "will-ship-internationally", "expedited-shipping", "zshop-boldface", "product-id", "bid-for-featured-placement",
    "add-delete", "pending-quantity", "fulfillment-channel", "merchant-shipping-group", "status",
    "Business Price", "Quantity Price Type", "Quantity Lower Bound 1", "Quantity Price 1")
ORDER_COLUMNS = (
    "amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date", "order-status",
    "fulfillment-channel", "sales-channel", "order-channel", "url", "ship-service-level", "product-name", "sku",
    "asin", "item-status", "quantity", "currency", "item-price", "item-tax", "shipping-price", "shipping-tax",
    "gift-wrap-price", "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city",
    "ship-state", "ship-postal-code", "ship-country", "promotion-ids", "is-business-order", "purchase-order-number",
    "price-designation")
_PRODUCTS = ("Bamboo Cutting Board", "Stainless Water Bottle", "Yoga Mat", "LED Desk Lamp", "Cotton Bath Towel",
             "Ceramic Coffee Mug", "Wireless Mouse", "Travel Backpack", "Garden Hose Nozzle", "Silicone Baking Mat")
_VARIANTS = ("Small", "Medium", "Large", "Blue", "Black")
_CITIES = (("SEATTLE", "WA", "98109"), ("AUSTIN", "TX", "78701"), ("DENVER", "CO", "80202"),
           ("BOSTON", "MA", "02108"), ("MIAMI", "FL", "33101"))
_ALPHANUMERIC = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass(frozen=True)
class DocumentRequest:
    """What a report's document is made from: the report's request."""

    report_type: str
    marketplace_ids: tuple[str, ...]
    start: datetime
    end: datetime
    options: dict[str, str] = field(default_factory=dict)


def document(request: DocumentRequest) -> tuple[Chunks, str]:
    """The gzip'd document (a function giving its chunks, each time anew) and its content type."""
    if request.report_type == SALES_AND_TRAFFIC:
        return (lambda: gzipped(_sales_and_traffic(request))), JSON_TYPE
    if request.report_type in ORDERS:
        return (lambda: gzipped(_orders(request))), TSV_TYPE
    if request.report_type == LISTINGS:
        return (lambda: gzipped(_listings(request))), TSV_TYPE
    return (lambda: gzipped([json.dumps({"reportSpecification": _specification(request), "records": []})])), JSON_TYPE


def error_document(reason: str) -> bytes:
    """A FATAL report's document, gzip'd."""
    return b"".join(gzipped([json.dumps({"errorDetails": reason})]))


def sales_and_traffic_range(start: date, end: date, granularity: str) -> tuple[date, date]:
    """The dates a Sales and Traffic report covers: WEEK and MONTH widen the range to whole periods."""
    if granularity == "WEEK":
        return start - timedelta(days=(start.weekday() + 1) % 7), end + timedelta(days=(5 - end.weekday()) % 7)
    if granularity == "MONTH":
        return start.replace(day=1), end.replace(day=calendar.monthrange(end.year, end.month)[1])
    return start, end


# -- the seller: catalog and daily figures -------------------------------------------------------------------------

@dataclass(frozen=True)
class Sku:
    parent_asin: str
    child_asin: str
    sku: str
    name: str
    price: float
    business_price: float | None
    fba: bool


@dataclass(frozen=True)
class Day:
    """One SKU's figures on one day."""

    browser_sessions: int
    mobile_sessions: int
    browser_views: int
    mobile_views: int
    units: int
    items: int
    units_b2b: int
    items_b2b: int
    refunded: int
    buy_box: float
    sales: float
    sales_b2b: float

    @property
    def sessions(self) -> int:
        return self.browser_sessions + self.mobile_sessions


@cache
def catalog(marketplace_id: str) -> tuple[Sku, ...]:
    """The seller's SKUs in a marketplace: 4 parents, each with 1-3 children of 1-2 SKUs."""
    rng = random.Random(_seed("catalog", marketplace_id))
    skus = []
    for parent in range(4):
        parent_asin = _asin(rng)
        product = _PRODUCTS[rng.randrange(len(_PRODUCTS))]
        for child in range(rng.randint(1, 3)):
            child_asin = _asin(rng)
            for _ in range(rng.randint(1, 2)):
                price = round(rng.uniform(8, 60), 2)
                skus.append(Sku(parent_asin, child_asin, f"{_code(rng, 2)}-{_code(rng, 4)}-{_code(rng, 4)}",
                                f"{product}, {_VARIANTS[(parent + child) % len(_VARIANTS)]}", price,
                                round(price * 0.9, 2) if rng.random() < 0.3 else None, rng.random() < 0.6))
    return tuple(skus)


def figures(marketplace_id: str, day: date) -> list[Day]:
    """Every SKU's figures on ``day``, in catalog order."""
    rng = random.Random(_seed("day", marketplace_id, day.isoformat()))
    days = []
    for sku in catalog(marketplace_id):
        browser, mobile = rng.randint(5, 120), rng.randint(2, 80)
        units = rng.randint(0, max(1, (browser + mobile) // 8))
        items = rng.randint(min(units, 1), units)
        units_b2b = rng.randint(0, units // 4)
        days.append(Day(browser, mobile, browser + rng.randint(0, browser), mobile + rng.randint(0, mobile), units,
                        items, units_b2b, min(items, units_b2b), rng.randint(0, units // 10),
                        round(rng.uniform(80, 100), 2), round(units * sku.price, 2),
                        round(units_b2b * (sku.business_price or sku.price), 2)))
    return days


# -- GET_SALES_AND_TRAFFIC_REPORT ------------------------------------------------------------------------------

def _sales_and_traffic(request: DocumentRequest) -> Iterator[str]:
    marketplace = request.marketplace_ids[0]
    currency = _currency(marketplace)
    granularity = request.options.get("dateGranularity", "DAY")
    first, last = sales_and_traffic_range(request.start.date(), request.end.date(), granularity)
    totals = [_Totals() for _ in catalog(marketplace)]
    specification = {**_specification(request), "dataStartTime": request.start.date().isoformat(),
                     "dataEndTime": request.end.date().isoformat()}
    yield f'{{"reportSpecification":{json.dumps(specification)},"salesAndTrafficByDate":['
    for index, (period_start, days) in enumerate(_periods(first, last, granularity)):
        period = _Totals()
        for day in days:
            for sku_total, figure in zip(totals, figures(marketplace, day), strict=True):
                sku_total.add(figure)
                period.add(figure)
        yield ("," if index else "") + json.dumps({"date": period_start.isoformat(),
                                                   "salesByDate": period.sales_by_date(currency),
                                                   "trafficByDate": period.traffic_by_date(len(days))})
    yield '],"salesAndTrafficByAsin":['
    for index, entry in enumerate(_by_asin(marketplace, totals, request.options.get("asinGranularity", "PARENT"),
                                           currency)):
        yield ("," if index else "") + json.dumps(entry)
    yield "]}"


def _periods(first: date, last: date, granularity: str) -> Iterator[tuple[date, list[date]]]:
    """Each period's first day and its days."""
    day = first
    while day <= last:
        if granularity == "WEEK":
            end = day + timedelta(days=6)
        elif granularity == "MONTH":
            end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        else:
            end = day
        yield day, [day + timedelta(days=n) for n in range((min(end, last) - day).days + 1)]
        day = end + timedelta(days=1)


_SUMMED = ("browser_sessions", "mobile_sessions", "browser_views", "mobile_views", "units", "items", "units_b2b",
           "items_b2b", "refunded", "buy_box", "sales", "sales_b2b")


class _Totals:
    """Figures summed over SKUs and days (``buy_box`` too: its average is over ``count``)."""

    def __init__(self) -> None:
        self.browser_sessions = self.mobile_sessions = self.browser_views = self.mobile_views = 0
        self.units = self.items = self.units_b2b = self.items_b2b = self.refunded = 0
        self.sales = self.sales_b2b = self.buy_box = 0.0
        self.count = 0

    def add(self, figures: Day | _Totals) -> None:
        """Add one SKU's day, or other totals."""
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(figures, name))
        self.count += figures.count if isinstance(figures, _Totals) else 1

    @property
    def sessions(self) -> int:
        return self.browser_sessions + self.mobile_sessions

    @property
    def views(self) -> int:
        return self.browser_views + self.mobile_views

    def sales_by_date(self, currency: str) -> dict[str, object]:
        money = _money(currency)
        return {"orderedProductSales": money(self.sales), "orderedProductSalesB2B": money(self.sales_b2b),
                "unitsOrdered": self.units, "unitsOrderedB2B": self.units_b2b,
                "totalOrderItems": self.items, "totalOrderItemsB2B": self.items_b2b,
                "averageSalesPerOrderItem": money(_ratio(self.sales, self.items)),
                "averageSalesPerOrderItemB2B": money(_ratio(self.sales_b2b, self.items_b2b)),
                "averageUnitsPerOrderItem": _ratio(self.units, self.items),
                "averageUnitsPerOrderItemB2B": _ratio(self.units_b2b, self.items_b2b),
                "averageSellingPrice": money(_ratio(self.sales, self.units)),
                "averageSellingPriceB2B": money(_ratio(self.sales_b2b, self.units_b2b)),
                "unitsRefunded": self.refunded, "refundRate": _percent(self.refunded, self.units),
                "claimsGranted": 0, "claimsAmount": money(0.0), "shippedProductSales": money(self.sales),
                "unitsShipped": self.units, "ordersShipped": self.items}

    def traffic_by_date(self, days: int) -> dict[str, object]:
        return {"browserPageViews": self.browser_views, "mobileAppPageViews": self.mobile_views,
                "pageViews": self.views, "browserSessions": self.browser_sessions,
                "mobileAppSessions": self.mobile_sessions, "sessions": self.sessions,
                "buyBoxPercentage": round(self.buy_box / max(1, self.count), 2),
                "orderItemSessionPercentage": _percent(self.items, self.sessions),
                "unitSessionPercentage": _percent(self.units, self.sessions),
                "averageOfferCount": 9 + self.count // max(1, days),
                "averageParentItems": 4, "feedbackReceived": self.items // 20,
                "negativeFeedbackReceived": self.items // 200,
                "receivedNegativeFeedbackRate": _percent(self.items // 200, self.items // 20)}


def _by_asin(marketplace: str, totals: Sequence[_Totals], granularity: str,
             currency: str) -> Iterator[dict[str, object]]:
    """The range's figures per parent ASIN, child ASIN or SKU, in catalog order."""
    groups: dict[tuple[str, ...], _Totals] = {}
    for sku, total in zip(catalog(marketplace), totals, strict=True):
        key = {"PARENT": (sku.parent_asin,), "CHILD": (sku.parent_asin, sku.child_asin)}.get(
            granularity, (sku.parent_asin, sku.child_asin, sku.sku))
        groups.setdefault(key, _Totals()).add(total)
    everything = _Totals()
    for total in groups.values():
        everything.add(total)
    money = _money(currency)
    for key, total in groups.items():
        ids = dict(zip(("parentAsin", "childAsin", "sku"), key, strict=False))
        yield {**ids,
               "salesByAsin": {"unitsOrdered": total.units, "unitsOrderedB2B": total.units_b2b,
                               "orderedProductSales": money(total.sales),
                               "orderedProductSalesB2B": money(total.sales_b2b),
                               "totalOrderItems": total.items, "totalOrderItemsB2B": total.items_b2b},
               "trafficByAsin": {
                   "browserSessions": total.browser_sessions, "mobileAppSessions": total.mobile_sessions,
                   "sessions": total.sessions,
                   "browserSessionPercentage": _percent(total.browser_sessions, everything.browser_sessions),
                   "mobileAppSessionPercentage": _percent(total.mobile_sessions, everything.mobile_sessions),
                   "sessionPercentage": _percent(total.sessions, everything.sessions),
                   "browserPageViews": total.browser_views, "mobileAppPageViews": total.mobile_views,
                   "pageViews": total.views,
                   "browserPageViewsPercentage": _percent(total.browser_views, everything.browser_views),
                   "mobileAppPageViewsPercentage": _percent(total.mobile_views, everything.mobile_views),
                   "pageViewsPercentage": _percent(total.views, everything.views),
                   "buyBoxPercentage": round(total.buy_box / max(1, total.count), 2),
                   "unitSessionPercentage": _percent(total.units, total.sessions)}}


# -- flat files ------------------------------------------------------------------------------------------------

def _orders(request: DocumentRequest) -> Iterator[str]:
    yield _tsv(ORDER_COLUMNS)
    for marketplace in request.marketplace_ids:
        day = request.start.date()
        while day <= request.end.date():
            for row in _orders_of_day(marketplace, day):
                if request.start <= row[0] <= request.end:
                    yield _tsv(row[1])
            day += timedelta(days=1)


def _orders_of_day(marketplace: str, day: date) -> Iterator[tuple[datetime, list[str]]]:
    """(purchase time, row) of each order item on ``day``: one order per item, the SKU's units spread over them."""
    rng = random.Random(_seed("orders", marketplace, day.isoformat()))
    for sku, figure in zip(catalog(marketplace), figures(marketplace, day), strict=True):
        quantities = [1 + n for n in _spread(rng, figure.units - figure.items, figure.items)]
        for index, quantity in enumerate(quantities):
            purchased = datetime.combine(day, time(), UTC) + timedelta(seconds=rng.randrange(86400))
            yield purchased, _order_row(rng, marketplace, sku, quantity, purchased, business=index < figure.items_b2b)


def _order_row(rng: random.Random, marketplace: str, sku: Sku, quantity: int, purchased: datetime,
               business: bool) -> list[str]:
    country = MARKETPLACES[marketplace][0]
    status = rng.choices(("Shipped", "Pending", "Cancelled"), (85, 10, 5))[0]
    unit_price = sku.business_price if business and sku.business_price else sku.price
    price = "" if status == "Cancelled" else f"{quantity * unit_price:.2f}"
    city, state, postal = _CITIES[rng.randrange(len(_CITIES))]
    return [
        f"{rng.randint(100, 999)}-{rng.randint(0, 9999999):07d}-{rng.randint(0, 9999999):07d}", "",
        iso(purchased), iso(purchased + timedelta(hours=rng.randint(1, 48))), status,
        "Amazon" if sku.fba else "Merchant", _sales_channel(country), "", "", rng.choice(("Standard", "Expedited")),
        sku.name, sku.sku, sku.child_asin, {"Shipped": "Shipped", "Pending": "Unshipped"}.get(status, "Cancelled"),
        "0" if status == "Cancelled" else str(quantity), _currency(marketplace), price,
        f"{float(price) * 0.08:.2f}" if price else "", "" if sku.fba or not price else "4.99", "", "", "", "", "",
        city, state, postal, "GB" if country == "UK" else country, "", "true" if business else "false",
        f"PO-{rng.randint(10000, 99999)}" if business else "",
        "BusinessPrice" if business and sku.business_price else ""]


def _listings(request: DocumentRequest) -> Iterator[str]:
    yield _tsv(LISTING_COLUMNS)
    for marketplace in request.marketplace_ids:
        rng = random.Random(_seed("listings", marketplace))
        channel = f"AMAZON_{MARKETPLACES[marketplace][1].value}"
        for sku in catalog(marketplace):
            opened = date(2020, 1, 1) + timedelta(days=rng.randrange(1500))
            yield _tsv([
                sku.name, "", f"{rng.randrange(10**10):010d}{_code(rng, 3)}", sku.sku, f"{sku.price:.2f}",
                "" if sku.fba else str(rng.randint(0, 300)), f"{opened} {rng.randint(0, 23):02d}:14:05 UTC", "", "y",
                "1", "", "", "11", "", "", "", sku.child_asin, "", "", "", "", "", sku.child_asin, "", "", "0",
                channel if sku.fba else "DEFAULT", "Migrated Template", "Active",
                f"{sku.business_price:.2f}" if sku.business_price else "", "", "", ""])


def _spread(rng: random.Random, extra: int, slots: int) -> list[int]:
    """``extra`` units spread over ``slots``."""
    counts = [0] * slots
    for _ in range(extra if slots else 0):
        counts[rng.randrange(slots)] += 1
    return counts


def _sales_channel(country: str) -> str:
    domain = DOMAINS.get(country, f"amazon.{country.lower()}")
    return domain[0].upper() + domain[1:] if domain.startswith("amazon") else f"Amazon.{domain}"


# -- helpers ---------------------------------------------------------------------------------------------------

def _specification(request: DocumentRequest) -> dict[str, object]:
    return {"reportType": request.report_type, "reportOptions": dict(request.options),
            "dataStartTime": iso(request.start), "dataEndTime": iso(request.end),
            "marketplaceIds": list(request.marketplace_ids)}


def _tsv(fields: Sequence[str]) -> str:
    return "\t".join(fields) + "\n"


def iso(when: datetime) -> str:
    """UTC, to the second, as SP-API writes times."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def _asin(rng: random.Random) -> str:
    return "B0" + _code(rng, 8)


def _code(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_ALPHANUMERIC) for _ in range(length))


def _currency(marketplace: str) -> str:
    return CURRENCIES.get(MARKETPLACES[marketplace][0], "EUR")


def _money(currency: str) -> Callable[[float], dict[str, object]]:
    return lambda amount: {"amount": round(amount, 2), "currencyCode": currency}


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 2) if whole else 0.0


def _percent(part: float, whole: float) -> float:
    return min(100.0, round(100 * part / whole, 2)) if whole else 0.0
