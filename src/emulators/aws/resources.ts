/**
 * The emulator's resources, one set per region, and what all of them share: ids, tags, filters
 * and pagination.
 */
import { randomBytes } from 'node:crypto';
import { Ec2Error } from './errors.js';
import type { Params } from './query.js';
import type { XmlObject } from './xml.js';

export type Tags = Map<string, string>;

export type InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

/** EC2's numeric state codes (the low byte of `instanceState.code`). */
export const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface Instance {
  id: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  keyName?: string;
  launchIndex: number;
  launchTime: Date;
  state: InstanceStateName;
  stateReason?: { code: string; message: string };
  transitionReason: string;
  subnetId: string;
  vpcId: string;
  availabilityZone: string;
  groupIds: string[];
  /** The root EBS volume (see volumes.ts). */
  volumeId: string;
  architecture: 'x86_64' | 'arm64';
  /** RunInstances' UserData (base64), for DescribeInstanceAttribute. */
  userData?: string;
  /** When the instance last reached `running` (status checks pass a while after). */
  runningSince?: number;
  clientToken?: string;
  shutdownBehavior: 'stop' | 'terminate';
  /** The machine's address once it is up (kept while stopped, as a private address is). */
  address?: string;
  /** Whether it shows its address (the "never gets an address" fault keeps this false). */
  addressed: boolean;
  /** The backend's handle of the machine, once launched. */
  machine?: string;
  tags: Tags;
  /** Backend operations on this instance run one after the other. */
  queue: Promise<void>;
  terminatedAt?: number;
}

export interface Image {
  id: string;
  name: string;
  description?: string;
  ownerId: string;
  ownerAlias?: string;
  public: boolean;
  state: 'pending' | 'available' | 'failed';
  stateReason?: { code: string; message: string };
  creationDate: Date;
  architecture: 'x86_64' | 'arm64';
  snapshotIds: string[];
  sourceImageId?: string;
  sourceRegion?: string;
  sourceInstanceId?: string;
  /** Accounts this AMI is shared with (ModifyImageAttribute launchPermission). */
  launchUserIds: string[];
  lastLaunchedTime?: Date;
  /** `v2.0` once set by ModifyImageAttribute (it cannot be unset). */
  imdsSupport?: string;
  tags: Tags;
}

export interface Snapshot {
  id: string;
  ownerId: string;
  state: 'pending' | 'completed' | 'error';
  startTime: Date;
  volumeId: string;
  volumeSize: number;
  description: string;
  /** The backend layer holding the captured file system (once captured). */
  layer?: string;
  deleted: boolean;
  tags: Tags;
}

/** An instance's root EBS volume: created by RunInstances, deleted on termination. */
export interface Volume {
  id: string;
  size: number;
  snapshotId: string;
  availabilityZone: string;
  createTime: Date;
  state: 'creating' | 'available' | 'in-use' | 'deleting' | 'deleted';
  attachment?: { instanceId: string; device: string; state: 'attaching' | 'attached' | 'detaching'; attachTime: Date; deleteOnTermination: boolean };
  tags: Tags;
}

export interface KeyPair {
  id: string;
  name: string;
  type: 'rsa' | 'ed25519';
  fingerprint: string;
  publicKey: string;
  createTime: Date;
  tags: Tags;
}

export interface IpPermission {
  protocol: string;
  fromPort?: number;
  toPort?: number;
  cidrs: { cidr: string; description?: string }[];
}

export interface SecurityGroup {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  ingress: IpPermission[];
  tags: Tags;
}

export interface Vpc {
  id: string;
  cidr: string;
  isDefault: boolean;
  tags: Tags;
}

export interface Subnet {
  id: string;
  vpcId: string;
  cidr: string;
  availabilityZone: string;
  zoneId: string;
  isDefault: boolean;
  tags: Tags;
}

export interface RegionState {
  name: string;
  instances: Map<string, Instance>;
  images: Map<string, Image>;
  snapshots: Map<string, Snapshot>;
  volumes: Map<string, Volume>;
  keyPairs: Map<string, KeyPair>;
  groups: Map<string, SecurityGroup>;
  vpcs: Map<string, Vpc>;
  subnets: Map<string, Subnet>;
  /** ClientToken -> reservation id / image id, for idempotent retries. */
  clientTokens: Map<string, string>;
}

