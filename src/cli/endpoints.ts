/** How commands show an endpoint: its kind, address and members (by server name where known). */
import type { EndpointStatus, Machine } from '../providers/types.js';

const memberName = (machineId: string, name: string | undefined, machines: Pick<Machine, 'id' | 'name'>[]) =>
  name ?? machines.find((m) => m.id === machineId)?.name ?? machineId;

export function describeEndpoint(status: EndpointStatus, machines: Pick<Machine, 'id' | 'name'>[]): string {
  const members = status.members.map((m) => `${memberName(m.machineId, m.name, machines)} (${m.state})`);
  return `${status.kind} at ${status.address || '(no address yet)'} -> ${members.join(', ') || 'no members'}`;
}

export function endpointJson(status: EndpointStatus, machines: Pick<Machine, 'id' | 'name'>[]) {
  return {
    kind: status.kind,
    address: status.address,
    members: status.members.map((m) => ({ name: memberName(m.machineId, m.name, machines), id: m.machineId, state: m.state })),
  };
}

export function endpointsJson(endpoints: Record<string, EndpointStatus>, machines: Pick<Machine, 'id' | 'name'>[]) {
  return Object.fromEntries(Object.entries(endpoints).map(([image, status]) => [image, endpointJson(status, machines)]));
}
