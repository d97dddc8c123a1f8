"""Every attribute, span, event and metric name fareway emits, in one place.

The GenAI names come from the incubating semantic-conventions package (the only place they are
published); fareway's own live under `fareway.`.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes, server_attributes

# GenAI semantic conventions (attempt spans and GenAI metrics).
GEN_AI_OPERATION_NAME = gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME = gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_REQUEST_MODEL = gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_REQUEST_MAX_TOKENS = gen_ai.GEN_AI_REQUEST_MAX_TOKENS
GEN_AI_RESPONSE_MODEL = gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_RESPONSE_ID = gen_ai.GEN_AI_RESPONSE_ID
GEN_AI_RESPONSE_FINISH_REASONS = gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_USAGE_INPUT_TOKENS = gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS = gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_TOKEN_TYPE = gen_ai.GEN_AI_TOKEN_TYPE
GEN_AI_INPUT_MESSAGES = gen_ai.GEN_AI_INPUT_MESSAGES
GEN_AI_OUTPUT_MESSAGES = gen_ai.GEN_AI_OUTPUT_MESSAGES
ERROR_TYPE = error_attributes.ERROR_TYPE
SERVER_ADDRESS = server_attributes.SERVER_ADDRESS
OPERATION_CHAT = "chat"

METRIC_TOKEN_USAGE = gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
METRIC_OPERATION_DURATION = gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
METRIC_TIME_TO_FIRST_CHUNK = gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK

# RPC conventions for the server span.
RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"

# fareway's own.
ROUTE_SPAN = "route"
TENANT = "fareway.tenant"
REQUEST_ID = "fareway.request_id"
STRATEGY = "fareway.strategy"
MODEL = "fareway.model"
PROVIDER = (
    "fareway.provider"  # the configuration's provider entry (gen_ai.provider.name is its kind)
)
TIER = "fareway.tier"
REASON = "fareway.reason"
CANDIDATES = "fareway.candidates"  # one "model tier score" or "model tier excluded: why" each
ESTIMATED_COST = "fareway.estimated_cost_micros"
BUDGET_REMAINING = "fareway.budget_remaining_micros"
LATENCY_TARGET = "fareway.latency_target_ms"
STEP_TYPE = "fareway.step_type"  # an agent step's type (hints.step_type), when the caller gave one
SIGNAL_PREFIX = "fareway.signal."
AMOUNT = "fareway.amount_micros"
FROM_MODEL = "fareway.from_model"
TO_MODEL = "fareway.to_model"
CONFIDENCE = "fareway.confidence"
AFTER_MS = "fareway.hedge.after_ms"  # when the hedge started, after the first attempt did
WINNER = "fareway.hedge.winner"
ERROR = "fareway.error"
CIRCUIT_FROM = "fareway.circuit.from"  # a circuit breaker state: closed, open, half_open
CIRCUIT_TO = "fareway.circuit.to"
CIRCUIT_OPEN_UNTIL = "fareway.circuit.open_until"  # ISO-8601 UTC, when it opened

EVENT_FALLBACK = "fareway.fallback"
EVENT_ESCALATION = "fareway.escalation"
EVENT_HEDGE = "fareway.hedge"
EVENT_BUDGET_HOLD = "fareway.budget.hold"
EVENT_BUDGET_SETTLE = "fareway.budget.settle"
EVENT_CIRCUIT = "fareway.circuit"  # a model's circuit breaker changed state

METRIC_COST = "fareway.cost"
METRIC_DECISIONS = "fareway.decisions"
METRIC_ESCALATIONS = "fareway.escalations"
METRIC_FALLBACKS = "fareway.fallbacks"
METRIC_HEDGES = "fareway.hedges"
METRIC_CIRCUIT_TRANSITIONS = "fareway.circuit.transitions"
METRIC_BUDGET_UTILIZATION = "fareway.budget.utilization"
