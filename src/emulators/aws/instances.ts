/**
 * Instances: RunInstances, DescribeInstances, StopInstances, StartInstances, TerminateInstances.
 * pending -> running -> stopping -> stopped -> pending ...; any -> shutting-down -> terminated.
 * Each state change waits for the machine behind it, then for the configured delay.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html
 */
import { ACCOUNT_ID, type Ec2Cloud, type Handler } from './cloud.js';
import { userDataKeys } from './user-data.js';
import { checkIdFormat, Ec2Error, notFound } from './errors.js';
import type { Params } from './query.js';
import {
  applyFilters,
  newId,
  paginate,
  STATE_CODES,
  tagsXml,
  tagSpecifications,
  type FilterFields,
  type Instance,
  type InstanceStateName,
  type RegionState,
} from './resources.js';
import type { XmlObject } from './xml.js';
import { checkArchitecture, instanceType as lookupInstanceType } from './instance-types.js';
import { createRootVolume, deleteRootVolume, ROOT_DEVICE } from './volumes.js';

/** Running (and pending...) instances allowed per region, like EC2's vCPU quota. */
export const INSTANCE_LIMIT = 500;

function dnsLabel(address: string): string {
  return address.replace(/\./g, '-');
}

export function stateXml(state: InstanceStateName): XmlObject {
  return { code: STATE_CODES[state], name: state };
}

function showsPrivateAddress(i: Instance): boolean {
  return !!i.address && i.addressed && i.state !== 'terminated' && i.state !== 'shutting-down';
}

function showsPublicAddress(i: Instance): boolean {
  return !!i.address && i.addressed && (i.state === 'running' || i.state === 'stopping');
}

/** The root volume while the instance has one (DescribeInstances, DescribeInstanceAttribute). */
export function blockDevicesXml(i: Instance): XmlObject[] {
  if (i.state === 'terminated') return [];
  return [{ deviceName: ROOT_DEVICE, ebs: { volumeId: i.volumeId, status: 'attached', attachTime: i.launchTime, deleteOnTermination: true } }];
}

export function instanceXml(region: RegionState, i: Instance): XmlObject {
  const privateIp = showsPrivateAddress(i) ? i.address : undefined;
  const publicIp = showsPublicAddress(i) ? i.address : undefined;
  return {
    instanceId: i.id,
    imageId: i.imageId,
    instanceState: stateXml(i.state),
    privateDnsName: privateIp ? `ip-${dnsLabel(privateIp)}.${region.name}.compute.internal` : '',
    dnsName: publicIp ? `ec2-${dnsLabel(publicIp)}.${region.name}.compute.amazonaws.com` : '',
    reason: i.transitionReason,
    keyName: i.keyName,
    amiLaunchIndex: i.launchIndex,
    productCodes: [],
    instanceType: i.instanceType,
    launchTime: i.launchTime,
    placement: { availabilityZone: i.availabilityZone, groupName: '', tenancy: 'default' },
    monitoring: { state: 'disabled' },
    subnetId: i.state === 'terminated' ? undefined : i.subnetId,
    vpcId: i.state === 'terminated' ? undefined : i.vpcId,
    privateIpAddress: privateIp,
    ipAddress: publicIp,
    sourceDestCheck: true,
    groupSet: i.groupIds.map((id) => ({ groupId: id, groupName: region.groups.get(id)?.name ?? id })),
    stateReason: i.stateReason,
    architecture: i.architecture,
    rootDeviceType: 'ebs',
    rootDeviceName: ROOT_DEVICE,
    blockDeviceMapping: blockDevicesXml(i),
    virtualizationType: 'hvm',
    clientToken: i.clientToken ?? '',
    tagSet: tagsXml(i.tags),
    hypervisor: 'xen',
    ebsOptimized: false,
    enaSupport: true,
    cpuOptions: { coreCount: 1, threadsPerCore: 2 },
    metadataOptions: { state: 'applied', httpTokens: 'required', httpPutResponseHopLimit: 2, httpEndpoint: 'enabled' },
  };
}

function reservationsXml(region: RegionState, instances: Instance[]): XmlObject[] {
  const reservations: { id: string; instances: Instance[] }[] = [];
  for (const instance of instances) {
    const last = reservations[reservations.length - 1];
    if (last?.id === instance.reservationId) last.instances.push(instance);
    else reservations.push({ id: instance.reservationId, instances: [instance] });
  }
  return reservations.map((r) => ({
    reservationId: r.id,
    ownerId: ACCOUNT_ID,
    groupSet: [],
    instancesSet: r.instances.map((i) => instanceXml(region, i)),
  }));
}

