"""`report ID`: report.html and report.md from a session's client results and its Prometheus.

Modules: session (which session, where its files are), results (summary.json, sweeps, key
metrics), records (per-interval client series), distributions (HdrHistograms), prometheus
(live or snapshot queries, service panels), plots (matplotlib), document (the content model),
html and markdown (its two renderings), build (write_report), command (the subcommand).
"""
