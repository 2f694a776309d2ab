/**
 * CreateTags and DeleteTags on any resource of the region, found by its id's prefix;
 * DescribeTags lists every tag of the account's resources.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeTags.html
 */
import { ACCOUNT_ID, type Ec2Cloud, type Handler } from './cloud.js';
import { Ec2Error, notFound } from './errors.js';
import { addTags, applyFilters, paginate, readTags, type RegionState, type Tags } from './resources.js';

/** The region's Elastic IPs by allocation id (they live in the cloud, listening on their addresses). */
function elasticIps(cloud: Ec2Cloud, region: RegionState): Map<string, { id: string; tags: Tags }> {
  const ips = [...cloud.elasticIps.all.values()].filter((a) => a.region === region.name);
  return new Map(ips.map((a) => [a.allocationId, { id: a.allocationId, tags: a.tags }]));
}

function resourceTags(cloud: Ec2Cloud, region: RegionState, id: string): Tags {
  const prefix = id.slice(0, id.indexOf('-'));
  if (prefix === 'eipalloc') {
    const ip = elasticIps(cloud, region).get(id);
    if (!ip) throw new Ec2Error('InvalidAllocationID.NotFound', `The allocation ID '${id}' does not exist`);
    return ip.tags;
  }
  const lookups: Record<string, [Map<string, { tags: Tags }>, Parameters<typeof notFound>[0]]> = {
    i: [region.instances, 'instance'],
    ami: [region.images, 'image'],
    snap: [region.snapshots, 'snapshot'],
    sg: [region.groups, 'group'],
    key: [region.keyPairs, 'keyPair'],
    vpc: [region.vpcs, 'vpc'],
    subnet: [region.subnets, 'subnet'],
    vol: [region.volumes, 'volume'],
  };
  const lookup = lookups[prefix];
  if (!lookup) throw new Ec2Error('InvalidID', `The ID '${id}' is not valid`);
  const resource = lookup[0].get(id);
  if (!resource) throw notFound(lookup[1], [id]);
  return resource.tags;
}

const createTags: Handler = (cloud, region, params) => {
  const ids = params.strings('ResourceId');
  if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter resourceIdSet');
  const tags = readTags(params.list('Tag'));
  if (tags.size === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter tagSet');
  const targets = ids.map((id) => resourceTags(cloud, region, id));
  for (const target of targets) addTags(target, tags);
  return { return: true };
};

/** Without Tag, every tag goes; a Tag with a Value goes only if the value matches. */
const deleteTags: Handler = (cloud, region, params) => {
  const ids = params.strings('ResourceId');
  if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter resourceIdSet');
  const targets = ids.map((id) => resourceTags(cloud, region, id));
  const tags = params.list('Tag').map((t) => ({ key: t.required('Key'), value: t.str('Value') }));
  for (const target of targets) {
    if (tags.length === 0) target.clear();
    for (const { key, value } of tags) if (value === undefined || target.get(key) === value) target.delete(key);
  }
  return { return: true };
};

interface TagDescription {
  resourceId: string;
  resourceType: string;
  key: string;
  value: string;
  /** The resource's tags, for `tag:KEY` filters. */
  tags: Tags;
}

/** Every tag of the account's resources, by resource type then resource, in creation order. */
function allTags(cloud: Ec2Cloud, region: RegionState): TagDescription[] {
  const sources: [string, Iterable<{ id: string; tags: Tags; ownerId?: string }>][] = [
    ['instance', region.instances.values()],
    ['image', region.images.values()],
    ['snapshot', region.snapshots.values()],
    ['volume', region.volumes.values()],
    ['security-group', region.groups.values()],
    ['key-pair', region.keyPairs.values()],
    ['vpc', region.vpcs.values()],
    ['subnet', region.subnets.values()],
    ['elastic-ip', elasticIps(cloud, region).values()],
  ];
  const out: TagDescription[] = [];
  for (const [resourceType, resources] of sources) {
    for (const r of resources) {
      if (r.ownerId !== undefined && r.ownerId !== ACCOUNT_ID) continue;
      for (const [key, value] of r.tags) out.push({ resourceId: r.id, resourceType, key, value, tags: r.tags });
    }
  }
  return out;
}

const describeTags: Handler = (cloud, region, params) => {
  const tags = applyFilters(allTags(cloud, region), params, {
    'resource-id': (t) => t.resourceId,
    'resource-type': (t) => t.resourceType,
    key: (t) => t.key,
    value: (t) => t.value,
  });
  const { page, nextToken } = paginate(tags, params, 'DescribeTags', { min: 5, max: 1000 });
  return { tagSet: page.map((t) => ({ resourceId: t.resourceId, resourceType: t.resourceType, key: t.key, value: t.value })), nextToken };
};

export const tagOperations: Record<string, Handler> = {
  CreateTags: createTags,
  DeleteTags: deleteTags,
  DescribeTags: describeTags,
};
