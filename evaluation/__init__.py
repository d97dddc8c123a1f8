"""Offline evaluation of routers on labelled data, as RouteLLM (arXiv 2406.18665) measures them.

- `dataset`: a labelled data set as plain data (per prompt: text, each model's quality, costs).
- `routellm`: loaders for RouteLLM's GSM8K, MMLU and MT-Bench files and for a user's own JSONL.
- `metrics`: the cost-quality curve, PGR, APGR, CPT and their bootstrap intervals.
- `references`: the reference routers (random, prompt length, oracle) as strong-score functions.

Nothing here touches the served router: a router enters as an array of strong-scores, one per
prompt, so any strategy (or a logged `signals` column) can be scored the same way.
"""
