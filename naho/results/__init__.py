"""Laboratory results: ORU^R01 from the laboratory system over MLLP, the cumulative table and
trends of the chart, critical value alerts and their escalation.

Other domains read the chart's creatinine through `record.chart.latest_lab_result`, which the
results filed here feed; `results.service` is the public surface.
"""
