/**
 * Elastic IP addresses: AllocateAddress, AssociateAddress, DisassociateAddress, ReleaseAddress and
 * DescribeAddresses (which libcloud's list_nodes calls on every listing). Each address is a real
 * listener (elastic-ips.ts); requests are checked as EC2 checks them.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AllocateAddress.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AssociateAddress.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeAddresses.html
 */
import type { Ec2Cloud, Handler } from './cloud.js';
import type { ElasticIp } from './elastic-ips.js';
import { Ec2Error } from './errors.js';
import type { Params } from './query.js';
import { applyFilters, newId, tagSpecifications, tagsXml, type RegionState } from './resources.js';

function inRegion(cloud: Ec2Cloud, region: RegionState): ElasticIp[] {
  return [...cloud.elasticIps.all.values()].filter((a) => a.region === region.name);
}

function byAllocationId(cloud: Ec2Cloud, region: RegionState, id: string): ElasticIp {
  const found = inRegion(cloud, region).find((a) => a.allocationId === id);
  if (found) return found;
  if (!/^eipalloc-[0-9a-f]{8}([0-9a-f]{9})?$/.test(id)) throw new Ec2Error('InvalidAllocationID.Malformed', `Invalid id: "${id}"`);
  throw new Ec2Error('InvalidAllocationID.NotFound', `The allocation ID '${id}' does not exist`);
}

function byPublicIp(cloud: Ec2Cloud, region: RegionState, ip: string): ElasticIp {
  const found = inRegion(cloud, region).find((a) => a.publicIp === ip);
  if (!found) throw new Ec2Error('InvalidAddress.NotFound', `Address '${ip}' not found.`);
  return found;
}

/** AllocationId, or PublicIp as EC2 also takes. */
function target(cloud: Ec2Cloud, region: RegionState, params: Params): ElasticIp {
  const id = params.str('AllocationId');
  if (id) return byAllocationId(cloud, region, id);
  const ip = params.str('PublicIp');
  if (ip) return byPublicIp(cloud, region, ip);
  throw new Ec2Error('MissingParameter', 'Either public IP or allocation id must be specified');
}

function addressXml(cloud: Ec2Cloud, a: ElasticIp) {
  const association = cloud.elasticIps.associated(a);
  return {
    publicIp: a.publicIp,
    allocationId: a.allocationId,
    domain: 'vpc',
    instanceId: association?.instance.id,
    associationId: association?.id,
    privateIpAddress: association?.instance.address,
    tagSet: a.tags.size ? tagsXml(a.tags) : undefined,
    publicIpv4Pool: 'amazon',
    networkBorderGroup: a.region,
  };
}

const allocateAddress: Handler = async (cloud, region, params) => {
  const domain = params.str('Domain');
  if (domain !== undefined && domain !== 'vpc' && domain !== 'standard') throw new Ec2Error('InvalidParameterValue', `Invalid value '${domain}' for domain.`);
  if (domain === 'standard') throw new Ec2Error('InvalidParameterValue', 'EC2-Classic is retired: only the vpc domain is available.');
  const tags = tagSpecifications(params, 'elastic-ip', ['elastic-ip']);
  const allocated = await cloud.elasticIps.allocate({ allocationId: newId('eipalloc'), region: region.name, tags });
  return { publicIp: allocated.publicIp, allocationId: allocated.allocationId, domain: 'vpc', publicIpv4Pool: 'amazon', networkBorderGroup: region.name };
};

const associateAddress: Handler = (cloud, region, params) => {
  const address = target(cloud, region, params);
  const instanceId = params.str('InstanceId');
  if (!instanceId) throw new Ec2Error('MissingParameter', 'Either instance ID or network interface id must be specified');
  const instance = region.instances.get(instanceId);
  if (!instance || instance.state === 'terminated') throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${instanceId}' does not exist`);
  if (instance.state !== 'running' && instance.state !== 'stopped') throw new Ec2Error('IncorrectInstanceState', `The pending-instance-running instance to which '${instanceId}' belongs is not in a valid state for this operation.`);
  const current = cloud.elasticIps.associated(address);
  if (current && current.instance.id !== instanceId && params.bool('AllowReassociation') !== true) {
    throw new Ec2Error('Resource.AlreadyAssociated', `resource ${address.allocationId} is already associated with associate-id ${current.id}`);
  }
  // An instance has one public address: an Elastic IP it had before lets go of it.
  for (const other of inRegion(cloud, region)) if (other !== address && cloud.elasticIps.associated(other)?.instance.id === instanceId) other.association = undefined;
  address.association = { id: newId('eipassoc'), instance };
  // EC2's XML also carries <return>true</return>, but botocore's model (the judge) has only the id.
  return { associationId: address.association.id };
};

const disassociateAddress: Handler = (cloud, region, params) => {
  const id = params.str('AssociationId');
  if (id) {
    const found = inRegion(cloud, region).find((a) => cloud.elasticIps.associated(a)?.id === id);
    if (!found) throw new Ec2Error('InvalidAssociationID.NotFound', `The association ID '${id}' does not exist`);
    found.association = undefined;
    return { return: true };
  }
  const ip = params.str('PublicIp');
  if (!ip) throw new Ec2Error('MissingParameter', 'Either public IP or association id must be specified');
  byPublicIp(cloud, region, ip).association = undefined;
  return { return: true };
};

const releaseAddress: Handler = async (cloud, region, params) => {
  const address = target(cloud, region, params);
  if (cloud.elasticIps.associated(address)) throw new Ec2Error('InvalidIPAddress.InUse', 'Address is in use.');
  await cloud.elasticIps.release(address);
  return { return: true };
};

const describeAddresses: Handler = (cloud, region, params) => {
  const addresses = inRegion(cloud, region).sort((a, b) => a.publicIp.localeCompare(b.publicIp));
  for (const ip of params.strings('PublicIp')) byPublicIp(cloud, region, ip);
  for (const id of params.strings('AllocationId')) byAllocationId(cloud, region, id);
  const ips = params.strings('PublicIp');
  const ids = params.strings('AllocationId');
  const asked = addresses.filter((a) => (!ips.length || ips.includes(a.publicIp)) && (!ids.length || ids.includes(a.allocationId)));
  const listed = applyFilters(asked, params, {
    'allocation-id': (a) => a.allocationId,
    'association-id': (a) => cloud.elasticIps.associated(a)?.id,
    domain: () => 'vpc',
    'instance-id': (a) => cloud.elasticIps.associated(a)?.instance.id,
    'network-border-group': (a) => a.region,
    'network-interface-id': () => undefined,
    'network-interface-owner-id': () => undefined,
    'private-ip-address': (a) => cloud.elasticIps.associated(a)?.instance.address,
    'public-ip': (a) => a.publicIp,
  });
  return { addressesSet: listed.map((a) => addressXml(cloud, a)) };
};

export const addressOperations: Record<string, Handler> = {
  AllocateAddress: allocateAddress,
  AssociateAddress: associateAddress,
  DisassociateAddress: disassociateAddress,
  ReleaseAddress: releaseAddress,
  DescribeAddresses: describeAddresses,
};
