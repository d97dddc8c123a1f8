// A Node.js caller of fareway: it loads the repository's .proto files at run time (no generated
// code), streams a routed answer, reads the tenant's budget, and handles a budget refusal by
// decoding the google.rpc.Status in the call's trailers.
//
//   make run                                # in one shell: the embedded default on 127.0.0.1:50051
//   cd examples/node && npm ci && node main.js   # in another
//
// Options: --target HOST:PORT, --api-key KEY (default $FAREWAY_API_KEY or the demo key),
// --prompt TEXT, --max-tokens N, --requests N (send the prompt N times, stopping at the first
// RESOURCE_EXHAUSTED: with a tenant whose cap affords fewer, the refusal shows its RetryInfo).
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

// protos/ is the one include path: fareway/v1 for the API, google/rpc for the error details.
const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
const DEADLINE_MS = 30_000;

const { values: options } = parseArgs({
  options: {
    target: { type: 'string', default: '127.0.0.1:50051' },
    'api-key': { type: 'string', default: process.env.FAREWAY_API_KEY || 'fareway-demo-key' },
    prompt: { type: 'string', default: 'Classify this ticket: my invoice is wrong.' },
    'max-tokens': { type: 'string', default: '64' },
    requests: { type: 'string', default: '1' },
  },
});

// The API's services. keepCase keeps the proto's field names (max_tokens, not maxTokens);
// longs as strings, since micro-USD amounts are int64; enums as their names; `oneofs` sets
// event.event to the name of the GenerateEvent member that is present.
const api = grpc.loadPackageDefinition(
  protoLoader.loadSync(['fareway/v1/router.proto', 'fareway/v1/budget.proto'], {
    includeDirs: [PROTOS],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  }),
).fareway.v1;

// google.rpc.Status and its details (QuotaFailure, RetryInfo, BadRequest, ErrorInfo, ...),
// read with protobufjs (what proto-loader is built on) from the shipped google/rpc protos.
// The well-known types they import (google/protobuf/any.proto and
// google/protobuf/duration.proto) are built into protobufjs.
const rpc = new protobuf.Root();
rpc.resolvePath = (origin, target) =>
  target.startsWith('google/protobuf/') ? target : path.join(PROTOS, target);
rpc.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
const Status = rpc.lookupType('google.rpc.Status');

const credentials = grpc.credentials.createInsecure();
const router = new api.RouterService(options.target, credentials);
const budgets = new api.BudgetService(options.target, credentials);

// Every call carries the API key as `authorization: Bearer <key>` metadata.
function metadata() {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${options['api-key']}`);
  return md;
}

function callOptions() {
  return { deadline: Date.now() + DEADLINE_MS };
}

// Streams one answer, printing the decision, the text and the totals. Resolves when the
// stream ends well; rejects with the gRPC error (code, details, trailers) otherwise.
function generate(label, request) {
  return new Promise((resolve, reject) => {
    const call = router.Generate(request, metadata(), callOptions());
    let text = '';
    call.on('data', (event) => {
      const body = event[event.event];
      switch (event.event) {
        case 'decision':
          console.log(
            `${label}: decision model=${body.model} provider=${body.provider} tier=${body.tier}` +
              ` strategy=${body.strategy} estimated_cost_micros=${body.estimated_cost_micros}` +
              ` | ${body.reason}`,
          );
          break;
        case 'delta':
          text += body.text;
          break;
        case 'escalation':
          // A cascade moved to a stronger model: drop what the abandoned answer sent.
          if (body.discard_previous) text = '';
          console.log(`${label}: escalation ${body.from_model} -> ${body.to_model}`);
          break;
        case 'fallback':
          console.log(`${label}: fallback ${body.from_model} -> ${body.to_model}: ${body.error}`);
          break;
        case 'done':
          console.log(`${label}: text: ${text.replace(/\s+/g, ' ').trim()}`);
          console.log(
            `${label}: done stop_reason=${body.stop_reason}` +
              ` cost_micros=${body.total.cost_micros} ttft_ms=${body.ttft_ms}`,
          );
          break;
        default: // usage, hedge, tool_call: not needed here
      }
    });
    call.on('error', reject);
    call.on('end', resolve);
  });
}

// The details of a failed call: the google.rpc.Status that the server put, serialized, in the
// `grpc-status-details-bin` trailer, each detail (a google.protobuf.Any) decoded by its type.
function statusDetails(error) {
  const [raw] = error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
  if (!raw) return [];
  return Status.decode(raw).details.map((any) => {
    const type = rpc.lookupType(any.type_url.slice(any.type_url.lastIndexOf('/') + 1));
    return { type: type.name, detail: type.toObject(type.decode(any.value), { longs: Number }) };
  });
}

// RESOURCE_EXHAUSTED: a budget cap (subject tenant:<name>), a rate limit, the per-request cost
// ceiling or a busy server (server:max_streams). RetryInfo says how long to wait: until the
// budget window resets, or well under a second for a busy server.
function printRefusal(label, error) {
  console.log(`${label}: RESOURCE_EXHAUSTED: ${error.details}`);
  for (const { type, detail } of statusDetails(error)) {
    if (type === 'QuotaFailure') {
      for (const v of detail.violations) {
        console.log(`${label}: quota violation ${v.subject}: ${v.description}`);
      }
    } else if (type === 'RetryInfo') {
      const delay = detail.retry_delay || {};
      const seconds = (delay.seconds || 0) + (delay.nanos || 0) / 1e9;
      console.log(`${label}: retry in ${seconds.toFixed(3)} s`);
    }
  }
}

// The caller's own budget (an empty tenant): each limit with the current window's figures.
function printBudget() {
  return new Promise((resolve, reject) => {
    budgets.GetBudget({ tenant: '' }, metadata(), callOptions(), (error, budget) => {
      if (error) return reject(error);
      console.log(
        `budget ${budget.tenant}: latency_target_ms=${budget.latency_target_ms}` +
          ` latency_attainment=${budget.latency_attainment}`,
      );
      for (const limit of budget.limits) {
        const resets = limit.resets_at
          ? new Date(Number(limit.resets_at.seconds) * 1000).toISOString()
          : 'never';
        console.log(
          `budget ${budget.tenant}: ${limit.window} cap_micros=${limit.cap_micros}` +
            ` spent_micros=${limit.spent_micros} reserved_micros=${limit.reserved_micros}` +
            ` resets_at=${resets}`,
        );
      }
      resolve();
    });
  });
}

async function main() {
  const request = {
    messages: [{ role: 'ROLE_USER', content: options.prompt }],
    max_tokens: Number(options['max-tokens']),
  };
  for (let i = 1; i <= Number(options.requests); i++) {
    try {
      await generate(`request ${i}`, request);
    } catch (error) {
      if (error.code !== grpc.status.RESOURCE_EXHAUSTED) throw error;
      printRefusal(`request ${i}`, error);
      break; // a real caller would wait the retry delay, or go elsewhere
    }
  }
  await printBudget();
}

main()
  .catch((error) => {
    // Any other failure: its code's name and the server's one-line message.
    const code = error.code === undefined ? '' : `${grpc.status[error.code]}: `;
    console.error(`error: ${code}${error.details || error.message}`);
    process.exitCode = 1;
  })
  .finally(() => {
    router.close();
    budgets.close();
  });
