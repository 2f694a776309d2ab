/**
 * The parts of DigitalOcean's API objects this provider reads (see the OpenAPI description),
 * as schemas: every answer is checked at the boundary, so a malformed one is a clear error, not a
 * TypeError deep inside. Unknown fields pass through.
 */
import { z } from 'zod';

export const dropletSchema = z.looseObject({
  id: z.number(),
  name: z.string(),
  status: z.enum(['new', 'active', 'off', 'archive']),
  locked: z.boolean().optional(),
  tags: z.array(z.string()).optional(),
  networks: z
    .looseObject({ v4: z.array(z.looseObject({ ip_address: z.string(), type: z.string() })).optional() })
    .optional(),
  created_at: z.string().optional(),
});
export type Droplet = z.output<typeof dropletSchema>;

export const imageSchema = z.looseObject({
  id: z.union([z.number(), z.string()]),
  name: z.string(),
  type: z.string().optional(),
  distribution: z.string().optional(),
  slug: z.string().nullable().optional(),
  public: z.boolean().optional(),
  regions: z.array(z.string()).optional(),
  created_at: z.string().optional(),
  min_disk_size: z.number().nullable().optional(),
  size_gigabytes: z.number().nullable().optional(),
  description: z.string().nullable().optional(),
  status: z.string().optional(),
  tags: z.array(z.string()).nullable().optional(),
});
export type Image = z.output<typeof imageSchema>;

export const actionSchema = z.looseObject({
  id: z.number(),
  status: z.enum(['in-progress', 'completed', 'errored']),
  type: z.string(),
  resource_id: z.number().nullable().optional(),
});
export type Action = z.output<typeof actionSchema>;

export const sshKeySchema = z.looseObject({
  id: z.number(),
  fingerprint: z.string(),
  public_key: z.string(),
  name: z.string(),
});
export type SshKey = z.output<typeof sshKeySchema>;

export const loadBalancerSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  ip: z.string().optional(),
  status: z.enum(['new', 'active', 'errored']),
  forwarding_rules: z.array(z.looseObject({ entry_protocol: z.string(), entry_port: z.number(), target_protocol: z.string(), target_port: z.number() })),
  health_check: z.looseObject({ protocol: z.string(), port: z.number(), path: z.string().optional() }).optional(),
  droplet_ids: z.array(z.number()).optional(),
  tag: z.string().optional(),
});
export type LoadBalancer = z.output<typeof loadBalancerSchema>;

export const reservedIpSchema = z.looseObject({
  ip: z.string(),
  droplet: dropletSchema.nullable().optional(),
  locked: z.boolean().optional(),
});
export type ReservedIp = z.output<typeof reservedIpSchema>;
