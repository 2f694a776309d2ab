/**
 * An image's endpoint in one environment, as deploy sees it: the provider's Endpoints with the
 * image's parsed `endpoint:` block. The checks made before a deploy creates anything (a local
 * port another program holds) are here too, so every command refuses the same way.
 */
import type { DeploymentImageConfig } from '../config/schema.js';
import type { EndpointRef, Endpoints, EndpointStatus, HttpHealthCheck, Machine, Provider } from '../providers/types.js';

export const DEFAULT_DRAIN_S = 10;

export interface ImageEndpoint {
  ref: EndpointRef;
  spec: unknown;
  endpoints: Endpoints;
  health?: HttpHealthCheck;
}

/** The endpoint of `image` in `environment`, or undefined when it has none. */
export function imageEndpoint(provider: Provider, project: string, environment: string, image: string, config: DeploymentImageConfig): ImageEndpoint | undefined {
  if (config.endpoint === undefined) return undefined;
  if (!provider.endpoints) throw new Error(`the ${provider.name} provider has no endpoints, but the config validated one`);
  return { ref: { project, environment, image }, spec: config.endpoint, endpoints: provider.endpoints, health: config['health-check']?.http };
}

/** Problems with each image's endpoint that only the provider can see, by image: asked before anything is created. */
export async function endpointProblems(
  provider: Provider,
  project: string,
  environment: string,
  deployment: Record<string, DeploymentImageConfig>,
  signal: AbortSignal,
): Promise<{ image: string; message: string }[]> {
  const problems: { image: string; message: string }[] = [];
  for (const [image, config] of Object.entries(deployment)) {
    const endpoint = imageEndpoint(provider, project, environment, image, config);
    const message = endpoint && (await endpoint.endpoints.check?.(endpoint.ref, endpoint.spec, signal));
    if (message) problems.push({ image, message });
  }
  return problems;
}

export function ensure(endpoint: ImageEndpoint, signal: AbortSignal): Promise<EndpointStatus> {
  return endpoint.endpoints.ensure(endpoint.ref, endpoint.spec, signal, { health: endpoint.health });
}

export function attach(endpoint: ImageEndpoint, machines: Machine[], signal: AbortSignal): Promise<void> {
  return machines.length ? endpoint.endpoints.attach(endpoint.ref, endpoint.spec, machines, signal) : Promise.resolve();
}

export function detach(endpoint: ImageEndpoint, machines: Pick<Machine, 'id' | 'name'>[], drainMs: number, signal: AbortSignal): Promise<void> {
  return machines.length ? endpoint.endpoints.detach(endpoint.ref, endpoint.spec, machines, drainMs, signal) : Promise.resolve();
}