const INSTANCE_FILTERS: FilterFields<Instance> = {
  'instance-id': (i) => i.id,
  'instance-state-name': (i) => i.state,
  'instance-state-code': (i) => String(STATE_CODES[i.state]),
  'image-id': (i) => i.imageId,
  'instance-type': (i) => i.instanceType,
  'key-name': (i) => i.keyName,
  'reservation-id': (i) => i.reservationId,
  'subnet-id': (i) => i.subnetId,
  'vpc-id': (i) => i.vpcId,
  'availability-zone': (i) => i.availabilityZone,
  'ip-address': (i) => (showsPublicAddress(i) ? i.address : undefined),
  'private-ip-address': (i) => (showsPrivateAddress(i) ? i.address : undefined),
  'instance.group-id': (i) => i.groupIds,
  'group-id': (i) => i.groupIds,
  'client-token': (i) => i.clientToken,
  'launch-index': (i) => String(i.launchIndex),
  architecture: (i) => i.architecture,
  'block-device-mapping.volume-id': (i) => (i.state === 'terminated' ? undefined : i.volumeId),
  'block-device-mapping.device-name': (i) => (i.state === 'terminated' ? undefined : ROOT_DEVICE),
  'root-device-type': () => 'ebs',
};

/** Lists instances, dropping terminated ones older than the retention delay. */
export function visibleInstances(cloud: Ec2Cloud, region: RegionState): Instance[] {
  const now = Date.now();
  for (const [id, i] of region.instances) {
    if (i.terminatedAt !== undefined && now - i.terminatedAt > cloud.delays.terminatedRetentionMs) region.instances.delete(id);
  }
  return [...region.instances.values()];
}

export function findInstances(cloud: Ec2Cloud, region: RegionState, params: Params): Instance[] {
  const ids = params.strings('InstanceId');
  if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceId');
  for (const id of ids) checkIdFormat(id, 'i', 'InvalidInstanceID.Malformed');
  visibleInstances(cloud, region);
  const missing = ids.filter((id) => !region.instances.has(id));
  if (missing.length) throw notFound('instance', missing);
  return ids.map((id) => region.instances.get(id)!);
}

function changesXml(changes: { instance: Instance; previous: InstanceStateName }[]): XmlObject[] {
  return changes.map(({ instance, previous }) => ({
    instanceId: instance.id,
    currentState: stateXml(instance.state),
    previousState: stateXml(previous),
  }));
}

function launch(cloud: Ec2Cloud, region: RegionState, instance: Instance, layer: string, authorizedKeys: string[]): void {
  cloud.enqueue(instance, async () => {
    try {
      const machine = await cloud.backend.launch({
        name: instance.id,
        layer,
        authorizedKeys,
        labels: { region: region.name, instance: instance.id },
      });
      instance.machine = machine.id;
      instance.address = machine.address;
    } catch (err) {
      instance.state = 'terminated';
      instance.terminatedAt = Date.now();
      instance.stateReason = { code: 'Server.InternalError', message: 'Server.InternalError: Internal error on launch' };
      instance.transitionReason = 'Server.InternalError';
      throw err;
    }
    await cloud.sleep(cloud.delays.instancePendingMs);
    if (instance.state === 'pending') becomeRunning(instance);
  });
}

function becomeRunning(instance: Instance): void {
  instance.state = 'running';
  instance.runningSince = Date.now();
}

function stop(cloud: Ec2Cloud, instance: Instance, reason: { code: string; message: string }, alreadyDown = false): void {
  instance.state = 'stopping';
  instance.stateReason = reason;
  instance.transitionReason = `${reason.message.replace(/^[^:]*: /, '')} (${new Date().toISOString().replace(/\.\d+Z$/, ' GMT').replace('T', ' ')})`;
  cloud.enqueue(instance, async () => {
    if (instance.machine && !alreadyDown) await cloud.backend.stop(instance.machine);
    await cloud.sleep(cloud.delays.instanceStoppingMs);
    if (instance.state === 'stopping') instance.state = 'stopped';
  });
}

