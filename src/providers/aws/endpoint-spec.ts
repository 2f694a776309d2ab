/**
 * `deployments.<env>.<image>.endpoint` on AWS (loaded by `validate`: no SDK, no network):
 *   {target-group: ARN}  an ELBv2 target group (yours, behind your load balancer's listener)
 *   {elastic-ip: true}   one server's Elastic IP, allocated by the first deploy
 */
import { z } from 'zod';

export const awsEndpointSchema = z.union([
  z.strictObject({
    'target-group': z
      .string()
      .regex(/^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup\/[A-Za-z0-9-]{1,32}\/[0-9a-f]{16}$/, 'an ELBv2 target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)')
      .describe('Instances are registered in (and deregistered from) this target group.'),
  }),
  z.strictObject({
    'elastic-ip': z.literal(true).describe('An Elastic IP associated with the (one) healthy server.'),
  }),
]);

export type AwsEndpoint = z.output<typeof awsEndpointSchema>;

/** The kind (as EndpointStatus.kind) and whether it is one server's address. */
export function describeAwsEndpoint(spec: unknown): { kind: string; oneServer: boolean } {
  return 'target-group' in awsEndpointSchema.parse(spec) ? { kind: 'target-group', oneServer: false } : { kind: 'elastic-ip', oneServer: true };
}
