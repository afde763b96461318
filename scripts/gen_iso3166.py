#!/usr/bin/env python3
"""Writes data/grid/iso3166.csv: the ISO 3166-1 alpha-2 code, alpha-3 code and ISO short name of
every country in data/grid/country_intensity.csv, so `--zone FR` and `--zone FRA` find the same
row. Codes and names are ISO 3166-1's, as shipped by Debian's iso-codes package
(/usr/share/iso-codes/json/iso_3166-1.json; `apt-get install iso-codes`).

Run from the repository root after replacing country_intensity.csv:
    python3 scripts/gen_iso3166.py [path/to/iso_3166-1.json]
It fails, writing nothing, if a country of the intensity table has no ISO 3166-1 entry.
"""
import csv
import json
import sys

ISO_JSON = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/iso-codes/json/iso_3166-1.json"
INTENSITY = "data/grid/country_intensity.csv"
OUT = "data/grid/iso3166.csv"

with open(ISO_JSON, encoding="utf-8") as f:
    by_alpha3 = {c["alpha_3"]: c for c in json.load(f)["3166-1"]}

with open(INTENSITY, newline="", encoding="utf-8") as f:
    wanted = [row["iso3"] for row in csv.DictReader(f)]

missing = [a3 for a3 in wanted if a3 not in by_alpha3]
if missing:
    sys.exit(f"no ISO 3166-1 entry for: {', '.join(missing)}")

with open(OUT, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["alpha2", "alpha3", "iso_name"])
    for a3 in sorted(wanted):
        c = by_alpha3[a3]
        w.writerow([c["alpha_2"], a3, c["name"]])
print(f"{OUT}: {len(wanted)} countries")
