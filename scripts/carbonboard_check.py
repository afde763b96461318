#!/usr/bin/env python3
"""Reads an emissions.csv the way CodeCarbon's carbonboard does and builds every one of its views.

Usage: carbonboard_check.py EMISSIONS.csv [PROJECT]

carbonboard (codecarbon/viz/carbonboard.py, CodeCarbon 3.3.2) loads the file with
`pd.read_csv` and fills its dashboard through nine Dash callbacks. This script makes the same
calls, in the same order, on the same `Data` and `Components` objects, without starting a web
server: if a column is missing, empty where a view needs it, or of the wrong type, the view
fails here as it would in the browser. Prints one line per view and exits 1 on the first
failure. Needs `pip install "codecarbon[carbonboard]==3.3.2"`.
"""

import os
import sys

import codecarbon
import pandas as pd
from codecarbon.viz.components import Components
from codecarbon.viz.data import Data


def main() -> int:
    path = os.path.abspath(sys.argv[1])
    # carbonboard's Canadian map opens `codecarbon/data/canada_provinces.geojson` relative to
    # the working directory: it works only from the package's parent directory.
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(codecarbon.__file__))))
    df = pd.read_csv(path)
    project = sys.argv[2] if len(sys.argv) > 2 else df["project_name"].iloc[-1]
    data, components = Data(), Components()
    views = []

    def view(name, fn):
        try:
            fn()
        except Exception as e:  # the view is broken: say which and why
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            raise SystemExit(1)
        print(f"ok   {name}")
        views.append(name)

    state = {}

    def project_data():
        # update_project_data
        pd_table = data.get_project_data(df, project)
        summary = data.get_project_summary(pd_table.data)
        f"{sum(df['energy_consumed']):.1f} kWh {sum(df['emissions']):.1f} kg"
        f"{summary['region']}, {summary['country_name']}"
        round(summary["total"]["energy_consumed"], 1)
        round(summary["total"]["emissions"], 1)
        f"{summary['last_run']['energy_consumed']} {summary['last_run']['emissions']}"
        state["table"], state["summary"] = pd_table, summary

    def equivalents():
        # update_exemplary_equivalents
        kg = state["summary"]["total"]["emissions"]
        data.get_car_miles(kg)
        data.get_tv_time(kg)
        data.get_household_fraction(kg)

    def global_comparisons():
        # update_global_comparisons, for each energy type the dropdown offers
        kwh = state["summary"]["total"]["energy_consumed"]
        d = data.get_global_emissions_choropleth_data(kwh)
        components.get_global_emissions_choropleth_figure(d)
        for energy_type in ["fossil", "hydroelectricity", "nuclear", "solar", "wind"]:
            components.get_global_energy_mix_choropleth_figure(energy_type, d)

    def show_regional():
        # update_show_regional_comparison
        state["summary"]["country_iso_code"].upper()

    def regional():
        # update_regional_comparison_choropleth
        s = state["summary"]
        d = data.get_regional_emissions_choropleth_data(
            s["total"]["energy_consumed"], s["country_iso_code"]
        )
        components.get_regional_emissions_choropleth_figure(d, s["country_iso_code"])

    def time_series():
        # update_project_time_series
        components.get_project_time_series_figure(state["table"].data)

    def bar_chart():
        # update_project_bar_chart
        components.get_project_emissions_bar_chart_figure(state["table"].data)

    def on_cloud():
        # update_on_cloud
        state["summary"]["on_cloud"] == "Y"

    def cloud_barchart():
        # update_cloud_emissions_barchart
        s = state["summary"]
        name, d = data.get_cloud_emissions_barchart_data(
            s["total"]["energy_consumed"],
            s["on_cloud"],
            s["cloud_provider"],
            s["cloud_region"],
        )
        components.get_cloud_emissions_barchart_figure(d)
        components.get_cloud_recommendation(s["on_cloud"], name, d)

    view("project data and summary", project_data)
    view("exemplary equivalents", equivalents)
    view("global comparisons", global_comparisons)
    view("show regional comparison", show_regional)
    view("regional comparison", regional)
    view("project time series", time_series)
    view("project bar chart", bar_chart)
    view("on cloud", on_cloud)
    view("cloud emissions bar chart", cloud_barchart)
    print(f"{len(views)} views built from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
