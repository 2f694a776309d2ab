/** Settings of the aws provider (the `provider:` block). Loaded by `validate`: no SDK, no network. */
import { z } from 'zod';
import { ignored, launchOptions } from '../kit/options.js';

export const awsSettingsSchema = z.strictObject({
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region such as us-east-1')
    .optional()
    .describe('Region for builders, images and servers (default: AWS_REGION or AWS_DEFAULT_REGION).'),
  profile: z.string().optional().describe('A profile of ~/.aws/config (default: AWS_PROFILE, then the default chain).'),
  endpoint: z.url().optional().describe('EC2 endpoint URL override (tests point it at the emulator; also AWS_ENDPOINT_URL_EC2).'),
  'elbv2-endpoint': z.url().optional().describe('Elastic Load Balancing v2 endpoint URL override (default: AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2, else the EC2 endpoint override).'),
  'instance-type': z.string().default('t3.micro').describe('Instance type for builders and servers (images and deployments may override with size:).'),
  'ssh-user': z.string().default('admin').describe('SSH user of the base image (admin on Debian AMIs); scripts still run as root, through sudo.'),
  'ssh-address': z.enum(['public', 'private']).default('public').describe('Which address of an instance to reach over SSH.'),
  'subnet-id': z.string().optional().describe('Subnet for builders and servers (default: the default VPC).'),
  'security-group-ids': z.array(z.string()).optional().describe('Security groups to use instead of a temporary one that lets SSH in.'),
  'create-timeout': z.number().int().positive().default(600).describe('Seconds an instance may take to run with an address.'),
  'ssh-cidr': z.string().default('0.0.0.0/0').describe('Who the temporary security group lets in on port 22.'),
});

export type AwsSettings = z.output<typeof awsSettingsSchema>;

/** An AMI id, or OWNER/NAME-PATTERN resolved to the newest match (e.g. 136693071363/debian-12-amd64-*). */
export function parseBaseRef(ref: string): { amiId: string } | { owner: string; pattern: string } | undefined {
  if (/^ami-[0-9a-f]{8,17}$/.test(ref)) return { amiId: ref };
  const m = /^(\d{12}|amazon|self|aws-marketplace)\/(.+)$/.exec(ref);
  return m ? { owner: m[1]!, pattern: m[2]! } : undefined;
}

export function checkBaseRef(ref: string): string | undefined {
  return parseBaseRef(ref)
    ? undefined
    : `"${ref}" is not an AMI id (ami-...) nor OWNER/NAME-PATTERN (e.g. 136693071363/debian-12-amd64-*)`;
}

/** Launch options: an instance type as `size`; `region` only if it is the provider's own (checked at launch). */
export const awsLaunchOptionsSchema = launchOptions({ size: z.string().min(1).optional(), region: z.string().optional(), ports: ignored, memory: ignored, cpus: ignored });
