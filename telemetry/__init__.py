"""OpenTelemetry for fareway: setup from OTEL_* variables, attribute names, span and metric helpers.

Everything that names an attribute, a span or a metric lives here, so the rest of fareway calls
domain helpers (`Tracing.route_span`, `Tracing.attempt_span`, `Metrics.record_attempt`, ...)
and never spells an OpenTelemetry name itself.
"""
