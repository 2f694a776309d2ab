/**
 * Elastic IP addresses: DescribeAddresses, which libcloud's list_nodes calls on every listing.
 * The emulated account has none (the emulator has no AllocateAddress), so the answer is empty,
 * but the request is checked as EC2 checks it: unknown filters, and addresses or allocation ids
 * asked for by name, are errors.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeAddresses.html
 */
import type { Handler } from './cloud.js';
import { Ec2Error } from './errors.js';
import { applyFilters, type Tags } from './resources.js';

interface Address {
  publicIp: string;
  allocationId: string;
  instanceId?: string;
  tags: Tags;
}

const describeAddresses: Handler = (_cloud, _region, params) => {
  const addresses: Address[] = [];
  const ips = params.strings('PublicIp');
  const allocationIds = params.strings('AllocationId');
  const missingIp = ips.find((ip) => !addresses.some((a) => a.publicIp === ip));
  if (missingIp) throw new Ec2Error('InvalidAddress.NotFound', `Address '${missingIp}' not found.`);
  const missingId = allocationIds.find((id) => !addresses.some((a) => a.allocationId === id));
  if (missingId) {
    if (!/^eipalloc-[0-9a-f]{8}([0-9a-f]{9})?$/.test(missingId)) throw new Ec2Error('InvalidAllocationID.Malformed', `Invalid id: "${missingId}"`);
    throw new Ec2Error('InvalidAllocationID.NotFound', `The allocation ID '${missingId}' does not exist`);
  }
  const listed = applyFilters(addresses, params, {
    'allocation-id': (a) => a.allocationId,
    'association-id': () => undefined,
    domain: () => 'vpc',
    'instance-id': (a) => a.instanceId,
    'network-border-group': () => undefined,
    'network-interface-id': () => undefined,
    'network-interface-owner-id': () => undefined,
    'private-ip-address': () => undefined,
    'public-ip': (a) => a.publicIp,
  });
  return { addressesSet: listed.map((a) => ({ publicIp: a.publicIp, allocationId: a.allocationId, domain: 'vpc', instanceId: a.instanceId })) };
};

export const addressOperations: Record<string, Handler> = {
  DescribeAddresses: describeAddresses,
};
