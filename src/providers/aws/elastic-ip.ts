/**
 * An endpoint as an Elastic IP: allocated by ensure, tagged with project, environment and image
 * (so that list, destroy and cleanup find it, associated or not), associated with the one healthy
 * server by attach (EC2 moves it at once), moved to a remaining server when its holder is detached
 * (kit/endpoints.ts nextHolder), and released by remove.
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AssociateAddress.html
 */
import { AllocateAddressCommand, AssociateAddressCommand, DescribeAddressesCommand, DisassociateAddressCommand, ReleaseAddressCommand, type Address } from '@aws-sdk/client-ec2';
import { drain, nextHolder, refLabels, refOf, theOneMachine } from '../kit/endpoints.js';
import { LABELS, type EndpointRef, type EndpointStatus, type Machine, type Server } from '../types.js';
import { isNotFound, tagMap, type Ec2 } from './client.js';

const KIND = 'elastic-ip';

export class ElasticIps {
  constructor(private readonly ec2: Ec2) {}

  private async describe(filters: Record<string, string>, signal: AbortSignal): Promise<Address[]> {
    const Filters = Object.entries(filters).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
    const answer = await this.ec2.call('list Elastic IPs', (sdk, s) => sdk.send(new DescribeAddressesCommand({ Filters }), { abortSignal: s }), signal);
    return answer.Addresses ?? [];
  }

  async find(ref: EndpointRef, signal: AbortSignal): Promise<Address | undefined> {
    return (await this.describe(refLabels(ref), signal))[0];
  }

  status(address: Address): EndpointStatus {
    return { kind: KIND, address: address.PublicIp ?? '', members: address.InstanceId ? [{ machineId: address.InstanceId, state: 'healthy' }] : [] };
  }

  /** Every Elastic IP of the project's endpoints, associated or not. */
  async list(project: string, signal: AbortSignal): Promise<(EndpointRef & EndpointStatus)[]> {
    return (await this.describe({ [LABELS.project]: project }, signal)).flatMap((a) => {
      const ref = refOf(tagMap(a.Tags));
      return ref ? [{ ...ref, ...this.status(a) }] : [];
    });
  }

  async ensure(ref: EndpointRef, signal: AbortSignal): Promise<Address> {
    const found = await this.find(ref, signal);
    if (found) return found;
    const Tags = Object.entries(refLabels(ref)).map(([Key, Value]) => ({ Key, Value }));
    const made = await this.ec2.call('allocate an Elastic IP', (sdk, s) => sdk.send(new AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: [{ ResourceType: 'elastic-ip', Tags }] }), { abortSignal: s }), signal);
    return { PublicIp: made.PublicIp, AllocationId: made.AllocationId, Tags };
  }

  async attach(ref: EndpointRef, machines: Machine[], signal: AbortSignal): Promise<void> {
    const machine = theOneMachine(machines, 'Elastic IP', 'aws');
    const address = await this.ensure(ref, signal);
    if (address.InstanceId !== machine.id) await this.associate(address, machine.id, signal);
  }

  /** If the holder leaves, the address moves to a remaining server; its open connections get `drainMs`. */
  async detach(ref: EndpointRef, machines: Pick<Machine, 'id'>[], servers: Server[], drainMs: number, signal: AbortSignal): Promise<void> {
    const address = await this.find(ref, signal);
    const next = nextHolder(address?.InstanceId, machines, servers);
    if (typeof next === 'object') await this.associate(address!, next.id, signal);
    await drain(drainMs, signal);
  }

  async remove(ref: EndpointRef, signal: AbortSignal): Promise<void> {
    const address = await this.find(ref, signal);
    if (!address) return;
    const gone = (err: unknown) => {
      if (!isNotFound(err)) throw err;
    };
    if (address.AssociationId) {
      await this.ec2.call('disassociate the Elastic IP', (sdk, s) => sdk.send(new DisassociateAddressCommand({ AssociationId: address.AssociationId }), { abortSignal: s }), signal).catch(gone);
    }
    await this.ec2.call('release the Elastic IP', (sdk, s) => sdk.send(new ReleaseAddressCommand({ AllocationId: address.AllocationId }), { abortSignal: s }), signal).catch(gone);
  }

  private async associate(address: Address, instanceId: string, signal: AbortSignal): Promise<void> {
    await this.ec2.call('associate the Elastic IP', (sdk, s) => sdk.send(new AssociateAddressCommand({ AllocationId: address.AllocationId, InstanceId: instanceId, AllowReassociation: true }), { abortSignal: s }), signal);
  }
}