/** `prefix-` and 17 hex digits, as EC2's long ids. */
export function newId(prefix: string): string {
  return `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export function tagsXml(tags: Tags): XmlObject[] {
  return [...tags].map(([key, value]) => ({ key, value }));
}

/** Tags of `TagSpecification.N` for one resource type (`instance`, `image`, `snapshot`, ...). */
export function tagSpecifications(params: Params, resourceType: string, allowed: string[]): Tags {
  const tags: Tags = new Map();
  for (const spec of params.list('TagSpecification')) {
    const type = spec.required('ResourceType');
    if (!allowed.includes(type)) {
      throw new Ec2Error('InvalidParameterValue', `'${type}' is not a valid taggable resource type for this operation.`);
    }
    if (type !== resourceType) continue;
    for (const [key, value] of readTags(spec.list('Tag'))) tags.set(key, value);
  }
  return tags;
}

export function readTags(list: Params[], valuesRequired = true): Tags {
  const tags: Tags = new Map();
  for (const tag of list) {
    const key = tag.required('Key');
    if (key.length > 128) throw new Ec2Error('InvalidParameterValue', `Tag key exceeds the maximum length of 128 characters`);
    if (key.toLowerCase().startsWith('aws:')) throw new Ec2Error('InvalidParameterValue', `Tag keys starting with 'aws:' are reserved for internal use`);
    const value = valuesRequired ? (tag.str('Value') ?? '') : tag.str('Value');
    if (value !== undefined && value.length > 256) throw new Ec2Error('InvalidParameterValue', `Tag value exceeds the maximum length of 256 characters`);
    tags.set(key, value as string);
  }
  return tags;
}

export function addTags(target: Tags, tags: Tags): void {
  for (const [key, value] of tags) target.set(key, value);
  if (target.size > 50) throw new Ec2Error('TagLimitExceeded', 'The maximum number of Tags for a resource has been reached.');
}

/** Values a resource has for each filter name it supports. */
export type FilterFields<T> = Record<string, (item: T) => Array<string | undefined> | string | undefined>;

function wildcard(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

/**
 * `Filter.N.Name` / `Filter.N.Value.M`: filters are ANDed, the values of one filter ORed; values
 * may use `*` and `?`. `tag:KEY`, `tag-key` and `tag-value` work on every tagged resource.
 */
export function applyFilters<T extends { tags?: Tags }>(items: T[], params: Params, fields: FilterFields<T>): T[] {
  let result = items;
  for (const filter of params.list('Filter')) {
    const name = filter.required('Name');
    const patterns = filter.strings('Value').map(wildcard);
    let values: (item: T) => Array<string | undefined>;
    if (name.startsWith('tag:')) {
      const key = name.slice(4);
      values = (item) => [item.tags?.get(key)];
    } else if (name === 'tag-key') {
      values = (item) => [...(item.tags?.keys() ?? [])];
    } else if (name === 'tag-value') {
      values = (item) => [...(item.tags?.values() ?? [])];
    } else if (fields[name]) {
      const field = fields[name];
      values = (item) => {
        const v = field(item);
        return Array.isArray(v) ? v : [v];
      };
    } else {
      throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
    }
    result = result.filter((item) => values(item).some((v) => v !== undefined && patterns.some((p) => p.test(v))));
  }
  return result;
}

/**
 * One page of `items` for MaxResults/NextToken. The token is the offset, with a tag of the
 * operation, so that a token from another listing is refused as EC2 refuses it.
 */
export function paginate<T>(
  items: T[],
  params: Params,
  operation: string,
  limits: { min: number; max: number; capped?: boolean } = { min: 5, max: 1000 },
): { page: T[]; nextToken?: string } {
  const max = params.int('MaxResults');
  const token = params.str('NextToken');
  let start = 0;
  if (token) {
    const [op, offset] = Buffer.from(token, 'base64url').toString('utf8').split(':');
    if (op !== operation || !/^\d+$/.test(offset ?? '')) throw new Ec2Error('InvalidParameterValue', `Invalid value '${token}' for NextToken`);
    start = Number(offset);
  }
  if (max === undefined) return { page: items.slice(start) };
  // Some operations answer at most `max` items when asked for more (DescribeVolumes: 500).
  if (limits.capped && max > limits.max) return slicePage(items, start, limits.max, operation);
  if (max < limits.min || max > limits.max) {
    throw new Ec2Error('InvalidParameterValue', `Value ( ${max} ) for parameter maxResults is invalid. Expecting a value between ${limits.min} and ${limits.max}.`);
  }
  return slicePage(items, start, max, operation);
}

function slicePage<T>(items: T[], start: number, max: number, operation: string): { page: T[]; nextToken?: string } {
  const page = items.slice(start, start + max);
  const next = start + max < items.length ? Buffer.from(`${operation}:${start + max}`).toString('base64url') : undefined;
  return { page, nextToken: next };
}