function terminate(cloud: Ec2Cloud, region: RegionState, instance: Instance, reason: { code: string; message: string }): void {
  instance.state = 'shutting-down';
  instance.stateReason = reason;
  instance.transitionReason = `${reason.message.replace(/^[^:]*: /, '')} (${new Date().toISOString().replace(/\.\d+Z$/, ' GMT').replace('T', ' ')})`;
  cloud.enqueue(instance, async () => {
    if (instance.machine) await cloud.backend.destroy(instance.machine);
    instance.machine = undefined;
    await cloud.sleep(cloud.delays.instanceShuttingDownMs);
    instance.state = 'terminated';
    instance.terminatedAt = Date.now();
    deleteRootVolume(region, instance);
  });
}

const USER_STOP = { code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown' };
const GUEST_STOP = { code: 'Client.InstanceInitiatedShutdown', message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown' };

export function installShutdownHandler(cloud: Ec2Cloud): void {
  cloud.onInstanceShutdown = (region, instance, how) => {
    if (how === 'terminate') terminate(cloud, region, instance, GUEST_STOP);
    else stop(cloud, instance, GUEST_STOP, true);
  };
}

const runInstances: Handler = (cloud, region, params) => {
  const imageId = params.required('ImageId');
  checkIdFormat(imageId, 'ami', 'InvalidAMIID.Malformed');
  const image = region.images.get(imageId);
  if (!image) throw notFound('image', [imageId]);
  if (image.state !== 'available') throw new Ec2Error('InvalidAMIID.Unavailable', `The image id '[${imageId}]' is not available (state: ${image.state})`);
  const layer = cloud.imageLayer(region, image);
  if (!layer) throw new Ec2Error('InvalidAMIID.Unavailable', `The image id '[${imageId}]' has no snapshot`);
  const minCount = params.int('MinCount');
  const maxCount = params.int('MaxCount');
  if (minCount === undefined) throw new Ec2Error('MissingParameter', 'The request must contain the parameter MinCount');
  if (maxCount === undefined) throw new Ec2Error('MissingParameter', 'The request must contain the parameter MaxCount');
  if (minCount < 1) throw new Ec2Error('InvalidParameterValue', `Value (${minCount}) for parameter minCount is invalid. Expected a positive integer.`);
  if (maxCount < minCount) throw new Ec2Error('InvalidParameterValue', `Value (${maxCount}) for parameter maxCount is invalid. Expected a value greater than or equal to minCount.`);

  const clientToken = params.str('ClientToken');
  if (clientToken && region.clientTokens.has(clientToken)) {
    const reservationId = region.clientTokens.get(clientToken)!;
    const instances = [...region.instances.values()].filter((i) => i.reservationId === reservationId);
    return reservationsXml(region, instances)[0];
  }

  const instanceType = params.str('InstanceType') ?? 'm1.small';
  checkArchitecture(lookupInstanceType(instanceType), image.architecture);
  const keyName = params.str('KeyName');
  const keyPair = keyName === undefined ? undefined : [...region.keyPairs.values()].find((k) => k.name === keyName);
  if (keyName !== undefined && !keyPair) throw notFound('keyPair', [keyName]);

  const zone = params.sub('Placement')?.str('AvailabilityZone');
  const subnetId = params.str('SubnetId');
  let subnet;
  if (subnetId) {
    subnet = region.subnets.get(subnetId);
    if (!subnet) throw notFound('subnet', [subnetId]);
  } else {
    subnet = [...region.subnets.values()].find((s) => s.isDefault && (!zone || s.availabilityZone === zone));
    if (!subnet) throw new Ec2Error('InvalidParameterValue', `Invalid availability zone: [${zone}]`);
  }
  const groupIds = params.strings('SecurityGroupId');
  for (const id of groupIds) if (!region.groups.has(id)) throw notFound('group', [id]);
  for (const name of params.strings('SecurityGroup')) {
    const group = [...region.groups.values()].find((g) => g.name === name && g.vpcId === subnet.vpcId);
    if (!group) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${name}' does not exist in VPC '${subnet.vpcId}'`);
    groupIds.push(group.id);
  }
  if (groupIds.length === 0) groupIds.push([...region.groups.values()].find((g) => g.name === 'default' && g.vpcId === subnet.vpcId)!.id);
  const shutdownBehavior = params.str('InstanceInitiatedShutdownBehavior') ?? 'stop';
  if (shutdownBehavior !== 'stop' && shutdownBehavior !== 'terminate') {
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${shutdownBehavior}' for InstanceInitiatedShutdownBehavior`);
  }
  const tags = tagSpecifications(params, 'instance', ['instance', 'volume', 'network-interface']);
  const volumeTags = tagSpecifications(params, 'volume', ['instance', 'volume', 'network-interface']);
  const userData = params.str('UserData');

  const live = [...region.instances.values()].filter((i) => i.state !== 'terminated' && i.state !== 'shutting-down').length;
  const room = INSTANCE_LIMIT - live;
  if (room < minCount) {
    throw new Ec2Error(
      'InstanceLimitExceeded',
      `You have requested more instances (${minCount}) than your current instance limit of ${INSTANCE_LIMIT} allows for the specified instance type.`,
    );
  }
  const count = Math.min(maxCount, room);
  const reservationId = newId('r');
  const launchTime = new Date();
  const instances: Instance[] = [];
  for (let n = 0; n < count; n++) {
    const addressed = cloud.faults.noAddress <= 0;
    if (!addressed) cloud.faults.noAddress--;
    const instance: Instance = {
      id: newId('i'),
      reservationId,
      imageId,
      instanceType,
      keyName,
      launchIndex: n,
      launchTime,
      state: 'pending',
      transitionReason: '',
      subnetId: subnet.id,
      vpcId: subnet.vpcId,
      availabilityZone: subnet.availabilityZone,
      groupIds: [...groupIds],
      volumeId: '',
      architecture: image.architecture,
      userData,
      clientToken,
      shutdownBehavior,
      addressed,
      tags: new Map(tags),
      queue: Promise.resolve(),
    };
    instance.volumeId = createRootVolume(region, instance, image.snapshotIds[0], new Map(volumeTags)).id;
    region.instances.set(instance.id, instance);
    instances.push(instance);
    launch(cloud, region, instance, layer, [...(keyPair ? [keyPair.publicKey] : []), ...userDataKeys(userData)]);
  }
  if (clientToken) region.clientTokens.set(clientToken, reservationId);
  image.lastLaunchedTime = launchTime;
  return reservationsXml(region, instances)[0];
};

const describeInstances: Handler = (cloud, region, params) => {
  const ids = params.strings('InstanceId');
  if (ids.length && params.has('MaxResults')) {
    throw new Ec2Error('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
  }
  let instances = ids.length ? findInstances(cloud, region, params) : visibleInstances(cloud, region);
  instances = applyFilters(instances, params, INSTANCE_FILTERS);
  const { page, nextToken } = paginate(instances, params, 'DescribeInstances');
  return { reservationSet: reservationsXml(region, page), nextToken };
};

const stopInstances: Handler = (cloud, region, params) => {
  const instances = findInstances(cloud, region, params);
  for (const i of instances) {
    if (i.state === 'pending' || i.state === 'shutting-down' || i.state === 'terminated') {
      throw new Ec2Error('IncorrectInstanceState', `This instance '${i.id}' is not in a state from which it can be stopped.`);
    }
  }
  const changes = instances.map((instance) => ({ instance, previous: instance.state }));
  for (const { instance } of changes) if (instance.state === 'running') stop(cloud, instance, USER_STOP);
  return { instancesSet: changesXml(changes) };
};

const startInstances: Handler = (cloud, region, params) => {
  const instances = findInstances(cloud, region, params);
  for (const i of instances) {
    if (i.state !== 'stopped' && i.state !== 'running' && i.state !== 'pending') {
      throw new Ec2Error('IncorrectInstanceState', `The instance '${i.id}' is not in a state from which it can be started.`);
    }
  }
  const changes = instances.map((instance) => ({ instance, previous: instance.state }));
  for (const { instance } of changes) {
    if (instance.state !== 'stopped') continue;
    instance.state = 'pending';
    instance.stateReason = undefined;
    instance.transitionReason = '';
    cloud.enqueue(instance, async () => {
      if (instance.machine) await cloud.backend.start(instance.machine);
      await cloud.sleep(cloud.delays.instancePendingMs);
      if (instance.state === 'pending') becomeRunning(instance);
    });
  }
  return { instancesSet: changesXml(changes) };
};

const terminateInstances: Handler = (cloud, region, params) => {
  const instances = findInstances(cloud, region, params);
  const changes = instances.map((instance) => ({ instance, previous: instance.state }));
  for (const { instance } of changes) {
    if (instance.state !== 'terminated' && instance.state !== 'shutting-down') terminate(cloud, region, instance, USER_STOP);
  }
  return { instancesSet: changesXml(changes) };
};

export const instanceOperations: Record<string, Handler> = {
  RunInstances: runInstances,
  DescribeInstances: describeInstances,
  StopInstances: stopInstances,
  StartInstances: startInstances,
  TerminateInstances: terminateInstances,
};
