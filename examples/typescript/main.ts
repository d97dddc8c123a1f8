// A statically typed caller of fareway: the request and reply types are generated from the
// repository's protos (`npm run generate`: proto-loader-gen-types into gen/), and tsc checks
// every field this program reads or sends against them (`npm run build`). It lists the catalog
// (ListModels) and asks where a prompt would go without calling a model (Route, a dry run).
//
//   make run                                                  # in one shell
//   cd examples/typescript && npm ci && npm run build && node dist/main.js [--target HOST:PORT]
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './gen/router';
import type { GenerateRequest } from './gen/fareway/v1/GenerateRequest';
import type { RouteDecision__Output } from './gen/fareway/v1/RouteDecision';
import type { ListModelsResponse__Output } from './gen/fareway/v1/ListModelsResponse';

// The same loader options as `npm run generate` passes, so the values match the types.
const LOADER_OPTIONS: protoLoader.Options = {
  includeDirs: [path.resolve(__dirname, '..', '..', '..', 'protos')],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

const { values: options } = parseArgs({
  options: {
    target: { type: 'string', default: '127.0.0.1:50051' },
    'api-key': { type: 'string', default: process.env.FAREWAY_API_KEY || 'fareway-demo-key' },
    prompt: { type: 'string', default: 'Prove that there are infinitely many primes.' },
  },
});

const api = grpc.loadPackageDefinition(
  protoLoader.loadSync(['fareway/v1/router.proto'], LOADER_OPTIONS),
) as unknown as ProtoGrpcType;
const router = new api.fareway.v1.RouterService(
  options.target ?? '127.0.0.1:50051',
  grpc.credentials.createInsecure(),
);

function metadata(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${options['api-key']}`);
  return md;
}

const deadline = () => ({ deadline: Date.now() + 30_000 });

function listModels(): Promise<ListModelsResponse__Output> {
  return new Promise((resolve, reject) =>
    router.ListModels({}, metadata(), deadline(), (error, reply) =>
      error || !reply ? reject(error) : resolve(reply),
    ),
  );
}

function route(request: GenerateRequest): Promise<RouteDecision__Output> {
  return new Promise((resolve, reject) =>
    router.Route(request, metadata(), deadline(), (error, reply) =>
      error || !reply ? reject(error) : resolve(reply),
    ),
  );
}

async function main(): Promise<void> {
  for (const model of (await listModels()).models) {
    // int64 prices arrive as strings (longs: String): the generated type says so.
    const prices = `${model.input_price_micros_per_mtok}/${model.output_price_micros_per_mtok}`;
    console.log(`model ${model.id} tier=${model.tier} provider=${model.provider} prices=${prices}`);
  }
  const decision = await route({
    messages: [{ role: 'ROLE_USER', content: options.prompt }],
    max_tokens: 256,
  });
  console.log(
    `route model=${decision.model} tier=${decision.tier} strategy=${decision.strategy}` +
      ` estimated_cost_micros=${decision.estimated_cost_micros} | ${decision.reason}`,
  );
}

main()
  .catch((error: grpc.ServiceError) => {
    console.error(`error: ${grpc.status[error.code] ?? ''} ${error.details ?? error.message}`);
    process.exitCode = 1;
  })
  .finally(() => router.close());
