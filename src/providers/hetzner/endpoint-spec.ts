/**
 * `deployments.<env>.<image>.endpoint` on Hetzner Cloud (loaded by `validate`: no network):
 *   {load-balancer: {port: 80, target-port: 80}}  a load balancer named after project, env and image,
 *                                                 in the provider's location
 *   {floating-ip: true}                           one server's Floating IP
 */
import { z } from 'zod';

const port = z.number().int().min(1).max(65535);

export const hetznerEndpointSchema = z.union([
  z.strictObject({
    'load-balancer': z.strictObject({
      port: port.default(80).describe('Port the load balancer listens on (HTTP).'),
      'target-port': port.default(80).describe('Port of the servers it forwards to.'),
      type: z.string().regex(/^lb\d+$/, 'a load balancer type such as lb11').default('lb11').describe('Load balancer type (lb11, lb21, lb31).'),
    }),
  }),
  z.strictObject({
    'floating-ip': z.literal(true).describe('A Floating IP assigned to the (one) healthy server; the image configures the address on its interface.'),
  }),
]);

export type HetznerEndpoint = z.output<typeof hetznerEndpointSchema>;

/** The kind (as EndpointStatus.kind) and whether it is one server's address. */
export function describeHetznerEndpoint(spec: unknown): { kind: string; oneServer: boolean } {
  return 'load-balancer' in hetznerEndpointSchema.parse(spec) ? { kind: 'load-balancer', oneServer: false } : { kind: 'floating-ip', oneServer: true };
}
