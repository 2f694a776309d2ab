/**
 * `deployments.<env>.<image>.endpoint`: checked against the provider's endpointSchema (its kinds
 * and their settings), and one-server kinds (a reserved or Elastic IP) refused on an image with
 * more than one server. The parsed value replaces the raw one, as launch options are parsed.
 */
import type { ConfigProblem } from '../core/errors.js';
import type { ProviderDefinition } from '../providers/types.js';
import type { DeploymentImageConfig } from './schema.js';
import { zodProblems } from './zod-problems.js';

type Problem = (path: PropertyKey[], message: string) => ConfigProblem;

export function checkEndpoints(
  deployments: Record<string, Record<string, DeploymentImageConfig>>,
  definition: ProviderDefinition<unknown>,
  problem: Problem,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [env, images] of Object.entries(deployments)) {
    for (const [image, wanted] of Object.entries(images)) {
      if (wanted.endpoint === undefined) continue;
      const at = ['deployments', env, image, 'endpoint'];
      if (!definition.endpointSchema) {
        problems.push(problem(at, `the ${definition.name} provider has no endpoints; remove endpoint: (or use ports: where the provider has them)`));
        continue;
      }
      const parsed = definition.endpointSchema.safeParse(wanted.endpoint, { reportInput: true });
      const unknownKind = parsed.success ? undefined : kindProblem(definition, wanted.endpoint);
      if (unknownKind) {
        problems.push(problem(at, unknownKind));
        continue;
      }
      if (!parsed.success) {
        problems.push(
          ...zodProblems(definition.endpointSchema, parsed.error.issues, (path, message) => problem([...at, ...path], `${message} (an endpoint of the ${definition.name} provider)`)),
        );
        continue;
      }
      wanted.endpoint = parsed.data;
      const kind = definition.describeEndpoint?.(parsed.data);
      if (kind?.oneServer && wanted.servers > 1) {
        problems.push(problem(at, `a ${kind.kind} is one address for one server, and ${image} has ${wanted.servers} servers here; use a load balancer, or servers: 1`));
      }
    }
  }
  return problems;
}

/**
 * A provider whose endpoint is one of several kinds (a union of one-key objects: `{load-balancer:
 * ...}`, `{floating-ip: true}`) and a value naming none of them: say which kinds there are, rather
 * than the union's bare "Invalid input".
 */
function kindProblem(definition: ProviderDefinition<unknown>, value: unknown): string | undefined {
  const options = (definition.endpointSchema as unknown as { options?: { shape?: Record<string, unknown> }[] }).options;
  if (!options || typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const kinds = options.flatMap((o) => Object.keys(o.shape ?? {}));
  const given = Object.keys(value);
  if (given.some((k) => kinds.includes(k))) return undefined;
  return `${given.length ? `no endpoint kind ${given.map((k) => `"${k}"`).join(', ')}` : 'no endpoint kind given'} on the ${definition.name} provider; it has: ${kinds.join(', ')}`;
}
