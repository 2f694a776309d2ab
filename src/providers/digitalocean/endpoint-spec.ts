/**
 * `deployments.<env>.<image>.endpoint` on DigitalOcean (loaded by `validate`: no network):
 *   {load-balancer: {port: 80, target-port: 80}}  a load balancer named after project, env and image
 *   {reserved-ip: true}                           one server's reserved IP
 * `health-check` is the image's HTTP health check, which deploy passes along (kit/endpoints.ts).
 */
import { z } from 'zod';
import { httpHealthCheckSchema } from '../kit/endpoints.js';

const port = z.number().int().min(1).max(65535);

export const digitalOceanEndpointSchema = z.union([
  z.strictObject({
    'load-balancer': z.strictObject({
      port: port.default(80).describe('Port the load balancer listens on (HTTP).'),
      'target-port': port.default(80).describe('Port of the droplets it forwards to.'),
    }),
    'health-check': httpHealthCheckSchema.optional(),
  }),
  z.strictObject({
    'reserved-ip': z.literal(true).describe('A reserved IP assigned to the (one) healthy server.'),
    'health-check': httpHealthCheckSchema.optional(),
  }),
]);

export type DigitalOceanEndpoint = z.output<typeof digitalOceanEndpointSchema>;
