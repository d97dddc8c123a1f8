"""The data that ships for `fareway eval`: RouteLLM's labels (`routellm.jsonl.xz`, read by
`fareway.evaluation.bundled`) and their attribution and license (`NOTICE`). A package, not a
plain folder, so that setuptools installs it as package data without a warning."""
