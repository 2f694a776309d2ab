/**
 * `deployments.<env>.<image>.endpoint` on DigitalOcean (loaded by `validate`: no network):
 *   {load-balancer: {port: 80, target-port: 80}}  a load balancer named after project, env and image
 *   {reserved-ip: true}                           one server's reserved IP
 */
import { z } from 'zod';

const port = z.number().int().min(1).max(65535);

export const digitalOceanEndpointSchema = z.union([
  z.strictObject({
    'load-balancer': z.strictObject({
      port: port.default(80).describe('Port the load balancer listens on (HTTP).'),
      'target-port': port.default(80).describe('Port of the droplets it forwards to.'),
    }),
  }),
  z.strictObject({
    'reserved-ip': z.literal(true).describe('A reserved IP assigned to the (one) healthy server.'),
  }),
]);

export type DigitalOceanEndpoint = z.output<typeof digitalOceanEndpointSchema>;

/** The kind (as EndpointStatus.kind) and whether it is one server's address. */
export function describeDigitalOceanEndpoint(spec: unknown): { kind: string; oneServer: boolean } {
  const parsed = digitalOceanEndpointSchema.parse(spec);
  return 'load-balancer' in parsed ? { kind: 'load-balancer', oneServer: false } : { kind: 'reserved-ip', oneServer: true };
}
